// Micro benchmark of runtime/storage: entries/s for 64-byte entries written as ready batches
// (append + sync) of 1, 64 and 512 under each fsync policy, WAL on the temp disk and memory.
// Usage: node --import tsx bench/storage.ts [--seconds 1] [--bytes 64] [--dir /some/disk/path]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openMemory } from '../runtime/storage/memory.ts';
import type { FsyncPolicy, LogEntry, Storage } from '../runtime/storage/types.ts';
import { openWal } from '../runtime/storage/wal.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const secondsPerCell = Number(arg('seconds', '1'));
const entryBytes = Number(arg('bytes', '64'));
const baseDir = arg('dir', os.tmpdir());
const batchSizes = [1, 64, 512];
const policies: FsyncPolicy[] = ['never', 'batch', 'always'];
/** Bounds a cell so a fast store does not fill the disk: 64 B × 4 M entries ≈ 320 MB of WAL. */
const entriesPerCellMax = 4_000_000;

const payload = new Uint8Array(entryBytes).fill(0x5a);

function run(open: () => Storage, batch: number): { entriesPerS: number; fsyncsPerS: number; mibPerS: number } {
  const s = open();
  s.load();
  // Warm-up so JIT and the buffer growth are not billed to the first cell.
  let index = 1;
  const entries: LogEntry[] = new Array(batch);
  const deadline = performance.now() + secondsPerCell * 1000;
  const warmEnd = performance.now() + 100;
  while (performance.now() < warmEnd) {
    for (let i = 0; i < batch; i++) entries[i] = { index: index + i, term: 1, kind: 0, data: payload };
    s.append(entries);
    s.sync();
    index += batch;
  }
  const before = s.stats();
  const firstIndex = index;
  const t0 = performance.now();
  while (performance.now() < deadline && index - firstIndex < entriesPerCellMax) {
    for (let i = 0; i < batch; i++) entries[i] = { index: index + i, term: 1, kind: 0, data: payload };
    s.append(entries);
    s.sync();
    index += batch;
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = s.stats();
  s.close();
  return {
    entriesPerS: (index - firstIndex) / seconds,
    fsyncsPerS: (after.fsyncs - before.fsyncs) / seconds,
    mibPerS: (after.bytesWritten - before.bytesWritten) / seconds / 2 ** 20,
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(11);
console.log(`storage bench: ${entryBytes}-byte entries, append + sync per batch, ${secondsPerCell} s per cell, WAL under ${baseDir}`);
console.log(`${'store'.padEnd(8)}${'fsync'.padEnd(8)}${'batch'.padStart(6)}${'entries/s'.padStart(12)}${'fsyncs/s'.padStart(11)}${'MiB/s'.padStart(9)}`);
for (const policy of policies) {
  for (const batch of batchSizes) {
    const dir = fs.mkdtempSync(path.join(baseDir, 'concur-bench-storage-'));
    try {
      const r = run(() => openWal({ dir, fsync: policy }), batch);
      console.log(`${'wal'.padEnd(8)}${policy.padEnd(8)}${String(batch).padStart(6)} ${fmt(r.entriesPerS)}${fmt(r.fsyncsPerS).slice(1)}${r.mibPerS.toFixed(1).padStart(9)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
for (const batch of batchSizes) {
  const r = run(() => openMemory({ fsync: 'batch' }), batch);
  console.log(`${'memory'.padEnd(8)}${'batch'.padEnd(8)}${String(batch).padStart(6)} ${fmt(r.entriesPerS)}${'-'.padStart(10)}${'-'.padStart(9)}`);
}
