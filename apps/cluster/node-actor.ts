// A Raft node as an actor: hosts the pure core on its worker, drives ticks from a real timer,
// persists each Ready batch before sending what promises durability, applies committed entries
// to the app's state machine and answers the supervisor's requests and client actors' proposals.
// It must never send an ack or vote before the state it promises is synced (per fsync policy).
import type { Actor, ActorContext, ActorFactory, ActorId } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import { openStorage, type FsyncPolicy } from '../../runtime/storage/index.ts';
import { EntryKind, MessageType, RaftNode, Role, roleName, type Message, type RaftMutations, type RaftSettings, type Ready } from '../../protocols/raft/index.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import { DurableLog } from './log-store.ts';
import type { FromNode, ReadRequest, ToNode } from './protocol.ts';
import { commandHeaderBytes, commandLength, decodeControl, decodeRaft, encodeControl, encodeRaft, frameKind, FrameKind, proposeHeader, proposeHeaderBytes } from './wire.ts';

/** The state machines a node can run: the KV store, or a counter of commands for benchmarks. */
export const nodeApps = ['kv', 'count'] as const;
export type NodeApp = (typeof nodeApps)[number];

interface StateMachine {
  /**
   * Applies the command in `bytes[start, end)`: log memory, valid only during the call (it is
   * reused once the log is compacted), handed over without a view so that apply allocates nothing.
   */
  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array;
  readLocal(key: string): Uint8Array | undefined;
}

const noResult = new Uint8Array(0);

/** Counts applied commands and their bytes, nothing else: the cheapest honest state machine. */
class CountStateMachine implements StateMachine {
  commands = 0;
  bytes = 0;
  apply(_index: number, _bytes: Uint8Array, start: number, end: number): Uint8Array {
    this.commands++;
    this.bytes += end - start;
    return noResult;
  }
  readLocal(): undefined {
    return undefined;
  }
}

/** The KV store, handed each command as its own view (it decodes the command anyway). */
class KvApp implements StateMachine {
  private readonly kv = new KvStateMachine();
  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array {
    return this.kv.apply(index, bytes.subarray(start, end));
  }
  readLocal(key: string): Uint8Array | undefined {
    return this.kv.readLocal(key);
  }
}

/**
 * What the leader knows of one client actor: the next seq it expects (a frame that does not
 * start there or before is ignored: the client goes back to its last ack after a busy or a
 * redirect), and per accepted frame the last log index and seq it covers, so one cumulative
 * ack ("applied through seq N") answers many proposals.
 */
interface ClientSession {
  nextSeq: number;
  /** Flat queue of (lastIndex, lastSeq, term) triples from `head`. */
  batches: number[];
  head: number;
  ackedSeq: number;
  ackDue: boolean;
}

export interface NodeConfig {
  /** Length of one Raft tick in milliseconds; election and heartbeat settings are in ticks. */
  tickMs: number;
  raft: Partial<RaftSettings>;
  storage: 'wal' | 'memory';
  fsync: FsyncPolicy;
  /** Status reports to the supervisor are sent at most this often (role changes go at once). */
  statusEveryMs: number;
  seed: number;
  /** The state machine: the KV store (default) or `count` for benchmarks. */
  app?: NodeApp;
  /**
   * The voting members. Default: this node and every peer. Set it when other actors (client
   * actors) share the supervisor: any actor that is not a voter is treated as a client.
   */
  voters?: number[];
  /**
   * Memory storage only: once this many applied entries are held by every voter, they are dropped
   * from memory (default compactEntriesDefault; 0: never). A node that can never restart has no
   * other use for them, and a log that only grows costs page faults and, in the end, the heap.
   */
  compactEntries?: number;
  /** Deliberate bugs, for tests that show the checkers catch them. Never set otherwise. */
  unsafe?: RaftMutations;
}

/** Entries per in-memory compaction step: one column block of the log's EntryArena. */
export const compactEntriesDefault = 1 << 16;
/** While a voter lags, how often the leader looks again at what every voter holds. */
const heldRecheckMs = 100;

interface PendingRead {
  id: number;
  key: string;
  /** The read index once the core has confirmed it; -1 until then. */
  index: number;
}

const statusRefreshMs = 1_000;

interface Pending {
  id: number;
  term: number;
}

const createNode: ActorFactory = (ctx: ActorContext): Actor => {
  const cfg = ctx.config as unknown as NodeConfig;
  if (cfg.storage === 'wal' && ctx.storage.dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  // A memory store dies with this worker and DurableLog keeps the log in memory anyway: one copy
  // of every entry, not two (keepEntries: false).
  const store = cfg.storage === 'wal' ? openStorage({ kind: 'wal', dir: ctx.storage.dir!, fsync: cfg.fsync }) : openStorage({ kind: 'memory', fsync: cfg.fsync, keepEntries: false });
  const recovered = store.load();
  ctx.emit({ type: 'recovered', summary: recovered.report.summary, entries: recovered.report.entriesRecovered, dropped: recovered.report.dropped });
  const compactEntries = cfg.storage === 'memory' ? (cfg.compactEntries ?? compactEntriesDefault) : 0;
  const log = new DurableLog(store, recovered, compactEntries > 0);
  const voters = (cfg.voters ?? [ctx.self, ...ctx.peers]).slice().sort((a, b) => a - b);
  const isVoter = new Set<ActorId>(voters);
  const raft = new RaftNode({
    ...cfg.raft,
    id: ctx.self,
    voters,
    storage: log,
    rng: createRng(mixSeed(cfg.seed, ctx.self, ctx.incarnation)),
    applied: 0,
    ...(cfg.unsafe ? { unsafe: cfg.unsafe } : {}),
  });
  const counter = cfg.app === 'count' ? new CountStateMachine() : null;
  const app: StateMachine = counter ?? new KvApp();
  const sessions = new Map<ActorId, ClientSession>();
  let acksDue = false;
  // Benchmark counters (read through control.benchStats).
  let appendsSent = 0;
  let entriesSent = 0;
  let proposalsAccepted = 0;
  const pending = new Map<number, Pending>();
  const reads = new Map<number, PendingRead>();
  /** Reads whose index is known, waiting until the state machine has applied that far. */
  let readsWaiting: PendingRead[] = [];
  let applied = 0;
  /** The highest index every voter is known to hold durably (from our progress as leader, or a leader's held frame). */
  let heldByAll = 0;
  /** When the leader last looked at its progress for heldByAll: applied index, time, and whether a voter lagged. */
  let heldCheckedAt = 0;
  let heldCheckedMs = 0;
  let heldBehind = false;
  let lastStatus = '';
  let lastStatusAt = -Infinity;
  let stopped = false;

  const reply = (m: FromNode) => ctx.send(supervisorId, m);

  function sendAll(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (m.type === MessageType.app && m.entries.length > 0) {
        appendsSent++;
        entriesSent += m.entries.length;
      }
      ctx.sendEncoded(m.to, encodeRaft(m));
    }
  }

  // ---- client actors -------------------------------------------------------------------------

  function sessionOf(client: ActorId, firstSeq: number): ClientSession {
    let s = sessions.get(client);
    if (s === undefined) {
      // A client's first frame here sets where its stream starts (it may come from another leader).
      s = { nextSeq: firstSeq, batches: [], head: 0, ackedSeq: firstSeq - 1, ackDue: false };
      sessions.set(client, s);
    }
    return s;
  }

  function leaderHint(): number {
    const lead = raft.softState.leader;
    return lead === ctx.self ? 0 : lead;
  }

  /**
   * A frame of proposals: copied out of the ring once; each command is a view of that copy, so
   * the bytes go to the log, the followers and apply without another copy or any re-encoding.
   */
  function onProposeFrame(client: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const { count, firstSeq } = proposeHeader(bytes, start, end);
    if (raft.softState.role !== Role.leader) {
      sessions.delete(client);
      ctx.sendEncoded(client, encodeControl(FrameKind.redirect, firstSeq, leaderHint()));
      return;
    }
    const s = sessionOf(client, firstSeq);
    const skip = s.nextSeq - firstSeq;
    // Ahead of what we expect: an earlier frame was refused; the client will go back.
    if (skip < 0 || skip >= count) return;
    const copy = bytes.slice(start, end);
    const buffer = copy.buffer; // once: `.buffer` is a slow builtin call
    let at = proposeHeaderBytes;
    let lastIndex = 0;
    for (let i = 0; i < count; i++) {
      if (at + commandHeaderBytes > copy.length) throw new DecodeError(end - start, `propose frame cut short at command ${i} of ${count}`);
      const len = commandLength(copy, at);
      const dataAt = at + commandHeaderBytes;
      if (dataAt + len > copy.length) throw new DecodeError(end - start, `propose frame cut short at command ${i} of ${count}`);
      at = dataAt + len;
      if (i < skip) continue;
      const index = raft.propose(new Uint8Array(buffer, dataAt, len));
      if (index === 0) {
        // Refused while leader: too many uncommitted entries, or a transfer. Back off.
        ctx.sendEncoded(client, encodeControl(FrameKind.busy, s.nextSeq));
        break;
      }
      lastIndex = index;
      s.nextSeq++;
      proposalsAccepted++;
    }
    if (lastIndex > 0) s.batches.push(lastIndex, s.nextSeq - 1, raft.softState.term);
  }

  /** After apply: advance every client's ack to the last frame whose entries are all applied. */
  function advanceAcks(): void {
    for (const [client, s] of sessions) {
      const q = s.batches;
      let h = s.head;
      while (h < q.length && q[h]! <= applied) {
        if (log.term(q[h]!) !== q[h + 2]) {
          // Another leader's entry took this index: what this client sent from there is lost.
          sessions.delete(client);
          ctx.sendEncoded(client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, leaderHint()));
          h = -1;
          break;
        }
        s.ackedSeq = q[h + 1]!;
        s.ackDue = true;
        acksDue = true;
        h += 3;
      }
      if (h < 0) continue;
      if (h === q.length) {
        q.length = 0;
        h = 0;
      } else if (h >= 3 * 1024 && h * 2 >= q.length) {
        // Under steady load the queue never empties: drop its consumed front now and then.
        q.copyWithin(0, h);
        q.length -= h;
        h = 0;
      }
      s.head = h;
    }
  }

  function sendAcks(): void {
    if (!acksDue) return;
    acksDue = false;
    for (const [client, s] of sessions) {
      if (!s.ackDue) continue;
      s.ackDue = false;
      ctx.sendEncoded(client, encodeControl(FrameKind.ack, s.ackedSeq));
    }
  }

  /** Lost leadership: every client goes back to its last ack and follows the hint. */
  function redirectClients(): void {
    for (const [client, s] of sessions) ctx.sendEncoded(client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, leaderHint()));
    sessions.clear();
  }

  /**
   * Memory storage: drop what every voter holds and this node applied. A node that can never
   * restart never needs such entries again, nor does any peer (each holds them durably and can
   * only lose them by a restart, which memory storage refuses). A crashed voter holds the point
   * back until the cluster is restarted: the log then grows as before, which is safe.
   */
  function maybeCompact(): void {
    if (compactEntries === 0) return;
    const now = ctx.now();
    // Not per batch (status() is not free): once per step of new entries, or now and then while
    // a voter lags behind, so that the point moves on once it has caught up.
    if (raft.softState.role === Role.leader && (applied - heldCheckedAt >= compactEntries || (heldBehind && now - heldCheckedMs >= heldRecheckMs))) {
      heldCheckedAt = applied;
      heldCheckedMs = now;
      let min = Infinity;
      for (const pr of raft.status().progress.values()) min = Math.min(min, pr.match);
      heldBehind = min < applied;
      if (Number.isFinite(min) && min > heldByAll) {
        heldByAll = min;
        for (const v of voters) if (v !== ctx.self) ctx.sendEncoded(v, encodeControl(FrameKind.held, heldByAll));
      }
    }
    const upTo = Math.min(heldByAll, applied);
    if (upTo - (log.firstIndex() - 1) >= compactEntries) log.compactThrough(upTo);
  }

  /** Where the entry being applied lies in the log's memory (reused: apply makes no object per entry). */
  const at = { bytes: noResult, start: 0, end: 0 };

  function apply(rd: Ready): void {
    // Read from the log, which holds every committed entry once rd.entries are written.
    for (let index = rd.committedFrom; index <= rd.committedTo; index++) {
      const result = log.locate(index, at) === EntryKind.normal ? app.apply(index, at.bytes, at.start, at.end) : null;
      applied = index;
      if (pending.size === 0) continue; // client actors are acked per frame, not per entry
      const p = pending.get(index);
      if (p === undefined) continue;
      pending.delete(index);
      const term = log.term(index);
      if (p.term !== term) reply({ t: 'dropped', id: p.id, why: `entry ${index} was replaced by a newer leader's entry (term ${term})` });
      else reply({ t: 'applied', id: p.id, index, result: result ?? new Uint8Array(0) });
    }
  }

  function reportStatus(force: boolean): void {
    const now = ctx.now();
    // Checked before building the status: this runs after every drained batch.
    if (!force && now - lastStatusAt < cfg.statusEveryMs) return;
    const st = raft.status();
    const key = `${st.role}:${st.term}:${st.leader}:${st.commit}:${st.lastIndex}`;
    // Unchanged status is still repeated now and then, so a supervisor that missed a report
    // (it restarted its view, or the frame was dropped) converges.
    if (key === lastStatus && now - lastStatusAt < statusRefreshMs) return;
    if (!force && now - lastStatusAt < cfg.statusEveryMs) return;
    lastStatus = key;
    lastStatusAt = now;
    reply({ t: 'status', role: st.role, term: st.term, leader: st.leader, commit: st.commit, lastIndex: st.lastIndex, applied: st.applied });
  }

  /** Drains every Ready: the one place where the durability order is kept. */
  function process(): void {
    catchUpTicks();
    raft.flush();
    while (raft.hasReady()) {
      const rd = raft.ready();
      // Leader appends and heartbeats go first: followers write in parallel with our own disk.
      sendAll(rd.messages);
      log.write(rd.entries, rd.hardState);
      if (rd.mustSync) log.sync();
      sendAll(rd.messagesAfterPersist);
      apply(rd);
      if (sessions.size > 0) advanceAcks();
      for (const rs of rd.readStates) {
        const r = reads.get(rs.context);
        if (r && r.index < 0) {
          r.index = rs.index;
          readsWaiting.push(r);
        }
      }
      serveReads();
      if (rd.softState) {
        // Reads not yet confirmed may vanish with the old role: tell the supervisor to retry.
        for (const r of reads.values()) if (r.index < 0) redirectRead(r.id);
        if (rd.softState.role !== Role.leader && sessions.size > 0) {
          sendAcks();
          redirectClients();
        }
        ctx.emit({ type: 'role', role: roleName[rd.softState.role], term: rd.softState.term, leader: rd.softState.leader });
        reportStatus(true);
      }
      raft.advance(rd);
    }
    // After advanceAcks, which looks up the terms of what was just applied.
    maybeCompact();
    sendAcks();
    reportStatus(false);
  }

  function serveRead(id: number, key: string, index: number): void {
    reads.delete(id);
    reply({ t: 'read-ok', id, value: app.readLocal(key) ?? null, index, applied, commit: raft.status().commit });
  }

  function serveReads(): void {
    if (readsWaiting.length === 0) return;
    const still: PendingRead[] = [];
    for (const r of readsWaiting) {
      if (r.index <= applied) serveRead(r.id, r.key, r.index);
      else still.push(r);
    }
    readsWaiting = still;
  }

  function redirectRead(id: number): void {
    reads.delete(id);
    const lead = raft.softState.leader;
    reply({ t: 'redirect', id, leader: lead === ctx.self ? 0 : lead });
  }

  function onRead(m: ReadRequest): void {
    if (m.mode === 'stale') {
      serveRead(m.id, m.key, applied);
      return;
    }
    const isLeader = raft.softState.role === Role.leader;
    if ((m.mode === 'index' || m.mode === 'lease') && !isLeader) {
      redirectRead(m.id);
      return;
    }
    reads.set(m.id, { id: m.id, key: m.key, index: -1 });
    // A lapsed lease falls back to a ReadIndex round: slower, still linearizable.
    catchUpTicks();
    const started = (m.mode === 'lease' && raft.leaseRead(m.id)) || raft.readIndex(m.id);
    if (!started) redirectRead(m.id);
  }

  // Ticks follow the monotonic clock, not the count of timer callbacks: after a pause (a stalled
  // thread, a long fsync) the core first sees all the time that passed. A lease must never
  // outlive real time because the node that holds it was not running.
  let lastTickAt = ctx.now();
  function catchUpTicks(): void {
    const due = Math.floor((ctx.now() - lastTickAt) / cfg.tickMs);
    if (due <= 0) return;
    lastTickAt += due * cfg.tickMs;
    for (let i = 0; i < due; i++) raft.tick();
  }

  function tick(): void {
    if (stopped) return;
    catchUpTicks();
    process();
    ctx.setTimer(cfg.tickMs, tick);
  }
  ctx.setTimer(cfg.tickMs, tick);

  function onClientRequest(m: ToNode): void {
    if (m.t === 'read') {
      onRead(m);
      return;
    }
    if (m.t !== 'propose') throw new Error(`node ${ctx.self}: unknown request ${JSON.stringify((m as { t: unknown }).t)} from the supervisor`);
    const index = raft.propose(m.data);
    if (index === 0) {
      reply({ t: 'redirect', id: m.id, leader: raft.softState.leader === ctx.self ? 0 : raft.softState.leader });
      return;
    }
    pending.set(index, { id: m.id, term: raft.softState.term });
  }

  return {
    receive(from, message) {
      if (from === supervisorId) onClientRequest(message as ToNode);
      else if (isVoter.has(from)) raft.step(message as Message);
      else throw new Error(`node ${ctx.self}: actor ${from} is not a voter and sent a codec message; client actors send propose frames`);
    },
    receiveFrame(from, bytes, start, end) {
      const kind = frameKind(bytes, start, end);
      if (kind === FrameKind.raft) {
        if (isVoter.has(from)) raft.step(decodeRaft(bytes, start, end));
      } else if (kind === FrameKind.held && isVoter.has(from)) {
        // True whoever sent it and whenever it arrives: what every voter holds it keeps.
        heldByAll = Math.max(heldByAll, decodeControl(bytes, start, end).seq);
      } else if (kind === FrameKind.propose && !isVoter.has(from) && from !== supervisorId) {
        onProposeFrame(from, bytes, start, end);
      } else {
        throw new DecodeError(end - start, `node ${ctx.self}: unexpected frame kind ${kind} from actor ${from}`);
      }
    },
    idle() {
      process();
    },
    stop() {
      stopped = true;
      log.close();
    },
    control: {
      status: () => {
        const st = raft.status();
        return { ...st, roleName: roleName[st.role], progress: Object.fromEntries(st.progress), pending: pending.size, reads: reads.size, firstIndex: log.firstIndex() };
      },
      campaign: () => {
        raft.campaign();
        process();
      },
      transferLeadership: (to: number) => {
        const ok = raft.transferLeadership(to);
        process();
        return ok;
      },
      read: (key: string) => app.readLocal(key),
      /** Counters for `concur bench raft`: cumulative since start; the caller takes differences. */
      benchStats: () => {
        const elu = performance.eventLoopUtilization();
        return {
          role: raft.softState.role,
          appendsSent,
          entriesSent,
          proposalsAccepted,
          applied,
          appliedCommands: counter?.commands ?? null,
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
