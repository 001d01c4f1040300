// The public face of the Paxos cores (Basic and Multi-Paxos): what hosts and the simulator import.
export { PaxosNode, type PaxosStatus } from './paxos.ts';
export { defaultPaxosSettings, PaxosConfigError, resolvePaxosConfig, type PaxosConfig, type PaxosMode, type PaxosMutations, type PaxosSettings } from './config.ts';
export { MemoryPaxosStorage, type PaxosStorage } from './storage.ts';
export * from './types.ts';
export { formatPaxosMessage } from './describe.ts';
