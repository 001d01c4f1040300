// One Paxos node — proposer, acceptor and learner at once — as a deterministic state machine
// with the Raft core's contract: step/tick/propose/readIndex change state and queue output,
// ready()/advance() hand it to the host one batch at a time; no timers, clocks, files or
// Math.random. Two modes:
//  - basic: every value is one single-decree instance (a slot) run from scratch by whichever node
//    got the command — phase 1 (prepare/promise) then phase 2 (accept/accepted), two round trips
//    per value; proposers that collide are refused by ballot and retry after a random back-off;
//  - multi: a distinguished leader runs phase 1 once for every slot from its commit on, then
//    phase 2 per slot, pipelined (many slots in flight) and batched (many per message); slots may
//    be chosen out of order and are applied in order; a new leader re-proposes what its promises
//    reported and fills gaps with no-ops; heartbeats detect a dead leader and confirm reads.
import { ChosenValues } from './chosen-values.ts';
import { SlotMap } from './slot-map.ts';
import { resolvePaxosConfig, type PaxosConfig, type ResolvedPaxosConfig } from './config.ts';
import {
  ballot as makeBallot,
  NONE,
  nodeOf,
  paxosMessage,
  PaxosMessageType as T,
  PaxosRole,
  roundOf,
  ValueKind,
  type Chosen,
  type PaxosHardState,
  type PaxosMessage,
  type PaxosReadState,
  type PaxosReady,
  type Proposal,
  type Value,
} from './types.ts';

const noop: Value = Object.freeze({ kind: ValueKind.noop, data: new Uint8Array(0) });
/** Multi-Paxos: values a leader holds beyond its window before it refuses more. */
const backlogMax = 8192;
/** Basic Paxos: instances one proposer runs at once (different slots, one ballot). */
const basicConcurrencyMax = 16;

export interface PaxosStatus {
  id: number;
  mode: 'basic' | 'multi';
  role: PaxosRole;
  /** The ballot this node proposes with (0: none yet). */
  ballot: number;
  promised: number;
  /** The node whose ballot this one follows (multi), or NONE. */
  leader: number;
  /** Every slot through this one is chosen and known here. */
  commit: number;
  applied: number;
  /** The highest slot this node knows anything of (accepted, chosen or proposed). */
  lastSlot: number;
  /** Slots proposed by this leader (or instances run by this proposer) and not yet chosen. */
  inflight: number;
  /** Values waiting for a slot (basic: the proposer's queue). */
  queued: number;
}

/** A slot this node proposes in: the value and which acceptors accepted it. */
/**
 * A slot this leader proposes: the proposal itself (sent as is, kept as the acceptance and the
 * chosen record — one object per slot from propose to apply) plus the leader's bookkeeping.
 */
interface Instance extends Proposal {
  value: Value;
  /** Nodes that accepted it, one bit per position in the node list (a Set per slot costs too much). */
  acks: number;
  ackCount: number;
  /** Tick when the accept was last sent (for resending). */
  sentTick: number;
  /** Sent at least once (batched proposals wait for flush). */
  sent: boolean;
}

/** Basic Paxos: the one instance this proposer runs now. */
interface BasicRun {
  slot: number;
  ballot: number;
  phase: 1 | 2;
  /** What the proposer wants chosen; the instance may choose another value (then it tries again). */
  own: QueuedValue;
  value: Value;
  promises: Map<number, Proposal | null>;
  acks: Set<number>;
  sentTick: number;
}

interface QueuedValue {
  value: Value;
  /** Reads (basic mode) waiting for this marker to be chosen: their contexts. */
  readContexts: number[];
  /**
   * Proposed at least once. A marker already proposed may be chosen in a slot from before a read
   * asked now (an earlier attempt's acceptances survive): later reads need a marker of their own.
   */
  proposed: boolean;
}

export class PaxosNode {
  readonly id: number;
  private readonly cfg: ResolvedPaxosConfig;
  private readonly quorum: number;

  // acceptor (durable)
  private promised: number;
  private readonly accepted = new SlotMap<Proposal>();
  // learner
  private chosenValues = new ChosenValues();
  private commit: number;
  private applied: number;
  private applying: number;
  private highestSlot = 0;
  /** Slots through this one live only in the state machine's snapshot. */
  private snapshotSlot: number;
  /** A snapshot from another node, to hand to the next Ready (0: none). */
  private pendingSnapshot = 0;

  // proposer
  private role: PaxosRole = PaxosRole.follower;
  private myBallot = 0;
  private leaderId = NONE;
  private readonly promises = new Map<number, readonly Proposal[]>();
  /** The highest commit a promise of this phase 1 reported, and who reported it. */
  private promisedCommit = 0;
  private promisedCommitFrom = NONE;
  private nextSlot = 1;
  private readonly instances = new SlotMap<Instance>();
  /** Multi-Paxos: values proposed while the window was full, oldest first. */
  private backlog: Value[] = [];
  /** backlog[backlogHead] is the oldest waiting value (no splice per flush: that is quadratic). */
  private backlogHead = 0;
  private chosenToSend: Chosen[] = [];
  /** Slots assigned and not yet sent, in order (so a flush does not walk every slot in flight). */
  private unsent: number[] = [];
  /** Multi-Paxos: slots this leader got chosen at its own ballot, announced without their values. */
  private chosenSlotsToSend: number[] = [];
  /** Basic Paxos: the instances this proposer runs now, by slot (all with one ballot until refused). */
  private readonly runs = new Map<number, BasicRun>();
  private runBallot = 0;
  private readonly queue: QueuedValue[] = [];
  /**
   * Values queued or in an instance here, by content: a client's retry of a command is not
   * queued twice, and a value someone else got chosen is not proposed again.
   */
  private readonly pendingByKey = new Map<string, QueuedValue>();
  private backoffUntil = 0;
  /** Instances lost in a row to other proposers: the back-off doubles with each. */
  private duelsLost = 0;
  private markers = 0;
  private readonly markerSalt: number;

  // time
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private timeout = 0;
  private lastQuorumTick = 0;
  private readonly heardAt = new Map<number, number>();
  /** Each node's bit in an ack mask: its position in the node list. */
  private readonly bits = new Map<number, number>();
  /** The highest commit each peer has told us of (any message carries its sender's). */
  private readonly peerCommit = new Map<number, number>();
  /** Every node has chosen through this slot (a leader computes it; followers hear it in heartbeats). */
  private heldByAll = 0;
  private catchUpAskedTick = -1;

  // reads (multi): rounds confirmed by heartbeat acks
  private nextRound = 1;
  private readonly rounds = new Map<number, { index: number; contexts: number[]; acks: Set<number> }>();
  private waitingReads: number[] = [];

  // output
  private msgs: PaxosMessage[] = [];
  private msgsAfterPersist: PaxosMessage[] = [];
  private selfAfterPersist: PaxosMessage[] = [];
  private acceptedOut: Proposal[] = [];
  private learnedOut: Chosen[] = [];
  private readStates: PaxosReadState[] = [];
  private prevHard: PaxosHardState;
  private readyOutstanding = false;
  private pendingSelf: PaxosMessage[] = [];

  constructor(config: PaxosConfig) {
    this.cfg = resolvePaxosConfig(config);
    this.id = this.cfg.id;
    this.quorum = Math.floor(this.cfg.nodes.length / 2) + 1;
    if (this.cfg.nodes.length > 30) throw new RangeError(`paxos: at most 30 nodes, got ${this.cfg.nodes.length}`);
    this.cfg.nodes.forEach((id, i) => this.bits.set(id, 1 << i));
    const hs = this.cfg.storage.initialState();
    this.promised = hs.promised;
    this.snapshotSlot = this.cfg.storage.snapshotSlot();
    this.chosenValues = new ChosenValues(this.snapshotSlot);
    for (const p of this.cfg.storage.accepted()) {
      this.accepted.set(p.slot, p);
      this.highestSlot = Math.max(this.highestSlot, p.slot);
    }
    for (const c of this.cfg.storage.learned()) {
      this.chosenValues.set(c.slot, c.value);
      this.highestSlot = Math.max(this.highestSlot, c.slot);
    }
    this.commit = this.snapshotSlot;
    this.advanceCommit();
    this.applied = Math.min(Math.max(this.cfg.applied, this.snapshotSlot), this.commit);
    this.applying = this.applied;
    this.prevHard = { promised: this.promised, commit: this.commit };
    this.resetTimeout();
    this.markerSalt = this.cfg.rng.int(0, 0x7fffffff);
  }

  // ---------------------------------------------------------------- inspection

  status(): PaxosStatus {
    return {
      id: this.id,
      mode: this.cfg.mode,
      role: this.role,
      ballot: this.myBallot,
      promised: this.promised,
      leader: this.leaderId,
      commit: this.commit,
      applied: this.applied,
      lastSlot: Math.max(this.highestSlot, this.nextSlot - 1, this.commit),
      inflight: this.cfg.mode === 'multi' ? this.instances.size : this.runs.size,
      queued: this.cfg.mode === 'multi' ? this.backlog.length - this.backlogHead : this.queue.length,
    };
  }

  get currentRole(): PaxosRole {
    return this.role;
  }

  get commitIndex(): number {
    return this.commit;
  }

  get promisedBallot(): number {
    return this.promised;
  }

  /** The value chosen at `slot` as this node knows it, or undefined. */
  chosenAt(slot: number): Value | undefined {
    return this.chosenValues.get(slot);
  }

  /** What this acceptor accepted at `slot` (in memory; durable after the Ready that reports it). */
  acceptedAt(slot: number): Proposal | undefined {
    return this.accepted.get(slot);
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    this.ticks++;
    if (this.cfg.mode === 'basic') this.tickBasic();
    else if (this.role === PaxosRole.leader) this.tickLeader();
    else this.tickFollower();
  }

  /**
   * A client command. Multi: accepted only by the leader (false elsewhere, or with inflightMax
   * slots open); it gets the next slot and leaves with the next flush. Basic: any node takes it
   * and runs instances until it is chosen.
   */
  propose(data: Uint8Array, tag?: unknown): boolean {
    const value: Value = tag === undefined ? { kind: ValueKind.normal, data } : { kind: ValueKind.normal, data, tag };
    if (this.cfg.mode === 'basic') {
      const key = valueKey(value);
      if (this.pendingByKey.has(key)) return true;
      if (this.queue.length >= this.cfg.inflightMax) return false;
      const q: QueuedValue = { value, readContexts: [], proposed: false };
      this.pendingByKey.set(key, q);
      this.queue.push(q);
      this.maybeStartBasic();
      return true;
    }
    if (this.role !== PaxosRole.leader) return false;
    // Past the window, values wait here for a slot (as Raft's uncommitted entries wait for the
    // append window): the window bounds what is in flight, not what a leader accepts.
    if (this.instances.size >= this.cfg.inflightMax || this.backlog.length > this.backlogHead) {
      if (this.backlog.length - this.backlogHead >= backlogMax) return false;
      this.backlog.push(value);
      return true;
    }
    this.assign(this.nextSlot++, value);
    return true;
  }

  /** Gives slots to waiting values as the window frees up. */
  private drainBacklog(): void {
    const b = this.backlog;
    let h = this.backlogHead;
    while (h < b.length && this.instances.size < this.cfg.inflightMax) this.assign(this.nextSlot++, b[h++]!);
    if (h === b.length) {
      b.length = 0;
      h = 0;
    } else if (h > 4096 && h * 2 > b.length) {
      this.backlog = b.slice(h);
      h = 0;
    }
    this.backlogHead = h;
  }

  /**
   * A linearizable read. Multi (leader only): the read index is the highest slot assigned so far,
   * confirmed by a heartbeat round a majority acknowledges at this ballot (no higher ballot could
   * have chosen anything meanwhile). Basic: a read marker goes through consensus like a command;
   * its slot is the read index. A ReadState comes out of a later Ready; false when it cannot start.
   */
  readIndex(context: number): boolean {
    if (this.cfg.mode === 'basic') {
      // Reads asked before a marker's instance starts share that marker (one instance, many reads).
      const waiting = this.queue.find((q) => q.value.kind === ValueKind.read && !q.proposed);
      if (waiting !== undefined) waiting.readContexts.push(context);
      else if (this.queue.length >= this.cfg.inflightMax) return false;
      else {
        const q: QueuedValue = { value: { kind: ValueKind.read, data: this.markerData() }, readContexts: [context], proposed: false };
        this.pendingByKey.set(valueKey(q.value), q);
        this.queue.push(q);
      }
      this.maybeStartBasic();
      return true;
    }
    if (this.role !== PaxosRole.leader) return false;
    if (this.cfg.nodes.length === 1) {
      this.readStates.push({ index: this.nextSlot - 1, context });
      return true;
    }
    this.waitingReads.push(context);
    return true;
  }

  /** Sends what is batched: accepts of new slots, chosen notices, a read round if reads wait. */
  flush(): void {
    if (this.cfg.mode === 'multi' && this.role === PaxosRole.leader) {
      this.drainBacklog();
      // Slots chosen at our ballot ride on the accepts going out anyway (one message, not two);
      // nodes that get no accept now get a chosen notice below.
      const named = this.chosenToSend.length === 0 && this.chosenSlotsToSend.length > 0 ? this.chosenSlotsToSend : null;
      const told = this.sendAccepts(false, named);
      if (named !== null && told.size > 0) {
        this.chosenSlotsToSend = [];
        const rest = this.cfg.nodes.filter((id) => id !== this.id && !told.has(id));
        if (rest.length > 0) {
          const held = this.updateHeldByAll();
          for (const id of rest) this.send(paxosMessage(T.chosen, this.id, id, this.myBallot, { slots: named, commit: this.commit, slot: held }));
        }
      }
      this.sendChosen();
      if (this.waitingReads.length > 0) this.heartbeat();
      return;
    }
    this.sendChosen();
  }

  step(m: PaxosMessage): void {
    if (m.to !== this.id) throw new Error(`paxos ${this.id}: message for ${m.to} delivered here`);
    this.heardAt.set(m.from, this.ticks);
    if (m.commit > (this.peerCommit.get(m.from) ?? 0) && m.type !== T.catchUp) this.peerCommit.set(m.from, m.commit);
    // A peer that has chosen further than us: ask for what we lack. Not on an accept (the chosen
    // notices sent before it are on their way), and a chosen notice is judged after learning from it.
    if (m.commit > this.commit && m.type !== T.chosen && m.type !== T.accept) this.maybeCatchUp(m.from, m.commit);
    switch (m.type) {
      case T.prepare:
        return this.onPrepare(m);
      case T.accept:
        return this.onAccept(m);
      case T.promise:
        return this.onPromise(m);
      case T.accepted:
        return this.onAccepted(m);
      case T.nack:
        return this.onNack(m);
      case T.chosen:
        if (m.slot > this.heldByAll) this.heldByAll = m.slot;
        for (const c of m.chosen) this.learn(c.slot, c.value);
        if (m.slots.length > 0) this.learnNamed(m);
        if (m.commit > this.commit) this.maybeCatchUp(m.from, m.commit);
        return;
      case T.heartbeat:
        return this.onHeartbeat(m);
      case T.heartbeatResp:
        return this.onHeartbeatResp(m);
      case T.catchUp:
        return this.onCatchUp(m);
      case T.snapshot:
        if (m.slot > this.commit && m.slot > this.pendingSnapshot) this.pendingSnapshot = m.slot;
        return;
    }
  }

  // ---------------------------------------------------------------- Ready / advance

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    return (
      this.prevHard.promised !== this.promised ||
      this.prevHard.commit !== this.commit ||
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.selfAfterPersist.length > 0 ||
      this.acceptedOut.length > 0 ||
      this.learnedOut.length > 0 ||
      this.readStates.length > 0 ||
      this.pendingSnapshot > 0 ||
      this.commit > this.applying
    );
  }

  ready(): PaxosReady {
    if (this.readyOutstanding) throw new Error(`paxos ${this.id}: ready() called again before advance()`);
    // A snapshot from another node replaces every slot through it: what follows applies after it.
    const snapshotSlot = this.pendingSnapshot > this.commit ? this.pendingSnapshot : 0;
    this.pendingSnapshot = 0;
    if (snapshotSlot > 0) {
      this.dropThrough(snapshotSlot);
      this.commit = snapshotSlot;
      this.applying = snapshotSlot;
      this.advanceCommit();
    }
    let hardState: PaxosHardState | null = null;
    const promiseChanged = this.prevHard.promised !== this.promised;
    if (promiseChanged || this.prevHard.commit !== this.commit) {
      hardState = { promised: this.promised, commit: this.commit };
      this.prevHard = hardState;
    }
    const apply: Chosen[] = [];
    for (let s = this.applying + 1; s <= this.commit; s++) apply.push(this.chosenValues.chosen(s)!);
    this.applying = this.commit;
    const rd: PaxosReady = {
      hardState,
      snapshotSlot,
      accepted: this.acceptedOut,
      learned: this.learnedOut,
      messages: this.msgs,
      messagesAfterPersist: this.msgsAfterPersist,
      apply,
      readStates: this.readStates,
      mustSync: promiseChanged || this.acceptedOut.length > 0 || snapshotSlot > 0,
    };
    this.pendingSelf = this.selfAfterPersist;
    this.selfAfterPersist = [];
    this.acceptedOut = [];
    this.learnedOut = [];
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    this.readyOutstanding = true;
    return rd;
  }

  /** The host made the Ready durable, sent its messages and applied its values. */
  advance(rd: PaxosReady): void {
    if (!this.readyOutstanding) throw new Error(`paxos ${this.id}: advance() without an outstanding ready()`);
    this.readyOutstanding = false;
    if (rd.snapshotSlot > this.applied) this.applied = rd.snapshotSlot;
    if (rd.apply.length > 0) this.applied = rd.apply[rd.apply.length - 1]!.slot;
    // This node's own promises and accepts count only once durable, like any other acceptor's.
    const self = this.pendingSelf;
    this.pendingSelf = [];
    for (const m of self) this.step(m);
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * The host's snapshot of its state machine through `slot` (applied) is durable: the slots it
   * covers go (chosen values and acceptances). Nodes that ask for them later get the snapshot.
   * Safe for the acceptor: a slot through its commit is chosen, and a new leader proposes only
   * past the highest commit its promises report.
   */
  compact(slot: number): void {
    if (slot > this.applied) throw new Error(`paxos ${this.id}: compact(${slot}) past what was applied (${this.applied})`);
    if (slot <= this.snapshotSlot) return;
    this.dropThrough(slot);
  }

  /**
   * What this node holds past its snapshot point — its promise, the proposals it accepted and the
   * values it learned — for a host that rewrites its log after a snapshot. Between Readies (no
   * Ready outstanding, none pending) this is exactly what the host made durable.
   */
  retained(): { promise: PaxosHardState; accepted: Proposal[]; learned: Chosen[] } {
    const learned: Chosen[] = [];
    for (const [slot, value] of this.chosenValues.entries()) learned.push({ slot, value });
    return { promise: { promised: this.promised, commit: this.commit }, accepted: [...this.accepted.values()], learned };
  }

  /**
   * Every node has chosen through this slot, as far as this node knows (the leader's view, which
   * it sends in heartbeats): no node will ever ask for a value at or below it. A node whose
   * peers never restart without their state (memory storage) may forget values through it.
   */
  get chosenByAll(): number {
    return Math.min(this.heldByAll, this.commit);
  }

  /** The slot through which this node's state lives only in a snapshot (0: none). */
  get compactedThrough(): number {
    return this.snapshotSlot;
  }

  private dropThrough(slot: number): void {
    this.snapshotSlot = Math.max(this.snapshotSlot, slot);
    this.chosenValues.dropThrough(slot);
    for (const s of [...this.accepted.keys()]) if (s <= slot) this.accepted.delete(s);
    this.acceptedOut = this.acceptedOut.filter((p) => p.slot > slot);
    this.learnedOut = this.learnedOut.filter((c) => c.slot > slot);
    for (const [s, run] of this.runs) if (s <= slot) this.abandon(run);
    for (const s of [...this.instances.keys()]) if (s <= slot) this.instances.delete(s);
  }

  /** Basic Paxos: a proposer asked about a slot already chosen here is told its value (or sent the snapshot). */
  private tellChosen(to: number, slot: number): void {
    if (slot <= this.snapshotSlot) this.send(paxosMessage(T.snapshot, this.id, to, 0, { slot: this.snapshotSlot, commit: this.commit }));
    else this.send(paxosMessage(T.chosen, this.id, to, 0, { chosen: [{ slot, value: this.chosenValues.get(slot)! }], commit: this.commit }));
  }

  // ---------------------------------------------------------------- acceptor

  private onPrepare(m: PaxosMessage): void {
    if (this.cfg.mode === 'basic' && m.slot <= this.commit) return this.tellChosen(m.from, m.slot);
    // The same ballot again (a resend, or Basic Paxos' next instance) gets the same promise.
    if (m.ballot < this.promised) {
      this.send(paxosMessage(T.nack, this.id, m.from, this.promised, { slot: m.slot, commit: this.commit }));
      return;
    }
    this.promised = m.ballot;
    if (this.cfg.mode === 'multi') this.follow(m.ballot);
    const reported: Proposal[] = [];
    if (this.cfg.mode === 'basic') {
      const p = this.accepted.get(m.slot);
      if (p !== undefined) reported.push(p);
    } else {
      for (const p of this.accepted.values()) if (p.slot >= m.slot) reported.push(p);
    }
    this.send(paxosMessage(T.promise, this.id, m.from, m.ballot, { slot: m.slot, proposals: reported, commit: this.commit }));
  }

  private onAccept(m: PaxosMessage): void {
    if (m.ballot < this.promised && this.cfg.unsafe.acceptBelowPromise !== true) {
      this.send(paxosMessage(T.nack, this.id, m.from, this.promised, { slot: m.proposals[0]?.slot ?? 0, commit: this.commit }));
      return;
    }
    if (m.ballot > this.promised) this.promised = m.ballot;
    if (this.cfg.mode === 'multi' && m.from !== this.id) this.follow(m.ballot);
    const slots: number[] = [];
    for (const p of m.proposals) {
      // Compacted: chosen long ago, and this acceptance would say nothing new.
      if (p.slot <= this.snapshotSlot) {
        if (this.cfg.mode === 'basic') this.tellChosen(m.from, p.slot);
        continue;
      }
      // A proposal with a ballot is immutable: a duplicate changes nothing.
      const had = this.accepted.get(p.slot);
      if (had !== undefined && had.ballot === p.ballot) {
        slots.push(p.slot);
        continue;
      }
      if (this.chosenValues.has(p.slot) && had === undefined) {
        // Chosen already and learned here: accepting again is harmless but needless; ack it.
      }
      const rec: Proposal = p.ballot === m.ballot ? p : { slot: p.slot, ballot: m.ballot, value: p.value };
      this.accepted.set(p.slot, rec);
      this.acceptedOut.push(rec);
      if (p.slot > this.highestSlot) this.highestSlot = p.slot;
      slots.push(p.slot);
    }
    this.send(paxosMessage(T.accepted, this.id, m.from, m.ballot, { slots, commit: this.commit }));
    // The leader's notice of slots chosen at its ballot, riding on this accept.
    if (m.slots.length > 0) {
      if (m.slot > this.heldByAll) this.heldByAll = m.slot;
      this.learnNamed(m);
    }
  }

  // ---------------------------------------------------------------- learner

  private learn(slot: number, value: Value): void {
    this.learnRecord({ slot, value });
  }

  /** Learns `c` (kept as is: a proposal with that slot and value will do). */
  private learnRecord(c: Chosen): void {
    const slot = c.slot;
    if (slot <= this.snapshotSlot || this.chosenValues.has(slot)) return;
    // Chosen is final: a leader's own proposal there (the same value, by Paxos) is done.
    this.instances.delete(slot);
    if (this.cfg.mode === 'basic') this.learnedBasic(slot, c.value);
    this.learnedOut.push(this.chosenValues.setRecord(c));
    if (slot > this.highestSlot) this.highestSlot = slot;
    this.advanceCommit();
  }

  private advanceCommit(): void {
    const multi = this.cfg.mode === 'multi';
    while (this.chosenValues.has(this.commit + 1)) {
      this.commit++;
      // Multi-Paxos: an acceptance of a chosen slot is never needed again (a candidate asking
      // from below our commit learns the chosen values from us instead; the log keeps them).
      if (multi) this.accepted.delete(this.commit);
    }
  }

  private maybeCatchUp(from: number, theirCommit: number): void {
    // At most one request per tick: a flood of messages from an advanced peer asks once.
    if (this.catchUpAskedTick === this.ticks || from === this.id) return;
    this.catchUpAskedTick = this.ticks;
    this.send(paxosMessage(T.catchUp, this.id, from, 0, { slot: this.commit + 1, commit: this.commit }));
    void theirCommit;
  }

  private onCatchUp(m: PaxosMessage): void {
    if (m.slot <= this.snapshotSlot) {
      this.send(paxosMessage(T.snapshot, this.id, m.from, 0, { slot: this.snapshotSlot, commit: this.commit }));
      return;
    }
    const chosen: Chosen[] = [];
    for (let s = m.slot; s <= this.commit && chosen.length < this.cfg.batchMax * 4; s++) chosen.push(this.chosenValues.chosen(s)!);
    if (chosen.length > 0) this.send(paxosMessage(T.chosen, this.id, m.from, 0, { chosen, commit: this.commit }));
  }

  private announce(slot: number, value: Value): void {
    this.learn(slot, value);
    this.chosenToSend.push({ slot, value });
  }

  /**
   * Multi-Paxos: `slot` was chosen at this leader's ballot, with the one value it proposes there.
   * Every acceptor that accepted the slot at this ballot holds that value already: the notice
   * names the slot only (an acceptor without it asks for it), so values cross the wire once.
   */
  private announceOwn(slot: number, inst: Instance): void {
    this.learnRecord(inst);
    this.chosenSlotsToSend.push(slot);
  }

  private sendChosen(): void {
    if (this.chosenToSend.length === 0 && this.chosenSlotsToSend.length === 0) return;
    const chosen = this.chosenToSend;
    const slots = this.chosenSlotsToSend;
    this.chosenToSend = [];
    this.chosenSlotsToSend = [];
    // `slot` carries how far every node has chosen, so nodes learn it at the pace of the log.
    const held = this.updateHeldByAll();
    for (const id of this.cfg.nodes) if (id !== this.id) this.send(paxosMessage(T.chosen, this.id, id, this.myBallot, { chosen, slots, commit: this.commit, slot: held }));
  }

  /** A leader's value-less notice: learn each slot from what we accepted at its ballot, or ask for it. */
  private learnNamed(m: PaxosMessage): void {
    for (const slot of m.slots) {
      if (slot <= this.commit || this.chosenValues.has(slot)) continue;
      const p = this.accepted.get(slot);
      // Chosen at ballot m.ballot with the leader's one value there; our acceptance at that ballot is it.
      if (p !== undefined && p.ballot === m.ballot) this.learnRecord(p);
    }
  }

  // ---------------------------------------------------------------- Multi-Paxos proposer

  private follow(b: number): void {
    const lead = nodeOf(b);
    if (lead !== this.id && this.role !== PaxosRole.follower && b > this.myBallot) this.stepDown();
    // A candidate's own prepare does not make it the leader: phase 1 has not been won yet.
    this.leaderId = lead === this.id && this.role !== PaxosRole.leader ? NONE : lead;
    if (lead !== this.id) this.electionElapsed = 0;
  }

  private stepDown(): void {
    this.role = PaxosRole.follower;
    this.instances.clear();
    this.backlog = [];
    this.backlogHead = 0;
    this.promises.clear();
    this.rounds.clear();
    this.waitingReads = [];
    this.resetTimeout();
  }

  private resetTimeout(): void {
    this.electionElapsed = 0;
    this.timeout = this.cfg.electionTicks + this.cfg.rng.int(0, this.cfg.electionTicks);
  }

  private tickFollower(): void {
    this.electionElapsed++;
    if (this.role === PaxosRole.candidate && this.electionElapsed % (2 * this.cfg.heartbeatTicks) === 0) this.resendPrepare();
    if (this.electionElapsed >= this.timeout) this.campaign();
  }

  /** Phase 1 for every slot past our commit, with a ballot above any we have seen. */
  campaign(): void {
    if (this.cfg.mode !== 'multi' || this.role === PaxosRole.leader) return;
    this.role = PaxosRole.candidate;
    this.leaderId = NONE;
    this.myBallot = makeBallot(Math.max(roundOf(this.promised), roundOf(this.myBallot)) + 1, this.id);
    this.promises.clear();
    this.promisedCommit = 0;
    this.promisedCommitFrom = NONE;
    this.resetTimeout();
    this.resendPrepare();
  }

  private resendPrepare(): void {
    for (const id of this.cfg.nodes) {
      if (this.promises.has(id) || (id === this.id && this.promised >= this.myBallot)) continue;
      this.send(paxosMessage(T.prepare, this.id, id, this.myBallot, { slot: this.commit + 1, commit: this.commit }));
    }
  }

  private onPromise(m: PaxosMessage): void {
    if (this.cfg.mode === 'basic') return this.onBasicPromise(m);
    if (this.role !== PaxosRole.candidate || m.ballot !== this.myBallot || this.promises.has(m.from)) return;
    this.promises.set(m.from, m.proposals);
    if (m.commit > this.promisedCommit) {
      this.promisedCommit = m.commit;
      this.promisedCommitFrom = m.from;
    }
    if (this.promises.size >= this.quorum) this.becomeLeader();
  }

  /**
   * Phase 1 won. Every slot past our commit that a promise reported gets the value accepted with
   * the highest ballot there (it may have been chosen: only that value is safe); slots below the
   * highest reported that no promise mentions get a no-op, so the slots after them can apply.
   */
  private becomeLeader(): void {
    this.role = PaxosRole.leader;
    this.leaderId = this.id;
    this.lastQuorumTick = this.ticks;
    this.heartbeatElapsed = 0;
    const best = new Map<number, Proposal>();
    // Slots through the highest commit a promiser reported are chosen already (and may be
    // compacted away there): learn them, never propose into them.
    const from = Math.max(this.commit, this.promisedCommit);
    if (from > this.commit && this.promisedCommitFrom !== NONE) {
      this.send(paxosMessage(T.catchUp, this.id, this.promisedCommitFrom, 0, { slot: this.commit + 1, commit: this.commit }));
    }
    let top = from;
    for (const list of this.promises.values()) {
      for (const p of list) {
        if (p.slot <= from) continue;
        const b = best.get(p.slot);
        if (b === undefined || p.ballot > b.ballot) best.set(p.slot, p);
        if (p.slot > top) top = p.slot;
      }
    }
    this.promises.clear();
    this.instances.clear();
    for (let s = from + 1; s <= top; s++) {
      const known = this.chosenValues.get(s);
      const reported = best.get(s);
      if (known !== undefined) this.assign(s, known);
      else if (reported !== undefined && this.cfg.unsafe.ignoreAcceptedInPromise !== true) this.assign(s, reported.value);
      else if (reported !== undefined || this.cfg.unsafe.skipGapFill !== true) this.assign(s, noop);
    }
    this.nextSlot = top + 1;
    this.sendAccepts(false);
    this.heartbeat();
  }

  /** A node's ack bit; 0 for a node outside the configuration (its acks never count). */
  private bitOf(id: number): number {
    return this.bits.get(id) ?? 0;
  }

  private assign(slot: number, value: Value): void {
    this.instances.set(slot, { slot, ballot: this.myBallot, value, acks: 0, ackCount: 0, sentTick: this.ticks, sent: false });
    this.unsent.push(slot);
    if (slot > this.highestSlot) this.highestSlot = slot;
  }

  /** Accepts for slots not sent yet (or, when `resend`, not acked for a heartbeat), batched. */
  /**
   * Accepts for slots not sent yet (or, when `resend`, not acked for a while), batched. `named`:
   * slots chosen at this ballot, announced on the first accept to each node (its `slots`), with
   * how far every node has chosen (its `slot`). Returns the nodes told.
   */
  private sendAccepts(resend: boolean, named: number[] | null = null): Set<number> {
    const by = new Map<number, Proposal[]>();
    // Resent only after an election timeout: under load an ack can take longer than a heartbeat
    // to come back, and an early resend doubles the values on the wire for nothing.
    const resendTicks = Math.max(2 * this.cfg.heartbeatTicks, this.cfg.electionTicks);
    const pick = (slot: number, inst: Instance): void => {
      if (inst.sent && !(resend && this.ticks - inst.sentTick >= resendTicks)) return;
      inst.sent = true;
      inst.sentTick = this.ticks;
      const proposal: Proposal = inst;
      for (const id of this.cfg.nodes) {
        if ((inst.acks & this.bitOf(id)) !== 0) continue;
        let list = by.get(id);
        if (list === undefined) by.set(id, (list = []));
        list.push(proposal);
      }
    };
    if (resend) {
      for (const [slot, inst] of this.instances) pick(slot, inst);
    } else {
      for (const slot of this.unsent) {
        const inst = this.instances.get(slot);
        if (inst !== undefined) pick(slot, inst);
      }
    }
    this.unsent = [];
    // Destinations with the same list (the usual case: nobody acked any of it yet) share the
    // same batches, so a host can encode each batch once for all of them.
    const told = new Set<number>();
    if (named !== null) this.updateHeldByAll();
    const batches = new Map<Proposal[], Proposal[][]>();
    const same = (a: Proposal[], b: Proposal[]) => a.length === b.length && a.every((p, i) => p === b[i]);
    for (const [id, list] of by) {
      let chunks: Proposal[][] | undefined;
      for (const [other, c] of batches) if (same(other, list)) chunks = c;
      if (chunks === undefined) {
        chunks = [];
        for (let i = 0; i < list.length; i += this.cfg.batchMax) chunks.push(list.slice(i, i + this.cfg.batchMax));
        batches.set(list, chunks);
      }
      chunks.forEach((proposals, i) => {
        const notice = i === 0 && named !== null && id !== this.id ? { slots: named, slot: this.heldByAll } : {};
        this.send(paxosMessage(T.accept, this.id, id, this.myBallot, { proposals, commit: this.commit, ...notice }));
      });
      if (named !== null && chunks.length > 0 && id !== this.id) told.add(id);
    }
    return told;
  }

  private onAccepted(m: PaxosMessage): void {
    if (this.cfg.mode === 'basic') return this.onBasicAccepted(m);
    if (this.role !== PaxosRole.leader || m.ballot !== this.myBallot) return;
    const bit = this.bitOf(m.from);
    for (const slot of m.slots) {
      const inst = this.instances.get(slot);
      if (inst === undefined) continue;
      if (bit === 0 || (inst.acks & bit) !== 0) continue;
      inst.acks |= bit;
      inst.ackCount++;
      if (inst.ackCount >= this.quorum) {
        this.instances.delete(slot);
        this.announceOwn(slot, inst);
      }
    }
  }

  private onNack(m: PaxosMessage): void {
    if (m.ballot > this.promised) this.promised = m.ballot;
    if (this.cfg.mode === 'basic') return this.onBasicNack(m);
    if (this.role !== PaxosRole.follower && m.ballot > this.myBallot) {
      this.stepDown();
      this.leaderId = nodeOf(m.ballot);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    // A leader that has not heard from a majority for two election timeouts is likely cut off.
    let heard = 0;
    for (const id of this.cfg.nodes) if (id === this.id || this.ticks - (this.heardAt.get(id) ?? -Infinity) < this.cfg.electionTicks) heard++;
    if (heard >= this.quorum) this.lastQuorumTick = this.ticks;
    else if (this.ticks - this.lastQuorumTick > 2 * this.cfg.electionTicks) {
      this.stepDown();
      this.leaderId = NONE;
      return;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.sendAccepts(true);
      this.heartbeat();
    }
  }

  /** How far every node has chosen, from the commits they told us of (each message carries its sender's). */
  private updateHeldByAll(): number {
    let held = this.commit;
    for (const id of this.cfg.nodes) if (id !== this.id) held = Math.min(held, this.peerCommit.get(id) ?? 0);
    if (held > this.heldByAll) this.heldByAll = held;
    return this.heldByAll;
  }

  /** One heartbeat round; it carries the reads waiting now (their index: the highest slot assigned). */
  private heartbeat(): void {
    let context = 0;
    if (this.waitingReads.length > 0) {
      context = this.nextRound++;
      this.rounds.set(context, { index: this.nextSlot - 1, contexts: this.waitingReads, acks: new Set() });
      this.waitingReads = [];
    }
    const held = this.updateHeldByAll();
    for (const id of this.cfg.nodes) this.send(paxosMessage(T.heartbeat, this.id, id, this.myBallot, { commit: this.commit, context, slot: held }));
  }

  private onHeartbeat(m: PaxosMessage): void {
    // Basic Paxos nodes gossip their commit this way (ballot 0); step() already acted on it.
    if (this.cfg.mode === 'basic') return;
    if (m.ballot < this.promised) {
      this.send(paxosMessage(T.nack, this.id, m.from, this.promised, { commit: this.commit }));
      return;
    }
    if (m.from !== this.id) this.follow(m.ballot);
    if (m.slot > this.heldByAll) this.heldByAll = m.slot;
    this.send(paxosMessage(T.heartbeatResp, this.id, m.from, m.ballot, { context: m.context, commit: this.commit }));
  }

  private onHeartbeatResp(m: PaxosMessage): void {
    if (this.role !== PaxosRole.leader || m.ballot !== this.myBallot || m.context === 0) return;
    const round = this.rounds.get(m.context);
    if (round === undefined) return;
    round.acks.add(m.from);
    if (round.acks.size < this.quorum) return;
    // Rounds complete in order: an older round still open is confirmed by this one too.
    for (const [id, r] of this.rounds) {
      if (id > m.context) break;
      for (const context of r.contexts) this.readStates.push({ index: r.index, context });
      this.rounds.delete(id);
    }
  }

  // ---------------------------------------------------------------- Basic Paxos proposer

  private tickBasic(): void {
    // Learners that missed a chosen notice hear commits here now and then.
    if (this.ticks % (3 * this.cfg.heartbeatTicks) === 0) {
      for (const id of this.cfg.nodes) if (id !== this.id) this.send(paxosMessage(T.heartbeat, this.id, id, 0, { commit: this.commit }));
    }
    for (const run of [...this.runs.values()]) {
      // No majority answered in time (loss, a crash): give the value back; the next try uses a higher ballot.
      if (this.ticks - run.sentTick >= this.cfg.electionTicks) {
        this.abandon(run);
        this.runBallot = 0;
      }
    }
    this.maybeStartBasic();
  }

  /** Starts instances for queued values, each in the lowest slot not known chosen nor already run here. */
  private maybeStartBasic(): void {
    if (this.ticks < this.backoffUntil) return;
    const concurrent = Math.min(this.cfg.inflightMax, basicConcurrencyMax);
    let slot = this.commit + 1;
    while (this.runs.size < concurrent && this.queue.length > 0) {
      while (this.chosenValues.has(slot) || this.runs.has(slot)) slot++;
      if (this.runBallot === 0) this.runBallot = this.myBallot = makeBallot(Math.max(roundOf(this.promised), roundOf(this.myBallot)) + 1, this.id);
      const own = this.queue.shift()!;
      own.proposed = true;
      const run: BasicRun = { slot, ballot: this.runBallot, phase: 1, own, value: own.value, promises: new Map(), acks: new Set(), sentTick: this.ticks };
      this.runs.set(slot, run);
      for (const id of this.cfg.nodes) this.send(paxosMessage(T.prepare, this.id, id, run.ballot, { slot, commit: this.commit }));
    }
  }

  /** A read marker's bytes: this node and a counter, so no two markers are equal anywhere. */
  private markerData(): Uint8Array {
    // A random part too: a restarted node counts from 1 again, and its old markers may still be chosen.
    const d = new Uint8Array(12);
    const v = new DataView(d.buffer);
    v.setUint32(0, this.id);
    v.setUint32(4, this.markerSalt);
    v.setUint32(8, ++this.markers);
    return d;
  }

  /**
   * Basic Paxos: `value` is chosen at `slot`. An instance of ours in that slot for another value
   * is over (ours goes elsewhere); and if the value is one of ours — whoever got it chosen, here
   * or in another slot — it is done: off the queue, its other instance dropped, its reads served.
   */
  private learnedBasic(slot: number, value: Value): void {
    const run = this.runs.get(slot);
    if (run !== undefined && !sameValue(run.own.value, value)) this.abandon(run);
    const own = this.pendingByKey.get(valueKey(value));
    if (own === undefined) return;
    this.pendingByKey.delete(valueKey(value));
    const queued = this.queue.indexOf(own);
    if (queued >= 0) this.queue.splice(queued, 1);
    for (const [s, r] of this.runs) {
      if (r.own !== own) continue;
      this.runs.delete(s);
      // That instance may have sent accepts with our ballot: the slot must never see another value with it.
      this.runBallot = 0;
    }
    if (own.value.kind === ValueKind.read) for (const context of own.readContexts) this.readStates.push({ index: slot, context });
  }

  /**
   * Gives an instance up; its value goes back to the queue. A later instance in that slot uses a
   * new ballot: this one may have sent accepts, and a ballot carries one value per slot.
   */
  private abandon(run: BasicRun): void {
    this.runs.delete(run.slot);
    this.queue.unshift(run.own);
    this.runBallot = 0;
  }

  private onBasicPromise(m: PaxosMessage): void {
    const run = this.runs.get(m.slot);
    if (run === undefined || run.phase !== 1 || m.ballot !== run.ballot || run.promises.has(m.from)) return;
    run.promises.set(m.from, m.proposals[0] ?? null);
    if (run.promises.size < this.quorum) return;
    // Round 5 chose X? Then some promiser in round 6's majority accepted X: propose X, not ours.
    let best: Proposal | null = null;
    for (const p of run.promises.values()) if (p !== null && (best === null || p.ballot > best.ballot)) best = p;
    run.value = best !== null && this.cfg.unsafe.ignoreAcceptedInPromise !== true ? best.value : run.own.value;
    run.phase = 2;
    run.sentTick = this.ticks;
    for (const id of this.cfg.nodes) this.send(paxosMessage(T.accept, this.id, id, run.ballot, { proposals: [{ slot: run.slot, ballot: run.ballot, value: run.value }], commit: this.commit }));
  }

  private onBasicAccepted(m: PaxosMessage): void {
    for (const slot of m.slots) {
      const run = this.runs.get(slot);
      if (run === undefined || run.phase !== 2 || m.ballot !== run.ballot) continue;
      run.acks.add(m.from);
      if (run.acks.size < this.quorum) continue;
      this.runs.delete(slot);
      this.duelsLost = 0;
      // learn() settles both cases: ours chosen (done), or another value (ours goes to a later slot).
      if (!sameValue(run.value, run.own.value)) this.queue.unshift(run.own);
      this.announce(slot, run.value);
    }
    this.maybeStartBasic();
  }

  private onBasicNack(m: PaxosMessage): void {
    if (this.runBallot === 0 || m.ballot <= this.runBallot) return;
    // Dueling proposers: give way for a random while (doubling with each duel lost in a row, so
    // two proposers soon stop pre-empting each other), then try again above the ballot that won.
    for (const run of [...this.runs.values()].sort((a, b) => b.slot - a.slot)) this.abandon(run);
    this.runBallot = 0;
    this.duelsLost = Math.min(this.duelsLost + 1, 3);
    this.backoffUntil = this.ticks + 1 + this.cfg.rng.int(0, this.cfg.electionTicks * 2 ** this.duelsLost);
  }

  // ---------------------------------------------------------------- output

  private send(m: PaxosMessage): void {
    // Promises and accepts vouch for durable acceptor state: they wait for the Ready. So does a
    // prepare: this node's own promise of its ballot must be durable first, or a crash would let
    // it come back below that ballot and use it again with other values.
    const afterPersist = m.type === T.promise || m.type === T.accepted || (m.type === T.prepare && m.to !== this.id);
    if (m.to === this.id) {
      if (afterPersist) this.selfAfterPersist.push(m);
      else this.step(m);
      return;
    }
    if (afterPersist) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }
}

/** A value's content as a map key (commands are unique per client request; read markers per node). */
function valueKey(v: Value): string {
  let k = String(v.kind);
  for (let i = 0; i < v.data.length; i++) k += String.fromCharCode(v.data[i]!);
  return k;
}

function sameValue(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
