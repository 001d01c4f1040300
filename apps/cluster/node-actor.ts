// A Raft node as an actor: locks the node's directory, starts a NodeHost from it (node-start.ts:
// storage, snapshot, state machine) and runs it on the worker — ticks from a real timer, frames
// from the rings, requests from the supervisor. Wiring only: every decision about durability,
// reads and snapshots is the NodeHost's.
import { retainedHeapBytes } from '../../runtime/retained-heap.ts';
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { lockDir } from '../../runtime/storage/dir-lock.ts';
import type { ConfChange, Message } from '../../protocols/raft/index.ts';
import type { NodeConfig } from './node-config.ts';
import type { FromNode } from './protocol.ts';
import { startNode, type StartedNode } from './node-start.ts';
import { defaultAppNames, loadApps } from '../platform/registry.ts';
import type { NodeDoor, NodeDoorOptions } from './node-door.ts';
import type { RespSettings } from '../resp/settings.ts';
import { frameKind, isClientAnswer } from './wire.ts';

export { compactEntriesDefault } from './node-host.ts';
export { nodeApps, type NodeApp, type NodeConfig } from './node-config.ts';

const createNode: ActorFactory = async (ctx: ActorContext): Promise<Actor> => {
  const startedAt = ctx.now();
  const cfg = ctx.config as unknown as NodeConfig;
  // The user's app modules load here, on the node's own worker (built-in apps are already here).
  const apps = cfg.app === 'count' ? undefined : await loadApps(cfg.apps ?? defaultAppNames);
  const dir = ctx.storage.dir;
  if (cfg.storage === 'wal' && dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  // A second process on this directory would overwrite what this node promised.
  const lock = cfg.storage === 'wal' ? lockDir(dir!, `concur node ${ctx.self}`) : null;
  // A configuration may name a peer this worker has not been told of yet (the supervisor tells
  // every worker of a new actor before the change is proposed, but waits for a busy one only so
  // long): frames to it are dropped, as the network may drop any frame.
  let peers = new Set(ctx.peers);
  // The node's own client port, if it has one: what its host sends this node goes to it.
  let door: NodeDoor | null = null;
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
        sendFrame: (to, frame) => {
          if (peers.has(to) || to === supervisorId) ctx.sendEncoded(to, frame);
          else if (to === ctx.self) door?.fromHost(frame);
        },
        publish: () => ctx.publish(),
        reply: (m: FromNode) => ctx.send(supervisorId, m),
        emit: (e) => ctx.emit(e),
      },
      warn: (line) => ctx.emit({ type: 'warning', message: line }),
      ...(apps !== undefined ? { apps } : {}),
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

  /** Starts the node's door with the given ports (none: a door for the leader port alone). Loaded only here: a node without one does not load the HTTP stack. */
  const startDoor = async (ports: Pick<NodeDoorOptions, 'api' | 'resp'>): Promise<NodeDoor> => {
    const { NodeDoor } = await import('./node-door.ts');
    return NodeDoor.start({
      self: ctx.self,
      host,
      peers: () => peers,
      sendToPeer: (to, frame) => {
        if (peers.has(to)) ctx.sendEncoded(to, frame);
      },
      ...ports,
      ...(apps !== undefined ? { apps } : {}),
    });
  };
  if (cfg.door !== undefined || cfg.respDoor !== undefined) {
    try {
      door = await startDoor({ ...(cfg.door !== undefined ? { api: cfg.door } : {}), ...(cfg.respDoor !== undefined ? { resp: cfg.respDoor } : {}) });
    } catch (err) {
      await host.stop();
      lock?.release();
      throw new Error(`node ${ctx.self}: ${(err as Error).message}`);
    }
  }
  let doorStarting: Promise<NodeDoor> | null = null;
  const doorForLeaderPort = (): Promise<NodeDoor> => {
    if (door !== null) return Promise.resolve(door);
    doorStarting ??= startDoor({}).then((d) => (door = d));
    return doorStarting;
  };

  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    host.tick();
    ctx.setTimer(cfg.tickMs, tick);
  };
  ctx.setTimer(cfg.tickMs, tick);

  return {
    receive(from, message) {
      // Clients (the supervisor's pipeline too) speak in frames (client-wire.ts), peers too but in tests.
      if (from === supervisorId) throw new Error(`node ${ctx.self}: the supervisor sends client frames, not messages`);
      host.onMessage(from, message as Message);
    },
    receiveFrame(from, bytes, start, end) {
      // A leader's answers to this node's door (its pipeline is a client of the leader).
      if (door !== null && isClientAnswer(frameKind(bytes, start, end))) door.fromPeer(from, bytes, start, end);
      else host.onFrame(from, bytes, start, end);
    },
    beforeBatch() {
      host.beforeBatch();
    },
    idle() {
      host.process();
    },
    onPeersChanged(now) {
      peers = new Set(now);
    },
    async stop() {
      stopped = true;
      await door?.close();
      await host.stop();
      lock?.release();
    },
    control: {
      status: () => host.status(),
      campaign: () => host.campaign(),
      transferLeadership: (to: number) => host.transferLeadership(to),
      /** Proposes a configuration change on this node (the leader); resolves once it is applied here, or refused. */
      changeMembership: (cc: ConfChange) => host.changeMembership(cc),
      membership: () => host.membershipStatus(),
      /** This worker's V8 heap after a full collection (each worker has a heap of its own): to compare what nodes keep. */
      memory: () => ({ heapUsedBytes: retainedHeapBytes() }),
      read: (key: string) => host.readLocal(key),
      digest: () => host.digest(),
      snapshot: () => host.snapshotNow(),
      /** Listens on the cluster's Redis port (`--resp-door leader`, leader-port.ts) over this node's door. */
      takeLeaderPort: async (settings: Partial<RespSettings>) => {
        if (stopped) throw new Error(`node ${ctx.self} is stopping`);
        return (await doorForLeaderPort()).takeLeaderPort(settings);
      },
      /** Stops listening on the cluster's Redis port; the connections taken stay. */
      releaseLeaderPort: () => door?.releaseLeaderPort(),
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
