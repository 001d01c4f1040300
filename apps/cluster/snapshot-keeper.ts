// A node's own snapshots: when to take one, writing it in the background (the image is captured
// at once, serialized piece by piece while apply and replication go on), which one to start from
// after a restart, and how many to keep. It never cuts the log itself (the node host does, after
// a snapshot is durable) and never keeps fewer than the two newest snapshots.
import type { SnapshotImage, StateMachine } from '../state-machine.ts';
import type { SnapshotInfo, SnapshotMeta, SnapshotStore } from '../../runtime/storage/snapshot-store.ts';

export interface SnapshotSettings {
  /** Snapshot once this many entries were applied since the last one (0: never). */
  entries: number;
  /** ...or once the commands applied since the last one reach this many bytes (0: no byte trigger). */
  bytes: number;
  /** Entries every node keeps below its snapshot, so a follower that lags a little catches up from the log. */
  catchUpEntries: number;
  /** The most entries a leader keeps below its snapshot for a slow but live follower. */
  retainEntriesMax: number;
}

export const snapshotSettingsDefault: Readonly<SnapshotSettings> = Object.freeze({
  entries: 10_000,
  bytes: 64 * 1024 * 1024,
  catchUpEntries: 5_000,
  retainEntriesMax: 50_000,
});

/** Refuses settings that cannot work, naming the setting and what is accepted. */
export function checkSnapshotSettings(s: SnapshotSettings): void {
  for (const name of ['entries', 'bytes', 'catchUpEntries', 'retainEntriesMax'] as const) {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`snapshot ${name} must be a whole number ≥ 0, got ${String(v)}`);
  }
  if (s.retainEntriesMax < s.catchUpEntries) {
    throw new RangeError(`snapshot retainEntriesMax (${s.retainEntriesMax}) must be at least catchUpEntries (${s.catchUpEntries})`);
  }
}

/** The node cannot start from what is on disk; the message says what is wrong and what to do. */
export class NodeStartError extends Error {
  override name = 'NodeStartError';
}

/**
 * A snapshot without an image: a witness's, which only bounds its log (apps always write at least
 * a header, so an empty image is never an app's).
 */
export function isImageless(info: Pick<SnapshotInfo, 'dataBytes'>): boolean {
  return info.dataBytes === 0;
}

/** The image of an imageless snapshot at `index`. */
export function noImage(index: number): SnapshotImage {
  return { index, next: () => null };
}

/**
 * Feeds a snapshot file's image into `app` (whose state is replaced only if all of it is good).
 * An imageless snapshot leaves `app` as it is: only a witness, whose app stays empty, has one.
 */
export function restoreFromFile(app: StateMachine, store: SnapshotStore, info: SnapshotInfo): void {
  if (isImageless(info)) return;
  const restore = app.restore();
  const data = store.openData(info.name);
  try {
    for (let piece = data.next(); piece !== null; piece = data.next()) restore.write(piece);
  } finally {
    data.close();
  }
  restore.finish();
}

export class SnapshotKeeper {
  /** The snapshot the log is based on (the newest adopted), and the one before it. */
  current: SnapshotInfo | null = null;
  previous: SnapshotInfo | null = null;
  /** Snapshot files on disk that this keeper knows of (listed at start, or adopted since), newest first. */
  private files: SnapshotInfo[] = [];
  private inProgress: Promise<unknown> | null = null;
  /** Counters and the last failure, for status. */
  taken = 0;
  failures = 0;
  lastError: string | null = null;
  lastDurationMs = 0;

  constructor(
    readonly store: SnapshotStore,
    private readonly node: number,
    /**
     * Write snapshots inline (synchronously, in one go) and report them durable through
     * `schedule` instead of in the background: for the simulator, whose single thread never
     * yields to promise continuations. Null on real disks.
     */
    private readonly inline: { schedule(done: () => void): void } | null = null,
  ) {}

  get writing(): boolean {
    return this.inProgress !== null;
  }

  /**
   * Chooses the newest snapshot the log continues from (its index at or past the log's compaction
   * point) and restores `app` from it. A damaged one is skipped — reported through `warn` — as
   * long as an older one still meets the log; when none does and the log was compacted, the node
   * cannot rebuild its state and refuses to start. Returns null for a log that starts at 1
   * without a usable snapshot.
   */
  load(app: StateMachine, compactedIndex: number, warn: (line: string) => void): SnapshotInfo | null {
    const all = this.store.list();
    this.files = all;
    const damaged: string[] = [];
    for (let i = 0; i < all.length; i++) {
      const listed = all[i]!;
      if (listed.index < compactedIndex) break; // this one and every older one leave a gap
      const checked = this.store.verify(listed.name);
      if (!checked.ok) {
        damaged.push(`${listed.name} (${checked.detail})`);
        continue;
      }
      try {
        restoreFromFile(app, this.store, checked.info);
      } catch (err) {
        throw new NodeStartError(
          `node ${this.node}: snapshot ${listed.name} in ${this.store.dir} passed its checksums but the state machine refuses it (${(err as Error).message}); ` +
            `was the cluster started with another app? Start it with the app that wrote it`,
        );
      }
      for (const d of damaged) warn(`node ${this.node}: skipped damaged snapshot ${d}; started from the older ${listed.name}`);
      this.current = checked.info;
      this.previous = all[i + 1] ?? null;
      // A crash between writing a snapshot and adopting it leaves one more file than we keep.
      if (damaged.length === 0) this.prune(new Set());
      return checked.info;
    }
    if (compactedIndex > 0) {
      const why = damaged.length > 0 ? `every snapshot that covers it is damaged: ${damaged.join('; ')}` : 'no snapshot file covers it';
      throw new NodeStartError(
        `node ${this.node}: its log in ${this.store.dir} starts after index ${compactedIndex}, and ${why}. The node cannot rebuild its state. ` +
          `Move the directory aside (keep it for inspection) and start this node with an empty directory so it catches up from the leader; ` +
          `that is safe only while the other nodes are healthy, because the node forgets its votes`,
      );
    }
    for (const d of damaged) warn(`node ${this.node}: skipped damaged snapshot ${d}; replaying the whole log instead`);
    return null;
  }

  /**
   * Writes `image` (captured by the caller at `meta.index`) to a snapshot file in the background.
   * Resolves with the file's info once it is durable (renamed and synced), then `onDurable` runs;
   * a failure is counted and reported, never thrown at the caller (the log just grows until the
   * next try).
   */
  write(image: SnapshotImage, meta: SnapshotMeta, now: () => number, onDurable: (info: SnapshotInfo) => void, onError: (err: Error) => void): void {
    if (this.inProgress !== null) throw new Error(`node ${this.node}: a snapshot is already being written`);
    const started = now();
    if (this.inline !== null) {
      this.writeInline(image, meta, now, started, onDurable, onError);
      return;
    }
    const writer = this.store.createWriter(meta);
    const run = async (): Promise<void> => {
      try {
        // Each piece is serialized here, between awaits: apply and replication run in the gaps.
        for (let piece = image.next(); piece !== null; piece = image.next()) await writer.write(piece);
        const info = await writer.commit();
        this.taken++;
        this.lastDurationMs = now() - started;
        this.inProgress = null;
        onDurable(info);
      } catch (err) {
        this.inProgress = null;
        this.failures++;
        this.lastError = (err as Error).message;
        await writer.abort().catch(() => undefined);
        onError(err as Error);
      }
    };
    this.inProgress = run();
  }

  private writeInline(image: SnapshotImage, meta: SnapshotMeta, now: () => number, started: number, onDurable: (info: SnapshotInfo) => void, onError: (err: Error) => void): void {
    let info: SnapshotInfo;
    try {
      info = this.store.writeNow(meta, image);
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
      onError(err as Error);
      return;
    }
    // Written and durable now; the host hears of it a moment later, as from a background write.
    let settled!: () => void;
    this.inProgress = new Promise<void>((r) => (settled = r));
    this.inline!.schedule(() => {
      this.taken++;
      this.lastDurationMs = now() - started;
      this.inProgress = null;
      settled();
      onDurable(info);
    });
  }

  /** Waits for a snapshot being written (at stop). */
  async settle(): Promise<void> {
    await this.inProgress;
  }

  /**
   * `info` is durable and the log is now based on it: keep it and the one before, drop older
   * ones — except files named in `inUse` (being streamed to a follower).
   */
  adopt(info: SnapshotInfo, inUse: ReadonlySet<string> = new Set()): void {
    if (this.current !== null && this.current.name !== info.name) this.previous = this.current;
    this.current = info;
    this.files = [info, ...this.files.filter((f) => f.name !== info.name)].sort((a, b) => b.index - a.index || b.term - a.term);
    this.prune(inUse);
  }

  /**
   * Deletes snapshot files other than the two newest and those in `inUse`. From what it knows,
   * not a directory listing: this runs after every snapshot (and a listing reads every header).
   */
  prune(inUse: ReadonlySet<string>): void {
    const keep = new Set([this.current?.name, this.previous?.name, ...inUse]);
    const kept: SnapshotInfo[] = [];
    this.files.forEach((f, i) => {
      if (i < 2 || keep.has(f.name)) kept.push(f);
      else this.store.remove(f.name);
    });
    this.files = kept;
  }
}
