// A map from slot numbers to values for slots that cluster in a moving window (the slots in
// flight, the acceptances above the commit): an array from the lowest slot held, so get and set
// cost an index, not a hash, and nothing is allocated per slot. A slot far beyond the window
// (which a message may name) goes to a plain map instead of stretching the array. Iterates in
// slot order, dense part first. Nothing here knows Paxos.

/** Past this many slots beyond the array's start, a slot is kept in the overflow map. */
const spanMax = 1 << 20;

export class SlotMap<T> implements Iterable<[number, T]> {
  /** arr[head + i] holds slot lo + i (undefined: none). */
  private arr: (T | undefined)[] = [];
  private head = 0;
  private lo = 0;
  private count = 0;
  private readonly far = new Map<number, T>();

  get size(): number {
    return this.count + this.far.size;
  }

  get(slot: number): T | undefined {
    const i = slot - this.lo;
    if (i >= 0 && i < this.arr.length - this.head) {
      const v = this.arr[this.head + i];
      // The window may have grown over a slot kept in the overflow map: it stays there.
      if (v !== undefined || this.far.size === 0) return v;
    }
    return this.far.size > 0 ? this.far.get(slot) : undefined;
  }

  has(slot: number): boolean {
    return this.get(slot) !== undefined;
  }

  set(slot: number, value: T): void {
    if (this.count === 0 && this.far.size === 0) {
      this.arr = [];
      this.head = 0;
      this.lo = slot;
    }
    // A slot is in the array or in the overflow map, never both: one kept there stays there.
    if (this.far.size > 0 && this.far.has(slot)) {
      this.far.set(slot, value);
      return;
    }
    let i = slot - this.lo;
    if (i >= 0 && i < this.arr.length - this.head) {
      const at = this.head + i;
      if (this.arr[at] === undefined) this.count++;
      this.arr[at] = value;
      return;
    }
    if (i < 0) {
      if (-i > spanMax) {
        this.far.set(slot, value);
        return;
      }
      // Below the window: grow it downwards (rare: a re-acceptance of an older slot).
      const grow: (T | undefined)[] = new Array(-i);
      this.arr = grow.concat(this.arr.slice(this.head));
      this.head = 0;
      this.lo = slot;
      i = 0;
    } else if (i > spanMax) {
      this.far.set(slot, value);
      return;
    }
    const at = this.head + i;
    if (at < this.arr.length) {
      if (this.arr[at] === undefined) this.count++;
      this.arr[at] = value;
      return;
    }
    while (this.arr.length < at) this.arr.push(undefined);
    this.arr.push(value);
    this.count++;
  }

  delete(slot: number): boolean {
    const i = slot - this.lo;
    if (i >= 0 && i < this.arr.length - this.head) {
      const at = this.head + i;
      if (this.arr[at] === undefined) return this.far.delete(slot);
      this.arr[at] = undefined;
      this.count--;
      // Move the start past the holes at the front; give the array back now and then.
      while (this.head < this.arr.length && this.arr[this.head] === undefined) {
        this.head++;
        this.lo++;
      }
      if (this.count === 0) {
        this.arr = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.arr.length) {
        this.arr = this.arr.slice(this.head);
        this.head = 0;
      }
      return true;
    }
    return this.far.delete(slot);
  }

  clear(): void {
    this.arr = [];
    this.head = 0;
    this.count = 0;
    this.far.clear();
  }

  *keys(): IterableIterator<number> {
    for (const [k] of this) yield k;
  }

  *values(): IterableIterator<T> {
    for (const [, v] of this) yield v;
  }

  *[Symbol.iterator](): IterableIterator<[number, T]> {
    const far = this.far.size > 0 ? [...this.far].sort((a, b) => a[0] - b[0]) : [];
    let f = 0;
    for (let at = this.head; at < this.arr.length; at++) {
      const v = this.arr[at];
      if (v === undefined) continue;
      const slot = this.lo + at - this.head;
      while (f < far.length && far[f]![0] < slot) yield far[f++]!;
      yield [slot, v];
    }
    while (f < far.length) yield far[f++]!;
  }
}
