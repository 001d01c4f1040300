// Cluster membership as the core sees it: who votes (in one or, during joint consensus, two
// configurations), who only learns, which voters are witnesses; the change requests that move
// it (etcd-raft's ConfChangeV2 in spirit) and their encoding in config entries; and the history
// of configurations along the log. Pure data and pure functions: RaftNode decides when they apply.
//
// A configuration takes effect when its entry is appended to a log, committed or not (thesis
// §4.1), and is rolled back if that entry is truncated. So every node, after a restart too, uses
// the newest configuration its log (or snapshot) holds; nothing about membership is in hard state.
// A config entry carries the whole configuration it produces (as hashicorp/raft's do), not only
// the change: a node that joins with an empty log learns the configuration from the first config
// entry it receives, without knowing the one the cluster started with.

/** A node's part in a configuration. */
export type MemberRole = 'voter' | 'learner' | 'witness';

export interface Membership {
  /** Voters of the (incoming) configuration, witnesses included, sorted. */
  readonly voters: readonly number[];
  /** Joint consensus: voters of the outgoing configuration (empty when not joint), sorted. */
  readonly outgoing: readonly number[];
  /** Receive the log, vote in nothing, count in no quorum. Sorted. */
  readonly learners: readonly number[];
  /** Voters (of either half) that keep no state machine: they vote and persist entries only. Sorted. */
  readonly witnesses: readonly number[];
  /** Joint: the leader proposes leaving once the joint entry commits. */
  readonly autoLeave: boolean;
}

export type ConfChangeOp = 'add-voter' | 'add-learner' | 'add-witness' | 'remove';

export interface ConfChangeSingle {
  readonly op: ConfChangeOp;
  readonly node: number;
}

/**
 * One configuration entry's request. `changes` empty with `leave` set leaves a joint
 * configuration. Several changes, or one that changes two voters at once, go through joint
 * consensus (C_old,new); `joint: true` forces the joint step even for one change, and
 * `autoLeave: false` keeps the joint configuration until an explicit leave.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeSingle[];
  readonly leave?: boolean;
  readonly joint?: boolean;
  readonly autoLeave?: boolean;
}

const frozen = <T>(a: T[]): readonly T[] => Object.freeze(a);
const sorted = (ids: Iterable<number>): readonly number[] => frozen([...new Set(ids)].sort((a, b) => a - b));

export function membership(voters: readonly number[], extra: Partial<Omit<Membership, 'voters'>> = {}): Membership {
  return Object.freeze({
    voters: sorted(voters),
    outgoing: sorted(extra.outgoing ?? []),
    learners: sorted(extra.learners ?? []),
    witnesses: sorted(extra.witnesses ?? []),
    autoLeave: extra.autoLeave ?? false,
  });
}

export const emptyMembership: Membership = membership([]);

export function isJoint(m: Membership): boolean {
  return m.outgoing.length > 0;
}

/** Votes in either half of the configuration. */
export function isVoter(m: Membership, id: number): boolean {
  return m.voters.includes(id) || m.outgoing.includes(id);
}

/** Every node the leader replicates to: voters of both halves and learners. */
export function members(m: Membership): readonly number[] {
  return sorted([...m.voters, ...m.outgoing, ...m.learners]);
}

export function roleOf(m: Membership, id: number): MemberRole | null {
  if (m.witnesses.includes(id)) return 'witness';
  if (isVoter(m, id)) return 'voter';
  if (m.learners.includes(id)) return 'learner';
  return null;
}

/** Voters that keep the state machine (the ones a witness must hand leadership to). */
export function fullVoters(m: Membership): readonly number[] {
  return sorted([...m.voters, ...m.outgoing].filter((id) => !m.witnesses.includes(id)));
}

export function sameMembership(a: Membership, b: Membership): boolean {
  const eq = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.voters, b.voters) && eq(a.outgoing, b.outgoing) && eq(a.learners, b.learners) && eq(a.witnesses, b.witnesses) && a.autoLeave === b.autoLeave;
}

export function describeMembership(m: Membership): string {
  const part = (ids: readonly number[]) => ids.map((id) => `${id}${m.witnesses.includes(id) ? 'w' : ''}`).join(',');
  let s = `voters=[${part(m.voters)}]`;
  if (isJoint(m)) s += ` outgoing=[${part(m.outgoing)}]${m.autoLeave ? ' auto-leave' : ''}`;
  if (m.learners.length > 0) s += ` learners=[${m.learners.join(',')}]`;
  return s;
}

export function describeConfChange(cc: ConfChange): string {
  if (cc.changes.length === 0) return 'leave-joint';
  return cc.changes.map((c) => `${c.op} ${c.node}`).join(', ') + (cc.joint === true ? ' (joint)' : '');
}

// ---- encoding: a config entry's data is the change as JSON, a membership in snapshots likewise.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ops: readonly ConfChangeOp[] = ['add-voter', 'add-learner', 'add-witness', 'remove'];

export class ConfChangeError extends Error {
  override name = 'ConfChangeError';
}

/** A config entry's data: the change asked for (for people) and the configuration it produced (the law). */
export function encodeConfEntry(cc: ConfChange, result: Membership): Uint8Array {
  return encoder.encode(JSON.stringify({ change: plainChange(cc), membership: result }));
}

function plainChange(cc: ConfChange): ConfChange {
  return { changes: cc.changes.map((c) => ({ op: c.op, node: c.node })), leave: cc.leave === true, joint: cc.joint === true, autoLeave: cc.autoLeave !== false };
}

/** Reads a config entry's data; throws ConfChangeError when it is not one. */
export function decodeConfEntry(data: Uint8Array): { change: ConfChange; membership: Membership } {
  let raw: { change?: unknown; membership?: unknown };
  try {
    raw = JSON.parse(decoder.decode(data)) as typeof raw;
  } catch {
    throw new ConfChangeError('config entry is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || typeof raw.membership !== 'object' || raw.membership === null) throw new ConfChangeError('config entry has no membership');
  return { change: checkChange(raw.change), membership: checkMembership(raw.membership) };
}

function checkMembership(o: unknown): Membership {
  const m = o as Record<string, unknown>;
  const ids = (v: unknown, name: string): number[] => {
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) throw new ConfChangeError(`membership ${name} must be a list of node ids`);
    return v as number[];
  };
  return membership(ids(m.voters, 'voters'), { outgoing: ids(m.outgoing ?? [], 'outgoing'), learners: ids(m.learners ?? [], 'learners'), witnesses: ids(m.witnesses ?? [], 'witnesses'), autoLeave: m.autoLeave === true });
}

/** Checks the shape of a change request (from an entry or a client); throws ConfChangeError. */
export function checkChange(raw: unknown): ConfChange {
  const o = raw as { changes?: unknown; leave?: unknown; joint?: unknown; autoLeave?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.changes)) throw new ConfChangeError('a membership change needs "changes": a list of { op, node } (op: add-voter, add-learner, add-witness or remove)');
  const changes = o.changes.map((c: { op?: unknown; node?: unknown }) => {
    if (!ops.includes(c?.op as ConfChangeOp) || !Number.isInteger(c?.node) || (c.node as number) < 1) throw new ConfChangeError(`bad change ${JSON.stringify(c)}: op must be add-voter, add-learner, add-witness or remove, node a positive integer`);
    return { op: c.op as ConfChangeOp, node: c.node as number };
  });
  return { changes, leave: o.leave === true, joint: o.joint === true, autoLeave: o.autoLeave !== false };
}

export function encodeMembership(m: Membership): Uint8Array {
  return encoder.encode(JSON.stringify(m));
}

export function decodeMembership(data: Uint8Array): Membership {
  let o: unknown;
  try {
    o = JSON.parse(decoder.decode(data));
  } catch {
    throw new ConfChangeError('membership is not JSON');
  }
  return checkMembership(o);
}

// ---- applying a change

/**
 * The configuration after `cc`, or the reason it is refused. Deterministic: every node computes
 * the same result from the same (membership, change), so a refused change is a no-op everywhere.
 */
export function applyConfChange(m: Membership, cc: ConfChange, skipJointStep = false): Membership | string {
  if (cc.changes.length === 0) {
    if (cc.leave !== true) return 'a change needs at least one add or remove (or leave: true to leave a joint configuration)';
    if (!isJoint(m)) return 'not in a joint configuration: nothing to leave';
    const witnesses = m.witnesses.filter((id) => m.voters.includes(id));
    return membership(m.voters, { learners: m.learners, witnesses });
  }
  if (isJoint(m)) return 'the joint configuration must be left first (it leaves by itself once it commits, or propose leave)';
  const voters = new Set(m.voters);
  const learners = new Set(m.learners);
  const witnesses = new Set(m.witnesses);
  const touched = new Set<number>();
  for (const c of cc.changes) {
    if (touched.has(c.node)) return `node ${c.node} appears twice in one change`;
    touched.add(c.node);
    const isV = voters.has(c.node);
    const isW = witnesses.has(c.node);
    const isL = learners.has(c.node);
    switch (c.op) {
      case 'add-voter':
        if (isW) return `node ${c.node} is a witness: remove it and add a new voter (a witness holds no state machine to promote)`;
        if (isV) return `node ${c.node} is already a voter`;
        learners.delete(c.node);
        voters.add(c.node);
        break;
      case 'add-witness':
        if (isV || isL) return `node ${c.node} is already a ${isW ? 'witness' : isV ? 'voter' : 'learner'}: remove it first`;
        voters.add(c.node);
        witnesses.add(c.node);
        break;
      case 'add-learner':
        if (isV) return `node ${c.node} is a ${isW ? 'witness' : 'voter'}: remove it before adding it back as a learner`;
        if (isL) return `node ${c.node} is already a learner`;
        learners.add(c.node);
        break;
      case 'remove':
        if (!isV && !isL) return `node ${c.node} is not a member`;
        voters.delete(c.node);
        learners.delete(c.node);
        witnesses.delete(c.node);
        break;
    }
  }
  if (voters.size === 0) return 'the change would leave no voter: a cluster needs at least one';
  if ([...voters].every((id) => witnesses.has(id))) return 'the change would leave only witnesses as voters: a cluster needs at least one full voter';
  // Changing more than one voter at once needs the joint step: the two majorities may not overlap.
  let changedVoters = 0;
  for (const id of new Set([...voters, ...m.voters])) if (voters.has(id) !== m.voters.includes(id)) changedVoters++;
  // skipJointStep is a deliberate bug for the simulator's mutation check.
  const joint = !skipJointStep && (cc.joint === true || changedVoters > 1);
  if (!joint) return membership([...voters], { learners: [...learners], witnesses: [...witnesses] });
  // Witnesses keep voting in the outgoing half until the joint configuration is left.
  const keepWitnesses = [...witnesses, ...m.witnesses.filter((id) => m.voters.includes(id))];
  return membership([...voters], { outgoing: m.voters, learners: [...learners], witnesses: keepWitnesses, autoLeave: cc.autoLeave !== false });
}

/**
 * The configurations along one node's log: the one in force at `baseIndex` (from the snapshot or
 * the initial settings) and one per config entry after it. Truncating the log truncates this.
 */
export class MembershipLog {
  private baseIndex: number;
  private base: Membership;
  private readonly changes: { index: number; membership: Membership }[] = [];

  constructor(baseIndex: number, base: Membership) {
    this.baseIndex = baseIndex;
    this.base = base;
  }

  get current(): Membership {
    return this.changes.length > 0 ? this.changes[this.changes.length - 1]!.membership : this.base;
  }

  /** Index of the entry that set the current configuration (the base's index when none). */
  get currentIndex(): number {
    return this.changes.length > 0 ? this.changes[this.changes.length - 1]!.index : this.baseIndex;
  }

  /** The configuration in force once the log holds everything through `index`. */
  at(index: number): Membership {
    for (let i = this.changes.length - 1; i >= 0; i--) if (this.changes[i]!.index <= index) return this.changes[i]!.membership;
    return this.base;
  }

  /** A config entry at `index` is now in the log; returns the configuration it carries. */
  appended(index: number, data: Uint8Array): Membership {
    this.truncateFrom(index);
    const m = decodeConfEntry(data).membership;
    this.changes.push({ index, membership: m });
    return m;
  }

  /** The log lost everything from `index` on (a conflicting append replaces it). */
  truncateFrom(index: number): void {
    while (this.changes.length > 0 && this.changes[this.changes.length - 1]!.index >= index) this.changes.pop();
  }

  /** A snapshot replaced the log: its configuration is the new base. */
  reset(index: number, m: Membership): void {
    this.changes.length = 0;
    this.baseIndex = index;
    this.base = m;
  }
}
