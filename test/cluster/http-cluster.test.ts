import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';
import { httpCall } from '../support/http-call.ts';

let cluster: Cluster;
let api: HttpApi;

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, storage: 'wal' });
  api = await startHttpApi(cluster, { port: 0, valueBytesMax: 1024 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader');
});

test.after(async () => {
  await api.close();
  await cluster.stop();
});

const call = (method: string, path: string, body?: string | Buffer) => httpCall(`${api.url}${path}`, method, body);

test('KV over HTTP on a real cluster: put, get, cas, delete', async () => {
  const put = await call('PUT', '/kv/colour', 'blue');
  assert.is(put.status, 200);
  assert.ok(Number(put.json!.index) > 0);
  assert.equal((await call('GET', '/kv/colour')).text, 'blue');
  const casFail = await call('POST', '/kv/colour/cas', JSON.stringify({ expect: 'red', value: 'green' }));
  assert.is(casFail.status, 409);
  assert.is(casFail.json!.current, 'blue');
  assert.is((await call('POST', '/kv/colour/cas', JSON.stringify({ expect: 'blue', value: 'green' }))).status, 200);
  assert.is((await call('GET', '/kv/colour')).text, 'green');
  assert.is((await call('DELETE', '/kv/colour')).status, 200);
  assert.is((await call('GET', '/kv/colour')).status, 404);
});

test('a GET without ?read= is the index read: served by the leader, a follower only when named with read=stale', async () => {
  assert.is((await call('PUT', '/kv/default-read', 'v')).status, 200);
  // Retried only if the leader changed while the request was in flight.
  const { got, leader } = await eventually(async () => {
    const before = cluster.leader();
    const got = await call('GET', '/kv/default-read');
    return before !== null && cluster.leader() === before ? { got, leader: before } : undefined;
  }, 'a GET under one stable leader');
  assert.is(got.status, 200);
  assert.is(got.text, 'v');
  assert.is(got.headers.get('x-concur-node'), String(leader), 'the leader served the default read');
  assert.ok(Number(got.headers.get('x-concur-index')) > 0);
  // The header names whoever served: a stale read via a follower shows the follower.
  const follower = cluster.supervisor.ids.find((id) => id !== leader)!;
  const stale = await call('GET', `/kv/default-read?read=stale&node=${follower}`);
  assert.is(stale.headers.get('x-concur-node'), String(follower));
});

test('bad input on a real cluster gets the right status, code and message', async () => {
  const big = await call('PUT', '/kv/big', Buffer.alloc(2048));
  assert.is(big.status, 413);
  assert.is(big.json!.code, 'value-too-large');
  const badGroups = await call('POST', '/cluster/partition', JSON.stringify({ groups: [[1, 2], [2, 3]] }));
  assert.is(badGroups.status, 400);
  assert.match(String(badGroups.json!.error), /2/);
  assert.is((await call('POST', '/cluster/partition', '{not json')).status, 400);
  const unknown = await call('POST', '/cluster/nodes/9/crash');
  assert.is(unknown.status, 404);
  assert.is(unknown.json!.code, 'unknown-node');
  assert.is((await call('GET', '/kv/x?read=bogus')).status, 400);
});

test('faults through HTTP: crash, crash again (409), restart, partition and heal show in /cluster', async () => {
  const follower = cluster.supervisor.ids.find((id) => id !== cluster.leader())!;
  assert.is((await call('POST', `/cluster/nodes/${follower}/crash`)).status, 200);
  const again = await call('POST', `/cluster/nodes/${follower}/crash`);
  assert.is(again.status, 409);
  assert.match(String(again.json!.error), /already down/);
  const st = (await call('GET', '/cluster')).json as { nodes: { id: number; up: boolean }[] };
  assert.is(st.nodes.find((n) => n.id === follower)!.up, false);
  assert.is((await call('PUT', '/kv/while-down', 'ok')).status, 200, 'two of three still commit');
  assert.is((await call('POST', `/cluster/nodes/${follower}/restart`)).status, 200);
  await eventually(async () => {
    const s = (await call('GET', '/cluster')).json as { nodes: { id: number; up: boolean; commitIndex: number }[] };
    const n = s.nodes.find((x) => x.id === follower)!;
    const lead = s.nodes.find((x) => x.id === cluster.leader())!;
    return n.up && n.commitIndex === lead.commitIndex ? true : undefined;
  }, 'the restarted node caught up');
  assert.is((await call('POST', '/cluster/partition', JSON.stringify({ groups: [[1], [2, 3]] }))).status, 200);
  assert.is(cluster.supervisor.linkPolicy(1, 2).cut, true);
  assert.is((await call('POST', '/cluster/heal')).status, 200);
  assert.is(cluster.supervisor.linkPolicy(1, 2).cut, false);
});

test.run();
