// A tiny synchronous Paxos cluster for scenario and unit tests, after test/raft/harness.ts:
// PaxosNodes over MemoryPaxosStorage (kept across a crash, as a disk would be), a FIFO of
// messages in flight, cut links, and a transcript of every delivered message. It follows the
// Ready contract literally: send rd.messages, persist, send rd.messagesAfterPersist, apply,
// serve reads once applied, advance. Like the node host, process() flushes the node first, so
// proposals made since the last process leave together (batched) and chosen notices go out.
import { createRng } from '../../runtime/rng.ts';
import {
  formatBallot,
  formatPaxosMessage,
  MemoryPaxosStorage,
  PaxosNode,
  PaxosMessageType,
  paxosMessageTypeName,
  paxosRoleName,
  type Chosen,
  type PaxosMessage,
  type PaxosMode,
  type PaxosMutations,
  type PaxosReadState,
  type PaxosSettings,
  type Proposal,
  type Value,
} from '../../protocols/paxos/index.ts';
import { formatValue } from '../../protocols/paxos/describe.ts';

export interface PaxosTestNode {
  readonly id: number;
  node: PaxosNode | null;
  readonly storage: MemoryPaxosStorage;
  /** What this incarnation's state machine applied, in order (a restart replays from slot 1). */
  applied: Chosen[];
  appliedSlot: number;
  /** ReadStates handed out and not yet served (the state machine is behind their index). */
  readsWaiting: PaxosReadState[];
  /** ReadStates served: the read ran against a state machine at (at least) this index. */
  readsServed: PaxosReadState[];
  incarnation: number;
  /** The state machine's durable snapshot image (the values applied through its last slot); kept across a crash. */
  image: Chosen[];
  /** An image received with a snapshot message, installed when a Ready says so. */
  incomingImage: Chosen[] | null;
}

/** Which in-flight messages a deliver or drop acts on; every field given must match. */
export interface MessageFilter {
  from?: number;
  to?: number;
  /** A type name: prepare, promise, accept, accepted, nack, chosen, heartbeat, heartbeatResp, catchUp. */
  type?: string;
  /** The message concerns this slot (its slot field, a proposal, an accepted slot or a chosen one). */
  slot?: number;
}

export function matches(m: PaxosMessage, f: MessageFilter): boolean {
  if (f.from !== undefined && m.from !== f.from) return false;
  if (f.to !== undefined && m.to !== f.to) return false;
  if (f.type !== undefined && paxosMessageTypeName[m.type] !== f.type) return false;
  if (f.slot !== undefined) {
    const s = f.slot;
    const hit = m.slot === s || m.proposals.some((p) => p.slot === s) || m.slots.includes(s) || m.chosen.some((c) => c.slot === s);
    if (!hit) return false;
  }
  return true;
}

const encoder = new TextEncoder();

export class PaxosTestCluster {
  readonly nodes = new Map<number, PaxosTestNode>();
  readonly ids: number[];
  /** Messages sent and not yet delivered, oldest first. */
  inflight: PaxosMessage[] = [];
  /** Deliver a structured clone of each message, as a real wire would (values lose their identity). */
  cloneOnDelivery = false;
  /** Note every apply in the transcript. */
  noteApplies = true;
  private readonly cut = new Set<string>();
  private lines: string[] = [];

  constructor(
    n: number,
    readonly mode: PaxosMode,
    private readonly settings: Partial<PaxosSettings> = {},
    private readonly unsafe: PaxosMutations = {},
  ) {
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of this.ids) {
      const node: PaxosTestNode = { id, node: null, storage: new MemoryPaxosStorage(), applied: [], appliedSlot: 0, readsWaiting: [], readsServed: [], incarnation: 0, image: [], incomingImage: null };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  private start(n: PaxosTestNode): void {
    n.incarnation++;
    // The state machine comes back from its snapshot image (if any); the chosen values kept on
    // disk after it are applied again.
    n.applied = [...n.image];
    n.appliedSlot = n.image.length > 0 ? n.image[n.image.length - 1]!.slot : 0;
    n.readsWaiting = [];
    n.incomingImage = null;
    n.node = new PaxosNode({ ...this.settings, id: n.id, nodes: this.ids, mode: this.mode, storage: n.storage, rng: createRng(n.id * 1000 + n.incarnation), unsafe: this.unsafe, applied: n.appliedSlot });
  }

  node(id: number): PaxosTestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  paxos(id: number): PaxosNode {
    const p = this.node(id).node;
    if (p === null) throw new Error(`node ${id} is down`);
    return p;
  }

  note(line: string): void {
    this.lines.push(line);
  }

  takeTranscript(): string[] {
    const out = this.lines;
    this.lines = [];
    return out;
  }

  /** Flushes node `id` and runs its Ready loop to quiescence, following the contract literally. */
  process(id: number, flush = true): void {
    const n = this.node(id);
    const p = n.node;
    if (p === null) return;
    if (flush) p.flush();
    while (p.hasReady()) {
      const rd = p.ready();
      for (const m of rd.messages) this.inflight.push(m);
      if (rd.snapshotSlot > 0) {
        // Install the image that came with the snapshot message: the state machine jumps to it.
        const image = (n.incomingImage ?? []).filter((c) => c.slot <= rd.snapshotSlot);
        if (image.length === 0 || image[image.length - 1]!.slot !== rd.snapshotSlot) throw new Error(`node ${id}: no image through slot ${rd.snapshotSlot} to install`);
        n.image = image;
        n.applied = [...image];
        n.appliedSlot = rd.snapshotSlot;
        n.incomingImage = null;
        this.note(`${id}: installed snapshot through slot ${rd.snapshotSlot}`);
      }
      n.storage.persist(rd);
      for (const m of rd.messagesAfterPersist) this.inflight.push(m);
      for (const c of rd.apply) {
        n.applied.push(c);
        n.appliedSlot = c.slot;
      }
      if (this.noteApplies && rd.apply.length > 0) this.note(`${id}: apply ${rd.apply.map((c) => `${c.slot}:${formatValue(c.value)}`).join(' ')}`);
      n.readsWaiting.push(...rd.readStates);
      this.serveReads(n);
      p.advance(rd);
    }
  }

  private serveReads(n: PaxosTestNode): void {
    const still: PaxosReadState[] = [];
    for (const rs of n.readsWaiting) {
      if (n.appliedSlot < rs.index) {
        still.push(rs);
        continue;
      }
      n.readsServed.push(rs);
      this.note(`${n.id}: read ${rs.context} served at slot ${rs.index} (applied ${n.appliedSlot})`);
    }
    n.readsWaiting = still;
  }

  processAll(flush = true): void {
    for (const id of this.ids) this.process(id, flush);
  }

  isCut(from: number, to: number): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  cutLink(from: number, to: number): void {
    this.cut.add(`${from}>${to}`);
  }

  isolate(id: number): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.cutLink(id, other);
      this.cutLink(other, id);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Delivers every message now in flight that matches (new ones, and the rest, wait in order). */
  deliverRound(filter: MessageFilter = {}): number {
    const batch = this.inflight;
    this.inflight = [];
    let n = 0;
    for (const m of batch) {
      if (!matches(m, filter)) {
        this.inflight.push(m);
        continue;
      }
      const to = this.node(m.to);
      if (this.isCut(m.from, m.to) || to.node === null) {
        this.note(`  (dropped) ${formatPaxosMessage(m)}`);
        continue;
      }
      this.note(formatPaxosMessage(m));
      // A snapshot message travels with the sender's state machine image (the host's business).
      if (m.type === PaxosMessageType.snapshot) to.incomingImage = [...this.node(m.from).image];
      to.node.step(this.cloneOnDelivery ? structuredClone(m) : m);
      n++;
    }
    return n;
  }

  /** Removes matching messages from flight; returns how many. */
  drop(filter: MessageFilter = {}): number {
    const before = this.inflight.length;
    this.inflight = this.inflight.filter((m) => !matches(m, filter));
    return before - this.inflight.length;
  }

  /** Processes and delivers until nothing is in flight. */
  stabilize(roundsMax = 200): void {
    for (let i = 0; i < roundsMax; i++) {
      this.processAll();
      if (this.inflight.length === 0) return;
      this.deliverRound();
    }
    throw new Error('stabilize: still busy after many rounds');
  }

  tick(id: number, count = 1): void {
    for (let i = 0; i < count; i++) this.paxos(id).tick();
  }

  /** `ticks` rounds of: every live node ticks, then everything stabilizes. */
  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const id of this.ids) if (this.node(id).node !== null) this.tick(id);
      this.stabilize();
    }
  }

  crash(id: number): void {
    const n = this.node(id);
    n.node = null;
    this.inflight = this.inflight.filter((m) => m.to !== id);
  }

  restart(id: number): void {
    const n = this.node(id);
    if (n.node !== null) throw new Error(`node ${id} is up`);
    this.start(n);
  }

  /**
   * Node `id` snapshots its state machine at what it has applied and compacts its slots through
   * it (core and storage). Returns the snapshot's last slot.
   */
  compact(id: number): number {
    const n = this.node(id);
    const p = this.paxos(id);
    const slot = n.appliedSlot;
    n.image = [...n.applied];
    p.compact(slot);
    n.storage.compact(slot);
    return slot;
  }

  /**
   * Basic Paxos: ticks node `id` one tick at a time until it starts an instance (its back-off or
   * time-out over: a new ballot, or more instances); returns the ticks it took. Throws after `max`.
   */
  tickUntilRetry(id: number, max = 200): number {
    const p = this.paxos(id);
    const before = p.status();
    for (let i = 1; i <= max; i++) {
      p.tick();
      const now = p.status();
      if (now.ballot !== before.ballot || now.inflight > before.inflight) return i;
    }
    throw new Error(`node ${id} started no instance within ${max} ticks`);
  }

  propose(id: number, text: string): boolean {
    return this.paxos(id).propose(encoder.encode(text));
  }

  /** Multi-Paxos: the live leader with the highest ballot (0: none). */
  leader(): number {
    let best = 0;
    let bestBallot = -1;
    for (const n of this.nodes.values()) {
      const st = n.node?.status();
      if (st !== undefined && st.role === 2 && st.ballot > bestBallot) [best, bestBallot] = [n.id, st.ballot];
    }
    return best;
  }

  statusLine(id: number): string {
    const n = this.node(id);
    if (n.node === null) {
      const hs = n.storage.initialState();
      return `${id}: down (durable: promised=${formatBallot(hs.promised)})`;
    }
    const s = n.node.status();
    // Basic Paxos has no roles or leader: every node proposes, accepts and learns.
    const head = this.mode === 'multi' ? `${paxosRoleName[s.role]} ` : '';
    const tail = this.mode === 'multi' ? ` lead=${s.leader}` : '';
    return `${id}: ${head}ballot=${formatBallot(s.ballot)} promised=${formatBallot(s.promised)}${tail} commit=${s.commit} applied=${n.appliedSlot} last=${s.lastSlot} inflight=${s.inflight} queued=${s.queued}`;
  }

  statusLines(ids: number[] = this.ids): string[] {
    return ids.map((id) => this.statusLine(id));
  }

  /**
   * What node `id` accepted (value@ballot, as stored) and learned chosen, slot by slot. A down
   * node shows its durable state. `-` marks a slot it has nothing for.
   */
  slotsLine(id: number, through?: number): string {
    const n = this.node(id);
    let accepted: (slot: number) => Proposal | undefined;
    let chosen: (slot: number) => Value | undefined;
    let last = 0;
    let prefix = `${id}:`;
    if (n.node !== null) {
      const p = n.node;
      // Durable acceptances: the core forgets its acceptance of a slot once that slot is chosen.
      accepted = (s) => n.storage.acceptedAt(s) ?? p.acceptedAt(s);
      chosen = (s) => p.chosenAt(s);
      last = p.status().lastSlot;
    } else {
      const acc = new Map<number, Proposal>();
      for (const a of n.storage.accepted()) acc.set(a.slot, a);
      const ch = new Map<number, Value>();
      for (const c of n.storage.learned()) ch.set(c.slot, c.value);
      accepted = (s) => acc.get(s);
      chosen = (s) => ch.get(s);
      last = Math.max(0, ...acc.keys(), ...ch.keys());
      prefix = `${id} (down, on disk):`;
    }
    const snap = n.storage.snapshotSlot();
    const upto = Math.max(through ?? last, snap);
    if (upto === 0) return `${prefix} (nothing)`;
    const cells: string[] = [];
    if (snap > 0) cells.push(`1..${snap}:(snapshot)`);
    for (let s = snap + 1; s <= upto; s++) {
      const a = accepted(s);
      const c = chosen(s);
      const acc = a === undefined ? '-' : `${formatValue(a.value)}@${formatBallot(a.ballot)}`;
      const learned = c === undefined ? '' : a !== undefined && sameValue(a.value, c) ? ' chosen' : ` chosen=${formatValue(c)}`;
      cells.push(`${s}:${acc}${learned}`);
    }
    return `${prefix} ${cells.join(' | ')}`;
  }

  /** The highest slot any live node (or any down node's disk) knows of. */
  lastSlot(): number {
    let last = 0;
    for (const n of this.nodes.values()) {
      if (n.node !== null) last = Math.max(last, n.node.status().lastSlot);
      else for (const a of n.storage.accepted()) last = Math.max(last, a.slot);
    }
    return last;
  }

  appliedLine(id: number): string {
    const n = this.node(id);
    return `${id}: ${n.applied.map((c) => `${c.slot}:${formatValue(c.value)}`).join(' ') || '(none)'}`;
  }
}

export function sameValue(a: Value, b: Value): boolean {
  if (a.kind !== b.kind || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** A Multi-Paxos cluster whose node 1 won phase 1, everything settled and the transcript taken. */
export function multiLeaderCluster(n = 3, settings: Partial<PaxosSettings> = {}, unsafe: PaxosMutations = {}): PaxosTestCluster {
  const c = new PaxosTestCluster(n, 'multi', settings, unsafe);
  c.paxos(1).campaign();
  c.stabilize();
  c.takeTranscript();
  if (c.leader() !== 1) throw new Error('node 1 did not become leader');
  return c;
}
