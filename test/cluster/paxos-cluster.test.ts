// The KV store and HTTP API on a live Multi-Paxos cluster (Cluster.start({ protocol: 'multipaxos' }),
// one PaxosNode per worker): puts, gets, cas and deletes over real HTTP; the read paths a Paxos
// leader can serve (index, follower, stale, log) and a clear 409 for the one it cannot (lease);
// fault endpoints and the event stream; a crashed leader replaced and, restarted, caught up with
// nothing acknowledged lost; the whole cluster stopped and started again on its data directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';
import { httpCall } from '../support/http-call.ts';

const fast = { electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 } as const;

async function withApi(c: Cluster, f: (call: (method: string, path: string, body?: string) => Promise<{ status: number; text: string; json: Record<string, unknown> | null; headers: Headers }>, url: string) => Promise<void>): Promise<void> {
  const api = await startHttpApi(c, { port: 0, valueBytesMax: 1024 });
  const call = (method: string, path: string, body?: string) => httpCall(`${api.url}${path}`, method, body);
  try {
    await f(call, api.url);
  } finally {
    await api.close();
  }
}

test('KV over HTTP on a live Multi-Paxos cluster: writes, every read path, refusals, faults and events', async () => {
  const c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', ...fast });
  try {
    await withApi(c, async (call, url) => {
      const leader = await eventually(() => c.leader() ?? undefined, 'a leader');
      const put = await call('PUT', '/kv/colour', 'blue');
      assert.is(put.status, 200, put.text);
      assert.ok(Number(put.json!.index) > 0);
      assert.is((await call('GET', '/kv/colour')).text, 'blue');
      const casFail = await call('POST', '/kv/colour/cas', JSON.stringify({ expect: 'red', value: 'green' }));
      assert.is(casFail.status, 409);
      assert.is(casFail.json!.current, 'blue');
      assert.is((await call('POST', '/kv/colour/cas', JSON.stringify({ expect: 'blue', value: 'green' }))).status, 200);
      assert.is((await call('GET', '/kv/colour')).text, 'green');

      // Every read path a Paxos node serves sees the write; the index read is the leader's.
      const index = await eventually(async () => {
        const before = c.leader();
        const got = await call('GET', '/kv/colour?read=index');
        return before !== null && c.leader() === before ? { got, before } : undefined;
      }, 'an index read under one leader');
      assert.is(index.got.status, 200);
      assert.is(index.got.text, 'green');
      assert.is(index.got.headers.get('x-concur-node'), String(index.before));
      const follower = c.supervisor.ids.find((id) => id !== leader)!;
      const fr = await call('GET', `/kv/colour?read=follower&node=${follower}`);
      assert.is(fr.status, 200, fr.text);
      assert.is(fr.text, 'green');
      assert.is(fr.headers.get('x-concur-node'), String(follower));
      assert.ok(Number(fr.headers.get('x-concur-index')) >= Number(put.json!.index));
      assert.is((await call('GET', '/kv/colour?read=log')).text, 'green');
      const stale = await eventually(async () => {
        const r = await call('GET', `/kv/colour?read=stale&node=${follower}`);
        return r.text === 'green' ? r : undefined;
      }, 'a stale read that caught up');
      assert.is(stale.headers.get('x-concur-node'), String(follower));
      const lease = await call('GET', '/kv/colour?read=lease');
      assert.is(lease.status, 409);
      assert.is(lease.json!.code, 'read-mode-unavailable');
      assert.match(String(lease.json!.error), /not available on multipaxos/);
      // Membership is Raft's: a clear refusal, not a hang.
      const add = await call('POST', '/cluster/members', JSON.stringify({ role: 'voter' }));
      assert.is(add.status, 409);
      assert.match(String(add.json!.error), /not available on multipaxos/);

      assert.is((await call('DELETE', '/kv/colour')).status, 200);
      assert.is((await call('GET', '/kv/colour')).status, 404);

      // Faults through the API: crash the leader, the event stream shows the new one, writes go on.
      const abort = new AbortController();
      const res = await fetch(`${url}/events`, { signal: abort.signal });
      let received = '';
      const reading = (async () => {
        const reader = res.body!.getReader();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            received += Buffer.from(value).toString('utf8');
          }
        } catch {
          // aborted below
        }
      })();
      // Subscribed before the fault, so no event of it can be missed.
      await eventually(() => (received.includes(': subscribed') ? true : undefined), 'the event stream subscribed');
      const crash = await call('POST', `/cluster/nodes/${leader}/crash`);
      assert.is(crash.status, 200, crash.text);
      assert.is((await call('POST', `/cluster/nodes/${leader}/crash`)).status, 409);
      const next = await eventually(() => {
        const l = c.leader();
        return l !== null && l !== leader ? l : undefined;
      }, 'a new leader');
      assert.is((await call('PUT', '/kv/after-crash', 'yes')).status, 200);
      const status = await call('GET', '/cluster');
      assert.is(status.json!.leader, next);
      assert.ok(await eventually(() => (/"type":"role"/.test(received) && /"role":"leader"/.test(received) ? true : undefined), 'a role event on the stream', 30_000));
      assert.match(received, /"type":"crashed"/);
      abort.abort();
      await reading;
      assert.is((await call('POST', `/cluster/nodes/${leader}/restart`)).status, 200);
      // Partition the new leader away: the majority elects another and goes on.
      const part = await call('POST', '/cluster/partition', JSON.stringify({ groups: [[next]] }));
      assert.is(part.status, 200, part.text);
      await eventually(() => {
        const l = c.leader();
        return l !== null && l !== next ? l : undefined;
      }, 'a leader on the majority side', 10_000);
      assert.is((await call('PUT', '/kv/during-partition', 'ok')).status, 200);
      assert.is((await call('POST', '/cluster/heal')).status, 200);
      assert.is((await call('GET', '/kv/during-partition')).text, 'ok');
      assert.is((await call('GET', '/kv/after-crash')).text, 'yes');
    });
  } finally {
    await c.stop();
  }
});

test('a crashed leader is replaced; restarted, it catches up; stopped and started again on its directory, nothing acknowledged is lost', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-paxos-cluster-'));
  try {
    const acked = new Map<string, string>();
    let c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, ...fast });
    try {
      const kv = new KvTestClient(c);
      const first = await eventually(() => c.leader() ?? undefined, 'a leader');
      for (let i = 0; i < 40; i++) {
        await kv.put(`k${i % 10}`, `a${i}`);
        acked.set(`k${i % 10}`, `a${i}`);
      }
      await c.crash(first);
      const second = await eventually(() => {
        const l = c.leader();
        return l !== null && l !== first ? l : undefined;
      }, 'a new leader after the crash');
      for (let i = 0; i < 40; i++) {
        await kv.put(`k${i % 10}`, `b${i}`);
        acked.set(`k${i % 10}`, `b${i}`);
      }
      // Back from its directory: the old leader relearns what was chosen while it was down.
      await c.restart(first);
      const want = await c.supervisor.call<{ applied: number; digest: string }>(second, 'digest');
      const caughtUp = await eventually(async () => {
        const d = await c.supervisor.call<{ applied: number; digest: string }>(first, 'digest');
        return d.applied >= want.applied ? d : undefined;
      }, 'the restarted node catching up', 10_000);
      const leaderNow = await c.supervisor.call<{ applied: number; digest: string }>(c.leader()!, 'digest');
      if (caughtUp.applied === leaderNow.applied) assert.is(caughtUp.digest, leaderNow.digest, 'the same state as the leader');
      // The restarted node serves what every acknowledged write left, through a follower read.
      for (const [key, value] of acked) {
        const r = await c.read(key, 'follower', 5_000, { via: first });
        assert.is(r.node, first);
        assert.is(new TextDecoder().decode(r.value!), value, key);
      }
      const st = await c.supervisor.call<{ log: { file: string; bytes: number } }>(first, 'status');
      assert.match(st.log.file, /node-\d+[/\\]paxos\.log$/);
    } finally {
      await c.stop();
    }
    assert.ok(readdirSync(join(dataDir, 'node-1')).includes('paxos.log'));
    // The whole cluster again, on the same directory.
    c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, ...fast });
    try {
      for (const r of c.recoveries.values()) assert.match(r.summary, /replayed \d+ records/);
      await eventually(() => c.leader() ?? undefined, 'a leader after the restart');
      const kv = new KvTestClient(c);
      for (const [key, value] of acked) assert.is(await kv.get(key), value, key);
    } finally {
      await c.stop();
    }
    // A Raft cluster refuses the directory rather than reading Paxos files as a WAL.
    const err = await Cluster.start({ nodes: 3, storage: 'wal', dataDir, ...fast }).then(
      (x) => x.stop().then(() => null),
      (e: Error) => e,
    );
    assert.ok(err !== null, 'raft refused a multipaxos directory');
    assert.match(err!.message, /paxos\.log/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('options a Multi-Paxos cluster does not have are refused up front', async () => {
  const err = await Cluster.start({ nodes: 3, protocol: 'multipaxos', witnesses: [3] }).then(
    (x) => x.stop().then(() => null),
    (e: Error) => e,
  );
  assert.match(String(err?.message), /witnesses are a Raft feature/);
});

test.run();
