// Every fault from the outside, on a real 3-node cluster through the HTTP API: pause/resume,
// isolate, one-way cuts, link faults and heal as GET /cluster reports them; errors that name
// what is wrong (nodes down, paused, a partition); and the public shape of /events.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { eventually } from '../support/cluster.ts';
import { json, post } from './harness.ts';

let cluster: Cluster;
let api: HttpApi;

type Node = { id: number; status: string; role: string; up: boolean; term: number; appliedIndex: number; last?: { role: string; term: number } };
type Status = { leader: number | null; nodes: Node[]; network: { partition: number[][] | null; cuts: { from: number; to: number }[]; faults: Record<string, unknown>[] } };

const status = async (): Promise<Status> => (await json(`${api.url}/cluster`)).body as unknown as Status;
const node = (st: Status, id: number): Node => st.nodes.find((n) => n.id === id)!;
const leader = () => eventually(async () => (await status()).leader ?? undefined, 'a leader', 15_000);

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, storage: 'wal', metricsIntervalMs: 200 });
  // Long enough for a restart (a worker and its WAL) on a loaded machine; no-quorum answers wait for it.
  api = await startHttpApi(cluster, { port: 0, requestDeadlineMs: 4_000 });
  await leader();
});

test.after(async () => {
  await api.close();
  await cluster.stop();
});

test('isolate, one-way cut, link faults for all or per link, clearing faults and heal, as GET /cluster shows them', async () => {
  let r = await post(`${api.url}/cluster/nodes/3/isolate`, '');
  assert.is(r.status, 200);
  assert.equal(r.body.network, { partition: [[1, 2], [3]], cuts: [], faults: [] });
  assert.equal((await status()).network.partition, [[1, 2], [3]]);
  assert.is((await post(`${api.url}/cluster/heal`, '')).status, 200);
  assert.equal((await status()).network, { partition: null, cuts: [], faults: [] });

  r = await post(`${api.url}/cluster/cut`, { from: [1], to: [2, 3] });
  assert.is(r.status, 200);
  assert.equal(r.body.network, { partition: null, cuts: [{ from: 1, to: 2 }, { from: 1, to: 3 }], faults: [] });

  r = await post(`${api.url}/cluster/faults`, { loss: 0.01, delayMs: 2 });
  assert.is(r.status, 200);
  const all = { from: '*', to: '*', loss: 0.01, delayMs: 2, jitterMs: 0, duplicate: 0, reorder: 0 };
  assert.equal((r.body.network as Status['network']).faults, [all], 'one line when every link is alike');
  r = await post(`${api.url}/cluster/faults`, { jitterMs: 3, reorder: 0.05, from: [2], to: [3] });
  const faults = (r.body.network as Status['network']).faults;
  assert.is(faults.length, 6, 'each faulty link once links differ');
  assert.equal(faults.find((f) => f.from === 2 && f.to === 3), { from: 2, to: 3, loss: 0.01, delayMs: 2, jitterMs: 3, duplicate: 0, reorder: 0.05 });
  assert.equal(faults.find((f) => f.from === 3 && f.to === 2), { from: 3, to: 2, loss: 0.01, delayMs: 2, jitterMs: 0, duplicate: 0, reorder: 0 });

  r = await json(`${api.url}/cluster/faults`, { method: 'DELETE' });
  assert.is(r.status, 200);
  assert.equal(r.body.network, { partition: null, cuts: [{ from: 1, to: 2 }, { from: 1, to: 3 }], faults: [] }, 'DELETE clears link faults only');
  await post(`${api.url}/cluster/faults`, { duplicate: 0.5 });
  assert.is((await post(`${api.url}/cluster/heal`, '')).status, 200);
  assert.equal((await status()).network, { partition: null, cuts: [], faults: [] }, 'heal: the network is whole again');
  assert.is((await json(`${api.url}/kv/after-heal`, { method: 'PUT', body: 'ok' })).status, 200);

  // Bad bodies say what is wrong.
  for (const [path, body, message] of [
    ['/cluster/cut', { from: [1], to: [9] }, /"to" names node 9, and there is no node 9/],
    ['/cluster/cut', { from: [], to: [2] }, /"from" must be a non-empty array of node ids/],
    ['/cluster/cut', { from: [2], to: [2] }, /a node has no link to itself/],
    ['/cluster/cut', { from: [1], to: [2], both: true }, /unknown field "both"; the fields are from, to/],
    ['/cluster/faults', { loss: 2 }, /"loss" is a probability from 0 to 1, got "2"/],
    ['/cluster/faults', { delayMs: -1 }, /"delayMs" is milliseconds from 0 to 60000/],
    ['/cluster/faults', { from: [1] }, /name at least one of loss, delayMs, jitterMs, duplicate, reorder/],
    ['/cluster/faults', { latency: 5 }, /unknown field "latency"/],
    ['/cluster/faults', [1], /expected a JSON object/],
  ] as const) {
    const bad = await post(`${api.url}${path}`, body);
    assert.is(bad.status, 400, JSON.stringify(body));
    assert.is(bad.body.code, 'bad-body');
    assert.match(String(bad.body.error), message);
  }
  assert.is((await post(`${api.url}/cluster/nodes/7/isolate`, '')).status, 404);
});

test('pause and resume a follower and the leader: status says paused (last state under last), a new leader takes over, the old one rejoins', async () => {
  const first = await leader();
  const follower = [1, 2, 3].find((id) => id !== first)!;
  let r = await post(`${api.url}/cluster/nodes/${follower}/pause`, '');
  assert.equal(r.body, { ok: true, node: follower, action: 'pause' });
  let st = await status();
  assert.equal({ status: node(st, follower).status, role: node(st, follower).role, up: node(st, follower).up, last: node(st, follower).last?.role }, { status: 'paused', role: 'paused', up: false, last: 'follower' });
  assert.is(cluster.supervisor.status(follower).status, 'paused');
  r = await post(`${api.url}/cluster/nodes/${follower}/pause`, '');
  assert.is(r.status, 409);
  assert.match(String(r.body.error), /already paused; resume it with POST \/cluster\/nodes\/\d\/resume/);
  assert.is((await post(`${api.url}/cluster/nodes/${follower}/restart`, '')).status, 409);
  // Two of three still commit.
  const put = await json(`${api.url}/kv/while-paused`, { method: 'PUT', body: 'yes' });
  assert.is(put.status, 200);
  const index = Number(put.body.index);
  const stale = await json(`${api.url}/kv/while-paused?read=stale&node=${follower}`);
  assert.is(stale.status, 503);
  assert.is(stale.body.code, 'node-paused');
  assert.match(String(stale.body.error), new RegExp(`node ${follower} is paused; resume it`));
  r = await post(`${api.url}/cluster/nodes/${follower}/resume`, '');
  assert.equal(r.body, { ok: true, node: follower, action: 'resume' });
  assert.is((await post(`${api.url}/cluster/nodes/${follower}/resume`, '')).status, 409);
  await eventually(async () => ((node(await status(), follower).appliedIndex ?? 0) >= index ? true : undefined), 'the resumed follower catches up', 10_000);

  // The leader: frozen, it cannot lead; the others elect one, and /cluster shows one leader only.
  await post(`${api.url}/cluster/nodes/${first}/pause`, '');
  const second = await eventually(async () => {
    const s = await status();
    return s.leader !== null && s.leader !== first ? s.leader : undefined;
  }, 'a new leader while the old one is paused', 15_000);
  st = await status();
  assert.is(node(st, first).role, 'paused');
  assert.is(node(st, first).last?.role, 'leader', 'what it last was, under last');
  assert.is(st.nodes.filter((n) => n.role === 'leader').length, 1);
  assert.ok(node(st, second).term > node(st, first).last!.term);
  await post(`${api.url}/cluster/nodes/${first}/resume`, '');
  // On resume it catches up on the time that passed, hears the new term and follows.
  await eventually(async () => {
    const s = await status();
    return node(s, first).role === 'follower' && s.nodes.filter((n) => n.role === 'leader').length === 1 ? true : undefined;
  }, 'the old leader follows after resume', 15_000);

  // A paused node can be crashed (it dies frozen) and restarted.
  await post(`${api.url}/cluster/nodes/${follower}/pause`, '');
  r = await post(`${api.url}/cluster/nodes/${follower}/crash`, '');
  assert.is(r.status, 200);
  st = await status();
  assert.equal({ status: node(st, follower).status, role: node(st, follower).role }, { status: 'down', role: 'down' });
  assert.is((await post(`${api.url}/cluster/nodes/${follower}/pause`, '')).status, 409);
  assert.is((await post(`${api.url}/cluster/nodes/${follower}/restart`, '')).status, 200);
  assert.is(node(await status(), follower).status, 'up');
});

test('no quorum says why: which nodes are down or paused, or the partition; a named node that is down answers 503 node-down at once', async () => {
  const lead = await leader();
  const [a, b] = [1, 2, 3].filter((id) => id !== lead) as [number, number];
  // Crash the leader and one follower: the one left cannot elect anyone.
  await post(`${api.url}/cluster/nodes/${lead}/crash`, '');
  await post(`${api.url}/cluster/nodes/${a}/crash`, '');
  const down = [lead, a].sort((x, y) => x - y);
  const st = await status();
  assert.is(st.nodes.filter((n) => n.role === 'leader').length, 0, 'a crashed leader is not shown as leader');
  assert.equal({ status: node(st, lead).status, role: node(st, lead).role, last: node(st, lead).last?.role }, { status: 'down', role: 'down', last: 'leader' });

  let r = await json(`${api.url}/kv/k?read=follower&node=${b}`);
  assert.is(r.status, 503);
  assert.is(r.body.code, 'no-quorum');
  assert.match(String(r.body.error), new RegExp(`only 1 of the 3 voters run \\(nodes ${down[0]} and ${down[1]} are down\\)`));
  assert.not.match(String(r.body.error), /partition/);
  const t0 = Date.now();
  r = await json(`${api.url}/kv/k?read=stale&node=${lead}`);
  assert.is(r.status, 503);
  assert.is(r.body.code, 'node-down');
  assert.match(String(r.body.error), new RegExp(`node ${lead} is down; restart it with POST /cluster/nodes/${lead}/restart`));
  assert.ok(Date.now() - t0 < 1_000, `answered at once, not at the deadline (${Date.now() - t0} ms)`);
  r = await json(`${api.url}/kv/k`, { method: 'PUT', body: 'v' });
  assert.is(r.status, 503);
  assert.match(String(r.body.error), /are down\); a majority \(2\) is needed/);

  // One down, one paused: both named.
  await post(`${api.url}/cluster/nodes/${a}/restart`, '');
  await post(`${api.url}/cluster/nodes/${a}/pause`, '');
  r = await json(`${api.url}/kv/k?read=follower&node=${b}`);
  assert.is(r.status, 503);
  assert.match(String(r.body.error), new RegExp(`node ${lead} is down, node ${a} is paused`));
  await post(`${api.url}/cluster/nodes/${a}/resume`, '');
  await post(`${api.url}/cluster/nodes/${lead}/restart`, '');
  await leader();

  // Everyone up, but node b cut off: the message names the partition.
  await post(`${api.url}/cluster/partition`, { groups: [[b]] });
  r = await json(`${api.url}/kv/k?read=follower&node=${b}`);
  assert.is(r.status, 503);
  assert.is(r.body.code, 'no-quorum');
  assert.match(String(r.body.error), new RegExp(`node ${b} reaches only 1 of the 3 voters \\(a majority is 2\\): a partition or cut separates it from nodes`));
  await post(`${api.url}/cluster/heal`, '');
  await leader();
});

test('/events: one shape — the node under "node", a leader nobody knows as null, "at" on every event, metrics included', async () => {
  const abort = new AbortController();
  const res = await fetch(`${api.url}/events`, { signal: abort.signal });
  const reader = res.body!.getReader();
  let text = '';
  const events: Record<string, unknown>[] = [];
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString('utf8');
        let at: number;
        while ((at = text.indexOf('\n\n')) >= 0) {
          const frame = text.slice(0, at);
          text = text.slice(at + 2);
          if (frame.startsWith('data: ')) events.push(JSON.parse(frame.slice(6)) as Record<string, unknown>);
        }
      }
    } catch {
      // aborted
    }
  })();
  const lead = await leader();
  const other = [1, 2, 3].find((id) => id !== lead)!;
  await post(`${api.url}/cluster/nodes/${other}/pause`, '');
  await post(`${api.url}/cluster/nodes/${other}/resume`, '');
  await post(`${api.url}/cluster/nodes/${lead}/crash`, '');
  await post(`${api.url}/cluster/nodes/${lead}/restart`, '');
  await eventually(() => (events.some((e) => e.type === 'restarted') && events.some((e) => e.type === 'metrics') && events.some((e) => e.type === 'role') ? true : undefined), 'restarted, metrics and role events', 15_000);
  abort.abort();
  await pump;
  const of = (type: string) => events.filter((e) => e.type === type);
  assert.equal(Object.keys(of('paused')[0]!).slice(0, 3), ['type', 'node', 'at']);
  assert.is(of('paused')[0]!.node, other);
  assert.ok(Number(of('resumed')[0]!.pausedMs) >= 0);
  assert.is(of('crashed')[0]!.node, lead);
  assert.is(of('restarted')[0]!.node, lead);
  for (const e of events) {
    assert.not.ok('id' in e, `${String(e.type)} names its node "node", not "id"`);
    assert.type(e.at, 'number', `${String(e.type)} has at`);
    if (e.type === 'role') assert.ok(e.leader === null || (typeof e.leader === 'number' && e.leader > 0), `role leader is null or a node: ${JSON.stringify(e)}`);
  }
  const metrics = of('metrics')[0]!;
  assert.is(metrics.intervalMs, 200);
  assert.ok(Array.isArray(metrics.links) && (metrics.links as unknown[]).length > 0);
  assert.equal(Object.keys((metrics.links as Record<string, unknown>[])[0]!).sort(), ['bytes', 'bytesPerSec', 'capacityBytes', 'dropped', 'frames', 'framesPerSec', 'from', 'to', 'usedBytes', 'wakeups']);
  await leader();
});

test.run();
