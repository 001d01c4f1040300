// A Raft node as an actor: locks the node's directory, starts a NodeHost from it (node-start.ts:
// storage, snapshot, state machine) and runs it on the worker — ticks from a real timer, frames
// from the rings, requests from the supervisor. Wiring only: every decision about durability,
// reads and snapshots is the NodeHost's.
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { lockDir } from '../../runtime/storage/dir-lock.ts';
import type { Message } from '../../protocols/raft/index.ts';
import type { NodeConfig } from './node-config.ts';
import type { FromNode, ToNode } from './protocol.ts';
import { startNode, type StartedNode } from './node-start.ts';

export { compactEntriesDefault } from './node-host.ts';
export { nodeApps, type NodeApp, type NodeConfig } from './node-config.ts';

const createNode: ActorFactory = (ctx: ActorContext): Actor => {
  const startedAt = ctx.now();
  const cfg = ctx.config as unknown as NodeConfig;
  const dir = ctx.storage.dir;
  if (cfg.storage === 'wal' && dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  // A second process on this directory would overwrite what this node promised.
  const lock = cfg.storage === 'wal' ? lockDir(dir!, `concur node ${ctx.self}`) : null;
  let started: StartedNode;
  try {
    started = startNode({
      self: ctx.self,
      peers: ctx.peers,
      incarnation: ctx.incarnation,
      config: cfg,
      dir: cfg.storage === 'wal' ? dir : null,
      io: {
        now: () => ctx.now(),
        sendFrame: (to, frame) => ctx.sendEncoded(to, frame),
        reply: (m: FromNode) => ctx.send(supervisorId, m),
        emit: (e) => ctx.emit(e),
      },
      warn: (line) => ctx.emit({ type: 'warning', message: line }),
    });
  } catch (err) {
    lock?.release();
    throw err;
  }
  const { host, recovered, startedFrom } = started;
  const r = recovered.report;
  ctx.emit({
    type: 'recovered',
    summary: startedFrom === null ? r.summary : `${r.summary}; state from snapshot ${startedFrom.name} (${startedFrom.fileBytes} bytes)`,
    entries: r.entriesRecovered,
    dropped: r.dropped,
    snapshotIndex: startedFrom?.index ?? 0,
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
