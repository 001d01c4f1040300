// The simulator's public face: the engine, the protocol plug-in contract and the protocols
// that plug in today. Hosts (the CLI, tests) import from here, never from engine internals.
import type { AnySimProtocol } from './protocol.ts';
import { raftSimProtocol } from './raft-cluster.ts';
import { paxosSimProtocol } from './paxos-cluster.ts';

export { runSeed, runSeeds, type SeedResult, type SimOptions, type SimSummary, type SimViolation } from './simulator.ts';
export type { Checker, ClusterOptions, SimCluster, SimEnv, SimMessage, SimProtocol } from './protocol.ts';
export { raftMutations, raftSimProtocol } from './raft-cluster.ts';
export { createRaftCheckers, raftInvariants, type RaftObservation } from './raft-invariants.ts';
export { paxosMutations, paxosSimProtocol } from './paxos-cluster.ts';
export { createPaxosCheckers, paxosInvariants, type PaxosObservation } from './paxos-invariants.ts';

/** Protocols by CLI name: `paxos` is Basic Paxos (one single-decree instance per value), `multipaxos` a stable leader. */
export const simProtocols: Record<string, () => AnySimProtocol> = {
  raft: () => raftSimProtocol() as unknown as AnySimProtocol,
  paxos: () => paxosSimProtocol('basic') as unknown as AnySimProtocol,
  multipaxos: () => paxosSimProtocol('multi') as unknown as AnySimProtocol,
};
