// The contract between the HTTP API and whatever runs the cluster: status, fault control,
// command submission and the event stream, plus the errors a backend may reject with.
// Must never mention workers, rings, Raft messages or any transport: the API sees only this.
import type { Observable } from 'rxjs';
import type { App } from '../platform/app.ts';

export type NodeRole = 'leader' | 'follower' | 'candidate';

/** Whether a node runs: `paused` is frozen (POST /cluster/nodes/:id/pause) until resumed. */
export type NodeRunState = 'up' | 'down' | 'paused';

/** A node's part in the cluster's configuration. */
export const memberRoles = ['voter', 'learner', 'witness'] as const;
export type MemberRole = (typeof memberRoles)[number];

export interface ClusterMember {
  id: number;
  role: MemberRole;
}

/** A configuration change proposed and not yet committed (or a joint configuration not yet left). */
export interface PendingChange {
  /** The log index of the entry that set the configuration in force. */
  index: number;
  /** Joint consensus: decisions need majorities of both `voters` and `outgoing`. */
  joint: boolean;
  voters: number[];
  outgoing: number[];
  learners: number[];
  witnesses: number[];
}

/**
 * How a GET is served: `log` through the replicated log; `index` ReadIndex on the leader; `lease`
 * the leader's lease; `follower` any node after asking the leader for a read index; `stale` any
 * node at once from what it has applied (may be behind: see LocalReadResult).
 */
export const readModes = ['log', 'index', 'lease', 'follower', 'stale'] as const;
export type ReadMode = (typeof readModes)[number];
export type LocalReadMode = Exclude<ReadMode, 'log'>;

export interface LocalReadResult {
  /** null: the key is absent. */
  value: Uint8Array | null;
  /** The log index the read reflects. */
  index: number;
  /** The node that served it. */
  node: number;
  /** What that node had applied, and the leader's commit index as it last knew it. */
  applied: number;
  commit: number;
}

/** What a node last reported of itself (for a running node: now). */
export interface NodeState {
  role: NodeRole;
  term: number;
  commitIndex: number;
  lastIndex: number;
  /** The last index the node applied, the first its log still holds, and its newest snapshot's (0: none). */
  appliedIndex?: number;
  firstIndex?: number;
  snapshotIndex?: number;
}

/**
 * A node in GET /cluster. A node that is not running has `role` "down" or "paused" — never, say,
 * "leader" beside the real leader — and what it last reported of itself under `last`; the
 * numbers at the top level are then those last reported values.
 */
export interface NodeStatus extends Omit<NodeState, 'role'> {
  id: number;
  /** Backends that cannot pause may leave it out: the API then derives it from `up`. */
  status?: NodeRunState;
  role: NodeRole | 'down' | 'paused';
  /** true only while status is "up". */
  up: boolean;
  /** Its part in the configuration; null for a node in none (joining, or left). */
  member?: MemberRole | null;
  /** For a node that is down or paused: its state when last heard from. */
  last?: NodeState;
  /** Where the node serves clients itself (concur start --client-ports, --resp-client-ports), if it does. */
  clientUrl?: string;
  respUrl?: string;
}

/** The link faults a backend may set (runtime/faults.ts LinkPolicy without the cut). */
export interface LinkFaultSettings {
  loss: number;
  delayMs: number;
  jitterMs: number;
  duplicate: number;
  reorder: number;
}
export const linkFaultFields = ['loss', 'delayMs', 'jitterMs', 'duplicate', 'reorder'] as const;
/** The longest delay (and jitter) a link may be given, in milliseconds. */
export const linkDelayMsMax = 60_000;

/** The network as it is now: partition groups, one-way cuts, and links with faults. */
export interface NetworkStatus {
  /** Groups that cannot reach each other (both ways); null when there is no clean partition. */
  partition: number[][] | null;
  /** Links cut one way (beyond the partition), from → to. */
  cuts: { from: number; to: number }[];
  /** Links with a non-zero fault; one entry from "*" to "*" when every link has the same. */
  faults: ({ from: number | '*'; to: number | '*' } & LinkFaultSettings)[];
}

export interface ClusterStatus {
  /** The id of the node the backend currently believes leads, or null if none does. */
  leader: number | null;
  term: number;
  nodes: NodeStatus[];
  /** The configuration in force (from backends that change membership), and the change not yet committed. */
  members?: ClusterMember[];
  pendingChange?: PendingChange | null;
  /** From backends that model the network (see NetworkStatus). */
  network?: NetworkStatus;
}

/** One item of the runtime's event stream (role change, election, commit, fault, metric...). */
export interface ClusterEvent {
  type: string;
  [field: string]: unknown;
}

export interface ClusterBackend {
  status(): ClusterStatus;
  hasNode(id: number): boolean;
  /** Crashes a node abruptly; rejects with NodeStateError if it is already down. */
  crash(id: number): Promise<void>;
  /** Restarts a crashed node from its storage; rejects with NodeStateError if it is up. */
  restart(id: number): Promise<void>;
  /**
   * Cuts the network so that nodes talk only within their group. The server validates and
   * normalises first: `groups` are non-empty, disjoint, name only known nodes, and together
   * cover every node (nodes a user left out are put together in one extra group).
   */
  partition(groups: number[][]): void;
  /** Restores every link: removes partitions, cuts and isolation, and clears link faults. */
  heal(): void;
  // Faults beyond crash and partition (the API answers 501 for backends without them).
  /** Freezes a running node (it processes, sends and times nothing) until `resume`; NodeStateError if it is not up. */
  pause?(id: number): Promise<void>;
  /** Lets a paused node run again; NodeStateError if it is not paused. */
  resume?(id: number): void;
  /** Cuts every link to and from `id` (on top of any partition). */
  isolate?(id: number): void;
  /** Cuts the links from each of `from` to each of `to`, one way. */
  cut?(from: number[], to: number[]): void;
  /** Sets link faults (the fields given) on the links from each of `from` to each of `to` (default: every node). */
  setFaults?(faults: Partial<LinkFaultSettings>, scope: { from?: number[]; to?: number[] }): void;
  /** Clears link faults; cuts and partitions stay. */
  clearFaults?(): void;
  /**
   * Proposes an opaque command to the replicated log (forwarding to the leader as needed) and
   * resolves once it is committed and applied, with its log index and the state machine's
   * result bytes. Must settle about `timeoutMs` milliseconds from the call at the latest (the
   * cluster's client pipeline looks at its deadlines every 10 ms, so up to 10 ms after), rejecting
   * with DeadlineError (outcome unknown: the command may still commit later), or earlier with
   * NoLeaderError / NoQuorumError when it cannot make progress. The servers give the backend less
   * than a request has left and enforce the request's deadline themselves, so a backend that
   * overruns cannot hang a request.
   */
  submit(command: Uint8Array, timeoutMs: number): Promise<{ index: number; result: Uint8Array }>;
  /** submit, told to `waiter` instead of a promise (no promise, no timer per request): optional, for hot front doors. */
  submitTo?(command: Uint8Array, timeoutMs: number, waiter: WriteWaiter): void;
  /**
   * Reads a key by a local read path (`log` reads are a `submit` of a get). Settles within
   * `timeoutMs` like submit. `via` asks a given node to serve a follower or stale read.
   */
  read(key: string, mode: LocalReadMode, timeoutMs: number, opts?: { via?: number; app?: string }): Promise<LocalReadResult>;
  /** read of a KV key (no `via`), told to `waiter`: optional, like submitTo. */
  readTo?(key: string, mode: LocalReadMode, timeoutMs: number, waiter: ReadWaiter): void;
  /** The apps on the log (their HTTP routes are mounted beside the KV API); absent: KV only. */
  readonly apps?: readonly App[];
  /** A hot stream of cluster events; each subscriber gets events from when it subscribed. */
  events(): Observable<ClusterEvent>;
  // Membership (the API answers 501 for backends without it). Each settles within `timeoutMs`,
  // resolving once the change committed; ConflictError when it cannot be made now (another change
  // pending, a learner behind, the last voter, the node limit), UnknownNodeError for an id that is
  // not in the cluster.
  /** Spawns a node with a fresh id and adds it in `role`; a voter joins as a learner first and is promoted once caught up. */
  addMember?(role: MemberRole, timeoutMs: number): Promise<{ id: number; index: number }>;
  /** Removes a member; its worker stops once the change commits. Removing the leader hands leadership over. */
  removeMember?(id: number, timeoutMs: number): Promise<{ id: number; index: number }>;
  /** Turns a caught-up learner into a voter. */
  promote?(id: number, timeoutMs: number): Promise<{ id: number; index: number }>;
  /** Moves leadership to the full voter `to`; resolves once it leads. */
  transfer?(to: number, timeoutMs: number): Promise<{ leader: number; term: number }>;
}

/**
 * Hears once how a write ended: its index and the state machine's result, or why it failed. The
 * result may view memory that is reused after the call (a ring frame): copy what is kept.
 */
export interface WriteWaiter {
  writeDone(err: Error | null, index: number, result: Uint8Array | null): void;
}

/** Hears once how a read ended. The value may view memory reused after the call: copy what is kept. */
export interface ReadWaiter {
  readDone(err: Error | null, answer: LocalReadResult | null): void;
}

/** Base of the errors a backend rejects with; `code` is the stable token the API answers with. */
export class BackendError extends Error {
  /** True when the request never reached a node, so it certainly did not take effect. */
  definitelyNotApplied = false;

  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No node is leader right now (election in progress, or this side of a partition has none). */
export class NoLeaderError extends BackendError {
  constructor(
    message = 'no leader is elected right now; retry shortly',
    readonly retryAfterMs?: number,
  ) {
    super(message, 'no-leader');
  }
}

/** A leader exists but cannot reach a majority, so nothing can commit. */
export class NoQuorumError extends BackendError {
  constructor(
    message = 'the leader cannot reach a quorum; retry after the partition heals',
    readonly retryAfterMs?: number,
  ) {
    super(message, 'no-quorum');
  }
}

/**
 * The leader refused the command for now: too much is uncommitted (the cluster commits slower
 * than it is written to), or leadership is moving. It did not take effect; retry after a pause.
 */
export class BusyError extends BackendError {
  constructor(
    message = 'the leader is busy; retry shortly',
    readonly retryAfterMs?: number,
  ) {
    super(message, 'busy');
    this.definitelyNotApplied = true;
  }
}

/** The command was not known to be applied in time. It may still be applied later. */
export class DeadlineError extends BackendError {
  constructor(message = 'the request was not committed before its deadline; it may still be applied') {
    super(message, 'deadline-exceeded');
  }
}

/** A request named a node to act through, and that node is down or paused: nothing was sent. */
export class NodeDownError extends BackendError {
  constructor(
    message: string,
    readonly paused = false,
  ) {
    super(message, paused ? 'node-paused' : 'node-down');
    this.definitelyNotApplied = true;
  }
}

export class UnknownNodeError extends BackendError {
  constructor(id: number) {
    super(`there is no node ${id}`, 'unknown-node');
  }
}

/** The node is not in a state the action applies to (crashing a crashed node, restarting a live one). */
export class NodeStateError extends BackendError {
  constructor(message: string) {
    super(message, 'node-state');
  }
}

/** The request conflicts with the cluster's state now (a change pending, a learner behind, the last voter, the node limit); the message says what to do. */
export class ConflictError extends BackendError {
  constructor(message: string, code: string) {
    super(message, code);
  }
}
