// The cluster's configuration as the main thread sees it (from the nodes' status reports and
// answers), and what a refused change means for the caller. Pure functions: the Cluster decides
// whom to ask and when to retry.
import { ConflictError, type ClusterMember, type MemberRole, type NodeRole, type NodeState, type PendingChange } from '../http/backend.ts';
import { Role } from '../../protocols/raft/index.ts';

/** A configuration as a node reported it, with that node's commit index. */
export interface ConfigView {
  voters: readonly number[];
  outgoing: readonly number[];
  learners: readonly number[];
  witnesses: readonly number[];
  /** The index of the entry that set it (0: the first configuration). */
  membershipIndex: number;
  commit: number;
}

/** A Raft role as the API names it (a pre-candidate campaigns too). */
export function roleLabel(role: number): NodeRole {
  if (role === Role.leader) return 'leader';
  if (role === Role.candidate || role === Role.preCandidate) return 'candidate';
  return 'follower';
}

/** A node's state as the API shows it, from what the node reported (or, on its own port, knows). */
export function nodeStateOf(v: { role: number; term: number; commit: number; lastIndex: number; applied: number; firstIndex: number; snapshotIndex: number }): NodeState {
  return {
    role: roleLabel(v.role),
    term: v.term,
    commitIndex: v.commit,
    lastIndex: v.lastIndex,
    appliedIndex: v.applied,
    firstIndex: v.firstIndex,
    snapshotIndex: v.snapshotIndex,
  };
}

export function roleIn(c: ConfigView, id: number): MemberRole | null {
  if (c.witnesses.includes(id)) return 'witness';
  if (c.voters.includes(id) || c.outgoing.includes(id)) return 'voter';
  if (c.learners.includes(id)) return 'learner';
  return null;
}

export function membersOf(c: ConfigView): ClusterMember[] {
  const ids = [...new Set([...c.voters, ...c.outgoing, ...c.learners])].sort((a, b) => a - b);
  return ids.map((id) => ({ id, role: roleIn(c, id)! }));
}

/** Full voters: the ones that can lead for good and hold the state machine. */
export function fullVotersOf(c: ConfigView): number[] {
  return [...new Set([...c.voters, ...c.outgoing])].filter((id) => !c.witnesses.includes(id)).sort((a, b) => a - b);
}

/** The change in force but not yet committed, or the joint configuration not yet left; null when settled. */
export function pendingOf(c: ConfigView): PendingChange | null {
  const joint = c.outgoing.length > 0;
  if (!joint && c.membershipIndex <= c.commit) return null;
  return { index: c.membershipIndex, joint, voters: [...c.voters], outgoing: [...c.outgoing], learners: [...c.learners], witnesses: [...c.witnesses] };
}

/**
 * What a leader's refusal of a change means. A ConflictError when the caller must act first (it
 * says how); null when it passes by itself (no leader, a transfer under way, a leader that has
 * not committed in its term yet): retry shortly.
 */
export function refusalError(why: string): ConflictError | null {
  if (/^not the leader|^leadership is being transferred|^a witness leader|has not committed an entry of its term/.test(why)) return null;
  if (/another membership change|joint configuration must be left/.test(why)) {
    return new ConflictError(`${why} (GET /cluster shows it as pendingChange); one change at a time`, 'change-pending');
  }
  if (/^learner \d+ is \d+ entries behind/.test(why)) return new ConflictError(why, 'learner-behind');
  if (/leave no voter|leave only witnesses/.test(why)) return new ConflictError(`${why}; add a voter first (POST /cluster/members), then remove this one`, 'last-voter');
  return new ConflictError(why, 'member-state');
}

/** A refusal that says the change is already in force (an earlier try whose answer was lost took effect). */
export function alreadyDone(why: string): boolean {
  return /is already a (voter|learner|witness)|is not a member/.test(why);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
