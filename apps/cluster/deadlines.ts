// Deadlines of many requests in one binary min-heap, looked at by one poller, instead of a timer
// per request: a front door at hundreds of thousands of requests a second would otherwise make
// and clear as many timers (and a timer list per distinct duration). Settled requests are not
// taken out at once: they are skipped when they surface, and the heap is rebuilt without them
// once they are most of it, so it holds about as many entries as requests still waiting.

export interface HasDeadline {
  /** performance.now() at which the request gives up. */
  readonly deadlineAt: number;
  /** Settled: its deadline no longer matters. */
  readonly done: boolean;
}

export class DeadlineHeap<T extends HasDeadline> {
  private heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** `live`: requests still waiting, so the heap knows when settled ones are worth dropping. */
  push(item: T, live: number): void {
    if (this.heap.length >= 1024 && this.heap.length > 2 * live) this.compact();
    const h = this.heap;
    h.push(item);
    this.up(h.length - 1);
  }

  /** Takes out and hands to `expire` every waiting request whose deadline is at or before `now`. */
  expireThrough(now: number, expire: (item: T) => void): void {
    const h = this.heap;
    while (h.length > 0 && (h[0]!.done || h[0]!.deadlineAt <= now)) {
      const top = this.pop();
      if (!top.done) expire(top);
    }
  }

  clear(): void {
    this.heap = [];
  }

  private compact(): void {
    const h = this.heap.filter((x) => !x.done);
    this.heap = h;
    for (let i = (h.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private pop(): T {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private up(i: number): void {
    const h = this.heap;
    const x = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.deadlineAt <= x.deadlineAt) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = x;
  }

  private down(i: number): void {
    const h = this.heap;
    const x = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.deadlineAt < h[l]!.deadlineAt ? r : l;
      if (h[c]!.deadlineAt >= x.deadlineAt) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = x;
  }
}
