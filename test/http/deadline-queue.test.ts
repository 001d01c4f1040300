// The fast path's deadlines (apps/http/deadline-queue.ts): a request still waiting at its
// deadline is expired once, one answered first never is, and the queue lets go of both.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeadlineQueue, type Expiring } from '../../apps/http/deadline-queue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Req implements Expiring {
  settled = false;
  expiredAtMs: number | null = null;
  constructor(readonly deadlineAtMs: number) {}
  expire(): void {
    assert.is(this.expiredAtMs, null, 'expired twice');
    this.expiredAtMs = Date.now();
  }
}

test('a request still waiting at its deadline expires then, not before; one answered in time never does', async () => {
  const q = new DeadlineQueue(5);
  const start = Date.now();
  const late = new Req(start + 60);
  const answered = new Req(start + 60);
  const later = new Req(start + 200);
  for (const r of [late, answered, later]) q.add(r);
  await sleep(20);
  assert.ok(q.settle(answered), 'answered before its deadline');
  assert.is(late.expiredAtMs, null, 'not before its deadline');
  await sleep(100);
  assert.ok(late.expiredAtMs !== null && late.expiredAtMs >= late.deadlineAtMs, 'expired at its deadline');
  assert.ok(late.expiredAtMs! - late.deadlineAtMs < 50, `expired ${late.expiredAtMs! - late.deadlineAtMs} ms late`);
  assert.not.ok(q.settle(late), 'an answer after the expiry is refused');
  assert.is(answered.expiredAtMs, null);
  assert.is(later.expiredAtMs, null, 'a later deadline waits');
  assert.ok(q.settle(later));
  await sleep(20);
  assert.is(q.size, 0, 'nothing held once all are settled');
});

test('answers out of order: the queue holds only back to the oldest waiting request', () => {
  const q = new DeadlineQueue(1_000);
  const far = Date.now() + 60_000;
  const reqs = Array.from({ length: 3_000 }, () => new Req(far));
  for (const r of reqs) q.add(r);
  // Every request but the first is answered: all are held behind it.
  for (const r of reqs.slice(1)) assert.ok(q.settle(r));
  assert.is(q.size, 3_000);
  assert.ok(q.settle(reqs[0]!));
  assert.is(q.size, 0);
  // In order, each leaves as it is answered.
  for (const r of reqs.slice(0, 10).map(() => new Req(far))) {
    q.add(r);
    q.settle(r);
    assert.is(q.size, 0);
  }
  // A long queue answered in order: what was answered is let go as it goes (the array compacted).
  const more = Array.from({ length: 4_000 }, () => new Req(far));
  for (const r of more) q.add(r);
  for (const r of more.slice(0, 3_000)) q.settle(r);
  assert.is(q.size, 1_000);
  for (const r of more.slice(3_000)) q.settle(r);
  assert.is(q.size, 0);
});

test('the queue does not keep a process alive, and stops looking once empty', async () => {
  const q = new DeadlineQueue(5);
  const r = new Req(Date.now() + 10);
  q.add(r);
  await sleep(40);
  assert.ok(r.expiredAtMs !== null);
  assert.is(q.size, 0);
  // Timers still active: none of ours (an active interval would show as a Timeout resource).
  const active = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((x) => x === 'Timeout');
  assert.is(active.length, 0, `active timers: ${active.length}`);
});

test.run();
