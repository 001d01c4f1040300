// The scheduler demo's state machine: a FIFO queue of jobs; claims under a lease on the log's
// time with a fencing token; heartbeats renew; an expired lease (decided in onTime) hands the job
// back to the queue for another worker, and the old holder's heartbeat or complete is refused;
// failures retry up to maxAttempts; delays start at the next clock entry; finished jobs are
// bounded; and determinism: replicas fed the same log, one restored from a snapshot midway, end
// with equal digests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { schedulerApp } from '../../apps/demos/scheduler/app.ts';
import { decodeJobResult, encodeJobCommand, jobLimits, jobQuery, type JobCommand, type JobList, type JobResult, type JobView } from '../../apps/demos/scheduler/commands.ts';
import { SchedulerStateMachine } from '../../apps/demos/scheduler/state-machine.ts';
import { createChatApp } from '../../apps/demos/chat/app.ts';
import { builtinAppsNamed } from '../../apps/platform/registry.ts';
import { AppRouter } from '../../apps/platform/router.ts';
import { cborDecode, cborEncode, encodeAppCommand, encodeClock } from '../../apps/platform/envelope.ts';

/** A log in front of a bare state machine: commands and clock entries at increasing indexes. */
class Log {
  index = 0;
  timeMs = 0;
  constructor(readonly m = new SchedulerStateMachine()) {}
  cmd(c: JobCommand): JobResult {
    return decodeJobResult(this.m.apply(encodeJobCommand(c), { index: ++this.index, timeMs: this.timeMs }));
  }
  clock(ms: number): void {
    this.timeMs += ms;
    this.m.onTime({ index: ++this.index, timeMs: this.timeMs });
  }
  submit(id: string, extra: Partial<Extract<JobCommand, { op: 'submit' }>> = {}): JobResult {
    return this.cmd({ op: 'submit', id, payload: JSON.stringify({ id }), runAtMs: 0, delayMs: 0, maxAttempts: 3, ...extra });
  }
  claim(worker: string, leaseMs = 1000): JobResult {
    return this.cmd({ op: 'claim', worker, leaseMs });
  }
  job(id: string): JobView {
    return (cborDecode(this.m.query(jobQuery({ q: 'job', id }))!) as { job: JobView }).job;
  }
  list(): JobList {
    return cborDecode(this.m.query(jobQuery({ q: 'list', state: null, limit: 10_000 }))!) as JobList;
  }
}

const claimed = (r: JobResult) => {
  if (r.r !== 'claimed') throw new Error(`expected a claim, got ${JSON.stringify(r)}`);
  return r;
};

test('submit and claim in FIFO order; auto ids are job-<index>; a resubmit answers the job; nothing ready is "none"', () => {
  const log = new Log();
  assert.is(log.claim('w1').r, 'none');
  assert.is(log.submit('a').r, 'submitted');
  const auto = log.submit('');
  assert.is(auto.r, 'submitted');
  assert.is((auto as { job: JobView }).job.id, `job-${log.index}`);
  log.submit('c');
  const again = log.submit('a');
  assert.equal([again.r, (again as { samePayload: boolean }).samePayload], ['exists', true]);
  assert.is((log.cmd({ op: 'submit', id: 'a', payload: '1', runAtMs: 0, delayMs: 0, maxAttempts: 1 }) as { samePayload: boolean }).samePayload, false);
  const c1 = claimed(log.claim('w1'));
  assert.is(c1.job.id, 'a');
  assert.is(c1.token, log.index, 'the token is the log index of the claim');
  assert.is(c1.job.state, 'running');
  assert.is(c1.job.worker, 'w1');
  assert.is(claimed(log.claim('w2')).job.id, auto.r === 'submitted' ? auto.job.id : '');
  assert.is(claimed(log.claim('w1')).job.id, 'c', 'a worker may hold more than one');
  assert.equal(log.claim('w3'), { r: 'none', queued: 0, nextReadyInMs: null });
  assert.equal(log.list().counts, { queued: 0, running: 3, done: 0, failed: 0 });
});

test('a lease runs on the log\'s time from the first clock entry after the claim; heartbeats renew it; an expired one hands the job to another worker and fences the old holder out', () => {
  const log = new Log();
  log.clock(5_000); // time before the claim must not count against it
  log.submit('j');
  const c1 = claimed(log.claim('w1', 1000));
  assert.ok(log.m.wantsTime(), 'a running lease needs the log\'s time');
  log.clock(5_000); // starts the lease (the gap may predate the claim)
  assert.is(log.job('j').state, 'running');
  assert.is(log.job('j').leaseExpiresInMs, 1000);
  log.clock(900);
  assert.equal(log.cmd({ op: 'heartbeat', id: 'j', worker: 'w1', token: c1.token }), { r: 'renewed', token: c1.token, leaseMs: 1000 });
  log.clock(500); // starts the renewed lease
  log.clock(999);
  assert.is(log.job('j').state, 'running', 'renewed: still running');
  assert.is(log.job('j').leaseExpiresInMs, 1);
  log.clock(1); // expires
  const j = log.job('j');
  assert.is(j.state, 'queued', 'back in the queue');
  assert.is(j.worker, null);
  assert.equal(j.runs.map((r) => [r.worker, r.outcome]), [['w1', 'expired']]);
  assert.is(log.m.expiries, 1);
  // The old holder is fenced out: its heartbeat and complete are refused.
  assert.is(log.cmd({ op: 'heartbeat', id: 'j', worker: 'w1', token: c1.token }).r, 'lost');
  const c2 = claimed(log.claim('w2'));
  assert.is(c2.job.attempts, 2);
  assert.ok(c2.token > c1.token, 'tokens strictly increase per job');
  assert.is(log.cmd({ op: 'complete', id: 'j', worker: 'w1', token: c1.token, result: '"late"' }).r, 'lost');
  assert.is(log.cmd({ op: 'complete', id: 'j', worker: 'w2', token: c1.token, result: '"wrong token"' }).r, 'lost');
  const done = log.cmd({ op: 'complete', id: 'j', worker: 'w2', token: c2.token, result: '{"ok":true}' });
  assert.is(done.r, 'completed');
  assert.equal(log.cmd({ op: 'complete', id: 'j', worker: 'w2', token: c2.token, result: '{"ok":true}' }), done, 'a retried complete answers the same');
  const end = log.job('j');
  assert.is(end.state, 'done');
  assert.is(end.result, '{"ok":true}');
  assert.equal(end.runs.map((r) => [r.worker, r.outcome]), [['w1', 'expired'], ['w2', 'done']]);
  assert.not.ok(log.m.wantsTime(), 'nothing runs or waits: no clock entries needed');
});

test('fail re-queues until maxAttempts, then the job failed; an expired last attempt fails it too', () => {
  const log = new Log();
  log.submit('f', { maxAttempts: 2 });
  const c1 = claimed(log.claim('w1'));
  const f1 = log.cmd({ op: 'fail', id: 'f', worker: 'w1', token: c1.token, error: 'boom' });
  assert.is(f1.r, 'failed');
  assert.is((f1 as { job: JobView }).job.state, 'queued');
  assert.equal(log.cmd({ op: 'fail', id: 'f', worker: 'w1', token: c1.token, error: 'boom' }), f1, 'a retried fail answers the same');
  const c2 = claimed(log.claim('w2'));
  log.cmd({ op: 'fail', id: 'f', worker: 'w2', token: c2.token, error: 'boom again' });
  const j = log.job('f');
  assert.is(j.state, 'failed');
  assert.is(j.error, 'boom again');
  assert.is(log.claim('w3').r, 'none');

  log.submit('e', { maxAttempts: 1 });
  claimed(log.claim('w1', 100));
  log.clock(10);
  log.clock(100);
  assert.is(log.job('e').state, 'failed');
  assert.match(log.job('e').error!, /lease expired on attempt 1 of 1/);
});

test('delays start at the next clock entry; runAtMs is a log time; claim says when the next job is ready', () => {
  const log = new Log();
  log.clock(1_000);
  log.submit('later', { delayMs: 500 });
  log.submit('at', { runAtMs: 3_000 });
  assert.is(log.job('later').readyInMs, null, 'the delay has not started yet');
  assert.ok(log.m.wantsTime());
  assert.equal(log.claim('w'), { r: 'none', queued: 2, nextReadyInMs: 2_000 });
  log.clock(100); // starts the delay: ready at 1100 + 500
  assert.is(log.job('later').readyInMs, 500);
  log.clock(499);
  assert.is(log.claim('w').r, 'none');
  log.clock(1);
  assert.is(claimed(log.claim('w')).job.id, 'later');
  log.clock(1_399);
  assert.is(log.claim('w').r, 'none');
  log.clock(1);
  assert.is(claimed(log.claim('w')).job.id, 'at');
});

test('bad commands are answered, not thrown, and change nothing; reserved and malformed ids are refused', () => {
  const log = new Log();
  log.submit('keep');
  const before = log.m.digest();
  for (const b of [new Uint8Array([0xff]), cborEncode([9]), cborEncode([1, 'x', '{}', 0, 0, 0]), cborEncode([1, 'job-12', '{}', 0, 0, 1]), cborEncode([1, 'bad id', '{}', 0, 0, 1]), cborEncode([2, 'w', 5]), cborEncode([3, 'keep', 'w', 0])]) {
    const r = decodeJobResult(log.m.apply(b, { index: ++log.index, timeMs: 0 }));
    assert.is(r.r, 'invalid', JSON.stringify(r));
  }
  assert.is(log.m.digest(), before);
  assert.throws(() => encodeJobCommand({ op: 'submit', id: 'job-3', payload: '{}', runAtMs: 0, delayMs: 0, maxAttempts: 1 }), /ids the scheduler gives/);
});

test('finished jobs are bounded: the oldest finished are forgotten first', () => {
  const log = new Log();
  const n = jobLimits.finishedKeep + 5;
  for (let i = 0; i < n; i++) {
    log.submit(`j${i}`);
    const c = claimed(log.claim('w'));
    log.cmd({ op: 'complete', id: c.job.id, worker: 'w', token: c.token, result: 'null' });
  }
  const l = log.list();
  assert.is(l.counts.done, jobLimits.finishedKeep);
  assert.is(l.jobs[0]!.id, 'j5');
  assert.is(log.job('j4'), null);
});

test('snapshot and restore (in pieces split anywhere) keep every job, lease and counter', () => {
  const log = new Log();
  for (let i = 0; i < 600; i++) log.submit(`j${i}`, { delayMs: i % 3 === 0 ? 100 : 0 });
  const c = claimed(log.claim('w1'));
  log.clock(50);
  log.cmd({ op: 'complete', id: c.job.id, worker: 'w1', token: c.token, result: '1' });
  claimed(log.claim('w2'));
  const img = log.m.snapshot();
  const pieces: Uint8Array[] = [];
  for (let p = img.next(); p !== null; p = img.next()) pieces.push(p);
  assert.ok(pieces.length > 2, 'more than one piece');
  const all = Buffer.concat(pieces);
  const copy = new SchedulerStateMachine();
  const r = copy.restore();
  for (let i = 0; i < all.length; i += 1000) r.write(all.subarray(i, i + 1000));
  r.finish();
  assert.is(copy.digest(), log.m.digest());
  assert.is(copy.wantsTime(), log.m.wantsTime());
  const other = new Log(copy);
  other.index = log.index;
  other.timeMs = log.timeMs;
  // Both go on the same way.
  for (const l of [log, other]) {
    l.clock(2_000);
    l.clock(2_000);
    claimed(l.claim('w3'));
  }
  assert.is(copy.digest(), log.m.digest());
  assert.equal(other.job('j1'), log.job('j1'));
});

type Op =
  | { kind: 'submit'; id: string; delay: number }
  | { kind: 'claim'; worker: string; lease: number }
  | { kind: 'beat' | 'complete' | 'fail'; id: string; worker: string; stale: boolean }
  | { kind: 'clock'; ms: number }
  | { kind: 'chat' };
const ids = ['a', 'b', 'c', 'd'];
const workers = ['w1', 'w2'];
const ops = fc.oneof(
  fc.record({ kind: fc.constant('submit' as const), id: fc.constantFrom(...ids), delay: fc.constantFrom(0, 0, 150) }),
  fc.record({ kind: fc.constant('claim' as const), worker: fc.constantFrom(...workers), lease: fc.constantFrom(100, 300) }),
  fc.record({ kind: fc.constantFrom('beat' as const, 'complete' as const, 'fail' as const), id: fc.constantFrom(...ids), worker: fc.constantFrom(...workers), stale: fc.boolean() }),
  fc.record({ kind: fc.constant('clock' as const), ms: fc.integer({ min: 0, max: 250 }) }),
  fc.constant({ kind: 'chat' as const }),
);

test('property: replicas fed the same log end equal, one restored from a snapshot midway; one holder per running job; tokens increase', () => {
  const apps = () => [...builtinAppsNamed(['kv', 'lock']), schedulerApp, createChatApp()];
  fc.assert(
    fc.property(fc.array(ops, { maxLength: 80 }), fc.nat(80), (list: Op[], cut) => {
      const a = new AppRouter(apps());
      let b = new AppRouter(apps());
      let i = 0;
      let seq = 0;
      const lastToken = new Map<string, number>();
      const view = (r: AppRouter, id: string) => (cborDecode(r.query('scheduler', jobQuery({ q: 'job', id }))!) as { job: JobView | null }).job;
      list.forEach((op, k) => {
        if (k === cut) {
          const img = b.snapshot();
          const fresh = new AppRouter(apps());
          const r = fresh.restore();
          for (let p = img.next(); p !== null; p = img.next()) r.write(p);
          r.finish();
          assert.is(fresh.digest(), b.digest());
          b = fresh;
        }
        i++;
        let bytes: Uint8Array;
        if (op.kind === 'clock') bytes = encodeClock(op.ms);
        else if (op.kind === 'chat') bytes = encodeAppCommand('chat', 'c', ++seq, cborEncode([1, 'room', 'x', `t${i}`]));
        else {
          let c: JobCommand;
          if (op.kind === 'submit') c = { op: 'submit', id: op.id, payload: '{}', runAtMs: 0, delayMs: op.delay, maxAttempts: 3 };
          else if (op.kind === 'claim') c = { op: 'claim', worker: op.worker, leaseMs: op.lease };
          else {
            const v = view(a, op.id);
            const token = op.stale || v?.token == null ? Math.max(1, (lastToken.get(op.id) ?? 2) - 1) : v.token;
            const worker = op.stale || v?.worker == null ? op.worker : v.worker;
            c = op.kind === 'beat' ? { op: 'heartbeat', id: op.id, worker, token } : op.kind === 'complete' ? { op: 'complete', id: op.id, worker, token, result: '1' } : { op: 'fail', id: op.id, worker, token, error: 'x' };
          }
          bytes = encodeAppCommand('scheduler', 's', ++seq, encodeJobCommand(c));
        }
        const ra = a.apply(i, bytes, 0, bytes.length);
        const rb = b.apply(i, bytes, 0, bytes.length);
        assert.equal(rb, ra);
        if (op.kind === 'claim') {
          const r = decodeJobResult(ra.slice());
          if (r.r === 'claimed') {
            assert.ok(r.token > (lastToken.get(r.job.id) ?? 0), 'tokens strictly increase per job');
            lastToken.set(r.job.id, r.token);
          }
        }
        for (const id of ids) {
          const v = view(a, id);
          if (v === null) continue;
          assert.is(v.runs.filter((r) => r.outcome === 'running').length, v.state === 'running' ? 1 : 0, 'one open run exactly while running');
          assert.ok(v.runs.filter((r) => r.outcome === 'done').length <= 1, 'done at most once');
        }
      });
      assert.is(b.digest(), a.digest());
    }),
    { numRuns: 200 },
  );
});

test.run();
