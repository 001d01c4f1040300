// The client pipeline's frames beside propose/ack/redirect/busy (wire.ts): the results of a
// stream's commands, batches of reads, and their answers. Every front door (HTTP, RESP, the CLI,
// chaos clients) reaches the nodes through these; numbers are little-endian. Layouts:
//
//   results (13, node to client) 0 tag | 1 kind | 2 stream u8 | 3 unused | 4 count u32
//                    8 first seq f64, then per command: log index f64 | length u32 | result bytes.
//                    Cumulative, like an ack: every command of the stream up to the last seq is applied.
//   reads (14, client to node)   0 tag | 1 kind | 2 mode u8 | 3 unused | 4 count u32 | 8 batch f64,
//                    then per read: app length u8 (0: a KV read) | key length u32 | app | key (UTF-8)
//   read answers (15, node to client)
//                    0 tag | 1 kind | 2 status u8 | 3 unused | 4 count u32 | 8 batch f64
//                    16 index f64 | 24 applied f64 | 32 commit f64 | 40 leader hint u16 | 42 unused u16
//                    44 first u32 (the position in the batch of the first answer: a batch with large
//                    values is answered in several frames), then per read (status ok): length i32
//                    (-1: absent) | value; status redirect: no reads; status refused: one UTF-8 reason.
// One read index serves a whole batch: a node confirms its leadership once per batch, not per read.
import { rawFrameTag } from '../../runtime/actor.ts';
import { copyBytes } from '../../runtime/bytes.ts';
import { DecodeError } from '../../runtime/codec.ts';
import type { LocalReadMode } from '../http/backend.ts';
import { cutShort, encodeControl, FrameKind } from './wire.ts';

export const resultsHeaderBytes = 16;
const readsHeaderBytes = 16;
const answersHeaderBytes = 48;

export const readModeCodes: readonly LocalReadMode[] = ['index', 'lease', 'follower', 'stale'];
export const ReadStatus = { ok: 0, redirect: 1, refused: 2 } as const;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A growable frame builder: writers append, `finish` hands out a view valid until the next `begin`. */
class FrameBuffer {
  bytes = new Uint8Array(4096);
  view = new DataView(this.bytes.buffer);
  length = 0;

  ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** Builds results frames (on a node, for one stream of one client at a time). */
export class ResultsWriter {
  private readonly buf = new FrameBuffer();
  count = 0;

  begin(stream: number, firstSeq: number): void {
    const b = this.buf;
    b.length = resultsHeaderBytes;
    b.bytes[0] = rawFrameTag;
    b.bytes[1] = FrameKind.results;
    b.bytes[2] = stream;
    b.view.setFloat64(8, firstSeq, true);
    this.count = 0;
  }

  get bytes(): number {
    return this.buf.length;
  }

  add(index: number, result: Uint8Array): void {
    const b = this.buf;
    b.ensure(12 + result.length);
    b.view.setFloat64(b.length, index, true);
    b.view.setUint32(b.length + 8, result.length, true);
    b.length = copyBytes(result, 0, result.length, b.bytes, b.length + 12);
    this.count++;
  }

  finish(): Uint8Array {
    this.buf.view.setUint32(4, this.count, true);
    return this.buf.bytes.subarray(0, this.buf.length);
  }
}

/** Results frames are cut at about this size (a ring frame must fit its ring). */
const resultsFrameBytes = 256 * 1024;

/** What a leader keeps of one client stream to answer it (ClientSessions, PaxosSessions). */
export interface AnsweredStream {
  readonly client: number;
  readonly stream: number;
  /** The client wants each command's result (a front door), not only cumulative acks (a benchmark client). */
  readonly wantsResults: boolean;
  /** Results of applied commands not yet sent: (index, result) pairs in seq order from sentSeq + 1. */
  results: (number | Uint8Array)[];
  sentSeq: number;
  ackedSeq: number;
  ackDue: boolean;
}

/**
 * Sends a stream the answer it is due: a bare ack, or the results of seqs sentSeq + 1 .. ackedSeq
 * in frames of bounded size (each an ack through its last seq). Results past ackedSeq (a Raft
 * batch not wholly applied) wait for the next answer.
 */
export function sendDue(
  s: AnsweredStream,
  w: ResultsWriter,
  send: (to: number, frame: Uint8Array) => void,
  /** Results are kept only for acked commands (Multi-Paxos keeps them per finished frame): none may be left over. */
  exact = false,
): void {
  if (!s.ackDue) return;
  s.ackDue = false;
  if (!s.wantsResults) {
    send(s.client, encodeControl(FrameKind.ack, s.ackedSeq, 0, s.stream));
    return;
  }
  const pairs = s.results;
  const n = s.ackedSeq - s.sentSeq;
  if (n <= 0) return;
  if (pairs.length < 2 * n || (exact && pairs.length !== 2 * n)) throw resultsMissing(s.client, s.stream, n, pairs.length / 2);
  w.begin(s.stream, s.sentSeq + 1);
  for (let i = 0; i < n; i++) {
    w.add(pairs[2 * i] as number, pairs[2 * i + 1] as Uint8Array);
    if (w.bytes >= resultsFrameBytes && i < n - 1) {
      send(s.client, w.finish());
      w.begin(s.stream, s.sentSeq + i + 2);
    }
  }
  send(s.client, w.finish());
  s.results = pairs.length === 2 * n ? [] : pairs.slice(2 * n);
  s.sentSeq = s.ackedSeq;
}

/**
 * Calls `each` for every result of a results frame, in seq order; `result` is a view of the
 * frame (ring memory: copy what outlives the call). Returns the stream.
 */
export function readResults(bytes: Uint8Array, start: number, end: number, each: (seq: number, index: number, result: Uint8Array) => void): number {
  if (end - start < resultsHeaderBytes) throw new DecodeError(end - start, 'results frame shorter than its header');
  const v = viewOf(bytes);
  const count = v.getUint32(start + 4, true);
  const first = v.getFloat64(start + 8, true);
  let at = start + resultsHeaderBytes;
  for (let i = 0; i < count; i++) {
    if (at + 12 > end) throw cutShort(end - start, 'results frame cut short at result', i, count);
    const index = v.getFloat64(at, true);
    const len = v.getUint32(at + 8, true);
    if (at + 12 + len > end) throw cutShort(end - start, 'results frame cut short at result', i, count);
    each(first + i, index, bytes.subarray(at + 12, at + 12 + len));
    at += 12 + len;
  }
  return bytes[start + 2]!;
}

export interface ReadItem {
  key: string;
  /** The app queried (its query is `key`); undefined: a KV read. */
  app: string | undefined;
}

/** A batch of reads by one mode (encoded in a fresh buffer: batches are sent once, then resent whole). */
export function encodeReads(batch: number, mode: LocalReadMode, reads: readonly ReadItem[]): Uint8Array {
  // Sizes first and the strings written straight into the frame: no byte array per key (a
  // front door's every read passes here).
  let size = readsHeaderBytes;
  for (const r of reads) {
    const appBytes = r.app === undefined ? 0 : Buffer.byteLength(r.app, 'utf8');
    if (r.app !== undefined && (appBytes === 0 || appBytes > 255)) throw new RangeError(`an app name is 1 to 255 bytes (got ${appBytes})`);
    size += 5 + appBytes + Buffer.byteLength(r.key, 'utf8');
  }
  const b = Buffer.allocUnsafe(size);
  const v = viewOf(b);
  b[0] = rawFrameTag;
  b[1] = FrameKind.reads;
  b[2] = readModeCodes.indexOf(mode);
  b[3] = 0;
  v.setUint32(4, reads.length, true);
  v.setFloat64(8, batch, true);
  let at = readsHeaderBytes;
  for (const r of reads) {
    const head = at;
    at += 5;
    const appBytes = r.app === undefined ? 0 : b.write(r.app, at, 'utf8');
    at += appBytes;
    const keyBytes = b.write(r.key, at, 'utf8');
    at += keyBytes;
    b[head] = appBytes;
    v.setUint32(head + 1, keyBytes, true);
  }
  return b;
}

export function decodeReads(bytes: Uint8Array, start: number, end: number): { batch: number; mode: LocalReadMode; reads: ReadItem[] } {
  if (end - start < readsHeaderBytes) throw new DecodeError(end - start, 'reads frame shorter than its header');
  const v = viewOf(bytes);
  const mode = readModeCodes[bytes[start + 2]!];
  if (mode === undefined) throw new DecodeError(end - start, `reads frame with unknown mode ${bytes[start + 2]}`);
  const count = v.getUint32(start + 4, true);
  const reads: ReadItem[] = [];
  let at = start + readsHeaderBytes;
  for (let i = 0; i < count; i++) {
    if (at + 5 > end) throw cutShort(end - start, 'reads frame cut short at read', i, count);
    const appLen = bytes[at]!;
    const keyLen = v.getUint32(at + 1, true);
    at += 5;
    if (at + appLen + keyLen > end) throw cutShort(end - start, 'reads frame cut short at read', i, count);
    const app = appLen === 0 ? undefined : fromUtf8.decode(bytes.subarray(at, at + appLen));
    at += appLen;
    reads.push({ key: fromUtf8.decode(bytes.subarray(at, at + keyLen)), app });
    at += keyLen;
  }
  return { batch: v.getFloat64(start + 8, true), mode, reads };
}

export interface ReadAnswers {
  batch: number;
  status: (typeof ReadStatus)[keyof typeof ReadStatus];
  index: number;
  applied: number;
  commit: number;
  /** Redirect: the node believed to lead (0: unknown). */
  leader: number;
  /** The position in the batch of values[0]. */
  first: number;
  /** Status ok: one per read, in order (null: absent; views of the frame). Refused: the reason. */
  values: (Uint8Array | null)[];
}

/** Read answers (a fresh buffer). */
export function encodeReadAnswers(a: ReadAnswers): Uint8Array {
  let size = answersHeaderBytes;
  for (const x of a.values) size += 4 + (x?.length ?? 0);
  const b = new Uint8Array(size);
  const v = viewOf(b);
  b[0] = rawFrameTag;
  b[1] = FrameKind.readAnswers;
  b[2] = a.status;
  v.setUint32(4, a.values.length, true);
  v.setFloat64(8, a.batch, true);
  v.setFloat64(16, a.index, true);
  v.setFloat64(24, a.applied, true);
  v.setFloat64(32, a.commit, true);
  v.setUint16(40, a.leader, true);
  v.setUint32(44, a.first, true);
  let at = answersHeaderBytes;
  for (const x of a.values) {
    v.setInt32(at, x === null ? -1 : x.length, true);
    at += 4;
    if (x !== null) {
      b.set(x, at);
      at += x.length;
    }
  }
  return b;
}

export function decodeReadAnswers(bytes: Uint8Array, start: number, end: number): ReadAnswers {
  if (end - start < answersHeaderBytes) throw new DecodeError(end - start, 'read answers frame shorter than its header');
  const v = viewOf(bytes);
  const status = bytes[start + 2]! as ReadAnswers['status'];
  if (status > ReadStatus.refused) throw new DecodeError(end - start, `read answers with unknown status ${status}`);
  const count = v.getUint32(start + 4, true);
  const values: (Uint8Array | null)[] = [];
  let at = start + answersHeaderBytes;
  for (let i = 0; i < count; i++) {
    if (at + 4 > end) throw cutShort(end - start, 'read answers cut short at', i, count);
    const len = v.getInt32(at, true);
    at += 4;
    if (len < 0) {
      values.push(null);
      continue;
    }
    if (at + len > end) throw cutShort(end - start, 'read answers cut short at', i, count);
    values.push(bytes.subarray(at, at + len));
    at += len;
  }
  return {
    batch: v.getFloat64(start + 8, true),
    status,
    index: v.getFloat64(start + 16, true),
    applied: v.getFloat64(start + 24, true),
    commit: v.getFloat64(start + 32, true),
    leader: v.getUint16(start + 40, true),
    first: v.getUint32(start + 44, true),
    values,
  };
}

export function refusalText(a: ReadAnswers): string {
  return a.values[0] ? fromUtf8.decode(a.values[0]) : 'refused';
}

export function refusal(batch: number, why: string): Uint8Array {
  return encodeReadAnswers({ batch, status: ReadStatus.refused, index: 0, applied: 0, commit: 0, leader: 0, first: 0, values: [utf8.encode(why)] });
}

// Errors are built in functions of their own: on this V8 a template literal in a hot function's
// never-taken throw still converted its numbers to strings on every call (NumberToString in
// profiles of the per-entry paths).
function resultsMissing(client: number, stream: number, acked: number, kept: number): Error {
  return new Error(`client ${client}/${stream}: ${acked} commands acked but ${kept} results kept`);
}
