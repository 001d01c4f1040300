// The fast path's requests in a backend, oldest first, so that one the backend never answers is
// still answered at its deadline: one interval for all of them while any waits, no timer per
// request. Must never expire a request before its deadline, nor one that was answered.

export interface Expiring {
  /** Date.now() by which the request must be answered. */
  readonly deadlineAtMs: number;
  /** Answered or expired: whichever comes second is ignored. */
  settled: boolean;
  /** Called once, when the deadline has passed and the request is still unsettled. */
  expire(): void;
}

/**
 * A FIFO, not a heap: every request here has the same time to live (requestDeadlineMs), so the
 * oldest has the nearest deadline. Answers arrive mostly in order, so settled requests leave from
 * the front as they are answered and the queue holds about as many as are in flight.
 */
export class DeadlineQueue {
  private items: Expiring[] = [];
  private head = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  /** `checkMs`: how late, at most, an expiry may come after the deadline. */
  constructor(private readonly checkMs: number) {}

  /** Requests held (waiting, or answered behind one that waits). */
  get size(): number {
    return this.items.length - this.head;
  }

  add(e: Expiring): void {
    this.items.push(e);
    if (this.timer === null) {
      this.timer = setInterval(this.check, this.checkMs);
      // The listening server keeps the process alive; a closed one must not be held open by this.
      this.timer.unref();
    }
  }

  /** Marks `e` answered (false: it had expired, and the answer must be dropped). */
  settle(e: Expiring): boolean {
    if (e.settled) return false;
    e.settled = true;
    if (this.items[this.head] === e) this.dropSettled();
    return true;
  }

  private dropSettled(): void {
    const items = this.items;
    let head = this.head;
    while (head < items.length && items[head]!.settled) head++;
    if (head === items.length) {
      items.length = 0;
      head = 0;
    } else if (head >= 1024 && head * 2 >= items.length) {
      items.splice(0, head);
      head = 0;
    }
    this.head = head;
  }

  private readonly check = (): void => {
    const now = Date.now();
    const items = this.items;
    while (this.head < items.length) {
      const e = items[this.head]!;
      if (!e.settled) {
        if (e.deadlineAtMs > now) break;
        e.settled = true;
        this.head++;
        e.expire();
        continue;
      }
      this.head++;
    }
    this.dropSettled();
    if (this.items.length === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  };

}
