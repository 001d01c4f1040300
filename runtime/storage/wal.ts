// The write-ahead log: one directory per node, append-only segment files of checksummed records
// (hard state, entries, truncation, compaction, reset to a snapshot point), replayed on open. It
// must never hand back a record that failed its checksum, never write past damage it found, and
// never cut away records that follow damage (it refuses to open instead); nor decode entry data,
// nor reach the disk other than through the FileSystem it was opened with (node:fs by default).
//
// Segment file `wal-<seq, 16 digits>.log`:
//   header (32 B): magic "CONCURWL" | version u32 | reserved u32 | seq u64 | reserved u32 | crc u32
//   records:       crc u32 | length u32 | type u8 | body (length - 1 bytes)
// Record bodies (format v2; a v1 segment differs only where noted, and holds no LOG_RESET):
//   1 HARD_STATE     term u64 | vote u64 | commit u64 | extra length u32 | extra bytes
//   2 ENTRIES        first index u64 | count u32 | count × (term u64 | kind u32 | length u32 | data)
//   3 TRUNCATE       from index u64: the entries from it on are gone
//   4 COMPACT        index u64 | term u64 (v1: index only): the compaction point moves up to it
//   5 SEGMENT_START  next index u64 | compacted index u64 | compacted term u64 (v1: no term)
//   6 LOG_RESET      index u64 | term u64: the log is now empty, compacted through (index, term)
// The record crc covers length, type and body, so a damaged length is caught too. Integers are
// little-endian; u64 fields hold safe integers (< 2^53), except a SEGMENT_START compacted term of
// all ones: unknown (carried over from a v1 WAL). Every segment opens with SEGMENT_START and
// HARD_STATE, so any prefix of segments can be deleted after a compaction or a reset and the rest
// still replays on its own. A segment holds one format: a v1 WAL gets a new v2 segment at open.
//
// Recovery cuts a torn tail (the end of the last write, cut short by a crash). Damage followed by
// a record that still passes its checksum (looked for at every byte offset, so a damaged length
// field cannot hide it), or a record that makes no sense, is not a tear: the log lost data a node
// may have promised to others, so opening is refused and nothing is changed.
import * as path from 'node:path';
import { copyBytes } from '../bytes.ts';
import { crc32 } from './crc32.ts';
import { isLockFileName } from './dir-lock.ts';
import { checkFileSystem, nodeFs, type FileSystem } from './fs.ts';
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
  checkCompactTerm,
  checkPointTerm,
  checkResetPoint,
  TermRuns,
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
import { fsyncDir } from './fsync-dir.ts';

export const walFormatVersion = 2;
/** The oldest format this concur still reads. */
const walFormatVersionMin = 1;
const magic = Buffer.from('CONCURWL', 'ascii');
const headerBytes = 32;
const recordHeaderBytes = 8; // crc + length
const typeBytes = 1;
const entriesBodyFixedBytes = 12; // firstIndex u64 + count u32
const entryFixedBytes = 16; // term u64 + kind u32 + length u32
const hardStateFixedBytes = 28; // term, vote, commit u64 + extra length u32
/** A compaction point's term nobody recorded (a v1 WAL): -1 in memory, all ones on disk. */
const termUnknown = -1;

const enum RecordType {
  HardState = 1,
  Entries = 2,
  Truncate = 3,
  Compact = 4,
  SegmentStart = 5,
  LogReset = 6,
}

export const walDefaults = {
  segmentBytesMax: 16 * 1024 * 1024,
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

/** COMPACT and LOG_RESET: a point of the log and the term of the entry there. */
function encodePointRecord(out: RecordBuffer, type: RecordType, index: number, term: number): void {
  const at = out.len;
  const p = out.begin(type, 16);
  out.u64(p, index);
  out.u64(p + 8, term);
  out.seal(at);
}

function encodeSegmentStart(out: RecordBuffer, nextIndex: number, compactedIndex: number, compactedTerm: number): void {
  const at = out.len;
  const p = out.begin(RecordType.SegmentStart, 24);
  out.u64(p, nextIndex);
  out.u64(p + 8, compactedIndex);
  if (compactedTerm === termUnknown) {
    out.u32(p + 16, 0xffff_ffff);
    out.u32(p + 20, 0xffff_ffff);
  } else {
    out.u64(p + 16, compactedTerm);
  }
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
    p = copyBytes(e.data, 0, n, buf, p + entryFixedBytes);
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
const readTerm = (b: Buffer, p: number): number =>
  b.readUInt32LE(p) === 0xffff_ffff && b.readUInt32LE(p + 4) === 0xffff_ffff ? termUnknown : readU64(b, p);

/** Where and why replay stopped before the end of a segment's bytes. */
interface Stop {
  reason: DropReason;
  detail: string;
  offset: number;
  /** Where the record after the bad one starts, when its length field can be trusted that far
   * (-1 otherwise): valid records from there on mean damage, not a torn write. */
  next: number;
}

interface SegmentInfo {
  seq: number;
  name: string;
  /** Format version from the header (0 until read). */
  version: number;
  /** Highest entry index ever written into this segment (0 if none), lowered by a reset, which
   * drops every entry before it: the segment may be deleted once the compaction point passes it. */
  maxIndex: number;
}

/** The log as rebuilt by replay; entries reference the segment buffers read (no copy). */
class Replay {
  hardState: HardState = emptyHardState();
  entries: LogEntry[] = [];
  start = 1; // index of entries[0], or of the next entry when empty
  compactedIndex = 0;
  /** termUnknown while only v1 records spoke of the compaction point. */
  compactedTerm = 0;
  records = 0;
  sawRecord = false;
  /** Segments replayed so far, the current one included: a reset releases what they hold. */
  readonly segments: SegmentInfo[] = [];

  get next(): number {
    return this.start + this.entries.length;
  }

  /** Term of a replayed entry, or -1 when replay does not hold it. */
  termAt(index: number): number {
    return index >= this.start && index < this.next ? this.entries[index - this.start]!.term : -1;
  }

  /** The compaction point's term once replay is done: known from a v2 record or the entry itself. */
  finalCompactedTerm(): number {
    if (this.compactedIndex === 0) return 0;
    if (this.compactedTerm !== termUnknown) return this.compactedTerm;
    return this.termAt(this.compactedIndex);
  }

  /** Applies one checksummed record; returns a complaint when it cannot belong to this log. */
  apply(type: number, b: Buffer, p: number, end: number, seg: SegmentInfo): string | null {
    const complaint = this.applyRecord(type, b, p, end, seg);
    if (complaint !== null) return complaint;
    this.sawRecord = true;
    this.records++;
    return null;
  }

  private applyRecord(type: number, b: Buffer, p: number, end: number, seg: SegmentInfo): string | null {
    const v1 = seg.version === 1;
    switch (type) {
      case RecordType.HardState:
        return this.hardStateRecord(b, p, end);
      case RecordType.Entries:
        return this.entriesRecord(b, p, end, seg);
      case RecordType.Truncate:
        return this.truncateRecord(b, p, end);
      case RecordType.Compact:
        return this.compactRecord(b, p, end, v1);
      case RecordType.SegmentStart:
        return this.segmentStartRecord(b, p, end, v1);
      case RecordType.LogReset:
        // v1 had no resets: in a v1 segment this type is as unknown as any other.
        if (!v1) return this.logResetRecord(b, p, end);
        break;
    }
    return `unknown record type ${type} in a v${seg.version} segment (written by a newer concur?)`;
  }

  private hardStateRecord(b: Buffer, p: number, end: number): string | null {
    const bodyBytes = end - p;
    if (bodyBytes < hardStateFixedBytes) return `hard-state record too short (${bodyBytes} bytes)`;
    const extraBytes = readU32(b, p + 24);
    if (hardStateFixedBytes + extraBytes !== bodyBytes) return 'hard-state record length does not match its extra bytes';
    const hs: HardState = { term: readU64(b, p), vote: readU64(b, p + 8), commit: readU64(b, p + 16) };
    if (extraBytes > 0) hs.extra = new Uint8Array(b.buffer, b.byteOffset + p + hardStateFixedBytes, extraBytes);
    this.hardState = hs;
    return null;
  }

  private entriesRecord(b: Buffer, p: number, end: number, seg: SegmentInfo): string | null {
    if (end - p < entriesBodyFixedBytes) return `entries record too short (${end - p} bytes)`;
    const first = readU64(b, p);
    const count = readU32(b, p + 8);
    if (first !== this.next) return `entries record starts at index ${first} but the log continues at ${this.next}`;
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
    return null;
  }

  private truncateRecord(b: Buffer, p: number, end: number): string | null {
    if (end - p !== 8) return 'truncate record has the wrong length';
    const from = readU64(b, p);
    if (from <= this.compactedIndex || from > this.next) {
      return `truncate from index ${from} is outside the log [${this.compactedIndex + 1}, ${this.next - 1}]`;
    }
    if (from < this.start) {
      // The truncated entries sat in segments since deleted by a compaction that passed them all;
      // what this segment holds starts over at `from`.
      this.entries = [];
      this.start = from;
    } else {
      this.entries.length = from - this.start;
    }
    return null;
  }

  private compactRecord(b: Buffer, p: number, end: number, v1: boolean): string | null {
    if (end - p !== (v1 ? 8 : 16)) return 'compact record has the wrong length';
    const index = readU64(b, p);
    const term = v1 ? termUnknown : readU64(b, p + 8);
    if (index >= this.next) return `compact through index ${index} goes past the end of the log at ${this.next - 1}`;
    const held = this.termAt(index);
    if (!v1 && held >= 0 && held !== term) return `compact through index ${index} names term ${term}, but that entry has term ${held}`;
    if (index > this.compactedIndex) {
      this.compactedIndex = index;
      this.compactedTerm = term;
    }
    return null;
  }

  private segmentStartRecord(b: Buffer, p: number, end: number, v1: boolean): string | null {
    if (end - p !== (v1 ? 16 : 24)) return 'segment-start record has the wrong length';
    const next = readU64(b, p);
    const compacted = readU64(b, p + 8);
    if (compacted >= next) return `segment-start record puts the compaction point ${compacted} at or past the next index ${next}`;
    if (!this.sawRecord) {
      // The first segment left after compaction: its older neighbours are gone by design.
      this.start = next;
      this.compactedIndex = compacted;
      this.compactedTerm = compacted === 0 ? 0 : v1 ? termUnknown : readTerm(b, p + 16);
    } else if (next !== this.next) {
      return `segment starts the log at index ${next} but the previous segment ended at ${this.next - 1}`;
    }
    return null;
  }

  private logResetRecord(b: Buffer, p: number, end: number): string | null {
    if (end - p !== 16) return 'log-reset record has the wrong length';
    const index = readU64(b, p);
    if (index < this.compactedIndex) return `log reset to index ${index} goes below the compaction point ${this.compactedIndex}`;
    this.entries = [];
    this.start = index + 1;
    this.compactedIndex = index;
    this.compactedTerm = readU64(b, p + 8);
    // Every entry written before the reset is gone: the files holding them may go too.
    for (const s of this.segments) s.maxIndex = Math.min(s.maxIndex, index);
    return null;
  }
}

/** Where the record starting at `p` ends, if it is complete and passes its checksum; else -1. */
function validRecordEnd(b: Buffer, p: number): number {
  if (p + recordHeaderBytes > b.length) return -1;
  const len = readU32(b, p + 4);
  if (len < typeBytes || p + recordHeaderBytes + len > b.length) return -1;
  return crc32(b.subarray(p + 4, p + recordHeaderBytes + len)) === readU32(b, p) ? p + recordHeaderBytes + len : -1;
}

/** Walks records from `offset` counting those whose checksum holds; stops at the first that does
 * not. Used only to size up damage: are there valid records after it? */
function countValidRecords(b: Buffer, offset: number): number {
  let n = 0;
  for (let end = validRecordEnd(b, offset); end >= 0; end = validRecordEnd(b, end)) n++;
  return n;
}

/** The record lengths (type byte included) each record type can have: a cheap filter before the
 * checksum when looking for a record at every byte offset. */
function plausibleLength(type: number, len: number): boolean {
  switch (type) {
    case RecordType.HardState:
      return len >= typeBytes + hardStateFixedBytes;
    case RecordType.Entries:
      return len >= typeBytes + entriesBodyFixedBytes;
    case RecordType.Truncate:
      return len === typeBytes + 8;
    case RecordType.Compact:
      return len === typeBytes + 8 || len === typeBytes + 16;
    case RecordType.SegmentStart:
      return len === typeBytes + 16 || len === typeBytes + 24;
    case RecordType.LogReset:
      return len === typeBytes + 16;
  }
  return false;
}

/** The first offset at or after `from` where a record passing its checksum starts, or -1. When a
 * record's length field is what got damaged, the records after it no longer start where that
 * length says; trying every offset still finds them, so the damage is refused instead of being
 * cut as a torn tail. Only recovery after damage pays for it, and a real torn tail is short. */
function findValidRecord(b: Buffer, from: number): number {
  for (let p = from; p + recordHeaderBytes + typeBytes <= b.length; p++) {
    const len = readU32(b, p + 4);
    if (len > b.length - p - recordHeaderBytes || !plausibleLength(b[p + recordHeaderBytes]!, len)) continue;
    if (validRecordEnd(b, p) >= 0) return p;
  }
  return -1;
}

/** The byte offset of every complete record that passes its checksum in a segment's bytes, in
 * order from the end of the header, up to the first that does not. For a simulator that damages
 * an old record on purpose: any byte of a record followed by valid ones makes the WAL refuse to
 * open ('CORRUPT'), whichever field it hits. */
export function walRecordOffsets(segment: Uint8Array): number[] {
  const b = Buffer.from(segment.buffer, segment.byteOffset, segment.byteLength);
  const out: number[] = [];
  for (let p = headerBytes, end = validRecordEnd(b, p); end >= 0; p = end, end = validRecordEnd(b, p)) out.push(p);
  return out;
}

function allZero(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Files that are not ours are never repaired or deleted: the data may be someone else's. */
function checkMagic(b: Buffer, file: string): void {
  const have = Math.min(b.length, magic.length);
  if (!b.subarray(0, have).equals(magic.subarray(0, have))) {
    throw new StorageError(
      'BAD_FORMAT',
      `${file} is not a concur WAL segment (its first bytes are not "CONCURWL"); ` +
        `move the file out of the directory or point the node at another directory`,
    );
  }
}

/** Checks a segment header and records its version. Throws for files that are not ours or too
 * new; returns a Stop for damage recovery must judge. */
function checkHeader(b: Buffer, seg: SegmentInfo, dir: string): Stop | null {
  const file = path.join(dir, seg.name);
  checkMagic(b, file);
  if (b.length < headerBytes) {
    return { reason: 'torn', detail: `segment header cut short (${b.length} of ${headerBytes} bytes)`, offset: 0, next: -1 };
  }
  const version = readU32(b, 8);
  if (version > walFormatVersion) {
    throw new StorageError(
      'NEWER_FORMAT',
      `${file} uses WAL format v${version} but this concur reads up to v${walFormatVersion}; ` +
        `upgrade concur, or point the node at another directory`,
    );
  }
  if (crc32(b.subarray(0, 28)) !== readU32(b, 28)) {
    // The header has a fixed size, so the records after it can still be looked at.
    return { reason: 'bad-header', detail: 'segment header checksum mismatch', offset: 0, next: headerBytes };
  }
  if (version < walFormatVersionMin) {
    throw new StorageError('BAD_FORMAT', `${file} has WAL format v${version}, which never existed`);
  }
  if (readU64(b, 16) !== seg.seq) {
    return { reason: 'invalid', detail: `header says segment ${readU64(b, 16)} but the file name says ${seg.seq}`, offset: 0, next: headerBytes };
  }
  seg.version = version;
  return null;
}

/** Replays records of one segment into `r`; returns where and why it stopped, or null at a clean end. */
function replaySegment(b: Buffer, r: Replay, seg: SegmentInfo, isLast: boolean): Stop | null {
  let p = headerBytes;
  while (p < b.length) {
    const remaining = b.length - p;
    if (remaining < recordHeaderBytes) {
      return { reason: 'torn', detail: `${remaining} trailing bytes, fewer than a record header`, offset: p, next: -1 };
    }
    const len = readU32(b, p + 4);
    if (len < typeBytes || len > remaining - recordHeaderBytes) {
      if (allZero(b, p)) return { reason: 'torn', detail: `zero-filled tail of ${remaining} bytes`, offset: p, next: -1 };
      if (len >= typeBytes && isLast) {
        return { reason: 'torn', detail: `record of ${len} bytes extends past the end of the file`, offset: p, next: -1 };
      }
      return { reason: 'corrupt', detail: `record length field ${len} is impossible here`, offset: p, next: -1 };
    }
    const end = p + recordHeaderBytes + len;
    if (crc32(b.subarray(p + 4, end)) !== readU32(b, p)) {
      return { reason: 'corrupt', detail: `checksum mismatch in a ${len}-byte record`, offset: p, next: end };
    }
    const complaint = r.apply(b[p + 8]!, b, p + recordHeaderBytes + typeBytes, end, seg);
    if (complaint !== null) return { reason: 'invalid', detail: complaint, offset: p, next: end };
    p = end;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Recovery, step by step: list the segments, replay them up to the first stop, judge the stop
// (a torn tail is cut; anything else refuses to open and changes nothing), then set up the writer.

/** What replaying every segment found. */
interface Scan {
  replay: Replay;
  /** Bytes of each segment read (until the stop); the stop's segment counts up to the stop. */
  bytesKept: number[];
  /** Position in the segment list where replay stopped, with the stop and the segment's bytes. */
  stop: { at: number; why: Stop; bytes: Buffer } | null;
}

/** A stop judged: how many records that pass their checksum follow it, and the later segments. */
interface Damage {
  at: number;
  why: Stop;
  bytes: Buffer;
  validInSegment: number;
  validLater: number;
  later: { name: string; bytes: number }[];
}

/** The directory's segments in order, checked for holes; creates the directory when missing. */
function listSegments(fs: FileSystem, dir: string): SegmentInfo[] {
  let st: ReturnType<FileSystem['statSync']> | undefined;
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
    if (m) segs.push({ seq: Number(m[1]), name, version: 0, maxIndex: 0 });
  }
  // The node's lock and snapshot files share the directory; anything else means it is not ours.
  const foreign = names.filter((n) => !segmentNamePattern.test(n) && !isLockFileName(n) && !n.startsWith('snap-'));
  if (segs.length === 0 && foreign.length > 0) {
    const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, … (${foreign.length} entries)` : '');
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
  return segs;
}

/** Replays the segments in order until the first record that does not replay. Reads only. */
function scanSegments(fs: FileSystem, dir: string, segs: SegmentInfo[]): Scan {
  const replay = new Replay();
  const bytesKept: number[] = [];
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const b = fs.readFileSync(path.join(dir, seg.name));
    replay.segments.push(seg);
    const why = checkHeader(b, seg, dir) ?? replaySegment(b, replay, seg, i === segs.length - 1);
    if (why !== null) {
      bytesKept.push(why.offset);
      return { replay, bytesKept, stop: { at: i, why, bytes: b } };
    }
    bytesKept.push(b.length);
  }
  return { replay, bytesKept, stop: null };
}

/** Counts the records that pass their checksum after a stop, in its segment and in later ones. */
function assessDamage(fs: FileSystem, dir: string, segs: readonly SegmentInfo[], stop: NonNullable<Scan['stop']>): Damage {
  const { why, bytes } = stop;
  let validInSegment = why.next >= 0 ? countValidRecords(bytes, why.next) : 0;
  if (validInSegment === 0 && why.reason !== 'invalid') {
    // `next` trusts the damaged record's length field, which may be the damaged part.
    const found = findValidRecord(bytes, Math.max(headerBytes, why.offset + recordHeaderBytes + typeBytes));
    if (found >= 0) validInSegment = countValidRecords(bytes, found);
  }
  let validLater = 0;
  const later: Damage['later'] = [];
  for (const seg of segs.slice(stop.at + 1)) {
    const file = path.join(dir, seg.name);
    const b = fs.readFileSync(file);
    checkMagic(b, file);
    // Records are counted even behind a damaged header: they still show the damage is not a tear.
    if (b.length >= headerBytes) validLater += countValidRecords(b, headerBytes);
    later.push({ name: seg.name, bytes: b.length });
  }
  return { at: stop.at, why, bytes, validInSegment, validLater, later };
}

/** The first segment left must start the log right after the compaction point: when older
 * segments went missing (deleted by hand), the entries in between are gone for good. */
function checkLogStart(dir: string, segs: readonly SegmentInfo[], r: Replay): void {
  if (segs.length === 0 || r.start <= r.compactedIndex + 1) return;
  throw new StorageError(
    'MISSING_SEGMENT',
    `WAL in ${dir} begins with ${segs[0]!.name}, which starts the log at index ${r.start}, but the compaction point is ` +
      `${r.compactedIndex}: entries ${r.compactedIndex + 1} to ${r.start - 1} were in earlier segments that are missing — ` +
      `restore them, or move ${dir} aside and start this node with an empty directory so it catches up from the leader`,
  );
}

/** A torn tail is the end of the last write; anything else means the disk lost or changed data. */
function isTornTail(d: Damage): boolean {
  return d.why.reason !== 'invalid' && d.validInSegment + d.validLater === 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The refusal: where the damage is, why this node must not vote, and how to bring it back. */
function corruptionError(dir: string, segs: readonly SegmentInfo[], d: Damage): StorageError {
  const file = path.join(dir, segs[d.at]!.name);
  const valid = d.validInSegment + d.validLater;
  const where =
    d.validLater === 0 ? '' : ` (${d.validInSegment} in this segment, ${d.validLater} in ${plural(d.later.length, 'later segment')})`;
  const what =
    d.why.reason === 'invalid'
      ? `a record that passes its checksum but cannot belong to this log: ${d.why.detail}`
      : `${d.why.detail}, followed by ${plural(valid, 'valid record')}${where}`;
  return new StorageError(
    'CORRUPT',
    `WAL segment ${file} is damaged at byte offset ${d.why.offset}: ${what}. This is damage on disk, not a torn ` +
      `write, and nothing was changed. This node must not start as a voter: it may have lost votes and ` +
      `acknowledged entries. To recover, move ${dir} aside (keep it for inspection) and start this node with ` +
      `an empty directory so it catches up from the leader; that is safe only while the other nodes are ` +
      `healthy, because the node forgets its votes (once membership changes exist: remove the node and add it ` +
      `back as a new member).`,
  );
}

/** Cuts a torn tail: the stop's segment at the stop (deleted when the header itself is torn) and
 * every later segment (they hold no valid record). Fsynced whatever the policy: repairs are rare
 * and must not be redone differently. Returns the segments kept and the report. */
function cutTornTail(fs: FileSystem, dir: string, segs: SegmentInfo[], d: Damage): { kept: SegmentInfo[]; dropped: DroppedTail } {
  const seg = segs[d.at]!;
  const { offset } = d.why;
  let kept: SegmentInfo[];
  const removed = d.later.map((l) => l.name);
  if (offset < headerBytes) {
    fs.unlinkSync(path.join(dir, seg.name));
    removed.unshift(seg.name);
    kept = segs.slice(0, d.at);
  } else {
    const fd = fs.openSync(path.join(dir, seg.name), 'r+');
    try {
      fs.ftruncateSync(fd, offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    kept = segs.slice(0, d.at + 1);
  }
  for (const l of d.later) fs.unlinkSync(path.join(dir, l.name));
  fsyncDir(dir, fs);
  const bytes = d.bytes.length - offset + d.later.reduce((sum, l) => sum + l.bytes, 0);
  return {
    kept,
    dropped: { reason: d.why.reason, detail: d.why.detail, segment: seg.name, offset, bytes, records: 1, segmentsRemoved: removed },
  };
}

// ---------------------------------------------------------------------------------------------


function writeAll(fs: FileSystem, fd: number, buf: Buffer, len: number, position: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, position + done);
}

const walOptionNames = ['dir', 'fs', 'fsync', 'segmentBytesMax', 'recordBytesMax', 'pendingBytesMax'] as const;

/** Opens (creating if needed) the WAL in `options.dir`, cutting a torn tail; refuses ('CORRUPT')
 * a log damaged anywhere else. */
export function openWal(options: WalOptions): WalStorage {
  if (options === null || typeof options !== 'object') {
    throw new StorageError('BAD_OPTION', 'openWal expects options { dir, fs?, fsync?, segmentBytesMax?, ... }');
  }
  checkOptionNames(options, walOptionNames, 'WAL');
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new StorageError('BAD_OPTION', `dir must be a non-empty path string, got ${JSON.stringify(options.dir)}`);
  }
  const fs = options.fs === undefined ? nodeFs : checkFileSystem(options.fs, 'openWal');
  const settings = {
    // A simulated disk must not depend on the process's working directory: relative means from '/'.
    dir: fs === nodeFs ? path.resolve(options.dir) : path.posix.resolve('/', options.dir),
    fs,
    policy: parseFsyncPolicy(options.fsync ?? fsyncPolicyDefault),
    segmentBytesMax: checkIntOption('segmentBytesMax', options.segmentBytesMax ?? walDefaults.segmentBytesMax, limits.segmentBytesMin, limits.segmentBytesMax),
    recordBytesMax: checkIntOption('recordBytesMax', options.recordBytesMax ?? walDefaults.recordBytesMax, limits.recordBytesMin, limits.recordBytesMax),
    pendingBytesMax: checkIntOption('pendingBytesMax', options.pendingBytesMax ?? walDefaults.pendingBytesMax, limits.pendingBytesMin, limits.pendingBytesMax),
  };
  return new WalStorage(settings);
}

interface WalSettings {
  dir: string;
  fs: FileSystem;
  policy: FsyncPolicy;
  segmentBytesMax: number;
  recordBytesMax: number;
  pendingBytesMax: number;
}

export class WalStorage implements Storage {
  readonly policy: FsyncPolicy;
  readonly dir: string;
  private readonly fs: FileSystem;
  private readonly settings: WalSettings;
  private recovered: Recovered | null;
  private loaded = false;

  // The log as the caller sees it (buffered writes included).
  private last = 0;
  private compacted = 0;
  private compactedAtTerm = 0;
  private hs: HardState = emptyHardState();
  /** Terms of the entries after the compaction point, to check compact(index, term). */
  private readonly terms = new TermRuns();

  // What has reached the file (written, maybe not fsynced): a new segment's preamble uses it.
  private diskLast = 0;
  private diskCompacted = 0;
  private diskCompactedTerm = 0;
  private diskHardState: HardState = emptyHardState();

  private fd = -1;
  private active: SegmentInfo = { seq: 0, name: '', version: walFormatVersion, maxIndex: 0 };
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
    this.fs = settings.fs;
    this.recovered = this.recover();
  }

  get lastIndex(): number {
    return this.last;
  }
  get firstIndex(): number {
    return this.compacted + 1;
  }
  get compactedTerm(): number {
    return this.compactedAtTerm;
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
    this.terms.append(entries);
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
    this.guard(() => this.syncAndRelease());
  }

  compact(upToIndex: number, term: number): void {
    this.usable();
    checkCompactIndex(upToIndex, this.last);
    checkPointTerm(`compact(${upToIndex})`, term);
    if (upToIndex === this.compacted) checkCompactTerm(upToIndex, term, this.compactedAtTerm);
    if (upToIndex <= this.compacted) return;
    checkCompactTerm(upToIndex, term, this.terms.termAt(upToIndex));
    encodePointRecord(this.pending, RecordType.Compact, upToIndex, term);
    this.compacted = upToIndex;
    this.compactedAtTerm = term;
    this.terms.dropThrough(upToIndex);
    // The compaction point must be durable before the files it releases disappear.
    this.guard(() => this.syncAndRelease());
  }

  resetTo(index: number, term: number): void {
    this.usable();
    checkResetPoint(index, term, this.compacted, this.compactedAtTerm);
    encodePointRecord(this.pending, RecordType.LogReset, index, term);
    this.last = this.compacted = index;
    this.compactedAtTerm = term;
    this.terms.reset(index + 1);
    // Every entry written so far is dropped by the reset, whatever its index. Lowering maxIndex
    // lets the files go, but only once the reset is durable: only syncAndRelease deletes.
    for (const seg of this.sealed) seg.maxIndex = Math.min(seg.maxIndex, index);
    this.active.maxIndex = Math.min(this.active.maxIndex, index);
    this.pendingMaxIndex = 0;
    if (this.policy === 'always') this.guard(() => this.syncAndRelease());
    else this.afterWriteCall();
  }

  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === null) this.guard(() => this.syncAndRelease());
    } finally {
      this.closed = true;
      if (this.fd >= 0) this.fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Stops as a killed process would: buffered writes are lost, what reached the file stays.
   * For tests and the fault injector; the store is unusable afterwards. */
  crash(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.reset();
    const fd = this.fd;
    this.fd = -1;
    try {
      if (fd >= 0) this.fs.closeSync(fd);
    } catch {
      // A simulated disk that crashed first has already invalidated the descriptor; a killed
      // process does not close anything either.
    }
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

  /** Makes everything written durable (per the policy), then deletes the sealed segments the
   * durable compaction point has passed. The only place segments are deleted while running. */
  private syncAndRelease(): void {
    this.flush();
    this.fsyncIfDue();
    let removed = false;
    while (this.sealed.length > 0 && this.sealed[0]!.maxIndex <= this.diskCompacted) {
      this.fs.unlinkSync(path.join(this.dir, this.sealed.shift()!.name));
      removed = true;
    }
    if (removed && this.policy !== 'never') fsyncDir(this.dir, this.fs);
  }

  private fsyncIfDue(): void {
    if (this.policy === 'never' || !this.unsynced) return;
    // fdatasync: an append changes the size, which fdatasync does flush; it skips mtime.
    this.fs.fdatasyncSync(this.fd);
    this.counters.fsyncs++;
    this.unsynced = false;
  }

  private flush(): void {
    const len = this.pending.len;
    if (len === 0) return;
    if (this.activeBytes + len > this.settings.segmentBytesMax && this.activeBytes > this.activeStartBytes) this.rollOver();
    writeAll(this.fs, this.fd, this.pending.buf, len, this.activeBytes);
    this.counters.writeCalls++;
    this.counters.bytesWritten += len;
    this.activeBytes += len;
    this.unsynced = true;
    this.active.maxIndex = Math.max(this.active.maxIndex, this.pendingMaxIndex);
    this.pendingMaxIndex = 0;
    this.pending.reset();
    this.diskLast = this.last;
    this.diskCompacted = this.compacted;
    this.diskCompactedTerm = this.compactedAtTerm;
    this.diskHardState = this.hs;
    // A huge batch grew the buffer; do not keep that memory for the rest of the run.
    if (this.pending.buf.length > 4 * this.settings.pendingBytesMax + 64 * 1024) {
      this.pending.buf = Buffer.allocUnsafe(64 * 1024);
      this.pending.view = new DataView(this.pending.buf.buffer, this.pending.buf.byteOffset, this.pending.buf.byteLength);
    }
  }

  private rollOver(): void {
    // Seal durably first: recovery refuses to open past damage followed by valid records, so a
    // torn end of this segment would stop the node once the next one held synced records.
    this.fsyncIfDue();
    this.fs.closeSync(this.fd);
    this.fd = -1;
    this.sealed.push(this.active);
    this.createSegment(this.active.seq + 1);
  }

  /** Creates segment `seq` holding the header and a preamble describing the on-disk log. */
  private createSegment(seq: number): void {
    const name = segmentName(seq);
    const out = new RecordBuffer(256);
    encodeHeader(out, seq);
    encodeSegmentStart(out, this.diskLast + 1, this.diskCompacted, this.diskCompactedTerm);
    encodeHardState(out, this.diskHardState);
    const fd = this.fs.openSync(path.join(this.dir, name), 'wx+');
    this.fd = fd;
    writeAll(this.fs, fd, out.buf, out.len, 0);
    this.counters.writeCalls++;
    this.counters.bytesWritten += out.len;
    this.active = { seq, name, version: walFormatVersion, maxIndex: 0 };
    this.activeBytes = out.len;
    this.activeStartBytes = out.len;
    this.unsynced = true;
    if (this.policy !== 'never') {
      this.fsyncIfDue();
      // The new name must survive a crash too, or a synced batch could vanish with its file.
      fsyncDir(this.dir, this.fs);
      this.counters.fsyncs++;
    }
  }

  /** Replays the directory; cuts a torn tail, refuses damage, and leaves the writer ready. */
  private recover(): Recovered {
    const segs = listSegments(this.fs, this.dir);
    const scan = scanSegments(this.fs, this.dir, segs);
    // Judged before anything on disk changes: a refusal must leave the evidence as it was.
    const damage = scan.stop === null ? null : assessDamage(this.fs, this.dir, segs, scan.stop);
    if (damage !== null && !isTornTail(damage)) throw corruptionError(this.dir, segs, damage);
    checkLogStart(this.dir, segs, scan.replay);
    const { kept, dropped } = damage === null ? { kept: segs, dropped: null } : cutTornTail(this.fs, this.dir, segs, damage);
    const r = scan.replay;
    const entries = r.compactedIndex >= r.start ? r.entries.slice(r.compactedIndex - r.start + 1) : r.entries;
    this.adoptReplay(r, entries);
    this.openWriter(kept, scan, scan.stop === null ? segs.length + 1 : segs[scan.stop.at]!.seq);
    return this.recoveredLog(scan, entries, dropped);
  }

  /** Writer state mirrors the replayed log; `entries` are those after the compaction point. */
  private adoptReplay(r: Replay, entries: readonly LogEntry[]): void {
    this.last = r.next - 1;
    this.compacted = r.compactedIndex;
    this.compactedAtTerm = r.finalCompactedTerm();
    // A copy, so a recovered extra does not pin a whole segment buffer for the life of the node.
    this.hs = copyHardState(r.hardState);
    this.terms.reset(this.compacted + 1);
    this.terms.append(entries);
    this.diskLast = this.last;
    this.diskCompacted = this.compacted;
    this.diskCompactedTerm = this.compactedAtTerm;
    this.diskHardState = this.hs;
  }

  /** Opens the last kept segment for appending, or starts a new one when there is none, when it
   * holds a header only (a crash during its creation: rebuilt rather than appended to, since a
   * later replay could not place records without a preamble), or when it is an older format (a
   * segment holds one format only). `seqIfNone`: the number to start from when nothing is kept. */
  private openWriter(kept: SegmentInfo[], scan: Scan, seqIfNone: number): void {
    let nextSeq = seqIfNone;
    const last = kept[kept.length - 1];
    if (last !== undefined) {
      const bytes = scan.bytesKept[kept.length - 1]!;
      if (bytes <= headerBytes) {
        this.fs.unlinkSync(path.join(this.dir, last.name));
        kept = kept.slice(0, -1);
        nextSeq = last.seq;
      } else if (last.version === walFormatVersion) {
        this.sealed = kept.slice(0, -1);
        this.active = last;
        this.activeBytes = bytes;
        this.activeStartBytes = headerBytes;
        this.fd = this.fs.openSync(path.join(this.dir, last.name), 'r+');
        return;
      }
    }
    this.sealed = kept;
    this.createSegment(kept.length > 0 ? kept[kept.length - 1]!.seq + 1 : nextSeq);
  }

  private recoveredLog(scan: Scan, entries: LogEntry[], dropped: DroppedTail | null): Recovered {
    const r = scan.replay;
    const report: RecoveryReport = {
      source: this.dir,
      segmentsRead: scan.bytesKept.length,
      recordsReplayed: r.records,
      bytesReplayed: scan.bytesKept.reduce((sum, n) => sum + n, 0),
      entriesRecovered: entries.length,
      dropped,
      summary: '',
    };
    report.summary = summarize(report, this.last, this.compacted, this.compactedAtTerm, this.hs);
    return { hardState: copyHardState(this.hs), entries, compactedIndex: this.compacted, compactedTerm: this.compactedAtTerm, report };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  if (a.term !== b.term || a.vote !== b.vote || a.commit !== b.commit) return false;
  const aEmpty = a.extra === undefined || a.extra.length === 0;
  const bEmpty = b.extra === undefined || b.extra.length === 0;
  if (aEmpty || bEmpty) return aEmpty === bEmpty;
  return Buffer.from(a.extra!.buffer, a.extra!.byteOffset, a.extra!.byteLength).equals(b.extra!);
}

function summarize(r: RecoveryReport, lastIndex: number, compacted: number, compactedTerm: number, hs: HardState): string {
  const point = compacted > 0 ? `, compacted through ${compacted} (term ${compactedTerm < 0 ? 'unknown' : compactedTerm})` : '';
  const base = `WAL ${r.source}: ${r.entriesRecovered} entries (last index ${lastIndex}${point}), term ${hs.term}, vote ${hs.vote}, commit ${hs.commit} from ${r.recordsReplayed} records in ${r.segmentsRead} segment(s)`;
  if (!r.dropped) return `${base}; clean`;
  const d = r.dropped;
  const removed = d.segmentsRemoved.length ? `; removed ${d.segmentsRemoved.join(', ')}` : '';
  return `${base}; DROPPED ${d.bytes} bytes (${d.records} record(s)) from ${d.segment} at offset ${d.offset}: ${d.reason} — ${d.detail}${removed}`;
}
