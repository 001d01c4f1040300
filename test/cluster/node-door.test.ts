// Every node's own client port (ClusterOptions.clientPorts, `concur start --client-ports`): the
// HTTP API on the node's worker, through a client pipeline of the node's own. A write sent to any
// node's port is applied once and seen through every other; a follower's port forwards to the
// leader over the rings; stale reads on a port are that node's; control requests are refused with
// where to send them; a leader crash is ridden out by the other ports; a token guards them too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:net';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { freePortBase } from '../../apps/cluster/free-ports.ts';
import { httpCall } from '../support/http-call.ts';
import { Redis } from 'ioredis';

function doorOf(c: Cluster, id: number): string {
  const url = c.clientUrl(id).clientUrl;
  assert.ok(url !== undefined, `node ${id} has a client URL`);
  return url!;
}

test('every node serves the KV API on its own port: writes through any of them apply once, reads see them everywhere', async () => {
  const base = await freePortBase(3);
  const c = await Cluster.start({ nodes: 3, storage: 'memory', clientPorts: { base } });
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader');
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    assert.is(doorOf(c, 2), `http://127.0.0.1:${base + 1}`);
    assert.equal(
      c.status().nodes.map((n) => n.clientUrl),
      [1, 2, 3].map((id) => `http://127.0.0.1:${base + id - 1}`),
      'GET /cluster names each node\'s client URL',
    );

    // Through the leader's port (no thread crossed) and a follower's (forwarded over the rings).
    const a = await httpCall(`${doorOf(c, leader)}/kv/a`, 'PUT', 'from-leader-port');
    assert.is(a.status, 200, a.text);
    const b = await httpCall(`${doorOf(c, follower)}/kv/b`, 'PUT', 'from-follower-port');
    assert.is(b.status, 200, b.text);
    assert.ok(Number(b.json!.index) > Number(a.json!.index), 'the follower\'s write went into the one log, after');
    for (const id of [1, 2, 3]) {
      assert.is((await httpCall(`${doorOf(c, id)}/kv/a`, 'GET')).text, 'from-leader-port', `linearizable read of a on node ${id}'s port`);
      assert.is((await httpCall(`${doorOf(c, id)}/kv/b`, 'GET')).text, 'from-follower-port', `linearizable read of b on node ${id}'s port`);
    }
    // A stale read on a port is served by that node.
    await eventually(async () => ((await httpCall(`${doorOf(c, follower)}/kv/b?read=stale`, 'GET')).status === 200 ? true : undefined), 'the follower applied b');
    const stale = await httpCall(`${doorOf(c, follower)}/kv/b?read=stale`, 'GET');
    assert.is(stale.headers.get('x-concur-node'), String(follower));

    // Many writes at once through every port: each applied once, in one order all ports agree on.
    const writes = await Promise.all(Array.from({ length: 300 }, (_, i) => httpCall(`${doorOf(c, (i % 3) + 1)}/kv/k${i % 10}`, 'PUT', `v${i}`)));
    assert.ok(writes.every((w) => w.status === 200), writes.find((w) => w.status !== 200)?.text);
    const indexes = writes.map((w) => Number(w.json!.index));
    assert.is(new Set(indexes).size, 300, 'every write has an index of its own: none applied twice, none lost');
    for (let k = 0; k < 10; k++) {
      // The value a key holds is the write with the highest index among those to it.
      let last = -1;
      for (let i = k; i < 300; i += 10) if (last < 0 || indexes[i]! > indexes[last]!) last = i;
      for (const id of [1, 2, 3]) assert.is((await httpCall(`${doorOf(c, id)}/kv/k${k}`, 'GET')).text, `v${last}`, `k${k} on node ${id}'s port`);
    }

    // The rest of the API the node can answer itself: deletes, cas, its own view of the cluster.
    assert.is((await httpCall(`${doorOf(c, follower)}/kv/a`, 'DELETE')).json!.existed, true);
    assert.is((await httpCall(`${doorOf(c, leader)}/kv/a`, 'GET')).status, 404);
    const cas = await httpCall(`${doorOf(c, follower)}/kv/b/cas`, 'POST', JSON.stringify({ expect: 'from-follower-port', value: 'swapped' }), { 'content-type': 'application/json' });
    assert.is(cas.status, 200, cas.text);
    const view = await httpCall(`${doorOf(c, follower)}/cluster`, 'GET');
    assert.is(view.json!.leader, leader);
    assert.equal((view.json!.nodes as { id: number }[]).map((n) => n.id), [follower], 'a port reports its own node');
    assert.equal((view.json!.members as { id: number }[]).map((m) => m.id), [1, 2, 3]);
  } finally {
    await c.stop();
  }
});

test('every node speaks the Redis protocol on its own port too (ioredis): a SET through any node is seen through every other', async () => {
  const base = await freePortBase(6);
  const respBase = base + 3;
  const c = await Cluster.start({ nodes: 3, storage: 'memory', clientPorts: { base, respBase } });
  const clients: Redis[] = [];
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader');
    assert.equal(
      c.status().nodes.map((n) => n.respUrl),
      [1, 2, 3].map((id) => `redis://127.0.0.1:${respBase + id - 1}`),
    );
    for (const id of [1, 2, 3]) clients.push(new Redis({ port: respBase + id - 1, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null }));
    for (const [i, r] of clients.entries()) assert.is(await r.set(`r${i + 1}`, `via-node-${i + 1}`), 'OK');
    for (const r of clients) assert.equal(await r.mget('r1', 'r2', 'r3'), ['via-node-1', 'via-node-2', 'via-node-3']);
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const incrs = await Promise.all(Array.from({ length: 60 }, (_, i) => clients[i % 3]!.incr('counter')));
    assert.equal([...incrs].sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1), 'each INCR applied once, through every port');
    assert.is(await clients[follower - 1]!.get('counter'), '60');
    // The HTTP port beside it shows the same store.
    assert.is((await httpCall(`${doorOf(c, follower)}/kv/r1`, 'GET')).text, 'via-node-1');
  } finally {
    for (const r of clients) r.disconnect();
    await c.stop();
  }
});

test('control requests on a node\'s port are refused, saying where they go', async () => {
  const base = await freePortBase(3);
  const c = await Cluster.start({ nodes: 3, storage: 'memory', clientPorts: { base } });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    for (const [method, path] of [
      ['POST', '/cluster/nodes/1/crash'],
      ['POST', '/cluster/heal'],
      ['POST', '/cluster/members'],
      ['GET', '/events'],
    ] as const) {
      const r = await httpCall(`${doorOf(c, 2)}${path}`, method, method === 'POST' ? '{}' : undefined, { 'content-type': 'application/json' });
      assert.is(r.status, 404, `${method} ${path}: ${r.text}`);
      assert.is(r.json!.code, 'not-on-node-port');
      assert.match(String(r.json!.error), /cluster's HTTP API/);
    }
    assert.is(c.status().nodes.filter((n) => n.up).length, 3, 'nothing was crashed');
  } finally {
    await c.stop();
  }
});

test('the leader crashes: writes through the other ports go on once a new leader is elected, none lost', async () => {
  const base = await freePortBase(3);
  const c = await Cluster.start({ nodes: 3, storage: 'wal', clientPorts: { base } });
  try {
    const old = await eventually(() => c.leader() ?? undefined, 'a leader');
    const others = [1, 2, 3].filter((id) => id !== old);
    assert.is((await httpCall(`${doorOf(c, others[0]!)}/kv/before`, 'PUT', '1')).status, 200);
    await c.crash(old);
    // Through the surviving ports, while the election runs: each answered within its deadline.
    const during = await Promise.all(Array.from({ length: 40 }, (_, i) => httpCall(`${doorOf(c, others[i % 2]!)}/kv/during${i}`, 'PUT', `d${i}`)));
    for (const r of during) assert.ok(r.status === 200 || r.status === 503 || r.status === 504, `an answer: ${r.status} ${r.text}`);
    // They wait in the ports' pipelines for the new leader (5-s deadline, an election takes < 1 s).
    assert.ok(during.some((r) => r.status === 200), `writes sent during the election were applied: ${during.map((r) => r.status).join(' ')}`);
    const fresh = await eventually(() => (c.leader() !== null && c.leader() !== old ? c.leader()! : undefined), 'a new leader');
    assert.ok(others.includes(fresh));
    for (let i = 0; i < 40; i++) {
      if (during[i]!.status !== 200) continue;
      assert.is((await httpCall(`${doorOf(c, others[(i + 1) % 2]!)}/kv/during${i}`, 'GET')).text, `d${i}`, `an acknowledged write (during${i}) survived`);
    }
    assert.is((await httpCall(`${doorOf(c, others[1]!)}/kv/after`, 'PUT', '2')).status, 200);
    assert.is((await httpCall(`${doorOf(c, others[0]!)}/kv/before`, 'GET')).text, '1');
    // The crashed node's port comes back with it.
    await c.restart(old);
    await eventually(async () => ((await httpCall(`${doorOf(c, old)}/kv/after`, 'GET').catch(() => null))?.text === '2' ? true : undefined), 'the restarted node serves its port again');
  } finally {
    await c.stop();
  }
});

test('with a token, every node\'s port asks for it; a port in use stops the start with a clear error', async () => {
  const base = await freePortBase(3);
  const c = await Cluster.start({ nodes: 3, storage: 'memory', clientPorts: { base, api: { token: 'door-secret' } } });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    assert.is((await httpCall(`${doorOf(c, 1)}/kv/x`, 'PUT', 'v')).status, 401);
    assert.is((await httpCall(`${doorOf(c, 1)}/kv/x`, 'PUT', 'v', { authorization: 'Bearer door-secret' })).status, 200);
  } finally {
    await c.stop();
  }
  const taken = await freePortBase(3);
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(taken + 1, '127.0.0.1', r));
  try {
    const err = await Cluster.start({ nodes: 3, storage: 'memory', clientPorts: { base: taken } }).then(
      async (cl) => {
        await cl.stop();
        return null;
      },
      (e: Error) => e,
    );
    assert.ok(err !== null, 'the start failed');
    assert.match(err!.message, new RegExp(`node 2\\b.*cannot serve clients on 127\\.0\\.0\\.1:${taken + 1} \\(the port is in use\\)`));
    assert.match(err!.message, /--client-ports/);
  } finally {
    await new Promise((r) => holder.close(r));
  }
  for (const [o, why] of [
    [{ clientPorts: { base: 65_534 } }, /base 65534 with 3 nodes does not fit/],
    [{ protocol: 'multipaxos' as const, clientPorts: { base } }, /Raft nodes only/],
    [{ clientPorts: { base, respBase: base + 2 } }, /the HTTP client ports \(from \d+\) and the Redis ones \(from \d+\) overlap for 3 nodes/],
    [{ clientPorts: {} }, /clientPorts needs a base \(HTTP\), a respBase \(Redis protocol\) or both/],
  ] as const) {
    const e = await Cluster.start({ nodes: 3, storage: 'memory', ...o }).then(
      async (cl) => {
        await cl.stop();
        return null;
      },
      (x: Error) => x,
    );
    assert.ok(e !== null, 'refused');
    assert.match(e!.message, why);
  }
});

test.run();
