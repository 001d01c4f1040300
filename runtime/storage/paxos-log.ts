// The durable record log of a Paxos acceptor and learner: one append-only file per node directory
// (`paxos.log`) of checksummed records — the promise (with the learner's commit), each proposal
// accepted, each chosen value learned — replayed at open into "the last record per slot wins".
//
// Why not the Raft WAL: there an entry at index i replaces the stored suffix from i on. A Paxos
// acceptor may re-accept slot s with a higher ballot while it holds acceptances of later slots,
// which must all survive; here every record stands on its own and only a later record of the same
// slot replaces it. It must never hand back a record that failed its checksum, never cut away a
// record that passes its checksum (damage followed by valid records refuses to open instead), and
// reach the disk only through the FileSystem it was opened with.
//
// File `paxos.log`:
//   header (16 B): magic "CONCURPX" | version u32 | crc u32 (of the first 12 bytes)
//   records:       crc u32 | length u32 | type u8 | body (length - 1 bytes)
// Record bodies:
//   1 PROMISE   promised u64 | commit u64            (the acceptor's promise; the chosen prefix)
//   2 ACCEPTED  slot u64 | ballot u64 | kind u8 | data (to the end of the record)
//   3 LEARNED   slot u64 | kind u8 | data
//   4 BASE      through u64                         (slots through it live in a snapshot: v2)
// A BASE record starts a compacted file (`compact` writes the whole state past a snapshot into a
// new file and renames it over the old one): records of slots at or below it are ignored.
// The crc covers length, type and body. Integers are little-endian; u64 fields hold safe integers.
// The file is created whole (header written, synced, renamed into place), so it never lacks a
// header. Nothing here knows Paxos beyond these three shapes: values are (kind, opaque bytes).
import * as path from 'node:path';
import { crc32 } from './crc32.ts';
import { checkFileSystem, nodeFs, type FileSystem } from './fs.ts';
import { fsyncDir } from './fsync-dir.ts';
import { StorageError, fsyncPolicyDefault, parseFsyncPolicy } from './rules.ts';
import type { DropReason, FsyncPolicy } from './types.ts';

export const paxosLogFileName = 'paxos.log';
/** The newest format this build writes (v2 adds BASE); it reads v1 too. */
export const paxosLogFormatVersion = 2;
const magic = Buffer.from('CONCURPX', 'ascii');
const headerBytes = 16;
const recordHeaderBytes = 8; // crc + length
const typeBytes = 1;

const enum RecordType {
  Promise = 1,
  Accepted = 2,
  Learned = 3,
  Base = 4,
}

const promiseBodyBytes = 16;
const acceptedFixedBytes = 17; // slot u64 + ballot u64 + kind u8
const learnedFixedBytes = 9; // slot u64 + kind u8
const baseBodyBytes = 8;

/** A value as the log keeps it: the protocol's kind tag and opaque bytes. */
export interface DurableValue {
  readonly kind: number;
  readonly data: Uint8Array;
}

export interface DurableAccepted {
  readonly slot: number;
  readonly ballot: number;
  readonly value: DurableValue;
}

export interface DurableLearned {
  readonly slot: number;
  readonly value: DurableValue;
}

export interface DurablePromise {
  readonly promised: number;
  readonly commit: number;
}

export interface PaxosLogDropped {
  reason: Exclude<DropReason, 'invalid' | 'bad-header'>;
  /** What exactly was wrong, for a person. */
  detail: string;
  /** Byte offset where the first bad record started; the file was cut there. */
  offset: number;
  /** Bytes discarded. */
  bytes: number;
}

export interface PaxosLogReport {
  file: string;
  recordsReplayed: number;
  bytesReplayed: number;
  /** Slots with an accepted proposal, and with a learned value, after replay. */
  accepted: number;
  learned: number;
  /** Slots through this one were compacted into a snapshot (0: never compacted). */
  compactedThrough: number;
  /** null when every byte on disk was accepted. */
  dropped: PaxosLogDropped | null;
  /** One line a caller can print as is. */
  summary: string;
}

/**
 * What replay found, in the shape a Paxos core's storage interface reads at start
 * (`initialState`, `accepted`, `learned`): hand it to the core, then drop it.
 */
export interface PaxosLogRecovered {
  initialState(): DurablePromise;
  /** Slots through this one are not in the log: the node must start from a snapshot at or past it. */
  readonly compactedThrough: number;
  accepted(): Iterable<DurableAccepted>;
  learned(): Iterable<DurableLearned>;
  readonly report: PaxosLogReport;
}

export interface PaxosLogOptions {
  /** The node's directory; created if missing. */
  dir: string;
  fsync?: FsyncPolicy;
  fs?: FileSystem;
}

export interface PaxosLogStats {
  writeCalls: number;
  bytesWritten: number;
  fsyncs: number;
  records: number;
  /** Rewrites of the file after a snapshot. */
  compactions: number;
}

const u64Max = Number.MAX_SAFE_INTEGER;
const two32 = 2 ** 32;

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function readU64(b: Uint8Array, at: number): number {
  return readU32(b, at) + readU32(b, at + 4) * two32;
}

function checkCount(what: string, n: number, min: number): void {
  if (!(Number.isInteger(n) && n >= min && n <= u64Max)) throw new StorageError('BAD_ENTRY', `paxos log: ${what} must be an integer from ${min} to ${u64Max}, got ${String(n)}`);
}

function checkKind(kind: number): void {
  if (!(Number.isInteger(kind) && kind >= 0 && kind <= 255)) throw new StorageError('BAD_ENTRY', `paxos log: a value's kind must be an integer from 0 to 255, got ${String(kind)}`);
}

/** Records assembled into one growing buffer, so a Ready batch costs one write. */
class RecordBuffer {
  buf = Buffer.allocUnsafe(1 << 16);
  len = 0;
  records = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private u32(v: number): void {
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }

  private u64(v: number): void {
    this.buf.writeUInt32LE(v % two32, this.len);
    this.buf.writeUInt32LE(Math.floor(v / two32), this.len + 4);
    this.len += 8;
  }

  /** Starts a record of `bodyBytes`; returns where it starts (for finish). */
  private begin(type: RecordType, bodyBytes: number): number {
    this.reserve(recordHeaderBytes + typeBytes + bodyBytes);
    const at = this.len;
    this.len += 4; // crc, filled in by finish
    this.u32(typeBytes + bodyBytes);
    this.buf[this.len++] = type;
    return at;
  }

  private finish(at: number): void {
    this.buf.writeUInt32LE(crc32(this.buf.subarray(at + 4, this.len)), at);
    this.records++;
  }

  promise(p: DurablePromise): void {
    const at = this.begin(RecordType.Promise, promiseBodyBytes);
    this.u64(p.promised);
    this.u64(p.commit);
    this.finish(at);
  }

  accepted(a: DurableAccepted): void {
    const at = this.begin(RecordType.Accepted, acceptedFixedBytes + a.value.data.length);
    this.u64(a.slot);
    this.u64(a.ballot);
    this.buf[this.len++] = a.value.kind;
    this.buf.set(a.value.data, this.len);
    this.len += a.value.data.length;
    this.finish(at);
  }

  base(through: number): void {
    const at = this.begin(RecordType.Base, baseBodyBytes);
    this.u64(through);
    this.finish(at);
  }

  learned(c: DurableLearned): void {
    const at = this.begin(RecordType.Learned, learnedFixedBytes + c.value.data.length);
    this.u64(c.slot);
    this.buf[this.len++] = c.value.kind;
    this.buf.set(c.value.data, this.len);
    this.len += c.value.data.length;
    this.finish(at);
  }

  clear(): void {
    this.len = 0;
    this.records = 0;
    // A huge batch (a catch-up of many values) should not pin its buffer for the node's life.
    if (this.buf.length > 1 << 24) this.buf = Buffer.allocUnsafe(1 << 16);
  }
}

// ---------------------------------------------------------------------------------------------
// Recovery

interface Stop {
  reason: 'torn' | 'corrupt' | 'invalid';
  detail: string;
  offset: number;
}

class Replay {
  promised = 0;
  commit = 0;
  base = 0;
  readonly accepted = new Map<number, DurableAccepted>();
  readonly learned = new Map<number, DurableLearned>();
  records = 0;

  /** Applies one record that passed its checksum; returns a complaint when it makes no sense. */
  apply(type: number, b: Buffer, from: number, end: number): string | null {
    const n = end - from;
    switch (type) {
      case RecordType.Promise: {
        if (n !== promiseBodyBytes) return `a promise record of ${n} body bytes (expected ${promiseBodyBytes})`;
        const promised = readU64(b, from);
        const commit = readU64(b, from + 8);
        if (promised > u64Max || commit > u64Max) return 'a promise record with a number beyond 2^53';
        if (promised < this.promised) return `a promise record of ballot ${promised} after one of ballot ${this.promised}: promises never go back`;
        this.promised = promised;
        this.commit = commit;
        break;
      }
      case RecordType.Accepted: {
        if (n < acceptedFixedBytes) return `an accepted record of ${n} body bytes (at least ${acceptedFixedBytes} expected)`;
        const slot = readU64(b, from);
        const ballot = readU64(b, from + 8);
        if (slot < 1 || slot > u64Max || ballot < 1 || ballot > u64Max) return `an accepted record with slot ${slot} and ballot ${ballot} (both must be from 1 to 2^53)`;
        if (slot <= this.base) break;
        const value = { kind: b[from + 16]!, data: Uint8Array.prototype.slice.call(b, from + acceptedFixedBytes, end) };
        this.accepted.set(slot, { slot, ballot, value });
        break;
      }
      case RecordType.Learned: {
        if (n < learnedFixedBytes) return `a learned record of ${n} body bytes (at least ${learnedFixedBytes} expected)`;
        const slot = readU64(b, from);
        if (slot < 1 || slot > u64Max) return `a learned record with slot ${slot} (must be from 1 to 2^53)`;
        if (slot <= this.base) break;
        const value = { kind: b[from + 8]!, data: Uint8Array.prototype.slice.call(b, from + learnedFixedBytes, end) };
        this.learned.set(slot, { slot, value });
        break;
      }
      case RecordType.Base: {
        if (n !== baseBodyBytes) return `a base record of ${n} body bytes (expected ${baseBodyBytes})`;
        const through = readU64(b, from);
        if (through > u64Max) return 'a base record with a slot beyond 2^53';
        if (through < this.base) return `a base record of slot ${through} after one of slot ${this.base}: compaction never goes back`;
        this.base = through;
        for (const s of this.accepted.keys()) if (s <= through) this.accepted.delete(s);
        for (const s of this.learned.keys()) if (s <= through) this.learned.delete(s);
        break;
      }
      default:
        return `a record of unknown type ${type}`;
    }
    this.records++;
    return null;
  }
}

/** The end of a record at `p` that passes its checksum, or -1. */
function validRecordEnd(b: Buffer, p: number): number {
  if (p + recordHeaderBytes + typeBytes > b.length) return -1;
  const len = readU32(b, p + 4);
  if (len < typeBytes || len > b.length - p - recordHeaderBytes) return -1;
  const end = p + recordHeaderBytes + len;
  return crc32(b.subarray(p + 4, end)) === readU32(b, p) ? end : -1;
}

/** The first offset at or after `from` where a record passing its checksum starts, or -1: tried at
 * every byte, so a damaged length field cannot hide the records behind it. */
function findValidRecord(b: Buffer, from: number): number {
  for (let p = from; p + recordHeaderBytes + typeBytes <= b.length; p++) {
    const t = b[p + recordHeaderBytes]!;
    if (t < RecordType.Promise || t > RecordType.Base) continue;
    if (validRecordEnd(b, p) >= 0) return p;
  }
  return -1;
}

function allZero(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function replayRecords(b: Buffer, r: Replay): Stop | null {
  let p = headerBytes;
  while (p < b.length) {
    const remaining = b.length - p;
    if (remaining < recordHeaderBytes + typeBytes) return { reason: 'torn', detail: `${remaining} trailing bytes, fewer than a record header`, offset: p };
    const len = readU32(b, p + 4);
    if (len < typeBytes || len > remaining - recordHeaderBytes) {
      if (allZero(b, p)) return { reason: 'torn', detail: `zero-filled tail of ${remaining} bytes`, offset: p };
      if (len >= typeBytes) return { reason: 'torn', detail: `record of ${len} bytes extends past the end of the file`, offset: p };
      return { reason: 'corrupt', detail: `record length field ${len} is impossible`, offset: p };
    }
    const end = p + recordHeaderBytes + len;
    if (crc32(b.subarray(p + 4, end)) !== readU32(b, p)) {
      if (allZero(b, p)) return { reason: 'torn', detail: `zero-filled tail of ${remaining} bytes`, offset: p };
      return { reason: 'corrupt', detail: `checksum mismatch in a ${len}-byte record`, offset: p };
    }
    const complaint = r.apply(b[p + recordHeaderBytes]!, b, p + recordHeaderBytes + typeBytes, end);
    if (complaint !== null) return { reason: 'invalid', detail: complaint, offset: p };
    p = end;
  }
  return null;
}

function headerBuffer(): Buffer {
  const h = Buffer.alloc(headerBytes);
  magic.copy(h, 0);
  h.writeUInt32LE(paxosLogFormatVersion, 8);
  h.writeUInt32LE(crc32(h.subarray(0, 12)), 12);
  return h;
}

function corruptError(file: string, stop: Stop): StorageError {
  const what =
    stop.reason === 'invalid'
      ? `a record that passes its checksum but cannot belong to this log: ${stop.detail}`
      : `${stop.detail}, followed by records that pass their checksum`;
  return new StorageError(
    'CORRUPT',
    `Paxos log ${file} is damaged at byte offset ${stop.offset}: ${what}. This is damage on disk, not a torn write, ` +
      `and nothing was changed. This node must not start as an acceptor: it may have lost promises and acceptances ` +
      `that a chosen value depends on. To recover, move ${path.dirname(file)} aside (keep it for inspection) and start ` +
      `this node with an empty directory so it relearns from the others; that is safe only while a majority of the ` +
      `other nodes are healthy, because the node forgets what it promised and accepted.`,
  );
}

/**
 * The durable log of one Paxos node. `open` recovers (cutting a torn tail, refusing damage) and
 * leaves it ready to append; `recovered` is what replay found, for the core's constructor.
 */
export class PaxosLog {
  readonly policy: FsyncPolicy;
  readonly file: string;
  private readonly fs: FileSystem;
  private fd: number;
  private position: number;
  private readonly pending = new RecordBuffer();
  private recoveredState: PaxosLogRecovered | null;
  private closed = false;
  /** Bytes written since the last fsync. */
  private unsynced = false;
  private failed: Error | null = null;
  private readonly counters: PaxosLogStats = { writeCalls: 0, bytesWritten: 0, fsyncs: 0, records: 0, compactions: 0 };

  /** Slots through this one were compacted away (the snapshot holds them). */
  compactedThrough: number;

  private constructor(fs: FileSystem, file: string, fd: number, position: number, policy: FsyncPolicy, recovered: PaxosLogRecovered, compactedThrough: number) {
    this.compactedThrough = compactedThrough;
    this.fs = fs;
    this.file = file;
    this.fd = fd;
    this.position = position;
    this.policy = policy;
    this.recoveredState = recovered;
  }

  /** Opens (creating if needed) `paxos.log` in `dir`; a torn tail is cut and reported, damage refused ('CORRUPT'). */
  static open(options: PaxosLogOptions): PaxosLog {
    if (options === null || typeof options !== 'object' || typeof options.dir !== 'string' || options.dir === '') {
      throw new StorageError('BAD_OPTION', 'PaxosLog.open expects { dir, fsync?, fs? } with a directory path');
    }
    const fs = options.fs === undefined ? nodeFs : checkFileSystem(options.fs, 'PaxosLog.open');
    const policy = options.fsync === undefined ? fsyncPolicyDefault : parseFsyncPolicy(options.fsync, 'paxos log fsync');
    const dir = options.dir;
    let st: ReturnType<FileSystem['statSync']> | undefined;
    try {
      st = fs.statSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st && !st.isDirectory()) throw new StorageError('NOT_A_DIRECTORY', `storage path ${dir} exists but is not a directory; pass a directory path (it is created if missing)`);
    if (!st) fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, paxosLogFileName);

    let bytes: Buffer | null = null;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (bytes === null || (bytes.length < headerBytes && allZeroOrHeaderPrefix(bytes))) {
      // New (or a header cut short while it was being created, which the rename makes unlikely).
      PaxosLog.create(fs, dir, file);
      bytes = fs.readFileSync(file);
    }
    const have = Math.min(bytes.length, magic.length);
    if (!bytes.subarray(0, have).equals(magic.subarray(0, have))) {
      throw new StorageError('BAD_FORMAT', `${file} is not a concur Paxos log (its first bytes are not "CONCURPX"); move the file out of the directory or point the node at another directory`);
    }
    if (crc32(bytes.subarray(0, 12)) !== readU32(bytes, 12)) {
      throw new StorageError('CORRUPT', `Paxos log ${file} has a damaged header (checksum mismatch); nothing was changed. Move ${dir} aside and start this node with an empty directory so it relearns from the others (safe only while a majority of the other nodes are healthy).`);
    }
    const version = readU32(bytes, 8);
    if (version > paxosLogFormatVersion) {
      throw new StorageError('NEWER_FORMAT', `${file} uses Paxos log format v${version} but this concur reads up to v${paxosLogFormatVersion}; upgrade concur, or point the node at another directory`);
    }
    if (version < 1) throw new StorageError('BAD_FORMAT', `${file} has Paxos log format v${version}, which never existed`);

    const replay = new Replay();
    const stop = replayRecords(bytes, replay);
    let dropped: PaxosLogDropped | null = null;
    let end = bytes.length;
    if (stop !== null) {
      if (stop.reason === 'invalid') throw corruptError(file, stop);
      // A tear is the end of the last write: nothing that passes its checksum may follow it.
      const after = findValidRecord(bytes, stop.offset + 1);
      if (after >= 0) throw corruptError(file, stop);
      dropped = { reason: stop.reason, detail: stop.detail, offset: stop.offset, bytes: bytes.length - stop.offset };
      end = stop.offset;
      // Cut for good, whatever the policy: a repair must not be redone differently next time.
      const fd = fs.openSync(file, 'r+');
      try {
        fs.ftruncateSync(fd, end);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    const report: PaxosLogReport = {
      file,
      recordsReplayed: replay.records,
      bytesReplayed: end,
      accepted: replay.accepted.size,
      learned: replay.learned.size,
      compactedThrough: replay.base,
      dropped,
      summary:
        `replayed ${replay.records} records (${end} bytes) from ${file}: promised ballot ${replay.promised}, ` +
        `${replay.accepted.size} slots accepted, ${replay.learned.size} learned` +
        (replay.base > 0 ? `, compacted through slot ${replay.base}` : '') +
        (dropped === null ? '' : `; cut a ${dropped.reason === 'torn' ? 'torn' : 'damaged'} tail of ${dropped.bytes} bytes at offset ${dropped.offset} (${dropped.detail})`),
    };
    const promise: DurablePromise = { promised: replay.promised, commit: replay.commit };
    const recovered: PaxosLogRecovered = {
      initialState: () => promise,
      compactedThrough: replay.base,
      accepted: () => replay.accepted.values(),
      learned: () => replay.learned.values(),
      report,
    };
    const fd = fs.openSync(file, 'r+');
    return new PaxosLog(fs, file, fd, end, policy, recovered, replay.base);
  }

  private static create(fs: FileSystem, dir: string, file: string): void {
    writeWhole(fs, dir, file, headerBuffer());
  }

  /**
   * A snapshot through `through` is durable: replace the file by one holding only what lies past
   * it — a BASE record, the promise, and the accepted and learned values of later slots (the
   * caller's whole durable state past the snapshot, which it must hand over complete). Written to
   * a temporary file, synced and renamed over the log, so a crash leaves the old file or the new
   * one, never a mix. Cost: the state past the snapshot, not the history.
   */
  compact(through: number, promise: DurablePromise, accepted: Iterable<DurableAccepted>, learned: Iterable<DurableLearned>): void {
    this.checkOpen();
    checkCount('compaction slot', through, 0);
    if (through < this.compactedThrough) throw new StorageError('BAD_ENTRY', `paxos log ${this.file}: compact(${through}) goes back past slot ${this.compactedThrough}, compacted earlier`);
    // What is buffered belongs to the old file's history; it is in the state handed over.
    this.sync();
    const b = new RecordBuffer();
    b.base(through);
    b.promise(promise);
    for (const a of accepted) if (a.slot > through) b.accepted(a);
    for (const c of learned) if (c.slot > through) b.learned(c);
    const whole = Buffer.concat([headerBuffer(), b.buf.subarray(0, b.len)]);
    this.guard(() => {
      writeWhole(this.fs, path.dirname(this.file), this.file, whole);
      this.fs.closeSync(this.fd);
      this.fd = this.fs.openSync(this.file, 'r+');
    });
    this.position = whole.length;
    this.unsynced = false;
    this.compactedThrough = through;
    this.counters.compactions++;
  }

  /** What replay found (promise, accepted, learned), handed over once: the core copies it at start. */
  load(): PaxosLogRecovered {
    const r = this.recoveredState;
    if (r === null) throw new StorageError('ALREADY_LOADED', `paxos log ${this.file}: load() was already called; recovered state is handed over once`);
    this.recoveredState = null;
    return r;
  }

  /**
   * Buffers a Ready's durable part: the promise (when it changed), then the proposals accepted,
   * then the values learned. Written by the next `sync` or `flush`.
   */
  append(promise: DurablePromise | null, accepted: readonly DurableAccepted[], learned: readonly DurableLearned[]): void {
    this.checkOpen();
    if (promise !== null) {
      checkCount('promised ballot', promise.promised, 0);
      checkCount('commit', promise.commit, 0);
      this.pending.promise(promise);
    }
    for (const a of accepted) {
      checkCount('accepted slot', a.slot, 1);
      checkCount('accepted ballot', a.ballot, 1);
      checkKind(a.value.kind);
      this.pending.accepted(a);
    }
    for (const c of learned) {
      checkCount('learned slot', c.slot, 1);
      checkKind(c.value.kind);
      this.pending.learned(c);
    }
    if (this.policy === 'always' && this.pending.len > 0) this.sync();
  }

  /** Writes what is buffered and makes it durable (no fsync under the `never` policy). */
  sync(): void {
    this.write();
    if (this.policy === 'never' || !this.unsynced) return;
    this.guard(() => this.fs.fdatasyncSync(this.fd));
    this.unsynced = false;
    this.counters.fsyncs++;
  }

  /** Writes what is buffered without an fsync: it survives a process crash, not a power loss. */
  flush(): void {
    this.write();
  }

  private write(): void {
    this.checkOpen();
    const p = this.pending;
    if (p.len === 0) return;
    this.guard(() => {
      let done = 0;
      while (done < p.len) done += this.fs.writeSync(this.fd, p.buf, done, p.len - done, this.position + done);
    });
    this.position += p.len;
    this.unsynced = true;
    this.counters.writeCalls++;
    this.counters.bytesWritten += p.len;
    this.counters.records += p.records;
    p.clear();
  }

  /** A failed write or fsync leaves the file in an unknown state: nothing more may be promised from it. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.failed = e as Error;
      throw new StorageError('FAILED', `paxos log ${this.file}: ${(e as Error).message}; the node must stop (what it promised may not be durable)`, { cause: e });
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageError('CLOSED', `paxos log ${this.file} is closed`);
    if (this.failed !== null) throw new StorageError('FAILED', `paxos log ${this.file} failed earlier (${this.failed.message}); the node must stop`);
  }

  /** Bytes in the file (after recovery's cut, plus what was written since). */
  get bytes(): number {
    return this.position;
  }

  stats(): PaxosLogStats {
    return { ...this.counters };
  }

  /** Writes what is buffered, makes it durable unless the policy is `never`, and closes the file. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.failed === null) this.sync();
    } finally {
      this.closed = true;
      this.fs.closeSync(this.fd);
    }
  }
}

/** Writes `bytes` as the whole of `file`: a temporary file, synced, renamed into place, the directory synced. */
function writeWhole(fs: FileSystem, dir: string, file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(dir, fs);
}

function allZeroOrHeaderPrefix(b: Buffer): boolean {
  if (allZero(b, 0)) return true;
  const h = headerBuffer();
  return b.equals(h.subarray(0, b.length));
}
