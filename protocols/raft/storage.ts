// The read side of durable Raft state that the core consults (LogStorage), and an in-memory
// implementation for the simulator, tests and benchmarks. The core only reads storage; the host
// writes to it from Ready batches. No I/O here: a disk-backed store implements the same interface.
import type { Entry, HardState, SnapshotMeta } from './types.ts';

export interface LogStorage {
  /** The hard state and log as last made durable (read once, at start-up). */
  initialState(): HardState;
  /** Index of the last durable entry; the snapshot's index when the log after it is empty; 0 when new. */
  lastIndex(): number;
  /**
   * Term of the durable entry at `index` (0 for index 0, the snapshot's term at its index);
   * -1 when there is none: beyond the log, or compacted away.
   */
  term(index: number): number;
  /** Durable entries [lo, hi). The core never asks outside [firstIndex, lastIndex + 1). */
  entries(lo: number, hi: number): readonly Entry[];
  /**
   * The first index whose entry is still held (default 1). A store that drops entries must say
   * so: term(firstIndex − 1) must still be known, nothing before it is.
   */
  firstIndex?(): number;
  /**
   * The newest durable snapshot (index 0: none): what the leader offers a follower that needs
   * entries this store no longer holds. A store without snapshots never drops entries a peer may
   * need (memory-storage nodes drop only what every voter holds).
   */
  snapshot?(): SnapshotMeta;
}

const zeroHardState: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });
export const noSnapshot: SnapshotMeta = Object.freeze({ index: 0, term: 0, voters: Object.freeze([]) as readonly number[] });

export class MemoryStorage implements LogStorage {
  private hard: HardState;
  /** log[i] is the entry at index offset + i + 1; entries through `offset` were compacted. */
  private log: Entry[];
  private offset = 0;
  /** Term of the entry at `offset` (kept when it is compacted away). */
  private offsetTerm = 0;
  private snap: SnapshotMeta = noSnapshot;

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
    return this.offset + this.log.length;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  snapshot(): SnapshotMeta {
    return this.snap;
  }

  term(index: number): number {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset) return -1;
    const e = this.log[index - this.offset - 1];
    return e === undefined ? -1 : e.term;
  }

  entries(lo: number, hi: number): readonly Entry[] {
    if (lo <= this.offset) throw new Error(`MemoryStorage: entries from ${lo} asked, but the log starts at ${this.offset + 1}`);
    return this.log.slice(lo - this.offset - 1, hi - this.offset - 1);
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  /** Appends `entries`, first dropping any stored suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first > this.lastIndex() + 1) throw new Error(`MemoryStorage: gap — appending ${first} after ${this.lastIndex()}`);
    if (first <= this.offset) throw new Error(`MemoryStorage: appending ${first} into the compacted prefix (through ${this.offset})`);
    this.log.length = first - this.offset - 1;
    for (const e of entries) this.log.push(e);
  }

  /** Records a snapshot taken here (its entries may then be compacted). */
  setSnapshot(meta: SnapshotMeta): void {
    if (meta.index < this.snap.index) throw new Error(`MemoryStorage: snapshot at ${meta.index} is older than the one held (${this.snap.index})`);
    this.snap = meta;
  }

  /** Drops entries through `index`; their last term stays known. */
  compact(index: number): void {
    if (index <= this.offset) return;
    if (index > this.lastIndex()) throw new Error(`MemoryStorage: compact(${index}) beyond the last index ${this.lastIndex()}`);
    this.offsetTerm = this.term(index);
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
  }

  /** A snapshot from the leader replaces the whole log: it is now empty and continues after it. */
  installSnapshot(meta: SnapshotMeta): void {
    this.snap = meta;
    this.log = [];
    this.offset = meta.index;
    this.offsetTerm = meta.term;
  }

  /** A copy sharing the (immutable) entries: what survives a crash in the simulator. */
  clone(): MemoryStorage {
    const c = new MemoryStorage(this.hard);
    c.log = [...this.log];
    c.offset = this.offset;
    c.offsetTerm = this.offsetTerm;
    c.snap = this.snap;
    return c;
  }
}
