// `concur bench raft`: a sweep of real worker clusters over batch × inflight (× nodes), loaded by
// client actors, plus the raw ring limit and open-loop latency curves, all measured in one run.
// It measures and reports; it must never assert a performance figure (tests check the machinery).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '../runtime/supervisor.ts';
import type { FsyncPolicy } from '../runtime/storage/index.ts';
import { Role } from '../protocols/raft/index.ts';
import { timing } from '../apps/cluster/cluster.ts';
import type { NodeConfig } from '../apps/cluster/node-actor.ts';
import type { PaxosNodeConfig } from '../apps/cluster/paxos-host.ts';
import { snapshotSettingsDefault } from '../apps/cluster/snapshot-keeper.ts';
import { clusterShapes } from '../apps/cluster/protocol.ts';
import { LatencyRecorder } from './latency.ts';
import { runTransport } from './transport.ts';
import { measureStalls, type StallSummary } from './stalls.ts';
import type { RaftClientConfig, RaftClientResult, RaftClientRun } from './raft-client.ts';

export interface RaftBenchOptions {
  nodes: number[];
  batch: number[];
  inflight: number[];
  payloadBytes: number;
  /** Closed-loop clients; each keeps `window` proposals outstanding. */
  clients: number;
  window: number;
  /** Worker actors the clients run on (their proposals share one ordered stream per actor). */
  clientActors: number;
  /** Proposals per client → leader frame. */
  proposalsPerFrameMax: number;
  durationMs: number;
  warmupMs: number;
  storage: 'memory' | 'wal';
  fsync: FsyncPolicy;
  /**
   * WAL only: the snapshot intervals (entries) to run every cell with, in order; 0 turns
   * snapshots off. Two values (e.g. [10000, 0]) compare snapshots on and off in one run.
   */
  snapshotEntries: number[];
  /** Open-loop latency curves for the best and the unbatched settings. */
  curves: boolean;
  /** Offered rates of a curve, as fractions of that setting's closed-loop throughput. */
  curveFractions: number[];
  curvePointMs: number;
  curveWarmupMs: number;
  /** 64-byte frames sent between two workers to measure the ring limit. */
  limitFrames: number;
  /** How long the spinners look for stalls of the machine itself (0: skip). */
  stallScanMs: number;
  ringBytes: number;
  electionMsMin: number;
  heartbeatMs: number;
  /** How long a cluster may take to elect its first leader. */
  leaderWaitMs: number;
  seed: number;
}

/**
 * Open loop: proposals a client actor keeps sent but unacked, at most (RaftClientConfig). What
 * is due beyond waits at the client, its latency counted from when it was due. Measured: with a
 * backlog of 16 k+ entries in the leader, keeping them alive makes GC take a fifth of its time
 * and throughput sinks below the offered rate, a slow mode it does not leave while the load
 * lasts; at 8 k it holds 1 M ops/s offered.
 */
const openLoopOutstandingMax = 8192;

export const raftBenchDefaults: RaftBenchOptions = {
  nodes: [3],
  batch: [1, 8, 64, 512],
  inflight: [1, 2, 8, 32],
  payloadBytes: 64,
  clients: 64,
  window: 64,
  clientActors: 1,
  proposalsPerFrameMax: 256,
  durationMs: 5_000,
  warmupMs: 1_000,
  storage: 'memory',
  fsync: 'batch',
  snapshotEntries: [snapshotSettingsDefault.entries],
  curves: true,
  curveFractions: [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2],
  curvePointMs: 2_000,
  curveWarmupMs: 500,
  limitFrames: 3_000_000,
  stallScanMs: 3_000,
  ringBytes: 4 << 20,
  electionMsMin: 300,
  heartbeatMs: 50,
  leaderWaitMs: 15_000,
  seed: 1,
};

/** `--quick`: under a minute; batch 1 and 512 × inflight 1 and 8 on 3 nodes. */
export const raftBenchQuick: Partial<RaftBenchOptions> = {
  nodes: [3],
  batch: [1, 512],
  inflight: [1, 8],
  durationMs: 2_000,
  warmupMs: 500,
  curveFractions: [0.25, 0.5, 0.9, 1.2],
  curvePointMs: 1_000,
  curveWarmupMs: 300,
  limitFrames: 1_000_000,
  stallScanMs: 1_000,
};

export interface RaftCell {
  nodes: number;
  batch: number;
  inflight: number;
  storage: string;
  fsync: string | null;
  /** WAL: snapshot interval in entries (0: off); null with memory storage (which never snapshots). */
  snapshotEntries: number | null;
  opsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** AppendEntries carrying at least one entry, sent by the leader per second. */
  appendsPerSec: number;
  entriesPerAppend: number;
  /** CPU time of the whole process (every thread) per committed op, in microseconds. */
  cpuUsPerOp: number;
  /** opsPerSec / the ring limit (64-byte frames per second between two workers). */
  limitFraction: number;
  /** Event-loop utilisation of the leader and of the busiest follower during the window. */
  leaderElu: number;
  followerEluMax: number;
  redirects: number;
}

export interface RaftCurvePoint {
  offeredPerSec: number;
  opsPerSec: number;
  /** CPU time of the whole process (every thread) per second over the point, warm-up included. */
  cpuCores: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface RaftCurve {
  label: string;
  nodes: number;
  batch: number;
  inflight: number;
  points: RaftCurvePoint[];
}

export interface RaftBenchReport {
  startedAt: string;
  options: RaftBenchOptions;
  limitMsgsPerSec: number;
  /** What the machine takes from a thread that never sleeps, measured in this run (null: skipped). */
  stalls: StallSummary | null;
  cells: RaftCell[];
  curves: RaftCurve[];
  durationSec: number;
}

export interface RaftBenchProgress {
  /** Steps in the whole run (the limit, the stall scan, every cell, every curve point), known up front. */
  total: number;
  onStep(done: number, label: string): void;
}

const nodeModule = new URL('../apps/cluster/node-actor.ts', import.meta.url);
const paxosNodeModule = new URL('../apps/cluster/paxos-actor.ts', import.meta.url);
const clientModule = new URL('./raft-client.ts', import.meta.url);

interface BenchStats {
  role: number;
  appendsSent: number;
  entriesSent: number;
  appliedCommands: number | null;
  eluActiveMs: number;
  eluIdleMs: number;
}

/**
 * What a bench cluster runs: Raft, Multi-Paxos, or Basic Paxos (`paxos`: every node may propose;
 * the clients send to the lowest voter, which reports itself as the leader).
 */
export type BenchProtocol = 'raft' | 'multipaxos' | 'paxos';

/**
 * One cell's settings for a protocol. Raft: `batchEntriesMax = batch` entries per AppendEntries,
 * `inflightMax = inflight` AppendEntries in flight per follower. Paxos: `batchMax = batch`
 * proposals per accept message, `inflightMax = batch × inflight` slots proposed and not yet
 * chosen — the same number of values in flight as Raft's at most, in `inflight` full accepts.
 */
export function paxosSettingsFor(batch: number, inflight: number): { batchMax: number; inflightMax: number } {
  return { batchMax: batch, inflightMax: batch * inflight };
}

/** A running cluster of node actors and client actors for one setting. */
export class BenchCluster {
  private constructor(
    readonly supervisor: Supervisor,
    readonly voters: number[],
    readonly clientIds: number[],
    readonly leader: number,
    private readonly dataDir: string | null,
  ) {}

  static async start(o: RaftBenchOptions, nodes: number, batch: number, inflight: number, snapshotEntries = o.snapshotEntries[0] ?? snapshotSettingsDefault.entries, protocol: BenchProtocol = 'raft'): Promise<BenchCluster> {
    const t = timing({ electionMsMin: o.electionMsMin, electionMsMax: o.electionMsMin * 2, heartbeatMs: o.heartbeatMs });
    const voters = Array.from({ length: nodes }, (_, i) => i + 1);
    const clientIds = Array.from({ length: o.clientActors }, (_, i) => nodes + 1 + i);
    const outstanding = o.clients * o.window;
    const nodeConfig: NodeConfig = {
      tickMs: t.tickMs,
      raft: {
        electionTicks: t.electionTicks,
        heartbeatTicks: t.heartbeatTicks,
        batchEntriesMax: batch,
        inflightMax: inflight,
        // Room for every outstanding proposal, closed or open loop: a busy refusal makes a client
        // go back and resend (go-back-N), which is for overload, not for a benchmark's steady state.
        uncommittedEntriesMax: Math.max(2 * openLoopOutstandingMax, 2 * outstanding),
      },
      storage: o.storage,
      fsync: o.fsync,
      ...(o.storage === 'wal' ? { snapshot: { entries: snapshotEntries } } : {}),
      statusEveryMs: 200,
      seed: o.seed,
      app: 'count',
      voters,
    };
    if (protocol !== 'raft') {
      // The Paxos core counts time in the same ticks; the node's Raft settings go unused.
      const paxos: PaxosNodeConfig = {
        ...nodeConfig,
        raft: {},
        protocol: 'multipaxos',
        paxos: { electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks, ...paxosSettingsFor(batch, inflight) },
        paxosMode: protocol === 'paxos' ? 'basic' : 'multi',
      };
      Object.assign(nodeConfig, paxos);
    }
    const clientConfig: RaftClientConfig = { voters, payloadBytes: o.payloadBytes, proposalsPerFrameMax: o.proposalsPerFrameMax, openLoopOutstandingMax };
    const dataDir = o.storage === 'wal' ? mkdtempSync(join(tmpdir(), 'concur-bench-')) : null;
    const supervisor = await Supervisor.start({
      actors: [
        ...voters.map((id) => ({ id, module: protocol === 'raft' ? nodeModule : paxosNodeModule, config: nodeConfig as unknown as Record<string, unknown> })),
        ...clientIds.map((id) => ({ id, module: clientModule, config: clientConfig as unknown as Record<string, unknown> })),
      ],
      shapes: clusterShapes,
      seed: o.seed,
      ringBytes: o.ringBytes,
      dataDir,
      metricsIntervalMs: 0,
      restart: { auto: false },
    }).catch((err: unknown) => {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    });
    const deadline = performance.now() + o.leaderWaitMs;
    for (;;) {
      const stats = await Promise.all(voters.map((id) => supervisor.call<BenchStats>(id, 'benchStats')));
      const i = stats.findIndex((s) => s.role === Role.leader);
      if (i >= 0) return new BenchCluster(supervisor, voters, clientIds, voters[i]!, dataDir);
      if (performance.now() > deadline) {
        await supervisor.stop();
        if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        throw new Error(`no leader elected within ${o.leaderWaitMs} ms (${protocol === 'raft' ? '' : `${protocol}, `}${nodes} nodes, batch ${batch}, inflight ${inflight})`);
      }
      await sleep(20);
    }
  }

  /** Where the nodes keep their files (WAL), or null. */
  get dataDirPath(): string | null {
    return this.dataDir;
  }

  stats(): Promise<BenchStats[]> {
    return Promise.all(this.voters.map((id) => this.supervisor.call<BenchStats>(id, 'benchStats')));
  }

  /** Runs every client actor with `run` (rates and outstanding split evenly) and waits for all. */
  runClients(run: Omit<RaftClientRun, 'leader'>): Promise<RaftClientResult[]> {
    const n = this.clientIds.length;
    const timeoutMs = run.warmupMs + run.durationMs + run.drainTimeoutMs + 30_000;
    return Promise.all(
      this.clientIds.map((id, i) =>
        this.supervisor.call<RaftClientResult>(
          id,
          'run',
          [{ ...run, leader: this.leader, outstanding: Math.max(1, Math.floor(run.outstanding / n) + (i < run.outstanding % n ? 1 : 0)), ratePerSec: run.ratePerSec / n, totalOps: run.totalOps === 0 ? 0 : Math.floor(run.totalOps / n) + (i < run.totalOps % n ? 1 : 0) }],
          timeoutMs,
        ),
      ),
    );
  }

  async stop(): Promise<void> {
    await this.supervisor.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

function merge(results: RaftClientResult[]): { ops: number; windowMs: number; latency: LatencyRecorder; redirects: number } {
  const latency = new LatencyRecorder();
  let ops = 0;
  let redirects = 0;
  for (const r of results) {
    ops += r.ackedInWindow;
    redirects += r.redirects;
    latency.addEncoded(r.histogram);
  }
  return { ops, windowMs: Math.max(...results.map((r) => r.windowMs)), latency, redirects };
}

function elu(a: BenchStats, b: BenchStats): number {
  const active = b.eluActiveMs - a.eluActiveMs;
  const idle = b.eluIdleMs - a.eluIdleMs;
  return active + idle > 0 ? round(active / (active + idle), 2) : 0;
}

/**
 * One closed-loop cell: warm up, then measure for durationMs. For Paxos, "appends" are accept
 * messages the leader sent with at least one proposal, "entries" the proposals they carried.
 */
/**
 * `attach` runs once the cluster has a leader, before the clients start; what it returns runs
 * after the measurement (bench/dashboard-cost.ts attaches a dashboard and a browser).
 */
export async function measureCell(o: RaftBenchOptions, nodes: number, batch: number, inflight: number, snapshotEntries: number, limitMsgsPerSec: number, protocol: BenchProtocol = 'raft', attach?: (c: BenchCluster) => Promise<() => Promise<void>>): Promise<RaftCell> {
  const c = await BenchCluster.start(o, nodes, batch, inflight, snapshotEntries, protocol);
  let detach: (() => Promise<void>) | null = null;
  try {
    if (attach) detach = await attach(c);
    const done = c.runClients({ mode: 'closed', outstanding: o.clients * o.window, ratePerSec: 0, warmupMs: o.warmupMs, durationMs: o.durationMs, totalOps: 0, drainTimeoutMs: 2_000 });
    await sleep(o.warmupMs);
    const s0 = await c.stats();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(o.durationMs);
    const s1 = await c.stats();
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    const m = merge(await done);
    const lead = c.voters.indexOf(c.leader);
    // Summed over the nodes: only a leader sends appends, and on a busy machine leadership may
    // move during a short cell (the first leader's counts alone then read 0 per message).
    const sum = (f: (x: BenchStats) => number) => c.voters.reduce((n, _, i) => n + f(s1[i]!) - f(s0[i]!), 0);
    const appends = sum((x) => x.appendsSent);
    const entries = sum((x) => x.entriesSent);
    const applied = (s1[lead]!.appliedCommands ?? 0) - (s0[lead]!.appliedCommands ?? 0);
    const summary = m.latency.summary();
    const opsPerSec = Math.round(m.ops / (m.windowMs / 1000));
    return {
      nodes,
      batch,
      inflight,
      storage: o.storage,
      fsync: o.storage === 'wal' ? o.fsync : null,
      snapshotEntries: o.storage === 'wal' ? snapshotEntries : null,
      opsPerSec,
      p50Ms: summary.p50Ms,
      p90Ms: summary.p90Ms,
      p99Ms: summary.p99Ms,
      maxMs: summary.maxMs,
      appendsPerSec: Math.round(appends / seconds),
      entriesPerAppend: appends > 0 ? round(entries / appends, 1) : 0,
      cpuUsPerOp: applied > 0 ? round((cpu.user + cpu.system) / applied, 2) : 0,
      limitFraction: limitMsgsPerSec > 0 ? round(opsPerSec / limitMsgsPerSec, 3) : 0,
      leaderElu: elu(s0[lead]!, s1[lead]!),
      followerEluMax: Math.max(0, ...c.voters.map((_, i) => (i === lead ? 0 : elu(s0[i]!, s1[i]!)))),
      redirects: m.redirects,
    };
  } finally {
    await detach?.();
    await c.stop();
  }
}

/** Open-loop points at fractions of `capacity` on one cluster, until it saturates. */
export async function measureCurve(o: RaftBenchOptions, label: string, nodes: number, batch: number, inflight: number, capacityPerSec: number, onPoint: (label: string) => void): Promise<RaftCurve> {
  const c = await BenchCluster.start(o, nodes, batch, inflight);
  const points: RaftCurvePoint[] = [];
  try {
    // A fresh cluster is slow for its first moments (JIT, first allocations): warm it up closed
    // loop, so that the first point measures the steady state, not a backlog left by the warm-up.
    await c.runClients({ mode: 'closed', outstanding: o.clients * o.window, ratePerSec: 0, warmupMs: 0, durationMs: o.warmupMs, totalOps: 0, drainTimeoutMs: 2_000 });
    for (const f of o.curveFractions) {
      const offeredPerSec = Math.max(10, Math.round(capacityPerSec * f));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const m = merge(await c.runClients({ mode: 'open', outstanding: 0, ratePerSec: offeredPerSec, warmupMs: o.curveWarmupMs, durationMs: o.curvePointMs, totalOps: 0, drainTimeoutMs: 1_000 }));
      const cpu = process.cpuUsage(cpu0);
      const cpuCores = round((cpu.user + cpu.system) / 1000 / (performance.now() - t0), 2);
      const s = m.latency.summary();
      points.push({ offeredPerSec, opsPerSec: Math.round(m.ops / (m.windowMs / 1000)), cpuCores, p50Ms: s.p50Ms, p90Ms: s.p90Ms, p99Ms: s.p99Ms, maxMs: s.maxMs });
      onPoint(`${label} curve at ${formatRate(offeredPerSec)}/s`);
      // Past saturation the backlog only grows; the remaining points would measure the queue.
      if (m.ops / (m.windowMs / 1000) < 0.9 * offeredPerSec) break;
    }
  } finally {
    await c.stop();
  }
  return { label, nodes, batch, inflight, points };
}

export function formatRate(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k`;
  return String(Math.round(perSec));
}

/** The snapshot intervals each cell runs with: one (the first) for memory storage, which never snapshots. */
function snapshotVariants(o: RaftBenchOptions): number[] {
  return o.storage === 'wal' ? o.snapshotEntries : [o.snapshotEntries[0] ?? 0];
}

/** The steps `runRaftBench` reports, for a progress bar's total. */
export function raftBenchSteps(o: RaftBenchOptions): number {
  const cells = o.nodes.length * o.batch.length * o.inflight.length * snapshotVariants(o).length;
  return 1 + (o.stallScanMs > 0 ? 1 : 0) + cells + (o.curves ? 2 * o.curveFractions.length : 0);
}

/** The whole benchmark: the ring limit, every cell of the sweep, then the latency curves. */
export async function runRaftBench(o: RaftBenchOptions, progress?: RaftBenchProgress): Promise<RaftBenchReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  let step = 0;
  const tick = (label: string) => progress?.onStep(++step, label);
  const limit = await runTransport('ring', 'opaque', 64, o.limitFrames);
  if (!limit.checksumOk) throw new Error('the ring limit run delivered wrong frames (checksum or count mismatch)');
  tick(`ring limit ${formatRate(limit.msgsPerSec)} msg/s`);
  const stalls = o.stallScanMs > 0 ? await measureStalls(o.stallScanMs) : null;
  if (stalls) tick(`machine stalls: ${(stalls.lostFraction * 100).toFixed(1)}% lost, longest ${stalls.maxGapMs} ms`);
  const cells: RaftCell[] = [];
  for (const nodes of o.nodes) {
    for (const batch of o.batch) {
      for (const inflight of o.inflight) {
        for (const snap of snapshotVariants(o)) {
          const cell = await measureCell(o, nodes, batch, inflight, snap, limit.msgsPerSec);
          cells.push(cell);
          const snapLabel = o.storage === 'wal' ? (snap === 0 ? ', snapshots off' : `, snapshot every ${snap}`) : '';
          tick(`${nodes} nodes batch ${batch} inflight ${inflight}${snapLabel}: ${formatRate(cell.opsPerSec)} ops/s`);
        }
      }
    }
  }
  const curves: RaftCurve[] = [];
  if (o.curves && cells.length > 0) {
    const nodes = o.nodes[0]!;
    const ofNodes = cells.filter((c) => c.nodes === nodes && c.snapshotEntries === (o.storage === 'wal' ? o.snapshotEntries[0] : null));
    const best = ofNodes.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
    const unbatched = ofNodes.find((c) => c.batch === 1 && c.inflight === 1) ?? ofNodes.reduce((a, b) => (b.batch * b.inflight < a.batch * a.inflight ? b : a));
    const settings = [{ label: 'best', cell: best }];
    if (unbatched !== best) settings.push({ label: 'unbatched', cell: unbatched });
    for (const s of settings) {
      const planned = o.curveFractions.length;
      const before = step;
      curves.push(await measureCurve(o, `${s.label} (batch ${s.cell.batch}, inflight ${s.cell.inflight})`, nodes, s.cell.batch, s.cell.inflight, s.cell.opsPerSec, tick));
      // Points skipped after saturation still count as done for the progress bar.
      while (step < before + planned) tick(`${s.label} curve saturated`);
    }
    while (step < raftBenchSteps(o)) tick('done');
  }
  return { startedAt, options: o, limitMsgsPerSec: limit.msgsPerSec, stalls, cells, curves, durationSec: round((performance.now() - started) / 1000, 1) };
}

/** The `--json` line: the fields the issue promises, first, then the rest of each cell. */
export function jsonSummary(r: RaftBenchReport): object {
  return {
    limitMsgsPerSec: r.limitMsgsPerSec,
    // The promised fields lead each cell; the rest of it follows.
    cells: r.cells.map((c) => Object.assign({ nodes: c.nodes, batch: c.batch, inflight: c.inflight, storage: c.storage, opsPerSec: c.opsPerSec, p50Ms: c.p50Ms, p99Ms: c.p99Ms, entriesPerAppend: c.entriesPerAppend }, c)),
    stalls: r.stalls,
    curves: r.curves,
    durationSec: r.durationSec,
  };
}
