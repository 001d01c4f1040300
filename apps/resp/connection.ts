// One client connection: bytes in through the framer and redis-parser, each command looked up
// and run, answers queued in arrival order and written in batches (one write per turn of the
// event loop), and the bounds that keep one client from holding unbounded memory. Must never
// answer out of order, and never let a bad stream affect another connection.
import type { Socket } from 'node:net';
import RedisParser from 'redis-parser';
import type { CommandTable } from './commands.ts';
import { isUtf8 } from 'node:buffer';
import type { Answerer, Client, Flushable, Job, KvDoor } from './door.ts';
import { RespError, wrongArity } from './errors.ts';
import { RequestFramer } from './framing.ts';
import { PhaseGate } from './gate.ts';
import { error, type Protocol } from './reply.ts';
import type { ReadMode } from '../http/backend.ts';

class Slot implements Answerer {
  /** Started by the gate and not yet let go (the gate goes on when the job settles or its deadline passes). */
  holdsGate = false;

  constructor(
    private readonly conn: RespConnection,
    /** The answer, once known (null: still running). */
    public reply: Buffer | null,
    readonly deadlineAtMs: number,
    /** The work, until it is started (null for an answer known at once). */
    public job: Job | null,
    readonly kind: 'read' | 'write',
  ) {}

  answer(reply: Buffer): void {
    this.conn.complete(this, reply);
  }
}

/** Whether c[start, end) is valid UTF-8: ASCII by a loop (most keys), the rest natively. */
function isUtf8Key(c: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (c[i]! >= 0x80) return isUtf8(c.subarray(start, end));
  return true;
}

// A slot queue this long with this much already answered is compacted.
const compactAfter = 1024;

export class RespConnection implements Client, Flushable {
  readonly id: number;
  readonly clientId: string;
  name = '';
  libName = '';
  libVer = '';
  proto: Protocol = 2;
  readMode: ReadMode;
  refusingTransaction = false;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAtMs = Date.now();
  lastCommandAtMs = Date.now();
  private readonly slots: Slot[] = [];
  private head = 0;
  private out: Buffer[] = [];
  private flushScheduled = false;
  private readonly gate = new PhaseGate<Slot>((slot) => void this.launch(slot));
  private readonly framer: RequestFramer;
  private readonly parser: RedisParser;
  /** No more commands are read (QUIT, a protocol error, the client's end, shutdown); the socket ends once answers are out. */
  private ending = false;
  private paused = false;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly door: KvDoor,
    private readonly table: CommandTable,
  ) {
    this.id = door.newClientNumber();
    this.clientId = door.sessionIdOf(this.id);
    this.readMode = door.settings.readModeDefault;
    this.addr = `${socket.remoteAddress}:${socket.remotePort}`;
    this.laddr = `${socket.localAddress}:${socket.localPort}`;
    const s = door.settings;
    this.parser = new RedisParser({
      returnBuffers: true,
      returnReply: (reply: unknown) => this.onRequest(reply),
      // The framer lets only arrays of bulk strings through, so the parser has nothing to refuse;
      // if it does anyway, the stream is not what the framer believed: close.
      returnError: (err: Error) => this.protocolError(`Protocol error: ${err.message}`),
      returnFatalError: (err: Error) => this.protocolError(`Protocol error: ${err.message}`),
    });
    this.framer = new RequestFramer(s.requestBytesMax, s.requestArgsMax, {
      feed: (chunk, start, end) => {
        try {
          this.parser.execute(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
        } catch (err) {
          this.protocolError(`Protocol error: ${(err as Error).message}`);
        }
      },
      drop: (bytes) => {
        this.parser.reset();
        this.answerNow(error(`ERR the request is ${bytes} bytes or more; the limit is ${s.requestBytesMax} (a value may be at most ${s.valueBytesMax} bytes); it was not run`));
      },
      fatal: (message) => this.protocolError(message),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.ending) return;
      const nowMs = Date.now();
      this.lastCommandAtMs = nowMs;
      // Plain GETs and SETs are taken straight from the bytes; from the first other request on,
      // the rest of the chunk goes through the framer and redis-parser, in order.
      const taken = this.framer.atRequestStart && !this.refusingTransaction ? this.takePlain(chunk, nowMs) : 0;
      if (taken < chunk.length) this.framer.scan(taken === 0 ? chunk : chunk.subarray(taken));
      this.updateFlow();
    });
    socket.on('drain', () => this.updateFlow());
    // The client is done sending (the server allows half-open sockets): answer what it asked, then end.
    socket.on('end', () => this.shutdown());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      door.clients.delete(this);
    });
    door.clients.add(this);
  }

  get pendingCommands(): number {
    return this.slots.length - this.head;
  }

  quitAfterAnswer(): void {
    this.ending = true;
  }

  /** Stops reading; ends the socket once what was asked is answered. */
  shutdown(): void {
    this.ending = true;
    this.scheduleFlush();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Answers TIMEOUT for commands past their deadline (the door's sweep calls this). */
  expire(nowMs: number): void {
    // Deadlines follow the queue's order, so the expired ones are a run from the head. Collected
    // first: completing them moves the head and may compact the queue.
    const expired: Slot[] = [];
    for (let i = this.head; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (slot.reply !== null) continue;
      if (slot.deadlineAtMs > nowMs) break;
      expired.push(slot);
    }
    const ms = this.door.settings.requestDeadlineMs;
    for (const slot of expired) {
      this.complete(slot, error(slot.kind === 'write'
        ? `TIMEOUT the command was not known to be applied within ${ms} ms; it may still be applied`
        : `TIMEOUT the read was not served within ${ms} ms; retry`));
    }
  }

  private onRequest(reply: unknown): void {
    if (this.ending) return;
    // Empty requests (*0, *-1) are skipped, as Redis skips them.
    if (!Array.isArray(reply) || reply.length === 0) return;
    this.run(reply as Buffer[]);
  }

  private run(args: Buffer[]): void {
    this.door.stats.commands++;
    this.lastCommandAtMs = Date.now();
    const raw = args[0]!.toString('latin1');
    const spec = this.table.get(raw) ?? this.table.get(raw.toLowerCase());
    if (spec === undefined) return this.answerNow(error(unknownCommand(raw, args)));
    if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return this.answerNow(error(wrongArity(spec.name).message));
    if (this.refusingTransaction && spec.group !== 'transactions') {
      return this.answerNow(error(`ERR ${spec.name.toUpperCase()} was not run: it follows a MULTI, which concur does not support; send DISCARD (or EXEC) to go on`));
    }
    let outcome: Buffer | Job;
    try {
      outcome = spec.run(args, this, this.door);
    } catch (err) {
      if (err instanceof RespError) return this.answerNow(error(err.message));
      this.door.onInternalError(err);
      return this.answerNow(error(`ERR internal error: ${(err as Error)?.message ?? String(err)}`));
    }
    if (Buffer.isBuffer(outcome)) return this.answerNow(outcome);
    this.start(outcome);
  }

  /** `nowMs`: Date.now(), read once for a run of requests taken from one chunk. */
  private start(job: Job, nowMs = Date.now()): void {
    const slot = new Slot(this, null, nowMs + this.door.settings.requestDeadlineMs, job, job.kind);
    this.slots.push(slot);
    this.startingAtMs = nowMs;
    this.gate.enter(job.kind, slot);
    this.startingAtMs = -1;
  }

  /** The clock reading of the requests being started now (-1: none), so launching them reads no clock of its own. */
  private startingAtMs = -1;

  private launch(slot: Slot): void {
    slot.holdsGate = true;
    const job = slot.job!;
    slot.job = null;
    // Expired while it waited for the gate: never sent.
    if (slot.reply !== null) {
      job.abandon?.();
      return this.letGo(slot);
    }
    if (job.start !== undefined) {
      try {
        job.start(Math.max(1, slot.deadlineAtMs - (this.startingAtMs >= 0 ? this.startingAtMs : Date.now())), slot);
      } catch (err) {
        this.complete(slot, error(this.door.errorAnswer(err, job.kind).message));
      }
      return;
    }
    job.run!(slot.deadlineAtMs).then(
      (reply) => this.complete(slot, reply),
      (err: unknown) => this.complete(slot, error(this.door.errorAnswer(err, job.kind).message)),
    );
  }

  /**
   * Runs the plain GETs and SETs at the start of `c` (whole requests, arguments within the
   * limits: anything else, even a SET that will be refused, is left to the general path, which
   * words the errors) and returns how many bytes they took.
   */
  private takePlain(c: Buffer, nowMs: number): number {
    const s = this.door.settings;
    const n = c.length;
    let i = 0;
    while (i < n && !this.ending) {
      // *2\r\n$3\r\nGET\r\n or *3\r\n$3\r\nSET\r\n, any case.
      if (i + 13 > n || c[i] !== 42 || c[i + 2] !== 13 || c[i + 3] !== 10 || c[i + 4] !== 36 || c[i + 5] !== 51 || c[i + 6] !== 13 || c[i + 7] !== 10) break;
      if (c[i + 11] !== 13 || c[i + 12] !== 10 || (c[i + 9]! | 0x20) !== 101 || (c[i + 10]! | 0x20) !== 116) break;
      const first = c[i + 8]! | 0x20;
      const isGet = first === 103 && c[i + 1] === 50;
      if (!isGet && !(first === 115 && c[i + 1] === 51)) break;
      const key = bulkAt(c, i + 13);
      if (key < 0) break;
      const keyStart = bulkStart;
      const keyEnd = bulkEnd;
      const keyBytes = keyEnd - keyStart;
      if (keyBytes === 0 || keyBytes > s.keyBytesMax || !isUtf8Key(c, keyStart, keyEnd)) break;
      let end = key;
      if (!isGet) {
        end = bulkAt(c, key);
        if (end < 0 || bulkEnd - bulkStart > s.valueBytesMax) break;
      }
      if (end - i > s.requestBytesMax) break;
      let job: Job | null;
      if (isGet) {
        job = this.door.get(c.toString('utf8', keyStart, keyEnd), this.readMode, this.proto);
        if (job === null) break; // a read through the log: the general path
      } else {
        try {
          job = this.door.putBytes(this, c, keyStart, keyEnd, bulkStart, bulkEnd);
        } catch (err) {
          this.door.stats.commands++;
          this.answerNow(error(err instanceof RespError ? err.message : `ERR internal error: ${(err as Error)?.message ?? String(err)}`));
          i = end;
          continue;
        }
      }
      this.door.stats.commands++;
      this.start(job, nowMs);
      i = end;
    }
    return i;
  }

  private letGo(slot: Slot): void {
    if (!slot.holdsGate) return;
    slot.holdsGate = false;
    this.gate.leave();
  }

  /** An answer known now: in order behind the commands still running. */
  private answerNow(reply: Buffer): void {
    if (this.head === this.slots.length) {
      this.out.push(reply);
      this.scheduleFlush();
      return;
    }
    this.slots.push(new Slot(this, reply, 0, null, 'read'));
  }

  /** A started job's answer (Slot.answer), or an answer its deadline made. */
  complete(slot: Slot, reply: Buffer): void {
    this.letGo(slot);
    if (slot.reply !== null) return;
    slot.reply = reply;
    if (this.slots[this.head] !== slot) return;
    const slots = this.slots;
    while (this.head < slots.length && slots[this.head]!.reply !== null) {
      this.out.push(slots[this.head]!.reply!);
      slots[this.head++] = undefined as never;
    }
    if (this.head === slots.length) {
      slots.length = 0;
      this.head = 0;
    } else if (this.head >= compactAfter && this.head * 2 >= slots.length) {
      slots.copyWithin(0, this.head);
      slots.length -= this.head;
      this.head = 0;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One write per turn of the event loop: answers that complete together go out together.
    this.door.flushLater(this);
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const out = this.out;
    if (out.length > 0) {
      this.out = [];
      this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    }
    if (this.ending && this.head === this.slots.length) {
      this.socket.end();
      return;
    }
    this.updateFlow();
  }

  /** Stops reading while too much waits on this connection; reads again once half of it is done. */
  private updateFlow(): void {
    if (this.closed) return;
    const s = this.door.settings;
    const pending = this.slots.length - this.head;
    const backlog = this.socket.writableLength;
    if (!this.paused && (pending >= s.pendingCommandsMax || backlog >= s.outputBytesMax)) {
      this.paused = true;
      this.socket.pause();
    } else if (this.paused && pending < s.pendingCommandsMax / 2 && backlog < s.outputBytesMax / 2) {
      this.paused = false;
      if (!this.ending) this.socket.resume();
    }
  }

  private protocolError(message: string): void {
    if (this.ending) return;
    this.answerNow(error(`ERR ${message}`));
    this.ending = true;
    this.scheduleFlush();
  }
}

/** Redis's words for an unknown command, with the first arguments quoted. */
function unknownCommand(name: string, args: readonly Buffer[]): string {
  let shownArgs = '';
  for (let i = 1; i < args.length && shownArgs.length < 128; i++) shownArgs += `'${args[i]!.toString('utf8', 0, 128 - shownArgs.length)}' `;
  return `ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${shownArgs}`;
}

// Where the last bulk string bulkAt read lies (module state: no object per argument).
let bulkStart = 0;
let bulkEnd = 0;

/** Reads `$<len>\r\n<bytes>\r\n` at `p`: the offset after it, or -1 if it is not whole and plain there. */
function bulkAt(c: Buffer, p: number): number {
  const n = c.length;
  if (p >= n || c[p] !== 36) return -1;
  let len = 0;
  let q = p + 1;
  for (let digits = 0; ; q++, digits++) {
    if (q >= n || digits > 9) return -1;
    const b = c[q]!;
    if (b === 13) {
      if (digits === 0) return -1;
      break;
    }
    if (b < 48 || b > 57) return -1;
    len = len * 10 + (b - 48);
  }
  if (q + 1 >= n || c[q + 1] !== 10) return -1;
  const start = q + 2;
  const end = start + len;
  if (end + 2 > n || c[end] !== 13 || c[end + 1] !== 10) return -1;
  bulkStart = start;
  bulkEnd = end;
  return end + 2;
}
