import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Inflights, Progress, ProgressState } from '../../protocols/raft/progress.ts';

test('inflights: bounded window, freed by cumulative acks, wraps around', () => {
  const w = new Inflights(3);
  w.add(5);
  w.add(7);
  w.add(9);
  assert.ok(w.full());
  assert.throws(() => w.add(10), /full/);
  w.freeLE(7);
  assert.is(w.length, 1);
  w.add(12);
  w.add(15);
  assert.ok(w.full(), 'wrapped around the ring');
  w.freeLE(100);
  assert.is(w.length, 0);
  assert.throws(() => new Inflights(0), /size/);
});

test('inflights: indexes must increase', () => {
  const w = new Inflights(4);
  w.add(5);
  assert.throws(() => w.add(5), /increase/);
});

test('probe: one append at a time, unpaused by an ack', () => {
  const p = new Progress(11, 4);
  assert.is(p.state, ProgressState.probe);
  assert.not.ok(p.isPaused());
  p.sentEntries(3, 13);
  assert.ok(p.isPaused(), 'a probe waits for its answer');
  assert.is(p.next, 11, 'probe does not advance next optimistically');
  assert.ok(p.maybeUpdate(13));
  assert.not.ok(p.isPaused());
  assert.is(p.match, 13);
  assert.is(p.next, 14);
  assert.not.ok(p.maybeUpdate(12), 'stale ack');
});

test('replicate: optimistic next, pauses when the window is full, ack frees it', () => {
  const p = new Progress(1, 2);
  p.maybeUpdate(5);
  p.becomeReplicate();
  assert.is(p.next, 6);
  p.sentEntries(2, 7);
  assert.is(p.next, 8);
  assert.not.ok(p.isPaused());
  p.sentEntries(2, 9);
  assert.ok(p.isPaused(), 'two appends in flight with inflightMax=2');
  p.maybeUpdate(7);
  p.freeTo(7);
  assert.not.ok(p.isPaused());
  assert.is(p.inflights.length, 1);
});

test('maybeDecrTo: replicate falls back to match+1; probe uses the hint; stale rejections ignored', () => {
  const r = new Progress(1, 8);
  r.maybeUpdate(5);
  r.becomeReplicate();
  r.sentEntries(5, 10);
  assert.ok(r.isStaleRejection(4) && r.isStaleRejection(5) && !r.isStaleRejection(8));
  assert.not.ok(r.maybeDecrTo(4, 0), 'rejection of an index at or below match is stale');
  assert.ok(r.maybeDecrTo(8, 3));
  assert.is(r.next, 6);

  const p = new Progress(20, 8);
  p.sentEntries(0, 19);
  assert.ok(p.isStaleRejection(15) && !p.isStaleRejection(19));
  assert.not.ok(p.maybeDecrTo(15, 3), 'not the answer to the outstanding probe (prev=19)');
  assert.ok(p.maybeDecrTo(19, 7));
  assert.is(p.next, 8, 'jumps to hint+1 in one step');
  assert.not.ok(p.isPaused());
  const q = new Progress(20, 8);
  q.match = 10;
  q.maybeDecrTo(19, 3);
  assert.is(q.next, 11, 'never below match+1');
});

test.run();
