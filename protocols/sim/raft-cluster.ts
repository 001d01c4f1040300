// Raft plugged into the simulator: each node is a RaftNode over a MemoryStorage that survives
// crashes, driven through the Ready contract with disk writes that take virtual time (so a crash
// loses what was not yet durable, and a leader replicates before its own write completes). Nodes
// snapshot their state machine (a digest of what they applied) at seed-chosen intervals, cut
// their logs, and ship snapshots to followers that need what was cut.
import { createRng, type Rng } from '../../runtime/rng.ts';
import {
  compactionPoint,
  defaultRaftSettings,
  EntryKind,
  formatMessage,
  MemoryStorage,
  MessageType,
  RaftNode,
  Role,
  roleName,
  type CompactionSettings,
  type Message,
  type RaftMutations,
  type RaftSettings,
  type ReadState,
  type Ready,
  type SnapshotMeta,
  members,
  describeMembership,
} from '../raft/index.ts';
import { describeAction, pickMembershipAction, planMembership, type MembershipPlan } from './raft-membership.ts';
import type { ClusterOptions, SimCluster, SimEnv, SimProtocol } from './protocol.ts';
import { applyDigest, createRaftCheckers, raftInvariants, type RaftObservation } from './raft-invariants.ts';

/** Deliberately broken variants for the mutation check. */
export const raftMutations: Record<string, RaftMutations> = {
  'commit-previous-term': { commitPreviousTermByCount: true },
  /** The same bug with the election no-op removed, which otherwise hides it almost always. */
  'commit-previous-term-no-noop': { commitPreviousTermByCount: true, skipLeaderNoop: true },
  /** Control: the no-op alone removed is safe; the simulator must find nothing. */
  'no-noop': { skipLeaderNoop: true },
  'vote-twice': { voteTwicePerTerm: true },
  'no-election-restriction': { ignoreElectionRestriction: true },
  'read-without-quorum': { readWithoutQuorum: true },
  /** Lease renewed by sending heartbeats, not by a majority acking them. */
  'lease-ignores-acks': { leaseIgnoresAcks: true },
  /** Lease of 2*electionTicks: outlives the followers' refusal to vote. */
  'lease-too-long': { leaseTooLong: true },
  /** A heartbeat reply leaves before the term it is in is durable (the term-0 lease hole). */
  'heartbeat-reply-before-persist': { heartbeatReplyBeforePersist: true },
  'vote-amnesia': { voteAmnesia: true },
  'lease-survives-transfer': { leaseSurvivesTransfer: true },
  /** Membership: two voters changed in one step, without C_old,new (the halves' majorities may not meet). */
  'skip-joint-step': { skipJointStep: true },
  /** Membership: a witness leader serves reads from the state machine it does not keep. */
  'witness-serves-reads': { witnessServesReads: true },
};

/** Mutations that only show with membership changes on: they turn them on. */
const membershipMutations = new Set(['skip-joint-step', 'witness-serves-reads']);

/** Deliberately broken hosts: the core is right, what the host does around snapshots is not. */
export const hostMutations = {
  /** The image is labelled with the last applied index but holds the state from one entry before. */
  'snapshot-misses-last-apply': 'snapshot-misses-last-apply',
  /** The log is cut through everything applied, past the snapshot that covers it. */
  'compact-past-snapshot': 'compact-past-snapshot',
} as const;
type HostMutation = keyof typeof hostMutations;

/** How often a read that reaches a leader is tried on its lease first (CheckQuorum seeds). */
const leaseReadChance = 0.7;

/** A snapshot's image in the simulator: the state machine is the digest of what was applied. */
interface SimImage {
  readonly meta: SnapshotMeta;
  readonly digest: number;
}

/**
 * A snapshot being streamed to one follower, as the live host's SnapshotSenders keeps it: at most
 * one per follower (a newer offer replaces it), and each ends in exactly one report to the core.
 */
interface Transfer {
  readonly to: number;
  /** The leader's term when it offered: a transfer outlives no change of leadership. */
  readonly leaderTerm: number;
}

/** How a seed snapshots: every `everyEntries` applied entries (0: never), keeping a margin. */
interface SnapshotPolicy extends CompactionSettings {
  everyEntries: number;
  /** A leader gives up on a transfer the follower has not acked in this long. */
  transferTimeoutMs: number;
}

interface Host {
  readonly id: number;
  raft: RaftNode | null;
  readonly storage: MemoryStorage;
  incarnation: number;
  /** The Ready whose disk write is in flight, if any. */
  writing: Ready | null;
  applied: number;
  /** The state machine: a rolling digest of every entry applied (or restored from a snapshot). */
  digest: number;
  /** The digest before the last entry applied (for the snapshot-misses-last-apply mutation). */
  digestBefore: number;
  /** The durable snapshot (with storage: survives a crash). */
  image: SimImage | null;
  /** A snapshot is being written (lost by a crash before it completes). */
  snapshotting: boolean;
  /** Images that arrived with snapshot messages, by index (volatile). */
  received: Map<number, SimImage>;
  /** As leader: the transfer under way to each follower (volatile). */
  sending: Map<number, Transfer>;
  lastRole: number;
  lastTerm: number;
  /** Keeps no state machine: applies nothing (its digest stays put), never snapshots its state. */
  readonly witness: boolean;
  /** Reads confirmed by the core, served once the state machine has applied their index. */
  readsWaiting: ReadState[];
}

type Env = SimEnv<Message, RaftObservation>;

/**
 * Whether `h` still leads in `term`. A transfer ends unreported with the leadership it was
 * offered in, as SnapshotSenders.stopAll ends them: the core forgot it (a new term starts afresh).
 */
function leadsIn(h: Host, term: number): boolean {
  return h.raft !== null && h.raft.currentRole === Role.leader && h.raft.currentTerm === term;
}

class RaftSimCluster implements SimCluster<Message> {
  private readonly hosts = new Map<number, Host>();
  private readonly mutation: RaftMutations | undefined;
  private readonly hostBug: HostMutation | undefined;
  private topCommit = 0;
  private topTerm = 0;

  private readonly settings: Partial<RaftSettings>;
  private readonly snapshots: SnapshotPolicy;
  /** The image travelling with each snapshot message (duplicates share the message object). */
  private readonly images = new WeakMap<Message, { image: SimImage; transfer: Transfer }>();
  /** Chooses the read path; its own stream so read choices never shift other draws. */
  private readonly readRng: Rng;
  /** Reads started per path: lease (served at once), index (on the leader), follower. */
  private readonly readPaths = { lease: 0, leaseRefused: 0, index: 0, follower: 0 };
  private readonly snapshotCounts = { snapshotsTaken: 0, snapshotsSent: 0, snapshotsInstalled: 0, snapshotTransfersFailed: 0 };
  /** Membership changes on: who starts as a member, which ids are witnesses; null when off. */
  private readonly plan: MembershipPlan | null;
  private readonly membershipRng: Rng;
  private membershipStopped = false;
  private readonly membershipCounts = { changesProposed: 0, changesRefused: 0, transfersAsked: 0 };

  constructor(
    readonly nodeIds: readonly number[],
    private readonly env: Env,
    fixed: Partial<RaftSettings>,
    options: ClusterOptions,
    membershipOn: boolean,
  ) {
    // Each seed draws its own settings, so the seeds together cover the settings matrix
    // (tiny windows and batches split appends in ways the defaults never do).
    const r = createRng(env.nodeSeed(0, 0));
    this.settings = {
      preVote: r.chance(0.8),
      checkQuorum: r.chance(0.8),
      heartbeatTicks: r.chance(0.8) ? 1 : 3,
      inflightMax: [1, 2, 8, 256][r.int(0, 4)]!,
      batchEntriesMax: [2, 3, 16, 64][r.int(0, 4)]!,
      batchBytesMax: r.chance(0.3) ? 40 : 1 << 20,
      // 1 is the least that covers the sub-tick phase skew between simulated nodes' ticks.
      leaseDriftTicks: r.chance(0.5) ? 1 : 2,
      inflightBytesMax: r.chance(0.2) ? 30 : 16 << 20,
      uncommittedBytesMax: r.chance(0.2) ? 200 : 64 << 20,
      ...fixed,
    };
    // Drawn after the settings above, so adding these left every earlier seed's settings as they were.
    this.snapshots = {
      everyEntries: r.chance(0.25) ? 0 : [2, 5, 20][r.int(0, 3)]!,
      catchUpEntries: [0, 1, 4][r.int(0, 3)]!,
      retainEntriesMax: [0, 8, 40][r.int(0, 3)]!,
      transferTimeoutMs: r.int(30, 400),
      liveTicks: 3 * (this.settings.electionTicks ?? defaultRaftSettings.electionTicks),
    };
    // Drawn last, for the same reason: commits told at once (etcd-raft's way) or deferred (the default).
    if (fixed.deferCommitNotice === undefined) this.settings.deferCommitNotice = r.chance(0.7);
    this.readRng = createRng(env.nodeSeed(0, 1));
    if (env.tracing) env.trace(`   raft settings: ${JSON.stringify(this.settings)}; snapshots: ${JSON.stringify(this.snapshots)}`);
    if (options.mutation !== undefined) {
      this.mutation = raftMutations[options.mutation];
      this.hostBug = options.mutation in hostMutations ? (options.mutation as HostMutation) : undefined;
      if (this.mutation === undefined && this.hostBug === undefined) {
        throw new RangeError(`unknown raft mutation "${options.mutation}" (known: ${[...Object.keys(raftMutations), ...Object.keys(hostMutations)].join(', ')})`);
      }
    }
    // Its own stream: seeds without membership changes draw exactly what they drew before.
    this.membershipRng = createRng(env.nodeSeed(0, 2));
    const withMembership = membershipOn || (options.mutation !== undefined && membershipMutations.has(options.mutation));
    this.plan = withMembership ? planMembership(this.membershipRng, nodeIds) : null;
    if (this.plan !== null && env.tracing) {
      env.trace(`   membership: voters ${this.plan.voters.join(',')}; witnesses ${[...this.plan.witnessIds].join(',') || 'none'}; spares ${nodeIds.filter((id) => !this.plan!.voters.includes(id)).join(',') || 'none'}`);
    }
    for (const id of nodeIds) {
      const host: Host = {
        id,
        raft: null,
        storage: new MemoryStorage(),
        incarnation: 0,
        writing: null,
        applied: 0,
        digest: 0,
        digestBefore: 0,
        image: null,
        snapshotting: false,
        received: new Map(),
        sending: new Map(),
        lastRole: -1,
        lastTerm: 0,
        witness: this.plan?.witnessIds.has(id) ?? false,
        readsWaiting: [],
      };
      this.hosts.set(id, host);
      this.start(host);
    }
    if (this.plan !== null) this.scheduleMembershipChange();
  }

  private start(h: Host): void {
    h.incarnation++;
    // The state machine comes back from the durable snapshot, if any; the log replays after it.
    // A witness keeps no image: its log starts after what it dropped, with nothing to apply before.
    const from = h.witness ? h.storage.snapshot().index : (h.image?.meta.index ?? 0);
    const plan = this.plan;
    h.raft = new RaftNode({
      ...this.settings,
      id: h.id,
      voters: plan?.voters ?? this.nodeIds,
      ...(plan !== null ? { witnesses: plan.voters.filter((id) => plan.witnessIds.has(id)), joining: !plan.voters.includes(h.id) } : {}),
      storage: h.storage,
      rng: createRng(this.env.nodeSeed(h.id, h.incarnation)),
      applied: from,
      unsafe: this.mutation,
    });
    h.writing = null;
    h.applied = from;
    h.digest = h.image?.digest ?? 0;
    h.snapshotting = false;
    h.received.clear();
    h.sending.clear();
    h.readsWaiting = [];
    h.lastRole = Role.follower;
    h.lastTerm = h.raft.currentTerm;
  }

  private host(id: number): Host {
    const h = this.hosts.get(id);
    if (h === undefined) throw new Error(`no node ${id}`);
    return h;
  }

  isUp(node: number): boolean {
    return this.host(node).raft !== null;
  }

  tick(node: number): void {
    const h = this.host(node);
    const raft = h.raft;
    if (raft === null) return;
    raft.tick();
    // The host flushes once per tick so batched proposals never wait longer than a tick.
    raft.flush();
    this.afterInput(h);
  }

  deliver(msg: Message): void {
    const h = this.host(msg.to);
    if (h.raft === null) return;
    if (msg.type === MessageType.snapshot) this.receiveImage(h, msg);
    h.raft.step(msg);
    this.afterInput(h);
  }

  /**
   * The image arrived with its message: the follower keeps it for the Ready that installs it, and
   * the sender's host learns that the transfer completed (a moment later, as a stream's last ack).
   * A duplicate, or a transfer already given up or replaced by a newer offer, reports nothing.
   */
  private receiveImage(h: Host, msg: Message): void {
    const sent = this.images.get(msg);
    if (sent === undefined) throw new Error(`snapshot message ${formatMessage(msg)} carries no image`);
    h.received.set(msg.index, sent.image);
    const sender = this.host(msg.from);
    const t = sent.transfer;
    if (sender.sending.get(t.to) !== t) return;
    sender.sending.delete(t.to);
    this.env.after(this.env.diskDelayMs(), this.env.tracing ? `n${msg.from} hears transfer to n${msg.to} done` : '', () => {
      if (!leadsIn(sender, t.leaderTerm)) return;
      sender.raft!.reportSnapshot(t.to, true);
      this.afterInput(sender);
    });
  }

  /**
   * A leader sends a snapshot: its image goes along; a transfer not acked in time is given up.
   * The host may send a newer snapshot than the core asked for, so it tells its transfers apart
   * by its own record of them, never by the core's pendingSnapshot: a transfer judged by the
   * index the core asked for would, once lost, never be reported, and the follower would stay
   * paused in the snapshot state for good.
   */
  private sendSnapshot(h: Host, m: Message): void {
    const image = h.image;
    if (image === null || image.meta.index < m.index) throw new Error(`n${h.id} offers snapshot ${m.index} but holds ${image?.meta.index ?? 'none'}`);
    // A newer snapshot may have become durable since the core asked: send that one (any
    // snapshot of committed state at or past the one asked for will do).
    m.index = image.meta.index;
    m.logTerm = image.meta.term;
    const t: Transfer = { to: m.to, leaderTerm: m.term };
    h.sending.set(m.to, t);
    this.images.set(m, { image, transfer: t });
    this.snapshotCounts.snapshotsSent++;
    this.env.after(this.snapshots.transferTimeoutMs, this.env.tracing ? `~n${h.id} snapshot transfer to n${m.to} deadline` : '', () => {
      if (h.sending.get(m.to) !== t) return;
      h.sending.delete(m.to);
      if (!leadsIn(h, t.leaderTerm)) return;
      this.snapshotCounts.snapshotTransfersFailed++;
      if (this.env.tracing) this.env.trace(`   n${h.id}: transfer of snapshot ${m.index} to n${m.to} timed out`);
      h.raft!.reportSnapshot(m.to, false);
      this.afterInput(h);
    });
  }

  propose(node: number, command: Uint8Array): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    const ok = h.raft.propose(command) > 0;
    if (ok) this.scheduleFlush(h);
    return ok;
  }

  private flushPending = new Set<number>();

  /** The "idle moment" flush: proposals arriving within the same millisecond share one append. */
  private scheduleFlush(h: Host): void {
    if (this.flushPending.has(h.id)) return;
    this.flushPending.add(h.id);
    const inc = h.incarnation;
    this.env.after(1, this.env.tracing ? `flush n${h.id}` : '', () => {
      this.flushPending.delete(h.id);
      if (h.raft === null || h.incarnation !== inc) return;
      h.raft.flush();
      this.afterInput(h);
    });
  }

  read(node: number, requestId: number): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    // A witness has no state machine to answer from (the core refuses too, while it is one).
    if (h.witness && this.mutation?.witnessServesReads !== true) return false;
    this.env.observe({ kind: 'read-request', node, requestId });
    const raft = h.raft;
    const isLeader = raft.currentRole === Role.leader;
    // A host tries the lease first and falls back to ReadIndex when the lease cannot serve.
    if (isLeader && this.settings.checkQuorum === true && this.readRng.chance(leaseReadChance)) {
      if (raft.leaseRead(requestId)) {
        this.readPaths.lease++;
        this.afterInput(h);
        return true;
      }
      this.readPaths.leaseRefused++;
    }
    const ok = raft.readIndex(requestId);
    if (ok) {
      if (isLeader) this.readPaths.index++;
      else this.readPaths.follower++;
      this.scheduleFlush(h);
    }
    this.afterInput(h);
    return ok;
  }

  transfer(node: number, to: number): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    const ok = h.raft.transferLeadership(to);
    this.afterInput(h);
    return ok;
  }

  crash(node: number): void {
    const h = this.host(node);
    if (h.raft === null) return;
    h.raft = null;
    h.writing = null;
    this.env.observe({ kind: 'crash', node });
  }

  restart(node: number): void {
    const h = this.host(node);
    if (h.raft !== null) return;
    this.start(h);
    const raft = h.raft!;
    const first = h.storage.firstIndex();
    this.env.observe({
      kind: 'restart',
      node,
      raft,
      durable: h.storage.entries(first, h.storage.lastIndex() + 1),
      base: { index: first - 1, term: h.storage.term(first - 1) },
      applied: h.applied,
    });
    if (this.env.tracing) this.env.trace(`   n${node} restarted from disk: ${this.describe(h)}`);
    this.afterInput(h);
  }

  /** After any input: report the step, then drive the Ready loop. */
  private afterInput(h: Host): void {
    const raft = h.raft!;
    if (raft.commitIndex > this.topCommit) this.topCommit = raft.commitIndex;
    if (raft.currentTerm > this.topTerm) this.topTerm = raft.currentTerm;
    if (this.env.tracing && (raft.currentRole !== h.lastRole || raft.currentTerm !== h.lastTerm)) {
      this.env.trace(`   n${h.id} is now ${roleName[raft.currentRole]} in term ${raft.currentTerm}`);
    }
    h.lastRole = raft.currentRole;
    h.lastTerm = raft.currentTerm;
    this.env.observe({ kind: 'step', node: h.id, raft });
    this.drive(h);
  }

  private drive(h: Host): void {
    for (;;) {
      const raft = h.raft;
      if (raft === null || h.writing !== null || !raft.hasReady()) return;
      const rd = raft.ready();
      h.writing = rd;
      this.env.observe({ kind: 'ready', node: h.id, raft, ready: rd });
      for (const m of rd.messages) {
        if (m.type === MessageType.snapshot) this.sendSnapshot(h, m);
        this.env.send(m);
      }
      const needsDisk = rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null;
      const delay = needsDisk ? this.env.diskDelayMs() : 0;
      if (delay > 0) {
        const inc = h.incarnation;
        this.env.after(delay, this.env.tracing ? `n${h.id} disk write done (${rd.entries.length} entries${rd.hardState ? ', hard state' : ''})` : '', () => {
          // A crash during the write loses it: the node that asked for it is gone.
          if (h.incarnation !== inc || h.raft === null) return;
          this.complete(h, rd);
          this.afterInput(h);
        });
        return;
      }
      this.complete(h, rd);
      this.env.observe({ kind: 'step', node: h.id, raft });
    }
  }

  /** The write is durable: send what waited for it, apply, serve reads, advance. */
  private complete(h: Host, rd: Ready): void {
    const raft = h.raft!;
    if (rd.snapshot !== null) this.install(h, rd.snapshot);
    h.storage.append(rd.entries);
    if (rd.hardState !== null) h.storage.setHardState(rd.hardState);
    for (const m of rd.messagesAfterPersist) this.env.send(m);
    for (const e of rd.committedEntries) {
      h.applied = e.index;
      if (h.witness) continue;
      h.digestBefore = h.digest;
      h.digest = applyDigest(h.digest, e);
      this.env.observe({ kind: 'apply', node: h.id, entry: e });
      if (e.kind === EntryKind.normal) this.env.applied(h.id, e.index, e.data);
    }
    for (const rs of rd.readStates) h.readsWaiting.push(rs);
    this.serveReads(h);
    h.writing = null;
    raft.advance(rd);
    if (h.witness) this.witnessCompact(h);
    else this.maybeSnapshot(h);
  }

  /** A confirmed read is answered from the state machine once it has applied the read's index. */
  private serveReads(h: Host): void {
    if (h.readsWaiting.length === 0) return;
    const still: ReadState[] = [];
    for (const rs of h.readsWaiting) {
      if (h.applied < rs.index) still.push(rs);
      else this.env.observe({ kind: 'read-state', node: h.id, requestId: rs.context, index: rs.index, applied: h.applied, digest: h.digest });
    }
    h.readsWaiting = still;
  }

  /**
   * A witness drops the entries every full voter holds (the leader tells it which), keeping only
   * the metadata of where its log now starts: the configuration there, no image.
   */
  private witnessCompact(h: Host): void {
    const s = h.raft!.status();
    const through = Math.min(s.fullyHeld, s.commit, h.applied);
    if (through < h.storage.firstIndex() + 4) return;
    const meta: SnapshotMeta = { index: through, term: h.storage.term(through), voters: s.membership.voters, membership: h.raft!.membershipAt(through) };
    h.storage.setSnapshot(meta);
    h.storage.compact(through);
    if (this.env.tracing) this.env.trace(`   witness n${h.id} dropped its log through ${through}`);
  }

  /** Every few hundred virtual ms of the fault phase, one membership action at the leader. */
  private scheduleMembershipChange(): void {
    this.env.after(this.membershipRng.int(150, 700), this.env.tracing ? 'membership change' : '', () => {
      if (this.membershipStopped) return;
      this.changeMembership();
      this.scheduleMembershipChange();
    });
  }

  private changeMembership(): void {
    const l = this.leader();
    if (l === 0) return;
    const h = this.host(l);
    const raft = h.raft!;
    const action = pickMembershipAction(this.membershipRng, this.nodeIds, this.plan!, raft.membership, l);
    if (action === null) return;
    if (action.kind === 'transfer') {
      this.membershipCounts.transfersAsked++;
      raft.transferLeadership(action.to);
    } else {
      const r = raft.proposeConfChange(action.change);
      if ('refused' in r) this.membershipCounts.changesRefused++;
      else this.membershipCounts.changesProposed++;
      if (this.env.tracing) this.env.trace(`   n${l}: ${describeAction(action)} → ${'refused' in r ? `refused: ${r.refused}` : `entry ${r.index}`}`);
      this.scheduleFlush(h);
    }
    this.afterInput(h);
  }

  onHeal(): void {
    this.membershipStopped = true;
  }

  /** A snapshot from the leader replaces the state machine and the log (durably, with this write). */
  private install(h: Host, meta: SnapshotMeta): void {
    const image = h.received.get(meta.index);
    if (image === undefined || image.meta.term !== meta.term) throw new Error(`n${h.id} must install snapshot ${meta.index}/t${meta.term} but received no such image`);
    h.storage.installSnapshot(meta);
    h.image = image;
    h.digest = image.digest;
    h.applied = meta.index;
    for (const i of h.received.keys()) if (i <= meta.index) h.received.delete(i);
    this.snapshotCounts.snapshotsInstalled++;
    this.env.observe({ kind: 'snapshot-installed', node: h.id, index: meta.index, term: meta.term, digest: image.digest });
    if (this.env.tracing) this.env.trace(`   n${h.id} installed snapshot ${meta.index}/t${meta.term}`);
  }

  /**
   * Every `everyEntries` applied entries: capture the state now, make it durable after a disk
   * write (a crash before then loses it), then cut the log behind it, keeping the margin.
   */
  private maybeSnapshot(h: Host): void {
    const every = this.snapshots.everyEntries;
    if (every === 0 || h.snapshotting || h.applied - (h.image?.meta.index ?? 0) < every) return;
    const digest = this.hostBug === 'snapshot-misses-last-apply' ? h.digestBefore : h.digest;
    const conf = h.raft!.membershipAt(h.applied);
    const image: SimImage = { meta: { index: h.applied, term: h.storage.term(h.applied), voters: conf.voters, membership: conf }, digest };
    if (image.meta.term < 0) throw new Error(`n${h.id} applied ${h.applied} but its storage has no term for it`);
    h.snapshotting = true;
    this.env.observe({ kind: 'snapshot-taken', node: h.id, index: image.meta.index, digest: image.digest });
    const inc = h.incarnation;
    this.env.after(this.env.diskDelayMs() + 1, this.env.tracing ? `n${h.id} snapshot ${image.meta.index} written` : '', () => {
      if (h.raft === null || h.incarnation !== inc) return;
      h.snapshotting = false;
      // A snapshot installed from the leader meanwhile may be newer: keep that one.
      if (h.image !== null && h.image.meta.index >= image.meta.index) return;
      h.storage.setSnapshot(image.meta);
      h.image = image;
      this.snapshotCounts.snapshotsTaken++;
      const through = this.hostBug === 'compact-past-snapshot' ? h.applied : compactionPoint(image.meta.index, h.raft.status(), this.snapshots);
      if (through >= h.storage.firstIndex()) h.storage.compact(through);
      if (this.env.tracing) this.env.trace(`   n${h.id} snapshot at ${image.meta.index} durable; log from ${h.storage.firstIndex()}`);
    });
  }

  leader(): number {
    let best = 0;
    let bestTerm = -1;
    for (const h of this.hosts.values()) {
      if (h.raft !== null && h.raft.currentRole === Role.leader && h.raft.currentTerm > bestTerm) {
        best = h.id;
        bestTerm = h.raft.currentTerm;
      }
    }
    return best;
  }

  converged(): boolean {
    const l = this.leader();
    if (l === 0) return false;
    const leader = this.host(l).raft!;
    const c = leader.commitIndex;
    if (leader.lastIndex !== c) return false;
    // Spares and removed nodes are not part of the cluster: only the members must catch up.
    const ids = this.plan === null ? this.nodeIds : members(leader.membership);
    for (const id of ids) {
      const h = this.host(id);
      if (h.raft === null || h.applied !== c || h.raft.commitIndex !== c || h.writing !== null) return false;
    }
    return true;
  }

  committedIndex(): number {
    return this.topCommit;
  }

  stats(): Record<string, number> {
    return { ...this.readPaths, ...this.snapshotCounts, ...(this.plan !== null ? this.membershipCounts : {}) };
  }

  maxTerm(): number {
    return this.topTerm;
  }

  describeMessage(m: Message): string {
    return formatMessage(m);
  }

  private describe(h: Host): string {
    const r = h.raft;
    if (r === null) return `n${h.id} down (disk: ${h.storage.lastIndex()} entries, term ${h.storage.initialState().term})`;
    const s = r.status();
    const conf = this.plan === null ? '' : ` ${describeMembership(s.membership)}@${s.membershipIndex}`;
    return `n${h.id} ${roleName[s.role]} t${s.term} vote=${s.vote} lead=${s.leader} first=${s.firstIndex} last=${s.lastIndex}/t${s.lastTerm} durable=${s.persistedIndex} commit=${s.commit} applied=${h.applied} snapshot=${s.snapshotIndex}${conf}`;
  }

  describeNodes(): string[] {
    return [...this.hosts.values()].map((h) => this.describe(h));
  }
}

/** The Raft protocol for the simulator; `settings` override the core's defaults. */
export function raftSimProtocol(settings: Partial<RaftSettings> = {}, opts: { membership?: boolean } = {}): SimProtocol<Message, RaftObservation> {
  return {
    name: 'raft',
    invariants: raftInvariants,
    mutations: [...Object.keys(raftMutations), ...Object.keys(hostMutations)],
    createCluster: (nodeIds, env, options) => new RaftSimCluster(nodeIds, env, settings, options, opts.membership === true),
    createCheckers: () => createRaftCheckers(),
  };
}
