// `concur member list|add|remove|promote` and `concur transfer` end to end: the real CLI against
// the HTTP API of a real cluster (output, exit codes, messages), and `concur start --witnesses`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { deadPort, runCli, startCli, waitForLeader } from '../support/cli-process.ts';
import { eventually } from '../support/cluster.ts';




let cluster: Cluster;
let api: HttpApi;

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, metricsIntervalMs: 0 });
  api = await startHttpApi(cluster, { port: 0, requestDeadlineMs: 10_000 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader');
});

test.after(async () => {
  await api.close();
  await cluster.stop();
});

test('member list, add, promote, transfer and remove: output and exit codes', async () => {
  const url = api.url;
  let r = await runCli(['member', 'list', '--url', url]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}1 {2}voter +(leader|follower) +term \d+ +applied \d+$/m);
  assert.match(r.stdout, /^leader: \d  term \d+$/m);

  r = await runCli(['member', 'add', '--role', 'learner', '--url', url]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^added node 4 as a learner \(entry \d+\)\n$/);
  r = await runCli(['member', 'list', '--json', '--url', url]);
  assert.equal((JSON.parse(r.stdout) as { members: unknown[] }).members.at(-1), { id: 4, role: 'learner' });

  // Caught up in a moment (the cluster is idle); refused (exit 1) until then.
  r = await eventually(async () => {
    const p = await runCli(['member', 'promote', '4', '--url', url]);
    return p.code === 0 ? p : undefined;
  }, 'node 4 promoted', 15_000, 200);
  assert.match(r.stdout, /^promoted node 4 to voter \(entry \d+\)\n$/);

  r = await runCli(['transfer', '4', '--url', url]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^node 4 leads \(term \d+\)\n$/);
  assert.is(cluster.leader(), 4);

  r = await runCli(['member', 'remove', '2', '--url', url]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^removed node 2 \(entry \d+\)\n$/);
  assert.equal(cluster.supervisor.ids, [1, 3, 4]);
});

test('refusals exit 1 with the server\'s words, bad usage 2, an unreachable server 3', async () => {
  const url = api.url;
  const [unknown, voter, badId, badRole] = await Promise.all([
    runCli(['member', 'remove', '99', '--url', url]),
    runCli(['member', 'promote', '1', '--url', url]),
    runCli(['member', 'promote', 'abc', '--url', url]),
    runCli(['member', 'add', '--role', 'boss', '--url', url]),
  ]);
  assert.equal([unknown.code, unknown.stderr], [1, 'concur: the server answered 404 unknown-node: there is no node 99; GET /cluster lists the members\n']);
  assert.equal([voter.code, voter.stderr], [1, 'concur: the server answered 409 member-state: node 1 is already a voter\n']);
  assert.is(badId.code, 2);
  assert.match(badId.stderr, /node ids are positive integers, got "abc"/);
  assert.is.not(badRole.code, 0);
  assert.match(badRole.stderr, /expected one of voter, learner, witness/);
  const port = await deadPort();
  const down = await runCli(['transfer', '1', '--url', `http://127.0.0.1:${port}`]);
  assert.is(down.code, 3);
  assert.match(down.stderr, /^concur: cannot reach the concur API at/);
});

test('`concur start --nodes 3 --witnesses 3`: two full nodes and a witness', async () => {
  const started = await startCli(['--nodes', '3', '--witnesses', '3']);
  try {
    assert.match(started.output(), /3-node Raft cluster \(witness: 3\)/);
    await waitForLeader(started.url);
    const s = (await (await fetch(`${started.url}/cluster`)).json()) as { members: { id: number; role: string }[] };
    assert.equal(s.members, [
      { id: 1, role: 'voter' },
      { id: 2, role: 'voter' },
      { id: 3, role: 'witness' },
    ]);
    const put = await fetch(`${started.url}/kv/w`, { method: 'PUT', body: 'x' });
    assert.is(put.status, 200);
    const read = await fetch(`${started.url}/kv/w?read=stale&node=3`);
    assert.is(read.status, 409);
    assert.match(((await read.json()) as { error: string }).error, /node 3 is a witness and serves no reads/);
  } finally {
    started.child.kill('SIGINT');
    await started.exited;
  }
  const bad = await runCli(['start', '--nodes', '2', '--witnesses', '1,2', '--port', '0']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /leaves no full voter/);
});

test.run();
