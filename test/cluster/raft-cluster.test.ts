import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { NoLeaderError, NoQuorumError } from '../../apps/http/backend.ts';
import { encodeCommand, decodeResult, textBytes } from '../../apps/kv/commands.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

const electionMsMax = 300;

async function leaderOf(c: Cluster, timeoutMs = 3 * electionMsMax + 500): Promise<number> {
  return eventually(() => c.leader() ?? undefined, 'a leader', timeoutMs, 5);
}

async function readEverywhere(c: Cluster, key: string): Promise<(string | null)[]> {
  return Promise.all(
    c.supervisor.ids.map(async (id) => {
      const v = await c.supervisor.call<Uint8Array | undefined>(id, 'read', [key]);
      return v === undefined ? null : new TextDecoder().decode(v);
    }),
  );
}

test('a leader is elected and writes become visible on every node', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory' });
  try {
    await leaderOf(c);
    const kv = new KvTestClient(c);
    for (let i = 0; i < 20; i++) await kv.put(`k${i}`, `v${i}`);
    assert.is(await kv.get('k7'), 'v7');
    assert.is(await kv.get('missing'), null);
    await eventually(async () => ((await readEverywhere(c, 'k19')).every((v) => v === 'v19') ? true : undefined), 'k19 applied on all nodes');
    const s = c.status();
    assert.is(s.nodes.filter((n) => n.role === 'leader').length, 1);
    assert.is(s.leader, s.nodes.find((n) => n.role === 'leader')!.id);
  } finally {
    await c.stop();
  }
});

test('leader crash: a new leader within 3 × the max election timeout, no acknowledged write lost', async () => {
  const c = await Cluster.start({ nodes: 5, storage: 'wal' });
  try {
    const first = await leaderOf(c);
    const kv = new KvTestClient(c);
    const acked: number[] = [];
    for (let i = 0; i < 30; i++) {
      await kv.put(`a${i}`, `x${i}`);
      acked.push(i);
    }
    await c.crash(first);
    const crashedAt = performance.now();
    const next = await eventually(() => {
      const l = c.leader();
      return l !== null && l !== first ? l : undefined;
    }, 'a new leader', 3 * electionMsMax, 2);
    const tookMs = performance.now() - crashedAt;
    assert.ok(tookMs <= 3 * electionMsMax, `new leader after ${tookMs.toFixed(0)} ms`);
    assert.is.not(next, first);
    for (const i of acked) assert.is(await kv.get(`a${i}`), `x${i}`, `acknowledged write a${i}`);
    // The old leader comes back, catches up, and writes keep flowing.
    await c.restart(first);
    await kv.put('after', 'restart');
    await eventually(async () => ((await readEverywhere(c, 'after')).every((v) => v === 'restart') ? true : undefined), 'restarted node caught up');
  } finally {
    await c.stop();
  }
});

test('a minority partition cannot commit (no quorum) while the majority keeps going; after heal it catches up', async () => {
  const c = await Cluster.start({ nodes: 5, storage: 'memory' });
  try {
    const lead = await leaderOf(c);
    const kv = new KvTestClient(c);
    await kv.put('before', '1');
    // Put the leader in the minority with one follower.
    const others = c.supervisor.ids.filter((id) => id !== lead);
    const minority = [lead, others[0]!];
    const majority = others.slice(1);
    c.partition([minority, majority]);
    const err = await kv.put('lost', 'x', { via: minority[1], timeoutMs: 1_500 }).then(() => null, (e: Error) => e);
    assert.ok(err instanceof NoQuorumError || err instanceof NoLeaderError, `minority write refused, got ${err}`);
    const newLead = await eventually(() => {
      const l = c.leader();
      return l !== null && majority.includes(l) ? l : undefined;
    }, 'a majority leader', 5_000);
    assert.ok(majority.includes(newLead));
    for (let i = 0; i < 10; i++) await kv.put(`maj${i}`, `${i}`, { via: majority[0] });
    c.heal();
    await eventually(async () => ((await readEverywhere(c, 'maj9')).every((v) => v === '9') ? true : undefined), 'minority caught up after heal', 10_000);
    assert.is(await kv.get('lost'), null, 'the minority write never took effect');
    assert.is(await kv.get('before'), '1');
    const views = c.supervisor.ids.map((id) => c.nodeView(id));
    assert.is(new Set(views.map((v) => v.term)).size, 1, 'one term everywhere after heal');
  } finally {
    await c.stop();
  }
});

test('a duplicate client request is applied once', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory' });
  try {
    await leaderOf(c);
    const put = encodeCommand({ op: 'put', key: 'dup', value: textBytes('first'), clientId: 'retrying-client', seq: 1 });
    const r1 = await c.submit(put, 5_000);
    const overwrite = encodeCommand({ op: 'put', key: 'dup', value: textBytes('second'), clientId: 'other', seq: 1 });
    await c.submit(overwrite, 5_000);
    // The same (clientId, seq) again — a retry — must not re-apply the first write.
    const r2 = await c.submit(put, 5_000);
    assert.equal(decodeResult(r2.result), decodeResult(r1.result), 'the retry gets the original answer');
    const kv = new KvTestClient(c);
    assert.is(await kv.get('dup'), 'second');
  } finally {
    await c.stop();
  }
});

test('a node with in-memory storage is never restarted: it would come back without its log', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory' });
  try {
    await leaderOf(c);
    await c.crash(2);
    const e = await c.restart(2).then(() => null, (x: Error) => x);
    assert.match(e?.message ?? '', /--storage wal/);
    assert.is(c.supervisor.status(2).status, 'down');
  } finally {
    await c.stop();
  }
});

test('bad cluster settings are refused with the fix', async () => {
  const refuse = async (o: Parameters<typeof Cluster.start>[0], re: RegExp) => {
    const e = await Cluster.start(o).then(async (c) => (await c.stop(), null), (x: Error) => x);
    assert.ok(e && re.test(e.message), `expected ${re}, got ${e?.message}`);
  };
  await refuse({ nodes: 0 }, /from 1 to 15 nodes, got 0/);
  await refuse({ nodes: 3, electionMsMin: 150, electionMsMax: 200 }, /try 150-300/);
  await refuse({ nodes: 3, heartbeatMs: 200 }, /heartbeat interval/);
});

test.run();
