import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FaultTable, LinkFaults } from '../../runtime/faults.ts';
import { OutLink } from '../../runtime/link.ts';
import { Ring } from '../../runtime/ring.ts';

function cleanLink(ring: Ring): OutLink {
  const faults = new LinkFaults(new FaultTable(FaultTable.allocate(2)), 1, 2, 1);
  return new OutLink(ring, faults, () => {
    throw new Error('nothing should be dropped on a clean link');
  });
}

// The doorbell word is 1 while the reader says it sleeps; a wake-up swaps it back to 0.
const readerSleeps = (ring: Ring) => Atomics.store(ring.doorbell.word, 0, 1);
const readerWoken = (ring: Ring) => Atomics.load(ring.doorbell.word, 0) === 0;

test('outside a batch every frame wakes the reader at once', () => {
  const ring = Ring.create(1024);
  const link = cleanLink(ring);
  readerSleeps(ring);
  link.send(new Uint8Array([1, 2, 3]));
  assert.ok(readerWoken(ring));
});

test('in a batch frames are written at once but the reader is woken once, at publish', () => {
  const ring = Ring.create(1024);
  const link = cleanLink(ring);
  readerSleeps(ring);
  link.setDeferWakeups(true);
  link.send(new Uint8Array([1]));
  link.send(new Uint8Array([2, 2]));
  assert.not.ok(readerWoken(ring), 'no wake-up before the batch ends');
  assert.not.ok(ring.isEmpty(), 'the frames are in the ring already');
  link.setDeferWakeups(false);
  assert.ok(readerWoken(ring), 'the end of the batch wakes the reader');
  const got: number[][] = [];
  ring.read((b, s, e) => got.push([...b.subarray(s, e)]), Infinity);
  assert.equal(got, [[1], [2, 2]]);
});

test('a batch that sent nothing does not ring the doorbell', () => {
  const ring = Ring.create(1024);
  const link = cleanLink(ring);
  readerSleeps(ring);
  link.setDeferWakeups(true);
  link.setDeferWakeups(false);
  assert.not.ok(readerWoken(ring));
});

test('in a batch a full ring still wakes the reader, so it can make room', () => {
  const ring = Ring.create(64);
  const link = cleanLink(ring);
  link.setDeferWakeups(true);
  const frame = new Uint8Array(20);
  for (let sent = 0; link.queuedFrames() === 0; sent++) {
    assert.ok(sent < 10, 'a 64-byte ring fills within a few frames');
    readerSleeps(ring);
    link.send(frame);
    // Frames that fit wait for the batch's end; the one that does not fit wakes the reader now.
    assert.is(readerWoken(ring), link.queuedFrames() > 0);
  }
  link.close();
});

test.run();
