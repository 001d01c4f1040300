// `concur chaos --protocol multipaxos` in short: a live Multi-Paxos cluster under partitions,
// crashes and message loss while clients write and read (ReadIndex-style reads on the leader),
// then healed, recovered and judged by the linearizability checker; with snapshots every 100
// slots, so compaction and snapshot transfers happen under the same faults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runChaos, type ChaosOptions } from '../../apps/chaos/run.ts';

const base: ChaosOptions = {
  protocol: 'multipaxos',
  nodes: 3,
  durationSec: 8,
  clients: 6,
  keys: 4,
  seed: 1,
  read: 'index',
  faults: ['partition', 'crash', 'loss'],
  opTimeoutMs: 1_000,
  recoveryMsMax: 20_000,
  snapshotEntries: 100,
};

test('Multi-Paxos under partitions, crashes and loss: linearizable, recovered, no node errors', async () => {
  const { report, history } = await runChaos(base);
  assert.is(report.protocol, 'multipaxos');
  assert.is(report.linearizable, true, report.failure);
  assert.ok(report.recovered, 'the healed cluster recovered');
  assert.equal(report.nodeErrors, [], 'no node died of an error of its own');
  assert.ok(report.faults >= 2, `faults were injected: ${report.faultLog.join('; ')}`);
  assert.ok(report.ok > 300, `clients made progress (${report.ok} ok)`);
  const reads = history.filter((h) => h.op === 'get' && h.status === 'ok' && h.client !== 'final').length;
  assert.ok(reads > 100, `index reads answered under faults (${reads})`);
  assert.ok(report.leaderChanges >= 1);
  assert.ok(report.snapshotsTaken >= 3, `nodes snapshotted and compacted (${report.snapshotsTaken})`);
  assert.ok(report.compactedThrough.every((c) => c > 0), `every node compacted: ${report.compactedThrough.join(', ')}`);
});

test.run();
