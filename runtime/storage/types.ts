// The durable-storage contract every node actor uses: hard state, a contiguous log of opaque
// entries, explicit sync, and the report recovery hands back. Protocol-agnostic on purpose:
// nothing here may name Raft or Paxos concepts beyond term/vote/commit, and nothing here does I/O.

import type { EntryArena } from './entry-arena.ts';
import type { FileSystem } from './fs.ts';

/** `always`: fsync on every append/setHardState call. `batch`: one fsync per `sync()` (default).
 * `never`: no fsync at all — survives a process crash (data reach the OS on `sync()`), but NOT a
 * power loss or kernel crash; for benchmarks and throwaway clusters only. */
export type FsyncPolicy = 'always' | 'batch' | 'never';
export const fsyncPolicies: readonly FsyncPolicy[] = ['always', 'batch', 'never'];

/** What a node must remember across restarts besides its log. vote 0 means "voted for nobody". */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
  /** Opaque bytes for protocols whose durable state is not term/vote/commit (e.g. Paxos ballots).
   * Stored as a copy; an empty array is the same as none and comes back as none. */
  extra?: Uint8Array;
}

/** One log slot. `data` is the command exactly as the client encoded it; storage copies it once
 * (the WAL into its write buffer at append, the memory store into its arena at sync: the caller
 * must not mutate it before then) and never decodes it. `kind` is the protocol's tag (normal, config, ...). */
export interface LogEntry {
  index: number;
  term: number;
  kind: number;
  data: Uint8Array;
}

/**
 * Why recovery cut bytes off the end of the log. Only a torn tail is ever cut: damage followed by
 * a record that still passes its checksum, or a record that passes its checksum but makes no
 * sense, makes recovery refuse to open (StorageError 'CORRUPT') and change nothing, because cutting
 * there would silently drop votes and acknowledged entries.
 */
export type DropReason =
  | 'torn' // the last record is incomplete (or zero-filled): a write was cut short by a crash
  | 'corrupt' // the very last record fails its checksum and nothing valid follows it
  | 'invalid' // never in a report: a record that passes its checksum but makes no sense is refused
  | 'bad-header'; // the last segment's header fails its checksum and nothing valid follows it

export interface DroppedTail {
  reason: DropReason;
  /** What exactly was wrong, for a person. */
  detail: string;
  /** File name (inside the storage directory) of the segment where the valid log ends. */
  segment: string;
  /** Byte offset in `segment` where the first bad record starts; the file was cut there. */
  offset: number;
  /** Every byte discarded: the rest of `segment` plus all later segments. */
  bytes: number;
  /** Records discarded: the one incomplete or damaged record. A cut never discards a record that
   * passed its checksum (recovery refuses to open instead), so this is 1. */
  records: number;
  /** Later segments deleted with the tail: they held no valid record (empty or torn at creation). */
  segmentsRemoved: string[];
}

export interface RecoveryReport {
  /** Directory recovered from, or `memory`. */
  source: string;
  segmentsRead: number;
  recordsReplayed: number;
  bytesReplayed: number;
  entriesRecovered: number;
  /** null when every byte on disk was accepted. */
  dropped: DroppedTail | null;
  /** One line a caller can print as is. */
  summary: string;
}

export interface Recovered {
  hardState: HardState;
  /** Contiguous, ascending by index; starts at compactedIndex + 1. */
  entries: LogEntry[];
  /** The compaction point: entries up to it are gone (a snapshot covers them); 0 when none. */
  compactedIndex: number;
  /** Term of the entry at compactedIndex: 0 when compactedIndex is 0, -1 when unknown (a WAL
   * written by format v1 compacted without recording the term). */
  compactedTerm: number;
  report: RecoveryReport;
}

/** Counters for tests and benchmarks; cheap to read at any time. */
export interface StorageStats {
  writeCalls: number;
  bytesWritten: number;
  fsyncs: number;
  segments: number;
}

/**
 * A node's durable state. Calls are synchronous: the node's worker owns the directory and a
 * node must wait for durability before sending the acks it covers anyway, so blocking its own
 * thread is the wait it needs, and it spares a promise per batch.
 *
 * The intended ready-batch pattern: `append(entries)`, `setHardState(hs)`, then `sync()` once,
 * then send the messages that promise what was just written.
 */
export interface Storage {
  readonly policy: FsyncPolicy;
  /** What was recovered at open. Call once: the recovered entries are handed over, not kept. */
  load(): Recovered;
  /** Appends contiguous entries. If the first index is ≤ lastIndex, the conflicting suffix
   * (from that index on) is truncated first. A first index above lastIndex + 1 is refused. */
  append(entries: readonly LogEntry[]): void;
  setHardState(hardState: HardState): void;
  /** Makes every earlier append/setHardState durable per the fsync policy. */
  sync(): void;
  /** Entries ≤ upToIndex are no longer needed (a snapshot covers them); `term` is the term of the
   * entry at upToIndex (0 when upToIndex is 0), refused when the store holds that entry with
   * another term. Files holding only such entries may be deleted; later appends at or below
   * upToIndex are refused. A compaction that moves the point syncs everything written before it
   * (the point must be durable before files go); one at or below the current point does nothing. */
  compact(upToIndex: number, term: number): void;
  /** Replaces the whole log by an empty one compacted through (index, term), as installing a
   * snapshot does: lastIndex becomes index and the next append must start at index + 1. index may
   * be above, at or below lastIndex but not below the compaction point ('COMPACTED'). Durable at
   * the next sync() (at once under `always`); the files of the old log go once it is durable.
   * Hard state is unchanged. */
  resetTo(index: number, term: number): void;
  /** Writes what is buffered, makes it durable unless the policy is `never`, releases files. */
  close(): void;
  /** Index of the last entry, or of the compaction point when the log is empty (0 when new). */
  readonly lastIndex: number;
  /** Index the next append may not go below: compaction point + 1 (1 when new). */
  readonly firstIndex: number;
  /** Term of the entry at the compaction point: 0 when nothing was compacted, -1 when unknown (a
   * v1 WAL compacted without recording it) until the next compact or resetTo moves the point. */
  readonly compactedTerm: number;
  /** Latest hard state given to setHardState (durable or not). */
  readonly hardState: HardState;
  stats(): StorageStats;
}

export interface WalOptions {
  /** One directory per node; created if missing. */
  dir: string;
  /** The disk it lives on: node:fs (the default), or a simulated one (SimFs). */
  fs?: FileSystem;
  fsync?: FsyncPolicy;
  /** A segment is sealed and a new one started once it would grow past this. A single batch
   * larger than this still goes into one segment. */
  segmentBytesMax?: number;
  /** Entries are packed into records no larger than this; one entry must fit in one record. */
  recordBytesMax?: number;
  /** Buffered, unsynced bytes are written (not fsynced) to the file once they exceed this. */
  pendingBytesMax?: number;
}

export interface MemoryOptions {
  /** The "disk" a memory store survives on; pass the same one to reopen. New if omitted. */
  disk?: MemoryDisk;
  fsync?: FsyncPolicy;
  /**
   * false: hard state and log positions are kept but entry data are not (default true). For a
   * caller that keeps its own copy of the log and whose store can never be reopened (no `disk`
   * given): it saves a second copy of every entry. Cannot be combined with `disk`.
   */
  keepEntries?: boolean;
}

/** The durable side of a memory store: what a reopen finds. Opaque to callers. */
export interface MemoryDisk {
  readonly kind: 'memory-disk';
  hardState: HardState;
  /** The synced log; its firstIndex is where it starts (after compaction: compactedIndex + 1). */
  log: EntryArena;
  compactedIndex: number;
  /** Term of the entry at compactedIndex (0 when nothing was compacted). */
  compactedTerm: number;
}

export type StorageOptions = ({ kind: 'wal' } & WalOptions) | ({ kind: 'memory' } & MemoryOptions);
