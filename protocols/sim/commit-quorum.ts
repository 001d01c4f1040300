// "No decision by a minority": whenever a leader's commit index advances, the entry it committed
// must be held by a majority of every half of the configuration that leader should be using —
// the newest configuration in its log, recomputed here from the changes its config entries ask
// for with the correct rules (so a core that skips the joint step is judged by the joint
// configuration it should have entered, not by the one it believes in).
import { applyConfChange, decodeConfEntry, EntryKind, Role, type ConfChange, type Entry, type Membership } from '../raft/index.ts';
import type { Checker } from './protocol.ts';
import type { LogMatching, RaftObservation } from './raft-invariants.ts';

interface NodeConfigs {
  /** The configuration where the node's log starts: its snapshot's, or null for the cluster's initial one. */
  base: Membership | null;
  /** Config entries in the node's log after the base, in order. */
  changes: { index: number; change: ConfChange }[];
  /** The configuration the changes lead to, cached until they change. */
  current: Membership | null;
  /** The last index its Readies (or restart) handed over; entries after it are still in memory only. */
  last: number;
}

export class CommitQuorum implements Checker<RaftObservation> {
  readonly name = 'commit-quorum';
  private readonly nodes = new Map<number, NodeConfigs>();
  /** Per leader: the commit index it had when last seen leading, and in which term. */
  private readonly seen = new Map<number, { term: number; commit: number }>();
  /**
   * The configuration the cluster started with, from the first node that knew one: a joining
   * node's log starts at 1 too, but its own base is empty.
   */
  private initial: Membership | null = null;

  constructor(private readonly logs: LogMatching) {}

  observe(o: RaftObservation): string | null {
    switch (o.kind) {
      case 'restart':
        this.learnInitial(o.raft);
        this.nodes.set(o.node, { base: o.base.index === 0 ? null : o.raft.membershipAt(o.base.index), changes: [], current: null, last: o.base.index });
        this.appended(o.node, o.durable);
        this.seen.delete(o.node);
        return null;
      case 'crash':
        this.seen.delete(o.node);
        return null;
      case 'ready': {
        this.learnInitial(o.raft);
        const snap = o.ready.snapshot;
        if (snap !== null) this.nodes.set(o.node, { base: o.raft.membershipAt(snap.index), changes: [], current: null, last: snap.index });
        else if (!this.nodes.has(o.node)) this.nodes.set(o.node, { base: null, changes: [], current: null, last: 0 });
        this.appended(o.node, o.ready.entries);
        return null;
      }
      case 'step':
        this.learnInitial(o.raft);
        return this.checkCommit(o.node, o.raft);
      default:
        return null;
    }
  }

  private learnInitial(raft: Extract<RaftObservation, { kind: 'step' }>['raft']): void {
    if (this.initial !== null || raft.firstIndex > 1) return;
    const m = raft.membershipAt(0);
    if (m.voters.length > 0) this.initial = m;
  }

  private appended(node: number, ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const c = this.nodes.get(node)!;
    const from = ents[0]!.index;
    c.changes = c.changes.filter((x) => x.index < from);
    for (const e of ents) if (e.kind === EntryKind.config) c.changes.push({ index: e.index, change: decodeConfEntry(e.data).change });
    c.current = null;
    c.last = ents[ents.length - 1]!.index;
  }

  /** The configuration `raft`'s log leads to: its Readies so far, then its tail not yet handed out. */
  private expected(node: number, raft: Extract<RaftObservation, { kind: 'step' }>['raft']): Membership | null {
    const c = this.nodes.get(node);
    if (c === undefined) return null;
    if (c.current === null) {
      const base = c.base ?? this.initial;
      if (base === null) return null;
      c.current = fold(base, c.changes.map((x) => x.change));
    }
    const tail = raft.entries(c.last + 1, raft.lastIndex + 1).filter((e) => e.kind === EntryKind.config);
    return tail.length === 0 ? c.current : fold(c.current, tail.map((e) => decodeConfEntry(e.data).change));
  }

  private checkCommit(node: number, raft: Extract<RaftObservation, { kind: 'step' }>['raft']): string | null {
    if (raft.currentRole !== Role.leader) {
      this.seen.delete(node);
      return null;
    }
    const term = raft.currentTerm;
    const commit = raft.commitIndex;
    const prev = this.seen.get(node);
    this.seen.set(node, { term, commit });
    if (prev === undefined || prev.term !== term || commit <= prev.commit) return null;
    const e = raft.entryAt(commit);
    const m = this.expected(node, raft);
    if (e === undefined || m === null || m.voters.length === 0) return null;
    for (const [half, voters] of [['incoming', m.voters], ['outgoing', m.outgoing]] as const) {
      if (voters.length === 0) continue;
      const holders = voters.filter((id) => this.logs.holds(id, commit, e));
      if (holders.length * 2 <= voters.length) {
        return `leader n${node} (term ${term}) committed index ${commit}, held only by [${holders.join(',')}] of the ${half} voters [${voters.join(',')}]: not a majority`;
      }
    }
    return null;
  }
}

/** Applies changes with the correct rules; one they refuse changes nothing. */
function fold(m: Membership, changes: readonly ConfChange[]): Membership {
  for (const cc of changes) {
    const next = applyConfChange(m, cc);
    if (typeof next !== 'string') m = next;
  }
  return m;
}
