// `concur chaos --workload lock --protocol multipaxos` in short: the lock service on a live
// Multi-Paxos cluster (clock entries from its leaders, lock queries after a read index) under
// partitions, crashes and loss, judged by the mutual-exclusion checker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runLockChaos } from '../../apps/chaos/lock-run.ts';

test('Multi-Paxos: the lock service under partitions, crashes and loss stays mutually exclusive', async () => {
  const { report } = await runLockChaos({
    protocol: 'multipaxos',
    nodes: 3,
    durationSec: 8,
    clients: 6,
    locks: 2,
    seed: 2,
    faults: ['partition', 'crash', 'loss'],
    opTimeoutMs: 1_000,
    recoveryMsMax: 20_000,
  });
  assert.is(report.protocol, 'multipaxos');
  assert.is(report.exclusive, true, report.failure);
  assert.ok(report.recovered, 'the healed cluster recovered');
  assert.equal(report.nodeErrors, [], 'no node died of an error of its own');
  assert.ok(report.faults >= 2, `faults were injected: ${report.faultLog.join('; ')}`);
  assert.ok(report.acquires.granted + report.acquires.grantedAfterWait >= 4, `locks were granted: ${JSON.stringify(report.acquires)}`);
  assert.ok(report.acquires.grantedAfterWait > 0, 'queued acquires saw their grants by queries');
  assert.ok(report.expiries !== null, 'the service answered its counters');
});

test.run();
