import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { raftSimProtocol, runSeeds } from '../../protocols/sim/index.ts';

// CI's safety net: every seed injects loss, delay, duplication, partitions (symmetric,
// asymmetric, leader cut off), crashes and restarts, and checks every Raft invariant per step.
test('raft, 3 nodes: 250 seeds without a violation, and liveness after healing', () => {
  const s = runSeeds(raftSimProtocol(), { seeds: 250, nodes: 3 });
  assert.is(s.failed?.violation ?? null, null, s.failed ? `seed ${s.failed.seed}: ${JSON.stringify(s.failed.violation)}` : '');
  assert.is(s.seeds, 250);
  assert.ok(s.commands > 250 * 50, `clients got work done (${s.commands} commands)`);
  assert.ok(s.crashes > 250 && s.partitions > 250, 'faults were actually injected');
});

test.run();
