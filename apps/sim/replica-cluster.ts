// Whole replicas under the deterministic simulator: each node is the real NodeHost started by the
// real start-up code (node-start.ts) over the real WAL and snapshot store on a simulated disk
// (SimFs), with a drifting clock, fsyncs that take virtual time, stalls (pauses), crashes that
// keep only what was durable (sometimes a torn tail, once in a while a corrupted old record),
// and KV clients using every read mode. Every effect of a step (a message, a reply, what the
// checkers see) happens at the virtual time the step reached when it was made, so a crash in the
// middle of an fsync undoes exactly what came after it.
import { createRng, type Rng } from '../../runtime/rng.ts';
import { SimFs } from '../../runtime/storage/sim-fs.ts';
import { walRecordOffsets } from '../../runtime/storage/wal.ts';
import { formatMessage, Role, roleName, type Entry, type RaftMutations, type RaftSettings } from '../../protocols/raft/index.ts';
import { decodeControl, decodeRaft, frameKind, FrameKind, ProposeFrameWriter, proposeStartsStream, proposeWantsResults } from '../cluster/wire.ts';
import { decodeReadAnswers, encodeReads, readResults, ReadStatus } from '../cluster/client-wire.ts';
import type { ClusterOptions, SimCluster, SimEnv } from '../../protocols/sim/protocol.ts';
import { startNode, type StartedNode } from '../cluster/node-start.ts';
import type { HostMutations, NodeConfig } from '../cluster/node-config.ts';
import type { FromNode } from '../cluster/protocol.ts';
import type { NodeObserver } from '../cluster/node-host.ts';
import { decodeCommand, encodeCommand, textBytes } from '../kv/commands.ts';
import type { KvObservation, ReplicaObservation } from './replica-checks.ts';
import type { LocalReadMode } from '../http/backend.ts';
import { pickTrap, trapFits, trapNeeds, Traps } from './traps.ts';

/** A frame on the simulated network. */
export interface ReplicaMessage {
  readonly from: number;
  readonly to: number;
  readonly frame: Uint8Array;
}

/** Deliberate bugs: in the core (RaftMutations) or in the node host (HostMutations). */
export const replicaMutations: Record<string, { raft?: RaftMutations; host?: HostMutations }> = {
  'ack-before-sync': { host: { ackBeforeSync: true } },
  'serve-before-apply': { host: { serveBeforeApply: true } },
  'release-all-read-rounds': { raft: { releaseAllReadRounds: true } },
  'vote-amnesia': { raft: { voteAmnesia: true } },
  'lease-survives-transfer': { raft: { leaseSurvivesTransfer: true } },
  'heartbeat-reply-before-persist': { raft: { heartbeatReplyBeforePersist: true } },
  'vote-twice': { raft: { voteTwicePerTerm: true } },
  'no-election-restriction': { raft: { ignoreElectionRestriction: true } },
  'read-without-quorum': { raft: { readWithoutQuorum: true } },
  'lease-ignores-acks': { raft: { leaseIgnoresAcks: true } },
  'lease-too-long': { raft: { leaseTooLong: true } },
  'commit-previous-term': { raft: { commitPreviousTermByCount: true } },
  /** The same bug with the election no-op removed, which otherwise hides it almost always. */
  'commit-previous-term-no-noop': { raft: { commitPreviousTermByCount: true, skipLeaderNoop: true } },
  /** Control: the no-op alone removed is safe (it may cost liveness, never safety). */
  'no-noop': { raft: { skipLeaderNoop: true } },
};

const nodeDir = '/node';
/** The engine's own commands (liveness) go to one key under one client id: a small state. */
const engineClient = 'engine';
const engineKey = 'engine';
const workloadKeys = ['a', 'b', 'c', 'd'];
const readModes: LocalReadMode[] = ['index', 'lease', 'follower', 'stale'];
/** Clients speak the client pipeline's frames (client-wire.ts) as actor 0: the engine on stream 0, client c on c + 1, traps on the last. */
const clientActor = 0;
const engineStream = 0;
const trapStream = 255;

/** What a simulated client sends: one command of its stream (seq), or a read of one key. */
type SimRequest = { t: 'propose'; data: Uint8Array; stream: number; seq: number } | { t: 'read'; mode: LocalReadMode; key: string };

const frameWriter = new ProposeFrameWriter(1, 1 << 20);

/**
 * The frame for a request; a read's batch id is the operation's id. Each send starts its stream
 * afresh: a simulated client resends one operation wherever it likes (a duplicate is the session
 * table's to answer), and the engine's commands are independent of each other.
 */
function requestFrame(r: SimRequest, id: number, flags = proposeWantsResults | proposeStartsStream): Uint8Array {
  if (r.t === 'read') return encodeReads(id, r.mode, [{ key: r.key, app: undefined }]);
  frameWriter.begin(r.seq, flags, r.stream);
  frameWriter.bytes.set(r.data, frameWriter.add(r.data.length));
  return frameWriter.finish().slice();
}

interface ReplicaNode {
  readonly id: number;
  readonly fs: SimFs;
  started: StartedNode | null;
  incarnation: number;
  /** Local clock = offset + rate × virtual time. */
  readonly rate: number;
  readonly offset: number;
  /** Virtual ms into the current step (fsyncs advance it). */
  elapsed: number;
  /** The node's thread is busy (a step's fsyncs) or stalled (a pause) until then. */
  busyUntil: number;
  pausedUntil: number;
  /** Effects of its last step (sends, observations) not yet out; the next step waits for them. */
  effectsPending: number;
  inbox: ReplicaMessage[];
  drainAt: number;
  /** Set when the node refused to start (it stays down): what it said. */
  refused: string | null;
  /** A latent corruption was put on its disk (a refusal is then expected, not a bug). */
  corrupted: boolean;
  /** The next fsync takes this long (a trap's slow disk), then back to the seed's profile. */
  nextSyncMs: number | null;
  lastRole: number;
  lastTerm: number;
}

/** One client operation in flight. */
interface ClientOp {
  readonly client: number;
  readonly id: number;
  readonly op: 'put' | 'get' | 'cas' | 'delete';
  readonly mode: LocalReadMode | 'log';
  readonly key: string;
  readonly request: SimRequest;
  /** The client's sequence number (writes and log reads: resends keep it). */
  readonly seq: number;
  readonly invokedAt: number;
  /** What the checkers knew was committed when the operation was invoked. */
  /** Sends so far: a timer or an answer acts only on the latest one. */
  attempt: number;
  deadline: number;
}

export interface ReplicaSettings {
  raft: Partial<RaftSettings>;
  snapshotEntries: number;
  catchUpEntries: number;
  /** Virtual ms per fsync, at most (outliers aside). */
  diskMsMax: number;
  /** Clock rates lie within 1 ± this (the drift a lease must absorb). */
  driftMax: number;
  pauseChance: number;
  tornChance: number;
  /** Chance that a restart finds an old WAL record corrupted (at most one node per run). */
  corruptChance: number;
  clients: number;
}

export class ReplicaSimCluster implements SimCluster<ReplicaMessage> {
  private readonly nodes = new Map<number, ReplicaNode>();
  private readonly settings: ReplicaSettings;
  private readonly config: NodeConfig;
  private readonly rng: Rng;
  private readonly clientRng: Rng;
  private topCommit = 0;
  private topTerm = 0;
  private healed = false;
  private corruptionDone = false;
  private nextRequestId = 1;
  private readonly ops = new Map<number, ClientOp>();
  private readonly clientSeqs: number[];
  private readonly clientBusy: boolean[];
  /** Operations in flight by stream and seq (writes, whose answers name them so). */
  private readonly bySeq = new Map<number, ClientOp>();
  private readonly traps: Traps;
  /** A trap holds the workload: clients start nothing new. */
  private quietWorkload = false;
  private trapSeq = 0;
  /** Completion callbacks of trap operations, by request id. */
  private readonly trapDone = new Map<number, (ok: boolean) => void>();
  private readonly counts = {
    puts: 0,
    gets: 0,
    cas: 0,
    deletes: 0,
    reads: 0,
    staleReads: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    refusedStarts: 0,
    tornCrashes: 0,
    corruptions: 0,
    pauses: 0,
  };

  constructor(
    readonly nodeIds: readonly number[],
    private readonly env: SimEnv<ReplicaMessage, ReplicaObservation>,
    fixed: Partial<RaftSettings>,
    options: ClusterOptions,
  ) {
    const r = createRng(env.nodeSeed(0, 0));
    this.rng = createRng(env.nodeSeed(0, 2));
    this.clientRng = createRng(env.nodeSeed(0, 3));
    const mutation = options.mutation === undefined ? undefined : replicaMutations[options.mutation];
    if (options.mutation !== undefined && mutation === undefined) {
      throw new RangeError(`unknown replica mutation "${options.mutation}" (known: ${Object.keys(replicaMutations).join(', ')})`);
    }
    // At most one directed scenario per seed (its own stream: arming it shifts no other draw).
    const trapRng = createRng(env.nodeSeed(0, 5));
    const trap = pickTrap(trapRng, nodeIds.length);
    // Commits told at once (etcd-raft's way) or deferred (the default), half the seeds each; its
    // own stream too, so a seed that tells at once runs as every seed did before the choice existed.
    const deferCommitNotice = createRng(env.nodeSeed(0, 6)).chance(0.5);
    this.settings = {
      raft: {
        preVote: r.chance(0.8),
        checkQuorum: r.chance(0.8),
        electionTicks: 10,
        heartbeatTicks: r.chance(0.8) ? 1 : 3,
        inflightMax: [2, 8, 256][r.int(0, 3)]!,
        batchEntriesMax: [2, 16, 64][r.int(0, 3)]!,
        leaseDriftTicks: 2,
        deferCommitNotice,
        ...(trap === null ? {} : trapNeeds[trap]),
        ...fixed,
      },
      snapshotEntries: [0, 5, 20, 60][r.int(0, 4)]!,
      catchUpEntries: [0, 3, 10][r.int(0, 3)]!,
      diskMsMax: r.int(0, 4),
      // Within what the lease assumes: over an election timeout (10 ticks) two clocks part by
      // less than one tick, the margin left beside the tick phase skew.
      driftMax: [0, 0.01, 0.03][r.int(0, 3)]!,
      pauseChance: r.chance(0.5) ? 0.1 : 0,
      tornChance: r.chance(0.5) ? 0.5 : 0,
      corruptChance: r.chance(0.3) ? 0.2 : 0,
      clients: 4,
    };
    this.config = {
      tickMs: 10,
      raft: this.settings.raft,
      storage: 'wal',
      fsync: 'batch',
      statusEveryMs: 1_000,
      seed: env.nodeSeed(0, 4),
      app: 'kv',
      apps: ['kv'],
      snapshot: { entries: this.settings.snapshotEntries, catchUpEntries: this.settings.catchUpEntries, retainEntriesMax: Math.max(40, this.settings.catchUpEntries) },
      // Small chunks: a snapshot transfer takes several round trips, losses included.
      transfer: { chunkBytes: 512, inflightBytesMax: 2048, resendMs: 60, timeoutMs: 600 },
      walSegmentBytesMax: 4096,
      logChunkBytes: 16 * 1024,
      ...(mutation?.raft ? { unsafe: mutation.raft } : {}),
      ...(mutation?.host ? { hostUnsafe: mutation.host } : {}),
    };
    if (env.tracing) env.trace(`   replica settings: ${JSON.stringify(this.settings)}`);
    this.clientSeqs = Array.from({ length: this.settings.clients }, () => 0);
    this.clientBusy = Array.from({ length: this.settings.clients }, () => false);
    for (const id of nodeIds) {
      const rate = 1 + (r.next() * 2 - 1) * this.settings.driftMax;
      const n: ReplicaNode = {
        id,
        fs: null as unknown as SimFs,
        started: null,
        incarnation: 0,
        rate,
        offset: r.int(0, 10_000),
        elapsed: 0,
        busyUntil: 0,
        effectsPending: 0,
        pausedUntil: 0,
        inbox: [],
        drainAt: -1,
        refused: null,
        corrupted: false,
        nextSyncMs: null,
        lastRole: -1,
        lastTerm: 0,
      };
      (n as { fs: SimFs }).fs = new SimFs({
        clock: { now: () => this.env.now() + n.elapsed, advance: (ms) => (n.elapsed += ms) },
        syncDelayMs: () => {
          const forced = n.nextSyncMs;
          n.nextSyncMs = null;
          return forced ?? this.diskDelay();
        },
      });
      n.fs.mkdirSync(nodeDir, { recursive: true });
      this.nodes.set(id, n);
      this.start(n);
    }
    this.traps = new Traps(
      {
        ids: nodeIds,
        rng: trapRng,
        now: () => this.env.now(),
        after: (ms, run) => this.env.after(ms, '', run),
        links: env.links,
        leader: () => this.leader(),
        isLeader: (id) => this.node(id).started?.host.raft.currentRole === Role.leader,
        commitOf: (id) => this.node(id).started?.host.raft.commitIndex ?? 0,
        lastOf: (id) => this.node(id).started?.host.raft.lastIndex ?? 0,
        termOf: (id) => this.node(id).started?.host.raft.currentTerm ?? 0,
        isUp: (id) => this.node(id).started !== null,
        crash: (id) => this.crash(id),
        restart: (id) => this.restart(id),
        transfer: (from, to) => this.transfer(from, to),
        campaign: (id) => {
          const n = this.node(id);
          this.stepNode(n, () => void n.started!.host.campaign());
        },
        slowNextSync: (id, ms) => (this.node(id).nextSyncMs = ms),
        quiet: (on) => (this.quietWorkload = on),
        write: (node, key, done) => this.trapOp(node, { op: 'put', key }, done),
        read: (node, mode, key) => this.trapOp(node, { op: 'get', mode, key }, () => {}),
        note: (line) => {
          if (this.env.tracing) this.env.trace(`   ${line}`);
        },
      },
      trapFits(trap, this.settings.raft),
      options.faultPhaseMs ?? 4_000,
    );
    for (let c = 0; c < this.settings.clients; c++) this.env.after(this.clientRng.int(1, 50), '~client', () => this.clientNext(c));
    if (this.settings.pauseChance > 0) this.env.after(this.rng.int(50, 500), '~pause', () => this.maybePause());
  }

  private diskDelay(): number {
    const max = this.settings.diskMsMax;
    // Now and then a slow fsync (a busy disk, a journal flush).
    if (max > 0 && this.rng.chance(0.01)) return this.rng.int(20, 100);
    return max === 0 ? 0 : this.rng.int(0, max + 1);
  }

  private node(id: number): ReplicaNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** The node's local clock at the current point of its step. */
  private localNow(n: ReplicaNode): number {
    return n.offset + n.rate * (this.env.now() + n.elapsed);
  }

  /** An effect of the current step, at the virtual time the step has reached; lost if the node crashes first. */
  private effect(n: ReplicaNode, run: () => void): void {
    if (n.elapsed === 0) {
      run();
      return;
    }
    const inc = n.incarnation;
    n.effectsPending++;
    this.env.after(n.elapsed, '', () => {
      if (n.incarnation !== inc) return;
      n.effectsPending--;
      if (n.started !== null) run();
    });
  }

  private observe(n: ReplicaNode, o: ReplicaObservation): void {
    this.effect(n, () => this.env.observe(o));
  }

  // ---- starting and stepping nodes -------------------------------------------------------

  private start(n: ReplicaNode): void {
    n.incarnation++;
    n.elapsed = 0;
    const inc = n.incarnation;
    const observer: NodeObserver = {
      ready: (rd) => this.observe(n, { kind: 'ready', node: n.id, raft: n.started!.host.raft, ready: rd }),
      applied: (index, term, kind, bytes, start, end) => {
        const entry: Entry = { index, term, kind: kind as Entry['kind'], data: bytes.slice(start, end) };
        this.observe(n, { kind: 'apply', node: n.id, entry });
        if (kind === 0) this.onApplied(n, index, entry.data);
      },
      snapshotTaken: (index, digest) => {
        this.counts.snapshotsTaken++;
        this.observe(n, { kind: 'kv-digest', node: n.id, index, digest, how: 'taken' });
      },
      snapshotInstalled: (index, term, digest) => {
        this.counts.snapshotsInstalled++;
        this.observe(n, { kind: 'snapshot-installed', node: n.id, index, term });
        this.observe(n, { kind: 'kv-digest', node: n.id, index, digest, how: 'installed' });
      },
    };
    try {
      n.started = startNode({
        self: n.id,
        peers: this.nodeIds.filter((id) => id !== n.id),
        incarnation: inc,
        config: this.config,
        dir: nodeDir,
        fs: n.fs,
        io: {
          now: () => this.localNow(n),
          sendFrame: (to, frame) => {
            const copy = frame.slice();
            if (to === clientActor) this.effect(n, () => this.onClientFrame(n.id, copy));
            else this.effect(n, () => this.env.send({ from: n.id, to, frame: copy }));
          },
          reply: (m) => this.effect(n, () => this.onReply(n.id, m)),
          emit: () => {},
        },
        observer,
        snapshotSchedule: (done) => {
          const at = this.env.now() + n.elapsed + this.diskDelay() + 1;
          this.env.after(at - this.env.now(), '', () => {
            if (n.incarnation === inc && n.started !== null) this.stepNode(n, () => done());
          });
        },
        warn: (line) => {
          if (this.env.tracing) this.env.trace(`   n${n.id}: ${line}`);
        },
      });
    } catch (err) {
      n.started = null;
      n.refused = (err as Error).message;
      this.counts.refusedStarts++;
      if (this.env.tracing) this.env.trace(`   n${n.id} refuses to start: ${n.refused.split('\n')[0]}`);
      // Refusing is right only for a disk we damaged; anything else is a bug in recovery.
      if (!n.corrupted) throw new Error(`n${n.id} refused to start from an undamaged disk: ${n.refused}`);
      return;
    }
    const host = n.started.host;
    n.lastRole = host.raft.currentRole;
    n.lastTerm = host.raft.currentTerm;
    n.busyUntil = this.env.now() + n.elapsed;
    n.elapsed = 0;
  }

  /** Runs `body` on the node's thread now, or when it is free (a busy step, a pause). */
  private stepNode(n: ReplicaNode, body: () => void): void {
    if (n.started === null) return;
    const free = Math.max(n.busyUntil, n.pausedUntil);
    // An event due the moment the last step ends (a tick queued earlier) must not overtake that
    // step's own effects: they were queued first, so waiting 0 ms puts it behind them.
    if (this.env.now() < free || n.effectsPending > 0) {
      const inc = n.incarnation;
      this.env.after(Math.max(0, free - this.env.now()), '', () => {
        if (n.incarnation === inc) this.stepNode(n, body);
      });
      return;
    }
    n.elapsed = 0;
    body();
    this.afterStep(n);
  }

  private afterStep(n: ReplicaNode): void {
    const raft = n.started!.host.raft;
    if (raft.currentTerm !== n.lastTerm) this.traps.onTerm(n.id, n.lastTerm, raft.currentTerm, n.elapsed);
    if (raft.commitIndex > this.topCommit) this.topCommit = raft.commitIndex;
    if (raft.currentTerm > this.topTerm) this.topTerm = raft.currentTerm;
    if (this.env.tracing && (raft.currentRole !== n.lastRole || raft.currentTerm !== n.lastTerm)) {
      this.env.trace(`   n${n.id} is now ${roleName[raft.currentRole]} in term ${raft.currentTerm}`);
    }
    n.lastRole = raft.currentRole;
    n.lastTerm = raft.currentTerm;
    this.observe(n, { kind: 'step', node: n.id, raft });
    n.busyUntil = this.env.now() + n.elapsed;
    n.elapsed = 0;
  }

  isUp(node: number): boolean {
    return this.node(node).started !== null;
  }

  tick(node: number): void {
    const n = this.node(node);
    this.stepNode(n, () => n.started!.host.tick());
  }

  deliver(msg: ReplicaMessage): void {
    const n = this.node(msg.to);
    if (n.started === null) return;
    n.inbox.push(msg);
    // Frames that arrive together (or while the thread was busy) are drained as one batch.
    const at = Math.max(this.env.now(), n.busyUntil, n.pausedUntil);
    if (n.drainAt >= 0 && n.drainAt <= at) return;
    n.drainAt = at;
    const inc = n.incarnation;
    this.env.after(at - this.env.now(), '', () => {
      if (n.incarnation !== inc) return;
      n.drainAt = -1;
      this.stepNode(n, () => {
        const host = n.started!.host;
        const batch = n.inbox;
        n.inbox = [];
        host.beforeBatch();
        for (const m of batch) host.onFrame(m.from, m.frame, 0, m.frame.length);
        host.process();
      });
    });
  }

  propose(node: number, command: Uint8Array): boolean {
    const n = this.node(node);
    if (n.started === null || n.started.host.raft.currentRole !== Role.leader) return false;
    // A trap holds every workload, the engine's too (it retries later).
    if (this.quietWorkload) return false;
    // The engine's command (its id in the first 4 bytes) as a put under the engine's session.
    const seq = new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(0);
    const data = encodeCommand({ op: 'put', clientId: engineClient, seq, key: engineKey, value: command }).slice();
    // Acks only: the engine follows commits through `applied`, not answers.
    this.clientSend(n, requestFrame({ t: 'propose', data, stream: engineStream, seq }, 0, proposeStartsStream));
    return true;
  }

  transfer(node: number, to: number): boolean {
    const n = this.node(node);
    if (n.started === null) return false;
    let ok = false;
    this.stepNode(n, () => (ok = n.started!.host.transferLeadership(to)));
    return ok;
  }

  crash(node: number): void {
    const n = this.node(node);
    if (n.started === null) return;
    const torn = this.settings.tornChance > 0 ? { rng: this.rng, chance: this.settings.tornChance } : undefined;
    // Whatever the node's last step did after this moment (an fsync still running) never happened.
    const { tornFiles } = n.fs.crash(this.env.now(), torn);
    if (tornFiles.length > 0) this.counts.tornCrashes++;
    n.started = null;
    n.incarnation++;
    n.inbox = [];
    n.drainAt = -1;
    n.busyUntil = 0;
    n.pausedUntil = 0;
    n.effectsPending = 0;
    this.env.observe({ kind: 'crash', node });
    if (this.env.tracing && tornFiles.length > 0) this.env.trace(`   n${node}: torn writes in ${tornFiles.join(', ')}`);
  }

  restart(node: number): void {
    const n = this.node(node);
    if (n.started !== null || n.refused !== null) return;
    // A node that refuses to start stays down: only where the others still make a majority.
    if (this.nodeIds.length >= 3 && !this.healed && !this.corruptionDone && this.settings.corruptChance > 0 && this.rng.chance(this.settings.corruptChance)) this.corruptOldRecord(n);
    this.start(n);
    // (start() sets n.started; read it again rather than trust the narrowing above.)
    const started = this.node(node).started;
    if (started === null) return;
    const host = started.host;
    const raft = host.raft;
    const first = raft.firstIndex;
    this.env.observe({
      kind: 'restart',
      node,
      raft,
      durable: raft.entries(first, raft.lastIndex + 1),
      base: { index: first - 1, term: host.log.term(first - 1) },
      applied: host.applied,
    });
    // What it restored from its snapshot must be the replay of what the snapshot covers.
    if (host.applied > 0) this.env.observe({ kind: 'kv-digest', node, index: host.applied, digest: host.digest().digest, how: 'restored' });
    if (this.env.tracing) this.env.trace(`   n${node} restarted from disk: ${this.describe(n)}`);
  }

  /** Latent media damage: one byte of a WAL record with valid records after it. The node must refuse to start. */
  private corruptOldRecord(n: ReplicaNode): void {
    const segs = n.fs.readdirSync(nodeDir).filter((f) => f.startsWith('wal-'));
    for (const name of segs) {
      const path = `${nodeDir}/${name}`;
      const offsets = walRecordOffsets(n.fs.readFileSync(path));
      if (offsets.length < 3) continue;
      const k = this.rng.int(0, offsets.length - 2);
      n.fs.corrupt(path, offsets[k]! + 9 + this.rng.int(0, Math.max(1, offsets[k + 1]! - offsets[k]! - 9)));
      // The damage is on the medium; what the page cache held is gone with the crash before.
      n.fs.crash(this.env.now());
      n.corrupted = true;
      this.corruptionDone = true;
      this.counts.corruptions++;
      if (this.env.tracing) this.env.trace(`   n${n.id}: latent corruption in ${name}, record ${k} of ${offsets.length}`);
      return;
    }
  }

  private maybePause(): void {
    if (this.healed) return;
    const up = this.nodeIds.filter((id) => this.node(id).started !== null);
    // A directed scenario times its steps to the millisecond: no stalls while one plays.
    if (up.length > 0 && this.rng.chance(this.settings.pauseChance * 5) && this.traps.active === null) {
      const n = this.node(up[this.rng.int(0, up.length)]!);
      const ms = this.rng.chance(0.2) ? this.rng.int(100, 600) : this.rng.int(10, 100);
      n.pausedUntil = Math.max(n.pausedUntil, this.env.now() + ms);
      this.counts.pauses++;
      if (this.env.tracing) this.env.trace(`   n${n.id} pauses for ${ms} ms (its thread stalls)`);
    }
    this.env.after(this.rng.int(50, 400), '~pause', () => this.maybePause());
  }

  faultsPaused(): boolean {
    return this.traps.active !== null;
  }

  onHeal(): void {
    this.healed = true;
    for (const n of this.nodes.values()) n.pausedUntil = Math.min(n.pausedUntil, this.env.now());
  }

  // ---- clients -------------------------------------------------------------------------------

  private onApplied(n: ReplicaNode, index: number, command: Uint8Array): void {
    let cmd;
    try {
      cmd = decodeCommand(command);
    } catch {
      return;
    }
    if (cmd.clientId === engineClient && cmd.op === 'put') this.env.applied(n.id, index, cmd.value);
  }

  private clientNext(c: number): void {
    if (this.clientBusy[c]) return;
    if (this.quietWorkload) {
      this.env.after(10, '~client', () => this.clientNext(c));
      return;
    }
    const r = this.clientRng;
    const roll = r.next();
    const key = workloadKeys[r.int(0, workloadKeys.length)]!;
    const value = textBytes(`c${c}-${r.int(0, 1000)}`);
    let op: ClientOp['op'];
    let mode: ClientOp['mode'] = 'log';
    let request: SimRequest;
    const id = this.nextRequestId++;
    let seq = 0;
    if (roll < 0.3) {
      op = 'put';
      seq = ++this.clientSeqs[c]!;
      request = { t: 'propose', data: encodeCommand({ op: 'put', clientId: `c${c}`, seq, key, value }).slice(), stream: c + 1, seq };
    } else if (roll < 0.42) {
      op = 'cas';
      seq = ++this.clientSeqs[c]!;
      const expect = r.chance(0.3) ? null : textBytes(`c${r.int(0, this.settings.clients)}-${r.int(0, 1000)}`);
      request = { t: 'propose', data: encodeCommand({ op: 'cas', clientId: `c${c}`, seq, key, expect, value }).slice(), stream: c + 1, seq };
    } else if (roll < 0.5) {
      op = 'delete';
      seq = ++this.clientSeqs[c]!;
      request = { t: 'propose', data: encodeCommand({ op: 'delete', clientId: `c${c}`, seq, key }).slice(), stream: c + 1, seq };
    } else {
      op = 'get';
      const m = r.int(0, 5);
      if (m === 4) {
        seq = ++this.clientSeqs[c]!;
        request = { t: 'propose', data: encodeCommand({ op: 'get', clientId: `c${c}`, seq, key }).slice(), stream: c + 1, seq };
      } else {
        mode = readModes[m]!;
        // While a directed scenario runs, most reads take the path it is about.
        const focus = this.traps.active;
        if (focus !== null && r.chance(0.7)) mode = focus === 'late-read-acks' ? 'index' : 'lease';
        request = { t: 'read', mode, key };
      }
    }
    const now = this.env.now();
    const o: ClientOp = { client: c, id, op, mode, key, request, seq, invokedAt: now, attempt: 0, deadline: now + 2_000 };
    this.track(o);
    this.clientBusy[c] = true;
    this.env.observe({ kind: 'kv-invoke', id, client: c, op, mode, key } satisfies KvObservation);
    this.send(o);
  }

  /** Where an operation goes: the leader for writes and leader reads, any node for follower and stale reads. */
  private send(o: ClientOp): void {
    if (this.env.now() > o.deadline) {
      this.finish(o, { kind: 'kv-timeout', id: o.id });
      return;
    }
    o.attempt++;
    const up = this.nodeIds.filter((id) => this.node(id).started !== null);
    let target = 0;
    if (o.mode === 'follower' || o.mode === 'stale') target = up.length === 0 ? 0 : up[this.clientRng.int(0, up.length)]!;
    else {
      // A client reaches whichever node it believes leads — a deposed leader that does not know
      // it yet (cut off, or behind on terms) as well as the real one.
      const leaders = up.filter((id) => this.node(id).started!.host.raft.currentRole === Role.leader);
      target = leaders.length === 0 ? 0 : leaders[this.clientRng.int(0, leaders.length)]!;
    }
    if (target === 0) {
      this.retry(o, 20);
      return;
    }
    this.clientSend(this.node(target), requestFrame(o.request, o.id));
    // No answer (a crash, a lost message, a read that vanished with a leader change): ask again.
    this.retry(o, 300);
  }

  /** Sends `o` again after `delayMs`, unless another send (or its answer) came first. */
  private retry(o: ClientOp, delayMs: number): void {
    const attempt = o.attempt;
    this.env.after(delayMs, '', () => {
      if (this.ops.get(o.id) === o && o.attempt === attempt) this.send(o);
    });
  }

  private clientSend(n: ReplicaNode, frame: Uint8Array): void {
    this.stepNode(n, () => {
      n.started!.host.onFrame(clientActor, frame, 0, frame.length);
      n.started!.host.process();
    });
  }

  private track(o: ClientOp): void {
    this.ops.set(o.id, o);
    if (o.request.t === 'propose') this.bySeq.set(o.request.stream * 2 ** 32 + o.request.seq, o);
  }

  private finish(o: ClientOp, obs: KvObservation): void {
    this.ops.delete(o.id);
    if (o.request.t === 'propose') this.bySeq.delete(o.request.stream * 2 ** 32 + o.request.seq);
    this.env.observe(obs);
    if (o.client < 0) {
      if (this.env.tracing) this.env.trace(`   trap ${o.op} ${o.mode} ${o.key} (op ${o.id}) → ${obs.kind === 'kv-read' ? `read ${obs.value === null ? 'absent' : new TextDecoder().decode(obs.value)} at n${obs.node} index ${obs.applied}` : obs.kind === 'kv-applied' ? `applied at index ${obs.index}` : obs.kind}`);
      const done = this.trapDone.get(o.id);
      this.trapDone.delete(o.id);
      done?.(obs.kind === 'kv-applied' || obs.kind === 'kv-read');
      return;
    }
    this.clientBusy[o.client] = false;
    if (!this.healed) this.env.after(this.clientRng.int(1, 30), '~client', () => this.clientNext(o.client));
  }

  /** A trap's own operation: sent once to `node`, never retried, checked like any other. */
  private trapOp(node: number, what: { op: 'put'; key: string } | { op: 'get'; mode: 'index' | 'lease'; key: string }, done: (ok: boolean) => void): void {
    const id = this.nextRequestId++;
    const seq = ++this.trapSeq;
    const request: SimRequest =
      what.op === 'put'
        ? { t: 'propose', data: encodeCommand({ op: 'put', clientId: 'trap', seq, key: what.key, value: textBytes(`trap-${seq}`) }).slice(), stream: trapStream, seq }
        : { t: 'read', mode: what.mode, key: what.key };
    const now = this.env.now();
    const o: ClientOp = { client: -1, id, op: what.op, mode: what.op === 'put' ? 'log' : what.mode, key: what.key, request, seq, invokedAt: now, attempt: 1, deadline: now + 300 };
    this.track(o);
    this.trapDone.set(id, done);
    this.env.observe({ kind: 'kv-invoke', id, client: -1, op: o.op, mode: o.mode, key: o.key } satisfies KvObservation);
    this.clientSend(this.node(node), requestFrame(request, id));
    this.env.after(300, '', () => {
      if (this.ops.get(id) === o) this.finish(o, { kind: 'kv-timeout', id });
    });
  }

  private onReply(_from: number, _m: FromNode): void {
    // Status reports only: clients hear through frames (onClientFrame).
  }

  /** A node's answer to a client: results, a redirect or busy for a stream, or read answers. */
  private onClientFrame(from: number, frame: Uint8Array): void {
    const kind = frameKind(frame, 0, frame.length);
    if (kind === FrameKind.results) {
      readResults(frame, 0, frame.length, (seq, index, result) => {
        const stream = frame[2]!;
        const o = this.bySeq.get(stream * 2 ** 32 + seq);
        if (o === undefined || o.request.t !== 'propose') return;
        this.counts[o.op === 'get' ? 'gets' : o.op === 'put' ? 'puts' : o.op === 'cas' ? 'cas' : 'deletes']++;
        this.finish(o, { kind: 'kv-applied', id: o.id, node: from, index, result: result.slice(), command: o.request.data });
      });
    } else if (kind === FrameKind.redirect || kind === FrameKind.busy) {
      const c = decodeControl(frame, 0, frame.length);
      const o = this.bySeq.get(c.stream * 2 ** 32 + c.seq);
      if (o === undefined) return; // the engine's, or answered already
      if (o.client < 0) this.finish(o, { kind: 'kv-timeout', id: o.id });
      else this.retry(o, kind === FrameKind.busy ? 50 : 10);
    } else if (kind === FrameKind.readAnswers) {
      const a = decodeReadAnswers(frame, 0, frame.length);
      const o = this.ops.get(a.batch);
      if (o === undefined || o.request.t !== 'read') return;
      if (a.status === ReadStatus.ok) {
        this.counts[o.mode === 'stale' ? 'staleReads' : 'reads']++;
        this.finish(o, { kind: 'kv-read', id: o.id, node: from, mode: o.mode as LocalReadMode, key: o.key, value: a.values[0]?.slice() ?? null, index: a.index, applied: a.applied, commit: a.commit });
      } else if (o.client < 0) this.finish(o, { kind: 'kv-timeout', id: o.id });
      else this.retry(o, 10);
    }
  }

  // ---- views for the engine -------------------------------------------------------------------

  leader(): number {
    let best = 0;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const raft = n.started?.host.raft;
      if (raft !== undefined && raft.currentRole === Role.leader && raft.currentTerm > bestTerm) {
        best = n.id;
        bestTerm = raft.currentTerm;
      }
    }
    return best;
  }

  converged(): boolean {
    const l = this.leader();
    if (l === 0) return false;
    const leader = this.node(l).started!.host;
    const c = leader.raft.commitIndex;
    if (leader.raft.lastIndex !== c) return false;
    for (const n of this.nodes.values()) {
      if (n.refused !== null) continue;
      const h = n.started?.host;
      if (h === undefined || h.applied !== c || h.raft.commitIndex !== c || this.env.now() < n.busyUntil) return false;
    }
    return this.ops.size === 0 || [...this.ops.values()].every((o) => this.env.now() - o.invokedAt < 1_000);
  }

  committedIndex(): number {
    return this.topCommit;
  }

  maxTerm(): number {
    return this.topTerm;
  }

  stats(): Record<string, number> {
    return { ...this.counts, trapsFired: this.traps.fired };
  }

  describeMessage(m: ReplicaMessage): string {
    const kind = frameKind(m.frame, 0, m.frame.length);
    if (kind === FrameKind.raft) return formatMessage(decodeRaft(m.frame, 0, m.frame.length));
    return `${kind === FrameKind.snapshotChunk ? 'snapshot chunk' : kind === FrameKind.snapshotAck ? 'snapshot ack' : `frame ${kind}`} ${m.from}→${m.to} (${m.frame.length} bytes)`;
  }

  private describe(n: ReplicaNode): string {
    if (n.refused !== null) return `n${n.id} refused to start`;
    const h = n.started?.host;
    if (h === undefined) return `n${n.id} down`;
    const s = h.raft.status();
    return `n${n.id} ${roleName[s.role]} t${s.term} vote=${s.vote} lead=${s.leader} first=${s.firstIndex} last=${s.lastIndex}/t${s.lastTerm} commit=${s.commit} applied=${h.applied} snapshot=${s.snapshotIndex}`;
  }

  describeNodes(): string[] {
    return [...this.nodes.values()].map((n) => this.describe(n));
  }
}
