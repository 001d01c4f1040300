// Raft plugged into the simulator: each node is a RaftNode over a MemoryStorage that survives
// crashes, driven through the Ready contract with disk writes that take virtual time (so a crash
// loses what was not yet durable, and a leader replicates before its own write completes).
import { createRng, type Rng } from '../../runtime/rng.ts';
import {
  EntryKind,
  formatMessage,
  MemoryStorage,
  RaftNode,
  Role,
  roleName,
  type Message,
  type RaftMutations,
  type RaftSettings,
  type Ready,
} from '../raft/index.ts';
import type { ClusterOptions, SimCluster, SimEnv, SimProtocol } from './protocol.ts';
import { createRaftCheckers, raftInvariants, type RaftObservation } from './raft-invariants.ts';

/** Deliberately broken variants for the mutation check. */
export const raftMutations: Record<string, RaftMutations> = {
  'commit-previous-term': { commitPreviousTermByCount: true },
  /** The same bug with the election no-op removed, which otherwise hides it almost always. */
  'commit-previous-term-no-noop': { commitPreviousTermByCount: true, skipLeaderNoop: true },
  /** Control: the no-op alone removed is safe; the simulator must find nothing. */
  'no-noop': { skipLeaderNoop: true },
  'vote-twice': { voteTwicePerTerm: true },
  'no-election-restriction': { ignoreElectionRestriction: true },
  'read-without-quorum': { readWithoutQuorum: true },
  /** Lease renewed by sending heartbeats, not by a majority acking them. */
  'lease-ignores-acks': { leaseIgnoresAcks: true },
  /** Lease of 2*electionTicks: outlives the followers' refusal to vote. */
  'lease-too-long': { leaseTooLong: true },
};

/** How often a read that reaches a leader is tried on its lease first (CheckQuorum seeds). */
const leaseReadChance = 0.7;

interface Host {
  readonly id: number;
  raft: RaftNode | null;
  readonly storage: MemoryStorage;
  incarnation: number;
  /** The Ready whose disk write is in flight, if any. */
  writing: Ready | null;
  applied: number;
  lastRole: number;
  lastTerm: number;
}

type Env = SimEnv<Message, RaftObservation>;

class RaftSimCluster implements SimCluster<Message> {
  private readonly hosts = new Map<number, Host>();
  private readonly mutation: RaftMutations | undefined;
  private topCommit = 0;
  private topTerm = 0;

  private readonly settings: Partial<RaftSettings>;
  /** Chooses the read path; its own stream so read choices never shift other draws. */
  private readonly readRng: Rng;
  /** Reads started per path: lease (served at once), index (on the leader), follower. */
  private readonly readPaths = { lease: 0, leaseRefused: 0, index: 0, follower: 0 };

  constructor(
    readonly nodeIds: readonly number[],
    private readonly env: Env,
    fixed: Partial<RaftSettings>,
    options: ClusterOptions,
  ) {
    // Each seed draws its own settings, so the seeds together cover the settings matrix
    // (tiny windows and batches split appends in ways the defaults never do).
    const r = createRng(env.nodeSeed(0, 0));
    this.settings = {
      preVote: r.chance(0.8),
      checkQuorum: r.chance(0.8),
      heartbeatTicks: r.chance(0.8) ? 1 : 3,
      inflightMax: [1, 2, 8, 256][r.int(0, 4)]!,
      batchEntriesMax: [2, 3, 16, 64][r.int(0, 4)]!,
      batchBytesMax: r.chance(0.3) ? 40 : 1 << 20,
      // 1 is the least that covers the sub-tick phase skew between simulated nodes' ticks.
      leaseDriftTicks: r.chance(0.5) ? 1 : 2,
      ...fixed,
    };
    this.readRng = createRng(env.nodeSeed(0, 1));
    if (env.tracing) env.trace(`   raft settings: ${JSON.stringify(this.settings)}`);
    if (options.mutation !== undefined) {
      this.mutation = raftMutations[options.mutation];
      if (this.mutation === undefined) throw new RangeError(`unknown raft mutation "${options.mutation}" (known: ${Object.keys(raftMutations).join(', ')})`);
    }
    for (const id of nodeIds) {
      const host: Host = { id, raft: null, storage: new MemoryStorage(), incarnation: 0, writing: null, applied: 0, lastRole: -1, lastTerm: 0 };
      this.hosts.set(id, host);
      this.start(host);
    }
  }

  private start(h: Host): void {
    h.incarnation++;
    h.raft = new RaftNode({
      ...this.settings,
      id: h.id,
      voters: this.nodeIds,
      storage: h.storage,
      rng: createRng(this.env.nodeSeed(h.id, h.incarnation)),
      // The simulated state machine lives in memory and is rebuilt from the log.
      applied: 0,
      unsafe: this.mutation,
    });
    h.writing = null;
    h.applied = 0;
    h.lastRole = Role.follower;
    h.lastTerm = h.raft.currentTerm;
  }

  private host(id: number): Host {
    const h = this.hosts.get(id);
    if (h === undefined) throw new Error(`no node ${id}`);
    return h;
  }

  isUp(node: number): boolean {
    return this.host(node).raft !== null;
  }

  tick(node: number): void {
    const h = this.host(node);
    const raft = h.raft;
    if (raft === null) return;
    raft.tick();
    // The host flushes once per tick so batched proposals never wait longer than a tick.
    raft.flush();
    this.afterInput(h);
  }

  deliver(msg: Message): void {
    const h = this.host(msg.to);
    if (h.raft === null) return;
    h.raft.step(msg);
    this.afterInput(h);
  }

  propose(node: number, command: Uint8Array): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    const ok = h.raft.propose(command) > 0;
    if (ok) this.scheduleFlush(h);
    return ok;
  }

  private flushPending = new Set<number>();

  /** The "idle moment" flush: proposals arriving within the same millisecond share one append. */
  private scheduleFlush(h: Host): void {
    if (this.flushPending.has(h.id)) return;
    this.flushPending.add(h.id);
    const inc = h.incarnation;
    this.env.after(1, this.env.tracing ? `flush n${h.id}` : '', () => {
      this.flushPending.delete(h.id);
      if (h.raft === null || h.incarnation !== inc) return;
      h.raft.flush();
      this.afterInput(h);
    });
  }

  read(node: number, requestId: number): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    this.env.observe({ kind: 'read-request', node, requestId });
    const raft = h.raft;
    const isLeader = raft.currentRole === Role.leader;
    // A host tries the lease first and falls back to ReadIndex when the lease cannot serve.
    if (isLeader && this.settings.checkQuorum === true && this.readRng.chance(leaseReadChance)) {
      if (raft.leaseRead(requestId)) {
        this.readPaths.lease++;
        this.afterInput(h);
        return true;
      }
      this.readPaths.leaseRefused++;
    }
    const ok = raft.readIndex(requestId);
    if (ok) {
      if (isLeader) this.readPaths.index++;
      else this.readPaths.follower++;
      this.scheduleFlush(h);
    }
    this.afterInput(h);
    return ok;
  }

  transfer(node: number, to: number): boolean {
    const h = this.host(node);
    if (h.raft === null) return false;
    const ok = h.raft.transferLeadership(to);
    this.afterInput(h);
    return ok;
  }

  crash(node: number): void {
    const h = this.host(node);
    if (h.raft === null) return;
    h.raft = null;
    h.writing = null;
    this.env.observe({ kind: 'crash', node });
  }

  restart(node: number): void {
    const h = this.host(node);
    if (h.raft !== null) return;
    this.start(h);
    const raft = h.raft!;
    this.env.observe({ kind: 'restart', node, raft, durable: h.storage.entries(1, h.storage.lastIndex() + 1) });
    if (this.env.tracing) this.env.trace(`   n${node} restarted from disk: ${this.describe(h)}`);
    this.afterInput(h);
  }

  /** After any input: report the step, then drive the Ready loop. */
  private afterInput(h: Host): void {
    const raft = h.raft!;
    if (raft.commitIndex > this.topCommit) this.topCommit = raft.commitIndex;
    if (raft.currentTerm > this.topTerm) this.topTerm = raft.currentTerm;
    if (this.env.tracing && (raft.currentRole !== h.lastRole || raft.currentTerm !== h.lastTerm)) {
      this.env.trace(`   n${h.id} is now ${roleName[raft.currentRole]} in term ${raft.currentTerm}`);
    }
    h.lastRole = raft.currentRole;
    h.lastTerm = raft.currentTerm;
    this.env.observe({ kind: 'step', node: h.id, raft });
    this.drive(h);
  }

  private drive(h: Host): void {
    for (;;) {
      const raft = h.raft;
      if (raft === null || h.writing !== null || !raft.hasReady()) return;
      const rd = raft.ready();
      h.writing = rd;
      this.env.observe({ kind: 'ready', node: h.id, raft, ready: rd });
      for (const m of rd.messages) this.env.send(m);
      const needsDisk = rd.entries.length > 0 || rd.hardState !== null;
      const delay = needsDisk ? this.env.diskDelayMs() : 0;
      if (delay > 0) {
        const inc = h.incarnation;
        this.env.after(delay, this.env.tracing ? `n${h.id} disk write done (${rd.entries.length} entries${rd.hardState ? ', hard state' : ''})` : '', () => {
          // A crash during the write loses it: the node that asked for it is gone.
          if (h.incarnation !== inc || h.raft === null) return;
          this.complete(h, rd);
          this.afterInput(h);
        });
        return;
      }
      this.complete(h, rd);
      this.env.observe({ kind: 'step', node: h.id, raft });
    }
  }

  /** The write is durable: send what waited for it, apply, serve reads, advance. */
  private complete(h: Host, rd: Ready): void {
    const raft = h.raft!;
    h.storage.append(rd.entries);
    if (rd.hardState !== null) h.storage.setHardState(rd.hardState);
    for (const m of rd.messagesAfterPersist) this.env.send(m);
    for (const e of rd.committedEntries) {
      h.applied = e.index;
      this.env.observe({ kind: 'apply', node: h.id, entry: e });
      if (e.kind === EntryKind.normal) this.env.applied(h.id, e.index, e.data);
    }
    for (const rs of rd.readStates) this.env.observe({ kind: 'read-state', node: h.id, requestId: rs.context, index: rs.index });
    h.writing = null;
    raft.advance(rd);
  }

  leader(): number {
    let best = 0;
    let bestTerm = -1;
    for (const h of this.hosts.values()) {
      if (h.raft !== null && h.raft.currentRole === Role.leader && h.raft.currentTerm > bestTerm) {
        best = h.id;
        bestTerm = h.raft.currentTerm;
      }
    }
    return best;
  }

  converged(): boolean {
    const l = this.leader();
    if (l === 0) return false;
    const leader = this.host(l).raft!;
    const c = leader.commitIndex;
    if (leader.lastIndex !== c) return false;
    for (const h of this.hosts.values()) {
      if (h.raft === null || h.applied !== c || h.raft.commitIndex !== c || h.writing !== null) return false;
    }
    return true;
  }

  committedIndex(): number {
    return this.topCommit;
  }

  stats(): Record<string, number> {
    return { ...this.readPaths };
  }

  maxTerm(): number {
    return this.topTerm;
  }

  describeMessage(m: Message): string {
    return formatMessage(m);
  }

  private describe(h: Host): string {
    const r = h.raft;
    if (r === null) return `n${h.id} down (disk: ${h.storage.lastIndex()} entries, term ${h.storage.initialState().term})`;
    const s = r.status();
    return `n${h.id} ${roleName[s.role]} t${s.term} vote=${s.vote} lead=${s.leader} last=${s.lastIndex}/t${s.lastTerm} durable=${s.persistedIndex} commit=${s.commit} applied=${h.applied}`;
  }

  describeNodes(): string[] {
    return [...this.hosts.values()].map((h) => this.describe(h));
  }
}

/** The Raft protocol for the simulator; `settings` override the core's defaults. */
export function raftSimProtocol(settings: Partial<RaftSettings> = {}): SimProtocol<Message, RaftObservation> {
  return {
    name: 'raft',
    invariants: raftInvariants,
    mutations: Object.keys(raftMutations),
    createCluster: (nodeIds, env, options) => new RaftSimCluster(nodeIds, env, settings, options),
    createCheckers: () => createRaftCheckers(),
  };
}
