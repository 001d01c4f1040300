// The one door a node host uses to get its storage: `openStorage({ kind, ... })`, plus re-exports.
// It must stay a thin switch — no policy or format decisions live here.
import { openMemory } from './memory.ts';
import { StorageError } from './rules.ts';
import type { Storage, StorageOptions } from './types.ts';
import { openWal } from './wal.ts';

export type * from './types.ts';
export { fsyncPolicies } from './types.ts';
export { StorageError, parseFsyncPolicy, fsyncPolicyDefault } from './rules.ts';
export type { StorageErrorCode } from './rules.ts';
export { openWal, WalStorage, walDefaults, walFormatVersion, walRecordOffsets } from './wal.ts';
export { openMemory, MemoryStorage, createMemoryDisk } from './memory.ts';
export { nodeFs } from './fs.ts';
export type { FileSystem, FileStats, OpenFlags } from './fs.ts';
export { SimFs } from './sim-fs.ts';
export type { SimClock, SimFsOptions, SimRng } from './sim-fs.ts';

/** `{ kind: 'wal', dir, fsync, fs? }` for a node directory (fs: a SimFs in the simulator),
 * `{ kind: 'memory', disk?, fsync? }` for benchmarks and the simulator. Recovery runs here; call
 * `load()` on the result once. */
export function openStorage(options: StorageOptions): Storage {
  if (options === null || typeof options !== 'object') {
    throw new StorageError('BAD_OPTION', "openStorage expects { kind: 'wal' | 'memory', ... }");
  }
  const { kind, ...rest } = options;
  if (kind === 'wal') return openWal(rest as Omit<typeof options & { kind: 'wal' }, 'kind'>);
  if (kind === 'memory') return openMemory(rest as Omit<typeof options & { kind: 'memory' }, 'kind'>);
  throw new StorageError('BAD_OPTION', `storage kind must be "wal" or "memory", got ${JSON.stringify(kind)}`);
}
