// Locks across leader failover, on Raft and Multi-Paxos: a holder that keeps renewing keeps its
// lock (same token) while the leader is crashed and another takes over, and a lock nobody renews
// is not freed early by a leader change (the new leader counts time from when it took over).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster, type ClusterProtocol } from '../../apps/cluster/cluster.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';

const fast = { electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withLocks(protocol: ClusterProtocol, f: (c: Cluster, call: (path: string, body: unknown) => Promise<{ status: number; json: Record<string, unknown> }>) => Promise<void>): Promise<void> {
  const c = await Cluster.start({ nodes: 3, protocol, ...fast });
  const api = await startHttpApi(c, { port: 0 });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    const call = async (path: string, body: unknown) => {
      const r = await fetch(`${api.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    await f(c, call);
  } finally {
    await api.close();
    await c.stop();
  }
}

for (const protocol of ['raft', 'multipaxos'] as const) {
  test(`${protocol}: a holder that keeps renewing keeps its lock, with its token, across a crash of the leader`, async () => {
    await withLocks(protocol, async (c, call) => {
      const a = await call('/locks/job/acquire', { client: 'a', ttlMs: 1_500 });
      assert.is(a.status, 200);
      const token = a.json.token as number;
      let renewals = 0;
      let lost: string | null = null;
      let stop = false;
      const renewer = (async () => {
        while (!stop) {
          const r = await call('/locks/job/renew', { client: 'a', token }).catch(() => null);
          // A renewal may fail while there is no leader (503/504): the next one retries. Losing the lock may not happen.
          if (r?.status === 200) renewals++;
          else if (r?.status === 409) lost = JSON.stringify(r.json);
          await sleep(250);
        }
      })();
      let before: number;
      try {
        await sleep(400);
        const first = await eventually(() => c.leader() ?? undefined, 'the leader');
        await c.crash(first);
        await eventually(() => {
          const l = c.leader();
          return l !== null && l !== first ? l : undefined;
        }, 'a new leader');
        before = renewals;
        await sleep(2_000); // longer than the TTL: only renewals keep it
      } finally {
        stop = true;
        await renewer;
      }
      assert.is(lost, null, 'the holder never lost its lock');
      assert.ok(renewals > before, `renewals went on under the new leader (${before} → ${renewals})`);
      const b = await call('/locks/job/acquire', { client: 'b', ttlMs: 1_000, waitMs: 0 });
      assert.is(b.status, 409, 'still held by a');
      assert.equal((b.json.holder as { client: string; token: number }).client, 'a');
      assert.equal((b.json.holder as { client: string; token: number }).token, token);
    });
  });

  test(`${protocol}: a leader change does not free a lock before its TTL`, async () => {
    await withLocks(protocol, async (c, call) => {
      const sent = Date.now();
      const a = await call('/locks/held/acquire', { client: 'a', ttlMs: 1_500 });
      assert.is(a.status, 200);
      await c.crash(await eventually(() => c.leader() ?? undefined, 'the leader'));
      // Another client asks again and again; no grant may come before a's own deadline.
      for (;;) {
        const b = await call('/locks/held/acquire', { client: 'b', ttlMs: 1_000, waitMs: 0 }).catch(() => null);
        if (b?.status === 200) {
          const at = Date.now();
          assert.ok(at - sent >= 1_500, `granted to b ${at - sent} ms after a's request, before a's TTL of 1500 ms`);
          assert.ok((b.json.token as number) > (a.json.token as number), 'with a higher token');
          return;
        }
        if (Date.now() - sent > 15_000) throw new Error('b never got the lock after a expired');
        await sleep(50);
      }
    });
  });
}

test.run();
