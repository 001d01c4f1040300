// Paxos (Basic or Multi) plugged into the simulator: each node a PaxosNode over a
// MemoryPaxosStorage that survives crashes, driven through the Ready contract with disk writes
// that take virtual time (a crash loses what was not yet durable). The state machine is a digest
// of the values applied, in slot order; nodes snapshot it at seed-chosen intervals and drop the
// slots it covers, and a node that asks for dropped slots gets the snapshot's image instead. Reads: Multi-Paxos by a leader's heartbeat round, Basic
// Paxos by a read marker chosen like a command; each is served once the state machine applied it.
import { createRng, type Rng } from '../../runtime/rng.ts';
import {
  formatPaxosMessage,
  MemoryPaxosStorage,
  PaxosNode,
  PaxosRole,
  paxosRoleName,
  ValueKind,
  PaxosMessageType,
  type PaxosMode,
  type PaxosMessage,
  type PaxosMutations,
  type PaxosReadState,
  type PaxosReady,
  type PaxosSettings,
} from '../paxos/index.ts';
import type { ClusterOptions, SimCluster, SimEnv, SimProtocol } from './protocol.ts';
import { createPaxosCheckers, paxosInvariants, valueDigest, type PaxosObservation } from './paxos-invariants.ts';

export const paxosMutations: Record<string, PaxosMutations> = {
  /** An acceptor accepts below its promise: a value chosen in round 5 can be replaced in round 6. */
  'accept-below-promise': { acceptBelowPromise: true },
  /** The round-5/round-6 picture: the proposer ignores what the promises reported. */
  'ignore-accepted-in-promise': { ignoreAcceptedInPromise: true },
  /** Multi-Paxos: a new leader leaves empty slots empty: nothing after them can ever apply. */
  'skip-gap-fill': { skipGapFill: true },
};

/** A snapshot's image in the simulator: the state machine (digest) through `slot`. */
interface SimImage {
  readonly slot: number;
  readonly digest: number;
}

interface Host {
  readonly id: number;
  /** The durable snapshot (kept across crashes, like storage). */
  image: SimImage | null;
  snapshotting: boolean;
  /** Images that came with snapshot messages, by slot (volatile). */
  received: Map<number, SimImage>;
  node: PaxosNode | null;
  readonly storage: MemoryPaxosStorage;
  incarnation: number;
  writing: PaxosReady | null;
  applied: number;
  digest: number;
  readsWaiting: PaxosReadState[];
  lastRole: number;
}

type Env = SimEnv<PaxosMessage, PaxosObservation>;

class PaxosSimCluster implements SimCluster<PaxosMessage> {
  private readonly hosts = new Map<number, Host>();
  private readonly settings: Partial<PaxosSettings>;
  private readonly mutation: PaxosMutations | undefined;
  private readonly proposerRng: Rng;
  private topCommit = 0;
  private topBallot = 0;
  private readonly counts = { instancesChosen: 0, noopsChosen: 0, readsServed: 0, snapshotsTaken: 0, snapshotsSent: 0, snapshotsInstalled: 0 };
  /** Snapshot every this many applied slots (0: never), drawn per seed. */
  private readonly snapshotEvery: number;
  private readonly images = new WeakMap<PaxosMessage, SimImage>();

  constructor(
    readonly nodeIds: readonly number[],
    private readonly env: Env,
    private readonly mode: PaxosMode,
    fixed: Partial<PaxosSettings>,
    options: ClusterOptions,
  ) {
    const r = createRng(env.nodeSeed(0, 0));
    this.settings = {
      heartbeatTicks: r.chance(0.8) ? 1 : 3,
      inflightMax: [1, 4, 64, 256][r.int(0, 4)]!,
      batchMax: [1, 3, 16, 64][r.int(0, 4)]!,
      ...fixed,
    };
    this.proposerRng = createRng(env.nodeSeed(0, 1));
    // Its own stream, so seeds keep the settings they drew before snapshots existed.
    const snapRng = createRng(env.nodeSeed(0, 2));
    this.snapshotEvery = [0, 5, 20, 50][snapRng.int(0, 4)]!;
    if (options.mutation !== undefined) {
      this.mutation = paxosMutations[options.mutation];
      if (this.mutation === undefined) throw new RangeError(`unknown paxos mutation "${options.mutation}" (known: ${Object.keys(paxosMutations).join(', ')})`);
    }
    if (env.tracing) env.trace(`   ${mode}-paxos settings: ${JSON.stringify(this.settings)}; snapshot every ${this.snapshotEvery || 'never'}`);
    for (const id of nodeIds) {
      const h: Host = { id, image: null, snapshotting: false, received: new Map(), node: null, storage: new MemoryPaxosStorage(), incarnation: 0, writing: null, applied: 0, digest: 0, readsWaiting: [], lastRole: -1 };
      this.hosts.set(id, h);
      this.start(h);
    }
  }

  private start(h: Host): void {
    h.incarnation++;
    // The state machine comes back from the durable snapshot; the chosen values kept replay after it.
    const from = h.image?.slot ?? 0;
    h.node = new PaxosNode({ ...this.settings, id: h.id, nodes: this.nodeIds, mode: this.mode, storage: h.storage, rng: createRng(this.env.nodeSeed(h.id, h.incarnation)), applied: from, unsafe: this.mutation });
    h.writing = null;
    h.applied = from;
    h.digest = h.image?.digest ?? 0;
    h.snapshotting = false;
    h.received.clear();
    h.readsWaiting = [];
    h.lastRole = PaxosRole.follower;
  }

  private host(id: number): Host {
    const h = this.hosts.get(id);
    if (h === undefined) throw new Error(`no node ${id}`);
    return h;
  }

  isUp(node: number): boolean {
    return this.host(node).node !== null;
  }

  tick(node: number): void {
    const h = this.host(node);
    if (h.node === null) return;
    h.node.tick();
    h.node.flush();
    this.afterInput(h);
  }

  deliver(msg: PaxosMessage): void {
    const h = this.host(msg.to);
    if (h.node === null) return;
    if (msg.type === PaxosMessageType.snapshot) {
      const image = this.images.get(msg);
      if (image === undefined) throw new Error(`snapshot message ${formatPaxosMessage(msg)} carries no image`);
      h.received.set(msg.slot, image);
    }
    h.node.step(msg);
    this.afterInput(h);
  }

  propose(node: number, command: Uint8Array): boolean {
    // Basic Paxos has no leader: most commands go to the node the client picked, some to a random
    // live proposer, so proposers duel now and then.
    const target = this.mode === 'basic' && this.proposerRng.chance(0.15) ? this.randomUp() : node;
    const h = this.host(target);
    if (h.node === null) return false;
    const ok = h.node.propose(command);
    if (ok) this.env.observe({ kind: 'proposed', data: command });
    this.afterInput(h);
    return ok;
  }

  private randomUp(): number {
    const up = this.nodeIds.filter((id) => this.host(id).node !== null);
    return up.length === 0 ? this.nodeIds[0]! : up[this.proposerRng.int(0, up.length)]!;
  }

  read(node: number, requestId: number): boolean {
    // Basic Paxos reads are instances like commands: most go where commands go (dueling is rarer).
    const target = this.mode === 'multi' || !this.proposerRng.chance(0.15) ? this.leader() : node;
    if (target === 0) return false;
    const h = this.host(target);
    if (h.node === null) return false;
    this.env.observe({ kind: 'read-request', requestId });
    const ok = h.node.readIndex(requestId);
    if (ok && this.mode === 'multi') h.node.flush();
    this.afterInput(h);
    return ok;
  }

  crash(node: number): void {
    const h = this.host(node);
    if (h.node === null) return;
    h.node = null;
    h.writing = null;
    this.env.observe({ kind: 'crash', node });
  }

  restart(node: number): void {
    const h = this.host(node);
    if (h.node !== null) return;
    this.start(h);
    this.env.observe({ kind: 'restart', node, promised: h.storage.initialState().promised, applied: h.applied });
    if (this.env.tracing) this.env.trace(`   n${node} restarted from disk: ${this.describe(h)}`);
    this.afterInput(h);
  }

  private afterInput(h: Host): void {
    const node = h.node!;
    const st = node.status();
    if (st.commit > this.topCommit) this.topCommit = st.commit;
    if (st.ballot > this.topBallot) this.topBallot = st.ballot;
    if (this.env.tracing && st.role !== h.lastRole) this.env.trace(`   n${h.id} is now ${paxosRoleName[st.role]} (ballot ${st.ballot})`);
    h.lastRole = st.role;
    this.env.observe({ kind: 'step', node: h.id, promised: node.promisedBallot });
    this.drive(h);
  }

  private drive(h: Host): void {
    for (;;) {
      const node = h.node;
      if (node === null || h.writing !== null || !node.hasReady()) return;
      const rd = node.ready();
      h.writing = rd;
      for (const m of rd.messages) {
        if (m.type === PaxosMessageType.snapshot) this.attachImage(h, m);
        this.env.send(m);
      }
      const needsDisk = rd.hardState !== null || rd.accepted.length > 0 || rd.learned.length > 0;
      const delay = needsDisk ? this.env.diskDelayMs() : 0;
      if (delay > 0) {
        const inc = h.incarnation;
        this.env.after(delay, this.env.tracing ? `n${h.id} disk write done` : '', () => {
          if (h.incarnation !== inc || h.node === null) return;
          this.complete(h, rd);
          this.afterInput(h);
        });
        return;
      }
      this.complete(h, rd);
    }
  }

  private attachImage(h: Host, m: PaxosMessage): void {
    const image = h.image;
    if (image === null || image.slot < m.slot) throw new Error(`n${h.id} offers snapshot ${m.slot} but holds ${image?.slot ?? 'none'}`);
    // A newer snapshot may have become durable since the core asked: send that one.
    m.slot = image.slot;
    this.images.set(m, image);
    this.counts.snapshotsSent++;
  }

  private complete(h: Host, rd: PaxosReady): void {
    const node = h.node!;
    if (rd.snapshotSlot > 0) this.install(h, rd.snapshotSlot);
    h.storage.persist(rd);
    for (const p of rd.accepted) this.env.observe({ kind: 'accepted', node: h.id, slot: p.slot, ballot: p.ballot, value: p.value });
    for (const m of rd.messagesAfterPersist) this.env.send(m);
    for (const c of rd.apply) {
      h.applied = c.slot;
      h.digest = valueDigest(h.digest, c.slot, c.value);
      this.env.observe({ kind: 'apply', node: h.id, slot: c.slot, value: c.value });
      if (c.value.kind === ValueKind.normal) {
        this.counts.instancesChosen++;
        this.env.applied(h.id, c.slot, c.value.data);
      } else if (c.value.kind === ValueKind.noop) this.counts.noopsChosen++;
    }
    for (const rs of rd.readStates) h.readsWaiting.push(rs);
    this.serveReads(h);
    h.writing = null;
    node.advance(rd);
    this.maybeSnapshot(h);
  }

  private install(h: Host, slot: number): void {
    const image = h.received.get(slot);
    if (image === undefined) throw new Error(`n${h.id} must install snapshot ${slot} but received no such image`);
    h.image = image;
    h.digest = image.digest;
    h.applied = slot;
    for (const s of h.received.keys()) if (s <= slot) h.received.delete(s);
    this.counts.snapshotsInstalled++;
    this.env.observe({ kind: 'snapshot', node: h.id, slot, digest: image.digest, installed: true });
  }

  /** Every `snapshotEvery` applied slots: capture the state, make it durable after a disk write, then drop what it covers. */
  private maybeSnapshot(h: Host): void {
    if (this.snapshotEvery === 0 || h.snapshotting || h.applied - (h.image?.slot ?? 0) < this.snapshotEvery) return;
    const image: SimImage = { slot: h.applied, digest: h.digest };
    h.snapshotting = true;
    this.env.observe({ kind: 'snapshot', node: h.id, slot: image.slot, digest: image.digest, installed: false });
    const inc = h.incarnation;
    this.env.after(this.env.diskDelayMs() + 1, this.env.tracing ? `n${h.id} snapshot ${image.slot} written` : '', () => {
      if (h.node === null || h.incarnation !== inc) return;
      h.snapshotting = false;
      if (h.image !== null && h.image.slot >= image.slot) return;
      h.image = image;
      h.storage.compact(image.slot);
      h.node.compact(image.slot);
      this.counts.snapshotsTaken++;
    });
  }

  private serveReads(h: Host): void {
    const still: PaxosReadState[] = [];
    for (const rs of h.readsWaiting) {
      if (h.applied < rs.index) still.push(rs);
      else {
        this.counts.readsServed++;
        this.env.observe({ kind: 'read-state', node: h.id, requestId: rs.context, index: rs.index, applied: h.applied, digest: h.digest });
      }
    }
    h.readsWaiting = still;
  }

  leader(): number {
    if (this.mode === 'basic') {
      // No leader: any live node takes commands (propose() spreads them).
      for (const id of this.nodeIds) if (this.host(id).node !== null) return id;
      return 0;
    }
    let best = 0;
    let bestBallot = -1;
    for (const h of this.hosts.values()) {
      const st = h.node?.status();
      if (st !== undefined && st.role === PaxosRole.leader && st.ballot > bestBallot) [best, bestBallot] = [h.id, st.ballot];
    }
    return best;
  }

  converged(): boolean {
    if (this.leader() === 0) return false;
    let commit = -1;
    for (const h of this.hosts.values()) {
      const st = h.node?.status();
      if (st === undefined || h.writing !== null) return false;
      // Basic Paxos reads are instances too, and clients keep reading: only commands must be done.
      if (this.mode === 'multi' && (st.inflight > 0 || st.queued > 0)) return false;
      if (commit === -1) commit = st.commit;
      // Slots a deposed leader's acceptors accepted but never chose may linger past commit: they
      // are overwritten when the leader gets there, and do not stop anyone.
      if (st.commit !== commit || h.applied !== commit) return false;
    }
    return true;
  }

  committedIndex(): number {
    return this.topCommit;
  }

  maxTerm(): number {
    return this.topBallot;
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }

  describeMessage(m: PaxosMessage): string {
    return formatPaxosMessage(m);
  }

  private describe(h: Host): string {
    if (h.node === null) return `n${h.id} down (promised ${h.storage.initialState().promised})`;
    const s = h.node.status();
    return `n${h.id} ${paxosRoleName[s.role]} ballot=${s.ballot} promised=${s.promised} lead=${s.leader} commit=${s.commit} applied=${h.applied} last=${s.lastSlot} inflight=${s.inflight} queued=${s.queued}`;
  }

  describeNodes(): string[] {
    return [...this.hosts.values()].map((h) => this.describe(h));
  }
}

/** Basic Paxos (`paxos`) or Multi-Paxos (`multipaxos`) for the simulator. */
export function paxosSimProtocol(mode: PaxosMode, settings: Partial<PaxosSettings> = {}): SimProtocol<PaxosMessage, PaxosObservation> {
  return {
    name: mode === 'basic' ? 'paxos' : 'multipaxos',
    // Two round trips and three disk writes per value, and proposers that duel: Basic Paxos needs
    // longer than a leader-based protocol to drain the clients' backlog after the faults.
    ...(mode === 'basic' ? { defaults: { livenessMs: 12_000 } } : {}),
    invariants: paxosInvariants,
    mutations: mode === 'basic' ? ['accept-below-promise', 'ignore-accepted-in-promise'] : Object.keys(paxosMutations),
    createCluster: (nodeIds, env, options) => new PaxosSimCluster(nodeIds, env, mode, settings, options),
    createCheckers: (nodeIds) => createPaxosCheckers(nodeIds.length),
  };
}
