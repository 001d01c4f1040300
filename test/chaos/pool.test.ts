import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CheckResult, checkHistory } from '../../apps/chaos/checker.ts';
import { generateHistory } from './generate.ts';

const withoutTimes = (r: CheckResult) => ({
  linearizable: r.linearizable,
  keys: r.keys.map(({ elapsedMs: _elapsed, ...rest }) => rest),
  failure: r.failure,
});

test('the pool gives the same verdicts and reports as the inline path', async () => {
  const h = generateHistory({ seed: 7, clients: 8, opsPerClient: 300, keys: 6, unknownRate: 0.01 });
  // Break two keys: a read of a value nobody wrote, and a stale read of a value that was.
  const reads = h.map((o, i) => i).filter((i) => h[i]!.op === 'get' && h[i]!.status === 'ok');
  const phantom = reads.find((i) => h[i]!.key === 'k1' && i > 500)!;
  h[phantom]!.result = 'never-written';
  const stale = reads.find((i) => h[i]!.key === 'k4' && i > 1000 && h[i]!.result !== 'k4-v0-0')!;
  h[stale]!.result = 'k4-v0-0';
  const inline = await checkHistory(h, { mode: 'inline' });
  const pooled = await checkHistory(h, { mode: 'pool', threads: 2 });
  assert.is(inline.ranOn, 'inline');
  assert.is(pooled.ranOn, 'pool');
  assert.is(inline.linearizable, false);
  assert.is(inline.keys.find((k) => k.key === 'k1')!.linearizable, false);
  assert.is(inline.failure!.stuck.id, phantom);
  assert.equal(inline.keys.filter((k) => k.linearizable !== true).map((k) => [k.key, k.linearizable]), [['k1', false], ['k4', false]]);
  assert.equal(withoutTimes(pooled), withoutTimes(inline));
});

test('auto mode uses the pool for big multi-key histories and accepts a correct one', async () => {
  const h = generateHistory({ seed: 11, clients: 10, opsPerClient: 400, keys: 8 });
  const r = await checkHistory(h, { threads: 2, inlineOpsMax: 1_000 });
  assert.is(r.ranOn, 'pool');
  assert.is(r.linearizable, true);
  assert.is(r.keys.length, 8);
  assert.is(r.keys.reduce((n, k) => n + k.opsChecked + k.opsDropped, 0), h.length);
  const small = await checkHistory(h.slice(0, 100), { threads: 2, inlineOpsMax: 1_000 });
  assert.is(small.ranOn, 'inline');
});

test.run();
