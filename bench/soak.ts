// `concur bench soak`: a live cluster under full write load through the HTTP API for minutes,
// sampled once a second — process RSS, data directory size, log entries each node holds in
// memory, throughput and p99 — to show that memory and disk follow the live state, not the
// history. The load runs on a piscina pool; the samples, a summary and its goals are returned.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { Cluster, type ClusterOptions } from '../apps/cluster/cluster.ts';
import { startHttpApi } from '../apps/http/server.ts';
import { createPool } from '../runtime/pool.ts';
import type { SnapshotSettings } from '../apps/cluster/snapshot-keeper.ts';
import type { SoakLoadReport, SoakLoadTask } from './soak-load.ts';

export interface SoakOptions {
  nodes: number;
  durationSec: number;
  storage: ClusterOptions['storage'];
  fsync: ClusterOptions['fsync'];
  valueBytes: number;
  keys: number;
  clients: number;
  loadThreads: number;
  /** Snapshot settings (WAL): undefined keeps the defaults; entries 0 turns snapshots off. */
  snapshot?: Partial<SnapshotSettings>;
  /** Where the cluster keeps its files (null: a temporary directory). */
  dataDir: string | null;
}

export interface SoakSample {
  /** Seconds since the load started. */
  t: number;
  rssMb: number;
  diskMb: number;
  /** Log entries each node holds in memory (null: the node did not answer). */
  logEntries: (number | null)[];
  putsPerSec: number;
  p99Ms: number;
  errors: number;
}

export interface SoakWindow {
  fromSec: number;
  toSec: number;
  rssMb: number;
  diskMb: number;
  putsPerSec: number;
}

export interface SoakResult {
  options: Omit<SoakOptions, 'dataDir'>;
  samples: SoakSample[];
  /** The second minute (or the second fifth of a run under 5 minutes) and the last one: what the goals compare. */
  early: SoakWindow;
  late: SoakWindow;
  /** The largest deviation of a later window's mean from the early window's (0.1 = 10 %). */
  rssGrowth: number;
  diskGrowth: number;
  /** The late window's throughput over the early window's. */
  throughputRatio: number;
  /** Every later window's RSS and disk within 25 % of the early window's, the last window's throughput at least 80 % of it. */
  goals: { rss: boolean; disk: boolean; throughput: boolean };
  totalPuts: number;
  totalErrors: number;
  errorStatuses: Record<string, number>;
}

/** Bytes of every file under `dir`. */
export function dirBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      total += st.isDirectory() ? dirBytes(p) : st.size;
    } catch {
      // A file deleted between the listing and the stat (a segment compacted away).
    }
  }
  return total;
}

function p99(xs: number[]): number {
  if (xs.length === 0) return 0;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

/** The mean of each measure over samples with fromSec < t <= toSec. */
export function windowOf(samples: SoakSample[], fromSec: number, toSec: number): SoakWindow {
  const w = samples.filter((s) => s.t > fromSec && s.t <= toSec);
  const mean = (f: (s: SoakSample) => number) => (w.length === 0 ? 0 : w.reduce((a, s) => a + f(s), 0) / w.length);
  return { fromSec, toSec, rssMb: mean((s) => s.rssMb), diskMb: mean((s) => s.diskMb), putsPerSec: mean((s) => s.putsPerSec) };
}

/** The goal windows: minute 2 and the last minute (fifths of the run when it is under 5 minutes). */
export function goalWindows(durationSec: number): { step: number; early: [number, number]; late: [number, number] } {
  const step = durationSec >= 300 ? 60 : durationSec / 5;
  return { step, early: [step, 2 * step], late: [durationSec - step, durationSec] };
}

export async function benchSoak(o: SoakOptions, onSample?: (s: SoakSample) => void): Promise<SoakResult> {
  const cluster = await Cluster.start({
    nodes: o.nodes,
    storage: o.storage,
    fsync: o.fsync,
    dataDir: o.dataDir,
    metricsIntervalMs: 0,
    ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}),
  });
  const api = await startHttpApi(cluster, { port: 0, inflightRequestsMax: Math.max(1024, o.clients * 2), valueBytesMax: Math.max(1 << 20, o.valueBytes) });
  const threads = Math.max(1, Math.min(o.loadThreads, o.clients));
  const pool = createPool(new URL('./soak-load.ts', import.meta.url), threads);
  const samples: SoakSample[] = [];
  const errorStatuses: Record<string, number> = {};
  let sampler: ReturnType<typeof setInterval> | null = null;
  try {
    const leaderDeadline = Date.now() + 10_000;
    while (cluster.leader() === null) {
      if (Date.now() > leaderDeadline) throw new Error('no leader within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    let secondOk = 0;
    let secondErrors = 0;
    let secondLatencies: number[] = [];
    const tasks: Promise<{ ok: number; errors: number }>[] = [];
    for (let t = 0; t < threads; t++) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (r: SoakLoadReport) => {
        secondOk += r.ok;
        secondErrors += r.errors;
        for (const x of r.latenciesMs) secondLatencies.push(x);
        for (const [s, n] of Object.entries(r.statuses)) errorStatuses[s] = (errorStatuses[s] ?? 0) + n;
      });
      port1.unref();
      const clients = Math.floor(o.clients / threads) + (t < o.clients % threads ? 1 : 0);
      const task: SoakLoadTask = { port: api.port, clients, durationMs: o.durationSec * 1000, valueBytes: o.valueBytes, keys: o.keys, offset: t * 1_000_003, reports: port2 };
      tasks.push(pool.run(task, { transferList: [port2] }));
    }
    const started = performance.now();
    let lastAt = started;
    const sample = async (): Promise<void> => {
      const now = performance.now();
      const seconds = Math.max(0.001, (now - lastAt) / 1000);
      lastAt = now;
      const logEntries = await Promise.all(
        cluster.supervisor.ids.map((id) =>
          cluster.supervisor
            .call<{ logEntriesInMemory: number }>(id, 'status', [], 2_000)
            .then((s) => s.logEntriesInMemory)
            .catch(() => null),
        ),
      );
      const s: SoakSample = {
        t: Math.round((now - started) / 100) / 10,
        rssMb: Math.round(process.memoryUsage().rss / 1e5) / 10,
        diskMb: cluster.dataDir === null ? 0 : Math.round(dirBytes(cluster.dataDir) / 1e5) / 10,
        logEntries,
        putsPerSec: Math.round(secondOk / seconds),
        p99Ms: Math.round(p99(secondLatencies) * 10) / 10,
        errors: secondErrors,
      };
      secondOk = 0;
      secondErrors = 0;
      secondLatencies = [];
      samples.push(s);
      onSample?.(s);
    };
    let sampling = false;
    sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void sample().finally(() => (sampling = false));
    }, 1_000);
    const totals = await Promise.all(tasks);
    clearInterval(sampler);
    sampler = null;
    const w = goalWindows(o.durationSec);
    const early = windowOf(samples, ...w.early);
    const late = windowOf(samples, ...w.late);
    // Each later window (minute, or fifth of a short run) against the early one: a snapshot
    // interval is a sawtooth within a window; what must not happen is a trend across windows.
    const later: SoakWindow[] = [];
    for (let from = w.early[1]; from + w.step <= o.durationSec + 0.5; from += w.step) later.push(windowOf(samples, from, from + w.step));
    const deviation = (f: (x: SoakWindow) => number) => (f(early) <= 0 ? 0 : Math.max(0, ...later.map((x) => Math.abs(f(x) / f(early) - 1))));
    const rssGrowth = deviation((x) => x.rssMb);
    const diskGrowth = deviation((x) => x.diskMb);
    const throughputRatio = early.putsPerSec === 0 ? 0 : late.putsPerSec / early.putsPerSec;
    const { dataDir: _dir, ...options } = o;
    return {
      options,
      samples,
      early,
      late,
      rssGrowth,
      diskGrowth,
      throughputRatio,
      goals: { rss: rssGrowth <= 0.25, disk: diskGrowth <= 0.25, throughput: throughputRatio >= 0.8 },
      totalPuts: totals.reduce((a, t) => a + t.ok, 0),
      totalErrors: totals.reduce((a, t) => a + t.errors, 0),
      errorStatuses,
    };
  } finally {
    if (sampler !== null) clearInterval(sampler);
    await pool.destroy();
    await api.close();
    await cluster.stop();
  }
}
