import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { loadRecordedHistory } from '../../apps/check/load.ts';
import { checkRecorded } from '../../apps/check/verdict.ts';

// Porcupine's verdicts for these logs (testdata/README.md): etcd's Jepsen runs, one register each.
const linearizable = ['005', '018', '031', '048', '067', '092'];
const notLinearizable = ['000', '006', '012', '022', '039', '097'];
const file = (n: string) => fileURLToPath(new URL(`./testdata/etcd_${n}.log`, import.meta.url));

for (const n of linearizable) {
  test(`etcd_${n}.log is linearizable`, async () => {
    const c = await checkRecorded(await loadRecordedHistory(file(n)));
    assert.is(c.history.format, 'jepsen');
    assert.is(c.result.linearizable, true);
    assert.equal(c.result.keys.map((k) => k.key), ['register']);
  });
}

for (const n of notLinearizable) {
  test(`etcd_${n}.log is not linearizable, and the report names an ok op that cannot be placed`, async () => {
    const h = await loadRecordedHistory(file(n), 'jepsen');
    const c = await checkRecorded(h);
    assert.is(c.result.linearizable, false);
    const f = c.result.failure!;
    assert.ok(f, 'a failure report');
    assert.is(f.stuck.status, 'ok', 'only a completed op can be stuck');
    // The whole prefix is kept for the page, in linearization order, replaying to the reported value.
    assert.is(f.prefix.length, f.prefixOpsTotal);
    assert.is(f.prefix.at(-1)?.stateAfter ?? null, f.stateAfterPrefix);
    assert.ok(!f.prefix.some((p) => p.op.id === f.stuck.id), 'the stuck op is not in the prefix');
  });
}

test('a search budget too small to decide gives undecided, not a verdict', async () => {
  const c = await checkRecorded(await loadRecordedHistory(file('097')), { searchStepsMax: 100 });
  assert.is(c.result.linearizable, 'unknown');
  assert.match(c.result.keys[0]!.reason!, /search budget exhausted: searchStepsMax = 100/);
});

test.run();
