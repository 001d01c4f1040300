// The Multi-Paxos node host: one PaxosNode's Ready loop (send, write, sync, then promises and
// accepts; apply in slot order; reads), its clients and its status reports, in the same shape as
// the Raft NodeHost so the Cluster router, the HTTP API and the KV store cannot tell them apart.
// It talks to the world only through NodeIO. It must never let a promise or an accept leave
// before the state it vouches for is durable, and never serve a read before it has applied the
// read's index.
import type { ActorId } from '../../runtime/actor.ts';
import { rawFrameTag, supervisorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import type { PaxosLog, PaxosLogReport } from '../../runtime/storage/paxos-log.ts';
import type { SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';
import {
  formatBallot,
  MemoryPaxosStorage,
  nodeOf,
  paxosMessage,
  PaxosMessageType,
  PaxosNode,
  PaxosRole,
  paxosRoleName,
  ValueKind,
  type PaxosMessage,
  type PaxosReady,
  type PaxosSettings,
  type PaxosStorage,
} from '../../protocols/paxos/index.ts';
import { Role } from '../../protocols/raft/index.ts';
import { CountStateMachine } from '../count/state-machine.ts';
import type { StateMachine } from '../state-machine.ts';
import { LogClock } from '../platform/log-clock.ts';
import type { NodeConfig } from './node-config.ts';
import type { NodeIO } from './node-host.ts';
import { decodePaxos, encodePaxos, paxosFrameKind, setFrameTo } from './paxos-wire.ts';
import { PaxosSessions } from './paxos-sessions.ts';
import { decodeReads } from './client-wire.ts';
import { SentCounts } from './sent-counts.ts';
import { ReadBatches, type ReadBatch } from './read-batches.ts';
import { restoreFromFile, snapshotSettingsDefault, type SnapshotKeeper, type SnapshotSettings } from './snapshot-keeper.ts';
import { SnapshotIntake, SnapshotSenders, transferDefaults } from './snapshot-transfer.ts';
import { decodeSnapshotAck, decodeSnapshotChunk, FrameKind } from './wire.ts';

/** What a Multi-Paxos node is configured with: a node's settings plus the Paxos core's. */
export interface PaxosNodeConfig extends NodeConfig {
  protocol: 'multipaxos';
  /** Timing in ticks of tickMs, pipelining (inflightMax) and batching (batchMax). */
  paxos: Partial<PaxosSettings>;
  /** The core's mode (default multi): basic runs Basic Paxos, where every node proposes (benchmarks compare the two). */
  paxosMode?: 'basic' | 'multi';
}

/** Host settings the core's defaults do not suit: a live cluster has many clients. */
export const paxosHostDefaults: Pick<PaxosSettings, 'inflightMax' | 'batchMax'> = { inflightMax: 1024, batchMax: 64 };

/** Host frames beside the core's (kinds after paxosFrameKind): a follower asks the leader for a read index. */
const readIndexAskKind = paxosFrameKind + 1;
const readIndexAnswerKind = paxosFrameKind + 2;
const readFrameBytes = 24;
/** A follower read not answered by the leader in this long is forgotten (the cluster has resent or given up). */
const followerReadForgetMs = 10_000;
const statusRefreshMs = 1_000;
/**
 * Memory storage: values every node has chosen are dropped once this many gathered. Smaller than
 * Raft's (whose entries sit in a byte arena): here each is a few objects, and the longer they
 * live the more of them the garbage collector moves to its old space.
 */
const paxosCompactEntriesDefault = 4096;
/** After a failed snapshot write, the next try waits this long. */
const snapshotRetryMs = 1_000;
const noResult = new Uint8Array(0);

export interface PaxosHostInit {
  self: ActorId;
  peers: readonly ActorId[];
  incarnation: number;
  config: PaxosNodeConfig;
  io: NodeIO;
  /** The durable log (WAL storage), opened and recovered; null for memory storage. */
  log: PaxosLog | null;
  app: StateMachine;
  /** The node's snapshots (WAL storage; null for memory storage, whose nodes never compact). */
  snapshots: SnapshotKeeper | null;
  /** The snapshot `app` was restored from at start (SnapshotKeeper.load), or null. */
  startedFrom: SnapshotInfo | null;
}

/** Whose read a core read context is: a client read batch here (its ctx), or a follower's ask. */
type ReadContext = { local: number } | { from: ActorId; ref: number };

export class PaxosHost {
  readonly self: ActorId;
  readonly node: PaxosNode;
  private readonly cfg: PaxosNodeConfig;
  private readonly io: NodeIO;
  private readonly app: StateMachine;
  private readonly log: PaxosLog | null;
  private readonly memory: MemoryPaxosStorage | null;
  private readonly voters: number[];
  /** What the log's replay found at start (null: memory storage). */
  readonly recovery: PaxosLogReport | null;

  private readonly reads: ReadBatches;
  private readonly contexts = new Map<number, ReadContext>();
  private nextContext = 1;
  private readonly keeper: SnapshotKeeper | null;
  /** Time on the log: clock entries this node proposes while it leads and an app wants time. */
  private readonly clock: LogClock;
  private readonly snapshotSettings: SnapshotSettings;
  private readonly senders: SnapshotSenders | null;
  private readonly intake: SnapshotIntake | null;
  /** A snapshot received whole and handed to the core, until a Ready installs it. */
  private received: SnapshotInfo | null = null;
  /** A snapshot of our own that became durable: the log is rewritten past it between Readies. */
  private compactDue: SnapshotInfo | null = null;
  private bytesSinceSnapshot = 0;
  private snapshotNotBeforeMs = 0;
  /** The last slot applied to the state machine. */
  applied = 0;
  appliedCommands = 0;
  /** The highest ballot a leader's heartbeat or accept carried that this node took (what it follows). */
  private followedBallot = 0;
  private lastRole: PaxosRole = PaxosRole.follower;
  private lastLeader = 0;

  accepts = 0;
  valuesSent = 0;
  proposalsAccepted = 0;
  /** Client actors' propose frames (apps/cluster/wire.ts), acked once applied. */
  readonly sessions: PaxosSessions;

  private lastStatus = '';
  private statusDue = false;
  private readonly sent = new SentCounts();
  private lastStatusAt = Number.NEGATIVE_INFINITY;
  private lastTickAt: number;
  private stopped = false;

  constructor(init: PaxosHostInit) {
    const cfg = init.config;
    this.cfg = cfg;
    this.io = init.io;
    this.self = init.self;
    this.app = init.app;
    this.log = init.log;
    this.voters = cfg.voters !== undefined ? [...cfg.voters] : [init.self, ...init.peers].sort((a, b) => a - b);
    this.clock = new LogClock(cfg.clockMs);
    this.keeper = init.snapshots;
    this.snapshotSettings = { ...snapshotSettingsDefault, ...(cfg.snapshot ?? {}) };
    // The state machine starts where its snapshot does; the log holds only what lies past it.
    const from = init.startedFrom?.index ?? 0;
    this.applied = from;
    let storage: PaxosStorage;
    if (init.log !== null) {
      const recovered = init.log.load();
      this.recovery = recovered.report;
      if (from < recovered.compactedThrough) throw new Error(`node ${init.self}: its log starts after slot ${recovered.compactedThrough} but its state machine starts at ${from}`);
      // The log keeps values as (kind, bytes); the core's kinds are the same numbers. Records at
      // or below the snapshot (a crash between a snapshot and the log's rewrite) are covered by it.
      storage = {
        initialState: () => recovered.initialState(),
        snapshotSlot: () => from,
        accepted: () => [...recovered.accepted()].filter((a) => a.slot > from),
        learned: () => [...recovered.learned()].filter((c) => c.slot > from),
      } as unknown as PaxosStorage;
      this.memory = null;
    } else {
      this.memory = new MemoryPaxosStorage();
      this.recovery = null;
      storage = this.memory;
    }
    this.node = new PaxosNode({
      ...paxosHostDefaults,
      ...cfg.paxos,
      id: init.self,
      nodes: this.voters,
      mode: cfg.paxosMode ?? 'multi',
      storage,
      rng: createRng(mixSeed(cfg.seed, init.self, init.incarnation)),
      applied: from,
    });
    if (this.keeper !== null) {
      const transfer = { ...transferDefaults, ...(cfg.transfer ?? {}) };
      // Any node may send a snapshot (a peer asked it for slots it compacted); nothing in the core
      // waits for the outcome: a peer still behind asks again.
      this.senders = new SnapshotSenders(this.keeper.store, transfer, init.io, () => this.keeper!.prune(this.senders!.inUse()));
      this.intake = new SnapshotIntake(this.keeper.store, init.io, (from, _ballot, info) => this.onSnapshotReceived(from, info));
    } else {
      this.senders = null;
      this.intake = null;
    }
    // A session with nothing acked for two longest election timeouts (and at least 1 s) goes back to its last ack.
    this.reads = new ReadBatches(init.io);
    this.sessions = new PaxosSessions(this.node, init.io, cfg.paxosMode === 'basic', Math.max(1_000, 4 * (cfg.paxos?.electionTicks ?? 10) * cfg.tickMs));
    this.lastTickAt = init.io.now();
  }

  // ---- inputs --------------------------------------------------------------------------------

  onFrame(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    if (end - start < 2) throw new DecodeError(end - start, 'raw frame shorter than its header');
    const kind = bytes[start + 1]!;
    if (kind === paxosFrameKind) this.step(decodePaxos(bytes, start, end));
    else if (kind === FrameKind.propose) this.sessions.onProposeFrame(this.self, from, bytes, start, end);
    else if (kind === FrameKind.reads) {
      const r = decodeReads(bytes, start, end);
      this.onReads(this.reads.create(from, r.batch, r.mode, r.reads));
    }
    else if (kind === FrameKind.snapshotChunk && this.intake !== null) {
      const c = decodeSnapshotChunk(bytes, start, end);
      this.intake.onChunk(from, c.key, c.leaderTerm, c.offset, c.data);
    } else if (kind === FrameKind.snapshotAck && this.senders !== null) {
      const a = decodeSnapshotAck(bytes, start, end);
      this.senders.onAck(from, a.key, a.have, a.done);
    }
    else if (kind === readIndexAskKind) this.onReadIndexAsk(from, readRef(bytes, start, end));
    else if (kind === readIndexAnswerKind) this.onReadIndexAnswer(bytes, start, end);
    else throw new DecodeError(end - start, `node ${this.self}: unexpected frame kind ${kind} from actor ${from} (a Multi-Paxos node takes client frames and its peers' frames only)`);
  }

  /** A Paxos message as an object (tests send these; nodes send frames). */
  onMessage(from: ActorId, m: PaxosMessage): void {
    if (from === supervisorId) throw new Error(`node ${this.self}: the supervisor sends client frames, not Paxos messages`);
    this.step(m);
  }

  private step(m: PaxosMessage): void {
    // What this node follows: a leader's heartbeat or accept at or above what it promised.
    const leaderClaim = (m.type === PaxosMessageType.heartbeat || m.type === PaxosMessageType.accept) && nodeOf(m.ballot) === m.from && m.ballot >= this.node.promisedBallot;
    this.node.step(m);
    if (leaderClaim && m.ballot > this.followedBallot) this.followedBallot = m.ballot;
  }

  private leaderHint(): number {
    const lead = this.node.status().leader;
    return lead === this.self ? 0 : lead;
  }

  beforeBatch(): void {
    this.catchUpTicks();
  }

  tick(): void {
    if (this.stopped) return;
    this.catchUpTicks();
    this.forgetStaleReads();
    this.sessions.tick(this.self);
    this.senders?.tick();
    if (this.node.currentRole === PaxosRole.leader) this.clock.due(this.io.now(), this.app, (bytes) => this.node.propose(bytes));
    this.process();
  }

  /** Drains every Ready: the one place where the durability order is kept. */
  process(): void {
    if (this.stopped) return;
    this.catchUpTicks();
    this.node.flush();
    while (this.node.hasReady()) {
      const rd = this.node.ready();
      this.sendAll(rd.messages);
      this.persist(rd);
      this.sendAll(rd.messagesAfterPersist);
      this.apply(rd);
      this.collectReadStates(rd);
      this.serveReads();
      this.node.advance(rd);
      this.checkRole();
    }
    if (this.received !== null) this.discardReceived();
    if (this.compactDue !== null) this.compactLog();
    if (this.memory !== null) this.forgetHeldByAll();
    this.maybeSnapshot();
    this.checkRole();
    this.sessions.sendAcks();
    this.reportStatus(this.statusDue);
    this.statusDue = false;
  }

  private catchUpTicks(): void {
    const due = Math.floor((this.io.now() - this.lastTickAt) / this.cfg.tickMs);
    if (due <= 0) return;
    this.lastTickAt += due * this.cfg.tickMs;
    for (let i = 0; i < due; i++) this.node.tick();
  }

  private readonly stallCell = new Int32Array(new SharedArrayBuffer(4));

  private persist(rd: PaxosReady): void {
    if (rd.snapshotSlot > 0) this.installSnapshot(rd.snapshotSlot);
    // Memory storage: a node that crashes is never restarted (it would come back empty), so
    // nothing would ever read what a store kept: keep nothing.
    if (this.memory !== null) return;
    const log = this.log!;
    if (rd.hardState !== null || rd.accepted.length > 0 || rd.learned.length > 0) log.append(rd.hardState, rd.accepted, rd.learned);
    if (rd.mustSync) {
      log.sync();
      // The slow-disk fault: the thread waits as it would on a slow fsync.
      if (this.cfg.syncDelayMs !== undefined && this.cfg.syncDelayMs > 0) Atomics.wait(this.stallCell, 0, 0, this.cfg.syncDelayMs);
    } else {
      // Learned values and the commit need not be durable before anything: written, not synced.
      log.flush();
    }
  }

  private sendAll(msgs: readonly PaxosMessage[]): void {
    for (const m of msgs) {
      this.sent.count(m.to, m.type);
      if (m.type === PaxosMessageType.snapshot) {
        this.offerSnapshot(m);
        continue;
      }
      if (m.type === PaxosMessageType.accept) {
        this.accepts++;
        this.valuesSent += m.proposals.length;
      }
      this.io.sendFrame(m.to, this.frameOf(m));
    }
    this.lastEncoded = null;
  }

  /** The last message encoded: the same content to another node is the same frame but for its `to`. */
  private lastEncoded: { m: PaxosMessage; frame: Uint8Array } | null = null;

  private frameOf(m: PaxosMessage): Uint8Array {
    const last = this.lastEncoded;
    if (last !== null && sameContent(last.m, m)) {
      // encodePaxos's frame is a view of its scratch buffer, untouched since: patch the destination.
      setFrameTo(last.frame, m.to);
      return last.frame;
    }
    const frame = encodePaxos(m);
    this.lastEncoded = { m, frame };
    return frame;
  }

  private apply(rd: PaxosReady): void {
    for (const c of rd.apply) {
      let result: Uint8Array | null = null;
      // No-ops (gap fillers) and read markers change nothing in the app.
      if (c.value.kind === ValueKind.normal) {
        const data = c.value.data;
        result = this.app.apply(c.slot, data, 0, data.length);
        this.appliedCommands++;
        if (this.sessions.size > 0) this.sessions.applied(c.value, c.slot, result ?? noResult);
        this.bytesSinceSnapshot += data.length;
      }
      this.applied = c.slot;
    }
  }

  // ---- snapshots and compaction --------------------------------------------------------------

  /** The core answers a peer with a snapshot (it asked for slots compacted here): stream the newest file. */
  private offerSnapshot(m: PaxosMessage): void {
    const current = this.keeper?.current ?? null;
    if (current === null || this.senders === null || current.index < m.slot) {
      throw new Error(`node ${this.self}: the core offers snapshot ${m.slot} to node ${m.to}, but the newest snapshot file is ${current?.index ?? 'none'}`);
    }
    this.senders.start(m.to, 0, current);
  }

  /** A whole snapshot file arrived and verified: hand it to the core as the peer's message. */
  private onSnapshotReceived(from: ActorId, info: SnapshotInfo): void {
    if (this.received !== null && this.received.name !== info.name) this.keeper!.store.remove(this.received.name);
    this.received = info;
    this.step(paxosMessage(PaxosMessageType.snapshot, from, this.self, 0, { slot: info.index, commit: info.index }));
  }

  /** The core did not take the snapshot it was handed (it has chosen that far already): drop the file. */
  private discardReceived(): void {
    const r = this.received!;
    this.received = null;
    if (this.keeper!.current?.name !== r.name) this.keeper!.store.remove(r.name);
  }

  /**
   * A peer's snapshot replaces the state machine through `slot`: restore it from the received
   * file, then rewrite the log past it (before the Ready's own records, which go after).
   */
  private installSnapshot(slot: number): void {
    const info = this.received;
    if (info === null || info.index !== slot || this.keeper === null) {
      throw new Error(`node ${this.self}: the core installs snapshot ${slot}, but the file received is ${info === null ? 'none' : info.index}`);
    }
    restoreFromFile(this.app, this.keeper.store, info);
    const kept = this.node.retained();
    this.log?.compact(slot, kept.promise, kept.accepted, kept.learned);
    this.keeper.adopt(info, this.senders?.inUse());
    this.received = null;
    this.compactDue = null;
    this.applied = slot;
    this.bytesSinceSnapshot = 0;
    // Proposals taken here may or may not be in the snapshot: resubmitting is safe (the state
    // machine's session table applies a command once), so their clients go back.
    this.sessions.forgetAll(this.self);
    this.io.emit({ type: 'snapshot-installed', index: slot, term: 0, bytes: info.fileBytes });
  }

  /**
   * Memory storage: values every node has chosen are never asked for again (a node that crashes
   * is not restarted), so they go once that many have gathered — memory follows what is in flight,
   * not the history. (With WAL storage, snapshots bound it.)
   */
  private forgetHeldByAll(): void {
    const through = Math.min(this.node.chosenByAll, this.applied);
    if (through - this.node.compactedThrough >= (this.cfg.compactEntries ?? paxosCompactEntriesDefault) && this.cfg.compactEntries !== 0) this.node.compact(through);
  }

  /** Every `snapshot.entries` slots applied (or `snapshot.bytes` of commands): capture the state and write it in the background. */
  private maybeSnapshot(): void {
    const keeper = this.keeper;
    if (keeper === null || keeper.writing || this.stopped || this.compactDue !== null) return;
    const s = this.snapshotSettings;
    const since = this.applied - (keeper.current?.index ?? 0);
    if (since <= 0) return;
    const due = (s.entries > 0 && since >= s.entries) || (s.bytes > 0 && this.bytesSinceSnapshot >= s.bytes);
    if (!due || this.io.now() < this.snapshotNotBeforeMs) return;
    const image = this.app.snapshot();
    // No-ops and read markers change nothing in the app: its image covers every slot applied.
    const meta = { index: this.applied, term: 0, voters: [...this.voters] };
    this.bytesSinceSnapshot = 0;
    keeper.write(
      image,
      meta,
      () => this.io.now(),
      (info) => {
        if (this.stopped || (keeper.current !== null && keeper.current.index >= info.index)) {
          // A peer's snapshot installed meanwhile covers more: this one is of no use.
          if (keeper.current?.name !== info.name) keeper.store.remove(info.name);
          return;
        }
        this.compactDue = info;
        this.process();
      },
      (err) => {
        this.snapshotNotBeforeMs = this.io.now() + snapshotRetryMs;
        this.io.emit({ type: 'snapshot-failed', index: meta.index, error: err.message });
      },
    );
  }

  /**
   * Our snapshot is durable: the core drops the slots it covers and the log is rewritten with
   * what lies past it. Only here, between Readies, where the core's state is the durable one.
   */
  private compactLog(): void {
    const info = this.compactDue!;
    this.compactDue = null;
    const keeper = this.keeper!;
    if (keeper.current !== null && keeper.current.index >= info.index) return;
    this.node.compact(info.index);
    const kept = this.node.retained();
    this.log!.compact(info.index, kept.promise, kept.accepted, kept.learned);
    keeper.adopt(info, this.senders?.inUse());
    this.io.emit({ type: 'snapshot', index: info.index, bytes: info.fileBytes, ms: Math.round(keeper.lastDurationMs) });
  }

  /** Role and leader changes: reads not yet confirmed go back, proposals held as leader are let go, status goes at once. */
  private checkRole(): void {
    const st = this.node.status();
    if (st.role === this.lastRole && st.leader === this.lastLeader) return;
    const wasLeader = this.lastRole === PaxosRole.leader;
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    // A new leader counts the log's time from now: the gap before it is not counted (late, never early).
    if (!wasLeader && st.role === PaxosRole.leader) this.clock.restart(this.io.now());
    if (wasLeader && st.role !== PaxosRole.leader) {
      // A deposed leader's proposals may still be chosen (a new leader re-proposes what it finds
      // accepted) or not: neither answer is known here. The cluster sends them to the new leader,
      // whose state machine applies a command once (its session table).
      this.sessions.leadershipLost(this.self);
      for (const [ctx, c] of this.contexts) {
        if ('from' in c) this.io.sendFrame(c.from, readAnswerFrame(false, c.ref, 0, this.leaderHint()));
        this.contexts.delete(ctx);
      }
    }
    this.reads.redirectUnconfirmed(this.leaderHint(), (b) => b.askedAt < 0);
    this.io.emit({ type: 'role', role: paxosRoleName[st.role], term: this.termOf(st), leader: st.leader, ballot: formatBallot(st.role === PaxosRole.leader ? st.ballot : this.termOf(st)) });
    this.statusDue = true;
  }

  // ---- reads ---------------------------------------------------------------------------------

  private onReads(b: ReadBatch): void {
    if (b.mode === 'stale') {
      this.reads.answer(b, this.app, this.applied, this.applied, this.node.commitIndex);
      return;
    }
    if (b.mode === 'lease') {
      this.reads.refuse(b, 'read=lease is not available on multipaxos (its leader holds no lease); use read=index (the default), follower, log or stale');
      return;
    }
    const st = this.node.status();
    const isLeader = st.role === PaxosRole.leader;
    if (b.mode === 'index' && !isLeader) {
      this.reads.redirect(b, this.leaderHint());
      return;
    }
    if (b.mode === 'follower' && !isLeader) {
      if (st.leader === 0 || st.leader === this.self) {
        this.reads.redirect(b, this.leaderHint());
        return;
      }
      b.askedAt = this.io.now();
      this.reads.await(b);
      this.io.sendFrame(st.leader, readAskFrame(b.ctx));
      return;
    }
    this.reads.await(b);
    this.catchUpTicks();
    const ctx = this.nextContext++;
    this.contexts.set(ctx, { local: b.ctx });
    if (!this.node.readIndex(ctx)) {
      this.contexts.delete(ctx);
      this.reads.redirect(b, this.leaderHint());
    }
  }

  /** A follower asks for a read index: confirm one as for our own reads, answer with it. */
  private onReadIndexAsk(from: ActorId, ref: number): void {
    if (this.node.currentRole !== PaxosRole.leader) {
      this.io.sendFrame(from, readAnswerFrame(false, ref, 0, this.leaderHint()));
      return;
    }
    const ctx = this.nextContext++;
    this.contexts.set(ctx, { from, ref });
    if (!this.node.readIndex(ctx)) {
      this.contexts.delete(ctx);
      this.io.sendFrame(from, readAnswerFrame(false, ref, 0, this.leaderHint()));
    }
  }

  private onReadIndexAnswer(bytes: Uint8Array, start: number, end: number): void {
    if (end - start < readFrameBytes) throw new DecodeError(end - start, 'read-index answer frame cut short');
    const v = new DataView(bytes.buffer, bytes.byteOffset + start, readFrameBytes);
    const ok = bytes[start + 2] === 1;
    const ref = v.getFloat64(8, true);
    const b = this.reads.unconfirmed.get(ref);
    if (b === undefined) return;
    if (!ok) {
      const hint = v.getUint16(4, true);
      this.reads.redirect(b, hint === this.self ? 0 : hint);
      return;
    }
    this.reads.confirmed(ref, v.getFloat64(16, true));
    this.serveReads();
  }

  private collectReadStates(rd: PaxosReady): void {
    for (const rs of rd.readStates) {
      const c = this.contexts.get(rs.context);
      if (c === undefined) continue;
      this.contexts.delete(rs.context);
      if ('from' in c) {
        this.io.sendFrame(c.from, readAnswerFrame(true, c.ref, rs.index, 0));
        continue;
      }
      this.reads.confirmed(c.local, rs.index);
    }
  }

  private serveReads(): void {
    this.reads.serve(this.app, this.applied, this.node.commitIndex);
  }

  /** Follower reads whose ask or answer was lost: the client sent them again long ago. */
  private forgetStaleReads(): void {
    if (this.reads.size === 0) return;
    const now = this.io.now();
    this.reads.forget((b) => b.askedAt >= 0 && now - b.askedAt > followerReadForgetMs);
  }

  // ---- status and control ---------------------------------------------------------------------

  /** The ballot this node acts under: its own as leader, else the newest leader's it follows (or its promise). */
  private termOf(st: ReturnType<PaxosNode['status']>): number {
    if (st.role === PaxosRole.leader) return st.ballot;
    return Math.max(st.promised, this.followedBallot);
  }

  private reportStatus(force: boolean): void {
    const now = this.io.now();
    if (!force && now - this.lastStatusAt < this.cfg.statusEveryMs) return;
    const st = this.node.status();
    const term = this.termOf(st);
    const key = `${st.role}:${term}:${st.leader}:${st.commit}:${this.applied}:${st.lastSlot}`;
    if (key === this.lastStatus && now - this.lastStatusAt < statusRefreshMs) return;
    this.lastStatus = key;
    this.lastStatusAt = now;
    this.io.reply({
      t: 'status',
      role: st.role === PaxosRole.leader ? Role.leader : st.role === PaxosRole.candidate ? Role.candidate : Role.follower,
      term,
      leader: st.leader,
      commit: st.commit,
      lastIndex: st.lastSlot,
      applied: this.applied,
      firstIndex: this.node.compactedThrough + 1,
      snapshotIndex: this.node.compactedThrough,
      voters: [...this.voters],
      outgoing: [],
      learners: [],
      witnesses: [],
      membershipIndex: 0,
      vote: 0,
      progress: [],
      sent: this.sent.take(),
    });
  }

  status(): Record<string, unknown> {
    const st = this.node.status();
    return {
      ...st,
      protocol: 'multipaxos',
      roleName: paxosRoleName[st.role],
      ballotName: formatBallot(st.ballot),
      promisedName: formatBallot(st.promised),
      term: this.termOf(st),
      applied: this.applied,
      reads: this.reads.size,
      firstIndex: this.node.compactedThrough + 1,
      snapshotIndex: this.node.compactedThrough,
      snapshots:
        this.keeper === null
          ? null
          : { current: this.keeper.current?.index ?? null, taken: this.keeper.taken, failures: this.keeper.failures, lastError: this.keeper.lastError, sending: this.senders!.status(), receiving: this.intake!.status() },
      voters: [...this.voters],
      log: this.log === null ? null : { file: this.log.file, bytes: this.log.bytes, ...this.log.stats() },
    };
  }

  membershipStatus(): { voters: number[]; outgoing: number[]; learners: number[]; witnesses: number[]; membershipIndex: number; commit: number } {
    return { voters: [...this.voters], outgoing: [], learners: [], witnesses: [], membershipIndex: 0, commit: this.node.commitIndex };
  }

  /** Runs phase 1 now (takes leadership with a higher ballot). */
  campaign(): { started: boolean; why?: string } {
    if (this.node.currentRole === PaxosRole.leader) return { started: false, why: 'this node already leads' };
    this.node.campaign();
    this.process();
    return { started: true };
  }

  readLocal(key: string): Uint8Array | undefined {
    return this.app.readLocal(key);
  }

  get commandsApplied(): number | null {
    return this.app instanceof CountStateMachine ? this.app.commands : null;
  }

  digest(): { applied: number; digest: string } {
    return { applied: this.applied, digest: this.app.digest() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.senders?.stopAll();
    await this.keeper?.settle();
    this.log?.close();
  }
}

function readAskFrame(ref: number): Uint8Array {
  const b = new Uint8Array(readFrameBytes);
  const v = new DataView(b.buffer);
  b[0] = rawFrameTag;
  b[1] = readIndexAskKind;
  v.setFloat64(8, ref, true);
  return b;
}

function readAnswerFrame(ok: boolean, ref: number, index: number, leader: number): Uint8Array {
  const b = new Uint8Array(readFrameBytes);
  const v = new DataView(b.buffer);
  b[0] = rawFrameTag;
  b[1] = readIndexAnswerKind;
  b[2] = ok ? 1 : 0;
  v.setUint16(4, leader, true);
  v.setFloat64(8, ref, true);
  v.setFloat64(16, index, true);
  return b;
}

function readRef(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < readFrameBytes) throw new DecodeError(end - start, 'read-index ask frame cut short');
  return new DataView(bytes.buffer, bytes.byteOffset + start, readFrameBytes).getFloat64(8, true);
}

/** Two messages with the same content (all but `to`), judged by identity of their lists. */
function sameContent(a: PaxosMessage, b: PaxosMessage): boolean {
  return (
    a.type === b.type &&
    a.from === b.from &&
    a.ballot === b.ballot &&
    a.slot === b.slot &&
    a.commit === b.commit &&
    a.context === b.context &&
    a.proposals === b.proposals &&
    a.slots === b.slots &&
    a.chosen === b.chosen
  );
}
