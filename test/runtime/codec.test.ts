import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Codec, DecodeError } from '../../runtime/codec.ts';

const shapes = [['type', 'term', 'entries'], ['type', 'term', 'data']];

test('known shapes encode compactly and decode with a fresh codec', () => {
  const a = new Codec(shapes);
  const msg = { type: 1, term: 7, data: new Uint8Array([1, 2, 3]) };
  const bytes = a.encode(msg);
  const keysSpelled = new Codec([]).encode(msg);
  assert.ok(bytes.length < keysSpelled.length - 8, `shared shape saves the key names (${bytes.length} vs ${keysSpelled.length})`);
  assert.equal(new Codec(shapes).decode(bytes), msg);
});

test('every frame decodes on its own: out of order, duplicated, or after a restart', () => {
  const enc = new Codec(shapes);
  const frames = [
    enc.encode({ type: 1, term: 1, data: new Uint8Array([9]) }),
    enc.encode({ unknown: 'shape', n: 1 }),
    enc.encode({ unknown: 'shape', n: 2 }),
    enc.encode({ type: 2, term: 3, entries: [{ index: 1, term: 3 }] }),
  ];
  const dec = new Codec(shapes);
  for (const i of [3, 2, 2, 0, 1, 3]) assert.ok(dec.decode(frames[i]!) !== undefined);
  assert.equal(dec.decode(frames[2]!), { unknown: 'shape', n: 2 });
  assert.equal(new Codec(shapes).decode(frames[2]!), { unknown: 'shape', n: 2 });
});

test('byte payloads are copied out of the frame, so reusing ring memory cannot change them', () => {
  const codec = new Codec(shapes);
  const ringMemory = new Uint8Array(256);
  const frame = codec.encode({ type: 1, term: 1, data: new Uint8Array([5, 6, 7]) });
  ringMemory.set(frame, 10);
  const m = codec.decode(ringMemory, 10, 10 + frame.length) as { data: Uint8Array };
  ringMemory.fill(0);
  assert.equal([...m.data], [5, 6, 7]);
});

test('a malformed frame throws DecodeError and is counted; the codec keeps working', () => {
  const codec = new Codec(shapes);
  const good = codec.encode({ type: 1, term: 2, data: new Uint8Array(0) });
  assert.throws(() => codec.decode(good.subarray(0, good.length - 2)), (e: Error) => e instanceof DecodeError && /could not decode/.test(e.message));
  assert.throws(() => codec.decode(new Uint8Array([0xff, 0xff, 0xff, 0x1c])), (e: Error) => e instanceof DecodeError);
  assert.is(codec.decodeFailures, 2);
  assert.equal(codec.decode(good), { type: 1, term: 2, data: new Uint8Array(0) });
});

test('bad shape tables are refused with a reason', () => {
  assert.throws(() => new Codec([['a'], ['a']]), /distinct/);
  assert.throws(() => new Codec([[]]), /non-empty/);
  assert.throws(() => new Codec(Array.from({ length: 65 }, (_, i) => [`k${i}`])), /at most 64/);
});

test.run();
