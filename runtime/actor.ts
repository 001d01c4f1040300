// The contract between the runtime and an actor: what an actor module exports and the context
// the worker host gives it. Nothing here knows of Raft, Paxos or any app.

/** Actor ids are 1..N; 0 is the supervisor (the main thread). */
export type ActorId = number;
export const supervisorId: ActorId = 0;

/**
 * First byte of a frame the actor encodes itself (sent with `sendEncoded`, handed to
 * `receiveFrame` undecoded). 0xff is CBOR's "break" code, which never starts a CBOR item, so such
 * a frame can never be mistaken for a codec message.
 */
export const rawFrameTag = 0xff;

/** An event an actor emits; the supervisor stamps it with the actor's id and time. */
export interface ActorEvent {
  type: string;
  [field: string]: unknown;
}

/**
 * Durable storage for this actor. The runtime gives each actor a directory of its own (or none,
 * for in-memory runs); what is stored there is the actor's business (see runtime/storage/).
 */
export interface StorageHandle {
  /** The actor's own directory, kept across restarts; null when the run keeps nothing on disk. */
  readonly dir: string | null;
}

export interface ActorContext {
  readonly self: ActorId;
  /**
   * Every other actor this one has a link to (not including the supervisor), sorted. Changes
   * when the supervisor adds or removes actors: read it afresh, or follow `onPeersChanged`.
   */
  readonly peers: readonly ActorId[];
  /** Settings given to the supervisor for this actor (structured-cloneable). */
  readonly config: Readonly<Record<string, unknown>>;
  /** How many times this id has been restarted (0 on first start). */
  readonly incarnation: number;
  /**
   * Sends a message to an actor or to the supervisor (id 0). Delivery is what the network
   * allows: the supervisor's fault policy may drop, delay, duplicate or reorder it. A send to a
   * peer the supervisor has removed is dropped (reported as 'removed'), not thrown: an actor may
   * race a removal. A send to an id that was never in the cluster throws a RangeError.
   */
  send(to: ActorId, message: unknown): void;
  /** Encodes a message once, e.g. to send the same bytes to many peers with `sendEncoded`. */
  encode(message: unknown): Uint8Array;
  /** Sends an already-encoded frame; the receiver decodes it like any other. */
  sendEncoded(to: ActorId, frame: Uint8Array): void;
  /**
   * Wakes now the readers of the frames sent so far in this batch. Inside a batch wake-ups wait
   * for its end (one doorbell per batch); an actor that is about to do long work after sending
   * something a peer waits for (an ack, an append) calls this first, so the peer runs meanwhile.
   */
  publish(): void;
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimer(delayMs: number, fire: () => void): number;
  clearTimer(timer: number): void;
  emit(event: ActorEvent): void;
  readonly storage: StorageHandle;
}

export interface Actor {
  /** One message from `from`; called in order per link. A throw is a crash of the actor. */
  receive(from: ActorId, message: unknown): void;
  /**
   * A frame whose first byte is `rawFrameTag`, undecoded, for hot paths that pack their own
   * bytes (no codec, no per-field objects). `bytes` is ring memory, valid only during the call:
   * copy what must outlive it. A malformed frame throws DecodeError (reported and skipped).
   * Actors without it get such frames through `receive` as a decode failure.
   */
  receiveFrame?(from: ActorId, bytes: Uint8Array, start: number, end: number): void;
  /**
   * Called before each batch of frames is delivered: where an actor catches up on the time that
   * passed while it waited (or stalled), so what it receives is judged at the right time.
   */
  beforeBatch?(): void;
  /**
   * Called when the mailbox has been drained (a batch boundary): where an actor flushes what it
   * batched. May return a promise (e.g. an fsync); no message is delivered until it settles.
   */
  idle?(): void | Promise<void>;
  /**
   * The supervisor added or removed actors while this one runs (`ctx.peers` is already the new
   * list). Not called at start: `ctx.peers` holds the first list then. A throw is a crash.
   */
  onPeersChanged?(peers: readonly ActorId[]): void;
  /** Methods the supervisor may call through comlink: inspect state, change settings. */
  readonly control?: Record<string, (...args: never[]) => unknown>;
  /** Graceful stop: flush and close what the actor holds. */
  stop?(): void | Promise<void>;
}

/** An actor module's default export. */
export type ActorFactory = (ctx: ActorContext) => Actor | Promise<Actor>;
