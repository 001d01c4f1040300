// Input checks and the error type shared by every store, so the WAL and the memory store refuse
// exactly the same things with the same words. Pure: no I/O, and never mutates what it checks.
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
  | 'ALREADY_LOADED';

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
    if (e === null || typeof e !== 'object') throw new StorageError('BAD_ENTRY', `entry #${i} is not an object`);
    if (!isCount(e.index, 1)) {
      throw new StorageError('BAD_ENTRY', `entry #${i}: index must be a safe integer ≥ 1, got ${JSON.stringify(e.index)}`);
    }
    if (!isCount(e.term, 0)) {
      throw new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): term must be a safe integer ≥ 0, got ${JSON.stringify(e.term)}`);
    }
    if (typeof e.kind !== 'number' || !Number.isInteger(e.kind) || e.kind < 0 || e.kind > kindMax) {
      throw new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): kind must be an integer from 0 to ${kindMax}, got ${JSON.stringify(e.kind)}`);
    }
    if (!(e.data instanceof Uint8Array)) {
      throw new StorageError('BAD_ENTRY', `entry #${i} (index ${e.index}): data must be a Uint8Array (opaque command bytes)`);
    }
    if (i > 0 && e.index !== entries[i - 1]!.index + 1) {
      throw new StorageError(
        'GAP',
        `entries in one append must be contiguous: entry #${i} has index ${e.index} after index ${entries[i - 1]!.index}`,
      );
    }
  }
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
  if (!Number.isInteger(upToIndex) || upToIndex < 0) {
    throw new StorageError('BAD_ENTRY', `compact expects an index ≥ 0, got ${JSON.stringify(upToIndex)}`);
  }
  if (upToIndex > lastIndex) {
    throw new StorageError('BAD_ENTRY', `compact(${upToIndex}) goes past the last index ${lastIndex}; compact only what the log holds`);
  }
}
