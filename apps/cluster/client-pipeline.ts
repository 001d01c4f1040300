// The one way into the cluster for every front door on the main thread (HTTP, RESP, the CLI
// through HTTP, chaos clients): writes are coalesced into propose frames per stream (one stream
// per node a client acts through), with sequence numbers, results that double as cumulative acks,
// and go-back on redirect, busy or silence — the path `concur bench raft` measures. Reads are
// batched per node and mode, one read index per batch. It must never resolve a write before it
// is applied, nor report "certainly not applied" for a write a node may have taken.
import type { ActorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import {
  BusyError,
  DeadlineError,
  NodeStateError,
  NoLeaderError,
  NoQuorumError,
  type BackendError,
  type LocalReadMode,
  type LocalReadResult,
  type ReadWaiter,
  type WriteWaiter,
} from '../http/backend.ts';
import { decodeReadAnswers, encodeReads, readModeCodes, readResults, ReadStatus, refusalText, type ReadItem } from './client-wire.ts';
import { commandHeaderBytes, decodeControl, FrameKind, frameKind, proposeHeaderBytes, proposeStartsStream, proposeWantsResults } from './wire.ts';
import { rawFrameTag } from '../../runtime/actor.ts';
import { DeadlineHeap } from './deadlines.ts';

/** Adapts the promise API to the waiters: one object per request, no closures. */
class WriteSettler implements WriteWaiter {
  constructor(
    private readonly resolve: (r: { index: number; result: Uint8Array }) => void,
    private readonly reject: (e: Error) => void,
  ) {}

  writeDone(err: Error | null, index: number, result: Uint8Array | null): void {
    if (err !== null) this.reject(err);
    else this.resolve({ index, result: result!.slice() });
  }
}

class ReadSettler implements ReadWaiter {
  constructor(
    private readonly resolve: (r: LocalReadResult) => void,
    private readonly reject: (e: Error) => void,
  ) {}

  readDone(err: Error | null, answer: LocalReadResult | null): void {
    if (err !== null) this.reject(err);
    else this.resolve(answer!.value === null ? answer! : { ...answer!, value: answer!.value.slice() });
  }
}

/** What the pipeline needs to know of the cluster (the supervisor's views of the nodes). */
export interface PipelineRouting {
  /** The node every view agrees leads the highest term, if any. */
  leader(): number | null;
  /** The leader node `via` knows of (itself if it leads), if any. */
  leaderSeenBy(via: number): number | null;
  isUp(id: number): boolean;
  /** Whether `from` and `to` can exchange messages (no partition between them). */
  reachable(from: number, to: number): boolean;
  /** Whether `id` can reach a majority of the voters. */
  hasQuorum(id: number): boolean;
  /**
   * Why nothing can commit through `node` (null: through whichever node leads), said as the
   * error to answer — voters down or paused, a partition — or null when a majority is within reach.
   */
  whyStuck?(node: number | null): BackendError | null;
  /** Nodes that serve follower and stale reads (up, and not witnesses). */
  readNodes(): number[];
  /** Sends a frame to a node; throws if the node is gone (removed). */
  send(to: ActorId, frame: Uint8Array): void;
}

type Problem = 'no-leader' | 'unreachable' | 'accepted' | 'busy';

interface Pending {
  /** performance.now() at which it gives up (the deadline heap expires it). */
  readonly deadlineAt: number;
  /** Settled (answered, or given up at its deadline): later answers are ignored. */
  done: boolean;
  /** The node it was last sent to (null: not sent, or sent back). */
  at: number | null;
  problem: Problem;
}

interface PendingWrite extends Pending {
  readonly command: Uint8Array;
  readonly waiter: WriteWaiter;
  readonly stream: WriteStream;
  /** Sends a node may have taken (not refused by a redirect or busy): while 0 it certainly did not take effect. */
  mayHaveApplied: number;
  /**
   * A node answered it. A write given up at its deadline stays in its stream until then: its
   * seq may be in a node's log, and a session skips what it has seen, so it is sent again.
   */
  answered: boolean;
  /** When a busy leader first refused it (0: not refused since it was last taken). */
  busySince: number;
  /** performance.now() at submit: the write's latency, for an observer (the dashboard). */
  readonly submittedAt: number;
}

interface PendingRead extends Pending {
  readonly item: ReadItem;
  readonly mode: LocalReadMode;
  readonly via: number | null;
  readonly waiter: ReadWaiter;
  /** Round-robin position for follower and stale reads spread over the nodes. */
  spread: number;
}

/** One client session: the writes sent through one node (or straight to the leader: stream 0). */
interface WriteStream {
  readonly id: number;
  readonly via: number | null;
  /** The node the frames go to (null: none known yet). */
  target: number | null;
  /** The next frame starts the stream afresh (the first one to a new target). */
  startNext: boolean;
  /** Writes from the oldest not yet answered: writes[head + i] has seq base + i. */
  writes: PendingWrite[];
  head: number;
  base: number;
  /** The next seq to send (go-back rewinds it). */
  sendNext: number;
  /** Every seq up to here was sent at least once; later writes were never sent and can be dropped. */
  sentThrough: number;
  pausedUntil: number;
  /** When this stream last got an answer, or started waiting for one. */
  progressAt: number;
}

interface ReadBatch {
  readonly id: number;
  readonly node: number;
  readonly mode: LocalReadMode;
  readonly reads: PendingRead[];
  sentAt: number;
}

export interface PipelineSettings {
  /** Commands per propose frame, at most. */
  commandsPerFrame: number;
  /** A propose frame is cut once it holds this many bytes (a larger single command still goes). */
  frameBytes: number;
  /** Seqs sent and not answered per stream, at most. */
  windowMax: number;
  /** Requests waiting or in flight, at most: beyond it the pipeline answers busy at once. */
  pendingMax: number;
  /** Reads per batch, at most. */
  readsPerBatch: number;
  /** Silence for this long: writes are sent again, reads asked again. */
  resendMs: number;
  /** After a busy answer, wait this long before sending again. */
  busyBackoffMs: number;
  /** Refused as busy for this long (and taken nowhere): the write fails with BusyError. */
  busyGiveUpMs: number;
}

export const pipelineDefaults: PipelineSettings = {
  commandsPerFrame: 1024,
  frameBytes: 256 * 1024,
  windowMax: 16_384,
  pendingMax: 200_000,
  readsPerBatch: 512,
  resendMs: 250,
  busyBackoffMs: 2,
  busyGiveUpMs: 250,
};

function busyText(forMs: number): string {
  return `the leader refused the write${forMs > 0 ? ` for ${forMs} ms` : ''}: it holds as many uncommitted entries or bytes as it may (writes arrive faster than the cluster commits them), or leadership is moving; retry shortly`;
}

/** How often waiting work is looked at again (no target yet, a busy pause, silence). */
const pollMs = 10;

export class ClientPipeline {
  private readonly settings: PipelineSettings;
  /**
   * By wire id (0: straight to the leader; 1..255 handed to each `via` node on first use). Kept
   * for good, seqs and all: a stream started again from seq 1 could take a late answer meant
   * for its former self.
   */
  private readonly streams = new Map<number, WriteStream>();
  private readonly viaStreams = new Map<number, WriteStream>();
  private readonly batches = new Map<number, ReadBatch>();
  private readonly deadlines = new DeadlineHeap<PendingWrite | PendingRead>();
  /** Reads not yet in a sent batch (no target yet, or between flushes). */
  private readsWaiting: PendingRead[] = [];
  private nextBatch = 1;
  private nextSpread = 0;
  private pendingCount = 0;
  private flushQueued = false;
  private poller: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private frame = new Uint8Array(64 * 1024);
  private frameView = new DataView(this.frame.buffer);

  constructor(
    private readonly routing: PipelineRouting,
    settings: Partial<PipelineSettings> = {},
  ) {
    this.settings = { ...pipelineDefaults, ...settings };
  }

  /** Requests waiting or in flight. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Called with each answered write's latency in milliseconds (set while someone watches). */
  onWriteDone: ((ms: number) => void) | null = null;

  submit(command: Uint8Array, timeoutMs: number, via: number | null): Promise<{ index: number; result: Uint8Array }> {
    return new Promise((resolve, reject) => this.submitTo(command, timeoutMs, via, new WriteSettler(resolve, reject)));
  }

  /** submit, told to `waiter` (called once, maybe before this returns) instead of a promise: what hot front doors use. */
  submitTo(command: Uint8Array, timeoutMs: number, via: number | null, waiter: WriteWaiter): void {
    const s = this.stream(via);
    if (s === null) {
      const err = new NodeStateError(`this process has written through 255 different nodes, the most one client pipeline tells apart; write without naming node ${via}`);
      err.definitelyNotApplied = true;
      waiter.writeDone(err, 0, null);
      return;
    }
    // Writes given up at their deadline stay in their stream until a node answers them (they
    // no longer count as pending): a stream no node answers holds at most pendingMax of them.
    if (s.writes.length - s.head >= this.settings.pendingMax) {
      waiter.writeDone(new BusyError(`${s.writes.length - s.head} writes ${s.via === null ? '' : `through node ${s.via} `}await an answer from the cluster; retry once it answers again`, 1_000), 0, null);
      return;
    }
    const refusal = this.admit();
    if (refusal !== null) {
      waiter.writeDone(refusal, 0, null);
      return;
    }
    const now = this.submitClock();
    const w: PendingWrite = {
      command,
      waiter,
      stream: s,
      deadlineAt: now + Math.max(1, timeoutMs),
      done: false,
      at: null,
      problem: 'no-leader',
      mayHaveApplied: 0,
      answered: false,
      busySince: 0,
      submittedAt: now,
    };
    this.deadlines.push(w, this.pendingCount);
    if (s.writes.length === s.head) s.progressAt = now;
    s.writes.push(w);
    this.queueFlush();
  }

  read(item: ReadItem, mode: LocalReadMode, timeoutMs: number, via: number | null): Promise<LocalReadResult> {
    return new Promise((resolve, reject) => this.readTo(item, mode, timeoutMs, via, new ReadSettler(resolve, reject)));
  }

  /** read, told to `waiter` instead of a promise. */
  readTo(item: ReadItem, mode: LocalReadMode, timeoutMs: number, via: number | null, waiter: ReadWaiter): void {
    const refusal = this.admit();
    if (refusal !== null) {
      waiter.readDone(refusal, null);
      return;
    }
    const r: PendingRead = {
      item,
      mode,
      via,
      waiter,
      deadlineAt: this.submitClock() + Math.max(1, timeoutMs),
      done: false,
      at: null,
      problem: 'no-leader',
      spread: this.nextSpread++,
    };
    this.deadlines.push(r, this.pendingCount);
    this.readsWaiting.push(r);
    this.queueFlush();
  }

  /** Counts a new request in, or says why it is refused. */
  private admit(): Error | null {
    if (this.stopped) return new NoLeaderError('the cluster is shutting down');
    if (this.pendingCount >= this.settings.pendingMax) return new BusyError(`${this.pendingCount} requests are already waiting for the cluster; retry shortly`, 100);
    this.pendingCount++;
    // Referenced, as a timer per request was: a process waiting on an answer stays up until
    // the answer or the deadline.
    if (this.poller === null) this.poller = setInterval(() => this.poll(), pollMs);
    return null;
  }

  private settle(p: Pending): boolean {
    if (p.done) return false;
    p.done = true;
    this.pendingCount--;
    return true;
  }

  /** The stream for writes through `via` (null: none), or null when no wire id is left for a new one. */
  private stream(via: number | null): WriteStream | null {
    let s = via === null ? this.streams.get(0) : this.viaStreams.get(via);
    if (s !== undefined) return s;
    const id = via === null ? 0 : this.viaStreams.size + 1;
    if (id > 255) return null;
    s = { id, via, target: null, startNext: true, writes: [], head: 0, base: 1, sendNext: 1, sentThrough: 0, pausedUntil: 0, progressAt: 0 };
    this.streams.set(id, s);
    if (via !== null) this.viaStreams.set(via, s);
    return s;
  }

  // ---- sending -----------------------------------------------------------------------------

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // After the I/O callbacks of this turn: everything they submitted goes in the same frames.
    setImmediate(() => {
      this.flushQueued = false;
      this.turnClockAt = -1;
      this.flush();
    });
  }

  /** performance.now() when the first request since the last flush was submitted (-1: none yet). */
  private turnClockAt = -1;

  /**
   * The clock for a request's deadline and latency: read once per turn's submissions, not per
   * request (a front door submits a socket's whole chunk of requests within microseconds; two
   * clock readings per request were ~4 % of the main thread's CPU under pipelined load).
   */
  private submitClock(): number {
    if (this.turnClockAt < 0) this.turnClockAt = performance.now();
    return this.turnClockAt;
  }

  private flush(): void {
    if (this.stopped) return;
    const now = performance.now();
    for (const s of this.streams.values()) this.sendWrites(s, now);
    if (this.readsWaiting.length > 0) this.sendReads(now);
  }

  /**
   * Where writes and leader reads go: the leader as a client of `via` reaches it (via null:
   * straight to the leader the cluster's views agree on); `unreachable` when `via` knows a
   * leader it cannot reach (a partition between them).
   */
  private leaderFor(via: number | null): { node: number | null; unreachable: boolean } {
    const r = this.routing;
    if (via === null) return { node: r.leader(), unreachable: false };
    const lead = r.leaderSeenBy(via);
    if (lead === null || !r.isUp(via) || !r.isUp(lead)) return { node: null, unreachable: false };
    if (!r.reachable(via, lead)) return { node: null, unreachable: true };
    return { node: lead, unreachable: false };
  }

  /**
   * Picks the stream's node again. A new node gets the stream from its oldest unanswered write,
   * starting afresh there (what the old node took may or may not be applied: the state machine's
   * session table answers a duplicate with the first result).
   */
  private retarget(s: WriteStream, hint: number | null): void {
    const before = s.target;
    s.target = hint !== null && this.routing.isUp(hint) && (s.via === null || this.routing.reachable(s.via, hint)) ? hint : this.leaderFor(s.via).node;
    if (s.target !== before) {
      s.startNext = true;
      s.sendNext = s.base;
    }
  }

  private write(s: WriteStream, seq: number): PendingWrite {
    return s.writes[s.head + seq - s.base]!;
  }

  private sendWrites(s: WriteStream, now: number): void {
    const total = s.base + s.writes.length - s.head;
    if (s.sendNext >= total || now < s.pausedUntil) return;
    // A node that went down, or a partition between the client's node and the target: look
    // again. (A deposed leader that does not know it yet is left by silence, or its redirect.)
    if (s.target === null || !this.routing.isUp(s.target) || (s.via !== null && !this.routing.reachable(s.via, s.target))) this.retarget(s, null);
    if (s.target === null) {
      const unreachable = this.leaderFor(s.via).unreachable;
      for (let q = s.sendNext; q < total; q++) {
        const w = this.write(s, q);
        w.at = null;
        if (unreachable) w.problem = 'unreachable';
      }
      return;
    }
    const { commandsPerFrame, frameBytes, windowMax } = this.settings;
    const limit = Math.min(total, s.base + windowMax);
    while (s.sendNext < limit) {
      let n = 0;
      let bytes = proposeHeaderBytes;
      const first = s.sendNext;
      while (first + n < limit && n < commandsPerFrame) {
        const len = this.write(s, first + n).command.length;
        if (n > 0 && bytes + commandHeaderBytes + len > frameBytes) break;
        bytes += commandHeaderBytes + len;
        n++;
      }
      const frame = this.proposeFrame(s, first, n, bytes);
      try {
        this.routing.send(s.target, frame);
      } catch {
        // Removed a moment ago: look for the leader again.
        s.target = null;
        return;
      }
      s.startNext = false;
      for (let q = first; q < first + n; q++) {
        const w = this.write(s, q);
        w.at = s.target;
        w.problem = 'accepted';
        w.mayHaveApplied++;
      }
      s.sendNext = first + n;
      if (s.sendNext - 1 > s.sentThrough) s.sentThrough = s.sendNext - 1;
    }
  }

  private proposeFrame(s: WriteStream, firstSeq: number, count: number, bytes: number): Uint8Array {
    if (this.frame.length < bytes) {
      let size = this.frame.length;
      while (size < bytes) size *= 2;
      this.frame = new Uint8Array(size);
      this.frameView = new DataView(this.frame.buffer);
    }
    const b = this.frame;
    const v = this.frameView;
    b[0] = rawFrameTag;
    b[1] = FrameKind.propose;
    b[2] = proposeWantsResults | (s.startNext ? proposeStartsStream : 0);
    b[3] = s.id;
    v.setUint32(4, count, true);
    v.setFloat64(8, firstSeq, true);
    let at = proposeHeaderBytes;
    for (let q = firstSeq; q < firstSeq + count; q++) {
      const c = this.write(s, q).command;
      v.setUint32(at, c.length, true);
      b.set(c, at + commandHeaderBytes);
      at += commandHeaderBytes + c.length;
    }
    return b.subarray(0, at);
  }

  /** Where a read goes: the leader for index and lease reads, any serving node for follower and stale reads. */
  private readTarget(r: PendingRead): number | null {
    const rt = this.routing;
    if (r.mode === 'follower' || r.mode === 'stale') {
      if (r.via !== null) return rt.isUp(r.via) ? r.via : null;
      const nodes = rt.readNodes();
      return nodes.length === 0 ? null : nodes[r.spread++ % nodes.length]!;
    }
    const lead = this.leaderFor(r.via);
    if (lead.unreachable) r.problem = 'unreachable';
    return lead.node;
  }

  private sendReads(now: number): void {
    // Keyed by node and mode: node × 4 + the mode's place in readModeCodes.
    const groups = new Map<number, PendingRead[]>();
    const still: PendingRead[] = [];
    for (const r of this.readsWaiting) {
      if (r.done) continue;
      const node = this.readTarget(r);
      if (node === null) {
        r.at = null;
        still.push(r);
        continue;
      }
      const key = node * 4 + readModeCodes.indexOf(r.mode);
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(r);
      r.at = node;
    }
    this.readsWaiting = still;
    for (const g of groups.values()) {
      for (let i = 0; i < g.length; i += this.settings.readsPerBatch) {
        const reads = g.slice(i, i + this.settings.readsPerBatch);
        const b: ReadBatch = { id: this.nextBatch++, node: reads[0]!.at!, mode: reads[0]!.mode, reads, sentAt: now };
        try {
          this.routing.send(b.node, encodeReads(b.id, b.mode, reads.map((r) => r.item)));
        } catch {
          for (const r of reads) r.at = null;
          this.readsWaiting.push(...reads);
          continue;
        }
        for (const r of reads) r.problem = 'accepted';
        this.batches.set(b.id, b);
      }
    }
  }

  // ---- answers -----------------------------------------------------------------------------

  /** A raw frame a node sent the supervisor (ring memory, valid during the call). */
  onFrame(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const kind = frameKind(bytes, start, end);
    if (kind === FrameKind.results) this.onResults(from, bytes, start, end);
    else if (kind === FrameKind.readAnswers) this.onReadAnswers(from, bytes, start, end);
    else if (kind === FrameKind.redirect || kind === FrameKind.busy) {
      const c = decodeControl(bytes, start, end);
      const s = this.streams.get(c.stream);
      if (s !== undefined) this.onRefused(s, from, kind === FrameKind.busy, c.notTaken, c.seq, c.leader);
    } else throw new DecodeError(end - start, `client pipeline: unexpected frame kind ${kind} from node ${from}`);
  }

  private onResults(_from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const s = this.streams.get(bytes[start + 2]!);
    if (s === undefined) return;
    // Any node's results are real (applied), even from a node this stream has left since. A
    // frame may start past the oldest unanswered write (a node that lost and regained leadership
    // between two frames): those writes wait for their own answer.
    readResults(bytes, start, end, (seq, index, result) => {
      if (seq < s.base || seq >= s.base + s.writes.length - s.head) return;
      const w = this.write(s, seq);
      w.answered = true;
      if (!this.settle(w)) return;
      w.waiter.writeDone(null, index, result);
      if (this.onWriteDone !== null) this.onWriteDone(performance.now() - w.submittedAt);
    });
    const before = s.base;
    while (s.head < s.writes.length && s.writes[s.head]!.answered) {
      s.head++;
      s.base++;
    }
    if (s.head === s.writes.length) {
      s.writes = [];
      s.head = 0;
    } else if (s.head >= 1024 && s.head * 2 >= s.writes.length) {
      s.writes = s.writes.slice(s.head);
      s.head = 0;
    }
    if (s.sendNext < s.base) s.sendNext = s.base;
    if (s.base > before) s.progressAt = performance.now();
    if (s.writes.length > s.head) this.queueFlush();
  }

  private onRefused(s: WriteStream, from: ActorId, busy: boolean, notTaken: boolean, fromSeq: number, hint: number): void {
    // A busy answer, or a redirect for a frame the node took nothing of: those sends did not take
    // effect there. A redirect that sends the stream back (the node lost leadership, or another
    // leader's entries replaced some of its own) says nothing of what it took: that may still apply.
    const refused = busy || notTaken;
    for (let q = Math.max(fromSeq, s.base); q < s.sendNext; q++) {
      const w = this.write(s, q);
      if (refused && w.at === from && w.mayHaveApplied > 0) w.mayHaveApplied--;
      w.at = null;
      w.problem = busy ? 'busy' : 'no-leader';
      if (busy && w.busySince === 0) w.busySince = performance.now();
    }
    if (from !== s.target) return; // a late answer from a node we left already
    s.sendNext = Math.max(s.base, Math.min(s.sendNext, fromSeq));
    s.progressAt = performance.now();
    if (busy) {
      s.pausedUntil = performance.now() + this.settings.busyBackoffMs;
      return; // the poller sends again after the pause
    }
    this.retarget(s, hint !== 0 && hint !== from ? hint : null);
    if (s.target === from) s.target = null; // it is not the leader, whatever the views say yet
    this.queueFlush();
  }

  private onReadAnswers(from: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const a = decodeReadAnswers(bytes, start, end);
    const b = this.batches.get(a.batch);
    if (b === undefined || b.node !== from) return;
    if (a.status === ReadStatus.ok) {
      for (let i = 0; i < a.values.length; i++) {
        const r = b.reads[a.first + i];
        const v = a.values[i]!;
        if (r !== undefined && this.settle(r)) r.waiter.readDone(null, { value: v, index: a.index, node: from, applied: a.applied, commit: a.commit });
      }
      if (a.first + a.values.length >= b.reads.length) this.batches.delete(b.id);
      return;
    }
    this.batches.delete(b.id);
    if (a.status === ReadStatus.refused) {
      const why = refusalText(a);
      for (const r of b.reads) {
        if (!this.settle(r)) continue;
        const err = new NodeStateError(why);
        err.definitelyNotApplied = true;
        r.waiter.readDone(err, null);
      }
      return;
    }
    // Redirect: to the hinted leader at once, or wait for an election.
    for (const r of b.reads) {
      if (r.done) continue;
      r.problem = 'no-leader';
      r.at = null;
    }
    const live = b.reads.filter((r) => !r.done);
    if (a.leader !== 0 && a.leader !== from && live.every((r) => r.via === null && (r.mode === 'index' || r.mode === 'lease'))) {
      try {
        this.routing.send(a.leader, encodeReads(b.id, b.mode, live.map((r) => r.item)));
        for (const r of live) {
          r.at = a.leader;
          r.problem = 'accepted';
        }
        this.batches.set(b.id, { id: b.id, node: a.leader, mode: b.mode, reads: live, sentAt: performance.now() });
        return;
      } catch {
        // gone: wait like the others
      }
    }
    this.readsWaiting.push(...live);
  }

  // ---- time --------------------------------------------------------------------------------

  private poll(): void {
    if (this.stopped) return;
    const now = performance.now();
    this.deadlines.expireThrough(now, (p) => ('command' in p ? this.expireWrite(p.stream, p) : this.expireRead(p)));
    const { resendMs } = this.settings;
    for (const s of this.streams.values()) {
      if (s.writes.length === s.head) continue;
      // Silence while writes are out (lost frames, a node that crashed or stopped leading
      // without a word): go back to the oldest unanswered, look for the leader again, and start
      // the stream afresh there (the node may hold a session that skips what we resend).
      if (s.sendNext > s.base && now - s.progressAt > resendMs) {
        s.progressAt = now;
        this.retarget(s, null);
        s.sendNext = s.base;
        s.startNext = true;
      }
      if (now >= s.pausedUntil) this.giveUpBusy(s, now);
      this.sendWrites(s, now);
    }
    for (const b of this.batches.values()) {
      if (now - b.sentAt <= resendMs) continue;
      this.batches.delete(b.id);
      for (const r of b.reads) if (!r.done) this.readsWaiting.push(r);
    }
    if (this.readsWaiting.length > 0) this.sendReads(now);
    if (this.pendingCount === 0 && this.poller !== null) {
      clearInterval(this.poller);
      this.poller = null;
    }
  }

  /**
   * Writes a busy leader kept refusing fail with BusyError, as they certainly did not take
   * effect: only when no write from there on may have been taken anywhere, so they can leave
   * the stream and the later ones take their seqs.
   */
  private giveUpBusy(s: WriteStream, now: number): void {
    const first = s.head + s.sendNext - s.base;
    const w0 = s.writes[first];
    if (w0 === undefined || w0.busySince === 0 || now - w0.busySince < this.settings.busyGiveUpMs) return;
    for (let i = first; i < s.writes.length; i++) if (s.writes[i]!.mayHaveApplied > 0 || s.writes[i]!.done) return;
    const failed: PendingWrite[] = [];
    let i = first;
    while (i < s.writes.length && s.writes[i]!.busySince !== 0 && now - s.writes[i]!.busySince >= this.settings.busyGiveUpMs) failed.push(s.writes[i++]!);
    s.writes.splice(first, failed.length);
    s.sentThrough = s.sendNext - 1;
    for (const w of failed) {
      if (!this.settle(w)) continue;
      w.waiter.writeDone(new BusyError(busyText(this.settings.busyGiveUpMs), 1_000), 0, null);
    }
  }

  /** A node crashed or stopped leading: what waits on it goes elsewhere. */
  nodeLost(id: number): void {
    let any = false;
    for (const s of this.streams.values()) {
      if (s.target !== id) continue;
      s.target = null;
      s.startNext = true;
      s.sendNext = s.base;
      any = true;
    }
    for (const b of this.batches.values()) {
      if (b.node !== id) continue;
      this.batches.delete(b.id);
      for (const r of b.reads) if (!r.done) this.readsWaiting.push(r);
      any = true;
    }
    if (any) this.queueFlush();
  }

  // ---- deadlines ---------------------------------------------------------------------------

  private expireWrite(s: WriteStream, w: PendingWrite): void {
    if (w.done) return;
    const i = s.writes.indexOf(w, s.head);
    // Never sent: it leaves the stream (later writes were never sent either, so their seqs
    // can move). Sent: it stays (its seq may be in a node's log), its answer unheard.
    if (i >= 0 && s.base + i - s.head > s.sentThrough) s.writes.splice(i, 1);
    const err = this.deadlineError(w, s.via);
    err.definitelyNotApplied = w.mayHaveApplied === 0;
    if (this.settle(w)) w.waiter.writeDone(err, 0, null);
  }

  private expireRead(r: PendingRead): void {
    if (r.done) return;
    const i = this.readsWaiting.indexOf(r);
    if (i >= 0) this.readsWaiting.splice(i, 1);
    const err = this.deadlineError(r, r.via);
    err.definitelyNotApplied = true;
    if (this.settle(r)) r.waiter.readDone(err, null);
  }

  private deadlineError(p: Pending, via: number | null): BackendError {
    const node = p.at ?? via;
    const stuck = this.routing.whyStuck?.(node) ?? null;
    if (stuck !== null) return stuck;
    if (node !== null && !this.routing.hasQuorum(node)) return new NoQuorumError(`node ${node} cannot reach a majority of the cluster, so nothing it holds can commit; retry after the partition heals`);
    if (p.problem === 'accepted') return new DeadlineError();
    if (p.problem === 'busy') return new BusyError(busyText(0), 1_000);
    if (p.problem === 'unreachable') return new NoQuorumError(`node ${via} cannot reach the leader: a partition or cut lies between them; retry after the network heals (POST /cluster/heal)`);
    return new NoLeaderError('no leader is elected yet (an election is under way); retry shortly');
  }

  /** Rejects everything waiting; later calls are refused. */
  stop(): void {
    this.stopped = true;
    if (this.poller !== null) clearInterval(this.poller);
    this.poller = null;
    const reads: PendingRead[] = [...this.readsWaiting];
    for (const b of this.batches.values()) reads.push(...b.reads);
    const shutting = () => new NoLeaderError('the cluster is shutting down');
    for (const s of this.streams.values()) for (const w of s.writes.slice(s.head)) if (this.settle(w)) w.waiter.writeDone(shutting(), 0, null);
    for (const r of reads) if (this.settle(r)) r.waiter.readDone(shutting(), null);
    this.deadlines.clear();
    this.streams.clear();
    this.batches.clear();
    this.readsWaiting = [];
  }
}
