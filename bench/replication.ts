// `concur bench replication`: Raft and Multi-Paxos side by side, measured exactly as `concur bench
// raft` measures Raft — the same closed-loop sweep over batching × pipelining on fresh 3-node
// worker clusters, loaded by client actors over the packed client protocol (apps/cluster/wire.ts:
// propose frames of up to 256 commands, one cumulative ack per client per batch), the count state
// machine, memory storage by default (as `concur bench raft`; `storage: 'wal'` for the WAL) —
// then one client with one proposal outstanding for the latency of a single value at low load:
// Basic Paxos (two round trips per value), Multi-Paxos (one) and Raft (one). Cells are tagged
// with their protocol; a ratio per cell and of the best cells compares Multi-Paxos with Raft from
// the same run. It measures and reports; it must never assert a performance figure.
//
// Settings per cell (bench/raft.ts paxosSettingsFor): Raft `batchEntriesMax = batch` entries per
// AppendEntries and `inflightMax = inflight` AppendEntries in flight per follower; Paxos
// `batchMax = batch` proposals per accept message and `inflightMax = batch × inflight` slots
// proposed and not yet chosen. Both may then hold the same number of values in flight, in the
// same number of full messages per follower: Raft's inflight counts messages, Paxos' counts slots.
import type { FsyncPolicy } from '../runtime/storage/index.ts';
import { snapshotSettingsDefault } from '../apps/cluster/snapshot-keeper.ts';
import { formatRate, measureCell, paxosSettingsFor, raftBenchDefaults, type BenchProtocol, type RaftBenchOptions, type RaftCell } from './raft.ts';

/** The protocols of the sweep; the low-load comparison adds Basic Paxos (`paxos`). */
export type ReplicationProtocol = 'raft' | 'multipaxos';

export interface ReplicationBenchOptions {
  protocols: ReplicationProtocol[];
  /** The protocols of the one-client comparison, in this order. */
  lowLoadProtocols: BenchProtocol[];
  batches: number[];
  inflights: number[];
  nodes: number;
  /** Closed-loop clients on one client actor, each keeping `window` proposals outstanding. */
  clients: number;
  window: number;
  payloadBytes: number;
  durationMs: number;
  warmupMs: number;
  /** Measured milliseconds of each low-load run (one proposal outstanding). */
  lowLoadDurationMs: number;
  storage: 'memory' | 'wal';
  fsync: FsyncPolicy;
}

export interface ReplicationCell extends Omit<RaftCell, 'limitFraction' | 'snapshotEntries'> {
  protocol: BenchProtocol;
  /** The protocol's own settings for this cell (see the header). */
  settings: string;
  /** Proposals outstanding at once (clients × window; 1 at low load). */
  outstanding: number;
}

export interface ReplicationBenchResult {
  /** One line saying how it was measured. */
  setup: string;
  cells: ReplicationCell[];
  /** Multi-Paxos ops/s ÷ Raft ops/s per (batch, inflight), when both ran. */
  ratios: { batch: number; inflight: number; ratio: number }[];
  /** One client, one proposal outstanding, per protocol of lowLoadProtocols. */
  lowLoad: ReplicationCell[];
  /** The best Multi-Paxos cell ÷ the best Raft cell (null unless both ran). */
  bestRatio: number | null;
  durationSec: number;
}

/** `--quick`: the sweep of `concur bench raft --quick` (batch 1, 512 × inflight 1, 8), 2 s per cell. */
export const replicationQuick = { batches: [1, 512], inflights: [1, 8], durationMs: 2_000, warmupMs: 500, lowLoadDurationMs: 2_000 };
/** The full sweep of `concur bench raft` (batch 1, 8, 64, 512 × inflight 1, 2, 8, 32), 5 s per cell. */
export const replicationFull = { batches: raftBenchDefaults.batch, inflights: raftBenchDefaults.inflight, durationMs: raftBenchDefaults.durationMs, warmupMs: raftBenchDefaults.warmupMs, lowLoadDurationMs: 3_000 };

export const replicationDefaults: ReplicationBenchOptions = {
  protocols: ['raft', 'multipaxos'],
  lowLoadProtocols: ['paxos', 'multipaxos', 'raft'],
  ...replicationFull,
  nodes: 3,
  clients: raftBenchDefaults.clients,
  window: raftBenchDefaults.window,
  payloadBytes: raftBenchDefaults.payloadBytes,
  storage: raftBenchDefaults.storage,
  fsync: raftBenchDefaults.fsync,
};

const protocolName: Record<BenchProtocol, string> = { raft: 'Raft', multipaxos: 'Multi-Paxos', paxos: 'Basic Paxos' };

/** How the run measures, for the header line. */
export function replicationSetup(o: ReplicationBenchOptions): string {
  const storage = o.storage === 'wal' ? `WAL (fsync ${o.fsync})` : 'memory storage';
  return `${o.nodes} nodes, ${storage}, client actors with ${o.clients} × ${o.window} proposals outstanding in packed frames, ${o.payloadBytes}-byte commands (count app), ${o.durationMs / 1000} s per cell after ${o.warmupMs / 1000} s warm-up`;
}

function settingsOf(protocol: BenchProtocol, batch: number, inflight: number): string {
  if (protocol === 'raft') return `batchEntriesMax ${batch}, inflightMax ${inflight}`;
  const p = paxosSettingsFor(batch, inflight);
  return `${protocol === 'paxos' ? 'basic, ' : ''}batchMax ${p.batchMax}, inflightMax ${p.inflightMax}`;
}

async function runCell(o: ReplicationBenchOptions, protocol: BenchProtocol, batch: number, inflight: number, lowLoad: boolean): Promise<ReplicationCell> {
  const ro: RaftBenchOptions = {
    ...raftBenchDefaults,
    nodes: [o.nodes],
    payloadBytes: o.payloadBytes,
    clients: lowLoad ? 1 : o.clients,
    window: lowLoad ? 1 : o.window,
    clientActors: 1,
    durationMs: lowLoad ? o.lowLoadDurationMs : o.durationMs,
    warmupMs: o.warmupMs,
    storage: o.storage,
    fsync: o.fsync,
    snapshotEntries: [snapshotSettingsDefault.entries],
  };
  const cell = await measureCell(ro, o.nodes, batch, inflight, snapshotSettingsDefault.entries, 0, protocol);
  const { limitFraction: _limit, snapshotEntries: _snapshots, ...rest } = cell;
  return { protocol, ...rest, settings: settingsOf(protocol, batch, inflight), outstanding: ro.clients * ro.window };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export async function benchReplication(o: ReplicationBenchOptions, log: (line: string) => void = () => {}): Promise<ReplicationBenchResult> {
  const started = performance.now();
  const cells: ReplicationCell[] = [];
  for (const batch of o.batches) {
    for (const inflight of o.inflights) {
      for (const protocol of o.protocols) {
        const cell = await runCell(o, protocol, batch, inflight, false);
        cells.push(cell);
        log(`  ${protocol.padEnd(10)} batch ${String(batch).padStart(3)} inflight ${String(inflight).padStart(2)}: ${formatRate(cell.opsPerSec).padStart(8)} ops/s  p50 ${cell.p50Ms} ms  p99 ${cell.p99Ms} ms  (${cell.settings}; ${cell.entriesPerAppend} per message, ${cell.cpuUsPerOp} µs CPU per op)`);
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
  const best = (protocol: BenchProtocol) => Math.max(0, ...cells.filter((c) => c.protocol === protocol).map((c) => c.opsPerSec));
  const bestRatio = o.protocols.includes('raft') && o.protocols.includes('multipaxos') && best('raft') > 0 ? round3(best('multipaxos') / best('raft')) : null;
  const lowLoad: ReplicationCell[] = [];
  for (const protocol of o.lowLoadProtocols) {
    const cell = await runCell(o, protocol, 1, 1, true);
    lowLoad.push(cell);
    log(`  ${protocol.padEnd(10)} one proposal outstanding: p50 ${cell.p50Ms} ms  p99 ${cell.p99Ms} ms  (${formatRate(cell.opsPerSec)} ops/s, ${cell.entriesPerAppend} per message)`);
  }
  return { setup: replicationSetup(o), cells, ratios, lowLoad, bestRatio, durationSec: Math.round((performance.now() - started) / 100) / 10 };
}

/** The table and summary lines the CLI prints after the run. */
export function formatReplication(r: ReplicationBenchResult): string[] {
  const lines: string[] = [];
  const protocols = [...new Set(r.cells.map((c) => c.protocol))];
  if (r.cells.length > 0) {
    lines.push(`| batch × inflight | ${protocols.map((p) => `${protocolName[p]} ops/s (p99 ms)`).join(' | ')}${r.ratios.length > 0 ? ' | Multi-Paxos ÷ Raft' : ''} |`);
    lines.push(`|---|${protocols.map(() => '---:').join('|')}${r.ratios.length > 0 ? '|---:' : ''}|`);
    const keys = [...new Set(r.cells.map((c) => `${c.batch}×${c.inflight}`))];
    for (const k of keys) {
      const [batch, inflight] = k.split('×').map(Number) as [number, number];
      const row = protocols.map((p) => {
        const c = r.cells.find((x) => x.protocol === p && x.batch === batch && x.inflight === inflight);
        return c === undefined ? '-' : `${c.opsPerSec.toLocaleString('en-US')} (${c.p99Ms})`;
      });
      const ratio = r.ratios.find((x) => x.batch === batch && x.inflight === inflight);
      lines.push(`| ${batch} × ${inflight} | ${row.join(' | ')}${r.ratios.length > 0 ? ` | ${ratio?.ratio ?? '-'}` : ''} |`);
    }
  }
  for (const p of protocols) {
    const b = r.cells.filter((c) => c.protocol === p).reduce((a, c) => (c.opsPerSec > a.opsPerSec ? c : a));
    lines.push(`best ${protocolName[p]}: ${b.opsPerSec.toLocaleString('en-US')} ops/s at batch ${b.batch} × inflight ${b.inflight} (p50 ${b.p50Ms} ms, p99 ${b.p99Ms} ms, ${b.cpuUsPerOp} µs CPU per op)`);
  }
  if (r.bestRatio !== null) lines.push(`best cells: Multi-Paxos ÷ Raft = ${r.bestRatio}`);
  if (r.lowLoad.length > 0) lines.push(`one proposal outstanding: ${r.lowLoad.map((c) => `${protocolName[c.protocol]} p50 ${c.p50Ms} ms / p99 ${c.p99Ms} ms`).join('; ')}`);
  return lines;
}
