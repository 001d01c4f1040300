// A node's Raft log as the core reads it (protocols/raft LogStorage), kept in memory in front of
// the durable store (runtime/storage WAL or memory). The host writes both from each Ready batch;
// the core only ever reads here, and only what the durable store has been given.
import type { Entry, HardState, LogStorage } from '../../protocols/raft/index.ts';
import type { Recovered, Storage } from '../../runtime/storage/index.ts';
import { EntryArena } from '../../runtime/storage/entry-arena.ts';

export class DurableLog implements LogStorage {
  private hard: HardState;
  /** Every entry since index 1, in columns: entry objects are made only when the core asks. */
  private readonly inMemory: EntryArena;

  constructor(private readonly store: Storage, recovered: Recovered) {
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

  term(index: number): number {
    if (index === 0) return 0;
    return this.inMemory.term(index);
  }

  entries(lo: number, hi: number): readonly Entry[] {
    return this.inMemory.slice(lo, Math.min(hi, this.inMemory.lastIndex + 1)) as Entry[];
  }

  /** Writes a Ready's entries and hard state to the store (not yet synced) and to memory. */
  write(entries: readonly Entry[], hardState: HardState | null): void {
    if (entries.length > 0) {
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
