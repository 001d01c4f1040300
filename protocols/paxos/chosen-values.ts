// The chosen values a Paxos node knows, by slot. Chosen slots fill in almost always in order, so
// the contiguous run after the compaction point is an array (a push per slot, no hashing) and only
// slots chosen ahead of a gap wait in a map. Nothing here knows Paxos: it is a sparse array that
// is dense at its front.
import type { Chosen, Value } from './types.ts';

export class ChosenValues {
  /** Slots through `base` were dropped (compacted into a snapshot). */
  private base = 0;
  // Chosen records, not bare values: the same object goes to the Ready's learned and apply lists.
  private vals: Chosen[] = [];
  /** vals[off] holds slot base + 1. */
  private off = 0;
  private readonly ahead = new Map<number, Chosen>();

  constructor(base = 0) {
    this.base = base;
  }

  /** The highest slot such that every slot after the compaction point up to it is chosen. */
  get contiguous(): number {
    return this.base + this.vals.length - this.off;
  }

  has(slot: number): boolean {
    if (slot <= this.base) return false;
    return slot <= this.contiguous || this.ahead.has(slot);
  }

  get(slot: number): Value | undefined {
    return this.chosen(slot)?.value;
  }

  /** The record of a chosen slot (slot and value). */
  chosen(slot: number): Chosen | undefined {
    if (slot <= this.base) return undefined;
    if (slot <= this.contiguous) return this.vals[this.off + slot - this.base - 1];
    return this.ahead.get(slot);
  }

  set(slot: number, value: Value): Chosen {
    return this.setRecord({ slot, value });
  }

  /** Keeps `c` itself (any object with the slot and value: a proposal will do, no copy is made). */
  setRecord(c: Chosen): Chosen {
    const slot = c.slot;
    if (slot <= this.contiguous) return c; // compacted or known: chosen values never change
    if (slot !== this.contiguous + 1) {
      this.ahead.set(slot, c);
      return c;
    }
    this.vals.push(c);
    if (this.ahead.size === 0) return c;
    for (let next = this.ahead.get(this.contiguous + 1); next !== undefined; next = this.ahead.get(this.contiguous + 1)) {
      this.ahead.delete(this.contiguous + 1);
      this.vals.push(next);
    }
    return c;
  }

  /** Forgets every slot through `slot`. */
  dropThrough(slot: number): void {
    if (slot <= this.base) return;
    if (slot >= this.contiguous) {
      this.vals = [];
      this.off = 0;
    } else {
      this.off += slot - this.base;
      // Give the array's dropped front back now and then (not per call: that would be quadratic).
      if (this.off > 4096 && this.off * 2 > this.vals.length) {
        this.vals = this.vals.slice(this.off);
        this.off = 0;
      }
    }
    this.base = slot;
    for (const s of this.ahead.keys()) if (s <= slot) this.ahead.delete(s);
    // Slots chosen ahead may now continue the run.
    for (let next = this.ahead.get(this.contiguous + 1); next !== undefined; next = this.ahead.get(this.contiguous + 1)) {
      this.ahead.delete(this.contiguous + 1);
      this.vals.push(next);
    }
  }

  *entries(): IterableIterator<[number, Value]> {
    for (let i = this.off; i < this.vals.length; i++) yield [this.base + 1 + i - this.off, this.vals[i]!.value];
    for (const [slot, c] of this.ahead) yield [slot, c.value];
  }
}
