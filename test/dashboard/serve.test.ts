// The dashboard's server side on a real in-process cluster: the page and its files (served from
// the package, nothing from the internet), errors in the API's JSON shape, and the live feed —
// what each node reports (vote, the leader's view of its followers, messages sent, write latency).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster, type ClusterProtocol } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import type { FeedHello, FeedUpdate } from '../../apps/dashboard/feed.ts';
import { eventually } from '../support/cluster.ts';

const fast = { electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 } as const;

async function withApi(protocol: ClusterProtocol, f: (url: string, c: Cluster, api: HttpApi) => Promise<void>, sseClientsMax = 64): Promise<void> {
  const c = await Cluster.start({ nodes: 3, protocol, storage: 'memory', ...fast });
  const api = await startHttpApi(c, { port: 0, sseClientsMax });
  try {
    await eventually(() => c.status().leader ?? undefined, 'a leader');
    await f(api.url, c, api);
  } finally {
    await api.close();
    await c.stop();
  }
}

/** Reads the feed's server-sent events until `until` says enough (or the deadline). */
async function readFeed(url: string, until: (updates: FeedUpdate[]) => boolean, timeoutMs = 10_000): Promise<{ hello: FeedHello; updates: FeedUpdate[] }> {
  const ac = new AbortController();
  const res = await fetch(`${url}/dashboard/feed`, { signal: ac.signal });
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let hello: FeedHello | null = null;
  const updates: FeedUpdate[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
        if (data === undefined) continue;
        if (frame.startsWith('event: hello')) hello = JSON.parse(data) as FeedHello;
        else updates.push(JSON.parse(data) as FeedUpdate);
      }
      if (hello !== null && until(updates)) return { hello, updates };
    }
    throw new Error(`the feed did not show what was expected within ${timeoutMs} ms (${updates.length} updates)`);
  } finally {
    ac.abort();
  }
}

test('the page, its script and the browser libraries are served from the package; errors are JSON', () =>
  withApi('raft', async (url) => {
    const page = await fetch(`${url}/`);
    assert.is(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.match(html, /<script type="importmap">/);
    assert.not.match(html, /https?:\/\//, 'the page refers to nothing outside the server');
    for (const [path, type] of [['/dashboard/app.js', /javascript/], ['/dashboard/scenarios.js', /javascript/], ['/dashboard/style.css', /css/], ['/dashboard/vendor/preact.js', /javascript/], ['/dashboard/vendor/hooks.js', /javascript/], ['/dashboard/vendor/htm.js', /javascript/], ['/dashboard/vendor/htm-preact.js', /javascript/], ['/dashboard/vendor/uplot.js', /javascript/], ['/dashboard/vendor/uplot.css', /css/]] as const) {
      const r = await fetch(`${url}${path}`);
      assert.is(r.status, 200, path);
      assert.match(r.headers.get('content-type') ?? '', type, path);
      assert.ok((await r.arrayBuffer()).byteLength > 100, `${path} has content`);
    }
    const head = await fetch(`${url}/`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.is(await head.text(), '');
    assert.is(head.headers.get('content-length'), String(Buffer.byteLength(html)));

    const missing = await fetch(`${url}/dashboard/nothing.js`);
    assert.is(missing.status, 404);
    assert.equal(await missing.json(), { error: 'no such dashboard file: /dashboard/nothing.js', code: 'not-found' });
    const post = await fetch(`${url}/`, { method: 'POST', body: 'x' });
    assert.is(post.status, 405);
    assert.is(post.headers.get('allow'), 'GET, HEAD');
    assert.is(((await post.json()) as { code: string }).code, 'method-not-allowed');
  }));

test('the feed: nodes with votes, the leader\'s view of its followers, appends flowing, write latency per second', () =>
  withApi('raft', async (url) => {
    // Writes during the feed, so there are appends to see and latencies to count.
    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) await fetch(`${url}/kv/k${i++ % 10}`, { method: 'PUT', body: 'v' }).then((r) => r.arrayBuffer());
    })();
    try {
      const { hello, updates } = await readFeed(url, (us) => us.some((u) => u.seconds.some((s) => s.writes > 0)) && us.some((u) => u.traffic.some((t) => t.type === 'app')));
      assert.is(hello.protocol, 'raft');
      const last = updates[updates.length - 1]!;
      assert.is(last.nodes.length, 3);
      // The leader of the last update (on a loaded machine, fast timeouts may have moved it).
      const l = last.nodes.find((n) => n.role === 'leader')!;
      const leader = l.id;
      assert.is(last.status.leader, leader);
      assert.is(l.vote, leader, 'a leader voted for itself in its term');
      assert.equal(l.progress.map((p) => p.id).sort(), [1, 2, 3]);
      for (const p of l.progress) {
        assert.ok(p.match <= l.lastIndex && p.next <= l.lastIndex + 1, `progress of ${p.id} within the leader's log`);
        assert.ok(['probe', 'replicate', 'snapshot'].includes(p.state));
      }
      for (const n of last.nodes) {
        assert.ok([0, 1, 2, 3].includes(n.vote), `node ${n.id}'s vote`);
        if (n.id !== leader) assert.equal(n.progress, [], 'only the leader reports progress');
      }
      const appends = updates.flatMap((u) => u.traffic).filter((t) => t.type === 'app');
      assert.ok(appends.length > 0 && appends.every((t) => t.from !== t.to && t.count > 0), 'appends flow between nodes');
      const leaders = new Set(updates.map((u) => u.status.leader));
      assert.ok(appends.every((t) => leaders.has(t.from)), 'only leaders send appends');
      const second = updates.flatMap((u) => u.seconds).find((s) => s.writes > 0)!;
      assert.ok(second.commits > 0);
      assert.ok(second.p50Ms !== null && second.p99Ms !== null && second.p50Ms <= second.p99Ms);
      // At most ~10 updates a second, however busy the cluster.
      const spanMs = last.at - updates[0]!.at;
      assert.ok(updates.length <= spanMs / 80 + 2, `${updates.length} updates in ${spanMs} ms`);
    } finally {
      writing = false;
      await writer;
    }
  }));

test('the feed on Multi-Paxos names its messages, and a crash shows in the timeline and as a down node', () =>
  withApi('multipaxos', async (url, c) => {
    const leader = c.status().leader!;
    const victim = [1, 2, 3].find((i) => i !== leader)!;
    // The timeline starts with the first view: crash once the page is watching.
    const crashed = (async () => {
      await eventually(() => (c.status().nodes.length === 3 ? true : undefined), 'nodes');
      await new Promise((r) => setTimeout(r, 300));
      await c.crash(victim);
    })();
    const { hello, updates } = await readFeed(url, (us) => us.some((u) => u.traffic.some((t) => t.type === 'heartbeat')) && us.some((u) => u.nodes.some((n) => n.id === victim && n.role === 'down')) && us.some((u) => u.timeline.some((t) => t.kind === 'crash')));
    await crashed;
    assert.is(hello.protocol, 'multipaxos');
    const timeline = updates.flatMap((u) => u.timeline);
    assert.ok(timeline.some((t) => t.kind === 'crash' && t.node === victim && t.text === `node ${victim} crashed`), JSON.stringify(timeline));
    const last = updates[updates.length - 1]!;
    const down = last.nodes.find((n) => n.id === victim)!;
    assert.is(down.up, false);
    assert.is(down.role, 'down');
  }));

test('watchers are bounded (the API\'s sseClientsMax): one more answers 503 until one leaves', () =>
  withApi(
    'raft',
    async (url) => {
      const open = [new AbortController(), new AbortController()];
      const streams = await Promise.all(open.map((ac) => fetch(`${url}/dashboard/feed`, { signal: ac.signal })));
      for (const r of streams) assert.is(r.status, 200);
      // Each subscribes when its answer starts; the third is refused.
      const third = await fetch(`${url}/dashboard/feed`);
      assert.is(third.status, 503);
      assert.is(((await third.json()) as { code: string }).code, 'too-many-watchers');
      open[0]!.abort();
      await eventually(async () => {
        const r = await fetch(`${url}/dashboard/feed`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
        if (r === null) return undefined;
        const ok = r.status === 200;
        await r.body?.cancel().catch(() => {});
        return ok ? true : undefined;
      }, 'a place once a watcher left');
      open[1]!.abort();
    },
    2,
  ));

test.run();
