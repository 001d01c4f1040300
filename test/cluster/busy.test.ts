// Backpressure at the leader: past uncommittedBytesMax a write is refused at once with 503 busy
// and Retry-After (it certainly did not take effect), never queued without bound.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';

test('a leader that cannot commit holds at most uncommittedBytesMax: further writes get 503 busy with Retry-After', async () => {
  // Long election timeouts: the cut-off leader keeps leading (and refusing) for the whole test.
  const c = await Cluster.start({ nodes: 3, storage: 'memory', metricsIntervalMs: 0, electionMsMin: 2000, electionMsMax: 4000, heartbeatMs: 100, raft: { uncommittedBytesMax: 300 } });
  const api = await startHttpApi(c, { port: 0, requestDeadlineMs: 3_000 });
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader', 15_000);
    assert.is((await fetch(`${api.url}/kv/before`, { method: 'PUT', body: 'x' })).status, 200);
    c.partition([[leader], c.supervisor.ids.filter((id) => id !== leader)]);
    // The first write is accepted (one always fits) and waits for a quorum it cannot reach.
    const stuck = fetch(`${api.url}/kv/a`, { method: 'PUT', body: 'v'.repeat(400) });
    const refused = await eventually(async () => {
      const r = await fetch(`${api.url}/kv/b`, { method: 'PUT', body: 'w' });
      return r.status === 503 ? r : undefined;
    }, 'a busy answer', 5_000, 50);
    const body = (await refused.json()) as { code: string; error: string };
    assert.is(body.code, 'busy');
    assert.match(body.error, /uncommitted/);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After says when to come back');
    c.heal();
    assert.is((await stuck).status, 200, 'the accepted write commits once the leader reaches a quorum again');
    await eventually(async () => ((await fetch(`${api.url}/kv/b`, { method: 'PUT', body: 'w' })).status === 200 ? true : undefined), 'writes accepted again', 10_000, 50);
  } finally {
    await api.close();
    await c.stop();
  }
});

test.run();
