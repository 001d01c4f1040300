// A node's Raft log as the core reads it (protocols/raft LogStorage), kept in memory in front of
// the durable store (runtime/storage WAL or memory). The host writes both from each Ready batch;
// the core only ever reads here, and only what the durable store has been given.
import type { Entry, HardState, LogStorage } from '../../protocols/raft/index.ts';
import type { Recovered, Storage } from '../../runtime/storage/index.ts';

export class DurableLog implements LogStorage {
  private hard: HardState;
  /** entries[i] is the entry at index first + i. */
  private entriesInMemory: Entry[];
  private readonly first: number;

  constructor(private readonly store: Storage, recovered: Recovered) {
    const hs = recovered.hardState;
    this.hard = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.entriesInMemory = recovered.entries as Entry[];
    this.first = recovered.entries.length > 0 ? recovered.entries[0]!.index : store.firstIndex;
    if (this.first !== 1) throw new Error(`log starts at index ${this.first}: snapshots are not supported yet, so a compacted log cannot be replayed`);
    // A commit index beyond the recovered log (its tail was torn) must not be trusted.
    if (this.hard.commit > this.lastIndex()) this.hard = { ...this.hard, commit: this.lastIndex() };
  }

  initialState(): HardState {
    return this.hard;
  }

  lastIndex(): number {
    return this.first + this.entriesInMemory.length - 1;
  }

  term(index: number): number {
    if (index === 0) return 0;
    const e = this.entriesInMemory[index - this.first];
    return e === undefined ? -1 : e.term;
  }

  entries(lo: number, hi: number): readonly Entry[] {
    return this.entriesInMemory.slice(lo - this.first, hi - this.first);
  }

  /** Writes a Ready's entries and hard state to the store (not yet synced) and to memory. */
  write(entries: readonly Entry[], hardState: HardState | null): void {
    if (entries.length > 0) {
      this.store.append(entries);
      const at = entries[0]!.index - this.first;
      if (at < this.entriesInMemory.length) this.entriesInMemory.length = at;
      for (const e of entries) this.entriesInMemory.push(e);
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
