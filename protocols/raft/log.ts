// The Raft log as the core sees it: durable entries in LogStorage (which may start after a
// snapshot) followed by an unstable tail not yet reported durable — possibly a snapshot from the
// leader that replaces everything — plus commit/applied cursors. It must never let commit pass the
// last index, never truncate a committed entry, and never copy entry data.
import type { LogStorage } from './storage.ts';
import type { Entry, SnapshotMeta } from './types.ts';

/**
 * Entries appended but not yet acknowledged as durable. `offset` is the index of entries[0];
 * entries before `inProgress` have been handed to a Ready and are being written. A snapshot
 * received from the leader waits here too (entries then start right after it).
 */
class Unstable {
  entries: Entry[] = [];
  offset: number;
  inProgress: number;
  snapshot: SnapshotMeta | null = null;
  /** The snapshot has been handed to a Ready and is being installed. */
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.inProgress = offset;
  }

  lastIndex(): number {
    return this.offset + this.entries.length - 1;
  }

  /** Term at index, or -1 when the unstable tail does not hold it. */
  term(index: number): number {
    if (index < this.offset) return this.snapshot !== null && index === this.snapshot.index ? this.snapshot.term : -1;
    const e = this.entries[index - this.offset];
    return e === undefined ? -1 : e.term;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      this.entries = [...ents];
      this.offset = from;
      this.inProgress = from;
    } else {
      this.entries.length = from - this.offset;
      for (const e of ents) this.entries.push(e);
      this.inProgress = Math.min(this.inProgress, from);
    }
  }

  /** Replaces everything with a snapshot from the leader: the log continues after it. */
  restore(s: SnapshotMeta): void {
    this.entries = [];
    this.offset = s.index + 1;
    this.inProgress = this.offset;
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Entries up to (index, term) are durable; ignored if that entry was since replaced. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term) return;
    const n = index + 1 - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = index + 1;
    this.inProgress = Math.max(this.inProgress, this.offset);
  }
}

export class RaftLog {
  private readonly unstable: Unstable;
  /** Told of every append() with the entries that now end the log (anything after them is gone). */
  onAppend: ((ents: readonly Entry[]) => void) | null = null;
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed to the host for applying (in a Ready not yet advanced, or earlier). */
  applying: number;
  /** Highest index the host reported applied (advance). */
  applied: number;

  constructor(
    private readonly storage: LogStorage,
    committed: number,
    applied: number,
  ) {
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    if (committed > last) throw new Error(`raft log: hard state commit ${committed} is beyond the last stored index ${last}`);
    if (applied > committed) throw new Error(`raft log: applied ${applied} is beyond commit ${committed}`);
    this.committed = committed;
    this.applying = applied;
    this.applied = applied;
  }

  lastIndex(): number {
    const u = this.unstable;
    if (u.entries.length > 0) return u.lastIndex();
    return u.snapshot !== null ? u.snapshot.index : this.storage.lastIndex();
  }

  /** The first index whose entry this log still holds; term(firstIndex − 1) is known, nothing before. */
  firstIndex(): number {
    const u = this.unstable;
    if (u.snapshot !== null) return u.snapshot.index + 1;
    return this.storage.firstIndex?.() ?? 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of the entry at index; 0 for index 0; -1 when the log has no such entry (beyond it, or compacted). */
  term(index: number): number {
    if (index === 0) return 0;
    const t = this.unstable.term(index);
    if (t !== -1) return t;
    if (index >= this.unstable.offset || this.unstable.snapshot !== null) return -1;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** The highest index such that it and everything before it is durable and still in this log. */
  persistedIndex(): number {
    // A snapshot still being installed makes nothing of the old log part of this one.
    return this.unstable.snapshot !== null ? 0 : this.unstable.offset - 1;
  }

  /** Election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi) regardless of where they live; shares entry objects, never copies data. */
  slice(lo: number, hi: number): Entry[] {
    if (lo >= hi) return [];
    const u = this.unstable;
    if (u.snapshot !== null && hi <= u.snapshot.index + 1 && lo >= (this.storage.firstIndex?.() ?? 1)) {
      // Committed entries of a Ready handed out before a snapshot arrived: storage keeps them
      // until the snapshot is installed, and committed entries are the same in every log.
      return [...this.storage.entries(lo, hi)];
    }
    if (lo < this.firstIndex()) throw new Error(`raft log: entries from ${lo} asked, but the log holds entries from ${this.firstIndex()} on (compacted)`);
    const out: Entry[] = [];
    if (lo < u.offset) {
      const stored = this.storage.entries(lo, Math.min(hi, u.offset));
      for (const e of stored) out.push(e);
    }
    if (hi > u.offset) {
      const from = Math.max(lo, u.offset) - u.offset;
      const to = hi - u.offset;
      for (let i = from; i < to && i < u.entries.length; i++) out.push(u.entries[i]!);
    }
    return out;
  }

  /**
   * Up to `maxEntries` entries from `lo`, stopping before the byte total passes `maxBytes`
   * (at least one entry is always returned when one exists, so a big entry cannot stall).
   */
  entriesFrom(lo: number, maxEntries: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last) return [];
    const ents = this.slice(lo, Math.min(last + 1, lo + maxEntries));
    let bytes = 0;
    for (let i = 0; i < ents.length; i++) {
      bytes += ents[i]!.data.length;
      if (bytes > maxBytes && i > 0) {
        ents.length = i;
        break;
      }
    }
    return ents;
  }

  /** Appends entries that follow or replace part of the log. Returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) throw new Error(`raft log: refusing to overwrite committed entry ${after + 1} (commit ${this.committed})`);
    if (after > this.lastIndex()) throw new Error(`raft log: gap — appending at ${after + 1} after last index ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(ents);
    this.onAppend?.(ents);
    return this.lastIndex();
  }

  /**
   * Leader side of propose: appends one normal entry that must follow the last index. Skips
   * append()'s array, checks and listener on the hot path (one call per proposal); anything
   * unusual goes through it.
   */
  appendNext(e: Entry): void {
    const u = this.unstable;
    if (e.kind === 0 && e.index === u.offset + u.entries.length && e.index === this.lastIndex() + 1 && e.index > this.committed) u.entries.push(e);
    else this.append([e]);
  }

  /**
   * Follower side of AppendEntries: if (prevIndex, prevTerm) matches, append what is new and
   * advance commit. Returns the last index the message vouches for, or -1 on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) throw new Error(`raft log: entry ${ci} conflicts with committed entry (commit ${this.committed})`);
      this.append(ents.slice(ci - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /**
   * The first index in `ents` whose term differs from ours or that we lack; 0 when all match.
   * Stale or duplicated appends therefore never truncate anything.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term. Used on both sides of
   * fast backtracking so that one round trip skips a whole term of divergent entries.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    // Below the first entry still held the terms are gone: stop at the last one known. Only a
    // stale answer (a delayed reject) can lead there, and the caller then discards it.
    const floor = this.firstIndex() - 1;
    for (let i = Math.max(Math.min(index, this.lastIndex()), floor); i > 0; i--) {
      const t = this.term(i);
      if (t <= term || i === floor) return [i, t];
    }
    return [0, 0];
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) throw new Error(`raft log: commit ${index} is beyond the last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  hasUnstableToPersist(): boolean {
    const u = this.unstable;
    return u.inProgress <= u.lastIndex() || (u.snapshot !== null && !u.snapshotInProgress);
  }

  /**
   * Follower side of InstallSnapshot: the log becomes the snapshot (committed through its index)
   * and whatever follows it. The caller has checked that the snapshot is newer than our commit
   * and that our log does not already hold its last entry.
   */
  restore(s: SnapshotMeta): void {
    if (s.index <= this.committed) throw new Error(`raft log: snapshot at ${s.index} is not past commit ${this.committed}`);
    this.unstable.restore(s);
    this.committed = s.index;
    // The snapshot's image carries everything through its index: nothing before it is applied from the log.
    this.applying = s.index;
  }

  /** The snapshot not yet handed to a Ready (marks it in progress), or null. */
  takeSnapshot(): SnapshotMeta | null {
    const u = this.unstable;
    if (u.snapshot === null || u.snapshotInProgress) return null;
    u.snapshotInProgress = true;
    return u.snapshot;
  }

  /** The snapshot at `index` is installed in storage; ignored if a newer one replaced it. */
  stableSnapTo(index: number): void {
    const u = this.unstable;
    if (u.snapshot === null || u.snapshot.index !== index) return;
    u.snapshot = null;
    u.snapshotInProgress = false;
    if (index > this.applied) this.applied = index;
  }

  /** Unstable entries not yet handed to a Ready; marks them in progress. */
  takeUnstable(): Entry[] {
    const u = this.unstable;
    if (u.inProgress > u.lastIndex()) return [];
    const out = u.entries.slice(u.inProgress - u.offset);
    u.inProgress = u.lastIndex() + 1;
    return out;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  hasCommittedToApply(): boolean {
    return this.committed > this.applying;
  }

  /**
   * Hands out the committed entries not handed out before, as the index range [from, to] (empty
   * when to < from): the host reads them from the log itself, so no entry object need be made.
   */
  takeCommitted(): { from: number; to: number } {
    const from = this.applying + 1;
    if (this.committed > this.applying) this.applying = this.committed;
    return { from, to: this.applying };
  }

  appliedTo(index: number): void {
    if (index > this.applied) this.applied = index;
  }
}
