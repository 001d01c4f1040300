// A node's own client ports (`concur start --client-ports`, `--resp-client-ports`): the HTTP API
// and the Redis protocol served on the node's worker, as each etcd member serves its clients; and
// the cluster's Redis port while this node holds it (`--resp-door leader`, leader-port.ts).
// Requests go into a client pipeline of the
// node's own (the one every front door uses: packed propose frames, sessions, go-back); its
// frames reach this node's host directly when it leads, and the leader over the rings when it
// does not. So parsing and answering run on the node threads, and a write sent to the leader's
// port crosses no thread. It must never answer for the cluster what only the supervisor knows:
// control requests (faults, membership, events) are refused with where to send them.
import type { ActorId } from '../../runtime/actor.ts';
import { ClientPipeline, type PipelineRouting } from './client-pipeline.ts';
import { membersOf, nodeStateOf, pendingOf, roleIn } from './members.ts';
import { startHttpApi, type HttpApi } from '../http/server.ts';
import { startRespServer, type RespServer } from '../resp/server.ts';
import type { RespSettings } from '../resp/settings.ts';
import { HttpError } from '../http/errors.ts';
import type { ClusterBackend, ClusterStatus, LocalReadMode } from '../http/backend.ts';
import type { HttpApiOptions } from '../http/settings.ts';
import type { App } from '../platform/app.ts';

/** What the door needs of its node's host. */
export interface DoorHost {
  /** The leader this node knows of (0: none). */
  readonly leaderId: number;
  onFrame(from: ActorId, bytes: Uint8Array, start: number, end: number): void;
  process(): void;
  doorView(): DoorView;
}

/** What GET /cluster on a node's port shows: that node, as it sees itself and the configuration. */
export interface DoorView {
  role: number;
  term: number;
  commit: number;
  lastIndex: number;
  applied: number;
  firstIndex: number;
  snapshotIndex: number;
  voters: readonly number[];
  outgoing: readonly number[];
  learners: readonly number[];
  witnesses: readonly number[];
  membershipIndex: number;
}

export interface NodeDoorOptions {
  self: number;
  host: DoorHost;
  /** The nodes this one has links to. */
  peers: () => ReadonlySet<number>;
  /** Sends a frame to a peer over the rings (dropped if the peer is unknown). */
  sendToPeer: (to: ActorId, frame: Uint8Array) => void;
  /** The HTTP API's settings: host, this node's port, token, limits, deadline (absent: no HTTP port). */
  api?: HttpApiOptions;
  /** The Redis protocol door's settings, this node's port included (absent: no RESP port). */
  resp?: Partial<RespSettings>;
  apps?: readonly App[];
}

/** A node's client port could not be listened on: which flag's port, and why. */
export class DoorListenError extends Error {
  override name = 'DoorListenError';
}

async function listening<T>(start: () => Promise<T>, fix: string, s: { host?: string; port?: number }): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    const why = code === 'EADDRINUSE' ? 'the port is in use' : `${code}: ${(err as Error).message}`;
    throw new DoorListenError(`cannot serve clients on ${s.host ?? '127.0.0.1'}:${s.port} (${why}); ${fix}`);
  }
}

export class NodeDoor {
  private readonly pipeline: ClientPipeline;
  private readonly kv: ClusterBackend;
  private api: HttpApi | null = null;
  private resp: RespServer | null = null;
  /** The cluster's Redis port while this node holds it (`--resp-door leader`: it follows the leader). */
  private leaderPort: RespServer | null = null;
  /** Leader ports this node listens on no more, still serving the connections they took. */
  private readonly formerLeaderPorts = new Set<RespServer>();
  /** Frames between the pipeline and this node's host, delivered after the call that sent them (neither is entered from the other). */
  private toHost: Uint8Array[] = [];
  private toPipeline: Uint8Array[] = [];
  private scheduled = false;

  private constructor(private readonly o: NodeDoorOptions) {
    this.pipeline = new ClientPipeline(this.routing());
    this.kv = this.backend();
  }

  /** Starts listening; rejects with DoorListenError when a port cannot be had. */
  static async start(o: NodeDoorOptions): Promise<NodeDoor> {
    const door = new NodeDoor(o);
    try {
      if (o.api !== undefined) door.api = await listening(() => startHttpApi(door.kv, o.api), 'free the port or give --client-ports another base', o.api);
      if (o.resp !== undefined) door.resp = await listening(() => startRespServer(door.kv, o.resp), 'free the port or give --resp-client-ports another base', o.resp);
    } catch (err) {
      await door.close();
      throw err;
    }
    return door;
  }

  /**
   * Takes the cluster's Redis port (`--resp-door leader`): listens on it over this node's
   * pipeline until `releaseLeaderPort`. Rejects with DoorListenError while another node (or
   * process) still holds the port; the supervisor tries again.
   */
  async takeLeaderPort(settings: Partial<RespSettings>): Promise<{ port: number }> {
    this.leaderPort ??= await listening(() => startRespServer(this.kv, settings), 'free the port or give --resp-port another one', settings);
    return { port: this.leaderPort.port };
  }

  /** Gives the cluster's Redis port up: new connections go to whichever node takes it next; the ones this node took stay. */
  async releaseLeaderPort(): Promise<void> {
    const held = this.leaderPort;
    if (held === null) return;
    this.leaderPort = null;
    this.formerLeaderPorts.add(held);
    held.server.once('close', () => this.formerLeaderPorts.delete(held));
    await held.stopListening();
  }
  /** A frame this node's host sends to itself as a client: an answer for the door's pipeline. */
  fromHost(frame: Uint8Array): void {
    this.toPipeline.push(frame.slice());
    this.schedule();
  }

  /** An answer from a peer for the door's pipeline (ring memory, valid during the call). */
  fromPeer(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    this.pipeline.onFrame(from, bytes, start, end);
  }

  async close(): Promise<void> {
    this.pipeline.stop();
    await Promise.all([this.api?.close(), this.resp?.close(), this.leaderPort?.close(), ...[...this.formerLeaderPorts].map((r) => r.close())]);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(this.deliver);
  }

  private readonly deliver = (): void => {
    this.scheduled = false;
    const self = this.o.self;
    const toHost = this.toHost;
    if (toHost.length > 0) {
      this.toHost = [];
      for (const f of toHost) this.o.host.onFrame(self, f, 0, f.length);
      this.o.host.process();
    }
    const toPipeline = this.toPipeline;
    if (toPipeline.length > 0) {
      this.toPipeline = [];
      for (const f of toPipeline) this.pipeline.onFrame(self, f, 0, f.length);
    }
  };

  /**
   * What the pipeline knows of the cluster here: the leader this node knows of, and every peer
   * up and reachable — a node does not know better; silence, redirects and deadlines tell.
   */
  private routing(): PipelineRouting {
    const o = this.o;
    const leader = (): number | null => (o.host.leaderId === 0 ? null : o.host.leaderId);
    return {
      leader,
      leaderSeenBy: leader,
      isUp: (id) => id === o.self || o.peers().has(id),
      reachable: () => true,
      hasQuorum: () => true,
      readNodes: () => [o.self],
      send: (to, frame) => {
        if (to !== o.self) {
          o.sendToPeer(to, frame);
          return;
        }
        this.toHost.push(frame.slice());
        this.schedule();
      },
    };
  }

  private backend(): ClusterBackend {
    const o = this.o;
    const p = this.pipeline;
    // Follower and stale reads sent to a node's port are that node's to serve.
    const via = (mode: LocalReadMode, given?: number): number | null => given ?? (mode === 'follower' || mode === 'stale' ? o.self : null);
    const elsewhere = (what: string) => (): never => {
      throw new HttpError(404, 'not-on-node-port', `node ${o.self}'s client port serves the KV store and the apps; ${what} is on the cluster's HTTP API (concur start --port)`);
    };
    return {
      status: () => this.status(),
      hasNode: (id) => id === o.self || o.peers().has(id),
      crash: elsewhere('crashing a node'),
      restart: elsewhere('restarting a node'),
      pause: elsewhere('pausing a node'),
      resume: elsewhere('resuming a node'),
      partition: elsewhere('partitioning the network'),
      heal: elsewhere('healing the network'),
      isolate: elsewhere('isolating a node'),
      cut: elsewhere('cutting links'),
      setFaults: elsewhere('setting link faults'),
      clearFaults: elsewhere('clearing link faults'),
      addMember: elsewhere('adding a member'),
      removeMember: elsewhere('removing a member'),
      promote: elsewhere('promoting a learner'),
      transfer: elsewhere('moving leadership'),
      events: elsewhere('the event stream'),
      submit: (command, timeoutMs) => p.submit(command, timeoutMs, null),
      submitTo: (command, timeoutMs, waiter) => p.submitTo(command, timeoutMs, null, waiter),
      read: (key, mode, timeoutMs, opts = {}) => p.read({ key, app: opts.app }, mode, timeoutMs, via(mode, opts.via)),
      readTo: (key, mode, timeoutMs, waiter) => p.readTo({ key, app: undefined }, mode, timeoutMs, via(mode), waiter),
      ...(o.apps !== undefined ? { apps: o.apps } : {}),
    };
  }

  /** This node only, as it sees itself: the others are the cluster API's to report. */
  private status(): ClusterStatus {
    const v = this.o.host.doorView();
    const leader = this.o.host.leaderId;
    return {
      leader: leader === 0 ? null : leader,
      term: v.term,
      nodes: [
        {
          id: this.o.self,
          status: 'up',
          up: true,
          ...nodeStateOf(v),
          member: roleIn(v, this.o.self),
        },
      ],
      members: membersOf(v),
      pendingChange: pendingOf(v),
    };
  }
}
