// The node host: one Raft node's Ready loop (send, install, write, sync, then acks; apply; reads),
// its clients, its snapshots and log compaction. It talks to the world only through NodeIO
// (clock, frames to peers, replies to the supervisor, events), so the same code can run on a
// worker or under a simulator. It must never send an ack or vote before the state it promises is
// synced, and never serve a read before it has applied the read's index.
import type { DoorView } from './node-door.ts';
import type { ActorEvent, ActorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import type { Recovered, Storage } from '../../runtime/storage/index.ts';
import type { SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';
import {
  compactionPoint,
  decodeMembership,
  defaultRaftSettings,
  EntryKind,
  members,
  message,
  MessageType,
  RaftNode,
  Role,
  roleName,
  type ConfChange,
  type Membership,
  type Message,
  type ProgressStatus,
  type Ready,
  type SnapshotMeta,
  type SoftState,
} from '../../protocols/raft/index.ts';
import { CountStateMachine } from '../count/state-machine.ts';
import type { StateMachine } from '../state-machine.ts';
import { LogClock } from '../platform/log-clock.ts';
import { ClientSessions } from './client-sessions.ts';
import { DurableLog } from './log-store.ts';
import type { FromNode } from './protocol.ts';
import { decodeReads } from './client-wire.ts';
import { progressStates, SentCounts } from './sent-counts.ts';
import { ReadBatches, type ReadBatch } from './read-batches.ts';
import { ConfWaiters, createRaft, isMember, membershipEntries, snapshotMetaOf, type ConfChangeOutcome } from './node-membership.ts';
import { isImageless, noImage, restoreFromFile, snapshotSettingsDefault, type SnapshotKeeper, type SnapshotSettings } from './snapshot-keeper.ts';
import { SnapshotIntake, SnapshotSenders, transferDefaults, type TransferSettings } from './snapshot-transfer.ts';
import {
  decodeControl,
  decodeRaft,
  decodeSnapshotAck,
  decodeSnapshotChunk,
  decodeWitnessSnapshot,
  encodeControl,
  encodeRaft,
  encodeWitnessSnapshot,
  frameKind,
  FrameKind,
} from './wire.ts';
import type { NodeConfig } from './node-config.ts';

/** What the node host needs of the world. */
export interface NodeIO {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Sends an encoded frame to a peer node or a client actor (`sendEncoded`). */
  sendFrame(to: ActorId, frame: Uint8Array): void;
  /** Wakes now the receivers of the frames sent so far (otherwise they wake when this turn ends). */
  publish?(): void;
  /** Sends a message to the supervisor (answers to client requests, status). */
  reply(m: FromNode): void;
  emit(event: ActorEvent): void;
}

/**
 * What a watcher (the simulator's checkers, later a dashboard) sees of a node host's work. Every
 * hook is optional and must not change the node: it is called from inside the Ready loop.
 */
export interface NodeObserver {
  /** A Ready was taken, before any of it is done. */
  ready?(rd: Ready): void;
  /** Entry `index` (of `term`, `kind`) was applied; a normal entry's command is bytes[start, end), valid during the call. */
  applied?(index: number, term: number, kind: number, bytes: Uint8Array, start: number, end: number): void;
  /** A snapshot of the state machine was captured at `index`; `digest` is the state then. */
  snapshotTaken?(index: number, digest: string): void;
  /** A snapshot from the leader replaced the state machine; `digest` is the state restored. */
  snapshotInstalled?(index: number, term: number, digest: string): void;
}

export interface NodeHostInit {
  self: ActorId;
  peers: readonly ActorId[];
  incarnation: number;
  config: NodeConfig;
  io: NodeIO;
  store: Storage;
  recovered: Recovered;
  app: StateMachine;
  /** The node's snapshots (WAL storage); null for memory storage, whose nodes never snapshot. */
  snapshots: SnapshotKeeper | null;
  /** The snapshot `app` was restored from at start (from `snapshots.load`), or null. */
  startedFrom: SnapshotInfo | null;
  observer?: NodeObserver;
}

/** Entries per in-memory compaction step for memory storage: one column block of the EntryArena. */
export const compactEntriesDefault = 1 << 16;
/** While a voter lags, how often the leader looks again at what every voter holds. */
const compactRecheckMs = 100;
/** A follower heard from within this many election timeouts holds a leader's log compaction back. */
const followerLiveElections = 3;
/** After a failed snapshot write, the next try waits this long. */
const snapshotRetryMs = 1_000;
const statusRefreshMs = 1_000;
const noResult = new Uint8Array(0);

export class NodeHost {
  readonly self: ActorId;
  readonly raft: RaftNode;
  readonly log: DurableLog;
  /** The configuration in force here (the newest the log or snapshot holds) and the entry that set it. */
  private membership: Membership;
  private membershipIndex: number;
  /**
   * The index of the newest configuration that included this node (-1: none yet). Only a node
   * that was in a configuration can be left out of one: a joining node starts in none, and a
   * snapshot from before it was added leaves it out without removing it.
   */
  private memberAt: number;
  private removedReported = false;
  /**
   * A witness keeps no state machine: it applies nothing, serves no reads and its snapshots hold
   * no image. Once a witness, always: a witness can only be removed, never promoted.
   */
  private witness: boolean;
  private readonly confWaiters = new ConfWaiters();
  private readonly cfg: NodeConfig;
  private readonly io: NodeIO;
  private readonly observer: NodeObserver;
  private app: StateMachine;
  private readonly sessions: ClientSessions;
  private readonly snapshotSettings: SnapshotSettings;
  private readonly keeper: SnapshotKeeper | null;
  private readonly senders: SnapshotSenders | null;
  private readonly intake: SnapshotIntake | null;
  /** A snapshot received whole and handed to the core, until a Ready installs it. */
  private received: SnapshotInfo | null = null;

  private readonly reads: ReadBatches;
  /** The last index applied to the state machine (from entries, or a snapshot). */
  applied: number;
  /** Command bytes applied since the last snapshot was taken (its byte trigger). */
  private bytesSinceSnapshot = 0;
  private snapshotNotBeforeMs = 0;
  /** Memory storage: applied entries every voter holds are dropped in steps of this many (0: never). */
  private readonly compactEntries: number;
  /** The highest index every voter is known to hold durably (from our progress as leader, or a leader's held frame). */
  private heldByAll = 0;
  private heldCheckedAt = 0;
  private heldBehind = false;
  private lastCompactCheckMs = 0;

  // Benchmark counters (read through benchStats).
  appendsSent = 0;
  entriesSent = 0;

  private lastStatus = '';
  private statusDue = false;
  private readonly sent = new SentCounts();
  private lastStatusAt = Number.NEGATIVE_INFINITY;
  private lastTickAt: number;
  private stopped = false;

  constructor(init: NodeHostInit) {
    const { config: cfg, io } = init;
    this.cfg = cfg;
    this.io = io;
    this.observer = init.observer ?? {};
    this.self = init.self;
    this.app = init.app;
    this.clock = new LogClock(cfg.clockMs);
    this.keeper = init.snapshots;
    this.snapshotSettings = { ...snapshotSettingsDefault, ...(cfg.snapshot ?? {}) };
    this.compactEntries = cfg.storage === 'memory' ? (cfg.compactEntries ?? compactEntriesDefault) : 0;
    const startedFrom = init.startedFrom;
    const snapMeta: SnapshotMeta | null = startedFrom === null ? null : snapshotMetaOf(startedFrom);
    this.log = new DurableLog(init.store, init.recovered, snapMeta, this.compactEntries > 0, cfg.logChunkBytes);
    this.applied = startedFrom?.index ?? 0;
    const base = { ...cfg.raft, id: init.self, storage: this.log, applied: this.applied, ...(cfg.unsafe ? { unsafe: cfg.unsafe } : {}) };
    this.raft = createRaft(base, cfg, init.self, init.peers, createRng(mixSeed(cfg.seed, init.self, init.incarnation)));
    this.membership = this.raft.membership;
    this.membershipIndex = this.raft.membershipIndex;
    // A joining node's first configuration is the cluster's, not one it was ever in.
    this.memberAt = cfg.joining !== true && isMember(this.membership, init.self) ? this.membershipIndex : -1;
    this.witness = cfg.joinAs === 'witness' || this.membership.witnesses.includes(init.self);
    this.sessions = new ClientSessions(this.raft, io, (i) => this.log.term(i), () => !this.witness);
    this.reads = new ReadBatches(io);
    if (this.keeper !== null) {
      const transfer: TransferSettings = { ...transferDefaults, ...(cfg.transfer ?? {}) };
      this.senders = new SnapshotSenders(this.keeper.store, transfer, io, (to, ok) => {
        this.raft.reportSnapshot(to, ok);
        // The file it sent may be one we kept only for it.
        this.keeper!.prune(this.senders!.inUse());
      });
      this.intake = new SnapshotIntake(this.keeper.store, io, (from, term, info) => this.onSnapshotReceived(from, term, info));
    } else {
      this.senders = null;
      this.intake = null;
    }
    this.lastTickAt = io.now();
  }

  // ---- inputs --------------------------------------------------------------------------------

  /**
   * A frame from a peer node or a client actor (ring memory, valid during the call). Told apart
   * by kind, not by sender: a node added while this one runs is in no list this node started with.
   */
  onFrame(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const kind = frameKind(bytes, start, end);
    if (kind === FrameKind.raft) {
      this.raft.step(decodeRaft(bytes, start, end));
    } else if (kind === FrameKind.held) {
      // True whoever sent it and whenever it arrives: what every voter holds it keeps.
      this.heldByAll = Math.max(this.heldByAll, decodeControl(bytes, start, end).seq);
    } else if (kind === FrameKind.snapshotChunk) {
      if (this.intake === null) return;
      const c = decodeSnapshotChunk(bytes, start, end);
      // A chunk from a leader of an older term is stale: its core would ignore the snapshot anyway.
      if (c.leaderTerm >= this.raft.currentTerm) this.intake.onChunk(from, c.key, c.leaderTerm, c.offset, c.data);
    } else if (kind === FrameKind.snapshotAck) {
      if (this.senders === null) return;
      const a = decodeSnapshotAck(bytes, start, end);
      this.senders.onAck(from, a.key, a.have, a.done);
    } else if (kind === FrameKind.witnessSnapshot) {
      this.onWitnessSnapshot(from, bytes, start, end);
    } else if (kind === FrameKind.propose) {
      this.sessions.onProposeFrame(this.self, from, bytes, start, end);
    } else if (kind === FrameKind.reads) {
      const r = decodeReads(bytes, start, end);
      this.onReads(this.reads.create(from, r.batch, r.mode, r.reads));
    } else {
      throw new DecodeError(end - start, `node ${this.self}: unexpected frame kind ${kind} from actor ${from}`);
    }
  }

  /** A codec message from a peer (Raft messages travel as frames; only tests send these). */
  onMessage(_from: ActorId, m: Message): void {
    this.raft.step(m);
  }

  /** Before each drained batch of frames: the core first sees the time that passed (a stall, a long fsync). */
  beforeBatch(): void {
    this.catchUpTicks();
  }

  /** The leader this node knows of (0: none). */
  get leaderId(): number {
    return this.raft.leaderId;
  }

  /** This node as its client port reports it (apps/cluster/node-door.ts). */
  doorView(): DoorView {
    const st = this.raft.status();
    const m = st.membership;
    return {
      role: st.role,
      term: st.term,
      commit: st.commit,
      lastIndex: st.lastIndex,
      applied: this.applied,
      firstIndex: st.firstIndex,
      snapshotIndex: st.snapshotIndex,
      voters: [...m.voters],
      outgoing: [...m.outgoing],
      learners: [...m.learners],
      witnesses: [...m.witnesses],
      membershipIndex: st.membershipIndex,
    };
  }

  /** The tick timer fired. */
  tick(): void {
    if (this.stopped) return;
    this.catchUpTicks();
    this.senders?.tick();
    if (this.raft.currentRole === Role.leader && !this.witness) this.clock.due(this.io.now(), this.app, (bytes) => this.raft.propose(bytes) > 0);
    this.process();
  }

  /** Drains every Ready: the one place where the durability order is kept. */
  process(): void {
    if (this.stopped) return;
    this.catchUpTicks();
    this.raft.flush();
    const ackBeforeSync = this.cfg.hostUnsafe?.ackBeforeSync === true;
    while (this.raft.hasReady()) {
      const rd = this.raft.ready();
      this.observer.ready?.(rd);
      // First: whether a snapshot goes to a witness depends on the configuration it was made in.
      if (rd.membership !== null) this.onMembership(rd.membership);
      // Leader appends and heartbeats go first: followers write in parallel with our own disk.
      this.sendAll(rd.messages);
      if (ackBeforeSync) this.sendAll(rd.messagesAfterPersist);
      // Wake them now, not when this turn ends: they append while we write and apply.
      this.io.publish?.();
      if (rd.snapshot !== null) this.installSnapshot(rd.snapshot);
      this.log.write(rd.entries, rd.hardState);
      if (rd.mustSync) this.sync();
      if (!ackBeforeSync) {
        this.sendAll(rd.messagesAfterPersist);
        // A follower's ack leaves before it applies: the leader commits meanwhile.
        this.io.publish?.();
      }
      this.apply(rd);
      if (this.sessions.size > 0) this.sessions.advanceAcks(this.self, this.applied);
      this.collectReadStates(rd);
      this.serveReads();
      if (rd.softState) this.onRoleChange(rd.softState);
      this.raft.advance(rd);
    }
    if (this.received !== null) this.discardReceived();
    this.checkRemoved();
    // After advanceAcks, which looks up the terms of what was just applied.
    this.maybeCompact();
    this.maybeSnapshot(false);
    this.sessions.sendAcks();
    this.reportStatus(this.statusDue);
    this.statusDue = false;
  }

  /** Time on the log: clock entries this node proposes while it leads and an app wants time. */
  private clock!: LogClock;

  private readonly stallCell = new Int32Array(new SharedArrayBuffer(4));

  private sync(): void {
    this.log.sync();
    // The slow-disk fault: the thread waits as it would on a slow fsync.
    if (this.cfg.syncDelayMs !== undefined && this.cfg.syncDelayMs > 0) Atomics.wait(this.stallCell, 0, 0, this.cfg.syncDelayMs);
  }

  // Ticks follow the monotonic clock, not the count of timer callbacks: after a pause (a stalled
  // thread, a long fsync) the core first sees all the time that passed. A lease must never
  // outlive real time because the node that holds it was not running.
  private catchUpTicks(): void {
    const due = Math.floor((this.io.now() - this.lastTickAt) / this.cfg.tickMs);
    if (due <= 0) return;
    this.lastTickAt += due * this.cfg.tickMs;
    for (let i = 0; i < due; i++) this.raft.tick();
  }

  // ---- the Ready loop's pieces --------------------------------------------------------------

  private sendAll(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (m.type === MessageType.snapshot) {
        this.sent.count(m.to, m.type);
        this.offerSnapshot(m);
        continue;
      }
      if (m.type === MessageType.app && m.entries.length > 0) {
        this.appendsSent++;
        this.entriesSent += m.entries.length;
      }
      this.sent.count(m.to, m.type);
      this.io.sendFrame(m.to, encodeRaft(m));
    }
  }

  /** The core offers a follower a snapshot: stream the newest one (at or past what it asked for). */
  private offerSnapshot(m: Message): void {
    if (this.membership.witnesses.includes(m.to)) {
      this.offerWitnessSnapshot(m);
      return;
    }
    const current = this.keeper?.current ?? null;
    if (current === null || this.senders === null || current.index < m.index) {
      throw new Error(`node ${this.self}: the core offers snapshot ${m.index} to node ${m.to}, but the newest snapshot file is ${current?.index ?? 'none'}`);
    }
    this.senders.start(m.to, m.term, current);
  }

  /**
   * A witness needs only where its log restarts and the configuration there: it gets them in one
   * frame, not the image. The core hears at once that the transfer is done; a frame lost on the
   * way shows as a rejected append, and the core offers the snapshot again.
   */
  private offerWitnessSnapshot(m: Message): void {
    const conf = m.entries[0];
    if (conf === undefined || conf.kind !== EntryKind.config) throw new Error(`node ${this.self}: the core offers snapshot ${m.index} to witness ${m.to} without its configuration`);
    this.io.sendFrame(m.to, encodeWitnessSnapshot(m.term, m.index, m.logTerm, conf.data));
    this.raft.reportSnapshot(m.to, true);
  }

  /** The leader's imageless snapshot (this node is a witness): record it as a snapshot file of our own, then hand it to the core. */
  private onWitnessSnapshot(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const w = decodeWitnessSnapshot(bytes, start, end);
    if (w.leaderTerm < this.raft.currentTerm || this.keeper === null) return;
    if (w.index <= this.raft.commitIndex) {
      // Old news for the core, which answers with its commit index: no file needed.
      this.raft.step(message(MessageType.snapshot, from, this.self, w.leaderTerm, { index: w.index, logTerm: w.term }));
      return;
    }
    const m = decodeMembership(w.membership);
    let info: SnapshotInfo;
    try {
      info = this.keeper.store.writeNow({ index: w.index, term: w.term, voters: [...m.voters], membership: m }, []);
    } catch (err) {
      this.io.emit({ type: 'snapshot-failed', index: w.index, error: (err as Error).message });
      return;
    }
    this.onSnapshotReceived(from, w.leaderTerm, info);
  }

  /** A whole snapshot file arrived and verified: hand its metadata to the core, as the leader's message. */
  private onSnapshotReceived(from: ActorId, leaderTerm: number, info: SnapshotInfo): void {
    if (this.received !== null && this.received.name !== info.name) this.keeper!.store.remove(this.received.name);
    this.received = info;
    this.raft.step(message(MessageType.snapshot, from, this.self, leaderTerm, { index: info.index, logTerm: info.term, entries: membershipEntries(info) }));
  }

  /** The core did not take the snapshot it was handed (old news, or a stale leader): drop the file. */
  private discardReceived(): void {
    const r = this.received!;
    this.received = null;
    if (this.keeper!.current?.name !== r.name) this.keeper!.store.remove(r.name);
  }

  /**
   * A snapshot from the leader replaces the state machine and the log. The state machine is
   * restored from the received file before the log reset is written: the sync that follows makes
   * both durable before the ack leaves.
   */
  private installSnapshot(meta: SnapshotMeta): void {
    const info = this.received;
    if (info === null || info.index !== meta.index || info.term !== meta.term || this.keeper === null) {
      throw new Error(`node ${this.self}: the core installs snapshot ${meta.index}/t${meta.term}, but the file received is ${info === null ? 'none' : `${info.index}/t${info.term}`}`);
    }
    if (isImageless(info) && !this.witness) throw new Error(`node ${this.self}: snapshot ${info.name} holds no image (a witness's), but this node keeps a state machine`);
    restoreFromFile(this.app, this.keeper.store, info);
    this.log.installSnapshot(meta);
    this.keeper.adopt(info, this.senders?.inUse());
    this.received = null;
    this.applied = meta.index;
    this.bytesSinceSnapshot = 0;
    // Proposals this node took as leader may or may not be in the snapshot: resubmitting is safe
    // (the state machine's session table applies a command once), so their clients go back.
    this.sessions.forgetThrough(this.self, meta.index);
    this.confWaiters.replacedThrough(meta.index);
    if (this.observer.snapshotInstalled) this.observer.snapshotInstalled(meta.index, meta.term, this.app.digest());
    this.io.emit({ type: 'snapshot-installed', index: meta.index, term: meta.term, bytes: info.fileBytes });
  }

  /** Where the entry being applied lies in the log's memory (reused: apply makes no object per entry). */
  private readonly at = { bytes: noResult, start: 0, end: 0 };

  private apply(rd: Ready): void {
    const at = this.at;
    // Read from the log, which holds every committed entry once rd.entries are written.
    const watch = this.observer.applied;
    for (let index = rd.committedFrom; index <= rd.committedTo; index++) {
      let result: Uint8Array | null = null;
      const kind = this.log.locate(index, at);
      // Config entries and no-ops change nothing in the app; a witness keeps no app at all.
      if (kind === EntryKind.normal) {
        if (!this.witness) result = this.app.apply(index, at.bytes, at.start, at.end);
        this.bytesSinceSnapshot += at.end - at.start;
      }
      this.applied = index;
      if (watch !== undefined) watch(index, this.log.term(index), kind, at.bytes, at.start, at.end);
      if (this.confWaiters.size > 0) this.confWaiters.applied(index, this.log.term(index), kind);
      if (this.sessions.wantResults) this.sessions.applied(index, result ?? noResult);
    }
  }

  private onRoleChange(soft: SoftState): void {
    // Reads not yet confirmed may vanish with the old role: their clients retry.
    this.reads.redirectUnconfirmed(this.leaderHint());
    // A new leader counts time from now: the gap since the last leader's clock entry is not counted (late, never early).
    if (soft.role === Role.leader) this.clock.restart(this.io.now());
    if (soft.role !== Role.leader) {
      this.senders?.stopAll();
      if (this.sessions.size > 0) {
        this.sessions.sendAcks();
        this.sessions.redirectAll(this.self);
      }
    }
    this.io.emit({ type: 'role', role: roleName[soft.role], term: soft.term, leader: soft.leader });
    this.reportStatus(true);
  }

  // ---- membership ------------------------------------------------------------------------------

  private onMembership(m: Membership): void {
    this.membership = m;
    this.membershipIndex = this.raft.membershipIndex;
    if (isMember(m, this.self)) this.memberAt = this.membershipIndex;
    if (m.witnesses.includes(this.self)) this.witness = true;
    this.io.emit({ type: 'membership', index: this.membershipIndex, voters: [...m.voters], outgoing: [...m.outgoing], learners: [...m.learners], witnesses: [...m.witnesses] });
    // Reported once the batch is done, with what it applied: the cluster routes by it.
    this.statusDue = true;
  }

  /** Once a committed configuration after one that included this node leaves it out, say so (once): its worker may be stopped. */
  private checkRemoved(): void {
    if (this.removedReported || this.memberAt < 0 || this.membershipIndex <= this.memberAt || isMember(this.membership, this.self)) return;
    if (this.raft.commitIndex < this.membershipIndex) return;
    this.removedReported = true;
    this.io.emit({ type: 'removed', index: this.membershipIndex });
  }

  /** The configuration in force here and this node's commit index (what the cluster checks before a change). */
  membershipStatus(): { voters: number[]; outgoing: number[]; learners: number[]; witnesses: number[]; membershipIndex: number; commit: number } {
    const m = this.raft.membership;
    return { voters: [...m.voters], outgoing: [...m.outgoing], learners: [...m.learners], witnesses: [...m.witnesses], membershipIndex: this.raft.membershipIndex, commit: this.raft.commitIndex };
  }

  /**
   * Proposes a configuration change (this node must lead); resolves once its entry is applied
   * here, or at once when the core refuses it (the reason says why).
   */
  changeMembership(cc: ConfChange): Promise<ConfChangeOutcome> {
    const outcome = this.confWaiters.propose(this.raft, cc);
    this.process();
    return outcome;
  }

  // ---- snapshots and compaction --------------------------------------------------------------

  /**
   * Takes a snapshot when enough was applied since the last (or when forced): the image is
   * captured now and written in the background; the log is cut once it is durable.
   */
  private maybeSnapshot(force: boolean): boolean {
    const keeper = this.keeper;
    if (keeper === null || keeper.writing || this.stopped) return false;
    if (this.witness) return this.maybeWitnessSnapshot(keeper, force);
    const s = this.snapshotSettings;
    const since = this.applied - (keeper.current?.index ?? 0);
    if (since <= 0) return false;
    if (!force) {
      const due = (s.entries > 0 && since >= s.entries) || (s.bytes > 0 && this.bytesSinceSnapshot >= s.bytes);
      if (!due || this.io.now() < this.snapshotNotBeforeMs) return false;
    }
    const meta = this.snapshotMetaAt(this.applied);
    const image = this.app.snapshot();
    if (this.observer.snapshotTaken) this.observer.snapshotTaken(meta.index, this.app.digest());
    // The app sees only commands: after it, the log may hold entries that change nothing (no-ops).
    if (image.index > this.applied) throw new Error(`node ${this.self}: the state machine's image is at ${image.index}, past what the node applied (${this.applied})`);
    this.bytesSinceSnapshot = 0;
    this.writeSnapshot(keeper, image, meta);
    return true;
  }

  private snapshotMetaAt(index: number): { index: number; term: number; voters: number[]; membership: Membership } {
    const m = this.raft.membershipAt(index);
    return { index, term: this.log.term(index), voters: [...m.voters], membership: m };
  }

  private writeSnapshot(keeper: SnapshotKeeper, image: ReturnType<StateMachine['snapshot']>, meta: ReturnType<NodeHost['snapshotMetaAt']>): void {
    keeper.write(
      image,
      meta,
      () => this.io.now(),
      (info) => this.onSnapshotDurable(info),
      (err) => {
        this.snapshotNotBeforeMs = this.io.now() + snapshotRetryMs;
        this.io.emit({ type: 'snapshot-failed', index: meta.index, error: err.message });
      },
    );
  }

  /**
   * A witness bounds its log with imageless snapshots, and only through what every full voter
   * holds (the leader says how far in its heartbeats): below that, no full voter can ever need an
   * entry from it, should it lead for a while.
   */
  private maybeWitnessSnapshot(keeper: SnapshotKeeper, force: boolean): boolean {
    const s = this.snapshotSettings;
    const since = this.applied - (keeper.current?.index ?? 0);
    const due = force || (s.entries > 0 && since >= s.entries) || (s.bytes > 0 && this.bytesSinceSnapshot >= s.bytes);
    if (!due || since <= 0 || (!force && this.io.now() < this.snapshotNotBeforeMs)) return false;
    const st = this.raft.status();
    const point = Math.min(st.fullyHeld, st.commit, this.applied);
    if (point <= (keeper.current?.index ?? 0) || point < this.log.firstIndex() - 1) {
      // The full voters lag (or the leader has not said): look again a little later, not per batch.
      this.snapshotNotBeforeMs = this.io.now() + compactRecheckMs;
      return false;
    }
    this.bytesSinceSnapshot = 0;
    this.writeSnapshot(keeper, noImage(point), this.snapshotMetaAt(point));
    return true;
  }

  private onSnapshotDurable(info: SnapshotInfo): void {
    const keeper = this.keeper!;
    if (this.stopped || (keeper.current !== null && keeper.current.index >= info.index)) {
      // A snapshot installed from the leader meanwhile covers more: this one is of no use.
      if (keeper.current?.name !== info.name) keeper.store.remove(info.name);
      return;
    }
    this.log.setSnapshot(snapshotMetaOf(info));
    keeper.adopt(info, this.senders?.inUse());
    this.compactLog();
    this.io.emit({ type: 'snapshot', index: info.index, bytes: info.fileBytes, ms: Math.round(keeper.lastDurationMs) });
  }

  /**
   * Cuts the log behind the newest snapshot, keeping the catch-up margin (and, on a leader, what
   * its slowest live follower needs). The store keeps a little more: everything after the
   * previous snapshot, so a damaged newest snapshot can fall back to it at restart.
   */
  private compactLog(): void {
    const keeper = this.keeper;
    if (keeper === null || keeper.current === null) return;
    this.lastCompactCheckMs = this.io.now();
    // Never back: a follower that slowed down after the cut gets a snapshot.
    const rule = { ...this.snapshotSettings, liveTicks: followerLiveElections * (this.cfg.raft.electionTicks ?? defaultRaftSettings.electionTicks) };
    const memoryThrough = Math.max(compactionPoint(keeper.current.index, this.raft.status(), rule), this.log.firstIndex() - 1);
    const prev = keeper.previous;
    const disk = prev !== null && prev.index < memoryThrough ? { index: prev.index, term: prev.term } : null;
    this.log.compactThrough(memoryThrough, disk ?? memoryThrough);
  }

  private maybeCompact(): void {
    if (this.compactEntries > 0) this.compactHeld();
    else if (this.keeper?.current != null && this.raft.currentRole === Role.leader && this.io.now() - this.lastCompactCheckMs >= compactRecheckMs) {
      // A leader held back by a slow follower looks again now and then.
      this.compactLog();
    }
  }

  /**
   * Memory storage: drop what every voter holds and this node applied. A node that can never
   * restart never needs such entries again, nor does any peer (each holds them durably and can
   * only lose them by a restart, which memory storage refuses). A crashed voter holds the point
   * back until the cluster is restarted: the log then grows as before, which is safe.
   */
  private compactHeld(): void {
    const now = this.io.now();
    // Not per batch (status() is not free): once per step of new entries, or now and then while
    // a voter lags behind, so that the point moves on once it has caught up.
    if (this.raft.currentRole === Role.leader && (this.applied - this.heldCheckedAt >= this.compactEntries || (this.heldBehind && now - this.lastCompactCheckMs >= compactRecheckMs))) {
      this.heldCheckedAt = this.applied;
      this.lastCompactCheckMs = now;
      let min = Infinity;
      for (const pr of this.raft.status().progress.values()) min = Math.min(min, pr.match);
      this.heldBehind = min < this.applied;
      if (Number.isFinite(min) && min > this.heldByAll) {
        this.heldByAll = min;
        for (const v of members(this.membership)) if (v !== this.self) this.io.sendFrame(v, encodeControl(FrameKind.held, this.heldByAll));
      }
    }
    const upTo = Math.min(this.heldByAll, this.applied);
    if (upTo - (this.log.firstIndex() - 1) >= this.compactEntries) this.log.compactThrough(upTo);
  }

  // ---- reads ---------------------------------------------------------------------------------

  private collectReadStates(rd: Ready): void {
    for (const rs of rd.readStates) this.reads.confirmed(rs.context, rs.index);
  }

  private serveReads(): void {
    this.reads.serve(this.app, this.applied, this.raft.commitIndex, this.cfg.hostUnsafe?.serveBeforeApply === true);
  }

  private leaderHint(): number {
    const lead = this.raft.leaderId;
    return lead === this.self ? 0 : lead;
  }

  private onReads(b: ReadBatch): void {
    if (this.witness) {
      // A witness leader is handing leadership on: linearizable reads wait for the next leader.
      if (b.mode === 'index' || b.mode === 'lease') this.reads.redirect(b, this.leaderHint());
      else this.reads.refuse(b, `node ${this.self} is a witness and serves no reads; read from a full voter`);
      return;
    }
    if (b.mode === 'stale') {
      this.reads.answer(b, this.app, this.applied, this.applied, this.raft.commitIndex);
      return;
    }
    const isLeader = this.raft.currentRole === Role.leader;
    if ((b.mode === 'index' || b.mode === 'lease') && !isLeader) {
      this.reads.redirect(b, this.leaderHint());
      return;
    }
    this.reads.await(b);
    // A lapsed lease falls back to a ReadIndex round: slower, still linearizable.
    this.catchUpTicks();
    const started = (b.mode === 'lease' && this.raft.leaseRead(b.ctx)) || this.raft.readIndex(b.ctx);
    if (!started) this.reads.redirect(b, this.leaderHint());
  }

  // ---- status and control ---------------------------------------------------------------------

  private reportStatus(force: boolean): void {
    const now = this.io.now();
    // Checked before building the status: this runs after every drained batch.
    if (!force && now - this.lastStatusAt < this.cfg.statusEveryMs) return;
    const st = this.raft.status();
    const key = `${st.role}:${st.term}:${st.leader}:${st.commit}:${this.applied}:${st.lastIndex}:${st.firstIndex}:${st.snapshotIndex}:${st.membershipIndex}`;
    // Unchanged status is still repeated now and then, so a supervisor that missed a report
    // (it restarted its view, or the frame was dropped) converges.
    if (key === this.lastStatus && now - this.lastStatusAt < statusRefreshMs) return;
    this.lastStatus = key;
    this.lastStatusAt = now;
    this.io.reply({
      t: 'status',
      role: st.role,
      term: st.term,
      leader: st.leader,
      commit: st.commit,
      lastIndex: st.lastIndex,
      applied: this.applied,
      firstIndex: st.firstIndex,
      snapshotIndex: st.snapshotIndex,
      voters: [...st.membership.voters],
      outgoing: [...st.membership.outgoing],
      learners: [...st.membership.learners],
      witnesses: [...st.membership.witnesses],
      membershipIndex: st.membershipIndex,
      vote: st.vote,
      progress: st.role === Role.leader ? flatProgress(st.progress) : [],
      sent: this.sent.take(),
    });
  }

  /** What `status` answers: the core's view plus the host's (pending work, log in memory, snapshots). */
  status(): Record<string, unknown> {
    const st = this.raft.status();
    const k = this.keeper;
    return {
      ...st,
      roleName: roleName[st.role],
      progress: Object.fromEntries(st.progress),
      witness: this.witness,
      applied: this.applied,
      reads: this.reads.size,
      logEntriesInMemory: this.log.length,
      snapshot:
        k === null
          ? null
          : {
              index: k.current?.index ?? 0,
              fileBytes: k.current?.fileBytes ?? 0,
              // The image's size: what the state machine costs (0 for a witness's imageless snapshots).
              current: k.current === null ? null : { name: k.current.name, index: k.current.index, term: k.current.term, fileBytes: k.current.fileBytes, dataBytes: k.current.dataBytes },
              previousIndex: k.previous?.index ?? 0,
              writing: k.writing,
              taken: k.taken,
              failures: k.failures,
              lastError: k.lastError,
              sending: this.senders?.status() ?? [],
              receiving: this.intake?.status() ?? null,
              transfersCompleted: this.senders?.completed ?? 0,
              transfersFailed: this.senders?.failed ?? 0,
              bytesSent: this.senders?.bytesSent ?? 0,
              bytesReceived: this.intake?.bytesReceived ?? 0,
            },
    };
  }

  /** Starts an election now, unless it would break a lease (see RaftNode.campaign). */
  campaign(): { started: boolean; why?: string } {
    const started = this.raft.campaign();
    this.process();
    if (started) return { started };
    return {
      started,
      why:
        this.raft.currentRole === Role.leader
          ? 'this node already leads'
          : 'this node heard from a leader within the election timeout and may be part of its read lease; transfer leadership instead, or retry once it has lost the leader',
    };
  }

  transferLeadership(to: number): boolean {
    const ok = this.raft.transferLeadership(to);
    this.process();
    return ok;
  }

  /** Takes a snapshot now (if anything was applied since the last); resolves once it is durable. */
  async snapshotNow(): Promise<{ index: number; started: boolean }> {
    if (this.keeper === null) throw new Error(`node ${this.self} keeps no snapshots (memory storage)`);
    await this.keeper.settle();
    const started = this.maybeSnapshot(true);
    await this.keeper.settle();
    return { index: this.keeper.current?.index ?? 0, started };
  }

  readLocal(key: string): Uint8Array | undefined {
    return this.app.readLocal(key);
  }

  get proposalsAccepted(): number {
    return this.sessions.proposalsAccepted;
  }

  /** Commands the `count` state machine applied (null for other apps): what a benchmark checks. */
  get appliedCommands(): number | null {
    return this.app instanceof CountStateMachine ? this.app.commands : null;
  }

  /** The state machine's digest and the index it reflects (to compare replicas). */
  digest(): { applied: number; digest: string } {
    return { applied: this.applied, digest: this.app.digest() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.senders?.stopAll();
    await this.keeper?.settle();
    this.log.close();
  }
}

function flatProgress(progress: ReadonlyMap<number, ProgressStatus>): number[] {
  const out: number[] = [];
  for (const [id, pr] of progress) out.push(id, pr.match, pr.next, progressStates.indexOf(pr.state), pr.inflight);
  return out;
}
