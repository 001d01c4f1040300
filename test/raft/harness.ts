// A tiny synchronous cluster for scenario tests: nodes over MemoryStorage, a FIFO of messages
// in flight, cut links, and a transcript of every delivered message. Test-only; it follows the
// Ready contract literally (send, persist, send-after-persist, apply, advance).
import { createRng } from '../../runtime/rng.ts';
import {
  EntryKind,
  formatEntry,
  formatMessage,
  formatStatus,
  MemoryStorage,
  RaftNode,
  type Entry,
  type Message,
  type RaftMutations,
  type RaftSettings,
  type ReadState,
} from '../../protocols/raft/index.ts';

export interface TestNode {
  readonly id: number;
  raft: RaftNode | null;
  storage: MemoryStorage;
  applied: Entry[];
  /** The last index applied, from entries or an installed snapshot. */
  appliedIndex: number;
  readStates: ReadState[];
  incarnation: number;
  /** Keeps no state machine: applies nothing. */
  witness: boolean;
}

/** Who starts as a member; nodes not listed start with no configuration (joining). */
export interface InitialMembership {
  voters: number[];
  witnesses: number[];
}

export class TestCluster {
  readonly nodes = new Map<number, TestNode>();
  readonly ids: number[];
  /** Messages sent and not yet delivered, oldest first. */
  inflight: Message[] = [];
  private readonly cut = new Set<string>();
  /** Lines describing what happened since the last takeTranscript(). */
  private lines: string[] = [];

  constructor(
    n: number,
    private readonly settings: Partial<RaftSettings> = {},
    private readonly unsafe: RaftMutations = {},
    /** Pre-existing durable logs: node id → the term of each entry from index 1. */
    logs: Record<number, number[]> = {},
    /** Term every node starts in (at least the term of its last preset entry). */
    initialTerm = 0,
    private readonly initial: InitialMembership | null = null,
  ) {
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of this.ids) {
      const terms = logs[id] ?? [];
      const entries: Entry[] = terms.map((term, i) => ({ index: i + 1, term, kind: EntryKind.normal, data: new TextEncoder().encode(`e${i + 1}t${term}`) }));
      const term = Math.max(initialTerm, terms.length > 0 ? terms[terms.length - 1]! : 0);
      const witness = initial?.witnesses.includes(id) ?? false;
      const node: TestNode = { id, raft: null, storage: new MemoryStorage({ term, vote: 0, commit: 0 }, entries), applied: [], appliedIndex: 0, readStates: [], incarnation: 0, witness };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  private start(node: TestNode): void {
    node.incarnation++;
    node.applied = [];
    // The state machine comes back from the snapshot, if any; the log replays after it.
    const snap = node.storage.snapshot();
    node.appliedIndex = snap.index;
    const init = this.initial;
    const conf = init === null ? { voters: this.ids } : { voters: init.voters, witnesses: init.witnesses.filter((w) => init.voters.includes(w)), joining: !init.voters.includes(node.id) };
    node.raft = new RaftNode({ ...this.settings, id: node.id, ...conf, storage: node.storage, rng: createRng(node.id * 1000 + node.incarnation), unsafe: this.unsafe, applied: snap.index });
  }

  node(id: number): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: number): RaftNode {
    const r = this.node(id).raft;
    if (r === null) throw new Error(`node ${id} is down`);
    return r;
  }

  note(line: string): void {
    this.lines.push(line);
  }

  takeTranscript(): string[] {
    const out = this.lines;
    this.lines = [];
    return out;
  }

  /** Runs one node's Ready loop to quiescence, following the contract literally. */
  process(id: number): void {
    const node = this.node(id);
    const raft = node.raft;
    if (raft === null) return;
    while (raft.hasReady()) {
      const rd = raft.ready();
      for (const m of rd.messages) this.inflight.push(m);
      if (rd.snapshot !== null) {
        node.storage.installSnapshot(rd.snapshot);
        node.appliedIndex = rd.snapshot.index;
        this.note(`${id}: installed snapshot ${rd.snapshot.index}/t${rd.snapshot.term}`);
      }
      node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      for (const m of rd.messagesAfterPersist) this.inflight.push(m);
      for (const e of rd.committedEntries) {
        if (!node.witness) node.applied.push(e);
        node.appliedIndex = e.index;
      }
      for (const rs of rd.readStates) {
        node.readStates.push(rs);
        this.note(`${id}: read ${rs.context} may be served at index ${rs.index}`);
      }
      raft.advance(rd);
    }
  }

  processAll(): void {
    for (const id of this.ids) this.process(id);
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

  /** Delivers every message now in flight (new ones wait for the next round). */
  deliverRound(filter: (m: Message) => boolean = () => true): number {
    const batch = this.inflight;
    this.inflight = [];
    let n = 0;
    for (const m of batch) {
      if (!filter(m)) {
        this.inflight.push(m);
        continue;
      }
      const to = this.node(m.to);
      if (this.isCut(m.from, m.to) || to.raft === null) {
        this.note(`  (dropped) ${formatMessage(m)}`);
        continue;
      }
      this.note(formatMessage(m));
      to.raft.step(m);
      n++;
    }
    return n;
  }

  /** Processes and delivers until nothing is in flight. */
  stabilize(roundsMax = 100): void {
    for (let i = 0; i < roundsMax; i++) {
      this.processAll();
      if (this.inflight.length === 0) return;
      this.deliverRound();
    }
    throw new Error('stabilize: still busy after many rounds');
  }

  tick(id: number, count = 1): void {
    for (let i = 0; i < count; i++) this.raft(id).tick();
  }

  /** `ticks` rounds of: every live node ticks, then everything stabilizes. */
  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const id of this.ids) if (this.node(id).raft !== null) this.tick(id);
      this.stabilize();
    }
  }

  /**
   * Takes node `id`'s next Ready, sends what may leave before persisting (rd.messages), then
   * crashes before anything is written: what a killed process does between send and fsync.
   */
  crashBeforePersist(id: number): void {
    const raft = this.raft(id);
    if (raft.hasReady()) {
      const rd = raft.ready();
      for (const m of rd.messages) this.inflight.push(m);
      this.note(`${id}: sent ${rd.messages.length} message(s), then crashed before writing ${rd.hardState ? `hard state t${rd.hardState.term}` : 'nothing'}${rd.messagesAfterPersist.length > 0 ? ` (${rd.messagesAfterPersist.length} waiting for it lost)` : ''}`);
    }
    this.crash(id);
  }

  /**
   * Node `id` snapshots its state machine at what it has applied and drops its log through
   * `through` (at most the snapshot's index).
   */
  snapshotAndCompact(id: number, through: number): string {
    const node = this.node(id);
    const raft = this.raft(id);
    const index = node.appliedIndex;
    if (through > index) throw new Error(`node ${id} has applied ${index}: it cannot compact through ${through}`);
    const conf = raft.membershipAt(index);
    node.storage.setSnapshot({ index, term: node.storage.term(index), voters: conf.voters, membership: conf });
    node.storage.compact(through);
    return `${id}: snapshot at ${index}/t${node.storage.term(index) >= 0 ? node.storage.term(index) : raft.status().lastTerm}, log from ${node.storage.firstIndex()}`;
  }

  crash(id: number): void {
    const node = this.node(id);
    node.raft = null;
    this.inflight = this.inflight.filter((m) => m.to !== id);
  }

  restart(id: number): void {
    this.start(this.node(id));
  }

  propose(id: number, text: string): number {
    return this.raft(id).propose(new TextEncoder().encode(text));
  }

  statusLines(): string[] {
    return this.ids.map((id) => {
      const n = this.node(id);
      if (n.raft === null) return `${id}: down`;
      return formatStatus(n.raft.status(), n.appliedIndex);
    });
  }

  logLine(id: number): string {
    const r = this.raft(id);
    const compacted = r.firstIndex > 1 ? `(compacted through ${r.firstIndex - 1}) ` : '';
    return `${id}: ${compacted}${r.entries(1, r.lastIndex + 1).map(formatEntry).join(', ') || '(empty)'}`;
  }

  leader(): number {
    let best = 0;
    let term = -1;
    for (const n of this.nodes.values()) {
      if (n.raft !== null && n.raft.currentRole === 3 && n.raft.currentTerm > term) {
        best = n.id;
        term = n.raft.currentTerm;
      }
    }
    return best;
  }
}

/** A leader (node 1) elected in a 3-node cluster, everything settled and the transcript taken. */
export function electedCluster(settings: Partial<RaftSettings> = {}): TestCluster {
  const c = new TestCluster(3, { preVote: false, ...settings });
  c.raft(1).campaign();
  c.stabilize();
  c.takeTranscript();
  if (c.raft(1).currentRole !== 3) throw new Error('node 1 did not become leader');
  return c;
}
