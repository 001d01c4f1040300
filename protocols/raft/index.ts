// The public face of the Raft core: what hosts (simulator, worker runtime, apps) may import.
// Internals (log, progress, read-only, quorum) stay importable for tests but are not the contract.
export { RaftNode, type RaftStatus, type ProgressStatus } from './raft.ts';
export {
  defaultRaftSettings,
  RaftConfigError,
  resolveRaftConfig,
  type RaftConfig,
  type RaftMutations,
  type RaftSettings,
  type RandomSource,
} from './config.ts';
export { formatEntry, formatMessage, formatStatus } from './describe.ts';
export { MemoryStorage, noSnapshot, type LogStorage } from './storage.ts';
export { compactionPoint, type CompactionSettings } from './compaction.ts';
export { JointConfig, MajorityConfig, VoteResult } from './quorum.ts';
export {
  applyConfChange,
  ConfChangeError,
  checkChange,
  decodeConfEntry,
  decodeMembership,
  describeConfChange,
  describeMembership,
  emptyMembership,
  encodeConfEntry,
  encodeMembership,
  fullVoters,
  isJoint,
  isVoter,
  members,
  membership,
  roleOf,
  sameMembership,
  type ConfChange,
  type ConfChangeOp,
  type ConfChangeSingle,
  type MemberRole,
  type Membership,
} from './membership.ts';
export {
  campaignTransfer,
  EntryKind,
  message,
  MessageType,
  messageTypeName,
  NONE,
  Role,
  roleName,
  type Entry,
  type HardState,
  type Message,
  type ReadState,
  type Ready,
  type SnapshotMeta,
  type SoftState,
} from './types.ts';
