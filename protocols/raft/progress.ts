// What the leader knows about one follower's log (match/next; probe, replicate or snapshot) and
// the bounded window of AppendEntries in flight to it. Flow control only: nothing here decides
// commit or sends messages, and no window ever grows past inflightMax or inflightBytesMax.

/** A ring of the last index (and command bytes) of each AppendEntries not yet acknowledged, oldest first. */
export class Inflights {
  private readonly buffer: number[];
  private readonly sizes: number[];
  private start = 0;
  private count = 0;
  /** Command bytes of the appends in the window. */
  bytes = 0;

  constructor(
    readonly size: number,
    /** The window is also full once this many bytes are in flight (Infinity: no byte limit). */
    readonly bytesMax = Number.POSITIVE_INFINITY,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`inflights size must be an integer >= 1, got ${size}`);
    if (!(bytesMax >= 1)) throw new RangeError(`inflights bytesMax must be >= 1, got ${bytesMax}`);
    this.buffer = new Array<number>(size).fill(0);
    this.sizes = new Array<number>(size).fill(0);
  }

  get length(): number {
    return this.count;
  }

  full(): boolean {
    return this.count === this.size || this.bytes >= this.bytesMax;
  }

  /** Records one more append in flight whose last entry is `lastIndex` (must not be full). */
  add(lastIndex: number, bytes = 0): void {
    if (this.full()) throw new Error('inflights: add on a full window (the caller must check full() first)');
    if (this.count > 0 && lastIndex <= this.buffer[(this.start + this.count - 1) % this.size]!) {
      throw notIncreasing(lastIndex, this.buffer[(this.start + this.count - 1) % this.size]!);
    }
    const at = (this.start + this.count) % this.size;
    this.buffer[at] = lastIndex;
    this.sizes[at] = bytes;
    this.bytes += bytes;
    this.count++;
  }

  /** Frees every append whose last index is <= index (an ack covers all earlier appends). */
  freeLE(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export const ProgressState = {
  /** Unknown where the follower's log diverges: one append at a time until one is accepted. */
  probe: 0,
  /** The follower is known to match: stream appends optimistically, bounded by the window. */
  replicate: 1,
  /**
   * The follower needs entries the leader no longer holds: a snapshot is on its way (the host
   * streams it). No appends until the follower acks it or the host reports the transfer failed.
   */
  snapshot: 2,
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

export class Progress {
  /** Highest index known durable on the follower and equal to the leader's log. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = ProgressState.probe;
  /** Probe: an append is outstanding. Replicate: the window was full when last checked. */
  paused = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The leader's tick when it last heard from the follower (-1: not yet). Unlike recentActive it is never reset. */
  lastActiveTick = -1;
  /** Snapshot state: the index of the snapshot being sent (0: none, or the transfer failed). */
  pendingSnapshot = 0;
  /** The highest commit index sent to the follower (in an append or a heartbeat). */
  commitSent = 0;
  readonly inflights: Inflights;

  constructor(next: number, inflightMax: number, inflightBytesMax = Number.POSITIVE_INFINITY) {
    this.next = next;
    this.inflights = new Inflights(inflightMax, inflightBytesMax);
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least what it covered (when it arrived): probe after it.
    const after = this.state === ProgressState.snapshot ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.state = ProgressState.probe;
    this.next = after + 1;
    this.paused = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = ProgressState.replicate;
    this.next = this.match + 1;
    this.paused = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** The snapshot at `index` is being sent: wait for its ack (or a failure report). */
  becomeSnapshot(index: number): void {
    this.state = ProgressState.snapshot;
    this.pendingSnapshot = index;
    this.next = Math.max(this.match, index) + 1;
    this.paused = false;
    this.inflights.reset();
  }

  isPaused(): boolean {
    return this.paused || this.state === ProgressState.snapshot;
  }

  /** The follower acknowledged `index`. Returns false for a stale (older) ack. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      if (this.state === ProgressState.probe) this.paused = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * A rejection of `rejected` that answers an append this progress has moved past: in replicate,
   * anything at or below match; in probe, anything but the answer to the outstanding probe.
   */
  isStaleRejection(rejected: number): boolean {
    // No append goes out in the snapshot state: any rejection answers one sent before it.
    if (this.state === ProgressState.snapshot) return true;
    return this.state === ProgressState.replicate ? rejected <= this.match : this.next - 1 !== rejected;
  }

  /**
   * The follower rejected an append whose prevLogIndex was `rejected`; `matchHint` is the
   * highest index the leader may assume matches. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.isStaleRejection(rejected)) return false;
    if (this.state === ProgressState.replicate) {
      this.next = this.match + 1;
      return true;
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.paused = false;
    return true;
  }

  /** An append carrying entries up to `lastIndex` (or none, when lastIndex < next) and `bytes` of commands was sent. */
  sentEntries(count: number, lastIndex: number, bytes = 0): void {
    if (this.state === ProgressState.replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
      this.paused = this.inflights.full();
    } else {
      this.paused = true;
    }
  }

  /** An ack frees the window up to `index`; may unpause replication. */
  freeTo(index: number): void {
    this.inflights.freeLE(index);
    if (this.state === ProgressState.replicate) this.paused = this.inflights.full();
  }
}

// Errors are built in functions of their own: on this V8 a template literal in a hot function's
// never-taken throw still converted its numbers to strings on every call (NumberToString in
// profiles of the per-entry paths).
function notIncreasing(lastIndex: number, previous: number): Error {
  return new Error(`inflights: indexes must increase, got ${lastIndex} after ${previous}`);
}
