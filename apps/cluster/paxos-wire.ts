// Hand-packed frames for Paxos messages between nodes, in the style of wire.ts (which packs Raft's):
// values stay opaque bytes, copied into the frame once and out of it once, never re-encoded.
//
//   paxos (kind 10)  0 tag | 1 kind | 2 type u8 | 3 unused | 4 from u16 | 6 to u16
//                    8 ballot f64 | 16 slot f64 | 24 commit f64 | 32 context f64
//                    40 proposals u32 | 44 slots u32 | 48 chosen u32 | 52 slot runs u32, then
//                    proposals: slot f64 | ballot f64 | kind u8 | length u32 | data
//                    slots:     runs of consecutive slots: first f64 | count u32 (they come in
//                               runs: an acceptor acks the slots of an accept, a leader names
//                               the slots it got chosen)
//                    chosen:    slot f64 | kind u8 | length u32 | data
//
// The kind byte shares wire.ts's FrameKind space (1..9 there): 10 is the Paxos frame.
import { rawFrameTag } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import type { Chosen, PaxosMessage, PaxosMessageType, Proposal, ValueKind } from '../../protocols/paxos/index.ts';

export const paxosFrameKind = 10;

const headerBytes = 56;
const proposalFixedBytes = 21;
const chosenFixedBytes = 13;

const slotRunBytes = 12;

/** Slots as (first, count) pairs of consecutive runs, flattened. */
function slotRuns(slots: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < slots.length; ) {
    const first = slots[i]!;
    let n = 1;
    while (i + n < slots.length && slots[i + n] === first + n) n++;
    out.push(first, n);
    i += n;
  }
  return out;
}
const none: readonly never[] = Object.freeze([]);

let scratch = new Uint8Array(1 << 16);
let view = new DataView(scratch.buffer);

function ensure(n: number): void {
  if (n <= scratch.length) return;
  let size = scratch.length;
  while (size < n) size *= 2;
  scratch = new Uint8Array(size);
  view = new DataView(scratch.buffer);
}

/** Encodes a Paxos message into a shared scratch buffer: valid until the next encode, send it at once. */
export function encodePaxos(m: PaxosMessage): Uint8Array {
  const runs = slotRuns(m.slots);
  let size = headerBytes + (runs.length / 2) * slotRunBytes;
  for (const p of m.proposals) size += proposalFixedBytes + p.value.data.length;
  for (const c of m.chosen) size += chosenFixedBytes + c.value.data.length;
  ensure(size);
  const b = scratch;
  const v = view;
  b[0] = rawFrameTag;
  b[1] = paxosFrameKind;
  b[2] = m.type;
  b[3] = 0;
  v.setUint16(4, m.from, true);
  v.setUint16(6, m.to, true);
  v.setFloat64(8, m.ballot, true);
  v.setFloat64(16, m.slot, true);
  v.setFloat64(24, m.commit, true);
  v.setFloat64(32, m.context, true);
  v.setUint32(40, m.proposals.length, true);
  v.setUint32(44, m.slots.length, true);
  v.setUint32(48, m.chosen.length, true);
  v.setUint32(52, runs.length / 2, true);
  let o = headerBytes;
  for (const p of m.proposals) {
    v.setFloat64(o, p.slot, true);
    v.setFloat64(o + 8, p.ballot, true);
    b[o + 16] = p.value.kind;
    v.setUint32(o + 17, p.value.data.length, true);
    o += proposalFixedBytes;
    b.set(p.value.data, o);
    o += p.value.data.length;
  }
  for (let i = 0; i < runs.length; i += 2) {
    v.setFloat64(o, runs[i]!, true);
    v.setUint32(o + 8, runs[i + 1]!, true);
    o += slotRunBytes;
  }
  for (const c of m.chosen) {
    v.setFloat64(o, c.slot, true);
    b[o + 8] = c.value.kind;
    v.setUint32(o + 9, c.value.data.length, true);
    o += chosenFixedBytes;
    b.set(c.value.data, o);
    o += c.value.data.length;
  }
  return b.subarray(0, size);
}

/** Decodes a Paxos frame from ring memory: values are views of one copy of the frame's body. */
/** Rewrites the destination of an encoded frame (the same content sent to several nodes). */
export function setFrameTo(frame: Uint8Array, to: number): void {
  new DataView(frame.buffer, frame.byteOffset, frame.byteLength).setUint16(6, to, true);
}

export function decodePaxos(bytes: Uint8Array, start: number, end: number): PaxosMessage {
  const len = end - start;
  if (len < headerBytes || bytes[start + 1] !== paxosFrameKind) throw new DecodeError(len, 'not a paxos frame');
  const copy = bytes.slice(start, end);
  const v = new DataView(copy.buffer);
  const nProposals = v.getUint32(40, true);
  const nSlots = v.getUint32(44, true);
  const nChosen = v.getUint32(48, true);
  const short = (what: string) => new DecodeError(len, `paxos frame cut short in ${what}`);
  let o = headerBytes;
  let proposals: readonly Proposal[] = none;
  if (nProposals > 0) {
    const list: Proposal[] = new Array(nProposals);
    for (let i = 0; i < nProposals; i++) {
      if (o + proposalFixedBytes > len) throw short(`proposal ${i} of ${nProposals}`);
      const n = v.getUint32(o + 17, true);
      const at = o + proposalFixedBytes;
      if (at + n > len) throw short(`proposal ${i} of ${nProposals}`);
      list[i] = { slot: v.getFloat64(o, true), ballot: v.getFloat64(o + 8, true), value: { kind: copy[o + 16]! as ValueKind, data: copy.subarray(at, at + n) } };
      o = at + n;
    }
    proposals = list;
  }
  let slots: readonly number[] = none;
  if (nSlots > 0) {
    const nRuns = v.getUint32(52, true);
    if (nRuns > nSlots || o + nRuns * slotRunBytes > len) throw short('its slots');
    const list: number[] = new Array(nSlots);
    let k = 0;
    for (let r = 0; r < nRuns; r++, o += slotRunBytes) {
      const first = v.getFloat64(o, true);
      const count = v.getUint32(o + 8, true);
      if (k + count > nSlots) throw new DecodeError(len, `paxos frame with slot runs longer than its ${nSlots} slots`);
      for (let j = 0; j < count; j++) list[k++] = first + j;
    }
    if (k !== nSlots) throw new DecodeError(len, `paxos frame with ${k} slots in its runs, not ${nSlots}`);
    slots = list;
  }
  let chosen: readonly Chosen[] = none;
  if (nChosen > 0) {
    const list: Chosen[] = new Array(nChosen);
    for (let i = 0; i < nChosen; i++) {
      if (o + chosenFixedBytes > len) throw short(`chosen value ${i} of ${nChosen}`);
      const n = v.getUint32(o + 9, true);
      const at = o + chosenFixedBytes;
      if (at + n > len) throw short(`chosen value ${i} of ${nChosen}`);
      list[i] = { slot: v.getFloat64(o, true), value: { kind: copy[o + 8]! as ValueKind, data: copy.subarray(at, at + n) } };
      o = at + n;
    }
    chosen = list;
  }
  return {
    type: copy[2]! as PaxosMessageType,
    from: v.getUint16(4, true),
    to: v.getUint16(6, true),
    ballot: v.getFloat64(8, true),
    slot: v.getFloat64(16, true),
    proposals,
    slots,
    chosen,
    commit: v.getFloat64(24, true),
    context: v.getFloat64(32, true),
  };
}
