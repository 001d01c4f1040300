// The KV store's deterministic state machine: applies committed commands in log order, keeps
// the client session table that makes retries apply at most once, and streams snapshot images
// out and in. Must never read the clock, randomness, I/O or anything but its inputs: every
// replica must end in the same state from the same log.
import { createHash } from 'node:crypto';
import { appliedOutOfOrder, type SnapshotImage, type SnapshotRestore } from '../state-machine.ts';
import {
  type KvCommand,
  type KvLimits,
  type KvResult,
  KvDecodeError,
  commandProblem,
  decodeCommand,
  deletedResult,
  encodeResult,
  int64Max,
  int64Min,
  kvCodec,
  kvEncode,
  kvLimitsDefault,
  newSimpleCommand,
  notFoundResult,
  parseInt64,
  readSimpleCommand,
  simpleCommandFits,
  textBytes,
  utf8ByteLength,
  valueResult,
  writtenResult,
} from './commands.ts';

export interface KvStateMachineSettings extends KvLimits {
  /** Clients remembered in the session table; the least recently used is evicted beyond this. */
  sessionsMax: number;
  /**
   * Bytes of cached results (plus client ids) the session table may hold; least recently used
   * clients are evicted beyond this. A failed cas caches the current value, so without this
   * bound the table could hold sessionsMax × valueBytesMax.
   */
  sessionBytesMax: number;
  /** Snapshot images are serialized in pieces of about this many bytes (a larger record is a piece of its own). */
  snapshotPieceBytes: number;
}

export const kvStateMachineSettingsDefault: Readonly<KvStateMachineSettings> = Object.freeze({
  ...kvLimitsDefault,
  sessionsMax: 10_000,
  sessionBytesMax: 64 * 1024 * 1024,
  snapshotPieceBytes: 64 * 1024,
});

/*
 * Exactly-once and its limits (Raft thesis §6.3, without explicit session registration).
 *
 * Per client the table keeps the highest seq applied and that request's encoded result:
 *  - seq > last: apply, remember (seq, result);
 *  - seq = last: a retry: return the cached result, change nothing;
 *  - seq < last: "stale request": the client has moved on, so this is an old retry whose result
 *    it no longer waits for; it is not applied.
 * So a client may have ONE write in flight at a time (a new seq only after the previous one was
 * answered or abandoned); the HTTP server guarantees that for its own ids by giving each
 * in-flight request its own session lane.
 *
 * Eviction (least recently used first, by log order, so every replica evicts the same clients)
 * forgets a client entirely. A retry that arrives after its client was evicted is
 * indistinguishable from a new client and IS applied again. Exactly-once therefore holds while
 * fewer than sessionsMax other clients (and sessionBytesMax of results) were active between a
 * request and its last retry; size the settings for the number of concurrent clients.
 *
 * Reads (get) bypass the table: they change nothing, so re-executing a retried read is safe
 * (it answers as of a later point in the log, still inside the retry's window), and caching read
 * results would cost up to valueBytesMax per client.
 */

// Per-entry overhead counted against sessionBytesMax besides the result and id bytes, so a
// flood of tiny results still has a byte cost.
const sessionEntryOverheadBytes = 64;

/** One client's session: a node of the table's LRU list, updated in place by a new seq. */
interface Session {
  readonly clientId: string;
  seq: number;
  result: Uint8Array;
  /** What this session is charged against sessionBytesMax: UTF-8 id bytes, result bytes and the overhead. */
  bytes: number;
  older: Session | null;
  newer: Session | null;
}

/**
 * The session table: a map from client id to session, and the sessions in a doubly linked list,
 * least recently used first. A use moves a session to the newest end in place, so the order is
 * exactly the one a Map deleted and re-inserted on every use kept (a function of the log, the
 * same on every replica, and the order snapshot images carry), without its cost: each delete
 * left a hole at the front of the Map's table, which every eviction check's iterator walked
 * over again (test/kv/fast-path.property.test.ts holds the two to the same order, byte count and
 * evictions). Holds no policy; KvStateMachine decides when to evict.
 */
class SessionTable {
  private readonly byId = new Map<string, Session>();
  private oldest: Session | null = null;
  private newest: Session | null = null;
  /** The sum of every session's `bytes`. */
  bytes = 0;

  get size(): number {
    return this.byId.size;
  }

  get(clientId: string): Session | undefined {
    return this.byId.get(clientId);
  }

  /** Makes `s` the most recently used. */
  touch(s: Session): void {
    if (s === this.newest) return;
    this.unlink(s);
    this.append(s);
  }

  /** A new session (the client has none), the most recently used. `idBytes`: the client id's UTF-8 size. */
  add(clientId: string, idBytes: number, seq: number, result: Uint8Array): void {
    const s: Session = { clientId, seq, result, bytes: idBytes + result.length + sessionEntryOverheadBytes, older: null, newer: null };
    this.byId.set(clientId, s);
    this.append(s);
    this.bytes += s.bytes;
  }

  /** A new seq and result for an existing session, which becomes the most recently used. */
  update(s: Session, seq: number, result: Uint8Array): void {
    // `length`, not `byteLength` (the same for a Uint8Array): on this V8 a typed array's byteLength
    // in code this hot compiled to a generic property load, ~5 % of a follower's CPU under load.
    const bytes = s.bytes - s.result.length + result.length;
    this.bytes += bytes - s.bytes;
    s.bytes = bytes;
    s.seq = seq;
    s.result = result;
    this.touch(s);
  }

  /** Forgets the least recently used session. */
  evictOldest(): void {
    const s = this.oldest!;
    this.unlink(s);
    this.byId.delete(s.clientId);
    this.bytes -= s.bytes;
  }

  /** Calls `f` on every session, least recently used first. `f` must not change the table. */
  forEach(f: (s: Session) => void): void {
    for (let s = this.oldest; s !== null; s = s.newer) f(s);
  }

  private unlink(s: Session): void {
    if (s.older === null) this.oldest = s.newer;
    else s.older.newer = s.newer;
    if (s.newer === null) this.newest = s.older;
    else s.newer.older = s.older;
    s.older = null;
    s.newer = null;
  }

  private append(s: Session): void {
    s.older = this.newest;
    if (this.newest === null) this.oldest = s;
    else this.newest.newer = s;
    this.newest = s;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

function checkSettings(s: KvStateMachineSettings): void {
  for (const name of ['keyBytesMax', 'valueBytesMax', 'clientIdBytesMax', 'sessionsMax', 'sessionBytesMax', 'snapshotPieceBytes'] as const) {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`KvStateMachine: ${name} must be a positive integer, got ${String(v)}`);
  }
}

function staleResult(clientId: string, seq: number, lastSeq: number): Uint8Array {
  return encodeResult({ type: 'error', code: 'stale-request', message: `stale request: client ${clientId} sent seq ${seq} after seq ${lastSeq} was applied` });
}

export class KvStateMachine {
  readonly settings: Readonly<KvStateMachineSettings>;
  private data = new Map<string, Uint8Array>();
  private sessions = new SessionTable();
  private appliedIndex = 0;
  // Where apply's fast path reads a put, get or delete: one, reused, so reading allocates nothing.
  private readonly simple = newSimpleCommand();
  // The keys in order for scans, rebuilt on demand after a key was added or removed (not on an
  // overwrite). Derived state: in neither the digest nor the snapshot.
  private sortedKeys: string[] | null = null;

  constructor(settings: Partial<KvStateMachineSettings> = {}) {
    this.settings = Object.freeze({ ...kvStateMachineSettingsDefault, ...settings });
    checkSettings(this.settings);
  }

  /** The index of the last entry applied (0 before any). */
  get lastAppliedIndex(): number {
    return this.appliedIndex;
  }

  get keyCount(): number {
    return this.data.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Bytes currently charged to the session table (see sessionBytesMax). */
  get sessionBytesUsed(): number {
    return this.sessions.bytes;
  }

  /** The last seq applied for a client, or undefined if it has no session (never seen or evicted). */
  sessionSeq(clientId: string): number | undefined {
    return this.sessions.get(clientId)?.seq;
  }

  /**
   * The locally applied value of `key`, for the read paths that do not go through the log.
   * The returned bytes are the state machine's own: do not mutate them.
   */
  readLocal(key: string): Uint8Array | undefined {
    return this.data.get(key);
  }

  /**
   * Applies the committed entry at `index`. Indexes must increase (gaps are allowed: the log
   * may hold entries that are not KV commands, such as a leader's no-op). Never throws on bad
   * command bytes — it answers an "invalid-command" result, the same on every replica.
   */
  apply(index: number, command: Uint8Array): Uint8Array {
    return this.applyAt(index, command, 0, command.length);
  }

  /** apply() of the command at bytes[start, end), with no view made of it for the common commands. */
  applyAt(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index <= this.appliedIndex) {
      // Applying an entry twice or out of order would silently fork replicas: fail loudly.
      throw appliedOutOfOrder('KvStateMachine.apply', index, this.appliedIndex);
    }
    this.appliedIndex = index;

    // Nearly every command: a put, get or delete within the limits, read without cbor-x and
    // answered with results written by hand. Anything else (or a command breaking a limit, which
    // the general path must explain) takes the general path, which answers it as it always did.
    const c = this.simple;
    if (readSimpleCommand(bytes, c, false, start, end) && simpleCommandFits(c, this.settings)) {
      if (c.op === 'get') {
        const value = this.data.get(c.key);
        return value === undefined ? notFoundResult() : valueResult(value);
      }
      return this.applySimpleWrite(index, c.op, c.clientId, c.clientIdBytes, c.seq, c.key, c.value);
    }

    let cmd: KvCommand;
    try {
      cmd = decodeCommand(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
    } catch (err) {
      if (err instanceof KvDecodeError) return encodeResult({ type: 'error', code: 'invalid-command', message: err.message });
      throw err;
    }
    const problem = commandProblem(cmd, this.settings);
    if (problem) return encodeResult({ type: 'error', code: 'invalid-command', message: `invalid ${cmd.op} command: ${problem}` });

    if (cmd.op === 'get') {
      const value = this.data.get(cmd.key);
      return encodeResult(value === undefined ? { type: 'not-found' } : { type: 'value', value });
    }

    const session = this.sessions.get(cmd.clientId);
    if (session) {
      if (cmd.seq === session.seq) {
        this.sessions.touch(session);
        return session.result;
      }
      if (cmd.seq < session.seq) return staleResult(cmd.clientId, cmd.seq, session.seq);
    }

    // A copy of its own, so the cache does not pin the encoder's larger working buffer and
    // sessionBytesMax counts what is really held.
    const result = encodeResult(this.write(index, cmd)).slice();
    this.remember(session, cmd.clientId, utf8ByteLength(cmd.clientId), cmd.seq, result);
    return result;
  }

  /**
   * apply's fast path for a put or delete: the same steps as the general path (session check,
   * write, remember), with the result written by hand (its own small array: nothing to copy).
   */
  private applySimpleWrite(index: number, op: 'put' | 'delete', clientId: string, clientIdBytes: number, seq: number, key: string, value: Uint8Array | null): Uint8Array {
    const session = this.sessions.get(clientId);
    if (session !== undefined) {
      if (seq === session.seq) {
        this.sessions.touch(session);
        return session.result;
      }
      if (seq < session.seq) return staleResult(clientId, seq, session.seq);
    }
    let result: Uint8Array;
    if (op === 'put') {
      this.set(key, value!);
      result = writtenResult(index);
    } else result = deletedResult(index, this.remove(key));
    this.remember(session, clientId, clientIdBytes, seq, result);
    return result;
  }

  private write(index: number, cmd: Exclude<KvCommand, { op: 'get' }>): KvResult {
    switch (cmd.op) {
      case 'put':
        this.set(cmd.key, cmd.value);
        return { type: 'written', index };
      case 'delete':
        return { type: 'deleted', index, existed: this.remove(cmd.key) };
      case 'cas': {
        const current = this.data.get(cmd.key) ?? null;
        const matches = cmd.expect === null ? current === null : current !== null && sameBytes(current, cmd.expect);
        if (!matches) return { type: 'cas-failed', current };
        this.set(cmd.key, cmd.value);
        return { type: 'written', index };
      }
      case 'put-if': {
        const current = this.data.get(cmd.key) ?? null;
        const previous = cmd.returnPrevious ? current : null;
        if ((cmd.condition === 'nx' && current !== null) || (cmd.condition === 'xx' && current === null)) return { type: 'condition-failed', previous };
        this.set(cmd.key, cmd.value);
        return cmd.returnPrevious ? { type: 'swapped', index, previous } : { type: 'written', index };
      }
      case 'incr-by': {
        const current = this.data.get(cmd.key);
        const n = current === undefined ? 0n : parseInt64(current);
        if (n === null) return { type: 'error', code: 'not-integer', message: `the value of ${JSON.stringify(cmd.key)} is not a base-10 signed 64-bit integer` };
        const next = n + cmd.delta;
        if (next < int64Min || next > int64Max) return { type: 'error', code: 'not-integer', message: `adding ${cmd.delta} to ${n} would overflow a signed 64-bit integer` };
        this.set(cmd.key, textBytes(next.toString()));
        return { type: 'integer', index, value: next };
      }
      case 'mput':
        for (const [key, value] of cmd.entries) this.set(key, value);
        return { type: 'written', index };
      case 'mdelete': {
        let count = 0;
        for (const key of cmd.keys) if (this.remove(key)) count++;
        return { type: 'deleted-count', index, count };
      }
    }
  }

  private set(key: string, value: Uint8Array): void {
    const size = this.data.size;
    this.data.set(key, value);
    if (this.data.size !== size) this.sortedKeys = null;
  }

  private remove(key: string): boolean {
    const existed = this.data.delete(key);
    if (existed) this.sortedKeys = null;
    return existed;
  }

  /**
   * Keys in UTF-16 code unit order after `after` (null: from the first), that start with
   * `prefix`: at most `count` of them, and no more once their UTF-8 bytes reach `bytesMax`.
   * `last` is the last key listed, null when the listing reached the end (no key after it could
   * match). A read: changes nothing but a derived index, rebuilt in O(n log n) after keys were
   * added or removed since the last scan.
   */
  scan(after: string | null, prefix: string, count: number, bytesMax: number): { keys: string[]; last: string | null } {
    const sorted = (this.sortedKeys ??= [...this.data.keys()].sort());
    const from = after !== null && after >= prefix ? after : prefix;
    // The first key > `after` (or >= prefix when starting there).
    let lo = 0;
    let hi = sorted.length;
    const strict = after !== null && after >= prefix;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = sorted[mid]!;
      if (k < from || (strict && k === from)) lo = mid + 1;
      else hi = mid;
    }
    const keys: string[] = [];
    let bytes = 0;
    for (let i = lo; i < sorted.length; i++) {
      const k = sorted[i]!;
      if (!k.startsWith(prefix)) return { keys, last: null };
      keys.push(k);
      bytes += Buffer.byteLength(k, 'utf8');
      if (keys.length >= count || bytes >= bytesMax) return { keys, last: i + 1 < sorted.length ? k : null };
    }
    return { keys, last: null };
  }

  /**
   * Records (seq, result) as the client's latest and makes it the most recently used. `session`
   * is the client's current one (undefined: none, so one is added, charged `clientIdBytes`, the
   * id's UTF-8 size: a session keeps it, so it is measured once per client, not per write).
   */
  private remember(session: Session | undefined, clientId: string, clientIdBytes: number, seq: number, result: Uint8Array): void {
    if (session !== undefined) this.sessions.update(session, seq, result);
    else this.sessions.add(clientId, clientIdBytes, seq, result);
    this.evict();
  }

  // Evicts least recently used clients until both bounds hold. The newest entry always stays,
  // even if alone it exceeds sessionBytesMax: the request being answered must be retry-safe.
  private evict(): void {
    const t = this.sessions;
    const { sessionsMax, sessionBytesMax } = this.settings;
    while (t.size > 1 && (t.size > sessionsMax || t.bytes > sessionBytesMax)) t.evictOldest();
  }

  /**
   * An image of the whole state as of now, serialized lazily by next() in pieces of about
   * `pieceBytes` (one record larger than that is a piece of its own). Capturing copies the key
   * list and each session's fields, not the values or cached results: those are never mutated
   * (a write stores new ones), so commands applied afterwards cannot change what the image
   * yields. Until it is drained or dropped, the image keeps alive the values it captured, even
   * ones deleted since.
   */
  snapshotImage(pieceBytes: number = this.settings.snapshotPieceBytes): SnapshotImage {
    if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new RangeError(`KvStateMachine.snapshotImage: pieceBytes must be a positive integer, got ${String(pieceBytes)}`);
    // Map order, not sorted: it is itself a function of the log, costs no sort, and restoring in
    // it keeps the data and the sessions' LRU order exactly as they were.
    // Sessions change in place, so their fields are copied out now.
    const clientIds: string[] = [];
    const seqs: number[] = [];
    const results: Uint8Array[] = [];
    this.sessions.forEach((e) => {
      clientIds.push(e.clientId);
      seqs.push(e.seq);
      results.push(e.result);
    });
    return new KvImageWriter(this.appliedIndex, [...this.data.keys()], [...this.data.values()], clientIds, seqs, results, pieceBytes);
  }

  /**
   * Starts replacing the whole state with an image fed in pieces. Records are parsed and checked
   * as they arrive into maps on the side, swapped in only by a successful finish(): on any
   * KvDecodeError the current state is untouched, and applying commands meanwhile is allowed
   * (finish discards them). Sessions beyond this machine's bounds are evicted at finish.
   */
  restoreImage(): SnapshotRestore {
    return new KvImageReader(this.snapshotRecordBytesMax, (image) => this.install(image));
  }

  /**
   * The largest image record this machine accepts: a key and its value, or a session whose
   * cached result holds a value (a failed cas), plus CBOR headers. An image with larger records
   * was written under larger limits than this cluster's, or is corrupt.
   */
  get snapshotRecordBytesMax(): number {
    const s = this.settings;
    return s.keyBytesMax + s.clientIdBytesMax + s.valueBytesMax + snapshotRecordOverheadBytes;
  }

  /**
   * SHA-256 (hex) of the state alone: the data sorted by key (UTF-16 code unit order), then the
   * sessions in LRU order with their seq and cached result (which holds the index of its write).
   * Not the applied index and not the data's insertion order, so replicas that applied the same
   * log agree whatever their history of snapshots. Costs a sort of the keys and a pass over all.
   */
  digest(): string {
    const hash = createHash('sha256');
    hash.update(kvEncode([digestDomain, this.data.size, this.sessions.size]));
    for (const key of [...this.data.keys()].sort()) hash.update(kvEncode([key, this.data.get(key)!]));
    this.sessions.forEach((e) => hash.update(kvEncode([e.clientId, e.seq, e.result])));
    return hash.digest('hex');
  }

  private install(image: RestoredImage): void {
    this.data = image.data;
    this.sortedKeys = null;
    // In the image's order, which is the LRU order the sessions had.
    this.sessions = new SessionTable();
    for (const [clientId, e] of image.sessions) this.sessions.add(clientId, utf8ByteLength(clientId), e.seq, e.result);
    this.appliedIndex = image.index;
    this.evict();
  }
}

/*
 * Snapshot image format 2: a sequence of records, each `u32 byteLength (LE) | one CBOR item`
 * encoded with kvCodec:
 *   [formatVersion = 2, appliedIndex, keyCount, sessionCount]    the header, once
 *   [key, value]                                                 keyCount times, in Map order
 *   [clientId, seq, result]                                      sessionCount times, LRU first
 * Length prefixes let a reader cut records out of pieces split anywhere while buffering at most
 * one record; the counts let it tell a complete image from a truncated one.
 */

const snapshotFormatVersion = 2;
const recordLengthBytes = 4;
// CBOR headers of a data or session record beyond its key, client id and value bytes (array,
// text and byte-string headers, seq, the result's tag), rounded up generously.
const snapshotRecordOverheadBytes = 64;
const digestDomain = 'concur-kv-state-1';

class KvImageWriter implements SnapshotImage {
  private readonly records: Generator<unknown[], void>;
  // A record that did not fit the previous piece; a copy, since it outlives the encoder call.
  private pending: Uint8Array | null = null;
  private done = false;

  constructor(
    readonly index: number,
    keys: string[],
    values: Uint8Array[],
    clientIds: string[],
    seqs: number[],
    results: Uint8Array[],
    private readonly pieceBytes: number,
  ) {
    this.records = imageRecords(index, keys, values, clientIds, seqs, results);
  }

  next(): Uint8Array | null {
    if (this.done) return null;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      let record = this.pending;
      this.pending = null;
      if (record === null) {
        const item = this.records.next();
        if (item.done) {
          this.done = true;
          break;
        }
        record = kvEncode(item.value);
      }
      if (parts.length > 0 && total + recordLengthBytes + record.byteLength > this.pieceBytes) {
        this.pending = record.slice();
        break;
      }
      parts.push(record);
      total += recordLengthBytes + record.byteLength;
    }
    if (parts.length === 0) return null;
    const piece = new Uint8Array(total);
    const view = new DataView(piece.buffer);
    let at = 0;
    for (const part of parts) {
      view.setUint32(at, part.byteLength, true);
      piece.set(part, at + recordLengthBytes);
      at += recordLengthBytes + part.byteLength;
    }
    return piece;
  }
}

function* imageRecords(index: number, keys: string[], values: Uint8Array[], clientIds: string[], seqs: number[], results: Uint8Array[]): Generator<unknown[], void> {
  yield [snapshotFormatVersion, index, keys.length, clientIds.length];
  for (let i = 0; i < keys.length; i++) yield [keys[i], values[i]];
  for (let i = 0; i < clientIds.length; i++) yield [clientIds[i], seqs[i], results[i]];
}

/** A session record of an image being restored. */
interface SessionRecord {
  readonly seq: number;
  readonly result: Uint8Array;
}

interface RestoredImage {
  index: number;
  data: Map<string, Uint8Array>;
  /** In the image's order: least recently used first. */
  sessions: Map<string, SessionRecord>;
}

interface ImageHeader {
  index: number;
  keyCount: number;
  sessionCount: number;
}

// cbor-x decodes byte strings as Buffers; the state machine hands out plain Uint8Arrays.
function plainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function countField(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new KvDecodeError(`KV snapshot ${what} must be a non-negative integer, got ${String(x)}`);
  return x;
}

/** Parses an image as its pieces arrive; hands the result to `install` only on a clean finish. */
class KvImageReader implements SnapshotRestore {
  // The length prefix being read, when a piece ended inside it.
  private readonly lengthPrefix = new Uint8Array(recordLengthBytes);
  private lengthFill = 0;
  // The one record being assembled, when a piece ended inside it.
  private record: Uint8Array | null = null;
  private recordFill = 0;
  private header: ImageHeader | null = null;
  private keysRead = 0;
  private sessionsRead = 0;
  private data = new Map<string, Uint8Array>();
  private sessions = new Map<string, SessionRecord>();
  private state: 'open' | 'failed' | 'finished' = 'open';

  constructor(
    private readonly recordBytesMax: number,
    private readonly install: (image: RestoredImage) => void,
  ) {}

  write(bytes: Uint8Array): void {
    this.checkOpen('write');
    try {
      this.consume(bytes);
    } catch (err) {
      this.fail();
      throw err;
    }
  }

  finish(): void {
    this.checkOpen('finish');
    const problem = this.incompleteness();
    if (problem) {
      this.fail();
      throw new KvDecodeError(`KV snapshot is incomplete: ${problem}`);
    }
    this.state = 'finished';
    this.install({ index: this.header!.index, data: this.data, sessions: this.sessions });
  }

  private checkOpen(call: string): void {
    if (this.state !== 'open') throw new Error(`KV snapshot restore: ${call} after the restore ${this.state === 'failed' ? 'failed' : 'finished'}; start a new one`);
  }

  private fail(): void {
    this.state = 'failed';
    // Drop what was built so a spent restore pins no memory.
    this.data = new Map();
    this.sessions = new Map();
    this.record = null;
  }

  private incompleteness(): string | null {
    if (this.lengthFill > 0) return `it ends inside a record's length prefix (${this.lengthFill} of ${recordLengthBytes} bytes)`;
    if (this.record) return `it ends inside a record (${this.recordFill} of ${this.record.byteLength} bytes)`;
    const h = this.header;
    if (!h) return 'it ends before its header';
    if (this.keysRead < h.keyCount) return `it ends after ${this.keysRead} of ${h.keyCount} key records`;
    if (this.sessionsRead < h.sessionCount) return `it ends after ${this.sessionsRead} of ${h.sessionCount} session records`;
    return null;
  }

  private complete(): boolean {
    const h = this.header;
    return h !== null && this.keysRead === h.keyCount && this.sessionsRead === h.sessionCount;
  }

  private consume(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.byteLength) {
      if (this.record === null) {
        if (this.lengthFill === 0 && this.complete()) throw new KvDecodeError(`KV snapshot has trailing bytes after its last record (${bytes.byteLength - at} in this write)`);
        let length: number;
        if (this.lengthFill === 0 && bytes.byteLength - at >= recordLengthBytes) {
          length = readU32(bytes, at);
          at += recordLengthBytes;
        } else {
          const n = Math.min(recordLengthBytes - this.lengthFill, bytes.byteLength - at);
          this.lengthPrefix.set(bytes.subarray(at, at + n), this.lengthFill);
          this.lengthFill += n;
          at += n;
          if (this.lengthFill < recordLengthBytes) return;
          this.lengthFill = 0;
          length = readU32(this.lengthPrefix, 0);
        }
        this.checkLength(length);
        // A record whole in this piece is decoded in place: no copy, nothing buffered.
        if (bytes.byteLength - at >= length) {
          this.take(bytes.subarray(at, at + length));
          at += length;
          continue;
        }
        this.record = new Uint8Array(length);
        this.recordFill = 0;
      }
      const n = Math.min(this.record.byteLength - this.recordFill, bytes.byteLength - at);
      this.record.set(bytes.subarray(at, at + n), this.recordFill);
      this.recordFill += n;
      at += n;
      if (this.recordFill === this.record.byteLength) {
        const record = this.record;
        this.record = null;
        this.take(record);
      }
    }
  }

  private checkLength(length: number): void {
    // Checked before allocating: a corrupt prefix must not make us reserve gigabytes.
    if (length === 0) throw new KvDecodeError('KV snapshot has an empty record');
    if (length > this.recordBytesMax) {
      throw new KvDecodeError(
        `KV snapshot record of ${length} bytes is over this machine's ${this.recordBytesMax}-byte limit (keyBytesMax + clientIdBytesMax + valueBytesMax + headers): the image is corrupt, not format ${snapshotFormatVersion}, or written under larger limits`,
      );
    }
  }

  // Decodes one record (kvCodec copies byte strings out, so nothing aliases the caller's piece)
  // and files it by its position in the image.
  private take(bytes: Uint8Array): void {
    let t: unknown;
    try {
      t = kvCodec.decode(bytes);
    } catch (err) {
      throw new KvDecodeError(`KV snapshot record ${this.recordsRead()} is not valid CBOR: ${(err as Error).message}`);
    }
    if (!this.header) this.takeHeader(t);
    else if (this.keysRead < this.header.keyCount) this.takeKey(t);
    else this.takeSession(t);
  }

  private recordsRead(): number {
    return (this.header ? 1 : 0) + this.keysRead + this.sessionsRead;
  }

  private takeHeader(t: unknown): void {
    if (!Array.isArray(t) || t.length === 0) throw new KvDecodeError('KV snapshot header must be a CBOR array');
    if (t[0] !== snapshotFormatVersion) throw new KvDecodeError(`KV snapshot format ${String(t[0])} is not supported (expected ${snapshotFormatVersion})`);
    if (t.length !== 4) throw new KvDecodeError(`KV snapshot header must be [version, appliedIndex, keyCount, sessionCount], got ${t.length} fields`);
    this.header = { index: countField(t[1], 'applied index'), keyCount: countField(t[2], 'key count'), sessionCount: countField(t[3], 'session count') };
  }

  private takeKey(t: unknown): void {
    if (!Array.isArray(t) || t.length !== 2 || typeof t[0] !== 'string' || !(t[1] instanceof Uint8Array)) {
      throw new KvDecodeError(`KV snapshot key record ${this.keysRead} must be [key, value bytes]`);
    }
    if (this.data.has(t[0])) throw new KvDecodeError(`KV snapshot holds key ${JSON.stringify(t[0])} twice`);
    this.data.set(t[0], plainBytes(t[1]));
    this.keysRead++;
  }

  private takeSession(t: unknown): void {
    if (!Array.isArray(t) || t.length !== 3 || typeof t[0] !== 'string' || !Number.isSafeInteger(t[1]) || (t[1] as number) < 1 || !(t[2] instanceof Uint8Array)) {
      throw new KvDecodeError(`KV snapshot session record ${this.sessionsRead} must be [clientId, positive seq, result bytes]`);
    }
    if (this.sessions.has(t[0])) throw new KvDecodeError(`KV snapshot holds client ${JSON.stringify(t[0])} twice`);
    this.sessions.set(t[0], { seq: t[1] as number, result: plainBytes(t[2]) });
    this.sessionsRead++;
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}
