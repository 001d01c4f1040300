// The machine-stall scan of `concur bench raft` on a scripted clock: it must find every gap it is
// shown and add them up right, or the floor it reports for tail latencies means nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { threadId } from 'node:worker_threads';
import { scanGaps, summarizeStalls, measureStalls, runStallTask } from '../../bench/stalls.ts';

/** A clock that advances 0.01 ms per reading, with extra jumps at given readings. */
function scriptedClock(jumps: Map<number, number>): () => number {
  let t = 1_000;
  let reads = 0;
  return () => {
    t += 0.01 + (jumps.get(reads++) ?? 0);
    return t;
  };
}

test('every gap of 0.2 ms or more is found, counted and added up; smaller ones are jitter', () => {
  const clock = scriptedClock(new Map([[100, 5], [200, 0.5], [300, 0.1], [400, 12], [500, 1.5]]));
  const s = scanGaps(50, clock, 3);
  assert.is(s.gaps, 4);
  assert.is(s.gapsOver1Ms, 3);
  assert.equal(s.longest.map((g) => Math.round(g * 100) / 100), [12.01, 5.01, 1.51]);
  assert.ok(Math.abs(s.lostMs - (12.01 + 5.01 + 1.51 + 0.51)) < 1e-6, `lost ${s.lostMs}`);
  assert.ok(s.durationMs >= 50 && s.durationMs < 50.1, `duration ${s.durationMs}`);
});

test('a clock without gaps reports none', () => {
  const s = scanGaps(20, scriptedClock(new Map()));
  assert.is(s.gaps, 0);
  assert.is(s.lostMs, 0);
  assert.equal(s.longest, []);
});

test('the summary averages the lost share over spinners and keeps the longest gap', () => {
  const a = { threadId: 1, durationMs: 1_000, longest: [8, 2], gaps: 5, gapsOver1Ms: 2, lostMs: 20 };
  const b = { threadId: 2, durationMs: 1_000, longest: [3], gaps: 2, gapsOver1Ms: 1, lostMs: 10 };
  assert.equal(summarizeStalls([a, b]), { threads: 2, durationMs: 1_000, lostFraction: 0.015, gapsOver1MsPerSec: 1.5, maxGapMs: 8 });
  assert.is(summarizeStalls([a, { ...b, threadId: 1 }]).threads, 1, 'threads counts distinct threads, not scans');
});

test('a spinner scans only once every other one has arrived', () => {
  const barrier = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(barrier), 0, 1); // one spinner already waiting elsewhere
  const s = runStallTask({ durationMs: 5, barrier, spinners: 2, barrierTimeoutMs: 1_000 });
  assert.is(s.threadId, threadId);
  assert.ok(s.durationMs >= 5);
  // Alone where two are expected (a pool of fewer threads than spinners): a clear error, no scan.
  assert.throws(() => runStallTask({ durationMs: 5, barrier: new SharedArrayBuffer(4), spinners: 2, barrierTimeoutMs: 50 }), /only 1 of 2 spinners started within 50 ms/);
});

test('on real pool threads: the scans run at once, one per thread, each about as long as asked', async () => {
  const s = await measureStalls(150, 2);
  assert.is(s.threads, 2);
  assert.ok(s.durationMs >= 150 && s.durationMs < 1_000, `duration ${s.durationMs}`);
  assert.ok(s.lostFraction >= 0 && s.lostFraction < 1);
});

test.run();
