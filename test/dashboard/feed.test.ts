// The feed's own logic on a scripted backend: runs only while watched (no write-latency observer,
// no timer otherwise), per-second throughput and latency, the timeline's words and its dedupe.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import { DashboardFeed, timelineItem, type FeedUpdate } from '../../apps/dashboard/feed.ts';
import type { ClusterEvent, ClusterStatus } from '../../apps/http/backend.ts';
import type { LiveNode, LiveSource, TrafficCount } from '../../apps/dashboard/source.ts';

function node(id: number, commit: number): LiveNode {
  return { id, up: true, role: id === 1 ? 'leader' : 'follower', term: 2, epoch: '2', vote: 1, leader: 1, firstIndex: 1, appliedIndex: commit, commitIndex: commit, lastIndex: commit, snapshotIndex: 0, progress: [] };
}

class Scripted implements LiveSource {
  readonly protocol = 'raft';
  commit = 10;
  observer: ((ms: number) => void) | null = null;
  traffic: TrafficCount[] = [];
  readonly events$ = new Subject<ClusterEvent>();
  status(): ClusterStatus {
    return { leader: 1, term: 2, nodes: [1, 2, 3].map((id) => ({ id, role: id === 1 ? 'leader' : 'follower', term: 2, commitIndex: this.commit, lastIndex: this.commit, up: true })) } as ClusterStatus;
  }
  events() {
    return this.events$.asObservable();
  }
  live(): LiveNode[] {
    return [1, 2, 3].map((id) => node(id, this.commit));
  }
  takeTraffic(): TrafficCount[] {
    const t = this.traffic;
    this.traffic = [];
    return t;
  }
  observeWriteLatency(o: ((ms: number) => void) | null): void {
    this.observer = o;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('costs nothing unwatched; per-second commits and latency percentiles while watched', async () => {
  const b = new Scripted();
  const feed = new DashboardFeed(b, b, b.protocol, { intervalMs: 20 });
  await sleep(50);
  assert.is(b.observer, null, 'no latency observer before anyone watches');
  const got: FeedUpdate[] = [];
  const { hello, stop } = feed.subscribe((u) => got.push(u));
  assert.is(hello.protocol, 'raft');
  assert.ok(b.observer !== null);
  b.traffic = [{ from: 1, to: 2, type: 'app', count: 7 }];
  for (let i = 1; i <= 100; i++) b.observer!(i); // latencies 1..100 ms
  b.commit = 110;
  await eventually(() => got.some((u) => u.seconds.length > 0), 2_000);
  const s = got.flatMap((u) => u.seconds)[0]!;
  assert.is(s.commits, 100);
  assert.is(s.writes, 100);
  assert.is(s.p50Ms, 51);
  assert.is(s.p99Ms, 100);
  assert.equal(got.flatMap((u) => u.traffic), [{ from: 1, to: 2, type: 'app', count: 7 }]);
  assert.ok(got.every((u) => u.nodes.length === 3));
  stop();
  assert.is(b.observer, null, 'the observer goes with the last watcher');
  const n = got.length;
  await sleep(80);
  assert.is(got.length, n, 'no updates after the last watcher left');
  feed.close();
});

test('the timeline is kept from the start, in words, one item per configuration change', async () => {
  const b = new Scripted();
  const feed = new DashboardFeed(b, b, b.protocol, { intervalMs: 20 });
  const at = Date.now();
  b.events$.next({ type: 'role', node: 2, role: 'leader', term: 3, leader: 2, at });
  b.events$.next({ type: 'crashed', id: 1, reason: 'injected', at });
  for (const n of [1, 2, 3]) b.events$.next({ type: 'membership', node: n, voters: [1, 2, 3, 4], learners: [], at });
  b.events$.next({ type: 'metrics', links: [], at });
  const { hello, stop } = feed.subscribe(() => {});
  assert.equal(hello.timeline.map((t) => [t.kind, t.node, t.text]), [
    ['election', 2, 'node 2 leads in term 3'],
    ['crash', 1, 'node 1 crashed'],
    ['membership', null, 'configuration: voters 1,2,3,4'],
  ]);
  stop();
  feed.close();
});

test('timeline items for faults and partitions; other events are not shown', () => {
  assert.equal(timelineItem({ type: 'partitioned', groups: [[1, 2], [3]], at: 5 }, 1_000), { at: 1_000, kind: 'partition', node: null, text: 'partition: 1,2 | 3' });
  assert.equal(timelineItem({ type: 'healed', at: 6 }, 2_000), { at: 2_000, kind: 'heal', node: null, text: 'network healed' });
  assert.is(timelineItem({ type: 'role', node: 3, role: 'follower', term: 4, at: 1 }), null);
  assert.is(timelineItem({ type: 'dropped-frame', at: 1 }), null);
  assert.equal(timelineItem({ type: 'role', node: 3, role: 'preCandidate', term: 4, at: 1 })?.kind, 'campaign');
});

test('a busy cluster with nothing new in shape is sent about once a quiet period; a change of shape or sparse messages at once', async () => {
  const b = new Scripted();
  const feed = new DashboardFeed(b, b, b.protocol, { intervalMs: 20, quietMs: 400, streamPerSecMin: 50 });
  const got: Array<{ at: number; u: FeedUpdate }> = [];
  const { stop } = feed.subscribe((u) => got.push({ at: Date.now(), u }));
  const busy = setInterval(() => {
    b.commit += 100;
    b.traffic.push({ from: 1, to: 2, type: 'app', count: 50 }, { from: 2, to: 1, type: 'appResp', count: 50 });
  }, 10);
  try {
    await sleep(1_300);
    const streaming = got.length;
    assert.ok(streaming >= 2 && streaming <= 5, `${streaming} updates in 1.3 s while only numbers moved`);
    const all = got.flatMap((g) => g.u.traffic).filter((t) => t.type === 'app').reduce((n, t) => n + t.count, 0);
    assert.ok(all > 1_000, `traffic of skipped samples is carried into the next update (${all})`);
    // A leader change is sent at the next sample.
    const before = got.length;
    const t0 = Date.now();
    b.events$.next({ type: 'role', node: 2, role: 'leader', term: 3, leader: 2, at: t0 });
    await eventually(() => got.length > before, 200);
    assert.ok(Date.now() - t0 < 150);
  } finally {
    clearInterval(busy);
  }
  // Sparse messages (a few heartbeats) are animated: sent at every sample.
  await sleep(450);
  const n = got.length;
  const sparse = setInterval(() => b.traffic.push({ from: 1, to: 3, type: 'heartbeat', count: 1 }), 20);
  await sleep(400);
  clearInterval(sparse);
  assert.ok(got.length - n >= 5, `${got.length - n} updates in 400 ms with sparse messages (quiet: about 1)`);
  stop();
  feed.close();
});

async function eventually(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

test.run();
