// Paxos frames between nodes (apps/cluster/paxos-wire.ts): every message shape survives the trip
// with its values' bytes and kinds, frames in a larger buffer decode in place, and a frame cut
// short is refused with a DecodeError, never read past its end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DecodeError } from '../../runtime/codec.ts';
import { paxosMessage, PaxosMessageType as T, ValueKind, type PaxosMessage } from '../../protocols/paxos/index.ts';
import { decodePaxos, encodePaxos, paxosFrameKind } from '../../apps/cluster/paxos-wire.ts';

const b = (s: string) => new TextEncoder().encode(s);
// Proposals compared by their fields (a decoded one is its own value: p.value === p).
const plain = (m: PaxosMessage) =>
  JSON.parse(JSON.stringify({ ...m, proposals: m.proposals.map((p) => ({ slot: p.slot, ballot: p.ballot, value: { kind: p.value.kind, data: p.value.data } })) }, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v)));

const samples: PaxosMessage[] = [
  paxosMessage(T.prepare, 1, 2, 131, { slot: 7, commit: 6 }),
  paxosMessage(T.promise, 2, 1, 131, { slot: 7, commit: 6, proposals: [{ slot: 7, ballot: 130, value: { kind: ValueKind.normal, data: b('x') } }, { slot: 9, ballot: 2, value: { kind: ValueKind.noop, data: new Uint8Array(0) } }] }),
  paxosMessage(T.accept, 1, 3, 2 ** 40 + 3, { commit: 2 ** 33, proposals: Array.from({ length: 70 }, (_, i) => ({ slot: 100 + i, ballot: 2 ** 40 + 3, value: { kind: ValueKind.normal, data: b(`value ${i}`.repeat(i)) } })) }),
  paxosMessage(T.accepted, 3, 1, 131, { slots: [100, 101, 2 ** 50] }),
  // Slots travel as runs of consecutive slots: one long run, single slots, a run after a gap.
  paxosMessage(T.accepted, 3, 1, 131, { slots: [...Array.from({ length: 600 }, (_, i) => 1_000 + i), 5, 7, 8, 9] }),
  paxosMessage(T.chosen, 1, 2, 131, { commit: 30, slots: [21, 22, 23, 30, 29] }),
  paxosMessage(T.nack, 3, 1, 259, { slot: 4, commit: 3 }),
  paxosMessage(T.chosen, 1, 2, 131, { commit: 12, chosen: [{ slot: 11, value: { kind: ValueKind.read, data: b('marker') } }, { slot: 12, value: { kind: ValueKind.normal, data: b('') } }] }),
  paxosMessage(T.heartbeat, 1, 2, 131, { commit: 12, context: 77 }),
  paxosMessage(T.heartbeatResp, 2, 1, 131, { commit: 12, context: 77 }),
  paxosMessage(T.catchUp, 2, 1, 0, { slot: 13, commit: 12 }),
];

test('every message shape round-trips, also from inside a larger buffer', () => {
  for (const m of samples) {
    const frame = encodePaxos(m);
    assert.is(frame[0], 0xff);
    assert.is(frame[1], paxosFrameKind);
    assert.equal(plain(decodePaxos(frame, 0, frame.length)), plain(m), `type ${m.type}`);
    const ring = new Uint8Array(frame.length + 20);
    ring.set(frame, 9);
    assert.equal(plain(decodePaxos(ring, 9, 9 + frame.length)), plain(m), `type ${m.type} at an offset`);
  }
});

test('decoded values own their bytes: the next encode does not change them', () => {
  const frame = encodePaxos(samples[1]!);
  const m = decodePaxos(frame, 0, frame.length);
  encodePaxos(samples[2]!); // reuses the scratch buffer `frame` views
  assert.equal(Array.from(m.proposals[0]!.value.data), Array.from(b('x')));
});

test('a frame cut short, or of another kind, is refused with a DecodeError', () => {
  const frame = encodePaxos(samples[2]!).slice();
  for (const cut of [10, 55, 57, 80, frame.length - 1]) assert.throws(() => decodePaxos(frame, 0, cut), (e: unknown) => e instanceof DecodeError);
  const other = frame.slice();
  other[1] = 1;
  assert.throws(() => decodePaxos(other, 0, other.length), (e: unknown) => e instanceof DecodeError);
});

test.run();
