// Starting one node host from what its directory holds: open the storage (recovering the WAL),
// choose the snapshot to start from and restore the state machine, build the NodeHost. Shared by
// the worker actor and the simulator, so a simulated node starts exactly as a real one does.
import { openStorage, type Recovered, type Storage } from '../../runtime/storage/index.ts';
import type { FileSystem } from '../../runtime/storage/fs.ts';
import { SnapshotStore, type SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';
import { CountStateMachine } from '../count/state-machine.ts';
import type { App } from '../platform/app.ts';
import { builtinAppsNamed, defaultAppNames } from '../platform/registry.ts';
import { AppRouter } from '../platform/router.ts';
import type { StateMachine } from '../state-machine.ts';
import type { NodeConfig } from './node-config.ts';
import { NodeHost, type NodeIO, type NodeObserver } from './node-host.ts';
import { SnapshotKeeper } from './snapshot-keeper.ts';

export interface NodeStartOptions {
  self: number;
  peers: readonly number[];
  incarnation: number;
  config: NodeConfig;
  io: NodeIO;
  /** The node's own directory (WAL storage); null for memory storage. */
  dir: string | null;
  /** The file system the directory lives on (default: the real one). */
  fs?: FileSystem;
  observer?: NodeObserver;
  /** The simulator: snapshots are written inline and reported durable through this. */
  snapshotSchedule?: (done: () => void) => void;
  /** A warning for a person (e.g. a damaged snapshot skipped). */
  warn(line: string): void;
  /** The apps, resolved (loadApps); default: the built-in apps `config.apps` names. */
  apps?: readonly App[];
}

export interface StartedNode {
  host: NodeHost;
  store: Storage;
  recovered: Recovered;
  /** The snapshot the state machine was restored from, or null. */
  startedFrom: SnapshotInfo | null;
}

/** The node's state machine: the apps on one log (router), or the bare counter benchmarks use. */
export function createApp(cfg: NodeConfig, apps?: readonly App[]): StateMachine {
  if (cfg.app === 'count') return new CountStateMachine();
  return new AppRouter(apps ?? builtinAppsNamed(cfg.apps ?? defaultAppNames));
}

/**
 * Opens, recovers and starts. Throws what stops the node from starting (a corrupt WAL, no usable
 * snapshot, a bad option), after closing what it opened.
 */
export function startNode(o: NodeStartOptions): StartedNode {
  const cfg = o.config;
  let store: Storage;
  let keeper: SnapshotKeeper | null = null;
  if (cfg.storage === 'memory') {
    // A memory store dies with this node and DurableLog keeps the log in memory anyway: one copy
    // of every entry, not two (keepEntries: false).
    store = openStorage({ kind: 'memory', fsync: cfg.fsync, keepEntries: false });
  } else {
    if (o.dir === null) throw new Error(`node ${o.self}: WAL storage needs a data directory`);
    store = openStorage({
      kind: 'wal',
      dir: o.dir,
      fsync: cfg.fsync,
      ...(o.fs !== undefined ? { fs: o.fs } : {}),
      ...(cfg.walSegmentBytesMax !== undefined ? { segmentBytesMax: cfg.walSegmentBytesMax } : {}),
    });
  }
  try {
    const recovered = store.load();
    if (cfg.storage === 'wal') {
      const snapshots = SnapshotStore.open(o.dir!, o.fs);
      keeper = new SnapshotKeeper(snapshots, o.self, o.snapshotSchedule ? { schedule: o.snapshotSchedule } : null);
    }
    const app = createApp(cfg, o.apps);
    const startedFrom = keeper?.load(app, recovered.compactedIndex, o.warn) ?? null;
    const host = new NodeHost({
      self: o.self,
      peers: o.peers,
      incarnation: o.incarnation,
      config: cfg,
      io: o.io,
      store,
      recovered,
      app,
      snapshots: keeper,
      startedFrom,
      ...(o.observer ? { observer: o.observer } : {}),
    });
    return { host, store, recovered, startedFrom };
  } catch (err) {
    store.close();
    throw err;
  }
}
