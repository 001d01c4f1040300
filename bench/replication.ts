// `concur bench replication`: Raft and Multi-Paxos side by side on live clusters, measured the
// same way — KV puts from closed-loop clients through the cluster's client path (Cluster.submit,
// the path HTTP and chaos use), over a grid of batching × pipelining settings, then one client
// alone for the latency of a single value at low load. Cells are tagged with their protocol and
// a ratio per cell compares Multi-Paxos with Raft from the same run.
//
// Settings per cell: Raft `batchEntriesMax = batch` and `inflightMax = inflight` (appends in
// flight per follower); Multi-Paxos `batchMax = batch` (proposals per accept message) and
// `inflightMax = batch × inflight` (slots in flight), so both may have the same values in flight.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterProtocol } from '../apps/cluster/cluster.ts';
import { encodeCommand } from '../apps/kv/commands.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export interface ReplicationBenchOptions {
  protocols: ClusterProtocol[];
  batches: number[];
  inflights: number[];
  clients: number;
  durationSec: number;
  valueBytes: number;
  nodes: number;
}

export interface ReplicationCell extends LatencySummary {
  protocol: ClusterProtocol;
  batch: number;
  inflight: number;
  clients: number;
  opsPerSec: number;
  errors: number;
}

export interface ReplicationBenchResult {
  cells: ReplicationCell[];
  /** Multi-Paxos ops/s ÷ Raft ops/s per (batch, inflight), when both ran. */
  ratios: { batch: number; inflight: number; ratio: number }[];
  /** One client alone, per protocol (batch 1, inflight 1). */
  lowLoad: ReplicationCell[];
  bestRatio: number | null;
}

export const replicationQuick = { batches: [1, 64], inflights: [1, 16], durationSec: 2 };
export const replicationFull = { batches: [1, 16, 64], inflights: [1, 8, 32], durationSec: 4 };

export async function benchReplication(o: ReplicationBenchOptions, log: (line: string) => void = () => {}): Promise<ReplicationBenchResult> {
  const cells: ReplicationCell[] = [];
  for (const batch of o.batches) {
    for (const inflight of o.inflights) {
      for (const protocol of o.protocols) {
        const cell = await runCell(o, protocol, batch, inflight, o.clients);
        cells.push(cell);
        log(`  ${protocol.padEnd(10)} batch ${String(batch).padStart(3)} inflight ${String(inflight).padStart(3)}: ${Math.round(cell.opsPerSec).toLocaleString('en-US').padStart(8)} ops/s  p50 ${cell.p50Ms} ms  p99 ${cell.p99Ms} ms${cell.errors > 0 ? `  (${cell.errors} errors)` : ''}`);
      }
    }
  }
  const ratios: ReplicationBenchResult['ratios'] = [];
  for (const batch of o.batches) {
    for (const inflight of o.inflights) {
      const r = cells.find((c) => c.protocol === 'raft' && c.batch === batch && c.inflight === inflight);
      const p = cells.find((c) => c.protocol === 'multipaxos' && c.batch === batch && c.inflight === inflight);
      if (r !== undefined && p !== undefined && r.opsPerSec > 0) ratios.push({ batch, inflight, ratio: round3(p.opsPerSec / r.opsPerSec) });
    }
  }
  const best = (protocol: ClusterProtocol) => Math.max(0, ...cells.filter((c) => c.protocol === protocol).map((c) => c.opsPerSec));
  const bestRatio = o.protocols.includes('raft') && o.protocols.includes('multipaxos') && best('raft') > 0 ? round3(best('multipaxos') / best('raft')) : null;
  const lowLoad: ReplicationCell[] = [];
  for (const protocol of o.protocols) {
    const cell = await runCell(o, protocol, 1, 1, 1);
    lowLoad.push(cell);
    log(`  ${protocol.padEnd(10)} one client: p50 ${cell.p50Ms} ms  p99 ${cell.p99Ms} ms  (${Math.round(cell.opsPerSec)} ops/s)`);
  }
  if (bestRatio !== null) log(`  best cell: multipaxos ÷ raft = ${bestRatio}`);
  return { cells, ratios, lowLoad, bestRatio };
}

async function runCell(o: ReplicationBenchOptions, protocol: ClusterProtocol, batch: number, inflight: number, clients: number): Promise<ReplicationCell> {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-repl-'));
  const c = await Cluster.start({
    nodes: o.nodes,
    protocol,
    storage: 'wal',
    fsync: 'batch',
    dataDir,
    metricsIntervalMs: 0,
    raft: { batchEntriesMax: batch, inflightMax: inflight },
    paxos: { batchMax: batch, inflightMax: batch * inflight },
  });
  try {
    const deadline = Date.now() + 10_000;
    while (c.leader() === null) {
      if (Date.now() > deadline) throw new Error(`${protocol}: no leader within 10 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const latency = new LatencyRecorder();
    const value = new Uint8Array(o.valueBytes).fill(0x62);
    let ops = 0;
    let errors = 0;
    const endAt = performance.now() + o.durationSec * 1000;
    const client = async (k: number) => {
      let seq = 0;
      while (performance.now() < endAt) {
        const command = encodeCommand({ op: 'put', key: `r${k}-${seq % 64}`, value, clientId: `repl-${k}`, seq: ++seq });
        const t0 = performance.now();
        try {
          await c.submit(command, 5_000);
          latency.recordMs(performance.now() - t0);
          ops++;
        } catch {
          errors++;
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
    const secs = (performance.now() - t0) / 1000;
    return { protocol, batch, inflight, clients, opsPerSec: Math.round(ops / secs), errors, ...latency.summary() };
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
