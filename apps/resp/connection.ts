// One client connection: bytes in through the framer and redis-parser, each command looked up
// and run, answers queued in arrival order and written in batches (one write per turn of the
// event loop), and the bounds that keep one client from holding unbounded memory. Must never
// answer out of order, and never let a bad stream affect another connection.
import type { Socket } from 'node:net';
import RedisParser from 'redis-parser';
import type { CommandTable } from './commands.ts';
import type { Client, Job, KvDoor } from './door.ts';
import { RespError, wrongArity } from './errors.ts';
import { RequestFramer } from './framing.ts';
import { PhaseGate } from './gate.ts';
import { error, type Protocol } from './reply.ts';
import type { ReadMode } from '../http/backend.ts';

interface Slot {
  /** The answer, once known (null: still running). */
  reply: Buffer | null;
  deadlineAtMs: number;
  /** The work, until it is started (null for an answer known at once). */
  job: Job | null;
  kind: 'read' | 'write';
  /** Started by the gate and not yet let go (the gate goes on when the job settles or its deadline passes). */
  holdsGate: boolean;
}

// A slot queue this long with this much already answered is compacted.
const compactAfter = 1024;

export class RespConnection implements Client {
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
      this.framer.scan(chunk);
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

  private start(job: Job): void {
    const slot: Slot = { reply: null, deadlineAtMs: Date.now() + this.door.settings.requestDeadlineMs, job, kind: job.kind, holdsGate: false };
    this.slots.push(slot);
    this.gate.enter(job.kind, slot);
  }

  private async launch(slot: Slot): Promise<void> {
    slot.holdsGate = true;
    const job = slot.job!;
    slot.job = null;
    // Expired while it waited for the gate: never sent.
    if (slot.reply !== null) {
      job.abandon?.();
      return this.letGo(slot);
    }
    let reply: Buffer;
    try {
      reply = await job.run(slot.deadlineAtMs);
    } catch (err) {
      reply = error(this.door.errorAnswer(err, job.kind).message);
    }
    this.complete(slot, reply);
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
    this.slots.push({ reply, deadlineAtMs: 0, job: null, kind: 'read', holdsGate: false });
  }

  private complete(slot: Slot, reply: Buffer): void {
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
    setImmediate(() => this.flush());
  }

  private flush(): void {
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
