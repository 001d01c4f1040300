// A node's Raft log as the core reads it (protocols/raft LogStorage), kept in memory in front of
// the durable store (runtime/storage WAL or memory). The host writes both from each Ready batch;
// the core only ever reads here, and only what the durable store has been given. A node that can
// never restart (memory storage) may drop from memory what every voter holds and it has applied.
import type { Entry, HardState, LogStorage } from '../../protocols/raft/index.ts';
import type { Recovered, Storage } from '../../runtime/storage/index.ts';
import { EntryArena, type DataRef } from '../../runtime/storage/entry-arena.ts';

export class DurableLog implements LogStorage {
  private hard: HardState;
  /** Every entry since index 1, in columns: entry objects are made only when the core asks. */
  private readonly inMemory: EntryArena;
  /** The last entry dropped by compactThrough (0: none), and its term. */
  private compactedIndex = 0;
  private compactedTerm = 0;

  /**
   * `compactable`: only for a node whose log can never be needed again once every voter holds
   * it, i.e. one that can never restart (memory storage). A WAL node keeps its whole log: after a
   * restart a peer may need entries it had acknowledged but lost with a damaged tail.
   */
  constructor(
    private readonly store: Storage,
    recovered: Recovered,
    private readonly compactable = false,
  ) {
    const hs = recovered.hardState;
    this.hard = { term: hs.term, vote: hs.vote, commit: hs.commit };
    const first = recovered.entries.length > 0 ? recovered.entries[0]!.index : store.firstIndex;
    if (first !== 1) throw new Error(`log starts at index ${first}: snapshots are not supported yet, so a compacted log cannot be replayed`);
    this.inMemory = new EntryArena(first);
    for (const e of recovered.entries) this.inMemory.push(e);
    // A commit index beyond the recovered log (its tail was torn) must not be trusted.
    if (this.hard.commit > this.lastIndex()) this.hard = { ...this.hard, commit: this.lastIndex() };
  }

  initialState(): HardState {
    return this.hard;
  }

  lastIndex(): number {
    return this.inMemory.lastIndex;
  }

  /** The first index still held in memory. */
  firstIndex(): number {
    return this.compactedIndex + 1;
  }

  term(index: number): number {
    if (index === 0) return 0;
    if (index <= this.compactedIndex) {
      if (index === this.compactedIndex) return this.compactedTerm;
      throw this.compactedError(index);
    }
    return this.inMemory.term(index);
  }

  entries(lo: number, hi: number): readonly Entry[] {
    if (lo <= this.compactedIndex) throw this.compactedError(lo);
    return this.inMemory.slice(lo, Math.min(hi, this.inMemory.lastIndex + 1)) as Entry[];
  }

  /** The kind of the entry at `index`; where its data lies goes into `at` (no allocation). */
  locate(index: number, at: DataRef): number {
    if (index <= this.compactedIndex) throw this.compactedError(index);
    return this.inMemory.locate(index, at);
  }

  /**
   * Drops entries through `index` from memory. The caller promises that every voter holds them
   * durably and that this node has applied them: no follower, leader or apply can ask for them
   * again. Their last term stays known for the consistency check of the next append.
   */
  compactThrough(index: number): void {
    if (!this.compactable) throw new Error('this log is not compactable: only a node that can never restart may drop entries');
    if (index <= this.compactedIndex) return;
    if (index > this.lastIndex()) throw new RangeError(`cannot compact through ${index}: the log ends at ${this.lastIndex()}`);
    this.compactedTerm = this.inMemory.term(index);
    this.compactedIndex = index;
    this.inMemory.dropThrough(index);
    this.store.compact(index);
  }

  private compactedError(index: number): Error {
    // Reaching here is a bug: compaction promised nobody would ask.
    return new Error(`entry ${index} was compacted away (the log in memory starts at ${this.compactedIndex + 1})`);
  }

  /** Writes a Ready's entries and hard state to the store (not yet synced) and to memory. */
  write(entries: readonly Entry[], hardState: HardState | null): void {
    if (entries.length > 0) {
      if (entries[0]!.index <= this.compactedIndex) throw this.compactedError(entries[0]!.index);
      this.store.append(entries);
      this.inMemory.truncateFrom(entries[0]!.index);
      for (const e of entries) this.inMemory.push(e);
    }
    if (hardState) {
      this.store.setHardState(hardState);
      this.hard = hardState;
    }
  }

  sync(): void {
    this.store.sync();
  }

  close(): void {
    this.store.close();
  }
}
