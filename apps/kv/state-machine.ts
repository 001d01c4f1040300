// The KV store's deterministic state machine: applies committed commands in log order, keeps
// the client session table that makes retries apply at most once, and snapshots/restores.
// Must never read the clock, randomness, I/O or anything but its inputs: every replica must end
// in the same state from the same log.
import {
  type KvCommand,
  type KvLimits,
  type KvResult,
  KvDecodeError,
  commandProblem,
  decodeCommand,
  encodeResult,
  kvCodec,
  kvEncode,
  kvLimitsDefault,
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
}

export const kvStateMachineSettingsDefault: Readonly<KvStateMachineSettings> = Object.freeze({
  ...kvLimitsDefault,
  sessionsMax: 10_000,
  sessionBytesMax: 64 * 1024 * 1024,
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

interface SessionEntry {
  seq: number;
  result: Uint8Array;
}

// Per-entry overhead counted against sessionBytesMax besides the result and id bytes, so a
// flood of tiny results still has a byte cost.
const sessionEntryOverheadBytes = 64;

const snapshotFormatVersion = 1;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

function checkSettings(s: KvStateMachineSettings): void {
  for (const name of ['keyBytesMax', 'valueBytesMax', 'clientIdBytesMax', 'sessionsMax', 'sessionBytesMax'] as const) {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`KvStateMachine: ${name} must be a positive integer, got ${String(v)}`);
  }
}

export class KvStateMachine {
  readonly settings: Readonly<KvStateMachineSettings>;
  private data = new Map<string, Uint8Array>();
  // Map iteration order is insertion order: re-inserting on use keeps it least-recently-used first.
  private sessions = new Map<string, SessionEntry>();
  private sessionBytes = 0;
  private appliedIndex = 0;

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
    return this.sessionBytes;
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
    if (!Number.isSafeInteger(index) || index <= this.appliedIndex) {
      // Applying an entry twice or out of order would silently fork replicas: fail loudly.
      throw new Error(`KvStateMachine.apply: index ${index} is not after the last applied index ${this.appliedIndex}`);
    }
    this.appliedIndex = index;

    let cmd: KvCommand;
    try {
      cmd = decodeCommand(command);
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
        this.touch(cmd.clientId, session);
        return session.result;
      }
      if (cmd.seq < session.seq) {
        return encodeResult({
          type: 'error',
          code: 'stale-request',
          message: `stale request: client ${cmd.clientId} sent seq ${cmd.seq} after seq ${session.seq} was applied`,
        });
      }
    }

    // A copy of its own, so the cache does not pin the encoder's larger working buffer and
    // sessionBytesMax counts what is really held.
    const result = encodeResult(this.write(index, cmd)).slice();
    this.remember(cmd.clientId, { seq: cmd.seq, result });
    return result;
  }

  private write(index: number, cmd: Exclude<KvCommand, { op: 'get' }>): KvResult {
    switch (cmd.op) {
      case 'put':
        this.data.set(cmd.key, cmd.value);
        return { type: 'written', index };
      case 'delete':
        return { type: 'deleted', index, existed: this.data.delete(cmd.key) };
      case 'cas': {
        const current = this.data.get(cmd.key) ?? null;
        const matches = cmd.expect === null ? current === null : current !== null && sameBytes(current, cmd.expect);
        if (!matches) return { type: 'cas-failed', current };
        this.data.set(cmd.key, cmd.value);
        return { type: 'written', index };
      }
    }
  }

  private entryBytes(clientId: string, entry: SessionEntry): number {
    return Buffer.byteLength(clientId, 'utf8') + entry.result.byteLength + sessionEntryOverheadBytes;
  }

  private touch(clientId: string, entry: SessionEntry): void {
    this.sessions.delete(clientId);
    this.sessions.set(clientId, entry);
  }

  private remember(clientId: string, entry: SessionEntry): void {
    const old = this.sessions.get(clientId);
    if (old) {
      this.sessionBytes -= this.entryBytes(clientId, old);
      this.sessions.delete(clientId);
    }
    this.sessions.set(clientId, entry);
    this.sessionBytes += this.entryBytes(clientId, entry);
    this.evict();
  }

  // Evicts least recently used clients until both bounds hold. The newest entry always stays,
  // even if alone it exceeds sessionBytesMax: the request being answered must be retry-safe.
  private evict(): void {
    for (const [clientId, entry] of this.sessions) {
      if (this.sessions.size <= 1) break;
      if (this.sessions.size <= this.settings.sessionsMax && this.sessionBytes <= this.settings.sessionBytesMax) break;
      this.sessions.delete(clientId);
      this.sessionBytes -= this.entryBytes(clientId, entry);
    }
  }

  /**
   * The whole state as bytes: same state, same bytes (keys sorted, sessions in LRU order, which
   * is itself determined by the log). Pair it with lastAppliedIndex for log compaction.
   */
  snapshot(): Uint8Array {
    const keys = [...this.data.keys()].sort();
    const data = keys.map((k) => [k, this.data.get(k)!]);
    const sessions = [...this.sessions].map(([clientId, e]) => [clientId, e.seq, e.result]);
    return kvEncode([snapshotFormatVersion, this.appliedIndex, data, sessions]);
  }

  /**
   * Replaces the whole state with a snapshot's. Throws KvDecodeError on a malformed snapshot and
   * then leaves the current state untouched. Sessions beyond this machine's bounds are evicted.
   */
  restore(bytes: Uint8Array): void {
    let t: unknown;
    try {
      t = kvCodec.decode(bytes);
    } catch (err) {
      throw new KvDecodeError(`KV snapshot is not valid CBOR: ${(err as Error).message}`);
    }
    if (!Array.isArray(t) || t.length !== 4) throw new KvDecodeError('KV snapshot must be a 4-field array');
    const [version, appliedIndex, data, sessions] = t as unknown[];
    if (version !== snapshotFormatVersion) throw new KvDecodeError(`KV snapshot format ${String(version)} is not supported (expected ${snapshotFormatVersion})`);
    if (typeof appliedIndex !== 'number' || !Number.isSafeInteger(appliedIndex) || appliedIndex < 0) throw new KvDecodeError('KV snapshot index must be a non-negative integer');
    if (!Array.isArray(data) || !Array.isArray(sessions)) throw new KvDecodeError('KV snapshot data and sessions must be arrays');

    const view = (b: Uint8Array) => (b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    const nextData = new Map<string, Uint8Array>();
    for (const pair of data) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || !(pair[1] instanceof Uint8Array)) {
        throw new KvDecodeError('KV snapshot data entries must be [key, bytes]');
      }
      nextData.set(pair[0], view(pair[1]));
    }
    const nextSessions = new Map<string, SessionEntry>();
    for (const s of sessions) {
      if (!Array.isArray(s) || s.length !== 3 || typeof s[0] !== 'string' || !Number.isSafeInteger(s[1]) || !(s[2] instanceof Uint8Array)) {
        throw new KvDecodeError('KV snapshot session entries must be [clientId, seq, result bytes]');
      }
      nextSessions.set(s[0], { seq: s[1] as number, result: view(s[2]) });
    }

    this.data = nextData;
    this.sessions = nextSessions;
    this.appliedIndex = appliedIndex;
    this.sessionBytes = 0;
    for (const [clientId, e] of this.sessions) this.sessionBytes += this.entryBytes(clientId, e);
    this.evict();
  }
}
