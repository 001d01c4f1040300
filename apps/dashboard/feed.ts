// The dashboard's live feed: one aggregator per server, whatever the number of browsers. It
// samples the cluster every `intervalMs` (at most ~10 updates a second reach a browser however
// fast the cluster runs), keeps the last minutes of per-second throughput and write latency and
// a timeline of what happened, and hands each update to every subscriber. It runs only while
// someone watches: with no browser connected it costs the cluster nothing.
import type { Observable, Subscription } from 'rxjs';
import type { ClusterEvent, ClusterStatus } from '../http/backend.ts';
import type { LiveNode, LiveSource, TrafficCount } from './source.ts';

export interface FeedSettings {
  /** How often the cluster is sampled; an update is sent at a sample when something moved (below). */
  intervalMs: number;
  /** A sample with nothing new in shape and no sparse messages to animate waits up to this long. */
  quietMs: number;
  /** Links busier than this (messages a second, both ways) are drawn as streams, not as dots. */
  streamPerSecMin: number;
  /** Per-second samples kept (and sent to a browser that connects). */
  secondsKept: number;
  timelineKept: number;
}

export const feedDefaults: FeedSettings = { intervalMs: 200, quietMs: 1_000, streamPerSecMin: 50, secondsKept: 300, timelineKept: 200 };

export interface SecondSample {
  /** Unix ms at the end of the second. */
  at: number;
  /** Entries committed by the leader in that second. */
  commits: number;
  /** Writes answered in that second, and their latency percentiles (ms; null when none). */
  writes: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface TimelineItem {
  at: number;
  kind: 'election' | 'campaign' | 'crash' | 'restart' | 'partition' | 'heal' | 'faults' | 'membership' | 'snapshot' | 'pause';
  node: number | null;
  text: string;
}

export interface FeedUpdate {
  at: number;
  status: ClusterStatus;
  nodes: LiveNode[];
  /** Messages sent since the previous update. */
  traffic: TrafficCount[];
  /** Milliseconds the traffic counts cover. */
  trafficMs: number;
  /** New per-second samples and timeline items since the previous update. */
  seconds: SecondSample[];
  timeline: TimelineItem[];
}

/** The first message a subscriber gets: the history so far. */
export interface FeedHello {
  protocol: string;
  /** The feed's streamPerSecMin: the page draws links above it as streams. */
  streamPerSecMin: number;
  seconds: SecondSample[];
  timeline: TimelineItem[];
}

export interface FeedBackend {
  status(): ClusterStatus;
  events(): Observable<ClusterEvent>;
}

export class DashboardFeed {
  private readonly subscribers = new Set<(u: FeedUpdate) => void>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private events: Subscription | null = null;
  private readonly seconds: SecondSample[] = [];
  private readonly timeline: TimelineItem[] = [];
  private pendingSeconds: SecondSample[] = [];
  private pendingTimeline: TimelineItem[] = [];
  private latencies: number[] = [];
  private lastTickAt = 0;
  private secondStartedAt = 0;
  private secondStartCommit = 0;
  /** Traffic counted at samples not sent, and the shape last sent. */
  private unsentTraffic: TrafficCount[] = [];
  private sentShape = '';
  private readonly settings: FeedSettings;

  constructor(
    private readonly backend: FeedBackend,
    private readonly source: LiveSource | null,
    readonly protocol: string,
    settings: Partial<FeedSettings> = {},
  ) {
    this.settings = { ...feedDefaults, ...settings };
    // The timeline is kept from the first view on (events are rare), so a page opened later shows what happened since.
    this.events = this.backend.events().subscribe((e) => this.onEvent(e));
  }

  /** Subscribes; returns the history to send first and a function that unsubscribes. */
  subscribe(onUpdate: (u: FeedUpdate) => void): { hello: FeedHello; stop: () => void } {
    this.subscribers.add(onUpdate);
    if (this.timer === null) this.start();
    const hello: FeedHello = { protocol: this.protocol, streamPerSecMin: this.settings.streamPerSecMin, seconds: [...this.seconds], timeline: [...this.timeline] };
    return {
      hello,
      stop: () => {
        this.subscribers.delete(onUpdate);
        if (this.subscribers.size === 0) this.stop();
      },
    };
  }

  get watchers(): number {
    return this.subscribers.size;
  }

  close(): void {
    this.subscribers.clear();
    this.stop();
    this.events?.unsubscribe();
    this.events = null;
  }

  private start(): void {
    const now = Date.now();
    this.lastTickAt = now;
    this.secondStartedAt = now;
    this.secondStartCommit = leaderCommit(this.backend.status(), this.source?.live() ?? []);
    this.source?.takeTraffic(); // what was counted while nobody watched is not "since the last update"
    this.source?.observeWriteLatency((ms) => {
      // Bounded: a second of a very busy cluster keeps a uniform-enough prefix for percentiles.
      if (this.latencies.length < 65_536) this.latencies.push(ms);
    });
    this.timer = setInterval(() => this.tick(), this.settings.intervalMs);
    this.timer.unref?.();
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.source?.observeWriteLatency(null);
    this.latencies = [];
  }

  /**
   * Sends an update when the picture's shape changed (roles, terms, votes, the network), when
   * sparse messages are to be animated, or once `quietMs` passed: a loaded cluster whose links
   * all stream is sent about once a second, which is most of what a watching browser costs it.
   */
  private tick(): void {
    const now = Date.now();
    const status = this.backend.status();
    const nodes = this.source?.live() ?? [];
    const commit = leaderCommit(status, nodes);
    if (now - this.secondStartedAt >= 1_000) this.closeSecond(now, commit);
    const traffic = mergeTraffic(this.unsentTraffic, this.source?.takeTraffic() ?? []);
    const shape = shapeOf(status, nodes);
    const quiet = shape === this.sentShape && this.pendingTimeline.length === 0 && this.pendingSeconds.length === 0 && !hasSparse(traffic, now - this.lastTickAt, this.settings.streamPerSecMin);
    if (quiet && now - this.lastTickAt < this.settings.quietMs) {
      this.unsentTraffic = traffic;
      return;
    }
    this.unsentTraffic = [];
    this.sentShape = shape;
    const update: FeedUpdate = {
      at: now,
      status,
      nodes,
      traffic,
      trafficMs: now - this.lastTickAt,
      seconds: this.pendingSeconds,
      timeline: this.pendingTimeline,
    };
    this.lastTickAt = now;
    this.pendingSeconds = [];
    this.pendingTimeline = [];
    for (const s of this.subscribers) s(update);
  }

  private closeSecond(now: number, commit: number): void {
    const lat = this.latencies.sort((a, b) => a - b);
    const pick = (q: number) => (lat.length === 0 ? null : round2(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!));
    const sample: SecondSample = { at: now, commits: Math.max(0, commit - this.secondStartCommit), writes: lat.length, p50Ms: pick(0.5), p99Ms: pick(0.99) };
    this.latencies = [];
    this.secondStartedAt = now;
    this.secondStartCommit = commit;
    push(this.seconds, sample, this.settings.secondsKept);
    this.pendingSeconds.push(sample);
  }

  private onEvent(e: ClusterEvent): void {
    const item = timelineItem(e);
    if (item === null) return;
    // Every node reports the same configuration change: keep one.
    const last = this.timeline[this.timeline.length - 1];
    if (last !== undefined && last.kind === item.kind && last.text === item.text && item.at - last.at < 2_000) return;
    push(this.timeline, item, this.settings.timelineKept);
    this.pendingTimeline.push(item);
  }
}

function mergeTraffic(a: TrafficCount[], b: TrafficCount[]): TrafficCount[] {
  if (a.length === 0) return b;
  const byKey = new Map<string, TrafficCount>();
  for (const t of [...a, ...b]) {
    const key = `${t.from}>${t.to}:${t.type}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, { ...t });
    else seen.count += t.count;
  }
  return [...byKey.values()];
}

/** Whether some link (both ways together) carried messages, but fewer than a stream's. */
function hasSparse(traffic: TrafficCount[], ms: number, streamPerSecMin: number): boolean {
  const perLink = new Map<string, number>();
  for (const t of traffic) {
    const key = t.from < t.to ? `${t.from}-${t.to}` : `${t.to}-${t.from}`;
    perLink.set(key, (perLink.get(key) ?? 0) + t.count);
  }
  for (const n of perLink.values()) if (n > 0 && n / (Math.max(ms, 1) / 1000) < streamPerSecMin) return true;
  return false;
}

/** What changes the picture, as opposed to numbers that move. */
function shapeOf(status: ClusterStatus, nodes: LiveNode[]): string {
  const roles = status.nodes.map((n) => `${n.id}:${n.role}:${n.term}:${(n as { status?: string }).status ?? ''}`).join(',');
  const votes = nodes.map((n) => `${n.id}:${n.vote}`).join(',');
  return `${status.leader}|${roles}|${votes}|${JSON.stringify((status as { network?: unknown }).network ?? null)}`;
}

function push<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The commit index of the leader if one is known, else the highest any live node reports. */
function leaderCommit(status: ClusterStatus, nodes: LiveNode[]): number {
  const leader = nodes.find((n) => n.up && n.id === status.leader);
  if (leader !== undefined) return leader.commitIndex;
  let best = 0;
  for (const n of status.nodes) best = Math.max(best, n.commitIndex);
  return best;
}

const groupsText = (groups: unknown): string => (Array.isArray(groups) ? groups.map((g) => (Array.isArray(g) ? g.join(',') : String(g))).join(' | ') : '');

/** What of the event stream the timeline shows, in words. */
export function timelineItem(e: ClusterEvent, at = Date.now()): TimelineItem | null {
  // Events carry `at` in ms since the cluster started; the page shows wall-clock time, and an
  // event reaches this subscriber as it is emitted, so the time of receipt is its time.
  const nodeField = e.node ?? e.id;
  const node = typeof nodeField === 'number' ? nodeField : null;
  const who = node === null ? 'a node' : `node ${node}`;
  switch (e.type) {
    case 'role':
      if (e.role === 'leader') return { at, kind: 'election', node, text: `${who} leads in term ${String(e.term)}` };
      if (e.role === 'candidate' || e.role === 'preCandidate') return { at, kind: 'campaign', node, text: `${who} campaigns (term ${String(e.term)})` };
      return null;
    case 'crashed':
      return { at, kind: 'crash', node, text: `${who} crashed${e.reason === 'injected' ? '' : ` (${String(e.reason)})`}` };
    case 'restarted':
      return { at, kind: 'restart', node, text: `${who} restarted` };
    case 'paused':
      return { at, kind: 'pause', node, text: `${who} paused` };
    case 'resumed':
      return { at, kind: 'pause', node, text: `${who} resumed` };
    case 'partitioned':
      return { at, kind: 'partition', node: null, text: `partition: ${groupsText(e.groups)}` };
    case 'link-cut':
      return { at, kind: 'partition', node: null, text: `links cut: ${groupsText([e.from])} → ${groupsText([e.to])}` };
    case 'healed':
      return { at, kind: 'heal', node: null, text: 'network healed' };
    case 'faults-changed':
      return { at, kind: 'faults', node: null, text: `link faults: ${Object.entries((e.policy as Record<string, unknown>) ?? {}).map(([k, v]) => `${k} ${String(v)}`).join(', ') || 'cleared'}` };
    case 'membership':
      return { at, kind: 'membership', node: null, text: `configuration: voters ${Array.isArray(e.voters) ? e.voters.join(',') : '?'}${Array.isArray(e.learners) && e.learners.length ? `, learners ${e.learners.join(',')}` : ''}` };
    case 'actor-added':
      return { at, kind: 'membership', node, text: `${who} added` };
    case 'actor-removed':
      return { at, kind: 'membership', node, text: `${who} removed` };
    case 'snapshot':
      return { at, kind: 'snapshot', node, text: `${who} took a snapshot at ${String(e.index)}` };
    case 'snapshot-installed':
      return { at, kind: 'snapshot', node, text: `${who} installed a snapshot at ${String(e.index)}` };
    default:
      return null;
  }
}
