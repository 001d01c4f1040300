// The membership endpoints over real HTTP on real clusters: GET /cluster lists members and the
// change in flight; POST /cluster/members, DELETE /cluster/members/:id, POST .../promote and
// POST /cluster/transfer answer once done; and every error case gets its status and code —
// 404 unknown node, 409 a change pending / a learner behind / the last voter / the node limit,
// 400 malformed bodies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';

let cluster: Cluster;
let api: HttpApi;

test.before(async () => {
  // Long election timeouts: a leader cut off from its quorum keeps leading for a second, long
  // enough to see it refuse a second change while the first cannot commit.
  cluster = await Cluster.start({ nodes: 3, nodesMax: 4, electionMsMin: 600, electionMsMax: 1200, heartbeatMs: 50, metricsIntervalMs: 0, snapshot: { entries: 100, catchUpEntries: 10, retainEntriesMax: 50 } });
  api = await startHttpApi(cluster, { port: 0, requestDeadlineMs: 8_000 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader', 10_000);
});

test.after(async () => {
  await api.close();
  await cluster.stop();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(`${api.url}${path}`, init);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

type Status = { leader: number | null; members: { id: number; role: string }[]; pendingChange: unknown; nodes: { id: number; member: string | null; up: boolean }[] };
const status = async () => (await call('GET', '/cluster')).body as unknown as Status;

async function writes(n: number, prefix: string): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => fetch(`${api.url}/kv/${prefix}${i + j}`, { method: 'PUT', body: 'x' }).then((r) => assert.is(r.status, 200))));
  }
}

function expectError(a: Answer, status: number, code: string, message?: RegExp): void {
  assert.is(a.status, status, JSON.stringify(a.body));
  assert.is(a.body.code, code, JSON.stringify(a.body));
  if (message) assert.match(String(a.body.error), message);
}

test('GET /cluster lists the members next to the nodes, and no pending change', async () => {
  const s = await status();
  assert.equal(s.members, [
    { id: 1, role: 'voter' },
    { id: 2, role: 'voter' },
    { id: 3, role: 'voter' },
  ]);
  assert.is(s.pendingChange, null);
  assert.equal(s.nodes.map((n) => n.member), ['voter', 'voter', 'voter']);
});

test('malformed bodies are 400, unknown nodes 404, wrong methods 405', async () => {
  expectError(await call('POST', '/cluster/members', '{not json'), 400, 'bad-json');
  expectError(await call('POST', '/cluster/members', { role: 'boss' }), 400, 'bad-body', /"role" must be one of voter, learner, witness/);
  expectError(await call('POST', '/cluster/members', [1, 2]), 400, 'bad-body');
  expectError(await call('POST', '/cluster/transfer', {}), 400, 'bad-body', /"to" must be a node id/);
  expectError(await call('POST', '/cluster/transfer', { to: 'two' }), 400, 'bad-body');
  expectError(await call('DELETE', '/cluster/members/abc'), 400, 'bad-node-id');
  expectError(await call('DELETE', '/cluster/members/99'), 404, 'unknown-node', /there is no node 99/);
  expectError(await call('POST', '/cluster/members/99/promote'), 404, 'unknown-node');
  expectError(await call('POST', '/cluster/transfer', { to: 99 }), 404, 'unknown-node');
  expectError(await call('GET', '/cluster/members'), 405, 'method-not-allowed');
});

test('add a learner; promotion refused (409) while it is behind, accepted once caught up; the node limit (409); transfer', async () => {
  const added = await call('POST', '/cluster/members', { role: 'learner' });
  assert.is(added.status, 200, JSON.stringify(added.body));
  assert.is(added.body.id, 4);
  assert.ok(Number(added.body.index) > 0);
  assert.equal((await status()).members.find((m) => m.id === 4), { id: 4, role: 'learner' });
  expectError(await call('POST', '/cluster/members', { role: 'voter' }), 409, 'node-limit', /runs 4 nodes, its limit \(4\); remove a member first/);

  assert.is((await call('POST', '/cluster/nodes/4/crash')).status, 200);
  await writes(150, 'behind');
  expectError(await call('POST', '/cluster/members/4/promote'), 409, 'learner-behind', /learner 4 is \d+ entries behind the leader .* retry once it has caught up/);
  assert.is((await call('POST', '/cluster/nodes/4/restart')).status, 200);
  const promoted = await eventually(async () => {
    const a = await call('POST', '/cluster/members/4/promote');
    return a.status === 200 ? a : undefined;
  }, 'the learner promoted once caught up', 15_000, 100);
  assert.ok(Number(promoted.body.index) > Number(added.body.index));
  expectError(await call('POST', '/cluster/members/4/promote'), 409, 'member-state', /already a voter/);

  const to = [1, 2, 3, 4].find((id) => id !== cluster.leader())!;
  const moved = await call('POST', '/cluster/transfer', { to });
  assert.is(moved.status, 200, JSON.stringify(moved.body));
  assert.is(moved.body.leader, to);
  assert.is((await status()).leader, to);
});

test('a change while another is pending is 409 change-pending', async () => {
  // Four voters, two down: removing a third (up) one leaves a configuration the leader cannot
  // reach a majority of, so the removal stays pending. First no change may be pending: a leader
  // new from the transfer above reports the promotion pending until its own first entry commits.
  await eventually(async () => ((await status()).pendingChange === null ? true : undefined), 'no change pending at the start', 10_000);
  const leader = cluster.leader()!;
  const [a, b, c] = [1, 2, 3, 4].filter((id) => id !== leader);
  await cluster.crash(a!);
  await cluster.crash(b!);
  const first = call('DELETE', `/cluster/members/${c}`);
  first.catch(() => undefined); // settled below, unless an assertion fails first
  await eventually(async () => ((await status()).pendingChange !== null ? true : undefined), 'the first removal pending', 2_000, 10);
  const s = await status();
  assert.equal((s.pendingChange as { voters: number[] }).voters, [1, 2, 3, 4].filter((id) => id !== c));
  expectError(await call('DELETE', `/cluster/members/${a}`), 409, 'change-pending', /another membership change .* is not committed yet/);
  await cluster.restart(a!);
  await cluster.restart(b!);
  const done = await first;
  // Committed once the others came back (or, if the leader changed meanwhile, possibly lost).
  assert.ok([200, 503, 504].includes(done.status), JSON.stringify(done.body));
  await eventually(async () => ((await status()).pendingChange === null ? true : undefined), 'no change pending', 10_000);
});

test('removing the last voter, and adding to a memory-storage cluster, are 409 with what to do', async () => {
  const single = await Cluster.start({ nodes: 1, storage: 'memory', metricsIntervalMs: 0 });
  const one = await startHttpApi(single, { port: 0 });
  try {
    await eventually(() => single.leader() ?? undefined, 'a leader');
    const del = await fetch(`${one.url}/cluster/members/1`, { method: 'DELETE' });
    const body = (await del.json()) as { code: string; error: string };
    assert.is(del.status, 409);
    assert.is(body.code, 'last-voter');
    assert.match(body.error, /leave no voter.*add a voter first/);
    const add = await fetch(`${one.url}/cluster/members`, { method: 'POST', body: '{"role":"learner"}' });
    assert.is(add.status, 409);
    assert.match(((await add.json()) as { error: string }).error, /--storage wal to add members/);
  } finally {
    await one.close();
    await single.stop();
  }
});

test.run();
