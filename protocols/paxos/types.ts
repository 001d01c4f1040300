// The Paxos cores' data: ballots, values, accepted proposals, the flat wire message and the
// Ready batch. Plain objects with numeric discriminants (like the Raft core's), so a codec can
// ship them as they are; nothing here holds behaviour or I/O.

/** Node ids are small positive integers (at most ballotIdSpan − 1); 0 means "nobody". */
export const NONE = 0;

/**
 * A ballot (round, node) as one number: round × ballotIdSpan + node, so ballots compare as numbers
 * and two proposers never share one. 0 is "no ballot".
 */
export const ballotIdSpan = 128;
export const ballot = (round: number, node: number): number => round * ballotIdSpan + node;
export const roundOf = (b: number): number => Math.floor(b / ballotIdSpan);
export const nodeOf = (b: number): number => b % ballotIdSpan;
export const formatBallot = (b: number): string => (b === 0 ? 'none' : `${roundOf(b)}.${nodeOf(b)}`);

export const ValueKind = {
  /** A client command (opaque bytes). */
  normal: 0,
  /** Fills a slot a new leader found empty below its highest one, so slots after it can apply. */
  noop: 1,
  /** A read's place in the order (Basic Paxos reads go through consensus); applies as nothing. */
  read: 2,
} as const;
export type ValueKind = (typeof ValueKind)[keyof typeof ValueKind];

export interface Value {
  readonly kind: ValueKind;
  readonly data: Uint8Array;
  /** The proposer's own mark (never sent, never stored): a host finds its request by it when the value applies. */
  readonly tag?: unknown;
}

/** What an acceptor accepted for one slot: the value and the ballot it came with. */
export interface Proposal {
  readonly slot: number;
  readonly ballot: number;
  readonly value: Value;
}

/** A slot whose value is chosen (learned). */
export interface Chosen {
  readonly slot: number;
  readonly value: Value;
}

/** What must be durable before the promises and accepts that depend on it leave the node. */
export interface PaxosHardState {
  /** The highest ballot this acceptor promised (it accepts nothing below it, ever). */
  readonly promised: number;
  /** Every slot through this one is chosen and known here (need not be durable; saves relearning). */
  readonly commit: number;
}

/** Where a node's slots start: everything through `slot` is in its state machine's snapshot. */
export interface PaxosSnapshotMeta {
  readonly slot: number;
}

export const PaxosMessageType = {
  /** Phase 1a: ballot; slot = the first slot it covers (Multi-Paxos: every slot from it on; Basic: just it). */
  prepare: 1,
  /** Phase 1b: ballot echoed; proposals = what the acceptor accepted in the covered slots; commit = its chosen prefix. */
  promise: 2,
  /** Phase 2a: ballot; proposals = slots and values (several per message: batching); commit = the sender's chosen prefix. */
  accept: 3,
  /** Phase 2b: ballot echoed; slots = the slots accepted. */
  accepted: 4,
  /** A refusal: ballot = the higher ballot the acceptor has promised; slot echoes the request's. */
  nack: 5,
  /** Learned values: chosen = slots and values; commit = the sender's chosen prefix. */
  chosen: 6,
  /** Leader liveness and read confirmation: ballot; commit; context = read round (0: none). */
  heartbeat: 7,
  /** ballot echoed (the acceptor promised nothing higher); context echoed. */
  heartbeatResp: 8,
  /** A node behind asks for chosen values: slot = the first it lacks. */
  catchUp: 9,
  /**
   * The values a node behind asked for were compacted into a snapshot: slot = the snapshot's last
   * slot, commit = the sender's. The state machine's image travels beside it (the host's
   * business); the receiver's host steps this message once it holds the image.
   */
  snapshot: 10,
} as const;
export type PaxosMessageType = (typeof PaxosMessageType)[keyof typeof PaxosMessageType];
export const paxosMessageTypeName: Record<number, string> = Object.fromEntries(Object.entries(PaxosMessageType).map(([k, v]) => [v, k]));

/** One wire message; every field always present (one shape), meaning by `type` as above. */
export interface PaxosMessage {
  type: PaxosMessageType;
  from: number;
  to: number;
  ballot: number;
  slot: number;
  proposals: readonly Proposal[];
  slots: readonly number[];
  chosen: readonly Chosen[];
  commit: number;
  context: number;
}

const none: readonly never[] = Object.freeze([]);

export function paxosMessage(type: PaxosMessageType, from: number, to: number, ballot: number, fields: Partial<PaxosMessage> = {}): PaxosMessage {
  return {
    type,
    from,
    to,
    ballot,
    slot: fields.slot ?? 0,
    proposals: fields.proposals ?? none,
    slots: fields.slots ?? none,
    chosen: fields.chosen ?? none,
    commit: fields.commit ?? 0,
    context: fields.context ?? 0,
  };
}

/** A read that may be served once the state machine has applied through `index`. */
export interface PaxosReadState {
  readonly index: number;
  readonly context: number;
}

/**
 * One batch of work for the host, in this order: send `messages`; make `hardState`, `accepted`
 * and `learned` durable (fsync when `mustSync`); send `messagesAfterPersist` (promises and
 * accepts promise durability); apply `apply` in order (slots commit − n + 1 .. commit); serve
 * `readStates` once applied; then advance(ready).
 */
export interface PaxosReady {
  readonly hardState: PaxosHardState | null;
  /**
   * A snapshot from another node to install first (before anything else is written): restore
   * the state machine from its image; it covers every slot through this one. 0: none.
   */
  readonly snapshotSlot: number;
  /** Proposals this acceptor accepted (a later one for a slot replaces the earlier). */
  readonly accepted: readonly Proposal[];
  /** Chosen values learned (to keep: a restarted node applies them again). */
  readonly learned: readonly Chosen[];
  readonly messages: PaxosMessage[];
  readonly messagesAfterPersist: PaxosMessage[];
  /** Chosen slots now contiguous from the last applied: apply these, in order. */
  readonly apply: readonly Chosen[];
  readonly readStates: PaxosReadState[];
  readonly mustSync: boolean;
}

export const PaxosRole = { follower: 0, candidate: 1, leader: 2 } as const;
export type PaxosRole = (typeof PaxosRole)[keyof typeof PaxosRole];
export const paxosRoleName = ['follower', 'candidate', 'leader'] as const;
