// A Multi-Paxos node as an actor: locks the node's directory, opens and replays its Paxos log,
// starts a PaxosHost over the app and runs it on the worker — ticks from a real timer, frames from
// the rings, requests from the supervisor. Wiring only, like node-actor.ts for Raft: every
// decision about durability and reads is the PaxosHost's.
import { readdirSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { lockDir } from '../../runtime/storage/dir-lock.ts';
import { PaxosLog } from '../../runtime/storage/paxos-log.ts';
import type { PaxosMessage } from '../../protocols/paxos/index.ts';
import { createApp } from './node-start.ts';
import { PaxosHost, type PaxosNodeConfig } from './paxos-host.ts';
import type { FromNode, ToNode } from './protocol.ts';

/** A directory a Raft node wrote: its WAL segments. A Paxos node must not start over them (nor the reverse). */
function raftFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^wal-\d{16}\.log$/.test(n) || n.startsWith('snap-'));
  } catch {
    return [];
  }
}

const createPaxosNode: ActorFactory = (ctx: ActorContext): Actor => {
  const startedAt = ctx.now();
  const cfg = ctx.config as unknown as PaxosNodeConfig;
  const dir = ctx.storage.dir;
  if (cfg.storage === 'wal' && dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  const lock = cfg.storage === 'wal' ? lockDir(dir!, `concur node ${ctx.self}`) : null;
  let host: PaxosHost;
  let log: PaxosLog | null = null;
  try {
    if (cfg.storage === 'wal') {
      const raft = raftFilesIn(dir!);
      if (raft.length > 0) {
        throw new Error(`${dir} holds a Raft node's files (${raft.slice(0, 3).join(', ')}${raft.length > 3 ? ', …' : ''}), not a Paxos log; start this data directory with --protocol raft, or use another --data-dir for multipaxos`);
      }
      log = PaxosLog.open({ dir: dir!, fsync: cfg.fsync });
    }
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
      app: createApp(cfg),
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
    snapshotIndex: 0,
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
      if (from === supervisorId) host.onClientRequest(message as ToNode);
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
      memory: () => ({ heapUsedBytes: getHeapStatistics().used_heap_size }),
      read: (key: string) => host.readLocal(key),
      digest: () => host.digest(),
      benchStats: () => {
        const elu = performance.eventLoopUtilization();
        return {
          role: host.node.currentRole,
          appendsSent: host.accepts,
          entriesSent: host.valuesSent,
          proposalsAccepted: host.proposalsAccepted,
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
