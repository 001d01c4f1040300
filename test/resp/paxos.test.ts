// The Redis door on a live Multi-Paxos cluster: the same commands as on Raft, and CLIENT
// READMODE lease refused with the cluster's reason (a Paxos leader holds no lease) while the
// connection keeps its read path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startRespServer, type RespServer } from '../../apps/resp/server.ts';
import { eventually } from '../support/cluster.ts';

let cluster: Cluster;
let door: RespServer;
let r: Redis;

test.before(async () => {
  cluster = await Cluster.start({ protocol: 'multipaxos', nodes: 3, storage: 'memory' });
  door = await startRespServer(cluster, { port: 0 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader');
  r = new Redis({ port: door.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
});

test.after(async () => {
  r.disconnect();
  await door.close();
  await cluster.stop();
});

test('SET, MSET, INCR, MGET, SCAN and DEL on Multi-Paxos', async () => {
  assert.is(await r.set('px', 'paxos'), 'OK');
  assert.is(await r.get('px'), 'paxos');
  assert.is(await r.mset('px:a', '1', 'px:b', '2'), 'OK');
  assert.is(await r.incr('px:a'), 2);
  assert.equal(await r.mget('px:a', 'px:b', 'px:none'), ['2', '2', null]);
  const [, keys] = await r.scan('0', 'MATCH', 'px:*', 'COUNT', 100);
  assert.equal(keys, ['px:a', 'px:b']);
  assert.is(await r.del('px', 'px:a'), 2);
});

test('CLIENT READMODE lease is refused on Multi-Paxos and the connection keeps its read path; follower and stale work', async () => {
  try {
    await r.call('CLIENT', 'READMODE', 'lease');
    assert.unreachable('lease must be refused');
  } catch (err) {
    assert.match((err as Error).message, /^ERR read=lease is not available on multipaxos/);
  }
  assert.is(await r.call('CLIENT', 'READMODE'), 'index');
  await r.set('px:read', 'v');
  for (const mode of ['follower', 'stale', 'log']) {
    assert.is(await r.call('CLIENT', 'READMODE', mode), 'OK');
    await eventually(async () => ((await r.get('px:read')) === 'v' ? true : undefined), `a ${mode} read`);
  }
});

test.run();
