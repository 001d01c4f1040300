// Settings of one Raft node and their validation. Bad settings are refused here, with the name
// of the setting and the accepted range, so they never reach the state machine. No defaults are
// hidden elsewhere: every tunable lives in RaftSettings.
import type { Rng } from '../../runtime/rng.ts';
import type { LogStorage } from './storage.ts';

/** The only randomness the core uses: election timeouts. */
export type RandomSource = Pick<Rng, 'int'>;

export interface RaftSettings {
  /** Minimum election timeout; each timeout is drawn from [electionTicks, 2*electionTicks). */
  electionTicks: number;
  /** A leader sends heartbeats every heartbeatTicks; must be < electionTicks. */
  heartbeatTicks: number;
  /** Campaign in two phases so a node that cannot win never bumps the term (thesis §9.6). */
  preVote: boolean;
  /** A leader that has not heard from a majority for electionTicks steps down; followers keep a lease. */
  checkQuorum: boolean;
  /** AppendEntries in flight per follower in the replicate state. */
  inflightMax: number;
  /**
   * Command bytes in flight per follower: the window is also full once this many bytes are
   * unacknowledged (a single larger append still goes alone), so big values cannot flood a
   * follower's link however few appends carry them.
   */
  inflightBytesMax: number;
  /**
   * When a commit advances and a follower has no new entries to receive, the leader tells it the
   * commit index with its next append, or at its next tick at the latest, instead of in an
   * AppendEntries of its own at once (etcd-raft's way, which false keeps). Under load the
   * next append comes within a round anyway: every round then costs each follower one append and
   * one ack fewer. A follower's commit index lags by up to one tick when the load stops; a
   * follower's ReadIndex answer still comes with the commit it needs.
   */
  deferCommitNotice: boolean;
  /** Entries per AppendEntries. */
  batchEntriesMax: number;
  /** Command bytes per AppendEntries (a single larger entry still goes alone). */
  batchBytesMax: number;
  /** Entries the leader accepts beyond its commit index before refusing proposals. */
  uncommittedEntriesMax: number;
  /**
   * Command bytes the leader accepts beyond its commit index before refusing proposals (busy):
   * what a stalled quorum can make it hold. One proposal is always accepted when none is pending.
   */
  uncommittedBytesMax: number;
  /** Reads the leader holds (waiting, in rounds, or before its first commit) before refusing. */
  readPendingMax: number;
  /**
   * Lease reads: the lease ends this many ticks before the election timeout, to absorb tick
   * phase skew between nodes and clock-rate drift over one election timeout. At least 1 when
   * nodes tick independently (their ticks are out of phase by up to one tick).
   */
  leaseDriftTicks: number;
  /** A learner may be promoted to voter only once its match index is within this many entries of the leader's last index. */
  promoteLagEntriesMax: number;
}

/** Deliberate bugs for the simulator's mutation check. Never set outside tests. */
export interface RaftMutations {
  /** Figure 8: commit an entry of an earlier term by counting replicas. */
  commitPreviousTermByCount?: boolean;
  /** Do not append a no-op on election (safe alone; unmasks commitPreviousTermByCount). */
  skipLeaderNoop?: boolean;
  /** Grant a vote to every candidate of a term, not just the first. */
  voteTwicePerTerm?: boolean;
  /** Grant votes without the election restriction (candidate's log may be behind). */
  ignoreElectionRestriction?: boolean;
  /** Serve ReadIndex at once, without confirming leadership or waiting for a term commit. */
  readWithoutQuorum?: boolean;
  /** Renew the read lease whenever a heartbeat round starts, without a majority of acks. */
  leaseIgnoresAcks?: boolean;
  /** A read lease of 2*electionTicks from the round start: longer than followers' vote refusal. */
  leaseTooLong?: boolean;
  /** Keep the lease after sending TimeoutNow (whose campaign voters obey at once). */
  leaseSurvivesTransfer?: boolean;
  /** Followers forget a leader on restart or term change and vote at once (etcd's behaviour). */
  voteAmnesia?: boolean;
  /** Answer a heartbeat of a new term before that term is durable (the term-0 lease hole). */
  heartbeatReplyBeforePersist?: boolean;
  /** A ReadIndex round's confirmation releases the reads of every later round too. */
  releaseAllReadRounds?: boolean;
  /** campaign() starts an election even while this node honours a leader's lease. */
  campaignIgnoresLease?: boolean;
  /** Apply a change of several voters directly, without the joint step (majorities may not overlap). */
  skipJointStep?: boolean;
  /** A witness leader serves reads (it has no state machine: what it answers is not the data). */
  witnessServesReads?: boolean;
}

export interface RaftConfig extends Partial<RaftSettings> {
  /** This node's id, a positive integer. */
  id: number;
  /**
   * Every voting member (witnesses included), this node included unless it is a learner. The
   * configuration in force is the newest one the log or snapshot holds; this is the one before any.
   */
  voters: readonly number[];
  /** Initial learners (receive the log, never vote). */
  learners?: readonly number[];
  /** Initial witnesses: voters that keep no state machine (a subset of `voters`). */
  witnesses?: readonly number[];
  /**
   * A node added to a running cluster: it starts with no configuration (voters may be empty)
   * and learns one from the leader's log or snapshot; until then it never campaigns.
   */
  joining?: boolean;
  storage: LogStorage;
  rng: RandomSource;
  /** Index the host's state machine has already applied (0 for a state machine rebuilt from the log). */
  applied?: number;
  unsafe?: RaftMutations;
}

export const defaultRaftSettings: Readonly<RaftSettings> = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  inflightMax: 256,
  inflightBytesMax: 16 << 20,
  deferCommitNotice: true,
  batchEntriesMax: 64,
  batchBytesMax: 1 << 20,
  uncommittedEntriesMax: 8192,
  uncommittedBytesMax: 64 << 20,
  readPendingMax: 4096,
  leaseDriftTicks: 2,
  promoteLagEntriesMax: 100,
});

export interface ResolvedRaftConfig extends RaftSettings {
  id: number;
  voters: readonly number[];
  learners: readonly number[];
  witnesses: readonly number[];
  joining: boolean;
  storage: LogStorage;
  rng: RandomSource;
  applied: number;
  unsafe: RaftMutations;
}

export class RaftConfigError extends Error {
  override name = 'RaftConfigError';
}

function positiveInt(name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new RaftConfigError(`raft config: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

function idList(name: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new RaftConfigError(`raft config: ${name} must be a list of node ids, got ${String(v)}`);
  for (const x of v) positiveInt(`each ${name.replace(/s$/, '')} id`, x);
  if (new Set(v).size !== v.length) throw new RaftConfigError(`raft config: ${name} must be unique, got [${v.join(', ')}]`);
  return [...(v as number[])];
}

/** Fills defaults and checks every setting; throws RaftConfigError naming the first bad one. */
export function resolveRaftConfig(config: RaftConfig): ResolvedRaftConfig {
  const s: RaftSettings = { ...defaultRaftSettings };
  for (const key of Object.keys(defaultRaftSettings) as (keyof RaftSettings)[]) {
    const v = config[key];
    if (v !== undefined) (s as unknown as Record<string, unknown>)[key] = v;
  }
  const id = positiveInt('id', config.id);
  const joining = config.joining === true;
  const voters = idList('voters', config.voters);
  const learners = idList('learners', config.learners ?? []);
  const witnesses = idList('witnesses', config.witnesses ?? []);
  if (!joining) {
    if (voters.length === 0) throw new RaftConfigError('raft config: voters must list at least one node (a cluster of 0 nodes cannot elect a leader)');
    if (!voters.includes(id) && !learners.includes(id)) {
      throw new RaftConfigError(`raft config: voters [${voters.join(', ')}] must include this node's id ${id} (or list it as a learner, or set joining)`);
    }
    if (voters.every((v) => witnesses.includes(v))) throw new RaftConfigError('raft config: at least one voter must be a full voter, not a witness');
  }
  for (const l of learners) if (voters.includes(l)) throw new RaftConfigError(`raft config: node ${l} is both a voter and a learner`);
  for (const w of witnesses) if (!voters.includes(w)) throw new RaftConfigError(`raft config: witness ${w} must also be listed in voters`);
  positiveInt('electionTicks', s.electionTicks, 2);
  positiveInt('heartbeatTicks', s.heartbeatTicks);
  if (s.heartbeatTicks >= s.electionTicks) {
    throw new RaftConfigError(
      `raft config: heartbeatTicks (${s.heartbeatTicks}) must be less than electionTicks (${s.electionTicks}), or followers time out between heartbeats`,
    );
  }
  if (typeof s.preVote !== 'boolean') throw new RaftConfigError(`raft config: preVote must be a boolean, got ${String(s.preVote)}`);
  if (typeof s.checkQuorum !== 'boolean') throw new RaftConfigError(`raft config: checkQuorum must be a boolean, got ${String(s.checkQuorum)}`);
  if (typeof s.deferCommitNotice !== 'boolean') throw new RaftConfigError(`raft config: deferCommitNotice must be a boolean, got ${String(s.deferCommitNotice)}`);
  positiveInt('inflightMax', s.inflightMax);
  positiveInt('inflightBytesMax', s.inflightBytesMax);
  positiveInt('batchEntriesMax', s.batchEntriesMax);
  positiveInt('batchBytesMax', s.batchBytesMax);
  positiveInt('uncommittedEntriesMax', s.uncommittedEntriesMax);
  positiveInt('uncommittedBytesMax', s.uncommittedBytesMax);
  positiveInt('readPendingMax', s.readPendingMax);
  positiveInt('leaseDriftTicks', s.leaseDriftTicks, 0);
  if (s.leaseDriftTicks >= s.electionTicks) {
    throw new RaftConfigError(
      `raft config: leaseDriftTicks (${s.leaseDriftTicks}) must be less than electionTicks (${s.electionTicks}), or a lease would never be valid`,
    );
  }
  if (config.storage === undefined || config.storage === null) throw new RaftConfigError('raft config: storage is required');
  if (config.rng === undefined || typeof config.rng.int !== 'function') {
    throw new RaftConfigError('raft config: rng is required (an injected seeded generator; the core never uses Math.random)');
  }
  const applied = config.applied ?? 0;
  if (!Number.isInteger(applied) || applied < 0) throw new RaftConfigError(`raft config: applied must be an integer >= 0, got ${applied}`);
  positiveInt('promoteLagEntriesMax', s.promoteLagEntriesMax, 0);
  return { ...s, id, voters, learners, witnesses, joining, storage: config.storage, rng: config.rng, applied, unsafe: config.unsafe ?? {} };
}
