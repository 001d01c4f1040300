// `concur bench kv`: PUTs through the HTTP API of a live cluster from N concurrent keep-alive
// clients (closed loop), reporting puts/s and latency percentiles. The load runs on a piscina
// pool, off the thread that serves HTTP; every answer is checked and errors are not throughput.
import { Cluster, type ClusterOptions } from '../apps/cluster/cluster.ts';
import { startHttpApi } from '../apps/http/server.ts';
import { createPool } from '../runtime/pool.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';
import type { KvLoadResult, KvLoadTask } from './kv-load.ts';

export interface KvBenchOptions {
  nodes: number;
  clients: number;
  durationSec: number;
  valueBytes: number;
  storage: ClusterOptions['storage'];
  fsync: ClusterOptions['fsync'];
  keys: number;
  loadThreads: number;
}

export interface KvBenchResult extends LatencySummary {
  nodes: number;
  clients: number;
  storage: string;
  fsync: string;
  valueBytes: number;
  putsPerSec: number;
  errors: number;
  errorStatuses: Record<string, number>;
}

export async function benchKv(o: KvBenchOptions, onProgress?: (elapsedSec: number) => void): Promise<KvBenchResult> {
  const cluster = await Cluster.start({ nodes: o.nodes, storage: o.storage, fsync: o.fsync, metricsIntervalMs: 0 });
  const api = await startHttpApi(cluster, { port: 0, inflightRequestsMax: Math.max(1024, o.clients * 2) });
  const threads = Math.max(1, Math.min(o.loadThreads, o.clients));
  const pool = createPool(new URL('./kv-load.ts', import.meta.url), threads);
  try {
    const leaderDeadline = Date.now() + 10_000;
    while (cluster.leader() === null) {
      if (Date.now() > leaderDeadline) throw new Error('no leader within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const started = performance.now();
    const progress = setInterval(() => onProgress?.((performance.now() - started) / 1000), 500);
    const tasks: Promise<KvLoadResult>[] = [];
    for (let t = 0; t < threads; t++) {
      const clients = Math.floor(o.clients / threads) + (t < o.clients % threads ? 1 : 0);
      const task: KvLoadTask = { port: api.port, clients, durationMs: o.durationSec * 1000, valueBytes: o.valueBytes, keys: o.keys, offset: t * 1_000_003 };
      tasks.push(pool.run(task));
    }
    const results = await Promise.all(tasks);
    clearInterval(progress);
    const latency = new LatencyRecorder();
    const errorStatuses: Record<string, number> = {};
    let ok = 0;
    let errors = 0;
    for (const r of results) {
      ok += r.ok;
      errors += r.errors;
      latency.addEncoded(r.histogram);
      for (const [s, n] of Object.entries(r.statuses)) errorStatuses[s] = (errorStatuses[s] ?? 0) + n;
    }
    const seconds = Math.max(...results.map((r) => r.seconds));
    return { nodes: o.nodes, clients: o.clients, storage: o.storage, fsync: o.fsync, valueBytes: o.valueBytes, putsPerSec: Math.round(ok / seconds), errors, errorStatuses, ...latency.summary() };
  } finally {
    await pool.destroy();
    await api.close();
    await cluster.stop();
  }
}
