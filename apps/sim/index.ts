// The replica simulator as a protocol for the deterministic engine (protocols/sim): whole nodes
// (host, WAL, snapshots, KV app) instead of the bare core. Wiring only.
import type { RaftSettings } from '../../protocols/raft/index.ts';
import type { SimProtocol } from '../../protocols/sim/protocol.ts';
import { createContentRaftCheckers, raftInvariants } from '../../protocols/sim/raft-invariants.ts';
import { ReplicaSimCluster, replicaMutations, type ReplicaMessage } from './replica-cluster.ts';
import { ReplicaKvChecker, replicaInvariants, type ReplicaObservation } from './replica-checks.ts';

export function replicaSimProtocol(settings: Partial<RaftSettings> = {}): SimProtocol<ReplicaMessage, ReplicaObservation> {
  return {
    name: 'raft-replica',
    // A replica step costs ten times a core step: a shorter fault phase keeps 300 seeds of 5
    // nodes within two minutes; each still sees dozens of faults.
    defaults: { faultPhaseMs: 4_000 },
    // The read-index check of the core simulator is replaced by value checks against the model.
    invariants: [...raftInvariants.filter((i) => i !== 'read-index-linearizable'), ...replicaInvariants],
    mutations: Object.keys(replicaMutations),
    createCluster: (nodeIds, env, options) => new ReplicaSimCluster(nodeIds, env, settings, options),
    createCheckers: () => [...createContentRaftCheckers(), new ReplicaKvChecker()],
  };
}

export { replicaMutations };
