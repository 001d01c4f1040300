// A node's Raft log as the core reads it (protocols/raft LogStorage), kept in memory in front of
// the durable store (runtime/storage WAL or memory). The host writes both from each Ready batch;
// the core only ever reads here, and only what the durable store has been given. The log may
// start after a snapshot: entries through the snapshot may be dropped (in memory and on disk),
// and a snapshot from the leader may replace the whole log.
import type { Entry, HardState, LogStorage, SnapshotMeta } from '../../protocols/raft/index.ts';
import { noSnapshot } from '../../protocols/raft/index.ts';
import type { Recovered, Storage } from '../../runtime/storage/index.ts';
import { EntryArena, type DataRef } from '../../runtime/storage/entry-arena.ts';

export class LogStartError extends Error {
  override name = 'LogStartError';
}

export class DurableLog implements LogStorage {
  private hard: HardState;
  /** The entries held, in columns: entry objects are made only when the core asks. */
  private inMemory: EntryArena;
  /** The last entry dropped (0: none), and its term: the log continues after it. */
  private compactedIndex: number;
  private compactedTerm: number;
  /** The newest snapshot the log is based on (index 0: none). */
  private snap: SnapshotMeta = noSnapshot;

  /**
   * `recovered` is what the store replayed; `snapshot` the snapshot the state machine was
   * restored from (null: none). When the log holds the snapshot's last entry, the entries around
   * it stay (they serve followers that lag a little); otherwise the snapshot replaces the log —
   * it was installed from a leader and the crash came before the store recorded that.
   * `compactable`: a log without snapshots may still drop what every voter holds (memory storage,
   * whose nodes never restart).
   */
  constructor(
    private readonly store: Storage,
    recovered: Recovered,
    snapshot: SnapshotMeta | null = null,
    private readonly compactable = false,
    /** Bytes per data chunk of the in-memory log (EntryArena); small for many short-lived logs (the simulator). */
    private readonly chunkBytes?: number,
  ) {
    const hs = recovered.hardState;
    this.hard = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.compactedIndex = recovered.compactedIndex;
    this.compactedTerm = recovered.compactedTerm;
    const first = recovered.entries.length > 0 ? recovered.entries[0]!.index : this.compactedIndex + 1;
    if (first !== this.compactedIndex + 1) throw new LogStartError(`the recovered log starts at ${first} but its compaction point is ${this.compactedIndex}`);
    if (this.compactedIndex > 0 && this.compactedTerm < 0) {
      throw new LogStartError(`the log was compacted through ${this.compactedIndex} by an older concur that did not record the term there; this node cannot continue from it — move its directory aside and let it catch up from the leader`);
    }
    this.inMemory = new EntryArena(first, chunkBytes);
    for (const e of recovered.entries) this.inMemory.push(e);
    if (snapshot !== null) this.startFrom(snapshot);
    else if (this.compactedIndex > 0) throw new LogStartError(`the log was compacted through ${this.compactedIndex} but no snapshot covers it`);
    // A commit index beyond the recovered log (its tail was torn) must not be trusted.
    if (this.hard.commit > this.lastIndex()) this.hard = { ...this.hard, commit: this.lastIndex() };
    if (this.hard.commit < this.snap.index) this.hard = { ...this.hard, commit: this.snap.index };
  }

  private startFrom(s: SnapshotMeta): void {
    if (s.index < this.compactedIndex) {
      throw new LogStartError(`snapshot ${s.index} is older than the log's compaction point ${this.compactedIndex}: entries ${s.index + 1}..${this.compactedIndex} are gone`);
    }
    this.snap = s;
    if (this.term(s.index) === s.term) return;
    // The log does not hold the snapshot's last entry (or holds another term there): everything
    // in it is either covered by the snapshot or conflicts with what it committed.
    this.resetTo(s);
    this.store.sync();
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

  snapshot(): SnapshotMeta {
    return this.snap;
  }

  term(index: number): number {
    if (index === 0) return 0;
    if (index <= this.compactedIndex) return index === this.compactedIndex ? this.compactedTerm : -1;
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

  /** Entries held in memory now. */
  get length(): number {
    return this.inMemory.length;
  }

  /** A snapshot of this node's state machine at `meta.index` is durable: the log may now be cut up to it. */
  setSnapshot(meta: SnapshotMeta): void {
    if (meta.index < this.snap.index) throw new RangeError(`snapshot ${meta.index} is older than the one the log is based on (${this.snap.index})`);
    if (meta.index > this.lastIndex() || this.term(meta.index) !== meta.term) {
      throw new RangeError(`snapshot ${meta.index}/t${meta.term} does not match the log (last ${this.lastIndex()}, term there ${this.term(meta.index)})`);
    }
    this.snap = meta;
  }

  /**
   * Drops entries through `memoryThrough` from memory, and from the store through `disk` (at
   * most as far; an index whose term memory still holds, or an index and its term — a previous
   * snapshot's — when memory has let go of it). Everything dropped must be covered by a durable
   * snapshot — or, for a compactable log, held by every voter and applied here — so nobody can
   * ask for it again.
   */
  compactThrough(memoryThrough: number, disk: number | { index: number; term: number } = memoryThrough): void {
    const diskIndex = typeof disk === 'number' ? disk : disk.index;
    if (diskIndex > memoryThrough) throw new RangeError(`the store may not drop more (${diskIndex}) than memory (${memoryThrough})`);
    if (memoryThrough > this.snap.index && !this.compactable) {
      throw new RangeError(`cannot drop entries through ${memoryThrough}: the newest snapshot covers only through ${this.snap.index}`);
    }
    if (memoryThrough > this.lastIndex()) throw new RangeError(`cannot compact through ${memoryThrough}: the log ends at ${this.lastIndex()}`);
    // The store's boundary term must be read before memory lets go of it.
    const diskTerm = typeof disk === 'number' ? this.term(disk) : disk.term;
    if (memoryThrough > this.compactedIndex) {
      this.compactedTerm = this.inMemory.term(memoryThrough);
      this.compactedIndex = memoryThrough;
      this.inMemory.dropThrough(memoryThrough);
    }
    if (diskIndex > this.store.firstIndex - 1) {
      if (diskTerm < 0) throw new RangeError(`cannot compact the store through ${diskIndex}: its term is no longer known here`);
      this.store.compact(diskIndex, diskTerm);
    }
  }

  /**
   * A snapshot from the leader replaces the whole log: memory starts after it, and the store
   * records the reset (durable at the next sync, which the Ready that carries it owes).
   */
  installSnapshot(meta: SnapshotMeta): void {
    this.snap = meta;
    this.resetTo(meta);
    if (this.hard.commit < meta.index) this.hard = { ...this.hard, commit: meta.index };
  }

  private resetTo(meta: SnapshotMeta): void {
    this.inMemory = new EntryArena(meta.index + 1, this.chunkBytes);
    this.compactedIndex = meta.index;
    this.compactedTerm = meta.term;
    this.store.resetTo(meta.index, meta.term);
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
