// The Raft safety properties (Raft paper Figure 3) as checkers over what the simulator observes
// after every step, plus ReadIndex linearity and snapshot faithfulness (a snapshot equals the
// replay of the committed log it covers). Each keeps incremental state so a check is O(1) per
// step (O(log) per election); none of them changes a node or trusts a node's own claims.
import type { Entry, Ready } from '../raft/index.ts';
import { Role, type RaftNode } from '../raft/index.ts';
import type { Checker } from './protocol.ts';
import { CommitQuorum } from './commit-quorum.ts';

export type RaftObservation =
  /** After every input to a live node (message, tick, proposal, read, persistence done). */
  | { kind: 'step'; node: number; raft: RaftNode }
  /** A Ready was taken: its entries now form the tail of the node's log. */
  | { kind: 'ready'; node: number; raft: RaftNode; ready: Ready }
  | { kind: 'apply'; node: number; entry: Entry }
  | { kind: 'crash'; node: number }
  /**
   * A node started again from durable storage, whose log is `durable`, following the entry
   * `base` (index 0 when the log starts at 1); its state machine came back at `applied`.
   */
  | { kind: 'restart'; node: number; raft: RaftNode; durable: readonly Entry[]; base: { index: number; term: number }; applied: number }
  /** A node captured its state machine (`digest`) at applied index `index`. */
  | { kind: 'snapshot-taken'; node: number; index: number; digest: number }
  /** A node replaced its state machine and log with a snapshot from the leader (`digest`: the simulated state machine's; replicas check theirs elsewhere). */
  | { kind: 'snapshot-installed'; node: number; index: number; term: number; digest?: number }
  | { kind: 'read-request'; node: number; requestId: number }
  /**
   * A read answered: confirmed at read index `index`, served from a state machine that had
   * applied through `applied` and is then `digest` (both absent where replicas check values).
   */
  | { kind: 'read-state'; node: number; requestId: number; index: number; applied?: number; digest?: number };

/**
 * When two entries are the same entry. The core simulator hands the same objects around, so
 * identity is enough (and fast); a replica under simulation copies entries through its wire, its
 * WAL and its log arena, so there an entry is its content.
 */
export interface EntryIdentity {
  /** A number that is equal for the same entry (and, up to hash collisions, only for it). */
  id(e: Entry): number;
  same(a: Entry | undefined, b: Entry | undefined): boolean;
  /** What to keep of an entry for a later comparison (a node's entry may be a view of memory it reuses). */
  keep<E extends Entry | undefined>(e: E): E;
}

const objectIds = new WeakMap<Entry, number>();
let nextObjectId = 1;
export const byObject: EntryIdentity = {
  id(e) {
    let id = objectIds.get(e);
    if (id === undefined) {
      id = nextObjectId++;
      objectIds.set(e, id);
    }
    return id;
  },
  same: (a, b) => a === b,
  keep: (e) => e,
};

export const byContent: EntryIdentity = {
  id: (e) => applyDigest(0, e),
  same(a, b) {
    if (a === b) return true;
    if (a === undefined || b === undefined) return false;
    if (a.index !== b.index || a.term !== b.term || a.kind !== b.kind || a.data.length !== b.data.length) return false;
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
    return true;
  },
  keep: <E extends Entry | undefined>(e: E): E => (e === undefined ? e : ({ index: e.index, term: e.term, kind: e.kind, data: e.data.slice() } as E)),
};

export const raftInvariants = [
  'election-safety',
  'leader-append-only',
  'log-matching',
  'commit-quorum',
  'leader-completeness',
  'state-machine-safety',
  'read-index-linearizable',
] as const;

/** At most one leader per term. */
export class ElectionSafety implements Checker<RaftObservation> {
  readonly name = 'election-safety';
  private readonly leaders = new Map<number, number>();

  observe(o: RaftObservation): string | null {
    if (o.kind !== 'step' || o.raft.currentRole !== Role.leader) return null;
    const term = o.raft.currentTerm;
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, o.node);
    else if (prev !== o.node) return `term ${term} has two leaders: n${prev} and n${o.node}`;
    return null;
  }
}

/** A leader never overwrites or deletes entries in its log; it only appends. */
export class LeaderAppendOnly implements Checker<RaftObservation> {
  readonly name = 'leader-append-only';
  constructor(private readonly identity: EntryIdentity = byObject) {}
  private readonly last = new Map<number, { term: number; index: number; entry: Entry | undefined }>();

  observe(o: RaftObservation): string | null {
    if (o.kind === 'crash' || o.kind === 'restart') {
      this.last.delete(o.node);
      return null;
    }
    if (o.kind !== 'step') return null;
    const raft = o.raft;
    if (raft.currentRole !== Role.leader) {
      this.last.delete(o.node);
      return null;
    }
    const term = raft.currentTerm;
    const rec = this.last.get(o.node);
    // Entries are immutable objects: if the one we saw at the end of the log is no longer the
    // object at that index, the leader truncated or replaced its log.
    // An entry compacted away was committed and applied: compaction is not a rewrite.
    if (rec !== undefined && rec.term === term && rec.index > 0 && rec.index >= raft.firstIndex) {
      const now = raft.entryAt(rec.index);
      if (!this.identity.same(now, rec.entry)) {
        return `leader n${o.node} (term ${term}) had entry ${rec.index} (term ${rec.entry?.term}) and now has ${now === undefined ? 'nothing' : `an entry of term ${now.term}`} there`;
      }
    }
    const index = raft.lastIndex;
    if (rec === undefined || rec.term !== term || rec.index !== index) this.last.set(o.node, { term, index, entry: this.identity.keep(raft.entryAt(index)) });
    return null;
  }
}

/**
 * If two logs hold an entry with the same index and term, the logs are identical up to it.
 * Each node's log is mirrored from its Ready stream with a rolling hash per index; the first
 * hash seen for an (index, term) is the law for every node and every later moment.
 */
export class LogMatching implements Checker<RaftObservation> {
  readonly name = 'log-matching';
  constructor(private readonly identity: EntryIdentity = byObject) {}
  private readonly logs = new Map<number, { entries: Entry[]; hashes: number[] }>();
  private readonly law = new Map<number, { hash: number; node: number }>();
  /** Per node: the index its log starts after (a snapshot's), below which it holds only committed state. */
  private readonly bases = new Map<number, number>();

  /** Whether `node`'s log (as its Readies built it) holds `e` at `index`, or a snapshot covering it. */
  holds(node: number, index: number, e: Entry): boolean {
    if (index <= (this.bases.get(node) ?? 0)) return true;
    return this.identity.same(this.logs.get(node)?.entries[index - 1], e);
  }

  private mirror(node: number): { entries: Entry[]; hashes: number[] } {
    let m = this.logs.get(node);
    if (m === undefined) {
      m = { entries: [], hashes: [] };
      this.logs.set(node, m);
    }
    return m;
  }

  observe(o: RaftObservation): string | null {
    if (o.kind === 'restart') {
      const err = this.rebase(o.node, o.base.index, o.base.term);
      return err ?? this.append(o.node, o.durable);
    }
    if (o.kind !== 'ready') return null;
    // Like entries, a snapshot from the leader shapes the log from the Ready that hands it out.
    const snap = o.ready.snapshot;
    if (snap !== null) {
      const err = this.rebase(o.node, snap.index, snap.term);
      if (err !== null) return err;
    }
    return o.ready.entries.length === 0 ? null : this.append(o.node, o.ready.entries);
  }

  /** The node's log now starts after (index, term): its prefix is the one the law knows for it. */
  private rebase(node: number, index: number, term: number): string | null {
    const m = this.mirror(node);
    m.entries.length = 0;
    m.hashes.length = 0;
    this.bases.set(node, index);
    if (index === 0) return null;
    const seen = this.law.get(index * 1048576 + term);
    if (seen === undefined) return `n${node}'s log starts after entry ${index} of term ${term}, which no node ever logged`;
    m.entries.length = index;
    m.hashes.length = index;
    m.entries[index - 1] = { index, term, kind: 0, data: new Uint8Array(0) };
    m.hashes[index - 1] = seen.hash;
    return null;
  }

  private append(node: number, ents: readonly Entry[]): string | null {
    if (ents.length === 0) return null;
    const m = this.mirror(node);
    const from = ents[0]!.index;
    if (from > m.entries.length + 1) return `n${node} appended entry ${from} after a log ending at ${m.entries.length} (gap)`;
    m.entries.length = from - 1;
    m.hashes.length = from - 1;
    let h = from > 1 ? m.hashes[from - 2]! : 0;
    for (const e of ents) {
      if (e.index !== m.entries.length + 1) return `n${node} log is not contiguous at ${e.index}`;
      if (m.entries.length > 0 && e.term < m.entries[m.entries.length - 1]!.term) {
        return `n${node} log terms decrease at index ${e.index} (term ${e.term} after ${m.entries[m.entries.length - 1]!.term})`;
      }
      h = mix(h, this.identity.id(e));
      m.entries.push(e);
      m.hashes.push(h);
      const key = e.index * 1048576 + e.term;
      const seen = this.law.get(key);
      if (seen === undefined) this.law.set(key, { hash: h, node });
      else if (seen.hash !== h) {
        return `n${node} and n${seen.node} both have an entry at index ${e.index} with term ${e.term}, but their logs differ at or before it`;
      }
    }
    return null;
  }
}

/** Commit records shared by the checkers that need "what is committed, and in which term". */
class CommitLedger {
  constructor(private readonly identity: EntryIdentity) {}
  readonly entries: (Entry | undefined)[] = [undefined];
  readonly terms: number[] = [0];
  private readonly seen = new Map<number, number>();

  /** Records the commits `raft` made since last seen; returns newly committed indexes or a disagreement. */
  update(node: number, raft: RaftNode): { fresh: number[] } | string {
    const c = raft.commitIndex;
    const prev = this.seen.get(node) ?? 0;
    if (c <= prev) {
      if (c < prev) this.seen.set(node, c);
      return { fresh: [] };
    }
    this.seen.set(node, c);
    const ents = raft.entries(prev + 1, c + 1);
    const fresh: number[] = [];
    for (const e of ents) {
      const known = this.entries[e.index];
      if (known === undefined) {
        this.entries[e.index] = this.identity.keep(e);
        this.terms[e.index] = raft.currentTerm;
        fresh.push(e.index);
      } else if (!this.identity.same(known, e)) {
        return `n${node} committed index ${e.index} as an entry of term ${e.term}, but an entry of term ${known.term} was already committed there`;
      }
    }
    return { fresh };
  }

  forget(node: number): void {
    this.seen.delete(node);
  }

  reset(node: number, commit: number): void {
    this.seen.set(node, commit);
  }
}

/** An entry committed in term T is in the log of every leader of a term > T. */
export class LeaderCompleteness implements Checker<RaftObservation> {
  readonly name = 'leader-completeness';
  private readonly ledger: CommitLedger;
  constructor(private readonly identity: EntryIdentity = byObject) {
    this.ledger = new CommitLedger(identity);
  }
  private readonly leaders = new Map<number, { term: number; raft: RaftNode }>();

  observe(o: RaftObservation): string | null {
    if (o.kind === 'crash') {
      this.leaders.delete(o.node);
      this.ledger.forget(o.node);
      return null;
    }
    if (o.kind === 'restart') {
      this.leaders.delete(o.node);
      this.ledger.reset(o.node, o.raft.commitIndex);
      return null;
    }
    if (o.kind === 'snapshot-installed') {
      this.ledger.reset(o.node, o.index);
      return null;
    }
    if (o.kind !== 'step') return null;
    const raft = o.raft;
    const res = this.ledger.update(o.node, raft);
    if (typeof res === 'string') return null; // reported by StateMachineSafety
    for (const index of res.fresh) {
      const term = this.ledger.terms[index]!;
      for (const [id, l] of this.leaders) {
        // Below its first index a leader holds a snapshot, which StateMachineSafety checks.
        if (l.term > term && index >= l.raft.firstIndex && !this.identity.same(l.raft.entryAt(index), this.ledger.entries[index])) {
          return `index ${index} committed in term ${term} is missing from n${id}, leader of term ${l.term}`;
        }
      }
    }
    if (raft.currentRole !== Role.leader) {
      this.leaders.delete(o.node);
      return null;
    }
    const term = raft.currentTerm;
    const known = this.leaders.get(o.node);
    if (known !== undefined && known.term === term) return null;
    this.leaders.set(o.node, { term, raft });
    const committed = this.ledger.entries;
    for (let i = Math.max(1, raft.firstIndex); i < committed.length; i++) {
      if (committed[i] !== undefined && this.ledger.terms[i]! < term && !this.identity.same(raft.entryAt(i), committed[i])) {
        return `n${o.node} became leader of term ${term} without index ${i}, committed in term ${this.ledger.terms[i]}`;
      }
    }
    return null;
  }
}

/**
 * No two nodes apply different entries at one index; each node applies in order; commits agree;
 * and a snapshot (taken or installed) equals the replay of the entries it covers, so state
 * stays right across snapshot boundaries.
 */
export class StateMachineSafety implements Checker<RaftObservation> {
  readonly name = 'state-machine-safety';
  private readonly ledger: CommitLedger;
  constructor(private readonly identity: EntryIdentity = byObject) {
    this.ledger = new CommitLedger(identity);
  }
  private readonly applied: (Entry | undefined)[] = [];
  private readonly appliedBy = new Map<number, number>();
  private readonly appliedIndex = new Map<number, number>();
  /** prefixDigest[i]: the digest after applying applied[1..i]; known up to its length − 1. */
  private readonly prefixDigest: number[] = [0];

  observe(o: RaftObservation): string | null {
    switch (o.kind) {
      case 'step': {
        const res = this.ledger.update(o.node, o.raft);
        return typeof res === 'string' ? res : null;
      }
      case 'crash':
        this.ledger.forget(o.node);
        return null;
      case 'restart':
        this.ledger.reset(o.node, o.raft.commitIndex);
        this.appliedIndex.set(o.node, o.applied);
        return null;
      case 'snapshot-taken':
        return this.checkImage(o.node, o.index, o.digest, 'took');
      case 'read-state':
        // A read is answered from a state machine: it must be the replay of the log up to where it stands.
        return o.applied === undefined || o.digest === undefined ? null : this.checkImage(o.node, o.applied, o.digest, 'served a read from', 'a state machine');
      case 'snapshot-installed':
        this.ledger.reset(o.node, o.index);
        this.appliedIndex.set(o.node, o.index);
        return o.digest === undefined ? null : this.checkImage(o.node, o.index, o.digest, 'installed');
      case 'apply': {
        const e = o.entry;
        const expected = (this.appliedIndex.get(o.node) ?? 0) + 1;
        if (e.index !== expected) return `n${o.node} applied index ${e.index} but its next index to apply was ${expected}`;
        this.appliedIndex.set(o.node, e.index);
        const first = this.applied[e.index];
        if (first === undefined) {
          this.applied[e.index] = e;
          this.appliedBy.set(e.index, o.node);
        } else if (!this.identity.same(first, e)) {
          return `n${o.node} applied an entry of term ${e.term} at index ${e.index}, but n${this.appliedBy.get(e.index)} applied an entry of term ${first.term} there`;
        }
        return null;
      }
      default:
        return null;
    }
  }

  /** A snapshot at `index` must hold exactly the state of applying entries 1..index. */
  private checkImage(node: number, index: number, digest: number, verb: string, what = 'a snapshot'): string | null {
    const p = this.prefixDigest;
    while (p.length <= index && this.applied[p.length] !== undefined) p.push(applyDigest(p[p.length - 1]!, this.applied[p.length]!));
    if (p.length <= index) return `n${node} ${verb} ${what} at ${index}, but no node ever applied index ${p.length}`;
    if (p[index] !== digest) return `n${node} ${verb} ${what} at ${index} whose state differs from applying entries 1..${index}`;
    return null;
  }
}

/** The simulated state machine: a digest folded over every applied entry (index, term, kind, bytes). */
export function applyDigest(digest: number, e: Entry): number {
  let h = mix(digest, e.index);
  h = mix(h, e.term * 8 + e.kind);
  for (let i = 0; i < e.data.length; i += 4) {
    const d = e.data;
    h = mix(h, (d[i]! | ((d[i + 1] ?? 0) << 8) | ((d[i + 2] ?? 0) << 16) | ((d[i + 3] ?? 0) << 24)) >>> 0);
  }
  return h;
}

/**
 * A read (ReadIndex on the leader or a follower, or a lease read) is linearizable only if its
 * index covers everything committed anywhere before the read was asked for; a stale leader, a
 * new leader that serves too early, or a lease that outlives the followers' vote refusal breaks this.
 */
export class ReadIndexLinearizable implements Checker<RaftObservation> {
  readonly name = 'read-index-linearizable';
  private maxCommit = 0;
  private readonly asked = new Map<number, number>();

  observe(o: RaftObservation): string | null {
    switch (o.kind) {
      case 'step':
        if (o.raft.commitIndex > this.maxCommit) this.maxCommit = o.raft.commitIndex;
        return null;
      case 'read-request':
        this.asked.set(o.requestId, this.maxCommit);
        return null;
      case 'read-state': {
        const need = this.asked.get(o.requestId);
        if (need === undefined) return null;
        this.asked.delete(o.requestId);
        if (o.index < need) return `read ${o.requestId} served at n${o.node} with read index ${o.index}, but index ${need} was already committed when it was asked`;
        return null;
      }
      default:
        return null;
    }
  }
}

export function createRaftCheckers(): Checker<RaftObservation>[] {
  const logs = new LogMatching();
  // CommitQuorum reads the logs LogMatching mirrors, so it must come after it.
  return [new ElectionSafety(), new LeaderAppendOnly(), logs, new CommitQuorum(logs), new LeaderCompleteness(), new StateMachineSafety(), new ReadIndexLinearizable()];
}

/** The five Raft properties for replicas under simulation: entries compared by content. */
export function createContentRaftCheckers(): Checker<RaftObservation>[] {
  return [new ElectionSafety(), new LeaderAppendOnly(byContent), new LogMatching(byContent), new LeaderCompleteness(byContent), new StateMachineSafety(byContent)];
}

function mix(h: number, id: number): number {
  // Two 32-bit lanes folded into one exact double: collisions are out of reach for a run.
  let a = Math.imul((h >>> 0) ^ id, 0x9e3779b1);
  a = Math.imul(a ^ (a >>> 15), 0x85ebca77) >>> 0;
  let b = Math.imul(((h / 4294967296) >>> 0) + id * 31, 0xc2b2ae3d);
  b = Math.imul(b ^ (b >>> 13), 0x27d4eb2f) >>> 0;
  return (b & 0x1fffff) * 4294967296 + a;
}
