// Settings of one Paxos node and their validation, in the Raft core's style: every tunable here,
// bad values refused with the setting's name and range.
import type { Rng } from '../../runtime/rng.ts';
import { ballotIdSpan } from './types.ts';
import type { PaxosStorage } from './storage.ts';

export type PaxosMode = 'basic' | 'multi';

export interface PaxosSettings {
  /**
   * Multi-Paxos: a node that hears no leader for a timeout drawn from [electionTicks,
   * 2·electionTicks) runs phase 1. Basic Paxos: a refused proposer backs off a random number of
   * ticks below 2·electionTicks before it tries again with a higher ballot.
   */
  electionTicks: number;
  /** A leader sends heartbeats (and resends unanswered accepts) every heartbeatTicks. */
  heartbeatTicks: number;
  /** Multi-Paxos: slots proposed and not yet chosen at once (pipelining); proposals past it are refused. */
  inflightMax: number;
  /** Proposals per accept message (batching). */
  batchMax: number;
}

/** Deliberate bugs for the simulator's mutation check. Never set outside tests. */
export interface PaxosMutations {
  /** An acceptor accepts a proposal whose ballot is below what it promised. */
  acceptBelowPromise?: boolean;
  /** A proposer proposes its own value although a promise reported an accepted one. */
  ignoreAcceptedInPromise?: boolean;
  /** A new Multi-Paxos leader leaves empty slots below its highest one empty (no no-op). */
  skipGapFill?: boolean;
}

export interface PaxosConfig extends Partial<PaxosSettings> {
  id: number;
  /** Every acceptor, this node included. */
  nodes: readonly number[];
  mode: PaxosMode;
  storage: PaxosStorage;
  rng: Pick<Rng, 'int'>;
  /** Slots the host's state machine has already applied. */
  applied?: number;
  unsafe?: PaxosMutations;
}

export const defaultPaxosSettings: Readonly<PaxosSettings> = Object.freeze({ electionTicks: 10, heartbeatTicks: 1, inflightMax: 256, batchMax: 64 });

export interface ResolvedPaxosConfig extends PaxosSettings {
  id: number;
  nodes: readonly number[];
  mode: PaxosMode;
  storage: PaxosStorage;
  rng: Pick<Rng, 'int'>;
  applied: number;
  unsafe: PaxosMutations;
}

export class PaxosConfigError extends Error {
  override name = 'PaxosConfigError';
}

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new PaxosConfigError(`paxos config: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return v;
}

export function resolvePaxosConfig(c: PaxosConfig): ResolvedPaxosConfig {
  const s: PaxosSettings = { ...defaultPaxosSettings };
  for (const k of Object.keys(defaultPaxosSettings) as (keyof PaxosSettings)[]) if (c[k] !== undefined) s[k] = c[k]!;
  const id = int('id', c.id, 1, ballotIdSpan - 1);
  if (!Array.isArray(c.nodes) || c.nodes.length === 0) throw new PaxosConfigError('paxos config: nodes must list at least one acceptor (a cluster of 0 nodes cannot choose anything)');
  for (const n of c.nodes) int('each node id', n, 1, ballotIdSpan - 1);
  if (new Set(c.nodes).size !== c.nodes.length) throw new PaxosConfigError(`paxos config: nodes must be unique, got [${c.nodes.join(', ')}]`);
  if (!c.nodes.includes(id)) throw new PaxosConfigError(`paxos config: nodes [${c.nodes.join(', ')}] must include this node's id ${id}`);
  if (c.mode !== 'basic' && c.mode !== 'multi') throw new PaxosConfigError(`paxos config: mode must be basic or multi, got ${String(c.mode)}`);
  int('electionTicks', s.electionTicks, 2);
  int('heartbeatTicks', s.heartbeatTicks, 1, s.electionTicks - 1);
  int('inflightMax', s.inflightMax, 1);
  int('batchMax', s.batchMax, 1);
  const applied = int('applied', c.applied ?? 0, 0);
  return { ...s, id, nodes: [...c.nodes].sort((a, b) => a - b), mode: c.mode, storage: c.storage, rng: c.rng, applied, unsafe: c.unsafe ?? {} };
}
