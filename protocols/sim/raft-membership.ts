// Random membership changes for the Raft simulator: which nodes start as members (the rest wait
// as spares, started with no configuration), which node ids are witnesses for the whole seed,
// and, every so often during the fault phase, one change proposed to the leader — add a voter,
// learner or witness, remove a member (the leader too), promote a learner, replace two voters at
// once (joint consensus), leave a joint configuration by hand, or transfer leadership.
import type { Rng } from '../../runtime/rng.ts';
import { describeConfChange, isJoint, isVoter, type ConfChange, type Membership } from '../raft/index.ts';

export interface MembershipPlan {
  /** Initial voters (witnesses included). */
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Node ids that are witnesses whenever they are members (a witness never turns full). */
  readonly witnessIds: ReadonlySet<number>;
}

/** The initial shape: all nodes, or a majority of them with the rest as spares; maybe one witness. */
export function planMembership(rng: Rng, nodeIds: readonly number[]): MembershipPlan {
  const n = nodeIds.length;
  const initial = n >= 5 && rng.chance(0.6) ? Math.max(3, n - 2) : n;
  const voters = nodeIds.slice(0, initial);
  const witnessIds = new Set<number>();
  // A witness needs at least two full voters beside it to be worth having.
  if (n >= 3 && rng.chance(0.4)) witnessIds.add(nodeIds[rng.int(0, n)]!);
  const full = voters.filter((id) => !witnessIds.has(id));
  if (full.length === 0) witnessIds.clear();
  return { voters, learners: [], witnessIds };
}

export type MembershipAction = { kind: 'change'; change: ConfChange } | { kind: 'transfer'; to: number };

/** One random action for the leader of `m`, or null when nothing fits. */
export function pickMembershipAction(rng: Rng, nodeIds: readonly number[], plan: MembershipPlan, m: Membership, leader: number): MembershipAction | null {
  const voters = [...new Set([...m.voters, ...m.outgoing])];
  const outsiders = nodeIds.filter((id) => !isVoter(m, id) && !m.learners.includes(id));
  const addOp = (id: number) => (plan.witnessIds.has(id) ? 'add-witness' : rng.chance(0.3) ? 'add-learner' : 'add-voter') as 'add-witness' | 'add-learner' | 'add-voter';
  if (isJoint(m)) return rng.chance(0.5) ? { kind: 'change', change: { changes: [], leave: true } } : null;
  const choice = rng.int(0, 100);
  if (choice < 25 && outsiders.length > 0) {
    const id = outsiders[rng.int(0, outsiders.length)]!;
    return { kind: 'change', change: { changes: [{ op: addOp(id), node: id }] } };
  }
  if (choice < 45 && voters.length + m.learners.length > 1) {
    // The leader is removed as often as any other member.
    const all = [...voters, ...m.learners];
    return { kind: 'change', change: { changes: [{ op: 'remove', node: all[rng.int(0, all.length)]! }] } };
  }
  if (choice < 60 && m.learners.length > 0) {
    return { kind: 'change', change: { changes: [{ op: 'add-voter', node: m.learners[rng.int(0, m.learners.length)]! }] } };
  }
  if (choice < 85 && outsiders.length > 0 && voters.length > 1) {
    // Replace a voter (or two): more than one voter changes, so this goes through the joint step.
    const add = outsiders[rng.int(0, outsiders.length)]!;
    const changes: ConfChange['changes'][number][] = [{ op: addOp(add), node: add }];
    const gone = voters[rng.int(0, voters.length)]!;
    changes.push({ op: 'remove', node: gone });
    const more = outsiders.filter((id) => id !== add);
    if (more.length > 0 && rng.chance(0.4)) changes.push({ op: addOp(more[0]!), node: more[0]! });
    return { kind: 'change', change: { changes, joint: rng.chance(0.2), autoLeave: rng.chance(0.8) } };
  }
  const targets = voters.filter((id) => id !== leader && !m.witnesses.includes(id));
  if (targets.length > 0) return { kind: 'transfer', to: targets[rng.int(0, targets.length)]! };
  return null;
}

export function describeAction(a: MembershipAction): string {
  return a.kind === 'transfer' ? `transfer leadership to n${a.to}` : describeConfChange(a.change);
}
