// `concur cluster`: status, crash, restart, partition and heal against a real cluster and its
// real HTTP API; pause, resume, isolate, cut and faults (and the network part of status, and the
// token) against a real HTTP server in the test that checks each request the CLI sends and
// answers as the API's contract says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { formatClusterStatus, type ClusterView } from '../../apps/cli/cluster-status.ts';
import { deadPort, runCli } from '../support/cli-process.ts';
import { eventually } from '../support/cluster.ts';
import { startStubApi, type SeenRequest, type StubAnswer } from './stub-api.ts';

test('against a real cluster: status, crash, restart, partition, heal; refusals exit 1', async () => {
  const cluster = await Cluster.start({ nodes: 3, metricsIntervalMs: 0 });
  const api: HttpApi = await startHttpApi(cluster, { port: 0, requestDeadlineMs: 10_000 });
  const url = ['--url', api.url];
  try {
    await eventually(() => cluster.leader() ?? undefined, 'a leader');
    let r = await runCli(['cluster', 'status', ...url]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^leader: \d  term \d+\nnode {2}status {2}role +term {2}commit {2}applied\n/);
    assert.match(r.stdout, /^ {3}1 {2}up +(leader|follower) +\d+ +\d+ +\d+$/m, r.stdout);

    const victim = cluster.leader() === 2 ? 3 : 2;
    r = await runCli(['cluster', 'crash', String(victim), ...url]);
    assert.equal([r.code, r.stderr], [0, '']);
    assert.is(r.stdout, `node ${victim} crashed (its worker is gone; concur cluster restart ${victim} brings it back from its log)\n`);
    assert.is(cluster.supervisor.isUp(victim), false);
    r = await runCli(['cluster', 'status', ...url]);
    assert.match(r.stdout, new RegExp(`^ {3}${victim} {2}down `, 'm'));

    r = await runCli(['cluster', 'crash', String(victim), ...url]);
    assert.is(r.code, 1);
    assert.match(r.stderr, new RegExp(`^concur: the server answered 409 node-state: node ${victim} is already down.*\n$`));
    r = await runCli(['cluster', 'restart', '9', ...url]);
    assert.is(r.code, 1);
    assert.match(r.stderr, /^concur: the server answered 404 unknown-node: there is no node 9.*\n$/);

    r = await runCli(['cluster', 'restart', String(victim), ...url]);
    assert.equal([r.code, r.stdout], [0, `node ${victim} restarted\n`]);
    await eventually(() => cluster.supervisor.isUp(victim) || undefined, 'the node back up');

    r = await runCli(['cluster', 'partition', '1', '2,3', ...url]);
    assert.equal([r.code, r.stdout], [0, 'partitioned: 1 | 2,3 (concur cluster heal joins them again)\n']);
    await eventually(() => (cluster.leader() !== null && cluster.leader() !== 1 ? true : undefined), 'a leader on the majority side', 15_000);

    r = await runCli(['cluster', 'heal', ...url]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^healed: no partition, cuts or link faults\n/);

    r = await runCli(['cluster', 'status', '--json', ...url]);
    const s = JSON.parse(r.stdout) as ClusterView;
    assert.is(s.nodes.length, 3);
  } finally {
    await api.close();
    await cluster.stop();
  }
  const port = await deadPort();
  const down = await runCli(['cluster', 'status', '--url', `http://127.0.0.1:${port}`]);
  assert.is(down.code, 3);
  assert.match(down.stderr, /^concur: cannot reach the concur API at .*: connection refused/);
});

/** A GET /cluster answer as the fault API's contract shapes it. */
const contractStatus: ClusterView = {
  leader: 1,
  term: 4,
  nodes: [
    { id: 1, role: 'leader', term: 4, commitIndex: 20, lastIndex: 20, up: true, appliedIndex: 20, status: 'up' },
    { id: 2, role: 'follower', term: 4, commitIndex: 20, lastIndex: 20, up: true, appliedIndex: 19, status: 'paused' },
    { id: 3, role: 'down', term: 4, commitIndex: 20, lastIndex: 20, up: false, status: 'down', last: { role: 'leader', term: 3, commitIndex: 12, lastIndex: 12, appliedIndex: 12 } },
  ],
  network: {
    partition: [[1, 2], [3]],
    cuts: [{ from: 1, to: 2 }],
    faults: [{ from: 1, to: 2, loss: 0.1, delayMs: 20, jitterMs: 10, duplicate: 0, reorder: 0.05 }],
  },
};

test('status table: a down node shows its last role, a paused one its state; the network below', () => {
  assert.is(
    formatClusterStatus(contractStatus),
    [
      'leader: 1  term 4',
      'node  status  role          term  commit  applied',
      '   1  up      leader           4      20       20',
      '   2  paused  follower         4      20       19',
      '   3  down    (was leader)     3      12       12',
      'partition: 1,2 | 3',
      'cuts: 1->2',
      'faults: 1->2 loss 10%, delay 20 ms, jitter 0..10 ms, reorder 5%',
      '',
    ].join('\n'),
  );
  // A server without the network report (older): said so, not invented.
  const { network: _n, ...old } = contractStatus;
  assert.match(formatClusterStatus(old), /\nnetwork: not reported by this server\n$/);
  assert.match(formatClusterStatus({ ...contractStatus, network: { partition: null, cuts: [], faults: [] } }), /partition: none\ncuts: none\nfaults: none\n$/);
});

test('against the contract: pause, resume, isolate, cut, faults, heal send what the API expects, with the token', async () => {
  const secret = 'cluster-token-42';
  const dir = mkdtempSync(join(tmpdir(), 'concur-cluster-cli-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, secret);
  const ok = (body: unknown = { ok: true }): StubAnswer => ({ body });
  const stub = await startStubApi((r: SeenRequest) => {
    if (r.headers.authorization !== `Bearer ${secret}`) return { status: 401, body: { error: 'unauthorized', message: 'missing or wrong token' } };
    if (r.method === 'GET' && r.path === '/cluster') return ok(contractStatus);
    if (r.path === '/cluster/nodes/7/pause') return { status: 404, body: { error: 'unknown-node', message: 'there is no node 7' } };
    if (r.path === '/cluster/nodes/2/resume' && r.method === 'POST') return { status: 403, body: { error: 'fault-api-disabled', message: 'the fault API is switched off on this cluster' } };
    if (r.method === 'POST' && /^\/cluster\/(nodes\/\d+\/(pause|resume|isolate)|cut|faults|heal)$/.test(r.path)) return ok();
    if (r.method === 'DELETE' && r.path === '/cluster/faults') return ok();
    return { status: 404, body: { error: 'not-found', message: `no route ${r.method} ${r.path}` } };
  });
  const run = (...args: string[]) => runCli(['cluster', ...args, '--url', stub.url, '--token-file', tokenFile]);
  const lastSent = () => {
    const s = stub.seen.at(-1)!;
    assert.is(s.headers.authorization, `Bearer ${secret}`);
    return { method: s.method, path: s.path, body: s.body === '' ? null : JSON.parse(s.body) };
  };
  try {
    let r = await run('pause', '2');
    assert.equal([r.code, r.stdout], [0, 'node 2 paused (it processes nothing, sends nothing and its timers wait; concur cluster resume 2)\n']);
    assert.equal(lastSent(), { method: 'POST', path: '/cluster/nodes/2/pause', body: null });

    r = await run('isolate', '3');
    assert.equal([r.code, r.stdout], [0, 'node 3 isolated: every link to and from it is cut (concur cluster heal joins it again)\n']);
    assert.equal(lastSent(), { method: 'POST', path: '/cluster/nodes/3/isolate', body: null });

    r = await run('cut', '1', '2,3');
    assert.equal([r.code, r.stdout], [0, 'cut 1 -> 2,3 (frames the other way still flow; concur cluster heal restores it)\n']);
    assert.equal(lastSent(), { method: 'POST', path: '/cluster/cut', body: { from: [1], to: [2, 3] } });

    r = await run('faults', '--loss', '0.1', '--delay-ms', '20', '--jitter-ms', '10', '--duplicate', '0.01', '--reorder', '0.05', '--from', '1', '--to', '2');
    assert.equal([r.code, r.stdout], [0, 'link faults 1 -> 2: loss 10%, delay 20 ms, jitter 0..10 ms, duplicate 1%, reorder 5% (settings not given keep their value)\n']);
    assert.equal(lastSent(), { method: 'POST', path: '/cluster/faults', body: { loss: 0.1, delayMs: 20, jitterMs: 10, duplicate: 0.01, reorder: 0.05, from: [1], to: [2] } });

    r = await run('faults', '--loss', '0');
    assert.equal([r.code, r.stdout], [0, 'link faults * -> *: loss 0% (settings not given keep their value)\n']);
    assert.equal(lastSent(), { method: 'POST', path: '/cluster/faults', body: { loss: 0 } });

    r = await run('faults', '--clear');
    assert.equal([r.code, r.stdout], [0, 'link faults cleared (partitions, cuts and paused nodes stay as they are)\n']);
    assert.equal(lastSent(), { method: 'DELETE', path: '/cluster/faults', body: null });

    r = await run('faults');
    assert.equal([r.code, r.stdout], [0, 'faults: 1->2 loss 10%, delay 20 ms, jitter 0..10 ms, reorder 5%\n']);
    assert.equal(lastSent(), { method: 'GET', path: '/cluster', body: null });

    r = await run('heal');
    assert.equal([r.code, r.stdout], [0, 'healed: no partition, cuts or link faults\nstill paused: node 2 (concur cluster resume 2)\n']);
    assert.equal(stub.seen.at(-2)!.path, '/cluster/heal');

    r = await run('status');
    assert.is(r.stdout, formatClusterStatus(contractStatus));
    r = await run('status', '--json');
    assert.equal(JSON.parse(r.stdout), contractStatus);

    r = await run('pause', '7');
    assert.equal([r.code, r.stderr], [1, 'concur: the server answered 404 unknown-node: there is no node 7\n']);
    r = await run('resume', '2');
    assert.equal([r.code, r.stderr], [3, 'concur: the server answered 403 fault-api-disabled: the fault API is switched off on this cluster; this cluster was started with --no-fault-api\n']);

    r = await runCli(['cluster', 'crash', '1', '--url', stub.url]);
    assert.equal([r.code, r.stderr], [3, 'concur: the server answered 401 unauthorized: missing or wrong token; give the cluster\'s token with --token-file FILE (or CONCUR_TOKEN_FILE=FILE)\n']);
    for (const out of [r.stdout, r.stderr]) assert.not.ok(out.includes(secret));
  } finally {
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the token goes with member, transfer, lock and app requests too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concur-token-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'member-lock-token\n');
  const stub = await startStubApi((r) => {
    if (r.path === '/cluster') return { body: { ...contractStatus, members: [{ id: 1, role: 'voter' }] } };
    if (r.path === '/cluster/transfer') return { body: { leader: 2, term: 5 } };
    if (r.path === '/locks/l') return { body: { lock: 'l', holder: null, waiters: [] } };
    return { status: 404, body: { error: 'no route', code: 'not-found' } };
  });
  try {
    const common = ['--url', stub.url, '--token-file', tokenFile];
    const results = await Promise.all([runCli(['member', 'list', ...common]), runCli(['transfer', '2', ...common]), runCli(['lock', 'status', 'l', ...common])]);
    for (const r of results) assert.is(r.code, 0, r.stderr);
    assert.is(stub.seen.length, 3);
    for (const s of stub.seen) assert.is(s.headers.authorization, 'Bearer member-lock-token', `${s.method} ${s.path}`);
  } finally {
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
