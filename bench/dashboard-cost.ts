// `node --import tsx bench/dashboard-cost.ts`: what watching costs. `concur bench raft`'s best
// cell (3 nodes, batch 512, inflight 8, memory storage) measured in turns without and with the
// dashboard served for that cluster and open in a real browser (Debian's chromium, headless,
// 1280×800), in one run; prints ops/s per turn and the ratio of the means. Not part of `npm test`.
import { createServer, type Server } from 'node:http';
import { Command } from 'commander';
import { chromium } from 'playwright-core';
import { filter, map, type Observable, type Subscription } from 'rxjs';
import type { Supervisor } from '../runtime/supervisor.ts';
import { Role } from '../protocols/raft/index.ts';
import { intOption } from '../apps/cli/options.ts';
import type { ClusterEvent, ClusterStatus } from '../apps/http/backend.ts';
import type { StatusReport } from '../apps/cluster/protocol.ts';
import { createDashboard, ownsDashboardPath } from '../apps/dashboard/serve.ts';
import { liveNodeOf, TrafficCounter, type ReportView } from '../apps/dashboard/live-view.ts';
import type { LiveNode, LiveSource, TrafficCount } from '../apps/dashboard/source.ts';
import { measureCell, raftBenchDefaults, type BenchCluster, type RaftCell } from './raft.ts';

/** A bench cluster seen the way the dashboard sees a `concur start` cluster: from its nodes' status reports. */
class BenchLiveView implements LiveSource {
  readonly protocol = 'raft';
  private readonly views = new Map<number, ReportView>();
  private readonly traffic = new TrafficCounter('raft');
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly supervisor: Supervisor, voters: readonly number[]) {
    for (const id of voters) {
      this.views.set(id, { id, up: true, role: Role.follower, term: 0, leader: 0, commit: 0, lastIndex: 0, applied: 0, firstIndex: 1, snapshotIndex: 0, voters: [...voters], outgoing: [], learners: [], witnesses: [], membershipIndex: 0, vote: 0, progress: [], sent: [] });
    }
    this.subscriptions.push(
      supervisor.messages$.subscribe(({ from, message }) => {
        const m = message as StatusReport;
        const v = this.views.get(from);
        if (v === undefined || m.t !== 'status') return;
        const { t: _t, ...report } = m;
        Object.assign(v, report);
        this.traffic.add(from, m.sent);
      }),
    );
  }

  status(): ClusterStatus {
    const nodes = this.live();
    const leader = nodes.find((n) => n.role === 'leader')?.id ?? null;
    return {
      leader,
      term: Math.max(0, ...nodes.map((n) => n.term)),
      nodes: nodes.map((n) => ({ id: n.id, status: 'up', role: n.role, term: n.term, commitIndex: n.commitIndex, lastIndex: n.lastIndex, appliedIndex: n.appliedIndex, firstIndex: n.firstIndex, snapshotIndex: n.snapshotIndex, up: true, member: 'voter' })),
    } as ClusterStatus;
  }

  events(): Observable<ClusterEvent> {
    return this.supervisor.events$.pipe(
      filter((e) => e.type !== 'metrics'),
      map((e) => (e.type === 'actor' ? { ...e.event, type: e.event.type, node: e.id, at: e.at } : (e as unknown as ClusterEvent))),
    );
  }

  live(): LiveNode[] {
    return [...this.views.values()].map((v) => liveNodeOf(v, 'raft'));
  }

  takeTraffic(): TrafficCount[] {
    return this.traffic.take();
  }

  /** The bench's clients are actors that measure their own latency. */
  observeWriteLatency(): void {}

  close(): void {
    for (const s of this.subscriptions) s.unsubscribe();
  }
}

let watcher: 'browser' | 'feed' = 'browser';
const settleMs = 2_000;

/** Serves the dashboard of `c` and opens it in chromium (or reads its feed); returns what undoes both. */
async function watch(c: BenchCluster): Promise<() => Promise<void>> {
  const view = new BenchLiveView(c.supervisor, c.voters);
  const dashboard = createDashboard(view);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (ownsDashboardPath(path)) dashboard.serve(req, res, path);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let closeWatcher: () => Promise<void>;
  if (watcher === 'feed') {
    // The server's share alone: the feed read by a plain client, no browser.
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/dashboard/feed`, { signal: ac.signal });
    const reading = (async () => {
      try {
        for await (const _ of res.body!) {
          // read and drop
        }
      } catch {
        // aborted
      }
    })();
    closeWatcher = async () => {
      ac.abort();
      await reading;
    };
  } else {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('svg .node[data-role="leader"]', { timeout: 15_000 });
    // Measured once the browser has settled: its start and the page's first load are not watching.
    await page.waitForTimeout(settleMs);
    closeWatcher = () => browser.close();
  }
  return async () => {
    await closeWatcher();
    dashboard.close();
    view.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

const program = new Command('dashboard-cost')
  .description("concur bench raft's best cell without and with the dashboard open in a browser, in turns")
  .option('--rounds <n>', 'pairs of runs (without, with)', intOption(1, 20), 3)
  .option('--duration <s>', 'seconds measured per run', intOption(1, 120), 5)
  .option('--batch <n>', 'entries per AppendEntries', intOption(1, 65_536), 512)
  .option('--inflight <n>', 'AppendEntries in flight per follower', intOption(1, 1_024), 8)
  .option('--feed-only', "read the dashboard's feed with a plain client instead of a browser: the server's share of the cost");

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{ rounds: number; duration: number; batch: number; inflight: number; feedOnly?: boolean }>();
  if (opts.feedOnly === true) watcher = 'feed';
  const o = { ...raftBenchDefaults, durationMs: opts.duration * 1_000 };
  const runs: Array<{ watched: boolean; cell: RaftCell }> = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const watched of [false, true]) {
      const cell = await measureCell(o, 3, opts.batch, opts.inflight, 0, 0, 'raft', watched ? watch : undefined);
      runs.push({ watched, cell });
      process.stderr.write(`round ${r + 1} ${watched ? 'with the dashboard' : 'without       '}: ${cell.opsPerSec.toLocaleString('en-US')} ops/s, p99 ${cell.p99Ms} ms\n`);
    }
  }
  const mean = (w: boolean) => {
    const xs = runs.filter((x) => x.watched === w).map((x) => x.cell.opsPerSec);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const without = mean(false);
  const withDashboard = mean(true);
  const summary = { watcher, batch: opts.batch, inflight: opts.inflight, rounds: opts.rounds, withoutOpsPerSec: Math.round(without), withDashboardOpsPerSec: Math.round(withDashboard), ratio: Math.round((withDashboard / without) * 1000) / 1000, runs: runs.map((x) => ({ watched: x.watched, opsPerSec: x.cell.opsPerSec, p99Ms: x.cell.p99Ms })) };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
