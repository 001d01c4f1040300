import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Doorbell, FrameTooLargeError, Ring } from '../../runtime/ring.ts';
import { createRng } from '../../runtime/rng.ts';

function frame(seq: number, length: number): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = (seq * 31 + i * 7) & 0xff;
  return f;
}

function readAll(ring: Ring, max = Infinity): Uint8Array[] {
  const out: Uint8Array[] = [];
  ring.read((b, s, e) => out.push(b.slice(s, e)), max);
  return out;
}

test('frames come out in order and intact across many wrap-arounds, with random sizes', () => {
  const ring = Ring.create(256);
  const rng = createRng(42);
  const sent: Uint8Array[] = [];
  const got: Uint8Array[] = [];
  let seq = 0;
  for (let round = 0; round < 5_000; round++) {
    // Write a random number of random-size frames until the ring refuses one.
    const want = rng.int(1, 6);
    for (let i = 0; i < want; i++) {
      const f = frame(seq, rng.int(0, ring.frameBytesMax + 1));
      if (!ring.tryWrite(f)) break;
      sent.push(f);
      seq++;
    }
    got.push(...readAll(ring, rng.int(1, 4)));
  }
  got.push(...readAll(ring));
  assert.ok(seq > 5_000, `wrote ${seq} frames`);
  assert.is(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.equal(got[i], sent[i], `frame ${i}`);
});

test('property: any interleaving of writes and reads delivers exactly what was accepted', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ w: fc.integer({ min: 0, max: 124 }) }), fc.record({ r: fc.integer({ min: 1, max: 5 }) })), { maxLength: 300 }),
      (ops) => {
        const ring = Ring.create(256);
        const accepted: Uint8Array[] = [];
        const got: Uint8Array[] = [];
        let seq = 0;
        for (const op of ops) {
          if ('w' in op) {
            const f = frame(seq++, op.w);
            if (ring.tryWrite(f)) accepted.push(f);
            else assert.ok(ring.usedBytes() > 0, 'an empty ring refused a legal frame');
          } else got.push(...readAll(ring, op.r));
        }
        got.push(...readAll(ring));
        assert.is(got.length, accepted.length);
        got.forEach((g, i) => assert.equal(g, accepted[i]));
        assert.is(ring.usedBytes(), 0);
      },
    ),
    { numRuns: 300, seed: 7 },
  );
});

test('a full ring refuses writes without overwriting, and accepts again once read', () => {
  const ring = Ring.create(128);
  let accepted = 0;
  while (ring.tryWrite(frame(accepted, 28))) accepted++;
  assert.is(accepted, 4, 'four 32-byte frames fill 128 bytes');
  assert.not.ok(ring.tryWrite(frame(99, 28)));
  assert.not.ok(ring.tryWrite(new Uint8Array(0)), 'not even an empty frame fits a full ring');
  const first = readAll(ring, 1);
  assert.equal(first[0], frame(0, 28));
  assert.ok(ring.tryWrite(frame(accepted, 28)));
  const rest = readAll(ring);
  assert.is(rest.length, accepted);
  rest.forEach((f, i) => assert.equal(f, frame(i + 1, 28)));
});

test('a frame larger than half the ring is refused with an error that says the limit', () => {
  const ring = Ring.create(1024);
  assert.is(ring.frameBytesMax, 508);
  assert.ok(ring.tryWrite(new Uint8Array(508)));
  assert.throws(() => ring.tryWrite(new Uint8Array(509)), (e: Error) => e instanceof FrameTooLargeError && /509 bytes exceeds this ring's limit of 508/.test(e.message));
});

test('a frame at the limit fits an empty ring at every position', () => {
  const ring = Ring.create(256);
  for (let offset = 0; offset < 64; offset++) {
    assert.ok(ring.tryWrite(new Uint8Array(offset * 4 % 100)));
    readAll(ring);
    assert.ok(ring.tryWrite(frame(offset, ring.frameBytesMax)), `max frame refused at offset ${offset}`);
    assert.equal(readAll(ring)[0], frame(offset, ring.frameBytesMax));
  }
});

test('ring sizes are validated', () => {
  assert.throws(() => Ring.create(1000), /power of two/);
  assert.throws(() => Ring.create(16), /from 64/);
});

test('waitWritable resolves when the reader releases space, and times out otherwise', async () => {
  const ring = Ring.create(128);
  while (ring.tryWrite(new Uint8Array(28)));
  assert.is(await ring.waitWritable(28, 30), false);
  const waiting = ring.waitWritable(28, 5_000);
  setTimeout(() => readAll(ring, 1), 10);
  assert.is(await waiting, true);
  assert.ok(ring.tryWrite(new Uint8Array(28)));
  const refused = await ring.waitWritable(10_000).then(() => null, (e: Error) => e);
  assert.instance(refused, FrameTooLargeError);
});

test('a handler that throws loses only its own frame; the ring stays consistent', () => {
  const ring = Ring.create(256);
  for (let i = 0; i < 3; i++) ring.tryWrite(frame(i, 10));
  let calls = 0;
  assert.throws(() => ring.read(() => { calls++; throw new Error('boom'); }), /boom/);
  assert.is(calls, 1);
  assert.equal(readAll(ring), [frame(1, 10), frame(2, 10)]);
});

test('doorbell: a sleeping reader is woken by a write, and only then does the writer notify', async () => {
  const ring = Ring.create(256);
  const bell = ring.doorbell;
  assert.is(Atomics.load(bell.word, 0), 0, 'nobody sleeps: the flag is down');
  const slept = bell.sleep(() => !ring.isEmpty(), 5_000);
  assert.is(Atomics.load(bell.word, 0), 1, 'the reader raised its flag');
  setTimeout(() => ring.tryWrite(frame(1, 8)), 5);
  assert.is(await slept, true);
  assert.is(Atomics.load(bell.word, 0), 0);
  // With data already there, sleep returns at once without waiting.
  const t = performance.now();
  assert.is(await bell.sleep(() => !ring.isEmpty(), 5_000), true);
  assert.ok(performance.now() - t < 1_000);
  assert.is(await new Doorbell().sleep(() => false, 20), false, 'times out when nobody rings');
});

test('discardUnread drops what a dead reader never read', () => {
  const ring = Ring.create(256);
  ring.tryWrite(frame(1, 10));
  ring.tryWrite(frame(2, 10));
  ring.discardUnread();
  assert.ok(ring.isEmpty());
  ring.tryWrite(frame(3, 10));
  assert.equal(readAll(ring), [frame(3, 10)]);
});

test('counters track frames and bytes in and out', () => {
  const ring = Ring.create(256);
  ring.tryWrite(frame(1, 10));
  ring.tryWrite(frame(2, 6));
  readAll(ring, 1);
  const c = ring.counters();
  assert.is(c.framesIn, 2);
  assert.is(c.bytesIn, 16);
  assert.is(c.framesOut, 1);
  assert.is(c.usedBytes, 12);
});

test.run();
