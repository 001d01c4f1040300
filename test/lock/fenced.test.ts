// Fencing tokens end to end, the "paused client" scenario (Kleppmann, "How to do distributed
// locking"): client A takes a lock with a short TTL and writes to a fenced store; A pauses past
// its TTL (it simply sends nothing); B, waiting in the lock's queue, gets the lock with a higher
// token and writes; A wakes and writes with its old token, and the store refuses it. On a live
// Raft cluster and on a live Multi-Paxos cluster, through the HTTP API and `concur lock`'s client
// functions; the store is an actor on the runtime (apps/lock/fenced-store.ts). And the store
// keeps the highest token across a restart of its actor.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cluster, type ClusterProtocol } from '../../apps/cluster/cluster.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { lockAcquire, lockRenew, lockStatus } from '../../apps/cli/commands/lock.ts';
import { FencedStore, FencedStoreClient } from '../../apps/lock/fenced-store.ts';
import { eventually } from '../support/cluster.ts';

const fast = { nodes: 3, storage: 'memory', electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 } as const;

test('FencedStore: accepts tokens that do not go back, per lock; refuses an older one', () => {
  const s = new FencedStore();
  assert.equal(s.write({ lock: 'L', token: 5, key: 'k', value: 'a' }), { ok: true, key: 'k', token: 5 });
  assert.equal(s.write({ lock: 'L', token: 5, key: 'k', value: 'b' }).ok, true, 'the same holder writes again');
  assert.equal(s.write({ lock: 'M', token: 2, key: 'm', value: 'x' }).ok, true, 'another lock has tokens of its own');
  const stale = s.write({ lock: 'L', token: 4, key: 'k', value: 'c' });
  assert.equal(stale.ok ? null : [stale.code, (stale as { highest: number }).highest], ['stale-token', 5]);
  assert.equal(s.read('k'), { value: 'b', lock: 'L', token: 5 });
  assert.is(s.write({ lock: 'L', token: 0, key: 'k', value: 'd' }).ok, false);
  assert.equal(FencedStore.fromImage(JSON.parse(JSON.stringify(s.image()))).highestToken('L'), 5);
});

for (const protocol of ['raft', 'multipaxos'] as ClusterProtocol[]) {
  test(`${protocol}: a paused holder's late write is refused by the fenced store; the new holder's is kept`, async () => {
    const cluster = await Cluster.start({ ...fast, protocol });
    const api = await startHttpApi(cluster, { port: 0 });
    const store = await FencedStoreClient.start();
    try {
      await eventually(() => cluster.leader() ?? undefined, 'a leader');
      const o = { url: api.url, timeoutMs: 5_000 };
      const ttlMs = 400;

      const sentA = performance.now();
      const a = await lockAcquire(o, 'report', { client: 'A', ttlMs, waitMs: 0 });
      if (!a.ok) throw new Error('A should get the free lock');
      assert.equal(await store.write({ lock: 'report', token: a.token, key: 'out', value: 'A: first half' }), { ok: true, key: 'out', token: a.token });

      // A pauses (a GC pause, say): it sends nothing, not even a renewal. B waits in the queue.
      const b = await lockAcquire(o, 'report', { client: 'B', ttlMs: 10_000, waitMs: 10_000 });
      const grantedB = performance.now();
      if (!b.ok) throw new Error('B should get the lock once A\'s lease has run out');
      assert.ok(b.token > a.token, `B's token ${b.token} is higher than A's ${a.token}`);
      assert.ok(grantedB - sentA >= ttlMs, `A's lease ran its full TTL before B got the lock (${Math.round(grantedB - sentA)} ms ≥ ${ttlMs} ms): expiry is never early`);
      assert.equal((await lockStatus(o, 'report')).holder?.client, 'B');
      assert.equal(await store.write({ lock: 'report', token: b.token, key: 'out', value: 'B: the whole report' }), { ok: true, key: 'out', token: b.token });

      // A wakes up, believes it still holds the lock, and writes with its old token.
      const late = await store.write({ lock: 'report', token: a.token, key: 'out', value: 'A: second half' });
      assert.equal(late.ok ? null : { code: late.code, highest: (late as { highest: number }).highest }, { code: 'stale-token', highest: b.token });
      assert.equal(await store.read('out'), { value: 'B: the whole report', lock: 'report', token: b.token }, 'B\'s write stands');
      // The service agrees: A's renewal is refused.
      const renewA = await lockRenew(o, 'report', 'A', a.token);
      assert.equal(renewA.ok ? null : [renewA.holder?.client, renewA.holder?.token], ['B', b.token]);
      const st = await store.status();
      assert.equal([st.accepted, st.rejected], [2, 1]);
    } finally {
      await store.stop();
      await api.close();
      await cluster.stop();
    }
  });
}

test('the fenced store keeps its highest token across a restart of its actor', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-fenced-'));
  const store = await FencedStoreClient.start({ dataDir });
  try {
    assert.is((await store.write({ lock: 'L', token: 9, key: 'k', value: 'new' })).ok, true);
    await store.restart();
    assert.is((await store.status()).incarnation, 1);
    const stale = await store.write({ lock: 'L', token: 3, key: 'k', value: 'old' });
    assert.is(stale.ok, false, 'a store that forgot the highest token would take this write');
    assert.equal(await store.read('k'), { value: 'new', lock: 'L', token: 9 });
  } finally {
    await store.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
