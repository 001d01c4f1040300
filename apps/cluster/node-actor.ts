// A Raft node as an actor: opens the node's storage (locking its directory), restores its state
// machine from the newest usable snapshot, and runs a NodeHost on the worker — ticks from a real
// timer, frames from the rings, requests from the supervisor. Wiring only: every decision about
// durability, reads and snapshots is the NodeHost's.
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { lockDir, type DirLock } from '../../runtime/storage/dir-lock.ts';
import { openStorage, type Storage } from '../../runtime/storage/index.ts';
import { SnapshotStore } from '../../runtime/storage/snapshot-store.ts';
import type { Message } from '../../protocols/raft/index.ts';
import { CountStateMachine } from '../count/state-machine.ts';
import { KvApp } from '../kv/app.ts';
import type { StateMachine } from '../state-machine.ts';
import type { NodeConfig } from './node-config.ts';
import { NodeHost } from './node-host.ts';
import type { FromNode, ToNode } from './protocol.ts';
import { SnapshotKeeper } from './snapshot-keeper.ts';

export { compactEntriesDefault } from './node-host.ts';
export { nodeApps, type NodeApp, type NodeConfig } from './node-config.ts';

interface Opened {
  store: Storage;
  lock: DirLock | null;
  keeper: SnapshotKeeper | null;
}

/** The node's storage: a locked directory with its WAL and snapshots, or memory (nothing survives). */
function openNodeStorage(ctx: ActorContext, cfg: NodeConfig): Opened {
  if (cfg.storage === 'memory') {
    // A memory store dies with this worker and DurableLog keeps the log in memory anyway: one
    // copy of every entry, not two (keepEntries: false).
    return { store: openStorage({ kind: 'memory', fsync: cfg.fsync, keepEntries: false }), lock: null, keeper: null };
  }
  const dir = ctx.storage.dir;
  if (dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  const lock = lockDir(dir, `concur node ${ctx.self}`);
  try {
    const store = openStorage({ kind: 'wal', dir, fsync: cfg.fsync, ...(cfg.walSegmentBytesMax !== undefined ? { segmentBytesMax: cfg.walSegmentBytesMax } : {}) });
    return { store, lock, keeper: new SnapshotKeeper(SnapshotStore.open(dir), ctx.self) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

const createNode: ActorFactory = (ctx: ActorContext): Actor => {
  const startedAt = ctx.now();
  const cfg = ctx.config as unknown as NodeConfig;
  const { store, lock, keeper } = openNodeStorage(ctx, cfg);
  let host: NodeHost;
  try {
    const recovered = store.load();
    const app: StateMachine = cfg.app === 'count' ? new CountStateMachine() : new KvApp();
    const startedFrom = keeper?.load(app, recovered.compactedIndex, (line) => ctx.emit({ type: 'warning', message: line })) ?? null;
    host = new NodeHost({
      self: ctx.self,
      peers: ctx.peers,
      incarnation: ctx.incarnation,
      config: cfg,
      io: {
        now: () => ctx.now(),
        sendFrame: (to, frame) => ctx.sendEncoded(to, frame),
        reply: (m: FromNode) => ctx.send(supervisorId, m),
        emit: (e) => ctx.emit(e),
      },
      store,
      recovered,
      app,
      snapshots: keeper,
      startedFrom,
    });
    const r = recovered.report;
    ctx.emit({
      type: 'recovered',
      summary: startedFrom === null ? r.summary : `${r.summary}; state from snapshot ${startedFrom.name} (${startedFrom.fileBytes} bytes)`,
      entries: r.entriesRecovered,
      dropped: r.dropped,
      snapshotIndex: startedFrom?.index ?? 0,
      ms: Math.round(ctx.now() - startedAt),
    });
  } catch (err) {
    store.close();
    lock?.release();
    throw err;
  }

  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    host.tick();
    ctx.setTimer(cfg.tickMs, tick);
  };
  ctx.setTimer(cfg.tickMs, tick);

  return {
    receive(from, message) {
      if (from === supervisorId) host.onClientRequest(message as ToNode);
      else host.onMessage(from, message as Message);
    },
    receiveFrame(from, bytes, start, end) {
      host.onFrame(from, bytes, start, end);
    },
    beforeBatch() {
      host.beforeBatch();
    },
    idle() {
      host.process();
    },
    async stop() {
      stopped = true;
      await host.stop();
      lock?.release();
    },
    control: {
      status: () => host.status(),
      campaign: () => host.campaign(),
      transferLeadership: (to: number) => host.transferLeadership(to),
      read: (key: string) => host.readLocal(key),
      digest: () => host.digest(),
      snapshot: () => host.snapshotNow(),
      /** Counters for `concur bench raft`: cumulative since start; the caller takes differences. */
      benchStats: () => {
        const elu = performance.eventLoopUtilization();
        return {
          role: host.raft.currentRole,
          appendsSent: host.appendsSent,
          entriesSent: host.entriesSent,
          proposalsAccepted: host.proposalsAccepted,
          applied: host.applied,
          appliedCommands: host.appliedCommands,
          eluActiveMs: elu.active,
          eluIdleMs: elu.idle,
        };
      },
      /** Stalls this node's thread for `ms`, as a GC pause or SIGSTOP would: nothing runs. */
      pause: (ms: number) => {
        if (!(Number.isFinite(ms) && ms >= 0 && ms <= 60_000)) throw new RangeError(`pause must be 0 to 60000 ms, got ${ms}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
        return true;
      },
    },
  };
};

export default createNode;
