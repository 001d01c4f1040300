// Input checks and the error type shared by every store, so the WAL and the memory store refuse
// exactly the same things with the same words, plus TermRuns, the little index of terms both use
// to check a compaction term. Pure: no I/O, and never mutates what it checks.
import type { FsyncPolicy, HardState, LogEntry } from './types.ts';
import { fsyncPolicies } from './types.ts';

export type StorageErrorCode =
  | 'BAD_OPTION'
  | 'NOT_A_DIRECTORY'
  | 'NOT_A_WAL_DIRECTORY'
  | 'BAD_FORMAT'
  | 'NEWER_FORMAT'
  | 'MISSING_SEGMENT'
  | 'BAD_ENTRY'
  | 'BAD_HARD_STATE'
  | 'GAP'
  | 'COMPACTED'
  | 'TOO_LARGE'
  | 'CLOSED'
  | 'FAILED'
  | 'ALREADY_LOADED'
  | 'CORRUPT';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

export const fsyncPolicyDefault: FsyncPolicy = 'batch';

/** For CLI flags and config files: a string in, a policy out, or an error listing the choices. */
export function parseFsyncPolicy(value: unknown, where = 'fsync'): FsyncPolicy {
  if (typeof value === 'string' && (fsyncPolicies as readonly string[]).includes(value)) return value as FsyncPolicy;
  throw new StorageError(
    'BAD_OPTION',
    `${where} must be one of ${fsyncPolicies.join(', ')}, got ${JSON.stringify(value)}`,
  );
}

/** Refuses option names the store does not know, so a typo (`segmentMaxBytes`) is not ignored. */
export function checkOptionNames(options: object, known: readonly string[], store: string): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new StorageError(
      'BAD_OPTION',
      `unknown ${store} option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known options: ${known.join(', ')}`,
    );
  }
}

export function checkIntOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new StorageError('BAD_OPTION', `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Largest integer the WAL encodes exactly (indices and terms are stored as 64-bit unsigned). */
const safeMax = Number.MAX_SAFE_INTEGER;
export const kindMax = 0xffff_ffff;

function isCount(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= safeMax;
}

export function checkHardState(hs: HardState): void {
  if (hs === null || typeof hs !== 'object') {
    throw new StorageError('BAD_HARD_STATE', `hard state must be an object { term, vote, commit }, got ${String(hs)}`);
  }
  for (const field of ['term', 'vote', 'commit'] as const) {
    if (!isCount(hs[field], 0)) {
      throw new StorageError(
        'BAD_HARD_STATE',
        `hard state ${field} must be a non-negative safe integer, got ${JSON.stringify(hs[field])}`,
      );
    }
  }
  if (hs.extra !== undefined && !(hs.extra instanceof Uint8Array)) {
    throw new StorageError('BAD_HARD_STATE', 'hard state extra must be a Uint8Array when present');
  }
}

/** Checks shape and contiguity inside the batch; where the batch may start is `checkAppendAt`. */
export function checkEntries(entries: readonly LogEntry[]): void {
  if (!Array.isArray(entries)) throw new StorageError('BAD_ENTRY', 'append expects an array of entries');
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const ok =
      e !== null &&
      typeof e === 'object' &&
      isCount(e.index, 1) &&
      isCount(e.term, 0) &&
      typeof e.kind === 'number' &&
      Number.isInteger(e.kind) &&
      e.kind >= 0 &&
      e.kind <= kindMax &&
      e.data instanceof Uint8Array &&
      (i === 0 || e.index === entries[i - 1]!.index + 1);
    // The messages are built apart: on this V8 a template literal in this per-entry loop's
    // never-taken throws still converted its numbers to strings for every entry.
    if (!ok) throw entryError(entries, i);
  }
}

/** Why checkEntries refused entries[i]. */
function entryError(entries: readonly LogEntry[], i: number): StorageError {
  const e = entries[i]!;
  if (e === null || typeof e !== 'object') return new StorageError('BAD_ENTRY', `entry #${i} is not an object`);
  if (!isCount(e.index, 1)) {
    return new StorageError('BAD_ENTRY', `entry #${i}: index must be a safe integer ≥ 1, got ${JSON.stringify(e.index)}`);
  }
  if (!isCount(e.term, 0)) {
    return new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): term must be a safe integer ≥ 0, got ${JSON.stringify(e.term)}`);
  }
  if (typeof e.kind !== 'number' || !Number.isInteger(e.kind) || e.kind < 0 || e.kind > kindMax) {
    return new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): kind must be an integer from 0 to ${kindMax}, got ${JSON.stringify(e.kind)}`);
  }
  if (!(e.data instanceof Uint8Array)) {
    return new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): data must be a Uint8Array (opaque command bytes)`);
  }
  return new StorageError('GAP', `entries in one append must be contiguous: entry #${i} has index ${e.index} after index ${entries[i - 1]!.index}`);
}

/** Where a batch starting at `first` may go, given the log's state. */
export function checkAppendAt(first: number, lastIndex: number, compactedIndex: number): void {
  if (first > lastIndex + 1) {
    throw new StorageError(
      'GAP',
      `append would leave a gap: the log ends at index ${lastIndex} but the first new entry has index ${first}; ` +
        `append from index ${lastIndex + 1} or lower (a lower index truncates the conflicting suffix)`,
    );
  }
  if (first <= compactedIndex) {
    throw new StorageError(
      'COMPACTED',
      `append at index ${first} would rewrite entries compacted up to index ${compactedIndex}; ` +
        `entries covered by a snapshot cannot change`,
    );
  }
}

export function copyHardState(hs: HardState): HardState {
  const out: HardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  // The caller may reuse its buffer; one copy here keeps the stored value stable.
  // (new Uint8Array(x) copies even when x is a Buffer, whose slice() would not.) Empty extra
  // bytes and none are the same state, so every store normalises to none.
  if (hs.extra !== undefined && hs.extra.length > 0) out.extra = new Uint8Array(hs.extra);
  return out;
}

export const emptyHardState = (): HardState => ({ term: 0, vote: 0, commit: 0 });

/** compact(upTo) must name an index the log holds (or held): refused with the fix otherwise. */
export function checkCompactIndex(upToIndex: number, lastIndex: number): void {
  if (!isCount(upToIndex, 0)) {
    throw new StorageError('BAD_ENTRY', `compact expects an index ≥ 0, got ${JSON.stringify(upToIndex)}`);
  }
  if (upToIndex > lastIndex) {
    throw new StorageError('BAD_ENTRY', `compact(${upToIndex}) goes past the last index ${lastIndex}; compact only what the log holds`);
  }
}

/** The term given with a compaction or reset point: stored as a u64 like every term. */
export function checkPointTerm(call: string, term: number): void {
  if (!isCount(term, 0)) {
    throw new StorageError('BAD_ENTRY', `${call}: term must be a non-negative safe integer, got ${JSON.stringify(term)}`);
  }
}

/**
 * compact(index, term) must name the term the log holds at index (-1 for `heldTerm`: not held,
 * nothing to check). A mismatch is a caller bug that would put a wrong term at the boundary, where
 * the next append's consistency check reads it.
 */
export function checkCompactTerm(index: number, term: number, heldTerm: number): void {
  if (heldTerm >= 0 && heldTerm !== term) {
    throw new StorageError(
      'BAD_ENTRY',
      `compact(${index}, ${term}): the entry at index ${index} has term ${heldTerm}, not ${term}; ` +
        `pass the term of the entry at the compaction point (the one the snapshot was taken at)`,
    );
  }
}

/** resetTo(index, term) installs a snapshot point: never below what is already compacted. */
export function checkResetPoint(index: number, term: number, compactedIndex: number, compactedTerm: number): void {
  if (!isCount(index, 0)) {
    throw new StorageError('BAD_ENTRY', `resetTo expects an index ≥ 0, got ${JSON.stringify(index)}`);
  }
  checkPointTerm(`resetTo(${index})`, term);
  if (index < compactedIndex) {
    throw new StorageError(
      'COMPACTED',
      `resetTo(${index}) goes below the compaction point ${compactedIndex}: this store already holds a newer ` +
        `snapshot point, so the older snapshot is stale — ignore it`,
    );
  }
  if (index === compactedIndex && compactedTerm >= 0 && term !== compactedTerm) {
    throw new StorageError(
      'BAD_ENTRY',
      `resetTo(${index}, ${term}): the compaction point ${index} has term ${compactedTerm}, not ${term}; ` +
        `a committed index has one term — the snapshot's metadata is wrong`,
    );
  }
}

/**
 * The term of every index a store holds, one run per term change, so compact(index, term) can be
 * checked against the entry it names without keeping entries (the WAL hands them over at load and
 * the memory store may keep none). A log changes term rarely, so this stays a handful of numbers.
 */
export class TermRuns {
  /** Run k covers [froms[k], froms[k + 1]) (the last one up to `next`) in term terms[k]. */
  private froms: number[] = [];
  private terms: number[] = [];
  /** The first index held; the index the next entry takes. */
  private first: number;
  private next: number;

  constructor(firstIndex = 1) {
    this.first = firstIndex;
    this.next = firstIndex;
  }

  /** The term of the entry at `index`, or -1 when it is not held. */
  termAt(index: number): number {
    if (index < this.first || index >= this.next) return -1;
    let lo = 0;
    let hi = this.froms.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.froms[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.terms[lo]!;
  }

  /** Records a checked, contiguous batch; like an append, it first drops what it overwrites. */
  append(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return;
    this.truncateFrom(entries[0]!.index);
    for (const e of entries) {
      if (this.terms.length === 0 || this.terms[this.terms.length - 1] !== e.term) {
        this.froms.push(e.index);
        this.terms.push(e.term);
      }
    }
    this.next = entries[entries.length - 1]!.index + 1;
  }

  truncateFrom(index: number): void {
    while (this.froms.length > 0 && this.froms[this.froms.length - 1]! >= index) {
      this.froms.pop();
      this.terms.pop();
    }
    this.next = Math.max(this.first, Math.min(this.next, index));
  }

  /** Forgets the terms of every index up to and including `index` (a compaction). */
  dropThrough(index: number): void {
    if (index < this.first) return;
    if (index >= this.next - 1) return this.reset(index + 1);
    this.first = index + 1;
    // A run that ends at or before the new first index is no longer needed.
    while (this.froms.length > 1 && this.froms[1]! <= this.first) {
      this.froms.shift();
      this.terms.shift();
    }
  }

  /** Holds nothing; the next entry takes `nextIndex` (a reset to a snapshot point). */
  reset(nextIndex: number): void {
    this.froms = [];
    this.terms = [];
    this.first = nextIndex;
    this.next = nextIndex;
  }
}
