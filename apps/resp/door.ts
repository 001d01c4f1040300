// What every connection of the Redis door shares: the backend, the settings, the connected
// clients, the SCAN cursors, and the three ways a command reaches the KV store (a write through
// the log, a key read, a kv query), each held to the command's deadline. Must never reach past
// the ClusterBackend interface: the same submit and read the HTTP API uses.
import { randomBytes } from 'node:crypto';
import { type KvCommand, type KvResult, clientIdText, decodeResult, encodeCommand, encodePutBytes } from '../kv/commands.ts';
import { encodeKvQuery, type KvQuery } from '../kv/queries.ts';
import type { ClusterBackend, LocalReadMode, LocalReadResult, ReadMode, ReadWaiter, WriteWaiter } from '../http/backend.ts';
import { fromBackendError, fromKvResult, RespError } from './errors.ts';
import { bulkOrNil, error, ok, type Protocol } from './reply.ts';
import type { RespSettings } from './settings.ts';
import { type SessionLane, SessionLanes } from '../http/sessions.ts';

/** Session lanes at most (writes in flight): with the HTTP API's, well below the KV session table's 10,000. */
const lanesMax = 4096;

/** Where a job started by `start` hands its answer (once). */
export interface Answerer {
  answer(reply: Buffer): void;
}

/** Work a command hands its connection: run in order with the connection's other reads or writes. */
export interface Job {
  /** Reads of a connection run together, and so do writes; a read waits for earlier writes and a write for earlier reads. */
  readonly kind: 'read' | 'write';
  /** Resolves with the answer's bytes, or rejects (mapped by fromBackendError). Used when the job has no `start`. */
  run?(deadlineAtMs: number): Promise<Buffer>;
  /** Runs the job within `timeoutMs` and hands the answer (errors already mapped) to `to`: the hot commands' way, without promises. */
  start?(timeoutMs: number, to: Answerer): void;
  /** The job will never run (its deadline passed while it waited): let go of what it holds. */
  abandon?(): void;
}

/** Something with answers to write once this turn of the event loop is over. */
export interface Flushable {
  flush(): void;
}

/** One connection as its commands see it. */
export interface Client {
  readonly id: number;
  /** The connection's name in INFO and CLIENT (its writes carry session lanes' ids). */
  readonly clientId: string;
  name: string;
  libName: string;
  libVer: string;
  proto: Protocol;
  readMode: ReadMode;
  /** After a refused MULTI: commands are refused until EXEC or DISCARD. */
  refusingTransaction: boolean;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAtMs: number;
  readonly lastCommandAtMs: number;
  readonly pendingCommands: number;
  /** Closes the connection once this command's answer (and those before it) are written. */
  quitAfterAnswer(): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A write as a handler builds it (a fresh object: the door adds the session fields to it). */
export type KvWrite = DistributiveOmit<Exclude<KvCommand, { op: 'get' }>, 'clientId' | 'seq'>;
type Session = { clientId: string; seq: number };

/** Maps a numeric SCAN cursor (what Redis clients pass back) to the key a scan stopped at. */
class ScanCursors {
  private readonly keys = new Map<number, string>();
  // A random start, so a cursor from before a restart is (almost surely) unknown, not wrong.
  private next = 1 + Math.floor(Math.random() * 2 ** 40);

  constructor(private readonly max: number) {}

  save(after: string): string {
    const id = this.next++;
    this.keys.set(id, after);
    if (this.keys.size > this.max) this.keys.delete(this.keys.keys().next().value!);
    return String(id);
  }

  /** null: from the start; undefined: not a cursor this server handed out (or long forgotten). */
  resume(cursor: string): string | null | undefined {
    if (cursor === '0') return null;
    if (!/^[1-9][0-9]{0,15}$/.test(cursor)) return undefined;
    const id = Number(cursor);
    const after = this.keys.get(id);
    if (after !== undefined) {
      // Most recently used last, so an iteration in progress is the last to be forgotten.
      this.keys.delete(id);
      this.keys.set(id, after);
    }
    return after;
  }
}

export interface DoorStats {
  commands: number;
  connectionsAccepted: number;
  connectionsRejected: number;
}

export class KvDoor {
  /** Random per server, so two servers (or a restarted one) never share a session id. */
  readonly instanceId = randomBytes(9).toString('base64url');
  readonly startedAtMs = Date.now();
  readonly cursors: ScanCursors;
  readonly clients = new Set<Client>();
  readonly stats: DoorStats = { commands: 0, connectionsAccepted: 0, connectionsRejected: 0 };
  /**
   * Writes carry session lanes (sessions.ts), one per write in flight, as the HTTP API's do: a
   * write sent twice (a leader change before its answer) is answered with its first result by
   * the state machine's session table. Writes reach the log in the order they arrive (the client
   * pipeline keeps a stream's order), so lanes never reorder a connection's writes.
   */
  readonly lanes: SessionLanes;
  private nextClient = 1;
  /** Connections with answers to write: one setImmediate for all of them, not one each. */
  private toFlush: Flushable[] = [];

  constructor(
    readonly backend: ClusterBackend,
    readonly settings: Readonly<RespSettings>,
    readonly onInternalError: (err: unknown) => void,
    /** The TCP port, for INFO (set once listening). */
    public port = 0,
  ) {
    this.cursors = new ScanCursors(settings.scanCursorsMax);
    this.lanes = new SessionLanes(lanesMax, 'resp');
  }

  private lane(): SessionLane {
    const lane = this.lanes.acquire();
    if (lane === null) throw new RespError(`TRYAGAIN ${lanesMax} writes are in flight on this server; retry shortly`);
    return lane;
  }

  /** Calls `c.flush()` after this turn's I/O (the caller asks once per turn: it keeps its own flag). */
  flushLater(c: Flushable): void {
    if (this.toFlush.push(c) === 1) setImmediate(() => this.flushAll());
  }

  private flushAll(): void {
    const list = this.toFlush;
    this.toFlush = [];
    for (const c of list) c.flush();
  }

  /**
   * A plain SET (no options) as a job with no closure or promise of its own, when the backend
   * takes waiters; else the general write. The value may view the connection's buffer: it is
   * encoded here, before anything waits.
   */
  put(client: Client, key: string, value: Uint8Array): Job {
    if (this.backend.submitTo === undefined) return this.write(client, { op: 'put', key, value }, putAnswer);
    const lane = this.lane();
    let bytes: Uint8Array;
    try {
      bytes = encodeCommand({ op: 'put', key, value, clientId: lane.clientId, seq: lane.seq }, this.settings);
    } catch (err) {
      this.lanes.release(lane);
      if (err instanceof RangeError) throw new RespError(`ERR ${err.message.replace(/^invalid [a-z-]+ command: /, '')}`);
      throw err;
    }
    return new PutJob(this, bytes, lane);
  }

  /**
   * put() for a SET whose key and value are still in the request buffer `src` (the key checked as
   * valid UTF-8 within keyBytesMax, the value within valueBytesMax): encoded from the bytes, with
   * the lane's client id encoded once per lane, not per write.
   */
  putBytes(client: Client, src: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): Job {
    if (this.backend.submitTo !== undefined) {
      const lane = this.lane();
      const idText = (lane.idText ??= clientIdText(lane.clientId, this.settings));
      if (idText !== null) return new PutJob(this, encodePutBytes(idText, lane.seq, src, keyStart, keyEnd, valueStart, valueEnd), lane);
      this.lanes.release(lane);
    }
    // A backend without waiters, or a lane id the KV limits refuse (clientIdBytesMax set below the
    // lanes' ~20 bytes): put() takes the general path, which words the refusal.
    return this.put(client, src.toString('utf8', keyStart, keyEnd), src.subarray(valueStart, valueEnd));
  }

  /** A GET by a local read path (not `log`) as a job without promises, when the backend takes waiters; null otherwise. */
  get(key: string, mode: ReadMode, proto: Protocol): Job | null {
    if (mode === 'log' || this.backend.readTo === undefined) return null;
    return new GetJob(this, key, mode, proto);
  }

  newClientNumber(): number {
    return this.nextClient++;
  }

  sessionIdOf(client: number): string {
    return `resp-${this.instanceId}-${client}`;
  }

  /**
   * A write through the log. Encoded now, in the order commands arrive: bad input is answered at
   * once, the seq order is the arrival order, and the bytes are copied out of the parser's
   * buffers before anything waits.
   */
  write(client: Client, body: KvWrite, answer: (r: KvResult) => Buffer): Job {
    let bytes: Uint8Array;
    // The handler's own fresh object takes the session fields: an object spread here costs more
    // than the whole CBOR encoding.
    const cmd = body as Partial<Session> & KvWrite;
    const lane = this.lane();
    cmd.clientId = lane.clientId;
    cmd.seq = lane.seq;
    let held = true;
    const release = () => {
      if (held) this.lanes.release(lane);
      held = false;
    };
    try {
      bytes = encodeCommand(cmd as KvCommand, this.settings);
    } catch (err) {
      release();
      if (err instanceof RangeError) throw new RespError(`ERR ${err.message.replace(/^invalid [a-z-]+ command: /, '')}`);
      throw err;
    }
    const backend = this.backend;
    return {
      kind: 'write',
      async run(deadlineAtMs) {
        try {
          const { result } = await backend.submit(bytes, remainingMs(deadlineAtMs));
          return answer(decodeResult(result));
        } finally {
          release();
        }
      },
      abandon: release,
    };
  }

  /** A key's value by the client's read path (`log`: a get through the log). */
  async readKey(client: Client, key: string, mode: ReadMode, deadlineAtMs: number): Promise<Uint8Array | null> {
    if (mode === 'log') {
      const lane = this.lane();
      let result: KvResult;
      try {
        const bytes = encodeCommand({ op: 'get', key, clientId: lane.clientId, seq: lane.seq }, this.settings);
        result = decodeResult((await this.backend.submit(bytes, remainingMs(deadlineAtMs))).result);
      } finally {
        this.lanes.release(lane);
      }
      if (result.type === 'value') return result.value;
      if (result.type === 'not-found') return null;
      throw fromKvResult(result, 'get');
    }
    return (await this.backend.read(key, mode, remainingMs(deadlineAtMs))).value;
  }

  /** A scan, mget, exists or dbsize. A `log` client's queries take the ReadIndex path (as linearizable). */
  async query(query: KvQuery, mode: ReadMode, deadlineAtMs: number): Promise<Uint8Array | null> {
    const path = mode === 'log' ? 'index' : mode;
    return (await this.backend.read(encodeKvQuery(query), path, remainingMs(deadlineAtMs), { app: 'kv' })).value;
  }

  errorAnswer(err: unknown, kind: 'read' | 'write'): RespError {
    return fromBackendError(err, kind, this.onInternalError);
  }
}

export function remainingMs(deadlineAtMs: number): number {
  return Math.max(1, deadlineAtMs - Date.now());
}

function putAnswer(r: KvResult): Buffer {
  if (r.type !== 'written') throw fromKvResult(r, 'set');
  return ok;
}

/** A plain SET in flight: holds its session lane until the write ends or is abandoned. */
class PutJob implements Job, WriteWaiter {
  readonly kind = 'write';
  private to: Answerer | null = null;
  private held = true;

  constructor(
    private readonly door: KvDoor,
    private readonly bytes: Uint8Array,
    private readonly lane: SessionLane,
  ) {}

  start(timeoutMs: number, to: Answerer): void {
    this.to = to;
    this.door.backend.submitTo!(this.bytes, timeoutMs, this);
  }

  writeDone(err: Error | null, _index: number, result: Uint8Array | null): void {
    this.abandon();
    let reply: Buffer;
    try {
      if (err !== null) throw err;
      reply = putAnswer(decodeResult(result!));
    } catch (e) {
      reply = error(this.door.errorAnswer(e, 'write').message);
    }
    this.to!.answer(reply);
  }

  abandon(): void {
    if (this.held) this.door.lanes.release(this.lane);
    this.held = false;
  }
}

/** A GET by a local read path in flight. */
class GetJob implements Job, ReadWaiter {
  readonly kind = 'read';
  private to: Answerer | null = null;

  constructor(
    private readonly door: KvDoor,
    private readonly key: string,
    private readonly mode: ReadMode,
    private readonly proto: Protocol,
  ) {}

  start(timeoutMs: number, to: Answerer): void {
    this.to = to;
    this.door.backend.readTo!(this.key, this.mode as LocalReadMode, timeoutMs, this);
  }

  readDone(err: Error | null, answer: LocalReadResult | null): void {
    this.to!.answer(err !== null ? error(this.door.errorAnswer(err, 'read').message) : bulkOrNil(answer!.value, this.proto));
  }
}
