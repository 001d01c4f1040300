// The interface every app on the replicated log implements: a deterministic state machine that
// applies committed commands, answers local reads, and snapshots/restores its whole state as a
// stream of bytes. It must never read clocks, randomness or I/O in apply.

/**
 * A consistent image of a state machine: captured at once when snapshot() is called, serialized
 * lazily in pieces while the state machine goes on applying commands.
 */
export interface SnapshotImage {
  /** The last index applied when the image was taken. */
  readonly index: number;
  /** The next piece of the image (fresh bytes the caller may keep), or null when it is complete. */
  next(): Uint8Array | null;
}

/** Rebuilds a state machine from an image fed in pieces split anywhere. */
export interface SnapshotRestore {
  /**
   * Feeds the next bytes (the caller may reuse them after the call). Throws on bytes that cannot
   * be part of a valid image; the state machine is unchanged then and this restore is spent.
   */
  write(bytes: Uint8Array): void;
  /**
   * Ends the image: the state machine now holds exactly it. Throws when the image is incomplete
   * or malformed; the state machine is unchanged then.
   */
  finish(): void;
}

export interface StateMachine {
  /**
   * Applies the committed command in bytes[start, end) at `index`; returns the result bytes for
   * the client. The bytes may be log memory that is reused after the call: copy what you keep.
   */
  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array;
  /** The locally applied value of `key`, for reads that do not go through the log. */
  readLocal(key: string): Uint8Array | undefined;
  /** An image of the whole state as of the last applied index. */
  snapshot(): SnapshotImage;
  /** Starts replacing the whole state with an image's; nothing changes until finish(). */
  restore(): SnapshotRestore;
  /**
   * A digest of the whole state (hex): equal on replicas that applied the same log, whatever
   * their history of snapshots.
   */
  digest(): string;
  /** Several apps on one log (apps/platform/router.ts): a query to the app named. */
  query?(app: string, q: string): Uint8Array | undefined;
  /** Whether the leader should propose clock entries now (some app waits on the log's time). */
  wantsTime?(): boolean;
}

/** What a read answers: a KV key's value, or (with `app`) that app's answer to the query. */
export function readValue(sm: StateMachine, key: string, app: string | undefined): Uint8Array | undefined {
  return app === undefined ? sm.readLocal(key) : sm.query?.(app, key);
}

/**
 * The error for an entry applied twice or out of order, which would silently fork replicas. Built
 * here, not in the apply paths' throw statements: on this V8 a template literal in a hot
 * function's never-taken throw still converted its numbers to strings on every call.
 */
export function appliedOutOfOrder(who: string, index: number, appliedIndex: number): Error {
  return new Error(`${who}: index ${index} is not after the last applied index ${appliedIndex}`);
}
