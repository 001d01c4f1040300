// The read side of durable Raft state that the core consults (LogStorage), and an in-memory
// implementation for the simulator, tests and benchmarks. The core only reads storage; the host
// writes to it from Ready batches. No I/O here: a disk-backed store implements the same interface.
import type { Entry, HardState } from './types.ts';

export interface LogStorage {
  /** The hard state and log as last made durable (read once, at start-up). */
  initialState(): HardState;
  /** Index of the last durable entry, 0 when empty. */
  lastIndex(): number;
  /** Term of the durable entry at `index` (0 for index 0); -1 when there is none. */
  term(index: number): number;
  /** Durable entries [lo, hi). The core never asks outside [firstIndex, lastIndex + 1). */
  entries(lo: number, hi: number): readonly Entry[];
  /**
   * The first index whose entry is still held (default 1). A store that drops entries every
   * voter holds must say so: term(firstIndex − 1) must still be known, nothing before it is.
   */
  firstIndex?(): number;
}

const zeroHardState: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

export class MemoryStorage implements LogStorage {
  private hard: HardState;
  /** log[i] is the entry at index i + 1. */
  private log: Entry[];

  constructor(hardState: HardState = zeroHardState, entries: readonly Entry[] = []) {
    this.hard = hardState;
    this.log = [...entries];
    for (let i = 0; i < this.log.length; i++) {
      if (this.log[i]!.index !== i + 1) throw new Error(`MemoryStorage: entry ${i} has index ${this.log[i]!.index}, expected ${i + 1}`);
    }
  }

  initialState(): HardState {
    return this.hard;
  }

  lastIndex(): number {
    return this.log.length;
  }

  term(index: number): number {
    if (index === 0) return 0;
    const e = this.log[index - 1];
    return e === undefined ? -1 : e.term;
  }

  entries(lo: number, hi: number): readonly Entry[] {
    return this.log.slice(lo - 1, hi - 1);
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  /** Appends `entries`, first dropping any stored suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first > this.log.length + 1) throw new Error(`MemoryStorage: gap — appending ${first} after ${this.log.length}`);
    this.log.length = first - 1;
    for (const e of entries) this.log.push(e);
  }

  /** A copy sharing the (immutable) entries: what survives a crash in the simulator. */
  clone(): MemoryStorage {
    return new MemoryStorage(this.hard, this.log);
  }
}
