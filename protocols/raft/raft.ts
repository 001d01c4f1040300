// One Raft node as a deterministic state machine (etcd-raft style): step/tick/propose/readIndex/
// leaseRead change state and queue output, ready()/advance() hand it to the host one batch at a time.
// It must never touch timers, clocks, threads, files or Math.random: time is tick(), chance is cfg.rng.
import { resolveRaftConfig, type RaftConfig, type ResolvedRaftConfig } from './config.ts';
import { LeaderLease } from './lease.ts';
import { RaftLog } from './log.ts';
import { Progress, ProgressState } from './progress.ts';
import { JointConfig, VoteResult } from './quorum.ts';
import {
  applyConfChange,
  decodeMembership,
  emptyMembership,
  encodeConfEntry,
  encodeMembership,
  fullVoters,
  isJoint,
  isVoter,
  members,
  membership,
  MembershipLog,
  sameMembership,
  type ConfChange,
  type Membership,
} from './membership.ts';
import { ReadOnly, type ReadRequest } from './read-only.ts';
import { noSnapshot } from './storage.ts';
import {
  campaignTransfer,
  emptyEntries,
  EntryKind,
  message,
  MessageType,
  NONE,
  Role,
  type Entry,
  type HardState,
  type Message,
  type ReadState,
  type Ready,
  type SnapshotMeta,
  type SoftState,
} from './types.ts';

const CampaignKind = { preElection: 0, election: 1, transfer: 2 } as const;
type CampaignKind = (typeof CampaignKind)[keyof typeof CampaignKind];

const emptyData = new Uint8Array(0);

/** A read-only view for hosts, dashboards and tests. */
export interface RaftStatus {
  id: number;
  role: Role;
  term: number;
  vote: number;
  leader: number;
  commit: number;
  applied: number;
  lastIndex: number;
  lastTerm: number;
  persistedIndex: number;
  /** The first index the log still holds (entries before it were compacted into a snapshot). */
  firstIndex: number;
  /** The newest durable snapshot's index (0: none). */
  snapshotIndex: number;
  /** Leader: command bytes proposed in this term and not yet committed (uncommittedBytesMax bounds it). */
  uncommittedBytes: number;
  leadTransferee: number;
  /** Ticks this node has counted since it started (the clock lease ticks are measured on). */
  tick: number;
  /** True when leaseRead() would serve now: leader, CheckQuorum on, lease held, own-term commit, no transfer. */
  leaseValid: boolean;
  /** The lease (leader only) holds while `tick` is below this; 0 when no lease is held. */
  leaseUntilTick: number;
  /** Per-follower replication state (leader only). */
  progress: Map<number, ProgressStatus>;
  /** The configuration in force (the newest in this node's log or snapshot). */
  membership: Membership;
  /** Index of the entry that set it (0: the initial one). */
  membershipIndex: number;
  /** Witness: the index every full voter holds, as the leader last said (what it may drop through). */
  fullyHeld: number;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  inflight: number;
  inflightBytes: number;
  paused: boolean;
  /** Heard from within the current CheckQuorum period. */
  recentActive: boolean;
  /** The leader's tick when it last heard from this follower (-1: not during this leadership). */
  lastActiveTick: number;
  /** Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: number;
}

/**
 * A Ready as a class, not an object literal: a literal with a getter is built by the runtime's
 * slow path on every call (a few percent of a follower's CPU under load); here the getter lives
 * on the prototype and every Ready has one shape.
 */
class ReadyBatch implements Ready {
  private committed: readonly Entry[] | null = null;

  constructor(
    readonly softState: SoftState | null,
    readonly hardState: HardState | null,
    readonly membership: Membership | null,
    readonly snapshot: SnapshotMeta | null,
    readonly entries: readonly Entry[],
    readonly committedFrom: number,
    readonly committedTo: number,
    private readonly log: RaftLog,
    readonly messages: Message[],
    readonly messagesAfterPersist: Message[],
    readonly readStates: ReadState[],
    readonly mustSync: boolean,
  ) {}

  get committedEntries(): readonly Entry[] {
    // Committed entries are never truncated, so the slice is the same whenever it is taken.
    return (this.committed ??= this.committedTo >= this.committedFrom ? this.log.slice(this.committedFrom, this.committedTo + 1) : emptyEntries);
  }
}

export class RaftNode {
  readonly id: number;
  private readonly cfg: ResolvedRaftConfig;
  private quorum: JointConfig;
  private readonly memberships: MembershipLog;
  private readonly log: RaftLog;
  /** Witness: the index every full voter holds (heartbeats from the leader say). */
  private fullyHeld = 0;

  private term: number;
  private vote: number;
  private role: Role = Role.follower;
  private lead = NONE;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Every tick() since this node started; never reset (leases are measured on it). */
  private ticks = 0;
  /**
   * The tick at which this node last heard from a leader (any term). Unlike `lead`, it survives
   * term changes, and a restarted node assumes it heard one at its first tick: with CheckQuorum a
   * node refuses votes for electionTicks after that, which is what leader leases rely on.
   */
  private leaderContactTick: number;

  private readonly votes = new Map<number, boolean>();
  private readonly progress = new Map<number, Progress>();
  private leadTransferee = NONE;
  private readonly readOnly: ReadOnly;
  private readonly lease: LeaderLease;
  /** Reads that reached a new leader before an entry of its term committed (thesis §6.4 step 1). */
  private pendingReads: ReadRequest[] = [];
  /**
   * Leader: command bytes of its own entries not yet committed, and (index, bytes) pairs from
   * `uncommittedHead` on, oldest first, to subtract as commit passes them.
   */
  private uncommittedBytes = 0;
  private uncommittedQueue: number[] = [];
  private uncommittedHead = 0;
  /**
   * The term of the newest hard state the host has made durable (advance). A heartbeat reply
   * promises that its sender is in the leader's term: it may leave only once that is durable, or
   * a crash brings the node back at an older term, free to vote while the leader counts the
   * reply toward its lease.
   */
  private durableTerm: number;

  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;
  private prevMembership: Membership;
  private readyOutstanding = false;

  constructor(config: RaftConfig) {
    this.cfg = resolveRaftConfig(config);
    this.id = this.cfg.id;
    const hs = this.cfg.storage.initialState();
    this.log = new RaftLog(this.cfg.storage, hs.commit, Math.min(this.cfg.applied, hs.commit));
    this.memberships = this.loadMemberships();
    this.prevMembership = this.memberships.current;
    this.quorum = quorumOf(this.memberships.current);
    if (this.cfg.witnesses.includes(this.id) || this.memberships.current.witnesses.includes(this.id)) this.wasWitness = true;
    this.log.onAppend = (ents) => this.onLogAppend(ents);
    this.term = hs.term;
    this.vote = hs.vote;
    this.durableTerm = hs.term;
    this.readOnly = new ReadOnly(this.cfg.readPendingMax);
    this.lease = new LeaderLease(
      this.id,
      () => this.quorum,
      this.cfg.electionTicks - this.cfg.leaseDriftTicks,
      { ignoreAcks: this.cfg.unsafe.leaseIgnoresAcks, tooLong: this.cfg.unsafe.leaseTooLong },
      this.cfg.electionTicks,
    );
    // A node with durable state may have acked a leader's lease just before it crashed, and
    // that memory was volatile: it must act as if it had heard from that leader just now.
    this.leaderContactTick = hs.term > 0 && this.cfg.unsafe.voteAmnesia !== true ? 0 : Number.NEGATIVE_INFINITY;
    this.prevHard = hs;
    this.becomeFollower(this.term, NONE);
    this.prevSoft = this.softState;
  }

  // ---------------------------------------------------------------- inspection

  get softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }

  get hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  status(): RaftStatus {
    const progress: RaftStatus['progress'] = new Map();
    if (this.role === Role.leader) {
      for (const [id, pr] of this.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state === ProgressState.probe ? 'probe' : pr.state === ProgressState.replicate ? 'replicate' : 'snapshot',
          inflight: pr.inflights.length,
          inflightBytes: pr.inflights.bytes,
          paused: pr.isPaused(),
          recentActive: pr.recentActive,
          lastActiveTick: pr.lastActiveTick,
          pendingSnapshot: pr.pendingSnapshot,
        });
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      persistedIndex: this.log.persistedIndex(),
      firstIndex: this.log.firstIndex(),
      snapshotIndex: (this.cfg.storage.snapshot?.() ?? noSnapshot).index,
      uncommittedBytes: this.role === Role.leader ? this.uncommittedBytes : 0,
      leadTransferee: this.leadTransferee,
      tick: this.ticks,
      leaseValid: this.leaseValid(),
      leaseUntilTick: this.role === Role.leader && this.lease.untilTick > 0 ? this.lease.untilTick : 0,
      progress,
      membership: this.memberships.current,
      membershipIndex: this.memberships.currentIndex,
      fullyHeld: this.fullyHeld,
    };
  }

  get currentRole(): Role {
    return this.role;
  }

  get currentTerm(): number {
    return this.term;
  }

  get leaderId(): number {
    return this.lead;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  get lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The entry at index (durable or unstable), or undefined (beyond the log, or compacted away). */
  entryAt(index: number): Entry | undefined {
    if (index < this.log.firstIndex() || index > this.log.lastIndex()) return undefined;
    return this.log.slice(index, index + 1)[0];
  }

  /** Entries [lo, hi) of this node's log (durable and unstable) that it still holds, for inspection. */
  entries(lo: number, hi: number): Entry[] {
    return this.log.slice(Math.max(this.log.firstIndex(), lo), Math.min(hi, this.log.lastIndex() + 1));
  }

  /** The first index this node's log still holds. */
  get firstIndex(): number {
    return this.log.firstIndex();
  }

  // ---------------------------------------------------------------- inputs

  /** One unit of logical time. Election timeouts and heartbeats are counted in ticks. */
  tick(): void {
    this.ticks++;
    if (this.role === Role.leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /**
   * Starts an election now (as if the election timeout fired). Refused (false) on a leader and,
   * with CheckQuorum, while this node heard from a leader within the election timeout: its
   * replies may be part of that leader's lease, and a vote for itself would let a second leader
   * exist while the first still serves lease reads. Use transferLeadership to move leadership.
   */
  campaign(): boolean {
    if (this.role === Role.leader || !this.promotable()) return false;
    if (this.heardFromLeaderRecently() && this.cfg.unsafe.campaignIgnoresLease !== true) return false;
    this.hup();
    return true;
  }

  /**
   * Appends a command to the leader's log. Returns its index, or 0 when refused (not leader,
   * a leadership transfer is under way, or uncommittedEntriesMax reached). Nothing is sent
   * until flush() (or a heartbeat response / ack shows the follower is behind): the host
   * chooses when, so concurrent proposals share one AppendEntries.
   */
  propose(data: Uint8Array, kind: EntryKind = EntryKind.normal): number {
    if (this.role !== Role.leader || this.leadTransferee !== NONE) return 0;
    // A witness keeps no state machine to answer from; it leads only to hand leadership on.
    if (kind === EntryKind.config || this.isWitness()) return 0;
    const last = this.log.lastIndex();
    if (last - this.log.committed >= this.cfg.uncommittedEntriesMax) return 0;
    const bytes = data.length;
    // One proposal always fits when none is pending, so a value larger than the limit can still commit.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.uncommittedBytesMax) return 0;
    const e: Entry = { index: last + 1, term: this.term, kind, data };
    this.log.appendNext(e);
    this.uncommittedBytes += bytes;
    this.uncommittedQueue.push(e.index, bytes);
    return e.index;
  }

  /**
   * The host finished sending the snapshot to follower `to` (ok), or gave up on it (the follower
   * did not take it in time). Either way the follower is probed again: after an ok, once it acks;
   * after a failure, at the next heartbeat reply, which sends a fresh snapshot if it still needs one.
   * The host owes one report for every transfer it starts (lost or not), whichever snapshot it
   * actually shipped (it may send a newer one than asked): until the report or the follower's ack,
   * the follower stays paused, and nothing in the core can tell a lost transfer from a slow one.
   */
  reportSnapshot(to: number, ok: boolean): void {
    if (this.role !== Role.leader) return;
    const pr = this.progress.get(to);
    if (pr === undefined || pr.state !== ProgressState.snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.paused = true;
  }

  /**
   * Sends what is pending: appends to every follower up to its window and batch limits, and one
   * heartbeat round for reads waiting to be confirmed. The host calls it when idle or per tick.
   */
  flush(): void {
    if (this.role !== Role.leader) return;
    for (const id of this.progress.keys()) {
      if (id !== this.id) this.fillWindow(id);
    }
    this.startReadRound();
  }

  /**
   * Asks for a linearizable read (ReadIndex, thesis §6.4). A ReadState with this context comes
   * out of a later Ready once leadership is confirmed. Returns false when the read cannot be
   * started here (no known leader, or too many pending): retry later or elsewhere. Reads may
   * silently vanish if leadership changes; callers time them out.
   */
  readIndex(context: number): boolean {
    if (this.isWitness() && this.cfg.unsafe.witnessServesReads !== true) return false;
    if (this.role === Role.leader) return this.handleReadRequest({ context, from: this.id });
    if (this.lead === NONE) return false;
    this.send(message(MessageType.readIndex, this.id, this.lead, this.term, { context }));
    return true;
  }

  /**
   * Serves a read from the leader's lease (thesis §6.4.1): no message round. Returns true and
   * puts ReadState {index: commit, context} in the next Ready when this node leads, holds a lease
   * (a majority acked a heartbeat sent at tick T and now < T + electionTicks − leaseDriftTicks),
   * has committed an entry of its own term, and no leadership transfer is under way. Returns
   * false otherwise (or when readPendingMax reads wait in the Ready): fall back to readIndex()
   * or redirect. Always false with CheckQuorum off: then followers vote for a new candidate no
   * matter how recently they heard from this leader, so acks bound nothing.
   * Assumes every node ticks at the same rate, up to the drift that leaseDriftTicks covers.
   */
  leaseRead(context: number): boolean {
    if (!this.leaseValid()) return false;
    if (this.readStates.length >= this.cfg.readPendingMax) return false;
    this.readStates.push({ index: this.log.committed, context });
    return true;
  }

  private leaseValid(): boolean {
    return (
      this.cfg.checkQuorum &&
      (!this.isWitness() || this.cfg.unsafe.witnessServesReads === true) &&
      this.role === Role.leader &&
      this.leadTransferee === NONE &&
      this.committedEntryInCurrentTerm() &&
      this.lease.validAt(this.ticks)
    );
  }

  /** With CheckQuorum, whether this node heard from a leader too recently to help elect another. */
  private heardFromLeaderRecently(): boolean {
    return this.cfg.checkQuorum && this.ticks - this.leaderContactTick < this.cfg.electionTicks;
  }

  /**
   * Hands leadership to `to`: proposals stop, the leader brings `to` up to date, then sends it
   * TimeoutNow. Abandoned after one election timeout. Returns false if not leader or `to` is
   * not another voter.
   */
  transferLeadership(to: number): boolean {
    if (this.role !== Role.leader || to === this.id) return false;
    const m = this.memberships.current;
    // Only a full voter can lead for good: a learner cannot win, a witness would hand it on.
    if (!isVoter(m, to) || m.witnesses.includes(to)) return false;
    const pr = this.progress.get(to);
    if (pr === undefined) return false;
    if (this.leadTransferee === to) return true;
    this.leadTransferee = to;
    // The transfer gets one election timeout to finish (tickHeartbeat aborts it).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
    return true;
  }

  step(m: Message): void {
    if (m.to !== this.id) throw misdelivered(this.id, m.to);
    if (m.term > this.term) {
      if (m.type === MessageType.vote || m.type === MessageType.preVote) {
        // A node that heard from a leader within the minimum election timeout refuses to help
        // depose it (leader lease): this is what keeps a rejoining node from disrupting.
        const force = m.context === campaignTransfer;
        const leaseApplies = this.cfg.checkQuorum || m.type === MessageType.preVote;
        const inLease = leaseApplies && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (!force && (inLease || this.heardFromLeaderRecently())) return;
      }
      if (m.type === MessageType.preVote) {
        // Never change term because of a PreVote.
      } else if (m.type === MessageType.preVoteResp && !m.reject) {
        // The term is bumped when the pre-vote wins, not per response.
      } else if (m.type === MessageType.app || m.type === MessageType.heartbeat || m.type === MessageType.snapshot) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.app || m.type === MessageType.heartbeat || m.type === MessageType.snapshot)) {
        // A stale leader cut off by a partition would otherwise never learn the new term
        // (with PreVote nobody bumps terms to tell it): answer so it steps down.
        this.send(message(MessageType.appResp, this.id, m.from, this.term));
      } else if (m.type === MessageType.preVote) {
        this.send(message(MessageType.preVoteResp, this.id, m.from, this.term, { reject: true }));
      }
      return;
    }

    if (m.type === MessageType.vote || m.type === MessageType.preVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.leader:
        this.stepLeader(m);
        break;
      case Role.candidate:
      case Role.preCandidate:
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
  }

  // ---------------------------------------------------------------- membership

  /** The configuration in force once the log holds everything through `index` (for snapshot metadata). */
  membershipAt(index: number): Membership {
    return this.memberships.at(index);
  }

  get membership(): Membership {
    return this.memberships.current;
  }

  /** Index of the entry that set the configuration in force (cheaper than status()). */
  get membershipIndex(): number {
    return this.memberships.currentIndex;
  }

  /**
   * Proposes a membership change (leader only). Returns the config entry's index, or why it is
   * refused: not leader, a transfer under way, no entry of this term committed yet (a change
   * before that is unsafe, Ongaro 2015), another change not yet committed, a joint configuration
   * not yet left, a learner not caught up, or a change that would leave no full voter.
   */
  proposeConfChange(cc: ConfChange): { index: number } | { refused: string } {
    if (this.role !== Role.leader) return { refused: 'not the leader' };
    if (this.leadTransferee !== NONE) return { refused: `leadership is being transferred to ${this.leadTransferee}` };
    if (this.isWitness()) return { refused: 'a witness leader takes no changes; it is handing leadership to a full voter' };
    if (!this.committedEntryInCurrentTerm()) return { refused: 'the leader has not committed an entry of its term yet; retry shortly' };
    const pendingAt = this.memberships.currentIndex;
    if (pendingAt > this.log.committed) return { refused: `another membership change (entry ${pendingAt}) is not committed yet; retry once it is` };
    const m = this.memberships.current;
    const next = applyConfChange(m, cc, this.cfg.unsafe.skipJointStep === true);
    if (typeof next === 'string') return { refused: next };
    for (const c of cc.changes) {
      if (c.op !== 'add-voter' || !m.learners.includes(c.node)) continue;
      const match = this.progress.get(c.node)?.match ?? 0;
      const behind = this.log.lastIndex() - match;
      if (behind > this.cfg.promoteLagEntriesMax) {
        return { refused: `learner ${c.node} is ${behind} entries behind the leader (at most ${this.cfg.promoteLagEntriesMax} to be promoted); retry once it has caught up` };
      }
    }
    const e: Entry = { index: this.log.lastIndex() + 1, term: this.term, kind: EntryKind.config, data: encodeConfEntry(cc, next) };
    this.log.append([e]);
    return { index: e.index };
  }

  /**
   * Voters campaign; learners, removed nodes and nodes not yet told their configuration never
   * do. A node whose removal is not committed yet still may (counting votes by the newest
   * configuration, where its own does not count): it may hold the only log that can finish the
   * change, and with it benched the remaining voters could never elect anyone.
   */
  private promotable(): boolean {
    if (isVoter(this.memberships.current, this.id)) return true;
    return this.memberships.currentIndex > this.log.committed && isVoter(this.memberships.at(this.log.committed), this.id);
  }

  private isWitness(): boolean {
    return this.memberships.current.witnesses.includes(this.id);
  }

  /** Set once any configuration this node used made it a witness: it keeps no state machine since. */
  private wasWitness = false;

  private loadMemberships(): MembershipLog {
    const snap = this.cfg.storage.snapshot?.() ?? noSnapshot;
    const base =
      snap.index > 0
        ? (snap.membership ?? membership(snap.voters))
        : this.cfg.joining
          ? emptyMembership
          : membership(this.cfg.voters, { learners: this.cfg.learners, witnesses: this.cfg.witnesses });
    const log = new MembershipLog(snap.index, base);
    // A restarted node uses the newest configuration its log holds, committed or not.
    const last = this.cfg.storage.lastIndex();
    const chunk = 4096;
    for (let lo = this.log.firstIndex(); lo <= last; lo += chunk) {
      for (const e of this.cfg.storage.entries(lo, Math.min(last + 1, lo + chunk))) {
        if (e.kind === EntryKind.config && log.appended(e.index, e.data).witnesses.includes(this.id)) this.wasWitness = true;
      }
    }
    return log;
  }

  private onLogAppend(ents: readonly Entry[]): void {
    const before = this.memberships.current;
    this.memberships.truncateFrom(ents[0]!.index);
    for (const e of ents) if (e.kind === EntryKind.config) this.memberships.appended(e.index, e.data);
    if (this.memberships.current !== before) this.membershipChanged();
  }

  private membershipChanged(): void {
    const m = this.memberships.current;
    if (m.witnesses.includes(this.id)) this.wasWitness = true;
    this.quorum = quorumOf(m);
    this.lease.configChanged();
    if (this.role !== Role.leader) return;
    const keep = new Set([this.id, ...members(m)]);
    for (const id of keep) {
      if (this.progress.has(id)) continue;
      // From the config entry itself: the first flush sends it, and a new node's reject starts the catch-up.
      const pr = new Progress(this.log.lastIndex(), this.cfg.inflightMax, this.cfg.inflightBytesMax);
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    if (this.leadTransferee !== NONE && !keep.has(this.leadTransferee)) this.leadTransferee = NONE;
  }

  /**
   * Leader, after commit advanced: leave a joint configuration that asks to once it commits, and
   * step down once a configuration without this node commits (handing over to the most
   * up-to-date full voter first when one has everything).
   */
  private afterConfigCommit(): void {
    const m = this.memberships.current;
    if (this.memberships.currentIndex > this.log.committed) return;
    if (!isVoter(m, this.id)) {
      let best = NONE;
      let bestMatch = -1;
      for (const id of fullVoters(m)) {
        const match = this.progress.get(id)?.match ?? 0;
        if (match > bestMatch) [best, bestMatch] = [id, match];
      }
      if (best !== NONE && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (isJoint(m) && m.autoLeave && this.leadTransferee === NONE) {
      const leave: ConfChange = { changes: [], leave: true };
      const e: Entry = { index: this.log.lastIndex() + 1, term: this.term, kind: EntryKind.config, data: encodeConfEntry(leave, applyConfChange(m, leave) as Membership) };
      this.log.append([e]);
    }
  }

  /**
   * A witness that leads hands leadership to the first full voter holding its whole log — without
   * waiting to commit in its term: that commit may need a voter only a snapshot can catch up,
   * and a witness has none to send.
   */
  private maybeWitnessHandOff(): void {
    if (this.role !== Role.leader || !this.isWitness() || this.leadTransferee !== NONE) return;
    for (const id of fullVoters(this.memberships.current)) {
      const pr = this.progress.get(id);
      if (pr !== undefined && pr.match === this.log.lastIndex() && pr.recentActive) {
        this.transferLeadership(id);
        return;
      }
    }
  }

  /** The index every full voter of the configuration holds durably (the leader's own included). */
  private heldByFullVoters(): number {
    let held = Number.POSITIVE_INFINITY;
    for (const id of fullVoters(this.memberships.current)) {
      const match = id === this.id ? this.log.persistedIndex() : (this.progress.get(id)?.match ?? 0);
      if (match < held) held = match;
    }
    return held === Number.POSITIVE_INFINITY ? 0 : held;
  }

  // ---------------------------------------------------------------- Ready / advance

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    const s = this.prevSoft;
    if (s.role !== this.role || s.leader !== this.lead || s.term !== this.term) return true;
    const h = this.prevHard;
    if (h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.committed) return true;
    if (this.prevMembership !== this.memberships.current) return true;
    return (
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnstableToPersist() ||
      this.log.hasCommittedToApply()
    );
  }

  /** The next batch of work (see Ready for the order). Throws if the previous one was not advanced. */
  ready(): Ready {
    if (this.readyOutstanding) throw new Error(`raft ${this.id}: ready() called again before advance()`);
    const s = this.prevSoft;
    let softState: SoftState | null = null;
    if (s.role !== this.role || s.leader !== this.lead || s.term !== this.term) {
      softState = this.softState;
      this.prevSoft = softState;
    }
    const h = this.prevHard;
    let hardState: HardState | null = null;
    let voteChanged = false;
    if (h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.committed) {
      voteChanged = h.term !== this.term || h.vote !== this.vote;
      hardState = this.hardState;
      this.prevHard = hardState;
    }
    let changedMembership: Membership | null = null;
    if (this.prevMembership !== this.memberships.current) {
      changedMembership = this.memberships.current;
      this.prevMembership = changedMembership;
    }
    const snapshot = this.log.takeSnapshot();
    const entries = this.log.takeUnstable();
    const { from: committedFrom, to: committedTo } = this.log.takeCommitted();
    const rd = new ReadyBatch(
      softState,
      hardState,
      changedMembership,
      snapshot,
      entries,
      committedFrom,
      committedTo,
      this.log,
      this.msgs,
      this.msgsAfterPersist,
      this.readStates,
      voteChanged || entries.length > 0 || snapshot !== null,
    );
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    this.readyOutstanding = true;
    return rd;
  }

  /**
   * The host persisted rd.entries and rd.hardState, sent its messages and applied its committed
   * entries. A leader now counts its own durable entries toward commit (thesis §10.2.1): it
   * replicates in parallel with its own disk write but never counts itself before the write.
   */
  advance(rd: Ready): void {
    if (!this.readyOutstanding) throw new Error(`raft ${this.id}: advance() without an outstanding ready()`);
    this.readyOutstanding = false;
    if (rd.snapshot !== null) {
      const s = rd.snapshot;
      // A host that acks a snapshot it did not install would leave a hole where its log was.
      if (this.cfg.storage.term(s.index) !== s.term || (this.cfg.storage.firstIndex?.() ?? 1) > s.index + 1) {
        throw new Error(`raft ${this.id}: advance() but storage does not start at snapshot ${s.index} (term ${s.term}) of this Ready — install rd.snapshot first`);
      }
      this.log.stableSnapTo(s.index);
    }
    if (rd.hardState !== null) this.durableTerm = rd.hardState.term;
    if (this.role === Role.candidate && this.term === this.durableTerm && this.quorum.voteResult(this.votes) === VoteResult.won) this.becomeLeader();
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      // A host that advances without writing would silently lose entries it acked.
      if (this.cfg.storage.term(last.index) !== last.term) {
        throw new Error(`raft ${this.id}: advance() but storage lacks entry ${last.index} (term ${last.term}) of this Ready — persist rd.entries first`);
      }
      this.log.stableTo(last.index, last.term);
    }
    if (rd.committedTo >= rd.committedFrom) this.log.appliedTo(rd.committedTo);
    if (this.role === Role.leader) {
      const self = this.progress.get(this.id)!;
      if (self.maybeUpdate(this.log.persistedIndex()) && this.maybeCommit()) this.tellCommit();
    }
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.rng.int(0, this.cfg.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
    this.readOnly.reset();
    this.lease.reset();
    this.pendingReads = [];
    this.uncommittedBytes = 0;
    this.uncommittedQueue = [];
    this.uncommittedHead = 0;
  }

  private becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.role = Role.follower;
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    // Term and vote stay: a pre-candidate promises nothing and must not disturb anyone.
    this.votes.clear();
    this.role = Role.preCandidate;
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = Role.leader;
    this.lead = this.id;
    const next = this.log.lastIndex() + 1;
    for (const id of new Set([this.id, ...members(this.memberships.current)])) {
      const pr = new Progress(next, this.cfg.inflightMax, this.cfg.inflightBytesMax);
      if (id === this.id) {
        // Only what is already durable counts; the no-op below counts after advance().
        pr.match = this.log.persistedIndex();
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        pr.becomeReplicate();
      }
      this.progress.set(id, pr);
    }
    // An entry of the new term lets the leader commit (and serve reads) without waiting for a client.
    if (this.cfg.unsafe.skipLeaderNoop === true) return;
    this.log.append([{ index: next, term: this.term, kind: EntryKind.noop, data: emptyData }]);
  }

  private hup(kind: CampaignKind = this.cfg.preVote ? CampaignKind.preElection : CampaignKind.election): void {
    if (this.role === Role.leader || !this.promotable()) return;
    this.campaign0(kind);
  }

  private campaign0(kind: CampaignKind): void {
    let type: MessageType;
    let term: number;
    if (kind === CampaignKind.preElection) {
      this.becomePreCandidate();
      type = MessageType.preVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = MessageType.vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.won) {
      // A single voter wins at once, but leads only once its new term is durable (advance):
      // else a crash would bring it back free to lead the same term again with other entries.
      if (kind === CampaignKind.preElection) this.campaign0(CampaignKind.election);
      else if (this.term === this.durableTerm) this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    const context = kind === CampaignKind.transfer ? campaignTransfer : 0;
    const m = this.memberships.current;
    for (const id of new Set([...m.voters, ...m.outgoing])) {
      if (id === this.id) continue;
      this.send(message(type, this.id, id, term, { index, logTerm, context }));
    }
  }

  private poll(from: number, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return this.quorum.voteResult(this.votes);
  }

  // ---------------------------------------------------------------- time

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.hup();
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        const active = this.quorum.hasQuorum((id) => id === this.id || this.progress.get(id)?.recentActive === true);
        if (!active) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = NONE;
    }
    this.maybeWitnessHandOff();
    if (this.role !== Role.leader) return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.startRound(this.log.committed, this.id));
    }
    // Commit notices deferred (deferCommitNotice) and not carried by an append since: due now.
    if (this.cfg.deferCommitNotice) for (const [id, pr] of this.progress) if (id !== this.id && this.owesCommit(pr)) this.sendAppend(id);
  }

  // ---------------------------------------------------------------- message handling

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MessageType.vote ? MessageType.voteResp : MessageType.preVoteResp;
    // A node whose term moved on (so `lead` was forgotten) still honours a recent leader's lease.
    const leaseHeld = m.context !== campaignTransfer && this.heardFromLeaderRecently();
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE && !leaseHeld) ||
      (m.type === MessageType.preVote && m.term > this.term && !leaseHeld) ||
      this.cfg.unsafe.voteTwicePerTerm === true;
    const upToDate = this.cfg.unsafe.ignoreElectionRestriction === true || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // A pre-vote grant echoes the candidate's future term so it is not discarded as stale.
      this.send(message(respType, this.id, m.from, m.term));
      if (m.type === MessageType.vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message(respType, this.id, m.from, this.term, { reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.appResp:
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        if (m.reject) this.handleAppendRejected(m, pr);
        else this.handleAppendAcked(m, pr);
        break;
      case MessageType.heartbeatResp:
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        pr.paused = false;
        this.lease.acked(m.from, m.index);
        // Also sent with a full window: an empty append un-wedges a follower whose appends were all lost.
        if (pr.match < this.log.lastIndex() || pr.state === ProgressState.probe) this.sendAppend(m.from);
        if (m.context !== 0) {
          const acks = this.readOnly.ack(m.context, m.from);
          if (this.quorum.hasQuorum((id) => acks.has(id))) {
            for (const r of this.readOnly.release(m.context, this.cfg.unsafe.releaseAllReadRounds === true)) this.respondToRead(r, r.index);
          }
        }
        break;
      case MessageType.readIndex:
        this.handleReadRequest({ context: m.context, from: m.from });
        break;
      default:
        break;
    }
  }

  private handleAppendRejected(m: Message, pr: Progress): void {
    // A delayed or duplicated rejection changes nothing; it may also point below entries this
    // log has since dropped, so it is discarded before any lookup.
    if (pr.isStaleRejection(m.index)) return;
    // Fast backtracking: the follower named the last index whose term is <= our prevLogTerm;
    // skip our own entries of any term above the follower's hint term too.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === ProgressState.replicate) pr.becomeProbe();
      this.sendAppend(m.from);
    }
  }

  private handleAppendAcked(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.probe))) return;
    if (pr.state === ProgressState.probe) pr.becomeReplicate();
    else if (pr.state === ProgressState.snapshot) {
      // The follower holds the snapshot (or caught up otherwise): stream from the log again,
      // if the log still holds what follows what it has.
      if (pr.match + 1 < this.log.firstIndex()) return;
      pr.becomeProbe();
      pr.becomeReplicate();
    } else pr.freeTo(m.index);
    if (this.maybeCommit()) this.tellCommit();
    else if (wasPaused) this.sendAppend(m.from);
    this.fillWindow(m.from);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    else this.maybeWitnessHandOff();
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.preCandidate ? MessageType.preVoteResp : MessageType.voteResp;
    switch (m.type) {
      case MessageType.app:
        this.becomeFollower(m.term, m.from);
        this.heardFromLeader();
        this.handleAppend(m);
        break;
      case MessageType.heartbeat:
        this.becomeFollower(m.term, m.from);
        this.heardFromLeader();
        this.handleHeartbeat(m);
        break;
      case MessageType.snapshot:
        this.becomeFollower(m.term, m.from);
        this.heardFromLeader();
        this.handleSnapshot(m);
        break;
      case MessageType.voteResp:
      case MessageType.preVoteResp: {
        if (m.type !== myResp) return;
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.won) {
          if (this.role === Role.preCandidate) this.campaign0(CampaignKind.election);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.lost) {
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.app:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.heardFromLeader();
        this.handleAppend(m);
        break;
      case MessageType.heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.heardFromLeader();
        this.handleHeartbeat(m);
        break;
      case MessageType.snapshot:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.heardFromLeader();
        this.handleSnapshot(m);
        break;
      case MessageType.timeoutNow:
        if (this.promotable()) this.campaign0(CampaignKind.transfer);
        break;
      case MessageType.readIndexResp:
        this.readStates.push({ index: m.index, context: m.context });
        break;
      default:
        break;
    }
  }

  private heardFromLeader(): void {
    if (this.cfg.unsafe.voteAmnesia !== true) this.leaderContactTick = this.ticks;
  }

  private handleAppend(m: Message): void {
    const committed = this.log.committed;
    if (m.index < committed) {
      // Everything up to our commit matches any leader's log: tell it where to resume.
      this.send(message(MessageType.appResp, this.id, m.from, this.term, { index: committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.send(message(MessageType.appResp, this.id, m.from, this.term, { index: lastNew }));
      return;
    }
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message(MessageType.appResp, this.id, m.from, this.term, { index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }),
    );
  }

  /**
   * InstallSnapshot. The ack goes out after the Ready that installs the snapshot (an appResp
   * waits for persistence); a snapshot this node already covers is acked with its commit index.
   */
  private handleSnapshot(m: Message): void {
    const carried = m.entries.length === 1 && m.entries[0]!.kind === EntryKind.config ? decodeMembership(m.entries[0]!.data) : this.memberships.at(m.index);
    const s: SnapshotMeta = { index: m.index, term: m.logTerm, voters: carried.voters, membership: carried };
    if (this.restoreSnapshot(s)) {
      this.send(message(MessageType.appResp, this.id, m.from, this.term, { index: this.log.lastIndex() }));
    } else {
      this.send(message(MessageType.appResp, this.id, m.from, this.term, { index: this.log.committed }));
    }
  }

  /** Replaces the log with the snapshot unless it is old news; returns whether it did. */
  private restoreSnapshot(s: SnapshotMeta): boolean {
    if (s.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.index, s.term)) {
      // Our log already holds its last entry, so everything before it matches: keep the log.
      this.log.commitTo(s.index);
      return false;
    }
    this.log.restore(s);
    this.memberships.reset(s.index, s.membership ?? membership(s.voters));
    this.membershipChanged();
    return true;
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    if (m.rejectHint > this.fullyHeld) this.fullyHeld = m.rejectHint;
    this.send(message(MessageType.heartbeatResp, this.id, m.from, this.term, { context: m.context, index: m.index }));
  }

  // ---------------------------------------------------------------- leader output

  /** Commit the highest index a majority holds durably — only if it is of the current term (Figure 8). */
  private maybeCommit(): boolean {
    const mci = this.quorum.committedIndex((id) => this.progress.get(id)?.match ?? 0);
    if (mci <= this.log.committed) return false;
    if (this.log.term(mci) !== this.term && this.cfg.unsafe.commitPreviousTermByCount !== true) return false;
    this.log.commitTo(mci);
    this.releaseUncommitted(mci);
    this.afterConfigCommit();
    if (this.pendingReads.length > 0 && this.committedEntryInCurrentTerm()) {
      const released = this.pendingReads;
      this.pendingReads = [];
      for (const r of released) this.admitRead(r);
    }
    return true;
  }

  /** Commit passed `index`: its entries no longer count against uncommittedBytesMax. */
  private releaseUncommitted(index: number): void {
    const q = this.uncommittedQueue;
    let h = this.uncommittedHead;
    while (h < q.length && q[h]! <= index) {
      this.uncommittedBytes -= q[h + 1]!;
      h += 2;
    }
    if (h === q.length) {
      q.length = 0;
      h = 0;
    } else if (h >= 4096 && h * 2 >= q.length) {
      // Under steady load the queue never empties: drop its consumed front now and then.
      q.copyWithin(0, h);
      q.length -= h;
      h = 0;
    }
    this.uncommittedHead = h;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    // Gone when a committed configuration removed the follower, or this leader stepped down.
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    if (pr.next < this.log.firstIndex()) return this.maybeSendSnapshot(to, pr);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm < 0) throw new Error(`raft ${this.id}: no term for prevIndex ${prevIndex} (follower ${to}, last ${this.log.lastIndex()})`);
    let entries: readonly Entry[] = emptyEntries;
    // With a full window only an empty append goes out: it cannot overflow the window, and its
    // answer (ack or reject) clears the window if every append in it was lost.
    if (pr.state !== ProgressState.replicate || !pr.inflights.full()) {
      entries = this.log.entriesFrom(pr.next, this.cfg.batchEntriesMax, this.cfg.batchBytesMax);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(
      message(MessageType.app, this.id, to, this.term, { index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed }),
    );
    pr.commitSent = this.log.committed;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) bytes += entries[i]!.data.length;
    pr.sentEntries(entries.length, entries.length > 0 ? entries[entries.length - 1]!.index : prevIndex, bytes);
    return true;
  }

  /**
   * The follower needs entries compacted away: offer the newest snapshot (the host streams its
   * image). Not to a follower not heard from lately: it is likely down, and the next heartbeat
   * reply brings us back here.
   */
  private maybeSendSnapshot(to: number, pr: Progress): boolean {
    // A witness holds no image to send (nor does one being removed): it hands leadership to a
    // full voter instead, or steps down once its removal commits.
    if (!pr.recentActive || this.isWitness() || this.wasWitness) return false;
    const snap = this.cfg.storage.snapshot?.() ?? noSnapshot;
    if (snap.index === 0 || snap.index + 1 < this.log.firstIndex()) {
      throw new Error(`raft ${this.id}: follower ${to} needs entries from ${pr.next}, but the log starts at ${this.log.firstIndex()} and no snapshot covers the gap (newest: ${snap.index})`);
    }
    pr.becomeSnapshot(snap.index);
    const conf: Entry = { index: snap.index, term: snap.term, kind: EntryKind.config, data: encodeMembership(snap.membership ?? this.memberships.at(snap.index)) };
    this.send(message(MessageType.snapshot, this.id, to, this.term, { index: snap.index, logTerm: snap.term, commit: this.log.committed, entries: [conf] }));
    return true;
  }

  private sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * The commit index advanced: followers with new entries get them (the append carries the
   * commit); the others, at once (an append of its own), or — deferCommitNotice — with their
   * next append, or at the next tick at the latest.
   */
  private tellCommit(): void {
    if (!this.cfg.deferCommitNotice) {
      this.bcastAppend();
      return;
    }
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
  }

  /** The follower holds entries this leader has committed and was not told so yet. */
  private owesCommit(pr: Progress): boolean {
    return pr.commitSent < Math.min(pr.match, this.log.committed);
  }

  /** Pipelining: keep sending batches until the follower's window or the log runs out. */
  private fillWindow(to: number): void {
    while (this.maybeSendAppend(to, false)) {
      // each iteration sent one batch
    }
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: number): void {
    // Every heartbeat carries its send tick: a majority of acks for it renews the lease from then.
    this.lease.roundStarted(this.ticks);
    const witnesses = this.memberships.current.witnesses;
    const held = witnesses.length > 0 ? this.heldByFullVoters() : 0;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      if (commit > pr.commitSent) pr.commitSent = commit;
      const rejectHint = witnesses.includes(id) ? Math.min(held, commit) : 0;
      this.send(message(MessageType.heartbeat, this.id, id, this.term, { commit, context, index: this.ticks, rejectHint }));
    }
    if (context !== 0 && this.quorum.onlyVoter(this.id)) {
      for (const r of this.readOnly.release(context)) this.respondToRead(r, r.index);
    }
  }

  private sendTimeoutNow(to: number): void {
    // Voters obey the campaign this starts however recently they heard from us: the lease is
    // worthless from now on, and the message may arrive late, so it is given up for the term.
    if (this.cfg.unsafe.leaseSurvivesTransfer !== true) this.lease.revoke();
    // The next leader starts from the commit index it knows: tell it ours first (a deferred
    // notice would leave it reporting committed entries as pending until its own first commit).
    const pr = this.progress.get(to);
    if (pr !== undefined && this.owesCommit(pr)) this.sendAppend(to);
    this.send(message(MessageType.timeoutNow, this.id, to, this.term));
  }

  // ---------------------------------------------------------------- reads

  private handleReadRequest(req: ReadRequest): boolean {
    if (this.cfg.unsafe.readWithoutQuorum === true) {
      this.respondToRead(req, this.log.committed);
      return true;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // A new leader's commit index may lag what the old leader committed: wait for our no-op.
      if (this.pendingReads.length >= this.cfg.readPendingMax) return false;
      this.pendingReads.push(req);
      return true;
    }
    return this.admitRead(req);
  }

  private admitRead(req: ReadRequest): boolean {
    if (this.quorum.onlyVoter(this.id)) {
      this.respondToRead(req, this.log.committed);
      return true;
    }
    return this.readOnly.add(req);
  }

  /** One heartbeat round confirms leadership for every read waiting now. */
  private startReadRound(): void {
    const round = this.readOnly.startRound(this.log.committed, this.id);
    if (round !== 0) this.bcastHeartbeat(round);
  }

  private respondToRead(req: ReadRequest, index: number): void {
    if (req.from === this.id) {
      this.readStates.push({ index, context: req.context });
      return;
    }
    this.send(message(MessageType.readIndexResp, this.id, req.from, this.term, { index, context: req.context }));
    // The follower serves the read once it has applied `index`: a deferred commit notice must not hold it up.
    const pr = this.progress.get(req.from);
    if (pr !== undefined && this.owesCommit(pr)) this.sendAppend(req.from);
  }

  // ---------------------------------------------------------------- output routing

  private send(m: Message): void {
    // Vote requests carry our own vote, grants and append acks promise durable state: they
    // may leave only after the Ready that made it durable. So does a heartbeat reply in a term
    // not yet durable (see durableTerm). Everything else may go at once.
    const t = m.type;
    if (
      t === MessageType.appResp ||
      t === MessageType.vote ||
      t === MessageType.voteResp ||
      (t === MessageType.heartbeatResp && this.term !== this.durableTerm && this.cfg.unsafe.heartbeatReplyBeforePersist !== true)
    ) {
      this.msgsAfterPersist.push(m);
    } else {
      this.msgs.push(m);
    }
  }
}

function quorumOf(m: Membership): JointConfig {
  // A node not yet told its configuration has none: an empty quorum nobody can reach.
  return m.voters.length === 0 ? new JointConfig([0]) : new JointConfig(m.voters, m.outgoing);
}

// Errors are built in functions of their own: on this V8 a template literal in a hot function's
// never-taken throw still converted its numbers to strings on every call (NumberToString in
// profiles of the per-entry paths).
function misdelivered(id: number, to: number): Error {
  return new Error(`raft ${id}: message for ${to} delivered here`);
}
