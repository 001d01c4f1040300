// An in-memory store with the WAL's semantics (truncate on conflict, gap refusal, sync policy,
// compaction with its term, reset to a snapshot point), for benchmarks, tests and the simulator.
// A MemoryDisk stands in for the directory: writes reach it on sync() (or every call under
// `always`), so dropping a store without close() loses exactly the unsynced writes, as a crash
// would. Synced entries live in an EntryArena (columns, not objects: the GC never sees them).
// It must never inspect entry data.
import {
  StorageError,
  checkAppendAt,
  checkEntries,
  checkHardState,
  checkOptionNames,
  copyHardState,
  emptyHardState,
  fsyncPolicyDefault,
  parseFsyncPolicy,
  checkCompactIndex,
  checkCompactTerm,
  checkPointTerm,
  checkResetPoint,
  TermRuns,
} from './rules.ts';
import { EntryArena } from './entry-arena.ts';
import type { FsyncPolicy, HardState, LogEntry, MemoryDisk, MemoryOptions, Recovered, Storage, StorageStats } from './types.ts';

export function createMemoryDisk(): MemoryDisk {
  return { kind: 'memory-disk', hardState: emptyHardState(), log: new EntryArena(1), compactedIndex: 0, compactedTerm: 0 };
}

type Op =
  | { t: 'entries'; entries: readonly LogEntry[] }
  | { t: 'truncate'; from: number }
  | { t: 'hard'; hs: HardState }
  | { t: 'compact'; upTo: number; term: number }
  | { t: 'reset'; index: number; term: number };

/** What reaches the disk on sync: the entries' data are copied into its arena here. */
function applyToDisk(disk: MemoryDisk, op: Op): void {
  switch (op.t) {
    case 'entries':
      for (const e of op.entries) disk.log.push(e);
      break;
    case 'truncate':
      disk.log.truncateFrom(op.from);
      break;
    case 'hard':
      disk.hardState = op.hs;
      break;
    case 'compact':
      // Dropping compacted entries is the memory analogue of deleting segments.
      disk.log.dropThrough(op.upTo);
      if (op.upTo > disk.compactedIndex) {
        disk.compactedIndex = op.upTo;
        disk.compactedTerm = op.term;
      }
      break;
    case 'reset':
      // A fresh arena rather than dropping in place: the old log may end above or below index.
      disk.log = new EntryArena(op.index + 1);
      disk.compactedIndex = op.index;
      disk.compactedTerm = op.term;
      break;
  }
}

const memoryOptionNames = ['disk', 'fsync', 'keepEntries'] as const;

export function openMemory(options: MemoryOptions = {}): MemoryStorage {
  if (options === null || typeof options !== 'object') {
    throw new StorageError('BAD_OPTION', 'openMemory expects options { disk?, fsync?, keepEntries? }');
  }
  checkOptionNames(options, memoryOptionNames, 'memory store');
  const policy = parseFsyncPolicy(options.fsync ?? fsyncPolicyDefault);
  if (options.disk !== undefined && (options.disk === null || options.disk.kind !== 'memory-disk')) {
    throw new StorageError('BAD_OPTION', 'disk must come from createMemoryDisk()');
  }
  const keepEntries = options.keepEntries ?? true;
  if (typeof keepEntries !== 'boolean') throw new StorageError('BAD_OPTION', `keepEntries must be true or false, got ${JSON.stringify(keepEntries)}`);
  if (!keepEntries && options.disk !== undefined) {
    throw new StorageError('BAD_OPTION', 'keepEntries: false cannot be combined with disk: a store that discards entry data can never be reopened; drop one of the two');
  }
  return new MemoryStorage(options.disk ?? createMemoryDisk(), policy, keepEntries);
}

export class MemoryStorage implements Storage {
  readonly policy: FsyncPolicy;
  private readonly disk: MemoryDisk;
  /** The store as its caller sees it, unsynced writes included: positions and terms, no entries. */
  private readonly view: { hardState: HardState; lastIndex: number; compactedIndex: number; compactedTerm: number };
  private readonly terms: TermRuns;
  private pending: Op[] = [];
  private recovered: Recovered | null;
  private closed = false;
  private readonly counters: StorageStats = { writeCalls: 0, bytesWritten: 0, fsyncs: 0, segments: 1 };

  constructor(
    disk: MemoryDisk,
    policy: FsyncPolicy,
    private readonly keepEntries = true,
  ) {
    this.disk = disk;
    this.policy = policy;
    const lastIndex = disk.log.lastIndex;
    this.view = { hardState: disk.hardState, lastIndex, compactedIndex: disk.compactedIndex, compactedTerm: disk.compactedTerm };
    const entries = disk.log.slice(disk.log.firstIndex, lastIndex + 1);
    this.terms = new TermRuns(disk.log.firstIndex);
    this.terms.append(entries);
    const hs = disk.hardState;
    const point = disk.compactedIndex > 0 ? `, compacted through ${disk.compactedIndex} (term ${disk.compactedTerm})` : '';
    this.recovered = {
      hardState: copyHardState(hs),
      entries,
      compactedIndex: disk.compactedIndex,
      compactedTerm: disk.compactedTerm,
      report: {
        source: 'memory',
        segmentsRead: 0,
        recordsReplayed: 0,
        bytesReplayed: 0,
        entriesRecovered: entries.length,
        dropped: null,
        summary: `memory store: ${entries.length} entries (last index ${lastIndex}${point}), term ${hs.term}, vote ${hs.vote}, commit ${hs.commit}; clean`,
      },
    };
  }

  get lastIndex(): number {
    return this.view.lastIndex;
  }
  get firstIndex(): number {
    return this.view.compactedIndex + 1;
  }
  get compactedTerm(): number {
    return this.view.compactedTerm;
  }
  get hardState(): HardState {
    return this.view.hardState;
  }
  stats(): StorageStats {
    return { ...this.counters };
  }

  load(): Recovered {
    this.usable();
    if (this.recovered === null) {
      throw new StorageError('ALREADY_LOADED', 'load() was already called on this memory store; it hands the recovered log over once — keep what it returned');
    }
    const out = this.recovered;
    this.recovered = null;
    return out;
  }

  append(entries: readonly LogEntry[]): void {
    this.usable();
    checkEntries(entries);
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    checkAppendAt(first, this.lastIndex, this.view.compactedIndex);
    // The caller may reuse its array; the entry objects and their data are kept as given.
    if (first <= this.lastIndex) this.write({ t: 'truncate', from: first });
    this.write({ t: 'entries', entries: entries.slice() });
    this.terms.append(entries);
    this.afterWriteCall();
  }

  setHardState(hardState: HardState): void {
    this.usable();
    checkHardState(hardState);
    this.write({ t: 'hard', hs: copyHardState(hardState) });
    this.afterWriteCall();
  }

  sync(): void {
    this.usable();
    this.flush();
  }

  compact(upToIndex: number, term: number): void {
    this.usable();
    checkCompactIndex(upToIndex, this.lastIndex);
    checkPointTerm(`compact(${upToIndex})`, term);
    const v = this.view;
    if (upToIndex === v.compactedIndex) checkCompactTerm(upToIndex, term, v.compactedTerm);
    if (upToIndex <= v.compactedIndex) return;
    checkCompactTerm(upToIndex, term, this.terms.termAt(upToIndex));
    this.write({ t: 'compact', upTo: upToIndex, term });
    this.terms.dropThrough(upToIndex);
    this.flush();
  }

  resetTo(index: number, term: number): void {
    this.usable();
    checkResetPoint(index, term, this.view.compactedIndex, this.view.compactedTerm);
    this.write({ t: 'reset', index, term });
    this.terms.reset(index + 1);
    this.afterWriteCall();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  /** Stops as a killed process would: unsynced writes never reach the disk. */
  crash(): void {
    this.pending = [];
    this.closed = true;
  }

  private write(op: Op): void {
    const v = this.view;
    switch (op.t) {
      case 'entries':
        v.lastIndex = op.entries[op.entries.length - 1]!.index;
        break;
      case 'truncate':
        v.lastIndex = op.from - 1;
        break;
      case 'hard':
        v.hardState = op.hs;
        break;
      case 'compact':
        if (op.upTo > v.compactedIndex) {
          v.compactedIndex = op.upTo;
          v.compactedTerm = op.term;
        }
        break;
      case 'reset':
        v.lastIndex = v.compactedIndex = op.index;
        v.compactedTerm = op.term;
        break;
    }
    this.pending.push(op);
  }

  private afterWriteCall(): void {
    if (this.policy === 'always') this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    for (const op of this.pending) if (this.keepEntries || op.t === 'hard') applyToDisk(this.disk, op);
    this.pending = [];
    this.counters.writeCalls++;
    if (this.policy !== 'never') this.counters.fsyncs++;
  }

  private usable(): void {
    if (this.closed) throw new StorageError('CLOSED', 'memory store is closed; open it again on the same disk to use it');
  }
}
