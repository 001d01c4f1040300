// The contract between the simulator and a consensus protocol: a factory for a cluster of
// nodes the engine drives, and per-protocol invariant checkers fed with observations. The
// engine knows nothing of Raft or Paxos; a protocol never reads the clock or Math.random.
import type { Rng } from '../../runtime/rng.ts';

/** What the network needs to route a message; the rest is opaque to the engine. */
export interface SimMessage {
  readonly from: number;
  readonly to: number;
}

/** What a cluster may ask of the engine. */
export interface SimEnv<M extends SimMessage, O> {
  /** Virtual milliseconds since the seed started. */
  now(): number;
  /** Seed for a node's own generator (election timeouts), stable across replays. */
  nodeSeed(node: number, incarnation: number): number;
  /** Hands a message to the simulated network (which may drop, delay, duplicate it). */
  send(msg: M): void;
  /** Runs `action` after `delayMs` of virtual time (disk writes, etc.). */
  after(delayMs: number, label: string, action: () => void): void;
  /** Reports something the checkers judge (a role change, a commit, an applied entry...). */
  observe(o: O): void;
  /** A client command was applied on `node` at `index` (drives the client and liveness). */
  applied(node: number, index: number, command: Uint8Array): void;
  /** Disk latency for one write, drawn from the seed's fault profile. */
  diskDelayMs(): number;
  /**
   * Directed network faults for a cluster's own fault scenarios (traps): cut or mend one
   * directed link, or make it slow. The engine's random faults may undo them (a heal).
   */
  readonly links: {
    cut(from: number, to: number): void;
    mend(from: number, to: number): void;
    slow(from: number, to: number, extraMs: number): void;
  };
  /** True when the engine records a trace; build trace strings only then. */
  readonly tracing: boolean;
  trace(line: string): void;
}

export interface SimCluster<M extends SimMessage> {
  readonly nodeIds: readonly number[];
  isUp(node: number): boolean;
  tick(node: number): void;
  deliver(msg: M): void;
  /** Submit a client command to `node`; false if refused (e.g. not the leader). */
  propose(node: number, command: Uint8Array): boolean;
  /** Ask `node` for a linearizable read; false if it cannot start one. */
  read?(node: number, requestId: number): boolean;
  /** Ask the leader `node` to hand leadership to `to`. */
  transfer?(node: number, to: number): boolean;
  /** Lose all volatile state (and writes still in flight) at once. */
  crash(node: number): void;
  /** Start again from what was durable. */
  restart(node: number): void;
  /** The fault phase is over: stop injecting faults of the cluster's own (pauses, damage). */
  onHeal?(): void;
  /** True while the cluster runs a directed fault scenario that random faults must not disturb. */
  faultsPaused?(): boolean;
  /** A live node that believes it leads with the highest term, or 0. */
  leader(): number;
  /** Liveness: every live node has applied the same last index, and there is a leader. */
  converged(): boolean;
  /** Highest committed index reached so far. */
  committedIndex(): number;
  /** The highest term any node reached (a measure of election churn). */
  maxTerm(): number;
  /** Protocol-specific counters for reports (e.g. reads per read path); summed over seeds. */
  stats?(): Record<string, number>;
  describeMessage(msg: M): string;
  /** One line per node: role, term, log, commit. For traces. */
  describeNodes(): string[];
}

/** An invariant over observations. Returns a message when violated, else null. */
export interface Checker<O> {
  readonly name: string;
  observe(o: O): string | null;
}

export interface ClusterOptions {
  /** Names a deliberately broken variant (mutation check); undefined for the real protocol. */
  mutation?: string;
  /** Virtual ms of faults before everything heals (a cluster's own faults stop then too). */
  faultPhaseMs?: number;
}

export interface SimProtocol<M extends SimMessage, O> {
  readonly name: string;
  /** Engine options this protocol prefers (e.g. a shorter fault phase for heavier nodes); explicit options win. */
  readonly defaults?: { faultPhaseMs?: number; livenessMs?: number; tickMs?: number };
  /** The invariants this protocol's checkers enforce, for reports. */
  readonly invariants: readonly string[];
  /** Mutation names createCluster accepts. */
  readonly mutations: readonly string[];
  createCluster(nodeIds: readonly number[], env: SimEnv<M, O>, options: ClusterOptions): SimCluster<M>;
  createCheckers(nodeIds: readonly number[]): Checker<O>[];
}

export type AnySimProtocol = SimProtocol<SimMessage, unknown>;

export type { Rng };
