// A Multi-Paxos node as an actor: locks the node's directory, opens and replays its Paxos log,
// starts a PaxosHost over the app and runs it on the worker — ticks from a real timer, frames from
// the rings, requests from the supervisor. Wiring only, like node-actor.ts for Raft: every
// decision about durability and reads is the PaxosHost's.
import { readdirSync } from 'node:fs';
import { retainedHeapBytes } from '../../runtime/retained-heap.ts';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { lockDir } from '../../runtime/storage/dir-lock.ts';
import { PaxosLog } from '../../runtime/storage/paxos-log.ts';
import { SnapshotStore, type SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';
import type { PaxosMessage } from '../../protocols/paxos/index.ts';
import { PaxosRole } from '../../protocols/paxos/index.ts';
import { Role } from '../../protocols/raft/index.ts';
import { createApp } from './node-start.ts';
import { defaultAppNames, loadApps } from '../platform/registry.ts';
import { PaxosHost, type PaxosNodeConfig } from './paxos-host.ts';
import { SnapshotKeeper } from './snapshot-keeper.ts';
import type { FromNode } from './protocol.ts';

/** A directory a Raft node wrote: its WAL segments. A Paxos node must not start over them (nor the reverse). */
function raftFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^wal-\d{16}\.log$/.test(n));
  } catch {
    return [];
  }
}

const createPaxosNode: ActorFactory = async (ctx: ActorContext): Promise<Actor> => {
  const startedAt = ctx.now();
  const cfg = ctx.config as unknown as PaxosNodeConfig;
  const apps = cfg.app === 'count' ? undefined : await loadApps(cfg.apps ?? defaultAppNames);
  const dir = ctx.storage.dir;
  if (cfg.storage === 'wal' && dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  const lock = cfg.storage === 'wal' ? lockDir(dir!, `concur node ${ctx.self}`) : null;
  let host: PaxosHost;
  let log: PaxosLog | null = null;
  let keeper: SnapshotKeeper | null = null;
  try {
    if (cfg.storage === 'wal') {
      const raft = raftFilesIn(dir!);
      if (raft.length > 0) {
        throw new Error(`${dir} holds a Raft node's files (${raft.slice(0, 3).join(', ')}${raft.length > 3 ? ', …' : ''}), not a Paxos log; start this data directory with --protocol raft, or use another --data-dir for multipaxos`);
      }
      log = PaxosLog.open({ dir: dir!, fsync: cfg.fsync });
      keeper = new SnapshotKeeper(SnapshotStore.open(dir!), ctx.self);
    }
    const app = createApp(cfg, apps);
    // The newest snapshot at or past the log's compaction point; without one, the node refuses to start.
    const startedFrom: SnapshotInfo | null = keeper?.load(app, log!.compactedThrough, (line) => ctx.emit({ type: 'warning', message: line })) ?? null;
    host = new PaxosHost({
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
      log,
      app,
      snapshots: keeper,
      startedFrom,
    });
  } catch (err) {
    try {
      log?.close();
    } finally {
      lock?.release();
    }
    throw err;
  }
  const st = host.node.status();
  ctx.emit({
    type: 'recovered',
    summary: host.recovery === null ? 'memory storage: started empty' : `${host.recovery.summary}; chosen through slot ${st.commit}`,
    entries: st.commit,
    dropped: host.recovery?.dropped ?? null,
    snapshotIndex: host.node.compactedThrough,
    ms: Math.round(ctx.now() - startedAt),
  });

  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    host.tick();
    ctx.setTimer(cfg.tickMs, tick);
  };
  ctx.setTimer(cfg.tickMs, tick);

  return {
    receive(from, message) {
      if (from === supervisorId) throw new Error(`node ${ctx.self}: the supervisor sends client frames, not messages`);
      else host.onMessage(from, message as PaxosMessage);
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
      membership: () => host.membershipStatus(),
      memory: () => ({ heapUsedBytes: retainedHeapBytes() }),
      read: (key: string) => host.readLocal(key),
      digest: () => host.digest(),
      benchStats: () => {
        const elu = performance.eventLoopUtilization();
        return {
          // In Raft's numbering (BenchCluster looks for Role.leader). Basic Paxos has no leader:
          // the lowest voter reports itself as one, so a benchmark sends its load to one proposer.
          role:
            cfg.paxosMode === 'basic'
              ? ctx.self === Math.min(...(cfg.voters ?? [ctx.self, ...ctx.peers]))
                ? Role.leader
                : Role.follower
              : host.node.currentRole === PaxosRole.leader
                ? Role.leader
                : host.node.currentRole === PaxosRole.candidate
                  ? Role.candidate
                  : Role.follower,
          appendsSent: host.accepts,
          entriesSent: host.valuesSent,
          proposalsAccepted: host.proposalsAccepted + host.sessions.proposalsAccepted,
          applied: host.applied,
          appliedCommands: host.commandsApplied,
          eluActiveMs: elu.active,
          eluIdleMs: elu.idle,
        };
      },
      pause: (ms: number) => {
        if (!(Number.isFinite(ms) && ms >= 0 && ms <= 60_000)) throw new RangeError(`pause must be 0 to 60000 ms, got ${ms}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
        return true;
      },
    },
  };
};

export default createPaxosNode;
