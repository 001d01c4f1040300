// `concur bench replication`: Raft and Multi-Paxos measured the same way in one run (the sweep of
// `concur bench raft`: client actors, packed frames), then Basic Paxos, Multi-Paxos and Raft with
// one proposal outstanding. Asserts the shape and that every protocol committed work (no
// throughput figure is asserted: this machine is shared and noisy; figures come from the command).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchReplication, formatReplication, replicationDefaults } from '../../bench/replication.ts';
import { BenchCluster, raftBenchDefaults, type BenchProtocol } from '../../bench/raft.ts';
import type { RaftClientResult } from '../../bench/raft-client.ts';
import { eventually } from '../support/cluster.ts';

test('a cell per protocol and setting, a ratio per setting, and one-proposal latency for paxos, multipaxos and raft', async () => {
  const r = await benchReplication({
    ...replicationDefaults,
    protocols: ['raft', 'multipaxos'],
    lowLoadProtocols: ['paxos', 'multipaxos', 'raft'],
    batches: [16],
    inflights: [1, 4],
    clients: 4,
    window: 8,
    durationMs: 500,
    warmupMs: 200,
    lowLoadDurationMs: 400,
  });
  assert.equal(
    r.cells.map((c) => `${c.protocol} ${c.batch}×${c.inflight}`),
    ['raft 16×1', 'multipaxos 16×1', 'raft 16×4', 'multipaxos 16×4'],
  );
  assert.is(r.cells.find((c) => c.protocol === 'multipaxos' && c.inflight === 4)!.settings, 'batchMax 16, inflightMax 64');
  assert.is(r.cells.find((c) => c.protocol === 'raft' && c.inflight === 4)!.settings, 'batchEntriesMax 16, inflightMax 4');
  for (const c of r.cells) {
    assert.ok(c.opsPerSec > 0, `${c.protocol} ${c.batch}×${c.inflight} committed nothing`);
    assert.ok(c.p50Ms > 0 && c.p50Ms <= c.p99Ms && c.p99Ms <= c.maxMs, `percentiles out of order: ${JSON.stringify(c)}`);
    assert.ok(c.entriesPerAppend >= 1 && c.entriesPerAppend <= c.batch, `${c.protocol}: values per message ${c.entriesPerAppend} outside 1..${c.batch}`);
    assert.is(c.outstanding, 32);
    assert.is(c.storage, 'memory');
  }
  assert.equal(r.ratios.map((x) => [x.batch, x.inflight]), [[16, 1], [16, 4]]);
  for (const x of r.ratios) assert.ok(x.ratio > 0);
  assert.ok(r.bestRatio !== null && r.bestRatio > 0);
  assert.equal(r.lowLoad.map((c) => [c.protocol, c.outstanding]), [['paxos', 1], ['multipaxos', 1], ['raft', 1]]);
  for (const c of r.lowLoad) assert.ok(c.opsPerSec > 0 && c.p50Ms > 0, `${c.protocol} at low load committed nothing: ${JSON.stringify(c)}`);
  assert.match(r.setup, /memory storage/);
  const text = formatReplication(r).join('\n');
  assert.match(text, /best cells: Multi-Paxos ÷ Raft = /);
  assert.match(text, /Basic Paxos p50 .* Multi-Paxos p50 .* Raft p50/);
});

for (const protocol of ['multipaxos', 'paxos'] as BenchProtocol[]) {
  test(`client actors on ${protocol}: every proposal sent commits exactly once on every node (count app)`, async () => {
    const c = await BenchCluster.start({ ...raftBenchDefaults, clientActors: 2, proposalsPerFrameMax: 13, electionMsMin: 150, heartbeatMs: 50 }, 3, 7, 3, 0, protocol);
    try {
      type Stats = { role: number; appliedCommands: number };
      const run = (id: number, at: number, totalOps: number) =>
        c.supervisor.call<RaftClientResult>(id, 'run', [{ leader: at, mode: 'closed', outstanding: 150, ratePerSec: 0, warmupMs: 0, durationMs: 100, totalOps, drainTimeoutMs: 15_000 }], 30_000);
      const follower = c.voters.find((v) => v !== c.leader)!;
      let total: number;
      if (protocol === 'multipaxos') {
        // The second client starts at a follower and must be redirected.
        const [a, b] = await Promise.all([run(c.clientIds[0]!, c.leader, 3_000), run(c.clientIds[1]!, follower, 2_222)]);
        assert.is(a.ackedTotal, 3_000);
        assert.is(b.ackedTotal, 2_222);
        assert.ok(b.redirects >= 1, 'the client sent to a follower was redirected');
        total = 5_222;
      } else {
        // Basic Paxos: any node proposes (one client: two clients' equal commands would be one value to the core).
        const a = await run(c.clientIds[0]!, follower, 1_000);
        assert.is(a.ackedTotal, 1_000);
        assert.is(a.redirects, 0);
        total = 1_000;
      }
      await eventually(async () => {
        const st = await Promise.all(c.voters.map((id) => c.supervisor.call<Stats>(id, 'benchStats')));
        return st.every((x) => x.appliedCommands === total) ? true : undefined;
      }, `every node applied exactly ${total} commands`, 10_000);
    } finally {
      await c.stop();
    }
  });
}

test.run();
