// What a node actor is configured with (the supervisor hands it to every node worker), and the
// state machines a node can run. Settings only: no behaviour, nothing that cannot be cloned.
import type { FsyncPolicy } from '../../runtime/storage/index.ts';
import type { MemberRole, RaftMutations, RaftSettings } from '../../protocols/raft/index.ts';
import type { SnapshotSettings } from './snapshot-keeper.ts';
import type { TransferSettings } from './snapshot-transfer.ts';
import type { HttpApiOptions } from '../http/settings.ts';
import type { RespSettings } from '../resp/settings.ts';

/** The state machines a node can run: the KV store, or a counter of commands for benchmarks. */
export const nodeApps = ['kv', 'count'] as const;
export type NodeApp = (typeof nodeApps)[number];

export interface NodeConfig {
  /** Length of one Raft tick in milliseconds; election and heartbeat settings are in ticks. */
  tickMs: number;
  raft: Partial<RaftSettings>;
  storage: 'wal' | 'memory';
  fsync: FsyncPolicy;
  /** Status reports to the supervisor are sent at most this often (role changes go at once). */
  statusEveryMs: number;
  seed: number;
  /** The state machine: the apps of `apps` on one log (default), or `count` for benchmarks. */
  app?: NodeApp;
  /**
   * The apps on the log (built-in names or module paths; default kv and lock). Every node of a
   * cluster must run the same list, in the same order.
   */
  apps?: string[];
  /** While an app waits on the log's time, the leader proposes a clock entry this often (ms; default 100). */
  clockMs?: number;
  /**
   * The voting members. Default: this node and every peer. Set it when other actors (client
   * actors) share the supervisor: any actor that is not a voter is treated as a client.
   */
  voters?: number[];
  /** The voters that keep no state machine (a subset of the voters): they vote and hold the log only. */
  witnesses?: number[];
  /**
   * A node added to a running cluster: it is in no configuration of its own until the leader's
   * log or snapshot puts it in one, and never campaigns before. `voters` and `witnesses` are then
   * the cluster's first configuration (before any entry of its log), not this node's.
   */
  joining?: boolean;
  /** The part a joining node was added for; a witness keeps no state machine from its first entry on. */
  joinAs?: MemberRole;
  /**
   * Memory storage only: once this many applied entries are held by every voter, they are dropped
   * from memory (default compactEntriesDefault; 0: never). A node that can never restart has no
   * other use for them, and a log that only grows costs page faults and, in the end, the heap.
   */
  compactEntries?: number;
  /** WAL storage: segment files are sealed past this size (WalOptions.segmentBytesMax); compaction deletes whole segments. */
  walSegmentBytesMax?: number;
  /** WAL storage: when to snapshot and how much log to keep behind a snapshot. */
  snapshot?: Partial<SnapshotSettings>;
  /** WAL storage: how snapshots stream to followers. */
  transfer?: Partial<TransferSettings>;
  /** Bytes per data chunk of a node's in-memory log (default 4 MiB); the simulator, with many short logs, uses less. */
  logChunkBytes?: number;
  /** A slow disk, as a fault: every fsync of this node takes this much longer (its thread blocks). */
  syncDelayMs?: number;
  /**
   * The node's own client port (concur start --client-ports): the HTTP API's settings for it, the
   * port and token included. Absent: the node serves no clients itself.
   */
  door?: HttpApiOptions;
  /** The node's own Redis protocol port (concur start --resp-client-ports): the RESP door's settings, the port included. */
  respDoor?: Partial<RespSettings>;
  /** Deliberate bugs, for tests that show the checkers catch them. Never set otherwise. */
  unsafe?: RaftMutations;
  /** Deliberate bugs in the node host (not the core), for the simulator's mutation check. Never set otherwise. */
  hostUnsafe?: HostMutations;
}

export interface HostMutations {
  /** Send acks and votes (messagesAfterPersist) before the Ready's write and fsync. */
  ackBeforeSync?: boolean;
  /** Serve a confirmed read at once, before the node has applied up to its read index. */
  serveBeforeApply?: boolean;
}
