// Percentiles of bench/latency.ts on a known sample: what every benchmark report rests on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LatencyRecorder } from '../../bench/latency.ts';

// HDR keeps 3 significant digits: a recorded value comes back within 0.1 %.
const close = (actual: number, expected: number) => Math.abs(actual - expected) <= expected * 0.001 + 0.001;

test('percentiles of 1..1000 ms are the matching order statistics', () => {
  const r = new LatencyRecorder();
  for (let ms = 1; ms <= 1000; ms++) r.recordMs(ms);
  const s = r.summary();
  assert.is(s.count, 1000);
  assert.ok(close(s.p50Ms, 500), `p50 ${s.p50Ms}`);
  assert.ok(close(s.p90Ms, 900), `p90 ${s.p90Ms}`);
  assert.ok(close(s.p99Ms, 990), `p99 ${s.p99Ms}`);
  assert.ok(close(s.maxMs, 1000), `max ${s.maxMs}`);
  assert.ok(close(s.meanMs, 500.5), `mean ${s.meanMs}`);
});

test('a skewed sample: 99 fast and 1 slow put p99 on the fast side and max on the slow', () => {
  const r = new LatencyRecorder();
  for (let i = 0; i < 99; i++) r.recordMs(0.25);
  r.recordMs(40);
  const s = r.summary();
  assert.ok(close(s.p50Ms, 0.25) && close(s.p99Ms, 0.25), `p50 ${s.p50Ms} p99 ${s.p99Ms}`);
  assert.ok(close(s.maxMs, 40), `max ${s.maxMs}`);
});

test('histograms recorded elsewhere merge exactly (encode / addEncoded)', () => {
  const a = new LatencyRecorder();
  const b = new LatencyRecorder();
  for (let ms = 1; ms <= 500; ms++) a.recordMs(ms);
  for (let ms = 501; ms <= 1000; ms++) b.recordMs(ms);
  const all = new LatencyRecorder();
  all.addEncoded(a.encode());
  all.addEncoded(b.encode());
  const s = all.summary();
  assert.is(s.count, 1000);
  assert.ok(close(s.p50Ms, 500) && close(s.p99Ms, 990), `p50 ${s.p50Ms} p99 ${s.p99Ms}`);
});

test('counted latencies (recordUs) match one-by-one records, below and above the direct range', () => {
  const counted = new LatencyRecorder();
  const single = new LatencyRecorder();
  const values = [1, 2, 999, 1_000, 131_071, 131_072, 5_000_000];
  for (const us of values) {
    counted.recordUs(us, 3);
    for (let i = 0; i < 3; i++) single.recordMs(us / 1000);
  }
  assert.equal(counted.summary(), single.summary());
  // Reading flushes; what is recorded after a read still counts, and nothing counts twice.
  counted.recordUs(50, 1);
  single.recordMs(0.05);
  const s = counted.summary();
  assert.equal(s, single.summary());
  assert.is(s.count, values.length * 3 + 1);
  // Out-of-range values are clamped to 1 µs and 60 s rather than lost.
  const clamped = new LatencyRecorder();
  clamped.recordUs(0, 1);
  clamped.recordUs(120_000_000, 1);
  const c = clamped.summary();
  assert.is(c.count, 2);
  assert.ok(close(c.maxMs, 60_000), `max ${c.maxMs}`);
});

test.run();
