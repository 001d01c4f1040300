import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replicaSimProtocol } from '../../apps/sim/index.ts';
import { runSeeds } from '../../protocols/sim/index.ts';

// CI's net for whole replicas: node host, WAL and snapshots on a simulated disk, KV clients in
// every read mode, crashes (torn writes, damaged records), pauses, drifting clocks, partitions.
test('replicas, 3 nodes: 200 seeds without a violation, and liveness after healing', () => {
  const s = runSeeds(replicaSimProtocol(), { seeds: 200, nodes: 3 });
  assert.is(s.failed?.violation ?? null, null, s.failed ? `seed ${s.failed.seed}: ${JSON.stringify(s.failed.violation)}` : '');
  assert.is(s.seeds, 200);
  assert.ok(s.commands > 200 * 20, `the engine's clients got work done (${s.commands} commands)`);
  assert.ok(s.stats.reads! > 200 * 5, 'reads were checked');
});

test.run();
