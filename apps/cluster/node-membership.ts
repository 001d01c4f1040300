// The node host's side of membership changes: the Raft core a node starts with (a joining node
// included), the conversions between the core's configuration and what snapshot files record,
// and the proposals of configuration changes waiting to commit. No decisions of Raft here: the
// core says what the configuration is and whether a change is accepted.
import type { SnapshotInfo, SnapshotMembership } from '../../runtime/storage/snapshot-store.ts';
import {
  EntryKind,
  membership,
  RaftNode,
  type ConfChange,
  type Entry,
  type Membership,
  type RaftConfig,
  type SnapshotMeta,
} from '../../protocols/raft/index.ts';
import { encodeMembership } from '../../protocols/raft/index.ts';
import type { NodeConfig } from './node-config.ts';

/**
 * How a configuration change proposed on this node ended: committed at `index`, or not (refused
 * by the core, or `lost`: its entry was replaced by a newer leader's, so it did not take effect).
 */
export type ConfChangeOutcome = { ok: true; index: number } | { ok: false; why: string; lost: boolean };

/**
 * The Raft core of node `self`. A joining node starts in no configuration and never campaigns
 * until its log or a snapshot puts it in one: every config entry carries the whole configuration
 * it produces, so the first one it receives tells it (`voters` and `witnesses` are the cluster's
 * first configuration, which a joining node does not need).
 */
export function createRaft(base: Omit<RaftConfig, 'voters' | 'rng'>, cfg: NodeConfig, self: number, peers: readonly number[], rng: RaftConfig['rng']): RaftNode {
  const witnesses = cfg.witnesses ?? [];
  if (cfg.joining === true) return new RaftNode({ ...base, voters: cfg.voters ?? [], witnesses, joining: true, rng });
  return new RaftNode({ ...base, voters: cfg.voters ?? [self, ...peers], witnesses, rng });
}

export function toRaftMembership(m: SnapshotMembership): Membership {
  return membership(m.voters, { outgoing: m.outgoing, learners: m.learners, witnesses: m.witnesses, autoLeave: m.autoLeave });
}

/** What the core reads of a snapshot file: where it is, and the configuration there if the file says. */
export function snapshotMetaOf(info: SnapshotInfo): SnapshotMeta {
  const meta: { index: number; term: number; voters: readonly number[]; membership?: Membership } = { index: info.index, term: info.term, voters: info.voters };
  if (info.membership !== undefined) meta.membership = toRaftMembership(info.membership);
  return meta;
}

/** The config entry a snapshot message carries, so the core takes the configuration from the file. */
export function membershipEntries(info: SnapshotInfo): Entry[] {
  if (info.membership === undefined) return [];
  return [{ index: info.index, term: info.term, kind: EntryKind.config, data: encodeMembership(toRaftMembership(info.membership)) }];
}

/** Is `id` in `m` at all (voter of either half, learner or witness)? */
export function isMember(m: Membership, id: number): boolean {
  return m.voters.includes(id) || m.outgoing.includes(id) || m.learners.includes(id);
}

interface Waiter {
  term: number;
  resolve: (o: ConfChangeOutcome) => void;
}

/** Configuration changes this node proposed as leader, answered once their index is applied. */
export class ConfWaiters {
  private readonly waiting = new Map<number, Waiter>();

  get size(): number {
    return this.waiting.size;
  }

  /** Proposes `cc` on `raft`; the promise settles once the entry is applied here (or at once when refused). */
  propose(raft: RaftNode, cc: ConfChange): Promise<ConfChangeOutcome> {
    const r = raft.proposeConfChange(cc);
    if ('refused' in r) return Promise.resolve({ ok: false, why: r.refused, lost: false });
    return new Promise((resolve) => this.waiting.set(r.index, { term: raft.currentTerm, resolve }));
  }

  /** Entry `index` (of `term`, `kind`) was applied. */
  applied(index: number, term: number, kind: number): void {
    const w = this.waiting.get(index);
    if (w === undefined) return;
    this.waiting.delete(index);
    if (w.term === term && kind === EntryKind.config) w.resolve({ ok: true, index });
    else w.resolve({ ok: false, why: `entry ${index} was replaced by a newer leader's entry (term ${term}); the change did not take effect`, lost: true });
  }

  /** A snapshot replaced the log through `index`: whether those changes took effect is not known here. */
  replacedThrough(index: number): void {
    for (const [i, w] of this.waiting) {
      if (i > index) continue;
      this.waiting.delete(i);
      w.resolve({ ok: false, why: `a snapshot from the leader replaced the log through ${index}; check the configuration and retry`, lost: true });
    }
  }
}
