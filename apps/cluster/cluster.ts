// A live Raft (or Multi-Paxos) cluster in this process: one node actor per Worker under a Supervisor, plus the
// main-thread side of the client path (the client pipeline: client-pipeline.ts) and of membership changes (spawn or stop a node's worker, propose the change
// through the leader, answer once it committed). It implements the HTTP API's ClusterBackend and
// knows nothing of HTTP.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { map, type Observable, type Subscription } from 'rxjs';
import { actorIdMax, Supervisor } from '../../runtime/supervisor.ts';
import { lockDir, type DirLock } from '../../runtime/storage/dir-lock.ts';
import { makeDirs } from '../../runtime/storage/make-dirs.ts';
import type { FsyncPolicy, RecoveryReport } from '../../runtime/storage/index.ts';
import { Role, roleName, type ConfChange, type RaftMutations, type RaftSettings } from '../../protocols/raft/index.ts';
import {
  type BackendError,
  ConflictError,
  DeadlineError,
  NoLeaderError,
  NodeDownError,
  NodeStateError,
  NoQuorumError,
  UnknownNodeError,
  type ClusterBackend,
  type ClusterEvent,
  type ClusterStatus,
  type LinkFaultSettings,
  type LocalReadMode,
  type LocalReadResult,
  type MemberRole,
  type NodeStatus,
  type ReadWaiter,
  type WriteWaiter,
} from '../http/backend.ts';
import type { HttpApiOptions } from '../http/settings.ts';
import type { RespSettings } from '../resp/settings.ts';
import { networkStatus } from './network-view.ts';
import { freshLayout, maxIdEverUsed, readLayout, writeLayout, type ClusterLayout } from './layout.ts';
import { alreadyDone, fullVotersOf, membersOf, nodeStateOf, pendingOf, refusalError, roleIn, sleep, type ConfigView } from './members.ts';
import type { ConfChangeOutcome } from './node-membership.ts';
import { clusterShapes, type FromNode, type StatusReport } from './protocol.ts';
import type { LiveNode, TrafficCount } from '../dashboard/source.ts';
import { liveNodeOf, TrafficCounter } from '../dashboard/live-view.ts';
import { ClientPipeline, type PipelineRouting } from './client-pipeline.ts';
import type { NodeConfig } from './node-config.ts';
import { checkSnapshotSettings, snapshotSettingsDefault, type SnapshotSettings } from './snapshot-keeper.ts';
import type { TransferSettings } from './snapshot-transfer.ts';
import type { App } from '../platform/app.ts';
import { defaultAppNames, isAppModule, loadApps } from '../platform/registry.ts';

/** The consensus protocols a live cluster can run; the KV store and the API are the same on each. */
export const clusterProtocols = ['raft', 'multipaxos'] as const;
export type ClusterProtocol = (typeof clusterProtocols)[number];

export interface ClusterOptions {
  nodes: number;
  /** The apps on the log: built-in names (kv, lock) or paths to app modules. Default: kv and lock. */
  apps?: string[];
  /** The consensus protocol every node runs (default raft). */
  protocol?: ClusterProtocol;
  /** Multi-Paxos only: slots in flight at once (pipelining) and proposals per accept message (batching). */
  paxos?: { inflightMax?: number; batchMax?: number };
  /** Nodes (ids from 1 to `nodes`) that are witnesses: they vote and hold the log, but keep no state machine. */
  witnesses?: number[];
  /** The most nodes that may run at once; adding past it is refused (default clusterNodesMax). */
  nodesMax?: number;
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
  /**
   * Every node serves clients on ports of its own (node-door.ts): the HTTP API on base + N - 1 for
   * node N, with its settings in `api` (host, token, limits; the port is ignored), and the Redis
   * protocol on respBase + N - 1 with `resp`'s. Either or both. Raft only.
   */
  clientPorts?: { base?: number; api?: HttpApiOptions; respBase?: number; resp?: Partial<RespSettings> };
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
const paxosNodeModule = new URL('./paxos-actor.ts', import.meta.url);
/** Read modes a Multi-Paxos cluster serves (its leader holds no lease). */
const paxosReadModes: readonly LocalReadMode[] = ['index', 'follower', 'stale'];

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
/** `up`: its worker runs (not crashed); `paused`: that worker is frozen (supervisor.pause). */
type NodeView = Omit<StatusReport, 't'> & { id: number; up: boolean; paused: boolean };

/** A node that serves: up and not paused. */
const running = (v: NodeView | undefined): boolean => v !== undefined && v.up && !v.paused;

function nodeList(ids: readonly number[]): string {
  const names = ids.map(String);
  const list = names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `${ids.length === 1 ? 'node' : 'nodes'} ${list}`;
}

function initialView(id: number, first: ClusterLayout['first'], member: boolean): NodeView {
  // Until it reports, a node of the first configuration is assumed to hold it, and an added one none.
  const voters = member ? [...first.voters] : [];
  return { id, up: true, paused: false, role: Role.follower, term: 0, leader: 0, commit: 0, lastIndex: 0, applied: 0, firstIndex: 1, snapshotIndex: 0, voters, outgoing: [], learners: [], witnesses: member ? [...first.witnesses] : [], membershipIndex: 0, vote: 0, progress: [], sent: [] };
}

export class Cluster implements ClusterBackend {
  /** The apps every node runs on the log, in order. */
  apps: readonly App[] = [];
  private readonly views = new Map<number, NodeView>();
  /** The last storage recovery of each node (at start and at every restart). */
  readonly recoveries = new Map<number, { summary: string; entries: number; dropped: RecoveryReport['dropped']; snapshotIndex: number; ms: number }>();
  /** Warnings nodes reported (e.g. a damaged snapshot skipped at start), oldest first. */
  readonly warnings: string[] = [];
  /** Every client request goes through it (HTTP, RESP, chaos clients). */
  private readonly pipeline: ClientPipeline;
  /** Messages sent per (from, to, type) as nodes report them, until the dashboard takes them. */
  private readonly traffic: TrafficCounter;
  private readonly subscriptions: Subscription[] = [];
  private stopped = false;
  /** Nodes being removed (their workers stopping), so a second removal waits for the first. */
  private readonly removing = new Map<number, Promise<void>>();

  private constructor(
    readonly supervisor: Supervisor,
    readonly options: ClusterOptions,
    readonly dataDir: string | null,
    private readonly removeDataDirAtStop: boolean,
    private readonly dataDirLock: DirLock | null,
    private readonly layout: ClusterLayout,
    /** What every node is configured with, before its own part (joinAs, a slow disk). */
    private readonly nodeConfig: NodeConfig,
  ) {
    for (const n of layout.nodes) this.views.set(n.id, initialView(n.id, layout.first, n.joinAs === undefined));
    this.pipeline = new ClientPipeline(this.routing());
    this.traffic = new TrafficCounter(options.protocol ?? 'raft');
    supervisor.onFrame((from, bytes, start, end) => this.pipeline.onFrame(from, bytes, start, end));
    this.subscriptions.push(supervisor.messages$.subscribe(({ from, message }) => this.onNodeMessage(from, message as FromNode)));
    this.subscriptions.push(
      supervisor.events$.subscribe((e) => {
        if (e.type === 'crashed' || e.type === 'gave-up') {
          const v = this.views.get(e.id);
          if (v !== undefined) {
            v.up = false;
            v.paused = false;
          }
          this.pipeline.nodeLost(e.id);
        }
        else if (e.type === 'spawned' || e.type === 'restarted') {
          const v = this.views.get(e.id);
          if (v !== undefined) {
            v.up = true;
            v.paused = false;
          }
        }
        else if (e.type === 'paused' || e.type === 'resumed') {
          const v = this.views.get(e.id);
          if (v !== undefined) v.paused = e.type === 'paused';
          // What waits on a frozen node goes elsewhere (it answers nothing until resumed).
          if (e.type === 'paused') this.pipeline.nodeLost(e.id);
        }
        else if (e.type === 'actor' && e.event.type === 'removed') void this.onRemovedReport(e.id);
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
    checkOptions(o);
    const t = timing(o);
    // Resolved here too (not only on the nodes): bad app modules fail before any worker starts,
    // and the HTTP API mounts the apps' routes.
    const appSpecs = (o.apps ?? [...defaultAppNames]).map((a) => (isAppModule(a) && !a.startsWith('file:') ? resolve(a) : a));
    let apps: App[];
    try {
      apps = await loadApps(appSpecs);
    } catch (err) {
      throw new ClusterConfigError((err as Error).message);
    }
    let dataDir = o.dataDir;
    let removeAtStop = false;
    if (o.storage === 'wal' && dataDir === null) {
      dataDir = mkdtempSync(join(tmpdir(), 'concur-'));
      removeAtStop = true;
    }
    // One cluster per data directory: a second one would overwrite the first one's records.
    let lock: DirLock | null = null;
    if (dataDir !== null) {
      makeDirs(dataDir);
      lock = lockDir(dataDir, 'concur cluster');
    }
    const config: NodeConfig = {
      tickMs: t.tickMs,
      raft: { ...o.raft, electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks },
      storage: o.storage,
      fsync: o.fsync,
      statusEveryMs: 50,
      seed: o.seed,
      apps: appSpecs,
      ...(o.compactEntries !== undefined ? { compactEntries: o.compactEntries } : {}),
      ...(o.snapshot ? { snapshot: o.snapshot } : {}),
      ...(o.transfer ? { transfer: o.transfer } : {}),
      ...(o.walSegmentBytesMax !== undefined ? { walSegmentBytesMax: o.walSegmentBytesMax } : {}),
      ...(o.unsafe ? { unsafe: o.unsafe } : {}),
    };
    if (o.protocol === 'multipaxos') {
      // The Paxos core counts time in the same ticks; what it needs beyond NodeConfig rides along.
      Object.assign(config, { protocol: 'multipaxos', paxos: { ...(o.paxos ?? {}), electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks } });
    }
    const module = o.protocol === 'multipaxos' ? paxosNodeModule : nodeModule;
    const warnings: string[] = [];
    try {
      const layout = Cluster.layoutFor(o, dataDir, warnings);
      config.voters = [...layout.first.voters];
      config.witnesses = [...layout.first.witnesses];
      const supervisor = Supervisor.create({
        actors: layout.nodes.map((n) => ({ id: n.id, module, config: nodeConfigFor(config, o, n.id, n.joinAs) as unknown as Record<string, unknown> })),
        shapes: clusterShapes,
        seed: o.seed,
        ringBytes: o.ringBytes,
        dataDir,
        metricsIntervalMs: o.metricsIntervalMs,
        // In memory a restarted node would come back without its log: never restart it.
        restart: { auto: o.storage === 'wal' },
      });
      // Subscribed before any node starts, so no status report is missed.
      const cluster = new Cluster(supervisor, o, dataDir, removeAtStop, lock, layout, config);
      cluster.apps = apps;
      cluster.warnings.push(...warnings);
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

  /**
   * The nodes to run: those a data directory recorded (it may have changed shape since it was
   * started), else `nodes` of which `witnesses` are witnesses — recorded then for the next start.
   */
  private static layoutFor(o: ClusterOptions, dataDir: string | null, warnings: string[]): ClusterLayout {
    const recorded = dataDir === null ? null : readLayout(dataDir);
    if (recorded === null) {
      const layout = freshLayout(o.nodes, o.witnesses ?? []);
      if (dataDir !== null) writeLayout(dataDir, layout);
      return layout;
    }
    const ids = recorded.nodes.map((n) => n.id);
    const asked = Array.from({ length: o.nodes }, (_, i) => i + 1);
    if (ids.join(',') !== asked.join(',')) {
      warnings.push(`the data directory ${dataDir} holds nodes ${ids.join(', ')} (its membership changed since it was first started); starting those, whatever --nodes says`);
    }
    return recorded;
  }

  // ---- ClusterBackend ------------------------------------------------------------------------

  status(): ClusterStatus {
    const leader = this.leader();
    const config = this.configView();
    const nodes = [...this.views.values()].map((v): NodeStatus => {
      const state = nodeStateOf(v);
      const member = config === null ? null : roleIn(config, v.id);
      const door = this.clientUrl(v.id);
      if (running(v)) return { id: v.id, status: 'up', ...state, up: true, member, ...door };
      const status = v.up ? 'paused' : 'down';
      return { id: v.id, status, ...state, role: status, up: false, member, last: state, ...door };
    });
    const term = Math.max(0, ...[...this.views.values()].filter(running).map((v) => v.term));
    return {
      leader,
      term,
      nodes,
      members: config === null ? [] : membersOf(config),
      pendingChange: config === null ? null : pendingOf(config),
      network: networkStatus(this.supervisor.ids, (from, to) => this.supervisor.linkPolicy(from, to)),
    };
  }

  hasNode(id: number): boolean {
    return this.views.has(id);
  }

  /** Where node `id` serves clients itself ({} without client ports). */
  clientUrl(id: number): { clientUrl?: string; respUrl?: string } {
    const c = this.options.clientPorts;
    if (c === undefined) return {};
    const at = (host: string | undefined, base: number) => `${(host ?? '127.0.0.1').includes(':') ? `[${host}]` : (host ?? '127.0.0.1')}:${clientPortOf(base, id)}`;
    return {
      ...(c.base !== undefined ? { clientUrl: `http://${at(c.api?.host, c.base)}` } : {}),
      ...(c.respBase !== undefined ? { respUrl: `redis://${at(c.resp?.host, c.respBase)}` } : {}),
    };
  }

  /** Crashes a running or paused node (a paused one dies frozen). */
  async crash(id: number): Promise<void> {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    const st = this.supervisor.status(id).status;
    if (st !== 'up' && st !== 'paused') throw new NodeStateError(`node ${id} is already down; restart it with POST /cluster/nodes/${id}/restart`);
    await this.supervisor.crash(id);
  }

  async restart(id: number): Promise<void> {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    if (this.supervisor.status(id).status === 'paused') throw new NodeStateError(`node ${id} is paused, not down; resume it with POST /cluster/nodes/${id}/resume (or crash it first)`);
    if (this.supervisor.isUp(id)) throw new NodeStateError(`node ${id} is running; crash it first with POST /cluster/nodes/${id}/crash`);
    if (this.options.storage === 'memory') {
      // Raft forbids a node to forget its term, vote and log; a worker's memory dies with it.
      throw new NodeStateError(`node ${id} keeps its log in memory, which died with it; restarting it would let it vote twice and lose acknowledged entries. Start the cluster with --storage wal to restart nodes`);
    }
    await this.supervisor.restart(id);
  }

  // ---- membership ----------------------------------------------------------------------------

  /** The configuration as the leader reported it (or, without a leader, the newest any node reported). */
  members(): ReturnType<typeof membersOf> {
    const config = this.configView();
    return config === null ? [] : membersOf(config);
  }

  /**
   * Spawns a node with a fresh id and adds it in `role`. A voter joins as a learner and is
   * promoted once it has caught up, so the cluster never waits on an empty voter. Answers with the
   * index of the entry that made it a `role`.
   */
  async addMember(role: MemberRole, timeoutMs: number): Promise<{ id: number; index: number }> {
    this.checkRaft('adding members');
    const deadline = Date.now() + timeoutMs;
    this.checkCanAdd();
    await this.checkNoChangePending(deadline);
    const id = maxIdEverUsed(this.layout) + 1;
    await this.spawnNode(id, role);
    let index: number;
    try {
      index = await this.proposeChange({ changes: [{ op: role === 'witness' ? 'add-witness' : 'add-learner', node: id }] }, deadline, `adding node ${id}`);
    } catch (err) {
      // Refused: the node is in no configuration and never will be. Otherwise it may still join.
      if (err instanceof ConflictError) await this.forgetNode(id);
      throw err;
    }
    if (role === 'voter') index = await this.promoteWhenCaughtUp(id, index, deadline);
    return { id, index };
  }

  /** Removes member `id`; answers once the change committed and its worker stopped. */
  async removeMember(id: number, timeoutMs: number): Promise<{ id: number; index: number }> {
    this.checkRaft('removing members');
    const deadline = Date.now() + timeoutMs;
    this.knownNode(id);
    const config = await this.freshConfig(deadline);
    if (roleIn(config, id) === null) {
      // A worker in no configuration (an add that did not complete): nothing to propose.
      await this.forgetNode(id);
      return { id, index: config.membershipIndex };
    }
    const index = await this.proposeChange({ changes: [{ op: 'remove', node: id }] }, deadline, `removing node ${id}`);
    await this.forgetNode(id);
    return { id, index };
  }

  /** Turns learner `id` into a voter; refused (ConflictError) while it lags behind the leader. */
  async promote(id: number, timeoutMs: number): Promise<{ id: number; index: number }> {
    this.checkRaft('promoting learners');
    const deadline = Date.now() + timeoutMs;
    this.knownNode(id);
    const role = roleIn(await this.freshConfig(deadline), id);
    if (role === 'voter') throw new ConflictError(`node ${id} is already a voter`, 'member-state');
    if (role === 'witness') throw new ConflictError(`node ${id} is a witness: it keeps no state machine to promote; add a voter (POST /cluster/members) and remove the witness`, 'member-state');
    if (role === null) throw new ConflictError(`node ${id} is in no configuration yet (its addition did not commit); remove it and add a new member`, 'member-state');
    const index = await this.proposeChange({ changes: [{ op: 'add-voter', node: id }] }, deadline, `promoting node ${id}`);
    return { id, index };
  }

  /** Moves leadership to full voter `to`; answers once `to` leads. */
  async transfer(to: number, timeoutMs: number): Promise<{ leader: number; term: number }> {
    this.checkRaft('leadership transfer');
    const deadline = Date.now() + timeoutMs;
    this.knownNode(to);
    const config = await this.freshConfig(deadline);
    if (!fullVotersOf(config).includes(to)) {
      const role = roleIn(config, to);
      throw new ConflictError(`node ${to} is ${role === null ? 'in no configuration' : `a ${role}`}: only a full voter can lead; promote it first, or pick one of ${fullVotersOf(config).join(', ')}`, 'member-state');
    }
    if (!this.view(to).up) throw new NodeStateError(`node ${to} is down; restart it first with POST /cluster/nodes/${to}/restart`);
    if (this.view(to).paused) throw new NodeStateError(`node ${to} is paused; resume it first with POST /cluster/nodes/${to}/resume`);
    const electionMs = this.options.electionMsMax;
    let askedAt = Number.NEGATIVE_INFINITY;
    while (Date.now() < deadline) {
      this.checkRunning();
      const leader = this.leader();
      if (leader === to) return { leader: to, term: this.view(to).term };
      // The core gives a transfer one election timeout; ask again after that.
      if (leader !== null && Date.now() - askedAt > 2 * electionMs) {
        askedAt = Date.now();
        await this.supervisor.call(leader, 'transferLeadership', [to], Math.max(1, deadline - Date.now())).catch(() => false);
      }
      await sleep(10);
    }
    throw new DeadlineError(`leadership did not move to node ${to} within ${timeoutMs} ms (it may be behind, or cut off from the leader); it is with ${this.leader() === null ? 'no node' : `node ${this.leader()}`}`);
  }

  /** Membership changes and transfers are Raft's: a Multi-Paxos cluster keeps the nodes it started with. */
  private checkRaft(what: string): void {
    if (this.options.protocol === 'multipaxos') throw new ConflictError(`${what} is not available on multipaxos: its nodes are the ones it started with; start the cluster with --protocol raft to change its membership`, 'not-available');
  }

  private checkRunning(): void {
    if (this.stopped) throw new NoLeaderError('the cluster is shutting down');
  }

  private checkCanAdd(): void {
    if (this.options.storage === 'memory') {
      throw new ConflictError('nodes with memory storage keep no snapshots, so a new member could not catch up once the log was compacted; start the cluster with --storage wal to add members', 'storage');
    }
    const max = this.options.nodesMax ?? clusterNodesMax;
    const running = this.supervisor.ids.length;
    if (running >= max) throw new ConflictError(`the cluster runs ${running} nodes, its limit (${max}); remove a member first (DELETE /cluster/members/:id)`, 'node-limit');
    if (maxIdEverUsed(this.layout) >= actorIdMax) throw new ConflictError(`every node id up to ${actorIdMax} has been used (ids are never reused); start a new cluster to add more`, 'node-limit');
  }

  private async checkNoChangePending(deadline: number): Promise<void> {
    const pending = pendingOf(await this.freshConfig(deadline));
    if (pending !== null) {
      const what = pending.joint ? 'the joint configuration is not yet left' : `the change at entry ${pending.index} is not committed yet`;
      throw new ConflictError(`another membership change is pending (${what}; GET /cluster shows it as pendingChange); retry once it has committed`, 'change-pending');
    }
  }

  /** Throws UnknownNodeError unless `id` runs in this cluster (or is stopping). */
  private knownNode(id: number): void {
    if (!this.views.has(id)) throw new UnknownNodeError(id);
  }

  /** The configuration and commit index straight from the leader (status reports may lag a change by a moment). */
  private async freshConfig(deadline: number): Promise<ConfigView> {
    for (;;) {
      this.checkRunning();
      const leader = this.leader();
      if (leader !== null) {
        try {
          return await this.supervisor.call<ConfigView>(leader, 'membership', [], Math.max(1, deadline - Date.now()));
        } catch {
          // It went down or away: look again.
        }
      }
      if (Date.now() >= deadline) throw new NoLeaderError('no leader is elected right now, and only the leader can change the membership; retry shortly');
      await sleep(20);
    }
  }

  /**
   * Proposes `cc` through the leader until it commits: past elections, a leader that has not yet
   * committed in its term, and lost answers (a retry of a change that took effect meanwhile is
   * refused as already done, which counts as done). Throws ConflictError when it cannot be made now.
   */
  private async proposeChange(cc: ConfChange, deadline: number, what: string): Promise<number> {
    let lastWhy = 'no leader was elected';
    let unknown = false;
    for (;;) {
      this.checkRunning();
      const left = deadline - Date.now();
      if (left <= 0) {
        const err = unknown ? new DeadlineError(`${what} was not known to commit in time (${lastWhy}); it may still take effect: check GET /cluster`) : new NoLeaderError(`${what} could not be proposed in time: ${lastWhy}; retry shortly`);
        throw err;
      }
      const leader = this.leader();
      if (leader === null) {
        await sleep(20);
        continue;
      }
      let outcome: ConfChangeOutcome;
      try {
        outcome = await this.supervisor.call<ConfChangeOutcome>(leader, 'changeMembership', [cc], left);
      } catch (err) {
        unknown = true;
        lastWhy = `node ${leader} did not answer (${(err as Error).message})`;
        await sleep(20);
        continue;
      }
      if (outcome.ok) {
        await this.viewReaches(outcome.index, deadline);
        return outcome.index;
      }
      lastWhy = outcome.why;
      if (outcome.lost) {
        unknown = true;
        continue;
      }
      if (unknown && alreadyDone(outcome.why)) return (await this.freshConfig(deadline)).membershipIndex;
      const conflict = refusalError(outcome.why);
      if (conflict !== null) throw conflict;
      await sleep(20);
    }
  }

  /**
   * Waits (until `deadline` at most) for the cluster's view of the configuration to include the
   * change committed at `index`: the node's answer and its status report travel apart, and a
   * caller that reads `members()` (GET /cluster) after a change must see it.
   */
  private async viewReaches(index: number, deadline: number): Promise<void> {
    while ((this.configView()?.membershipIndex ?? 0) < index && Date.now() < deadline) {
      this.checkRunning();
      await sleep(5);
    }
  }

  /** A new learner becomes a voter once it is close enough behind the leader (the core says). */
  private async promoteWhenCaughtUp(id: number, learnerIndex: number, deadline: number): Promise<number> {
    for (;;) {
      try {
        return await this.proposeChange({ changes: [{ op: 'add-voter', node: id }] }, deadline, `promoting node ${id}`);
      } catch (err) {
        if (!(err instanceof ConflictError && err.code === 'learner-behind')) throw err;
        if (Date.now() + 50 >= deadline) {
          throw new DeadlineError(`node ${id} joined as a learner (entry ${learnerIndex}) but had not caught up in time to become a voter; promote it with POST /cluster/members/${id}/promote once it has`);
        }
        await sleep(50);
      }
    }
  }

  /** Starts node `id`'s worker as a joining `role`, recorded in the layout first (a crash then restarts it as a member). */
  private async spawnNode(id: number, role: MemberRole): Promise<void> {
    this.layout.nodes.push({ id, joinAs: role });
    this.saveLayout();
    this.views.set(id, initialView(id, this.layout.first, false));
    const config = nodeConfigFor(this.nodeConfig, this.options, id, role);
    try {
      await this.supervisor.addActor({ id, module: nodeModule, config: config as unknown as Record<string, unknown> });
    } catch (err) {
      await this.forgetNode(id).catch(() => undefined);
      throw new ClusterStartError(`node ${id} could not start: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * A node saw a committed configuration without it (it may have been cut off while it was
   * removed): stop its worker, once the leader agrees it is no member.
   */
  private async onRemovedReport(id: number): Promise<void> {
    try {
      const config = await this.freshConfig(Date.now() + 2_000);
      if (roleIn(config, id) === null) await this.forgetNode(id);
    } catch {
      // No leader to ask now: a removal through the API stops it anyway.
    }
  }

  /** Stops node `id`'s worker for good and forgets it; its id is never used again. */
  private forgetNode(id: number): Promise<void> {
    let done = this.removing.get(id);
    if (done !== undefined) return done;
    if (!this.supervisor.ids.includes(id) && !this.views.has(id)) return Promise.resolve();
    done = (async () => {
      if (this.supervisor.ids.includes(id)) await this.supervisor.removeActor(id);
      this.views.delete(id);
      this.pipeline.nodeLost(id);
      this.layout.nodes = this.layout.nodes.filter((n) => n.id !== id);
      if (!this.layout.removed.includes(id)) this.layout.removed.push(id);
      this.saveLayout();
    })();
    this.removing.set(id, done);
    return done;
  }

  private saveLayout(): void {
    if (this.dataDir !== null && !this.stopped) writeLayout(this.dataDir, this.layout);
  }

  /** The configuration the leader reported, or without one the newest any running node did. */
  private configView(): ConfigView | null {
    const leader = this.leader();
    if (leader !== null) return this.view(leader);
    let best: NodeView | null = null;
    for (const v of this.views.values()) {
      if (!v.up || v.voters.length === 0) continue;
      if (best === null || v.membershipIndex > best.membershipIndex) best = v;
    }
    return best;
  }

  partition(groups: number[][]): void {
    this.supervisor.partition(groups);
  }

  /** The network whole again: no partition, cut or isolation, and no link faults. Paused nodes stay paused. */
  heal(): void {
    this.supervisor.clearFaults();
  }

  async pause(id: number): Promise<void> {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    const st = this.supervisor.status(id).status;
    if (st === 'paused') throw new NodeStateError(`node ${id} is already paused; resume it with POST /cluster/nodes/${id}/resume`);
    if (st !== 'up') throw new NodeStateError(`node ${id} is ${st === 'starting' ? 'starting' : 'down'}; only a running node can be paused`);
    await this.supervisor.pause(id);
  }

  resume(id: number): void {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    const st = this.supervisor.status(id).status;
    if (st !== 'paused') throw new NodeStateError(`node ${id} is not paused (it is ${st === 'up' ? 'running' : 'down'})`);
    this.supervisor.resume(id);
  }

  /** Cuts every link to and from `id`, on top of any partition (heal undoes it). */
  isolate(id: number): void {
    if (!this.hasNode(id)) throw new UnknownNodeError(id);
    const others = this.supervisor.ids.filter((x) => x !== id);
    if (others.length === 0) return;
    this.supervisor.cut([id], others);
    this.supervisor.cut(others, [id]);
  }

  cut(from: number[], to: number[]): void {
    for (const id of [...from, ...to]) if (!this.hasNode(id)) throw new UnknownNodeError(id);
    this.supervisor.cut(from, to);
  }

  setFaults(faults: Partial<LinkFaultSettings>, scope: { from?: number[]; to?: number[] }): void {
    for (const id of [...(scope.from ?? []), ...(scope.to ?? [])]) if (!this.hasNode(id)) throw new UnknownNodeError(id);
    this.supervisor.setFaults(faults, scope);
  }

  /** Clears loss, delay, jitter, duplication and reordering on every link; cuts stay. */
  clearFaults(): void {
    this.supervisor.setFaults({ loss: 0, delayMs: 0, jitterMs: 0, duplicate: 0, reorder: 0 });
  }

  /**
   * Every runtime event (per-link metrics included) and every node's own events, the latter
   * flattened with the node's id. The HTTP API gives them one public shape (apps/http/event-shape.ts).
   */
  events(): Observable<ClusterEvent> {
    return this.supervisor.events$.pipe(map((e) => (e.type === 'actor' ? { ...e.event, type: e.event.type, node: e.id, at: e.at } : (e as unknown as ClusterEvent))));
  }

  /** Refuses at once a request that names a node to go through when that node does not run. */
  private checkVia(via: number | undefined): BackendError | null {
    if (via === undefined) return null;
    const v = this.views.get(via);
    if (v === undefined) return new UnknownNodeError(via);
    if (!v.up) return new NodeDownError(`node ${via} is down; restart it with POST /cluster/nodes/${via}/restart, or ask another node`);
    if (v.paused) return new NodeDownError(`node ${via} is paused; resume it with POST /cluster/nodes/${via}/resume, or ask another node`, true);
    return null;
  }

  /**
   * Why nothing can commit through `node` (null: through any node), naming the cause: too few
   * voters running (which are down, which paused), the node itself not running, or a partition
   * or cut between it and a majority. Null when a majority is within its reach.
   */
  private whyStuck(node: number | null): BackendError | null {
    const config = this.configView();
    const voters = (config === null ? [...this.views.keys()] : [...new Set([...config.voters, ...config.outgoing])]).sort((a, b) => a - b);
    const need = Math.floor(voters.length / 2) + 1;
    const down = voters.filter((id) => this.views.get(id)?.up !== true);
    const paused = voters.filter((id) => this.views.get(id)?.up === true && this.views.get(id)!.paused);
    const live = voters.filter((id) => running(this.views.get(id)));
    const out = [
      down.length > 0 ? `${nodeList(down)} ${down.length === 1 ? 'is' : 'are'} down` : '',
      paused.length > 0 ? `${nodeList(paused)} ${paused.length === 1 ? 'is' : 'are'} paused` : '',
    ].filter((x) => x !== '');
    const fix = [down.length > 0 ? 'restart (POST /cluster/nodes/:id/restart)' : '', paused.length > 0 ? 'resume (POST /cluster/nodes/:id/resume)' : ''].filter((x) => x !== '').join(' or ');
    if (live.length < need) {
      return new NoQuorumError(`only ${live.length} of the ${voters.length} voters run (${out.join(', ')}); a majority (${need}) is needed to elect a leader and commit: ${fix} enough of them`);
    }
    const reachFrom = (id: number) => live.filter((v) => this.reachable(id, v));
    if (node !== null) {
      const v = this.views.get(node);
      if (v !== undefined && !running(v)) return new NodeDownError(`node ${node} is ${v.up ? 'paused' : 'down'}`, v.up);
      const reach = reachFrom(node);
      if (reach.length >= need) return null;
      const cutOff = live.filter((id) => !reach.includes(id));
      const also = out.length > 0 ? `, and ${out.join(', ')}` : '';
      return new NoQuorumError(`node ${node} reaches only ${reach.length} of the ${voters.length} voters (a majority is ${need}): a partition or cut separates it from ${nodeList(cutOff)}${also}; heal the network (POST /cluster/heal)`);
    }
    if (live.some((id) => reachFrom(id).length >= need)) return null;
    const p = networkStatus(this.supervisor.ids, (from, to) => this.supervisor.linkPolicy(from, to)).partition;
    const shape = p === null ? 'cuts' : `partition ${JSON.stringify(p)}`;
    return new NoQuorumError(`no node can reach a majority (${need}) of the ${voters.length} voters: the network is split (${shape}); heal it (POST /cluster/heal)`);
  }

  /**
   * Proposes a command and resolves once it is applied. `via` sends it through one node, as a
   * client connected to that node would (it reaches the leader only over links that are up).
   */
  submit(command: Uint8Array, timeoutMs: number, opts: { via?: number } = {}): Promise<{ index: number; result: Uint8Array }> {
    const refused = this.checkVia(opts.via);
    if (refused !== null) return Promise.reject(refused);
    return this.pipeline.submit(command, timeoutMs, opts.via ?? null);
  }

  /** submit straight to the leader, told to `waiter` instead of a promise (the front doors' hot path). */
  submitTo(command: Uint8Array, timeoutMs: number, waiter: WriteWaiter): void {
    this.pipeline.submitTo(command, timeoutMs, null, waiter);
  }

  /**
   * Reads `key` by one of the local read paths (a `log` read is a `submit` of a get command).
   * `via` picks the node a follower or stale read is served by (default: spread over the nodes).
   */
  read(key: string, mode: LocalReadMode, timeoutMs: number, opts: { via?: number; app?: string } = {}): Promise<LocalReadResult> {
    if (this.options.protocol === 'multipaxos' && !paxosReadModes.includes(mode)) {
      const err = new ConflictError(`read=${mode} is not available on multipaxos (its leader holds no lease); use read=index (the default), follower, log or stale`, 'read-mode-unavailable');
      err.definitelyNotApplied = true;
      return Promise.reject(err);
    }
    const refused = this.checkVia(opts.via);
    if (refused !== null) return Promise.reject(refused);
    return this.pipeline.read({ key, app: opts.app }, mode, timeoutMs, opts.via ?? null);
  }

  /** read of a key by the leader's or any node's read path (no `via`), told to `waiter`. */
  readTo(key: string, mode: LocalReadMode, timeoutMs: number, waiter: ReadWaiter): void {
    if (this.options.protocol === 'multipaxos' && !paxosReadModes.includes(mode)) {
      this.read(key, mode, timeoutMs).catch((err: Error) => waiter.readDone(err, null));
      return;
    }
    this.pipeline.readTo({ key, app: undefined }, mode, timeoutMs, null, waiter);
  }

  /** What the pipeline sees of the cluster: the nodes' reported views and the supervisor's links. */
  private routing(): PipelineRouting {
    return {
      leader: () => this.leader(),
      leaderSeenBy: (via) => {
        const v = this.views.get(via);
        if (v === undefined) return null;
        return v.role === Role.leader ? via : v.leader || null;
      },
      isUp: (id) => running(this.views.get(id)),
      reachable: (a, b) => this.reachable(a, b),
      hasQuorum: (id) => this.hasQuorum(id),
      whyStuck: (node) => this.whyStuck(node),
      readNodes: () => {
        // Witnesses keep no state machine, and a node in no configuration yet holds nothing to read.
        const config = this.configView();
        return [...this.views.values()].filter((v) => running(v) && (config === null || (roleIn(config, v.id) ?? 'witness') !== 'witness')).map((v) => v.id);
      },
      send: (to, frame) => this.supervisor.sendFrame(to, frame),
    };
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pipeline.stop();
    await this.supervisor.stop();
    for (const s of this.subscriptions) s.unsubscribe();
    this.dataDirLock?.release();
    if (this.removeDataDirAtStop && this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The node every up node's view agrees leads the highest term, if any. */
  leader(): number | null {
    let best: NodeView | null = null;
    for (const v of this.views.values()) {
      if (!running(v) || v.role !== Role.leader) continue;
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

  /** Whether `id` can exchange messages with a majority of the voters that are up (itself included). */
  private hasQuorum(id: number): boolean {
    const config = this.configView();
    const voters = config === null ? [...this.views.keys()] : [...new Set([...config.voters, ...config.outgoing])];
    let reach = 0;
    for (const v of voters) if (running(this.views.get(v)) && this.reachable(id, v)) reach++;
    return reach * 2 > voters.length;
  }

  private onNodeMessage(from: number, m: FromNode): void {
    if (m.t === 'status') this.updateView(from, m);
  }

  get protocol(): ClusterProtocol {
    return this.options.protocol ?? 'raft';
  }

  /**
   * What the dashboard draws (apps/dashboard/feed.ts): every node's last report as reported
   * (a down node's last known state, marked down), with the leader's view of its followers.
   */
  live(): LiveNode[] {
    return [...this.views.values()].map((v) => liveNodeOf(v, this.protocol));
  }

  /** Messages nodes reported sending since the last call (one reader: the dashboard's feed). */
  takeTraffic(): TrafficCount[] {
    return this.traffic.take();
  }

  /** Observes every answered write's latency (ms); null stops. The dashboard's, while watched. */
  observeWriteLatency(observer: ((ms: number) => void) | null): void {
    this.pipeline.onWriteDone = observer;
  }

  private updateView(id: number, s: StatusReport): void {
    // A report may trail its node's removal.
    const v = this.views.get(id);
    if (v === undefined) return;
    this.traffic.add(id, s.sent);
    const wasLeader = v.role === Role.leader;
    const { t: _t, ...report } = s;
    Object.assign(v, report);
    if (wasLeader && s.role !== Role.leader) {
      // Proposals held by a deposed leader may never commit: look for the new leader. A retry is
      // safe (the session table applies a command at most once).
      this.pipeline.nodeLost(id);
    }
  }
}

export { roleName };

/** Node `id`'s client port (ClusterOptions.clientPorts). */
export function clientPortOf(base: number, id: number): number {
  return base + id - 1;
}

function checkOptions(o: ClusterOptions): void {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > clusterNodesMax) {
    throw new ClusterConfigError(`a cluster needs from 1 to ${clusterNodesMax} nodes, got ${o.nodes}`);
  }
  if (o.nodesMax !== undefined && !(Number.isInteger(o.nodesMax) && o.nodesMax >= o.nodes && o.nodesMax <= actorIdMax)) {
    throw new ClusterConfigError(`nodesMax must be a whole number from the node count (${o.nodes}) to ${actorIdMax}, got ${o.nodesMax}`);
  }
  const w = o.witnesses ?? [];
  if (o.clientPorts !== undefined) {
    const { base, respBase } = o.clientPorts;
    if (base === undefined && respBase === undefined) throw new ClusterConfigError('clientPorts needs a base (HTTP), a respBase (Redis protocol) or both');
    for (const b of [base, respBase]) {
      if (b !== undefined && (!Number.isInteger(b) || b < 1 || b + o.nodes - 1 > 65_535)) {
        throw new ClusterConfigError(`client ports run from the base to base + nodes - 1 and must be 1 to 65535: base ${b} with ${o.nodes} nodes does not fit`);
      }
    }
    if (base !== undefined && respBase !== undefined && Math.abs(base - respBase) < o.nodes) throw new ClusterConfigError(`the HTTP client ports (from ${base}) and the Redis ones (from ${respBase}) overlap for ${o.nodes} nodes`);
    if (o.protocol === 'multipaxos') throw new ClusterConfigError('client ports on the nodes are served by Raft nodes only; drop --client-ports or use --protocol raft');
  }
  if (o.protocol !== undefined && !(clusterProtocols as readonly string[]).includes(o.protocol)) {
    throw new ClusterConfigError(`protocol must be one of ${clusterProtocols.join(', ')}, got ${String(o.protocol)}`);
  }
  if (o.protocol === 'multipaxos') {
    if (w.length > 0) throw new ClusterConfigError('witnesses are a Raft feature; a Multi-Paxos cluster has no witnesses (drop --witnesses or use --protocol raft)');
    if (o.unsafe !== undefined) throw new ClusterConfigError('unsafe Raft mutations cannot be set on a Multi-Paxos cluster');
    for (const k of ['inflightMax', 'batchMax'] as const) {
      const v = o.paxos?.[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new ClusterConfigError(`paxos ${k} must be a whole number ≥ 1, got ${v}`);
    }
  }
  for (const id of w) {
    if (!Number.isInteger(id) || id < 1 || id > o.nodes) throw new ClusterConfigError(`witnesses are node ids from 1 to ${o.nodes}, got ${id}`);
  }
  if (new Set(w).size !== w.length) throw new ClusterConfigError(`witnesses lists a node twice: ${w.join(', ')}`);
  if (w.length >= o.nodes) throw new ClusterConfigError(`at least one node must be a full voter (not a witness), got witnesses ${w.join(', ')} of ${o.nodes} nodes`);
  if (o.compactEntries !== undefined && !(Number.isInteger(o.compactEntries) && o.compactEntries >= 0)) {
    throw new ClusterConfigError(`compactEntries must be a whole number ≥ 0 (0: never compact), got ${o.compactEntries}`);
  }
  try {
    checkSnapshotSettings({ ...snapshotSettingsDefault, ...(o.snapshot ?? {}) });
  } catch (err) {
    throw new ClusterConfigError((err as Error).message);
  }
}

/** Node `id`'s own configuration: the shared one, plus its slow disk and, for an added node, the part it joins as. */
function nodeConfigFor(base: NodeConfig, o: ClusterOptions, id: number, joinAs: MemberRole | undefined): NodeConfig {
  let c = base;
  const delay = o.syncDelayMs?.[id];
  if (delay !== undefined) c = { ...c, syncDelayMs: delay };
  if (joinAs !== undefined) c = { ...c, joining: true, joinAs };
  const cp = o.clientPorts;
  if (cp?.base !== undefined) c = { ...c, door: { ...cp.api, port: clientPortOf(cp.base, id) } };
  if (cp?.respBase !== undefined) c = { ...c, respDoor: { ...cp.resp, port: clientPortOf(cp.respBase, id) } };
  return c;
}
