// Whole replicas under the simulator: a seed replays exactly, every fault kind and read mode is
// exercised, and a safe change (no election no-op) is never called unsafe. The broken variants
// are in replica-mutations.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replicaSimProtocol } from '../../apps/sim/index.ts';
import { runSeed, runSeeds } from '../../protocols/sim/index.ts';

const replica = replicaSimProtocol();

test('a replica seed replays exactly: same steps, same trace', () => {
  const a = runSeed(replica, { seed: 9, nodes: 3, tracing: true, traceLinesMax: 0 });
  const b = runSeed(replica, { seed: 9, nodes: 3, tracing: true, traceLinesMax: 0 });
  assert.ok(a.ok, a.violation?.message);
  assert.is(a.steps, b.steps);
  assert.equal(a.trace, b.trace);
  assert.is(runSeed(replica, { seed: 9, nodes: 3 }).steps, a.steps, 'tracing does not change the run');
});

test('every fault kind happens and every read path is checked', () => {
  const s = runSeeds(replica, { seeds: 40, nodes: 3 });
  assert.is(s.failed, null, s.failed?.violation?.message);
  const st = s.stats;
  for (const k of ['puts', 'gets', 'cas', 'deletes', 'reads', 'staleReads', 'snapshotsTaken', 'snapshotsInstalled', 'tornCrashes', 'corruptions', 'pauses', 'trapsFired']) {
    assert.ok(st[k]! > 0, `${k} happened (${JSON.stringify(st)})`);
  }
  assert.is(st.refusedStarts, st.corruptions, 'a node refuses to start exactly when an old record of its log was damaged');
  assert.ok(s.crashes > 40 && s.partitions > 40);
});

test('control: without the election no-op nothing unsafe happens (it may only stall)', () => {
  // A leader that appends no no-op cannot commit its predecessors' last entries until a client
  // writes: liveness may fail, safety never.
  for (let seed = 1; seed <= 120; seed++) {
    const r = runSeed(replica, { seed, nodes: 3, mutation: 'no-noop' });
    if (r.violation !== null) assert.is(r.violation.invariant, 'liveness', `seed ${seed}: ${r.violation.message}`);
  }
});

test.run();
