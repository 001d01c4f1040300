// The Redis door on a real 3-node Raft cluster, driven by ioredis, a client nobody here wrote:
// its default RESP3 handshake and RESP2, commands, pipelines, MULTI refused, errors, SCAN
// streams, and CLIENT READMODE.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis, type RedisOptions } from 'ioredis';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startRespServer, type RespServer } from '../../apps/resp/server.ts';
import { eventually } from '../support/cluster.ts';

let cluster: Cluster;
let door: RespServer;
const clients: Redis[] = [];

function client(options: RedisOptions = {}): Redis {
  // No retries: a test sees each error as it is.
  const r = new Redis({ port: door.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  clients.push(r);
  return r;
}

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, storage: 'memory' });
  door = await startRespServer(cluster, { port: 0, valueBytesMax: 4096 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader');
});

test.after(async () => {
  for (const c of clients) c.disconnect();
  await door.close();
  await cluster.stop();
});

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('ioredis connects with its RESP3 handshake and runs the string and key commands', async () => {
  const r = client({ connectionName: 'ioredis-test' });
  assert.is(await r.ping(), 'PONG');
  assert.is(await r.set('colour', 'blue'), 'OK');
  assert.is(await r.get('colour'), 'blue');
  assert.is(await r.set('colour', 'red', 'NX'), null);
  assert.is(await r.set('colour', 'green', 'XX', 'GET'), 'blue');
  assert.is(await r.get('missing'), null);
  assert.is(await r.incr('counter'), 1);
  assert.is(await r.incrby('counter', 41), 42);
  assert.is(await r.decr('counter'), 41);
  assert.is(await r.mset('a', '1', 'b', '2'), 'OK');
  assert.equal(await r.mget('a', 'missing', 'b'), ['1', null, '2']);
  assert.is(await r.exists('a', 'b', 'missing'), 2);
  assert.is(await r.del('a', 'missing'), 1);
  assert.is(await r.setnx('only-once', 'x'), 1);
  assert.is(await r.setnx('only-once', 'y'), 0);
  assert.is(await r.client('GETNAME'), 'ioredis-test');
  assert.match(String(await r.client('INFO')), /lib-name=ioredis/);
  assert.ok((await r.dbsize()) >= 4);
  const buf = Buffer.from([0, 1, 2, 255]);
  await r.set('binary', buf);
  assert.equal(await r.getBuffer('binary'), buf);
});

test('RESP2 clients work the same (protocol: 2)', async () => {
  const r = client({ protocol: 2 });
  await r.set('resp2', 'yes');
  assert.is(await r.get('resp2'), 'yes');
  assert.equal(await r.mget('resp2', 'nothing'), ['yes', null]);
});

test('a pipeline of mixed commands is answered in order and reads its own writes', async () => {
  const r = client();
  const p = r.pipeline();
  for (let i = 0; i < 200; i++) p.set(`p:${i}`, String(i)).get(`p:${i}`).incr('p:count');
  const results = await p.exec();
  assert.ok(results !== null);
  for (let i = 0; i < 200; i++) {
    assert.equal(results[i * 3], [null, 'OK']);
    assert.equal(results[i * 3 + 1], [null, String(i)]);
    assert.equal(results[i * 3 + 2], [null, i + 1]);
  }
});

test('errors reach the client as Redis errors: arity, not an integer, oversize, unknown command, MULTI refused', async () => {
  const r = client();
  await r.set('text', 'abc');
  await rejects(r.incr('text'), /^ERR value is not an integer or out of range/);
  await rejects(r.set('big', 'x'.repeat(4097)), /^ERR the value is 4097 bytes; the limit is 4096/);
  await rejects(r.call('GET'), /^ERR wrong number of arguments for 'get' command/);
  await rejects(r.call('HSET', 'h', 'f', 'v'), /^ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v'/);
  await rejects(r.set('k', 'v', 'EX', 10), /keeps no expiry/);
  await rejects(r.multi().set('m', '1').exec(), /^EXECABORT Transaction discarded: MULTI is not supported/);
  assert.is(await r.get('m'), null, 'nothing queued after MULTI ran');
  // The connection is still good.
  assert.is(await r.get('text'), 'abc');
});

test('scanStream walks every key in order, with MATCH', async () => {
  const r = client();
  const keys = Array.from({ length: 120 }, (_, i) => `scan:${String(i).padStart(3, '0')}`);
  await r.mset(...keys.flatMap((k) => [k, 'v']));
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = r.scanStream({ match: 'scan:*', count: 25 });
    s.on('data', (batch: string[]) => seen.push(...batch));
    s.on('end', resolve);
    s.on('error', reject);
  });
  assert.equal(seen, keys);
});

test('CLIENT READMODE: every mode this cluster serves reads the value written', async () => {
  const r = client();
  await r.set('rm', 'value');
  for (const mode of ['lease', 'follower', 'stale', 'log', 'index']) {
    assert.is(await r.call('CLIENT', 'READMODE', mode), 'OK', mode);
    // Follower and stale reads may lag a moment behind the write.
    await eventually(async () => ((await r.get('rm')) === 'value' ? true : undefined), `a ${mode} read of rm`);
    assert.equal(await r.mget('rm'), ['value']);
  }
});

test('INFO over ioredis carries the cluster: leader, term, commit index', async () => {
  const r = client();
  const info = await r.info();
  const leader = cluster.leader();
  assert.ok(info.includes(`leader:${leader}`), info);
  assert.match(info, /commit_index:\d+/);
  assert.match(info, /role:master/);
});

test.run();
