// Hand-packed binary frames for the cluster's hot paths: Raft messages between nodes, and the
// client-actor protocol (many proposals per frame, one cumulative ack). Commands stay opaque bytes.
// It must never re-encode or inspect command bytes, and never allocate per entry on the send side.
//
// Every frame starts with runtime's rawFrameTag (0xff, never the first byte of a CBOR item), then
// a kind byte; numbers are little-endian. Layouts:
//
//   raft (kind 1)    0 tag | 1 kind | 2 type u8 | 3 reject u8 | 4 from u16 | 6 to u16
//                    8 term f64 | 16 logTerm f64 | 24 index f64 | 32 commit f64
//                    40 rejectHint f64 | 48 context f64 | 56 entry count u32
//                    60 first entry index f64 (only when count > 0), then per entry:
//                    term u32 | kind u8 | data length u32 | data       (indexes are consecutive)
//   propose (kind 2) 0 tag | 1 kind | 2 flags u8 (bit 0: answer with results, client-wire.ts;
//                    bit 1: the stream starts here)
//                    3 stream u8 | 4 count u32 | 8 first seq f64, then per command:
//                    length u32 | bytes        (seqs first, first + 1, ...). A client's streams
//                    are independent sessions (the supervisor runs one per node it acts through).
//   ack (3), redirect (4), busy (5), held (6)
//                    0 tag | 1 kind | 2 leader u16 (redirect: the hint, 0 = unknown) | 4 stream u8
//                    5 not taken u8 (redirect: 1 = this node took nothing from seq on; 0 = go back,
//                    what it took may still be applied) | 8 seq f64: ack = every proposal up to seq is applied; redirect/busy = the
//                    first seq the client must send again (to the hinted leader / after a pause);
//                    held (node to node) = every voter holds the log durably up to this index
//   snapshot chunk (7, leader to follower)
//                    0 tag | 1 kind | 2 unused u16 | 4 headerCrc u32 | 8 leader term f64
//                    16 index f64 | 24 snapshot term f64 | 32 file bytes f64 | 40 offset f64 | 48 bytes
//   snapshot ack (8, follower to leader)
//                    0 tag | 1 kind | 2 done u8 | 3 unused | 4 headerCrc u32 | 8 index f64
//                    16 snapshot term f64 | 24 file bytes f64 | 32 have f64: the receiver holds
//                    bytes [0, have) of that file; done = it is complete and verified
//   witness snapshot (9, leader to a witness, which keeps no state machine: no image travels)
//                    0 tag | 1 kind | 2 unused u16 | 4 unused u32 | 8 leader term f64
//                    16 index f64 | 24 snapshot term f64 | 32 the configuration at index
//                    (encodeMembership bytes, to the end of the frame)
import { rawFrameTag } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { type Entry, type EntryKind, type Message, type MessageType } from '../../protocols/raft/index.ts';

// 10-12 are Multi-Paxos's (paxos-wire.ts, paxos-host.ts); 13-15 the client pipeline's (client-wire.ts).
export const FrameKind = { raft: 1, propose: 2, ack: 3, redirect: 4, busy: 5, held: 6, snapshotChunk: 7, snapshotAck: 8, witnessSnapshot: 9, results: 13, reads: 14, readAnswers: 15 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Frame kinds a node sends its clients: when they reach a node, they are for its client port's pipeline (node-door.ts). */
export function isClientAnswer(kind: number): boolean {
  return kind === FrameKind.results || kind === FrameKind.readAnswers || kind === FrameKind.redirect || kind === FrameKind.busy || kind === FrameKind.ack;
}

const raftHeaderBytes = 60;
const entryHeaderBytes = 9;
export const proposeHeaderBytes = 16;
export const commandHeaderBytes = 4;
const controlFrameBytes = 16;
const termMax = 0xffffffff;
const noEntries: readonly Entry[] = Object.freeze([]);

/** A growable scratch buffer: encoders write here and hand out a view valid until the next encode. */
class Scratch {
  bytes = new Uint8Array(1 << 16);
  view = new DataView(this.bytes.buffer);
  ensure(n: number): void {
    if (n <= this.bytes.length) return;
    let size = this.bytes.length;
    while (size < n) size *= 2;
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
}

const scratch = new Scratch();

/**
 * Encodes a Raft message. The result is a view of a shared scratch buffer, valid until the next
 * encode on this thread: send it at once (OutLink copies frames it cannot write immediately).
 */
export function encodeRaft(m: Message): Uint8Array {
  const entries = m.entries;
  const n = entries.length;
  let size = raftHeaderBytes;
  if (n > 0) {
    size += 8;
    for (let i = 0; i < n; i++) size += entryHeaderBytes + entries[i]!.data.length;
  }
  scratch.ensure(size);
  const b = scratch.bytes;
  const v = scratch.view;
  b[0] = rawFrameTag;
  b[1] = FrameKind.raft;
  b[2] = m.type;
  b[3] = m.reject ? 1 : 0;
  v.setUint16(4, m.from, true);
  v.setUint16(6, m.to, true);
  v.setFloat64(8, m.term, true);
  v.setFloat64(16, m.logTerm, true);
  v.setFloat64(24, m.index, true);
  v.setFloat64(32, m.commit, true);
  v.setFloat64(40, m.rejectHint, true);
  v.setFloat64(48, m.context, true);
  v.setUint32(56, n, true);
  if (n > 0) {
    const first = entries[0]!.index;
    v.setFloat64(60, first, true);
    let o = 68;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      if (e.index !== first + i || e.term > termMax) throw badFrameEntry(i, e.index, first + i);
      const data = e.data;
      v.setUint32(o, e.term, true);
      b[o + 4] = e.kind;
      v.setUint32(o + 5, data.length, true);
      o += entryHeaderBytes;
      b.set(data, o);
      o += data.length;
    }
  }
  return b.subarray(0, size);
}

function frameView(bytes: Uint8Array): DataView {
  const buffer = bytes.buffer;
  // A frame in a buffer of its own (copied out of a ring, or from the simulator) is read once:
  // caching its view would only cost a WeakMap entry.
  if (buffer.byteLength === bytes.byteLength) return new DataView(buffer, bytes.byteOffset, bytes.byteLength);
  // One DataView per backing buffer: ring memory is a handful of buffers reused for every frame.
  let v = views.get(buffer);
  if (v === undefined || v.byteOffset !== bytes.byteOffset) {
    v = new DataView(buffer, bytes.byteOffset, bytes.byteLength);
    views.set(buffer, v);
  }
  return v;
}
const views = new WeakMap<ArrayBufferLike, DataView>();

/**
 * Decodes a Raft frame from ring memory. Entry data are views of one copy of the frame's
 * entries, made here: one allocation per frame, none per entry beyond the Entry and its view.
 */
export function decodeRaft(bytes: Uint8Array, start: number, end: number): Message {
  if (end - start < raftHeaderBytes || bytes[start + 1] !== FrameKind.raft) throw new DecodeError(end - start, 'not a raft frame');
  const v = frameView(bytes);
  const n = v.getUint32(start + 56, true);
  let entries: readonly Entry[] = noEntries;
  if (n > 0) {
    const copy = bytes.slice(start + 68, end);
    const buffer = copy.buffer; // once: `.buffer` is a slow builtin call
    const cv = new DataView(buffer);
    const first = v.getFloat64(start + 60, true);
    const list: Entry[] = new Array(n);
    let o = 0;
    for (let i = 0; i < n; i++) {
      if (o + entryHeaderBytes > copy.length) throw cutShort(end - start, 'raft frame cut short in entry', i, n);
      const len = cv.getUint32(o + 5, true);
      const dataStart = o + entryHeaderBytes;
      if (dataStart + len > copy.length) throw cutShort(end - start, 'raft frame cut short in entry', i, n);
      list[i] = { index: first + i, term: cv.getUint32(o, true), kind: copy[o + 4]! as EntryKind, data: new Uint8Array(buffer, dataStart, len) };
      o = dataStart + len;
    }
    entries = list;
  }
  return {
    type: bytes[start + 2]! as MessageType,
    from: v.getUint16(start + 4, true),
    to: v.getUint16(start + 6, true),
    term: v.getFloat64(start + 8, true),
    logTerm: v.getFloat64(start + 16, true),
    index: v.getFloat64(start + 24, true),
    entries,
    commit: v.getFloat64(start + 32, true),
    reject: bytes[start + 3] === 1,
    rejectHint: v.getFloat64(start + 40, true),
    context: v.getFloat64(start + 48, true),
  };
}

/** The kind of a raw frame (its second byte); throws DecodeError on a frame too short to have one. */
export function frameKind(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < 2) throw new DecodeError(end - start, 'raw frame shorter than its header');
  return bytes[start + 1]!;
}

/**
 * Builds propose frames in a caller-owned buffer: `begin`, then `add` each command, then `finish`.
 * The client writes its commands straight into the frame, so nothing is allocated per proposal.
 */
export class ProposeFrameWriter {
  bytes: Uint8Array;
  private view: DataView;
  private length = 0;
  private count = 0;

  constructor(readonly commandsMax: number, readonly commandBytesMax: number) {
    this.bytes = new Uint8Array(proposeHeaderBytes + commandsMax * (commandHeaderBytes + commandBytesMax));
    this.view = new DataView(this.bytes.buffer);
  }

  begin(firstSeq: number, flags = 0, stream = 0): void {
    this.bytes[0] = rawFrameTag;
    this.bytes[1] = FrameKind.propose;
    this.bytes[2] = flags;
    this.bytes[3] = stream;
    this.view.setFloat64(8, firstSeq, true);
    this.length = proposeHeaderBytes;
    this.count = 0;
  }

  get commands(): number {
    return this.count;
  }

  /** Reserves room for a command of `bytes` bytes and returns where its bytes start. */
  add(bytes: number): number {
    if (this.count >= this.commandsMax || bytes > this.commandBytesMax) throw proposeFrameFull(this.commandsMax, this.commandBytesMax);
    this.view.setUint32(this.length, bytes, true);
    const at = this.length + commandHeaderBytes;
    this.length = at + bytes;
    this.count++;
    return at;
  }

  finish(): Uint8Array {
    this.view.setUint32(4, this.count, true);
    return this.bytes.subarray(0, this.length);
  }
}

/** Propose flag: the client wants each command's result back (a results frame instead of an ack). */
export const proposeWantsResults = 1;
/**
 * Propose flag: the client's stream starts here, whatever this node knew of it (the first frame
 * the client sends to a node after talking to another: it may have gone on there meanwhile).
 */
export const proposeStartsStream = 2;

/** Reads a propose frame's header: how many commands, the seq of the first, flags and stream. */
export function proposeHeader(bytes: Uint8Array, start: number, end: number): { count: number; firstSeq: number; flags: number; stream: number } {
  if (end - start < proposeHeaderBytes) throw new DecodeError(end - start, 'propose frame shorter than its header');
  const v = frameView(bytes);
  return { count: v.getUint32(start + 4, true), firstSeq: v.getFloat64(start + 8, true), flags: bytes[start + 2]!, stream: bytes[start + 3]! };
}

/**
 * A length-prefixed command inside a frame; u32 little-endian at `at`. Read byte by byte: the
 * leader calls it once per proposal on a fresh copy of each frame, where frameView would miss
 * its cache and allocate a DataView and a WeakMap entry per frame.
 */
export function commandLength(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

const controlScratch = new Uint8Array(controlFrameBytes);
const controlView = new DataView(controlScratch.buffer);

/** An ack, redirect or busy frame (a view of a shared scratch buffer: send it at once). */
export function encodeControl(kind: typeof FrameKind.ack | typeof FrameKind.redirect | typeof FrameKind.busy | typeof FrameKind.held, seq: number, leader = 0, stream = 0, notTaken = false): Uint8Array {
  controlScratch[0] = rawFrameTag;
  controlScratch[1] = kind;
  controlView.setUint16(2, leader, true);
  controlScratch[4] = stream;
  controlScratch[5] = notTaken ? 1 : 0;
  controlView.setFloat64(8, seq, true);
  return controlScratch;
}

export function decodeControl(bytes: Uint8Array, start: number, end: number): { kind: number; seq: number; leader: number; stream: number; notTaken: boolean } {
  if (end - start < controlFrameBytes) throw new DecodeError(end - start, 'control frame shorter than 16 bytes');
  const v = frameView(bytes);
  return { kind: bytes[start + 1]!, seq: v.getFloat64(start + 8, true), leader: v.getUint16(start + 2, true), stream: bytes[start + 4]!, notTaken: bytes[start + 5] === 1 };
}

/** Which snapshot file a transfer is about: its headerCrc tells two images at one index apart. */
export interface SnapshotKey {
  index: number;
  term: number;
  fileBytes: number;
  headerCrc: number;
}

const snapshotChunkHeaderBytes = 48;
const snapshotAckBytes = 40;

/** A chunk of a snapshot file (a fresh frame: chunks are few and large). */
export function encodeSnapshotChunk(key: SnapshotKey, leaderTerm: number, offset: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(snapshotChunkHeaderBytes + data.length);
  const v = new DataView(b.buffer);
  b[0] = rawFrameTag;
  b[1] = FrameKind.snapshotChunk;
  v.setUint32(4, key.headerCrc, true);
  v.setFloat64(8, leaderTerm, true);
  v.setFloat64(16, key.index, true);
  v.setFloat64(24, key.term, true);
  v.setFloat64(32, key.fileBytes, true);
  v.setFloat64(40, offset, true);
  b.set(data, snapshotChunkHeaderBytes);
  return b;
}

/** Decodes a chunk; `data` is a view of ring memory, valid only during the receive call. */
export function decodeSnapshotChunk(bytes: Uint8Array, start: number, end: number): { key: SnapshotKey; leaderTerm: number; offset: number; data: Uint8Array } {
  if (end - start < snapshotChunkHeaderBytes) throw new DecodeError(end - start, 'snapshot chunk shorter than its header');
  const v = frameView(bytes);
  const key = { index: v.getFloat64(start + 16, true), term: v.getFloat64(start + 24, true), fileBytes: v.getFloat64(start + 32, true), headerCrc: v.getUint32(start + 4, true) };
  const offset = v.getFloat64(start + 40, true);
  if (!(Number.isSafeInteger(key.index) && Number.isSafeInteger(key.fileBytes) && Number.isSafeInteger(offset) && offset >= 0 && offset + (end - start - snapshotChunkHeaderBytes) <= key.fileBytes)) {
    throw new DecodeError(end - start, `snapshot chunk with impossible fields (index ${key.index}, offset ${offset}, file ${key.fileBytes} bytes)`);
  }
  return { key, leaderTerm: v.getFloat64(start + 8, true), offset, data: bytes.subarray(start + snapshotChunkHeaderBytes, end) };
}

const ackScratch = new Uint8Array(snapshotAckBytes);
const ackView = new DataView(ackScratch.buffer);

/** The receiver's progress on one file (a view of a shared scratch buffer: send it at once). */
export function encodeSnapshotAck(key: SnapshotKey, have: number, done: boolean): Uint8Array {
  ackScratch[0] = rawFrameTag;
  ackScratch[1] = FrameKind.snapshotAck;
  ackScratch[2] = done ? 1 : 0;
  ackView.setUint32(4, key.headerCrc, true);
  ackView.setFloat64(8, key.index, true);
  ackView.setFloat64(16, key.term, true);
  ackView.setFloat64(24, key.fileBytes, true);
  ackView.setFloat64(32, have, true);
  return ackScratch;
}

export function decodeSnapshotAck(bytes: Uint8Array, start: number, end: number): { key: SnapshotKey; have: number; done: boolean } {
  if (end - start < snapshotAckBytes) throw new DecodeError(end - start, 'snapshot ack shorter than 40 bytes');
  const v = frameView(bytes);
  return {
    key: { index: v.getFloat64(start + 8, true), term: v.getFloat64(start + 16, true), fileBytes: v.getFloat64(start + 24, true), headerCrc: v.getUint32(start + 4, true) },
    have: v.getFloat64(start + 32, true),
    done: bytes[start + 2] === 1,
  };
}

const witnessSnapshotHeaderBytes = 32;

/** A snapshot for a witness: where its log restarts and the configuration there, without an image. */
export function encodeWitnessSnapshot(leaderTerm: number, index: number, term: number, membership: Uint8Array): Uint8Array {
  const b = new Uint8Array(witnessSnapshotHeaderBytes + membership.length);
  const v = new DataView(b.buffer);
  b[0] = rawFrameTag;
  b[1] = FrameKind.witnessSnapshot;
  v.setFloat64(8, leaderTerm, true);
  v.setFloat64(16, index, true);
  v.setFloat64(24, term, true);
  b.set(membership, witnessSnapshotHeaderBytes);
  return b;
}

/** Decodes a witness snapshot; `membership` is a copy (the frame is ring memory). */
export function decodeWitnessSnapshot(bytes: Uint8Array, start: number, end: number): { leaderTerm: number; index: number; term: number; membership: Uint8Array } {
  if (end - start < witnessSnapshotHeaderBytes) throw new DecodeError(end - start, 'witness snapshot shorter than its header');
  const v = frameView(bytes);
  const index = v.getFloat64(start + 16, true);
  const term = v.getFloat64(start + 24, true);
  if (!(Number.isSafeInteger(index) && index > 0 && Number.isSafeInteger(term) && term >= 0 && term <= termMax)) {
    throw new DecodeError(end - start, `witness snapshot with impossible fields (index ${index}, term ${term})`);
  }
  return { leaderTerm: v.getFloat64(start + 8, true), index, term, membership: bytes.slice(start + witnessSnapshotHeaderBytes, end) };
}

// Errors are built in functions of their own: on this V8 a template literal in a hot function's
// never-taken throw still converted its numbers to strings on every call (NumberToString in
// profiles of the per-entry paths).
function badFrameEntry(i: number, index: number, expected: number): RangeError {
  return new RangeError(`raft frame: entry ${i} has index ${index} (expected ${expected}) or a term beyond ${termMax}`);
}

function proposeFrameFull(commandsMax: number, commandBytesMax: number): RangeError {
  return new RangeError(`propose frame holds ${commandsMax} commands of at most ${commandBytesMax} bytes`);
}

/** A frame that ends inside its i-th of n parts: `where` says which frame and part ("… cut short in entry"). */
export function cutShort(frameBytes: number, where: string, i: number, n: number): DecodeError {
  return new DecodeError(frameBytes, `${where} ${i} of ${n}`);
}
