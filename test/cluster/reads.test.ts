import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { NoLeaderError, NoQuorumError, DeadlineError } from '../../apps/http/backend.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

let c: Cluster;
let kv: KvTestClient;
const text = (v: Uint8Array | null) => (v === null ? null : new TextDecoder().decode(v));

test.before(async () => {
  c = await Cluster.start({ nodes: 5, storage: 'memory' });
  kv = new KvTestClient(c);
  await eventually(() => c.leader() ?? undefined, 'a leader');
});

test.after(async () => {
  await c.stop();
});

test('every linearizable read path sees a write that completed before it began', async () => {
  for (let i = 0; i < 5; i++) {
    await kv.put('x', `v${i}`);
    for (const mode of ['index', 'lease', 'follower'] as const) {
      const r = await c.read('x', mode, 2_000);
      assert.is(text(r.value), `v${i}`, `${mode} read after write ${i}`);
    }
    assert.is(await kv.get('x'), `v${i}`, 'log read');
  }
  assert.is((await c.read('never-written', 'index', 2_000)).value, null);
});

test('follower reads are served by followers, index and lease reads by the leader', async () => {
  await kv.put('y', 'here');
  const lead = c.leader()!;
  const servedBy = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const r = await c.read('y', 'follower', 2_000);
    assert.is(text(r.value), 'here');
    assert.ok(r.index >= 1);
    servedBy.add(r.node);
  }
  assert.ok([...servedBy].some((n) => n !== lead), `follower reads spread over nodes: ${[...servedBy]}`);
  for (const mode of ['index', 'lease'] as const) assert.is((await c.read('y', mode, 2_000)).node, lead, `${mode} read on the leader`);
});

test('a stale read answers at once from a cut-off node and says how far behind it may be', async () => {
  await kv.put('z', 'old');
  const lead = c.leader()!;
  const follower = c.supervisor.ids.find((id) => id !== lead)!;
  await eventually(async () => (text((await c.read('z', 'stale', 1_000, { via: follower })).value) === 'old' ? true : undefined), 'the follower applied "old"');
  c.supervisor.isolate(follower);
  try {
    await kv.put('z', 'new');
    const r = await c.read('z', 'stale', 1_000, { via: follower });
    assert.is(text(r.value), 'old', 'the cut-off node still has the old value');
    assert.is(r.node, follower);
    const leaderCommit = (await c.supervisor.call<{ commit: number }>(lead, 'status')).commit;
    assert.ok(r.applied < leaderCommit, `applied ${r.applied} is behind the leader's commit ${leaderCommit}`);
    assert.ok(r.commit <= r.applied + 1 && r.commit < leaderCommit, 'the commit index it reports is the stale one it last heard');
    // A follower read through the same node cannot be served: it must reach the leader.
    const f = await c.read('z', 'follower', 800, { via: follower }).then(() => null, (e: Error) => e);
    assert.ok(f instanceof NoLeaderError || f instanceof NoQuorumError || f instanceof DeadlineError, `follower read on a cut-off node refused, got ${f}`);
  } finally {
    c.supervisor.heal();
  }
  await eventually(async () => (text((await c.read('z', 'stale', 1_000, { via: follower })).value) === 'new' ? true : undefined), 'the healed node caught up');
});

test('a leader cut off from the majority serves no index or lease read', async () => {
  const old = c.leader()!;
  c.supervisor.isolate(old);
  try {
    // A lease still running may serve a read safely (no one else can lead yet); past it, none.
    await new Promise((r) => setTimeout(r, 400));
    for (const mode of ['index', 'lease'] as const) {
      const e = await c.read('x', mode, 1_500, { via: old }).then((r) => r, (err: Error) => err);
      assert.ok(e instanceof Error, `${mode} read on the cut-off leader must fail, got ${JSON.stringify(e)}`);
    }
  } finally {
    c.supervisor.heal();
  }
  await eventually(() => c.leader() ?? undefined, 'a leader after heal');
});

test.run();
