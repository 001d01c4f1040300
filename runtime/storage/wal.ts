// The write-ahead log: one directory per node, append-only segment files of checksummed records
// (hard state, entries, truncation, compaction), replayed on open. It must never hand back a
// record that failed its checksum, never write past damage it found, and never decode entry data.
//
// Segment file `wal-<seq, 16 digits>.log`:
//   header (32 B): magic "CONCURWL" | version u32 | reserved u32 | seq u64 | reserved u32 | crc u32
//   records:       crc u32 | length u32 | type u8 | body (length - 1 bytes)
// The record crc covers length, type and body, so a damaged length is caught too. Integers are
// little-endian; u64 fields hold safe integers (< 2^53). Every segment opens with SEGMENT_START
// (log position and compaction point) and HARD_STATE, so any prefix of segments can be deleted
// after compaction and the rest still replays on its own.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './crc32.ts';
import {
  StorageError,
  checkAppendAt,
  checkEntries,
  checkHardState,
  checkIntOption,
  checkOptionNames,
  copyHardState,
  emptyHardState,
  fsyncPolicyDefault,
  parseFsyncPolicy,
  checkCompactIndex,
} from './rules.ts';
import type {
  DropReason,
  DroppedTail,
  FsyncPolicy,
  HardState,
  LogEntry,
  Recovered,
  RecoveryReport,
  Storage,
  StorageStats,
  WalOptions,
} from './types.ts';

export const walFormatVersion = 1;
const magic = Buffer.from('CONCURWL', 'ascii');
const headerBytes = 32;
const recordHeaderBytes = 8; // crc + length
const typeBytes = 1;
const entriesBodyFixedBytes = 12; // firstIndex u64 + count u32
const entryFixedBytes = 16; // term u64 + kind u32 + length u32
const hardStateFixedBytes = 28; // term, vote, commit u64 + extra length u32

const enum RecordType {
  HardState = 1,
  Entries = 2,
  Truncate = 3,
  Compact = 4,
  SegmentStart = 5,
}

export const walDefaults = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 8 * 1024 * 1024,
  pendingBytesMax: 16 * 1024 * 1024,
} as const;

/** Bounds on the settings: a record must fit a segment, and a u32 length. */
const limits = {
  segmentBytesMin: 4096,
  segmentBytesMax: 2 ** 31,
  recordBytesMin: 1024,
  recordBytesMax: 2 ** 30,
  pendingBytesMin: 0,
  pendingBytesMax: 2 ** 31,
} as const;

const segmentNamePattern = /^wal-(\d{16})\.log$/;
const segmentName = (seq: number): string => `wal-${String(seq).padStart(16, '0')}.log`;

const two32 = 2 ** 32;

// ---------------------------------------------------------------------------------------------
// Encoding: records are assembled into one growing buffer per batch so a batch costs one write.

class RecordBuffer {
  buf: Buffer;
  view: DataView;
  len = 0;
  constructor(initialBytes: number) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
  reserve(extraBytes: number): void {
    const need = this.len + extraBytes;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
  u32(pos: number, n: number): void {
    this.view.setUint32(pos, n, true);
  }
  u64(pos: number, n: number): void {
    this.view.setUint32(pos, n >>> 0, true);
    this.view.setUint32(pos + 4, Math.floor(n / two32), true);
  }
  /** Opens a record of known body size; returns where the body starts. */
  begin(type: RecordType, bodyBytes: number): number {
    this.reserve(recordHeaderBytes + typeBytes + bodyBytes);
    const at = this.len;
    this.u32(at + 4, typeBytes + bodyBytes);
    this.buf[at + 8] = type;
    this.len = at + recordHeaderBytes + typeBytes + bodyBytes;
    return at + recordHeaderBytes + typeBytes;
  }
  /** Seals the record that starts at `at` (its crc covers length, type and body). */
  seal(at: number): void {
    this.u32(at, crc32(this.buf.subarray(at + 4, this.len)));
  }
  reset(): void {
    this.len = 0;
  }
}

function encodeHardState(out: RecordBuffer, hs: HardState): void {
  const extraBytes = hs.extra?.length ?? 0;
  const at = out.len;
  let p = out.begin(RecordType.HardState, hardStateFixedBytes + extraBytes);
  out.u64(p, hs.term);
  out.u64(p + 8, hs.vote);
  out.u64(p + 16, hs.commit);
  out.u32(p + 24, extraBytes);
  p += hardStateFixedBytes;
  if (hs.extra) out.buf.set(hs.extra, p);
  out.seal(at);
}

function encodeIndexRecord(out: RecordBuffer, type: RecordType, index: number): void {
  const at = out.len;
  out.u64(out.begin(type, 8), index);
  out.seal(at);
}

function encodeSegmentStart(out: RecordBuffer, nextIndex: number, compactedIndex: number): void {
  const at = out.len;
  const p = out.begin(RecordType.SegmentStart, 16);
  out.u64(p, nextIndex);
  out.u64(p + 8, compactedIndex);
  out.seal(at);
}

/** Packs entries[from, to) into one ENTRIES record. The entry data are copied exactly once, here. */
function encodeEntries(out: RecordBuffer, entries: readonly LogEntry[], from: number, to: number, bodyBytes: number): void {
  const at = out.len;
  let p = out.begin(RecordType.Entries, bodyBytes);
  const buf = out.buf;
  const view = out.view;
  view.setUint32(p, entries[from]!.index >>> 0, true);
  view.setUint32(p + 4, Math.floor(entries[from]!.index / two32), true);
  view.setUint32(p + 8, to - from, true);
  p += entriesBodyFixedBytes;
  for (let i = from; i < to; i++) {
    const e = entries[i]!;
    const n = e.data.length;
    view.setUint32(p, e.term >>> 0, true);
    view.setUint32(p + 4, Math.floor(e.term / two32), true);
    view.setUint32(p + 8, e.kind, true);
    view.setUint32(p + 12, n, true);
    p += entryFixedBytes;
    // A loop beats TypedArray.set for the tiny commands that dominate consensus logs.
    if (n <= 32) for (let k = 0; k < n; k++) buf[p + k] = e.data[k]!;
    else buf.set(e.data, p);
    p += n;
  }
  out.seal(at);
}

function encodeHeader(out: RecordBuffer, seq: number): void {
  out.reserve(headerBytes);
  const at = out.len;
  magic.copy(out.buf, at);
  out.u32(at + 8, walFormatVersion);
  out.u32(at + 12, 0);
  out.u64(at + 16, seq);
  out.u32(at + 24, 0);
  out.u32(at + 28, crc32(out.buf.subarray(at, at + 28)));
  out.len = at + headerBytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding and replay.

const readU32 = (b: Buffer, p: number): number => b.readUInt32LE(p);
const readU64 = (b: Buffer, p: number): number => b.readUInt32LE(p) + b.readUInt32LE(p + 4) * two32;

interface Stop {
  reason: DropReason;
  detail: string;
  offset: number;
}

interface SegmentInfo {
  seq: number;
  name: string;
  /** Highest entry index ever written into this segment (0 if none): it may be deleted once
   * compaction passes it. */
  maxIndex: number;
}

/** The log as rebuilt by replay; entries reference the segment buffers read (no copy). */
class Replay {
  hardState: HardState = emptyHardState();
  entries: LogEntry[] = [];
  start = 1; // index of entries[0], or of the next entry when empty
  compactedIndex = 0;
  records = 0;
  sawRecord = false;

  get next(): number {
    return this.start + this.entries.length;
  }

  /** Applies one checksummed record; returns a complaint when it cannot belong to this log. */
  apply(type: number, b: Buffer, p: number, end: number, seg: SegmentInfo): string | null {
    const bodyBytes = end - p;
    switch (type) {
      case RecordType.HardState: {
        if (bodyBytes < hardStateFixedBytes) return `hard-state record too short (${bodyBytes} bytes)`;
        const extraBytes = readU32(b, p + 24);
        if (hardStateFixedBytes + extraBytes !== bodyBytes) return 'hard-state record length does not match its extra bytes';
        const hs: HardState = { term: readU64(b, p), vote: readU64(b, p + 8), commit: readU64(b, p + 16) };
        if (extraBytes > 0) hs.extra = new Uint8Array(b.buffer, b.byteOffset + p + hardStateFixedBytes, extraBytes);
        this.hardState = hs;
        break;
      }
      case RecordType.Entries: {
        if (bodyBytes < entriesBodyFixedBytes) return `entries record too short (${bodyBytes} bytes)`;
        const first = readU64(b, p);
        const count = readU32(b, p + 8);
        if (first !== this.next) {
          return `entries record starts at index ${first} but the log continues at ${this.next}`;
        }
        let q = p + entriesBodyFixedBytes;
        const batch: LogEntry[] = new Array(count);
        for (let i = 0; i < count; i++) {
          if (q + entryFixedBytes > end) return 'entries record ends inside an entry header';
          const term = readU64(b, q);
          const kind = readU32(b, q + 8);
          const n = readU32(b, q + 12);
          q += entryFixedBytes;
          if (q + n > end) return 'entries record ends inside an entry';
          // A plain Uint8Array view: no copy, and the same type callers gave us.
          batch[i] = { index: first + i, term, kind, data: new Uint8Array(b.buffer, b.byteOffset + q, n) };
          q += n;
        }
        if (q !== end) return 'entries record has trailing bytes';
        for (const e of batch) this.entries.push(e);
        if (count > 0) seg.maxIndex = Math.max(seg.maxIndex, first + count - 1);
        break;
      }
      case RecordType.Truncate: {
        if (bodyBytes !== 8) return 'truncate record has the wrong length';
        const from = readU64(b, p);
        if (from < this.start || from > this.next) {
          return `truncate from index ${from} is outside the log [${this.start}, ${this.next - 1}]`;
        }
        this.entries.length = from - this.start;
        break;
      }
      case RecordType.Compact: {
        if (bodyBytes !== 8) return 'compact record has the wrong length';
        this.compactedIndex = Math.max(this.compactedIndex, readU64(b, p));
        break;
      }
      case RecordType.SegmentStart: {
        if (bodyBytes !== 16) return 'segment-start record has the wrong length';
        const next = readU64(b, p);
        const compacted = readU64(b, p + 8);
        if (!this.sawRecord) {
          // The first segment left after compaction: its older neighbours are gone by design.
          this.start = next;
          this.compactedIndex = compacted;
        } else if (next !== this.next) {
          return `segment starts the log at index ${next} but the previous segment ended at ${this.next - 1}`;
        }
        break;
      }
      default:
        return `unknown record type ${type} (written by a newer concur?)`;
    }
    this.sawRecord = true;
    this.records++;
    return null;
  }
}

/** Walks records from `offset` counting those whose checksum holds; stops at the first that does
 * not. Used only to size up the damage for the report. */
function countValidRecords(b: Buffer, offset: number): number {
  let n = 0;
  let p = offset;
  while (p + recordHeaderBytes <= b.length) {
    const len = readU32(b, p + 4);
    if (len < typeBytes || p + recordHeaderBytes + len > b.length) break;
    if (crc32(b.subarray(p + 4, p + recordHeaderBytes + len)) !== readU32(b, p)) break;
    n++;
    p += recordHeaderBytes + len;
  }
  return n;
}

function allZero(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Checks a segment header. Throws for files that are not ours or too new (never repaired:
 * the data may be someone else's); returns a Stop for damage recovery may cut away. */
function checkHeader(b: Buffer, seq: number, name: string, dir: string): Stop | null {
  const have = Math.min(b.length, magic.length);
  if (!b.subarray(0, have).equals(magic.subarray(0, have))) {
    throw new StorageError(
      'BAD_FORMAT',
      `${path.join(dir, name)} is not a concur WAL segment (its first bytes are not "CONCURWL"); ` +
        `move the file out of the directory or point the node at another directory`,
    );
  }
  if (b.length < headerBytes) {
    return { reason: 'torn', detail: `segment header cut short (${b.length} of ${headerBytes} bytes)`, offset: 0 };
  }
  const version = readU32(b, 8);
  if (version > walFormatVersion) {
    throw new StorageError(
      'NEWER_FORMAT',
      `${path.join(dir, name)} uses WAL format v${version} but this concur reads up to v${walFormatVersion}; ` +
        `upgrade concur, or point the node at another directory`,
    );
  }
  if (crc32(b.subarray(0, 28)) !== readU32(b, 28)) {
    return { reason: 'bad-header', detail: 'segment header checksum mismatch', offset: 0 };
  }
  if (version !== walFormatVersion) {
    throw new StorageError('BAD_FORMAT', `${path.join(dir, name)} has WAL format v${version}, which never existed`);
  }
  if (readU64(b, 16) !== seq) {
    return { reason: 'bad-header', detail: `header says segment ${readU64(b, 16)} but the file name says ${seq}`, offset: 0 };
  }
  return null;
}

/** Replays records of one segment into `r`; returns where and why it stopped, or null at a clean end. */
function replaySegment(b: Buffer, r: Replay, seg: SegmentInfo, isLast: boolean): Stop | null {
  let p = headerBytes;
  while (p < b.length) {
    const remaining = b.length - p;
    if (remaining < recordHeaderBytes) {
      return { reason: 'torn', detail: `${remaining} trailing bytes, fewer than a record header`, offset: p };
    }
    const len = readU32(b, p + 4);
    if (len < typeBytes || len > remaining - recordHeaderBytes) {
      if (allZero(b, p)) return { reason: 'torn', detail: `zero-filled tail of ${remaining} bytes`, offset: p };
      if (len >= typeBytes && isLast) {
        return { reason: 'torn', detail: `record of ${len} bytes extends past the end of the file`, offset: p };
      }
      return { reason: 'corrupt', detail: `record length field ${len} is impossible here`, offset: p };
    }
    const end = p + recordHeaderBytes + len;
    if (crc32(b.subarray(p + 4, end)) !== readU32(b, p)) {
      return { reason: 'corrupt', detail: `checksum mismatch in a ${len}-byte record`, offset: p };
    }
    const complaint = r.apply(b[p + 8]!, b, p + recordHeaderBytes + typeBytes, end, seg);
    if (complaint !== null) return { reason: 'invalid', detail: complaint, offset: p };
    p = end;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, buf: Buffer, len: number, position: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, position + done);
}

const walOptionNames = ['dir', 'fsync', 'segmentBytesMax', 'recordBytesMax', 'pendingBytesMax'] as const;

/** Opens (creating if needed) the WAL in `options.dir`, repairing a torn or damaged tail. */
export function openWal(options: WalOptions): WalStorage {
  if (options === null || typeof options !== 'object') {
    throw new StorageError('BAD_OPTION', 'openWal expects options { dir, fsync?, segmentBytesMax?, ... }');
  }
  checkOptionNames(options, walOptionNames, 'WAL');
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new StorageError('BAD_OPTION', `dir must be a non-empty path string, got ${JSON.stringify(options.dir)}`);
  }
  const settings = {
    dir: path.resolve(options.dir),
    policy: parseFsyncPolicy(options.fsync ?? fsyncPolicyDefault),
    segmentBytesMax: checkIntOption('segmentBytesMax', options.segmentBytesMax ?? walDefaults.segmentBytesMax, limits.segmentBytesMin, limits.segmentBytesMax),
    recordBytesMax: checkIntOption('recordBytesMax', options.recordBytesMax ?? walDefaults.recordBytesMax, limits.recordBytesMin, limits.recordBytesMax),
    pendingBytesMax: checkIntOption('pendingBytesMax', options.pendingBytesMax ?? walDefaults.pendingBytesMax, limits.pendingBytesMin, limits.pendingBytesMax),
  };
  return new WalStorage(settings);
}

interface WalSettings {
  dir: string;
  policy: FsyncPolicy;
  segmentBytesMax: number;
  recordBytesMax: number;
  pendingBytesMax: number;
}

export class WalStorage implements Storage {
  readonly policy: FsyncPolicy;
  readonly dir: string;
  private readonly settings: WalSettings;
  private recovered: Recovered | null;
  private loaded = false;

  // The log as the caller sees it (buffered writes included).
  private last = 0;
  private compacted = 0;
  private hs: HardState = emptyHardState();

  // What has reached the file (written, maybe not fsynced): a new segment's preamble uses it.
  private diskLast = 0;
  private diskCompacted = 0;
  private diskHardState: HardState = emptyHardState();

  private fd = -1;
  private active: SegmentInfo = { seq: 0, name: '', maxIndex: 0 };
  private activeBytes = 0;
  /** Size of the segment before any batch went in: a segment holding only that never rolls. */
  private activeStartBytes = 0;
  private sealed: SegmentInfo[] = [];
  private readonly pending = new RecordBuffer(64 * 1024);
  private pendingMaxIndex = 0;
  private unsynced = false;
  private closed = false;
  private failure: Error | null = null;
  private readonly counters: StorageStats = { writeCalls: 0, bytesWritten: 0, fsyncs: 0, segments: 0 };

  constructor(settings: WalSettings) {
    this.settings = settings;
    this.policy = settings.policy;
    this.dir = settings.dir;
    this.recovered = this.recover();
  }

  get lastIndex(): number {
    return this.last;
  }
  get firstIndex(): number {
    return this.compacted + 1;
  }
  get hardState(): HardState {
    return this.hs;
  }

  stats(): StorageStats {
    return { ...this.counters, segments: this.sealed.length + 1 };
  }

  load(): Recovered {
    this.usable();
    if (this.loaded || this.recovered === null) {
      throw new StorageError('ALREADY_LOADED', `load() was already called on ${this.dir}; it hands the recovered log over once — keep what it returned`);
    }
    const out = this.recovered;
    this.recovered = null;
    this.loaded = true;
    return out;
  }

  append(entries: readonly LogEntry[]): void {
    this.usable();
    checkEntries(entries);
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    checkAppendAt(first, this.last, this.compacted);
    const bodyBytesMax = this.settings.recordBytesMax - recordHeaderBytes - typeBytes - entriesBodyFixedBytes;
    for (let i = 0; i < entries.length; i++) {
      const n = entryFixedBytes + entries[i]!.data.length;
      if (n > bodyBytesMax) {
        throw new StorageError(
          'TOO_LARGE',
          `entry at index ${entries[i]!.index} is ${entries[i]!.data.length} bytes; with recordBytesMax ${this.settings.recordBytesMax} ` +
            `an entry may hold at most ${bodyBytesMax - entryFixedBytes} bytes — raise recordBytesMax or split the command`,
        );
      }
    }
    if (first <= this.last) encodeIndexRecord(this.pending, RecordType.Truncate, first);
    // Pack greedily into records of at most recordBytesMax.
    let from = 0;
    while (from < entries.length) {
      let body = entriesBodyFixedBytes;
      let to = from;
      while (to < entries.length) {
        const n = entryFixedBytes + entries[to]!.data.length;
        if (to > from && body + n > bodyBytesMax + entriesBodyFixedBytes) break;
        body += n;
        to++;
      }
      encodeEntries(this.pending, entries, from, to, body);
      from = to;
    }
    this.last = entries[entries.length - 1]!.index;
    this.pendingMaxIndex = Math.max(this.pendingMaxIndex, this.last);
    this.afterWriteCall();
  }

  setHardState(hardState: HardState): void {
    this.usable();
    checkHardState(hardState);
    if (sameHardState(hardState, this.hs)) return;
    const copy = copyHardState(hardState);
    encodeHardState(this.pending, copy);
    this.hs = copy;
    this.afterWriteCall();
  }

  sync(): void {
    this.usable();
    this.guard(() => {
      this.flush();
      this.fsyncIfDue();
    });
  }

  compact(upToIndex: number): void {
    this.usable();
    checkCompactIndex(upToIndex, this.last);
    if (upToIndex <= this.compacted) return;
    encodeIndexRecord(this.pending, RecordType.Compact, upToIndex);
    this.compacted = upToIndex;
    this.guard(() => {
      this.flush();
      // The compaction point must be durable before the files it releases disappear.
      this.fsyncIfDue();
      let removed = false;
      while (this.sealed.length > 0 && this.sealed[0]!.maxIndex <= upToIndex) {
        fs.unlinkSync(path.join(this.dir, this.sealed.shift()!.name));
        removed = true;
      }
      if (removed && this.policy !== 'never') fsyncDir(this.dir);
    });
  }

  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === null) {
        this.guard(() => {
          this.flush();
          this.fsyncIfDue();
        });
      }
    } finally {
      this.closed = true;
      if (this.fd >= 0) fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Stops as a killed process would: buffered writes are lost, what reached the file stays.
   * For tests and the fault injector; the store is unusable afterwards. */
  crash(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.reset();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  // -------------------------------------------------------------------------------------------

  private usable(): void {
    if (this.failure !== null) {
      throw new StorageError(
        'FAILED',
        `storage in ${this.dir} failed earlier (${this.failure.message}); what reached the disk is unknown — restart the node so it recovers from the directory`,
        { cause: this.failure },
      );
    }
    if (this.closed) throw new StorageError('CLOSED', `storage in ${this.dir} is closed; open it again to use it`);
  }

  /** After a failed write or fsync the file state is unknown (a retried fsync may report success
   * for pages the kernel already dropped), so the store refuses all further work. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof StorageError) throw e;
      this.failure = e instanceof Error ? e : new Error(String(e));
      throw new StorageError('FAILED', `storage in ${this.dir}: ${this.failure.message}`, { cause: e });
    }
  }

  private afterWriteCall(): void {
    if (this.policy === 'always') {
      this.guard(() => {
        this.flush();
        this.fsyncIfDue();
      });
    } else if (this.pending.len > this.settings.pendingBytesMax) {
      this.guard(() => this.flush());
    }
  }

  private fsyncIfDue(): void {
    if (this.policy === 'never' || !this.unsynced) return;
    // fdatasync: an append changes the size, which fdatasync does flush; it skips mtime.
    fs.fdatasyncSync(this.fd);
    this.counters.fsyncs++;
    this.unsynced = false;
  }

  private flush(): void {
    const len = this.pending.len;
    if (len === 0) return;
    if (this.activeBytes + len > this.settings.segmentBytesMax && this.activeBytes > this.activeStartBytes) this.rollOver();
    writeAll(this.fd, this.pending.buf, len, this.activeBytes);
    this.counters.writeCalls++;
    this.counters.bytesWritten += len;
    this.activeBytes += len;
    this.unsynced = true;
    this.active.maxIndex = Math.max(this.active.maxIndex, this.pendingMaxIndex);
    this.pendingMaxIndex = 0;
    this.pending.reset();
    this.diskLast = this.last;
    this.diskCompacted = this.compacted;
    this.diskHardState = this.hs;
    // A huge batch grew the buffer; do not keep that memory for the rest of the run.
    if (this.pending.buf.length > 4 * this.settings.pendingBytesMax + 64 * 1024) {
      this.pending.buf = Buffer.allocUnsafe(64 * 1024);
      this.pending.view = new DataView(this.pending.buf.buffer, this.pending.buf.byteOffset, this.pending.buf.byteLength);
    }
  }

  private rollOver(): void {
    // Seal durably first: replay stops at the first bad record, so a torn end of this segment
    // would hide everything synced into the next one.
    this.fsyncIfDue();
    fs.closeSync(this.fd);
    this.fd = -1;
    this.sealed.push(this.active);
    this.createSegment(this.active.seq + 1);
  }

  /** Creates segment `seq` holding the header and a preamble describing the on-disk log. */
  private createSegment(seq: number): void {
    const name = segmentName(seq);
    const out = new RecordBuffer(256);
    encodeHeader(out, seq);
    encodeSegmentStart(out, this.diskLast + 1, this.diskCompacted);
    encodeHardState(out, this.diskHardState);
    const fd = fs.openSync(path.join(this.dir, name), 'wx+');
    this.fd = fd;
    writeAll(fd, out.buf, out.len, 0);
    this.counters.writeCalls++;
    this.counters.bytesWritten += out.len;
    this.active = { seq, name, maxIndex: 0 };
    this.activeBytes = out.len;
    this.activeStartBytes = out.len;
    this.unsynced = true;
    if (this.policy !== 'never') {
      this.fsyncIfDue();
      // The new name must survive a crash too, or a synced batch could vanish with its file.
      fsyncDir(this.dir);
      this.counters.fsyncs++;
    }
  }

  private recover(): Recovered {
    const { dir } = this;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st && !st.isDirectory()) {
      throw new StorageError('NOT_A_DIRECTORY', `storage path ${dir} exists but is not a directory; pass a directory path (it is created if missing)`);
    }
    if (!st) fs.mkdirSync(dir, { recursive: true });

    const names = fs.readdirSync(dir);
    const segs: SegmentInfo[] = [];
    for (const name of names) {
      const m = segmentNamePattern.exec(name);
      if (m) segs.push({ seq: Number(m[1]), name, maxIndex: 0 });
    }
    if (segs.length === 0 && names.length > 0) {
      const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} entries)` : '');
      throw new StorageError(
        'NOT_A_WAL_DIRECTORY',
        `directory ${dir} is not empty and holds no concur WAL (found ${shown}); pass an empty or new directory for each node`,
      );
    }
    segs.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < segs.length; i++) {
      if (segs[i]!.seq !== segs[i - 1]!.seq + 1) {
        throw new StorageError(
          'MISSING_SEGMENT',
          `WAL in ${dir} is missing segment(s) between ${segs[i - 1]!.name} and ${segs[i]!.name}; ` +
            `the log cannot be replayed past the hole — restore the missing files, or move ${segs[i]!.name} and later segments aside (losing their records)`,
        );
      }
    }

    const r = new Replay();
    let bytesReplayed = 0;
    let stopAt = -1;
    let stop: Stop | null = null;
    let stopBuf: Buffer | null = null;
    let activeBytes = 0;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      const b = fs.readFileSync(path.join(dir, seg.name));
      stop = checkHeader(b, seg.seq, seg.name, dir) ?? replaySegment(b, r, seg, i === segs.length - 1);
      if (stop !== null) {
        stopAt = i;
        stopBuf = b;
        bytesReplayed += stop.offset;
        activeBytes = stop.offset;
        break;
      }
      bytesReplayed += b.length;
      activeBytes = b.length;
    }

    let dropped: DroppedTail | null = null;
    let kept = segs;
    if (stop !== null && stopBuf !== null) {
      const seg = segs[stopAt]!;
      const later = segs.slice(stopAt + 1);
      let bytes = stopBuf.length - stop.offset;
      let records = 1;
      if (stop.offset >= headerBytes) {
        const len = stopBuf.length - stop.offset >= recordHeaderBytes ? readU32(stopBuf, stop.offset + 4) : 0;
        const after = stop.offset + recordHeaderBytes + len;
        if (stop.reason !== 'torn' && len >= typeBytes && after <= stopBuf.length) records += countValidRecords(stopBuf, after);
      }
      for (const l of later) {
        const lb = fs.readFileSync(path.join(dir, l.name));
        bytes += lb.length;
        records += countValidRecords(lb, headerBytes);
      }
      // Repairs are fsynced whatever the policy: they are rare and must not be redone differently.
      if (stop.offset < headerBytes) {
        fs.unlinkSync(path.join(dir, seg.name));
        kept = segs.slice(0, stopAt);
      } else {
        const fd = fs.openSync(path.join(dir, seg.name), 'r+');
        try {
          fs.ftruncateSync(fd, stop.offset);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        kept = segs.slice(0, stopAt + 1);
      }
      for (const l of later) fs.unlinkSync(path.join(dir, l.name));
      fsyncDir(dir);
      dropped = {
        reason: stop.reason,
        detail:
          stop.reason === 'corrupt' && records > 1
            ? `${stop.detail}, followed by ${records - 1} valid record(s): damage on disk, not a torn write`
            : stop.detail,
        segment: seg.name,
        offset: stop.offset,
        bytes,
        records,
        segmentsRemoved: stop.offset < headerBytes ? [seg.name, ...later.map((l) => l.name)] : later.map((l) => l.name),
      };
    }

    // Writer state mirrors the replayed log.
    this.last = r.next - 1;
    this.compacted = Math.min(r.compactedIndex, this.last);
    // A copy, so a recovered extra does not pin a whole segment buffer for the life of the node.
    this.hs = copyHardState(r.hardState);
    this.diskLast = this.last;
    this.diskCompacted = this.compacted;
    this.diskHardState = this.hs;
    let lastSeg: SegmentInfo | undefined = kept[kept.length - 1];
    let nextSeq = stopAt >= 0 ? segs[stopAt]!.seq : 1;
    if (lastSeg) {
      const lastBytes = lastSeg === segs[stopAt] ? activeBytes : fs.statSync(path.join(dir, lastSeg.name)).size;
      if (lastBytes <= headerBytes) {
        // A header without its preamble (crash during creation): rebuild it rather than append
        // records a later replay could not place.
        fs.unlinkSync(path.join(dir, lastSeg.name));
        kept = kept.slice(0, -1);
        nextSeq = lastSeg.seq;
        lastSeg = undefined;
      } else {
        this.sealed = kept.slice(0, -1);
        this.active = lastSeg;
        this.activeBytes = lastBytes;
        this.activeStartBytes = headerBytes;
        this.fd = fs.openSync(path.join(dir, lastSeg.name), 'r+');
      }
    }
    if (!lastSeg) {
      this.sealed = kept;
      this.createSegment(kept.length > 0 ? kept[kept.length - 1]!.seq + 1 : nextSeq);
    }

    const entries = r.compactedIndex >= r.start ? r.entries.slice(r.compactedIndex - r.start + 1) : r.entries;
    const report: RecoveryReport = {
      source: dir,
      segmentsRead: stopAt >= 0 ? stopAt + 1 : segs.length,
      recordsReplayed: r.records,
      bytesReplayed,
      entriesRecovered: entries.length,
      dropped,
      summary: '',
    };
    report.summary = summarize(report, this.last, this.hs);
    return { hardState: copyHardState(this.hs), entries, report };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  if (a.term !== b.term || a.vote !== b.vote || a.commit !== b.commit) return false;
  const aEmpty = a.extra === undefined || a.extra.length === 0;
  const bEmpty = b.extra === undefined || b.extra.length === 0;
  if (aEmpty || bEmpty) return aEmpty === bEmpty;
  return Buffer.from(a.extra!.buffer, a.extra!.byteOffset, a.extra!.byteLength).equals(b.extra!);
}

function summarize(r: RecoveryReport, lastIndex: number, hs: HardState): string {
  const base = `WAL ${r.source}: ${r.entriesRecovered} entries (last index ${lastIndex}), term ${hs.term}, vote ${hs.vote}, commit ${hs.commit} from ${r.recordsReplayed} records in ${r.segmentsRead} segment(s)`;
  if (!r.dropped) return `${base}; clean`;
  const d = r.dropped;
  const removed = d.segmentsRemoved.length ? `; removed ${d.segmentsRemoved.join(', ')}` : '';
  return `${base}; DROPPED ${d.bytes} bytes (${d.records} record(s)) from ${d.segment} at offset ${d.offset}: ${d.reason} — ${d.detail}${removed}`;
}
