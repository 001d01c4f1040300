// Shared helpers for the storage tests: temporary directories, entry builders, error matchers.
// Test support only: nothing in runtime/ may import it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { StorageError } from '../../runtime/storage/rules.ts';
import type { LogEntry } from '../../runtime/storage/types.ts';

const made: string[] = [];

export function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concur-storage-'));
  made.push(dir);
  return dir;
}

export function cleanupTmp(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Entries [from, from+count) in `term`, with data that encodes the index and term so any
 * mix-up between slots shows. */
export function makeEntries(from: number, count: number, term: number, bytes = 8, kind = 0): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = 0; i < count; i++) {
    const index = from + i;
    const data = new Uint8Array(bytes);
    for (let k = 0; k < bytes; k++) data[k] = (index * 31 + term * 7 + k) & 0xff;
    out.push({ index, term, kind, data });
  }
  return out;
}

/** Plain-object view so Buffer/Uint8Array subtypes and views compare by content. */
export function plain(entries: readonly LogEntry[]): { index: number; term: number; kind: number; data: number[] }[] {
  return entries.map((e) => ({ index: e.index, term: e.term, kind: e.kind, data: Array.from(e.data) }));
}

export function throwsCode(f: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StorageError, `expected StorageError ${code}, got ${String(caught)}`);
  assert.is((caught as StorageError).code, code, (caught as Error).message);
  if (message) assert.match((caught as Error).message, message);
}

/** Deterministic PRNG so a failing random offset can be reproduced from the seed printed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}
