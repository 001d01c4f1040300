// The Raft core's data: entries, hard/soft state, the flat wire message and the Ready batch.
// Plain objects with numeric discriminants so a codec (cbor-x records) can ship them as they are;
// nothing here may hold behaviour, references to I/O, or copies of command bytes.
import type { Membership } from './membership.ts';

/** Node ids are small positive integers; 0 means "nobody". */
export const NONE = 0;

export const EntryKind = {
  /** An opaque client command. */
  normal: 0,
  /** The empty entry a new leader appends so an entry of its own term can commit. */
  noop: 1,
  /** A membership change: data is the ConfChange (membership.ts); it takes effect once appended. */
  config: 2,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/** A log entry. Immutable once created: the core shares the same object (and data bytes) everywhere. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** What must be durable before votes or acks that depend on it leave the node. */
export interface HardState {
  readonly term: number;
  /** Who this node voted for in `term`, or NONE. */
  readonly vote: number;
  /** Not required to be durable for safety; persisted so a restart re-applies less. */
  readonly commit: number;
}

export const Role = {
  follower: 0,
  preCandidate: 1,
  candidate: 2,
  leader: 3,
} as const;
export type Role = (typeof Role)[keyof typeof Role];
export const roleName = ['follower', 'pre-candidate', 'candidate', 'leader'] as const;

/** Volatile state a host may display or route by; never needs persisting. */
export interface SoftState {
  readonly role: Role;
  /** The leader this node currently follows (itself when leader), or NONE. */
  readonly leader: number;
  readonly term: number;
}

export const MessageType = {
  /** AppendEntries: index/logTerm = prevLogIndex/prevLogTerm, entries, commit. */
  app: 1,
  /** index = last index now matching (accept) or the rejected prevLogIndex; rejectHint/logTerm = conflict hint. */
  appResp: 2,
  /** RequestVote: index/logTerm = candidate's last index/term; context = campaignTransfer when forced. */
  vote: 3,
  voteResp: 4,
  /** PreVote: term is the term the sender would campaign in; nobody changes term because of it. */
  preVote: 5,
  preVoteResp: 6,
  /**
   * commit = min(follower's match, leader's commit); context = read round id or 0;
   * index = the leader's tick when it sent the round (the start of the lease it may renew);
   * rejectHint (to witnesses only) = the index every full voter holds (what a witness may drop).
   */
  heartbeat: 7,
  /** context and index echo the heartbeat's. */
  heartbeatResp: 8,
  /** Leadership transfer: the receiver campaigns at once, skipping PreVote and leases. */
  timeoutNow: 9,
  /** A follower forwards a read to its leader; context = the caller's request id. */
  readIndex: 10,
  /** index = the read index the follower may serve at once applied; context = request id. */
  readIndexResp: 11,
  /**
   * InstallSnapshot: index/logTerm = the snapshot's last included index and term, commit = the
   * leader's commit, entries = one config entry whose data is the membership at the snapshot
   * (encodeMembership). Only the metadata: the image travels beside it (the host's business), and
   * a follower's host steps this message once it holds the whole image.
   */
  snapshot: 12,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
export const messageTypeName: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k]),
);

/** `context` of a MsgVote sent because of TimeoutNow: voters ignore their leader lease. */
export const campaignTransfer = 1;

/**
 * One wire message. Every field is always present (one shape for V8 and for cbor-x records);
 * the meaning of index/logTerm/context depends on `type`, as documented in MessageType.
 */
export interface Message {
  type: MessageType;
  from: number;
  to: number;
  term: number;
  logTerm: number;
  index: number;
  entries: readonly Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  context: number;
}

/**
 * What a snapshot covers: the state after applying every entry through `index` (of `term`), and
 * the configuration then. The image itself is the host's; the core only ever sees this.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The incoming voters at `index` (what older snapshot files record). */
  readonly voters: readonly number[];
  /** The whole configuration at `index`; absent in snapshots written before membership changes. */
  readonly membership?: Membership;
}

/** A read that may be served once the local state machine has applied `index`. */
export interface ReadState {
  readonly index: number;
  /** The request id the caller passed to readIndex(). */
  readonly context: number;
}

/**
 * One batch of work for the host. Process it in this order:
 *  1. send `messages` (may go before anything is durable: leader appends and heartbeats);
 *  2. install `snapshot` if there is one (restore the state machine from its image and make it
 *     the log's durable base: every stored entry goes), then make `entries` (append; an entry at
 *     index i replaces the stored suffix from i) and `hardState` durable — fsync when `mustSync`;
 *  3. send `messagesAfterPersist` (votes, vote requests, append acks: they promise durability);
 *  4. apply entries `committedFrom`..`committedTo` in order (as `committedEntries`, or read from
 *     the storage the host wrote them to); serve `readStates` once applied >= their index;
 *  5. call advance(ready). Only then may ready() be called again. step/tick/propose may be
 *     called while a Ready is being processed; their effects appear in the next Ready.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  /** The configuration, when it changed since the last Ready (a config entry appended or truncated, a snapshot). */
  readonly membership: Membership | null;
  /** A snapshot from the leader that replaces this node's log and state (see step 2), or null. */
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  /** Committed entries to apply: indexes committedFrom..committedTo (none when to < from). */
  readonly committedFrom: number;
  readonly committedTo: number;
  /**
   * The same entries as objects, made from the log on first read: read it before advance(). A
   * host that reads its own storage instead makes no object per entry.
   */
  readonly committedEntries: readonly Entry[];
  readonly messages: Message[];
  readonly messagesAfterPersist: Message[];
  readonly readStates: ReadState[];
  /** True when hardState.term/vote changed, entries must be written or a snapshot installed: an fsync is owed. */
  readonly mustSync: boolean;
}

const noEntries: readonly Entry[] = Object.freeze([]);
export const emptyEntries = noEntries;

/** A message with every field defaulted, so all messages share one shape. */
export function message(type: MessageType, from: number, to: number, term: number, fields?: Partial<Message>): Message {
  // Field by field, not Object.assign: one message per append, ack and heartbeat is the core's
  // hottest allocation, and a literal with every field keeps them all of one shape.
  if (fields === undefined) {
    return { type, from, to, term, logTerm: 0, index: 0, entries: noEntries, commit: 0, reject: false, rejectHint: 0, context: 0 };
  }
  return {
    type,
    from,
    to,
    term,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? noEntries,
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? 0,
  };
}
