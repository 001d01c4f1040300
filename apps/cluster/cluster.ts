// A live Raft cluster in this process: one node actor per Worker under a Supervisor, plus the
// main-thread side of the client path (route a command to the leader, retry on redirect, give up
// at a deadline). It implements the HTTP API's ClusterBackend and knows nothing of HTTP.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter, map, type Observable, type Subscription } from 'rxjs';
import { Supervisor } from '../../runtime/supervisor.ts';
import { lockDir, type DirLock } from '../../runtime/storage/dir-lock.ts';
import type { FsyncPolicy, RecoveryReport } from '../../runtime/storage/index.ts';
import { Role, roleName, type RaftMutations, type RaftSettings } from '../../protocols/raft/index.ts';
import {
  BackendError,
  BusyError,
  DeadlineError,
  NoLeaderError,
  NoQuorumError,
  NodeStateError,
  UnknownNodeError,
  type ClusterBackend,
  type ClusterEvent,
  type ClusterStatus,
  type LocalReadMode,
  type LocalReadResult,
  type NodeRole,
} from '../http/backend.ts';
import { clusterShapes, type FromNode, type StatusReport } from './protocol.ts';
import type { NodeConfig } from './node-config.ts';
import { checkSnapshotSettings, snapshotSettingsDefault, type SnapshotSettings } from './snapshot-keeper.ts';
import type { TransferSettings } from './snapshot-transfer.ts';

export interface ClusterOptions {
  nodes: number;
  /** Directory kept across runs; null: a temporary one (WAL) removed at stop, or none (memory). */
  dataDir: string | null;
  storage: 'wal' | 'memory';
  fsync: FsyncPolicy;
  electionMsMin: number;
  electionMsMax: number;
  heartbeatMs: number;
  /** Raft settings beyond timing (batching, pipelining, PreVote, CheckQuorum). */
  raft: Partial<Omit<RaftSettings, 'electionTicks' | 'heartbeatTicks'>>;
  seed: number;
  ringBytes: number;
  metricsIntervalMs: number;
  /** Memory storage: applied entries every voter holds are dropped from memory in steps of this many (NodeConfig.compactEntries). */
  compactEntries?: number;
  /** WAL storage: when nodes snapshot and how much log they keep behind it (NodeConfig.snapshot). */
  snapshot?: Partial<SnapshotSettings>;
  /** WAL storage: how snapshots stream to followers (NodeConfig.transfer). */
  transfer?: Partial<TransferSettings>;
  /** WAL storage: segment size (NodeConfig.walSegmentBytesMax). */
  walSegmentBytesMax?: number;
  /** A slow disk on some nodes, as a fault: node id → extra milliseconds per fsync (NodeConfig.syncDelayMs). */
  syncDelayMs?: Record<number, number>;
  /** Deliberate bugs in every node's Raft core, for tests that show the checkers catch them. */
  unsafe?: RaftMutations;
}

export const clusterDefaults: ClusterOptions = {
  nodes: 5,
  dataDir: null,
  storage: 'wal',
  fsync: 'batch',
  electionMsMin: 150,
  electionMsMax: 300,
  heartbeatMs: 50,
  raft: {},
  seed: 1,
  ringBytes: 4 << 20,
  metricsIntervalMs: 1_000,
};

export const clusterNodesMax = 15;
const nodeModule = new URL('./node-actor.ts', import.meta.url);

export class ClusterConfigError extends RangeError {}

/** A node could not start from its directory (corruption, a lock, a snapshot it cannot use): the message says why and what to do. */
export class ClusterStartError extends Error {
  override name = 'ClusterStartError';
}

/** Ticks of `tickMs` that represent the timing settings (the core counts time in ticks). */
export function timing(o: Pick<ClusterOptions, 'electionMsMin' | 'electionMsMax' | 'heartbeatMs'>): { tickMs: number; electionTicks: number; heartbeatTicks: number } {
  const { electionMsMin, electionMsMax, heartbeatMs } = o;
  if (!(Number.isFinite(electionMsMin) && electionMsMin >= 10)) throw new ClusterConfigError(`election timeout must be at least 10 ms, got ${electionMsMin}`);
  if (electionMsMax !== electionMsMin * 2) {
    throw new ClusterConfigError(`election timeout range must be MIN-2×MIN (the core draws each timeout from [min, 2·min)), got ${electionMsMin}-${electionMsMax}; try ${electionMsMin}-${electionMsMin * 2}`);
  }
  if (!(Number.isFinite(heartbeatMs) && heartbeatMs >= 1 && heartbeatMs < electionMsMin)) {
    throw new ClusterConfigError(`heartbeat interval must be from 1 ms to below the minimum election timeout (${electionMsMin} ms), got ${heartbeatMs}`);
  }
  // A tick fine enough for both settings: the heartbeat is a whole number of ticks.
  const tickMs = Math.max(1, Math.min(10, heartbeatMs));
  return { tickMs, electionTicks: Math.max(2, Math.round(electionMsMin / tickMs)), heartbeatTicks: Math.max(1, Math.round(heartbeatMs / tickMs)) };
}

/** The last status a node reported, and whether it runs. */
type NodeView = Omit<StatusReport, 't'> & { id: number; up: boolean };

type Work =
  | { kind: 'propose'; command: Uint8Array; resolve: (r: { index: number; result: Uint8Array }) => void }
  | { kind: 'read'; mode: LocalReadMode; key: string; resolve: (r: LocalReadResult) => void };

interface Request {
  id: number;
  work: Work;
  reject: (e: Error) => void;
  via: number | null;
  /** The node holding the request now, or null while looking for one. */
  at: number | null;
  retryTimer: ReturnType<typeof setTimeout> | null;
  deadlineTimer: ReturnType<typeof setTimeout>;
  lastProblem: 'no-leader' | 'accepted' | 'unreachable';
  /** Follower and stale reads rotate over the nodes; this is where the next one goes. */
  spread: number;
  /**
   * Sends not answered by a refusal (redirect, or dropped from a log): while 0, the request
   * cannot have taken effect anywhere.
   */
  mayHaveApplied: number;
}

/** A read not answered in this long is sent again (its messages may have been lost). */
const readResendMs = 250;

export class Cluster implements ClusterBackend {
  private readonly views = new Map<number, NodeView>();
  /** The last storage recovery of each node (at start and at every restart). */
  readonly recoveries = new Map<number, { summary: string; entries: number; dropped: RecoveryReport['dropped']; snapshotIndex: number; ms: number }>();
  /** Warnings nodes reported (e.g. a damaged snapshot skipped at start), oldest first. */
  readonly warnings: string[] = [];
  private readonly requests = new Map<number, Request>();
  private nextRequestId = 1;
  private readonly subscriptions: Subscription[] = [];
  private stopped = false;

  private constructor(
    readonly supervisor: Supervisor,
    readonly options: ClusterOptions,
    readonly dataDir: string | null,
    private readonly removeDataDirAtStop: boolean,
    private readonly dataDirLock: DirLock | null,
  ) {
    for (const id of supervisor.ids) {
      this.views.set(id, { id, up: true, role: Role.follower, term: 0, leader: 0, commit: 0, lastIndex: 0, applied: 0, firstIndex: 1, snapshotIndex: 0 });
    }
    this.subscriptions.push(supervisor.messages$.subscribe(({ from, message }) => this.onNodeMessage(from, message as FromNode)));
    this.subscriptions.push(
      supervisor.events$.subscribe((e) => {
        if (e.type === 'crashed' || e.type === 'gave-up') {
          this.view(e.id).up = false;
          this.rerouteFrom(e.id);
        }
        else if (e.type === 'spawned' || e.type === 'restarted') this.view(e.id).up = true;
        else if (e.type === 'actor' && e.event.type === 'warning') this.warnings.push(String(e.event.message));
        else if (e.type === 'actor' && e.event.type === 'recovered') {
          this.recoveries.set(e.id, {
            summary: String(e.event.summary),
            entries: Number(e.event.entries),
            dropped: (e.event.dropped as RecoveryReport['dropped']) ?? null,
            snapshotIndex: Number(e.event.snapshotIndex ?? 0),
            ms: Number(e.event.ms ?? 0),
          });
        }
      }),
    );
  }

  static async start(overrides: Partial<ClusterOptions> = {}): Promise<Cluster> {
    const o: ClusterOptions = { ...clusterDefaults, ...overrides, raft: { ...clusterDefaults.raft, ...(overrides.raft ?? {}) } };
    if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > clusterNodesMax) {
      throw new ClusterConfigError(`a cluster needs from 1 to ${clusterNodesMax} nodes, got ${o.nodes}`);
    }
    if (o.compactEntries !== undefined && !(Number.isInteger(o.compactEntries) && o.compactEntries >= 0)) {
      throw new ClusterConfigError(`compactEntries must be a whole number ≥ 0 (0: never compact), got ${o.compactEntries}`);
    }
    try {
      checkSnapshotSettings({ ...snapshotSettingsDefault, ...(o.snapshot ?? {}) });
    } catch (err) {
      throw new ClusterConfigError((err as Error).message);
    }
    const t = timing(o);
    let dataDir = o.dataDir;
    let removeAtStop = false;
    if (o.storage === 'wal' && dataDir === null) {
      dataDir = mkdtempSync(join(tmpdir(), 'concur-'));
      removeAtStop = true;
    }
    // One cluster per data directory: a second one would overwrite the first one's records.
    let lock: DirLock | null = null;
    if (dataDir !== null) {
      mkdirSync(dataDir, { recursive: true });
      lock = lockDir(dataDir, 'concur cluster');
    }
    const config: NodeConfig = {
      tickMs: t.tickMs,
      raft: { ...o.raft, electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks },
      storage: o.storage,
      fsync: o.fsync,
      statusEveryMs: 50,
      seed: o.seed,
      ...(o.compactEntries !== undefined ? { compactEntries: o.compactEntries } : {}),
      ...(o.snapshot ? { snapshot: o.snapshot } : {}),
      ...(o.transfer ? { transfer: o.transfer } : {}),
      ...(o.walSegmentBytesMax !== undefined ? { walSegmentBytesMax: o.walSegmentBytesMax } : {}),
      ...(o.unsafe ? { unsafe: o.unsafe } : {}),
    };
    try {
      const supervisor = Supervisor.create({
        actors: Array.from({ length: o.nodes }, (_, i) => {
          const delay = o.syncDelayMs?.[i + 1];
          const own: NodeConfig = delay === undefined ? config : { ...config, syncDelayMs: delay };
          return { id: i + 1, module: nodeModule, config: own as unknown as Record<string, unknown> };
        }),
        shapes: clusterShapes,
        seed: o.seed,
        ringBytes: o.ringBytes,
        dataDir,
        metricsIntervalMs: o.metricsIntervalMs,
        // In memory a restarted node would come back without its log: never restart it.
        restart: { auto: o.storage === 'wal' },
      });
      // Subscribed before any node starts, so no status report is missed.
      const cluster = new Cluster(supervisor, o, dataDir, removeAtStop, lock);
      try {
        await supervisor.startAll();
      } catch (err) {
        // Name the node and its own words, not the worker plumbing around them.
        const failed = supervisor.ids.map((id) => supervisor.status(id)).find((st) => st.status !== 'up' && st.lastError !== undefined);
        await supervisor.stop().catch(() => undefined);
        if (failed !== undefined) throw new ClusterStartError(`node ${failed.id} cannot start: ${failed.lastError!.replace(/^\w*Error: /, '').replace(/^node \d+: /, '')}`, { cause: err });
        throw err;
      }
      return cluster;
    } catch (err) {
      lock?.release();
      if (removeAtStop && dataDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  // ---- ClusterBackend ------------------------------------------------------------------------

  status(): ClusterStatus {
    const leader = this.leader();
    const nodes = [...this.views.values()].map((v) => ({
      id: v.id,
      role: roleLabel(v.role),
      term: v.term,
      commitIndex: v.commit,
      lastIndex: v.lastIndex,
      up: v.up,
      appliedIndex: v.applied,
      firstIndex: v.firstIndex,
      snapshotIndex: v.snapshotIndex,
    }));
    return { leader, term: Math.max(0, ...[...this.views.values()].filter((v) => v.up).map((v) => v.term)), nodes };
  }

  hasNode(id: number): boolean {
    return this.views.has(id);
  }

  async crash(id: number): Promise<void> {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    if (!this.supervisor.isUp(id)) throw new NodeStateError(`node ${id} is already down; restart it with POST /cluster/nodes/${id}/restart`);
    await this.supervisor.crash(id);
  }

  async restart(id: number): Promise<void> {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    if (this.supervisor.isUp(id)) throw new NodeStateError(`node ${id} is running; crash it first with POST /cluster/nodes/${id}/crash`);
    if (this.options.storage === 'memory') {
      // Raft forbids a node to forget its term, vote and log; a worker's memory dies with it.
      throw new NodeStateError(`node ${id} keeps its log in memory, which died with it; restarting it would let it vote twice and lose acknowledged entries. Start the cluster with --storage wal to restart nodes`);
    }
    await this.supervisor.restart(id);
  }

  partition(groups: number[][]): void {
    this.supervisor.partition(groups);
  }

  heal(): void {
    this.supervisor.heal();
  }

  events(): Observable<ClusterEvent> {
    return this.supervisor.events$.pipe(
      filter((e) => e.type !== 'metrics'),
      map((e) => (e.type === 'actor' ? { ...e.event, type: e.event.type, node: e.id, at: e.at } : (e as unknown as ClusterEvent))),
    );
  }

  /**
   * Proposes a command and resolves once it is applied. `via` sends it through one node, as a
   * client connected to that node would (it reaches the leader only over links that are up).
   */
  submit(command: Uint8Array, timeoutMs: number, opts: { via?: number } = {}): Promise<{ index: number; result: Uint8Array }> {
    return new Promise((resolve, reject) => this.begin({ kind: 'propose', command, resolve }, reject, timeoutMs, opts.via));
  }

  /**
   * Reads `key` by one of the local read paths (a `log` read is a `submit` of a get command).
   * `via` picks the node a follower or stale read is served by (default: spread over the nodes).
   */
  read(key: string, mode: LocalReadMode, timeoutMs: number, opts: { via?: number } = {}): Promise<LocalReadResult> {
    return new Promise((resolve, reject) => this.begin({ kind: 'read', mode, key, resolve }, reject, timeoutMs, opts.via));
  }

  private begin(work: Work, reject: (e: Error) => void, timeoutMs: number, via: number | undefined): void {
    if (this.stopped) return reject(new NoLeaderError('the cluster is shutting down'));
    if (via !== undefined && !this.hasNode(via)) return reject(new UnknownNodeError(via));
    const id = this.nextRequestId++;
    const req: Request = {
      id,
      work,
      reject,
      via: via ?? null,
      at: null,
      retryTimer: null,
      lastProblem: 'no-leader',
      deadlineTimer: setTimeout(() => this.expire(req), Math.max(1, timeoutMs)),
      spread: id,
      mayHaveApplied: 0,
    };
    this.requests.set(id, req);
    this.route(req, null);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const req of this.requests.values()) this.finish(req, () => req.reject(new NoLeaderError('the cluster is shutting down')));
    await this.supervisor.stop();
    for (const s of this.subscriptions) s.unsubscribe();
    this.dataDirLock?.release();
    if (this.removeDataDirAtStop && this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The node every up node's view agrees leads the highest term, if any. */
  leader(): number | null {
    let best: NodeView | null = null;
    for (const v of this.views.values()) {
      if (!v.up || v.role !== Role.leader) continue;
      if (best === null || v.term > best.term) best = v;
    }
    return best ? best.id : null;
  }

  nodeView(id: number): Readonly<NodeView> {
    return this.view(id);
  }

  // ---- internals ---------------------------------------------------------------------------

  private view(id: number): NodeView {
    const v = this.views.get(id);
    if (!v) throw new UnknownNodeError(id);
    return v;
  }

  private reachable(from: number, to: number): boolean {
    if (from === to) return true;
    return !this.supervisor.linkPolicy(from, to).cut && !this.supervisor.linkPolicy(to, from).cut;
  }

  /** Whether `id` can exchange messages with a majority of up nodes (itself included). */
  private hasQuorum(id: number): boolean {
    let reach = 0;
    for (const v of this.views.values()) if (v.up && this.reachable(id, v.id)) reach++;
    return reach * 2 > this.views.size;
  }

  /** Sends the request to the best target, or waits a little and tries again. */
  private route(req: Request, hint: number | null): void {
    if (this.stopped || !this.requests.has(req.id)) return;
    if (req.retryTimer) clearTimeout(req.retryTimer);
    req.retryTimer = null;
    const target = this.targetOf(req, hint);
    if (target === null) {
      req.at = null;
      req.retryTimer = setTimeout(() => this.route(req, null), 20);
      return;
    }
    req.at = target;
    req.lastProblem = 'accepted';
    req.mayHaveApplied++;
    const w = req.work;
    if (w.kind === 'propose') {
      this.supervisor.send(target, { t: 'propose', id: req.id, data: w.command });
    } else {
      this.supervisor.send(target, { t: 'read', id: req.id, mode: w.mode, key: w.key });
      req.retryTimer = setTimeout(() => this.route(req, null), readResendMs);
    }
  }

  /** Where a request goes: the leader, or for follower and stale reads any node. */
  private targetOf(req: Request, hint: number | null): number | null {
    const w = req.work;
    const anyNode = w.kind === 'read' && (w.mode === 'follower' || w.mode === 'stale');
    if (anyNode) {
      if (req.via !== null) return this.view(req.via).up ? req.via : null;
      const up = this.supervisor.ids.filter((id) => this.view(id).up);
      return up.length === 0 ? null : up[req.spread++ % up.length]!;
    }
    if (req.via !== null) {
      // A client of `via`: via forwards to the leader it knows, over its own links.
      const via = this.view(req.via);
      const lead = hint ?? (via.role === Role.leader ? req.via : via.leader || null);
      const target = lead !== null && via.up && this.view(lead).up && this.reachable(req.via, lead) ? lead : null;
      if (lead !== null && target === null) req.lastProblem = 'unreachable';
      return target;
    }
    return hint !== null && this.view(hint).up ? hint : this.leader();
  }

  private onNodeMessage(from: number, m: FromNode): void {
    if (m.t === 'status') {
      this.updateView(from, m);
      return;
    }
    const req = this.requests.get(m.id);
    if (!req) return; // answered already, or expired
    switch (m.t) {
      case 'applied':
        if (req.work.kind === 'propose') this.finish(req, () => (req.work as Extract<Work, { kind: 'propose' }>).resolve({ index: m.index, result: m.result }));
        break;
      case 'read-ok':
        if (req.work.kind === 'read') this.finish(req, () => (req.work as Extract<Work, { kind: 'read' }>).resolve({ value: m.value, index: m.index, node: from, applied: m.applied, commit: m.commit }));
        break;
      case 'redirect':
        req.mayHaveApplied = Math.max(0, req.mayHaveApplied - 1);
        req.lastProblem = 'no-leader';
        req.at = null;
        // Follow a hint at once; without one, wait for an election.
        if (m.leader !== 0 && m.leader !== from) this.route(req, m.leader);
        else this.retrySoon(req, 20);
        break;
      case 'busy':
        // The leader refused it for now: it certainly did not take effect. Say so at once rather
        // than queue without bound (the client may retry after Retry-After).
        this.finish(req, () => {
          const err = new BusyError(`the leader is busy: ${m.why}`);
          err.definitelyNotApplied = req.mayHaveApplied <= 1;
          req.reject(err);
        });
        break;
      case 'dropped':
        // Replaced by another leader's entry: it did not take effect there; the session table
        // makes a retry safe even if another copy did.
        req.mayHaveApplied = Math.max(0, req.mayHaveApplied - 1);
        req.at = null;
        this.retrySoon(req, 5);
        break;
    }
  }

  private updateView(id: number, s: StatusReport): void {
    const v = this.view(id);
    const wasLeader = v.role === Role.leader;
    const { t: _t, ...report } = s;
    Object.assign(v, report);
    if (wasLeader && s.role !== Role.leader) {
      // Proposals held by a deposed leader may never commit: look for the new leader. A retry is
      // safe (the session table applies a command at most once).
      this.rerouteFrom(id);
    }
  }

  private retrySoon(req: Request, delayMs: number): void {
    if (req.retryTimer) clearTimeout(req.retryTimer);
    req.retryTimer = setTimeout(() => this.route(req, null), delayMs);
  }

  /** Requests held by a node that crashed or lost leadership go elsewhere. */
  private rerouteFrom(id: number): void {
    for (const req of this.requests.values()) {
      if (req.at === id) {
        req.at = null;
        this.retrySoon(req, 5);
      }
    }
  }

  private expire(req: Request): void {
    if (!this.requests.has(req.id)) return;
    const node = req.at ?? req.via;
    let err: BackendError;
    if (node !== null && !this.hasQuorum(node)) err = new NoQuorumError(`node ${node} cannot reach a majority of the cluster, so nothing it holds can commit; retry after the partition heals`);
    else if (req.lastProblem === 'accepted') err = new DeadlineError();
    else if (req.lastProblem === 'unreachable') err = new NoQuorumError(`node ${req.via} cannot reach the leader; retry after the partition heals`);
    else err = new NoLeaderError();
    err.definitelyNotApplied = req.mayHaveApplied === 0;
    this.finish(req, () => req.reject(err));
  }

  private finish(req: Request, settle: () => void): void {
    this.requests.delete(req.id);
    clearTimeout(req.deadlineTimer);
    if (req.retryTimer) clearTimeout(req.retryTimer);
    settle();
  }
}

function roleLabel(role: number): NodeRole {
  if (role === Role.leader) return 'leader';
  if (role === Role.candidate || role === Role.preCandidate) return 'candidate';
  return 'follower';
}

export { roleName };
