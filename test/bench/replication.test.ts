// `concur bench replication`: Raft and Multi-Paxos measured the same way in one run. Asserts the
// shape and that both protocols committed work (no throughput figure is asserted: this machine
// is shared and noisy; figures come from the command, not from tests).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchReplication } from '../../bench/replication.ts';

test('one cell per protocol, a ratio for the pair, and a one-client latency per protocol', async () => {
  const r = await benchReplication({ protocols: ['raft', 'multipaxos'], batches: [16], inflights: [4], clients: 8, durationSec: 1, valueBytes: 64, nodes: 3 });
  assert.equal(r.cells.map((c) => c.protocol), ['raft', 'multipaxos']);
  for (const c of [...r.cells, ...r.lowLoad]) {
    assert.ok(c.opsPerSec > 0 && c.count > 0, `${c.protocol} committed puts (${c.opsPerSec}/s)`);
    assert.is(c.errors, 0, `${c.protocol}: no errors`);
  }
  assert.is(r.ratios.length, 1);
  assert.ok(r.ratios[0]!.ratio > 0 && r.bestRatio !== null);
  assert.equal(r.lowLoad.map((c) => [c.protocol, c.clients]), [['raft', 1], ['multipaxos', 1]]);
});

test.run();
