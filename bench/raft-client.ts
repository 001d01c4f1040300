// A client actor for `concur bench raft`: on its own worker, it streams opaque proposals to the
// leader in propose frames (closed loop: a fixed number outstanding; or open loop: a fixed
// offered rate) and records commit latency from the leader's cumulative acks in an HDR histogram.
// It must never wait for one proposal before sending the next, nor allocate per proposal.
import type { Actor, ActorContext, ActorFactory, ActorId } from '../runtime/actor.ts';
import { DecodeError } from '../runtime/codec.ts';
import { decodeControl, FrameKind, ProposeFrameWriter } from '../apps/cluster/wire.ts';
import { LatencyRecorder } from './latency.ts';

export interface RaftClientConfig {
  /** The cluster's voters: where proposals may go. */
  voters: number[];
  payloadBytes: number;
  /** Proposals per propose frame (the client-side batch). */
  proposalsPerFrameMax: number;
  /**
   * Open loop: proposals sent but not yet acked, at most. What is due beyond it waits (its
   * latency still counts from when it was due), so a backlog is not resent in full after every
   * busy refusal; kept below the leader's uncommitted limit, the leader never has to refuse.
   */
  openLoopOutstandingMax: number;
}

export interface RaftClientRun {
  /** The node believed to lead (0: start with the first voter and follow redirects). */
  leader: number;
  mode: 'closed' | 'open';
  /** Closed loop: proposals outstanding at any time. */
  outstanding: number;
  /** Open loop: proposals offered per second, on schedule whether or not earlier ones are done. */
  ratePerSec: number;
  warmupMs: number;
  durationMs: number;
  /** Stop offering after this many proposals (0: no limit); the run ends once all are acked. */
  totalOps: number;
  /** Give up waiting for acks this long after the offer stops. */
  drainTimeoutMs: number;
}

export interface RaftClientResult {
  /** Proposals acked within the measured window. */
  ackedInWindow: number;
  /** Every proposal acked since the run started. */
  ackedTotal: number;
  offeredTotal: number;
  windowMs: number;
  /** The latency histogram (µs) of proposals acked in the window, compressed base64. */
  histogram: string;
  redirects: number;
  busy: number;
  /** Open loop: proposals that could not even be offered because the window of seqs was full. */
  backlogDropped: number;
}

/** Seqs tracked at once (sent, not yet acked): a power of two, so a seq's slot is `seq & mask`. */
const seqSlots = 1 << 20;
const seqMask = seqSlots - 1;
/** Open loop: how often the generator offers what is due. */
const openLoopTickMs = 1;
/** After a busy answer (the leader's uncommitted limit), wait this long before sending again. */
const busyBackoffMs = 1;
/** No leader known: try the next voter after this long. */
const noLeaderRetryMs = 20;

const createClient: ActorFactory = (ctx: ActorContext): Actor => {
  const cfg = ctx.config as unknown as RaftClientConfig;
  const frame = new ProposeFrameWriter(cfg.proposalsPerFrameMax, cfg.payloadBytes);
  const sentAt = new Float64Array(seqSlots);

  let run: RaftClientRun | null = null;
  let leader: ActorId = 0;
  /** The next seq to send (go-back-N: a redirect or busy rewinds it to the first unacked seq). */
  let seqNext = 1;
  /** Every seq up to here has a send time (a resend keeps the first). */
  let stampedThrough = 0;
  let ackedThrough = 0;
  /** Seqs offered so far: the generator's target; pump sends up to it. */
  let offered = 0;
  let paused = false;
  let startedAt = 0;
  let windowStart = 0;
  let windowEnd = 0;
  let offerEnd = 0;
  /** Seqs before this run: totalOps counts from here. */
  let baseSeq = 0;
  let recorder = new LatencyRecorder();
  let ackedInWindow = 0;
  let redirects = 0;
  let busy = 0;
  let backlogDropped = 0;
  let done: ((r: RaftClientResult) => void) | null = null;
  let openTimer = 0;

  function offerTarget(now: number): number {
    const r = run!;
    let target: number;
    if (r.mode === 'closed') target = now < offerEnd ? ackedThrough + r.outstanding : offered;
    else {
      const elapsed = Math.min(now, offerEnd) - startedAt;
      target = Math.floor((elapsed * r.ratePerSec) / 1000);
    }
    if (r.totalOps > 0 && target > baseSeq + r.totalOps) target = baseSeq + r.totalOps;
    if (target - ackedThrough >= seqSlots) {
      backlogDropped += target - (ackedThrough + seqSlots - 1);
      target = ackedThrough + seqSlots - 1;
    }
    return Math.max(offered, target);
  }

  function stampOpen(from: number, to: number): void {
    // Open loop: each proposal's latency runs from when it was due, not when it was sent, so
    // a stalled sender cannot hide the queueing it causes (no coordinated omission).
    const r = run!;
    for (let s = from; s <= to; s++) sentAt[s & seqMask] = startedAt + ((s - 1) * 1000) / r.ratePerSec;
  }

  /**
   * Sends offered but unsent proposals in frames of up to proposalsPerFrameMax. Open loop, between
   * ticks (`onTick` false: after acks), only full frames go; the rest waits for the next tick.
   * Sending every ack's worth of newly due proposals at once keeps all four threads waking for a
   * few entries each (measured at 200 k/s offered: 1.6 cores busy, against 0.65 this way); the
   * wait counts in their latency, which runs from when each was due.
   */
  function pump(onTick: boolean): void {
    if (run === null || paused || leader === 0) return;
    const now = ctx.now();
    const target = offerTarget(now);
    if (target > offered) {
      if (run.mode === 'open') stampOpen(offered + 1, target);
      offered = target;
    }
    const sendThrough = run.mode === 'open' ? Math.min(offered, ackedThrough + cfg.openLoopOutstandingMax) : offered;
    const fullOnly = run.mode === 'open' && !onTick;
    while (seqNext <= sendThrough) {
      if (fullOnly && sendThrough - seqNext + 1 < cfg.proposalsPerFrameMax) break;
      frame.begin(seqNext);
      const bytes = frame.bytes;
      while (seqNext <= sendThrough && frame.commands < cfg.proposalsPerFrameMax) {
        const at = frame.add(cfg.payloadBytes);
        // The command is opaque to the cluster; its first bytes carry the seq so that no two are alike.
        bytes[at] = seqNext & 0xff;
        bytes[at + 1] = (seqNext >>> 8) & 0xff;
        bytes[at + 2] = (seqNext >>> 16) & 0xff;
        bytes[at + 3] = (seqNext >>> 24) & 0xff;
        if (seqNext > stampedThrough) {
          if (run.mode === 'closed') sentAt[seqNext & seqMask] = now;
          stampedThrough = seqNext;
        }
        seqNext++;
      }
      ctx.sendEncoded(leader, frame.finish());
    }
  }

  function onAck(seq: number): void {
    if (seq <= ackedThrough) return;
    const now = ctx.now();
    const inWindow = now >= windowStart && now < windowEnd;
    if (inWindow) {
      // Proposals of one frame share a send time (closed loop): record runs of equal times at once.
      let s = ackedThrough + 1;
      while (s <= seq) {
        const t = sentAt[s & seqMask]!;
        let n = 1;
        while (s + n <= seq && sentAt[(s + n) & seqMask] === t) n++;
        recorder.recordUs(Math.round((now - t) * 1000), n);
        s += n;
      }
      ackedInWindow += seq - ackedThrough;
    }
    ackedThrough = seq;
    if (seqNext <= ackedThrough) seqNext = ackedThrough + 1;
    maybeFinish(now);
  }

  function rewind(fromSeq: number): void {
    seqNext = Math.max(ackedThrough + 1, Math.min(seqNext, fromSeq));
  }

  function onRedirect(fromSeq: number, hint: number): void {
    redirects++;
    rewind(fromSeq);
    if (hint !== 0 && cfg.voters.includes(hint)) {
      leader = hint;
      return;
    }
    // No hint: try the next voter a little later (an election may be under way).
    const i = cfg.voters.indexOf(leader);
    leader = 0;
    const next = cfg.voters[(i + 1) % cfg.voters.length]!;
    ctx.setTimer(noLeaderRetryMs, () => {
      if (leader === 0) leader = next;
      pump(true);
    });
  }

  function onBusy(fromSeq: number): void {
    busy++;
    rewind(fromSeq);
    if (paused) return;
    paused = true;
    ctx.setTimer(busyBackoffMs, () => {
      paused = false;
      pump(true);
    });
  }

  function maybeFinish(now: number): void {
    if (run === null || done === null) return;
    const r = run;
    const allAcked = ackedThrough >= offered && (r.totalOps > 0 ? offered >= baseSeq + r.totalOps : now >= offerEnd);
    if (!allAcked && now < offerEnd + r.drainTimeoutMs) return;
    if (now < windowEnd && r.totalOps === 0) return;
    const resolve = done;
    done = null;
    if (openTimer !== 0) ctx.clearTimer(openTimer);
    openTimer = 0;
    const result: RaftClientResult = {
      ackedInWindow,
      ackedTotal: ackedThrough,
      offeredTotal: offered,
      windowMs: windowEnd - windowStart,
      histogram: recorder.encode(),
      redirects,
      busy,
      backlogDropped,
    };
    run = null;
    resolve(result);
  }

  function openLoopTick(): void {
    openTimer = 0;
    if (run === null) return;
    pump(true);
    maybeFinish(ctx.now());
    if (run !== null) openTimer = ctx.setTimer(openLoopTickMs, openLoopTick);
  }

  return {
    receive() {
      throw new Error(`client ${ctx.self}: expected only raw ack/redirect/busy frames`);
    },
    receiveFrame(_from, bytes, start, end) {
      const c = decodeControl(bytes, start, end);
      if (c.kind === FrameKind.ack) onAck(c.seq);
      else if (c.kind === FrameKind.redirect) onRedirect(c.seq, c.leader);
      else if (c.kind === FrameKind.busy) onBusy(c.seq);
      else throw new DecodeError(end - start, `client ${ctx.self}: unexpected frame kind ${c.kind}`);
    },
    idle() {
      // Acks of a whole drained batch are in: refill the window once for all of them.
      pump(false);
    },
    control: {
      /** Runs one load and resolves with its result (one run at a time per client). */
      run(r: RaftClientRun): Promise<RaftClientResult> {
        if (run !== null) throw new Error(`client ${ctx.self}: a run is already going`);
        run = r;
        leader = r.leader || cfg.voters[0]!;
        // Seqs continue across runs (a leader's session expects the next one).
        offered = ackedThrough = seqNext - 1;
        stampedThrough = baseSeq = offered;
        paused = false;
        recorder = new LatencyRecorder();
        ackedInWindow = redirects = busy = backlogDropped = 0;
        startedAt = ctx.now();
        windowStart = startedAt + r.warmupMs;
        windowEnd = windowStart + r.durationMs;
        offerEnd = r.totalOps > 0 ? Infinity : windowEnd;
        if (r.mode === 'open') startedAt -= (offered * 1000) / r.ratePerSec; // keep the schedule continuous
        const p = new Promise<RaftClientResult>((resolve) => (done = resolve));
        pump(true);
        // A timer per run: open loop offers on it; both check for the end of the run on it.
        const check = () => {
          if (run === null) return;
          maybeFinish(ctx.now());
          if (run !== null) ctx.setTimer(10, check);
        };
        ctx.setTimer(10, check);
        if (r.mode === 'open') openTimer = ctx.setTimer(openLoopTickMs, openLoopTick);
        return p;
      },
    },
  };
};

export default createClient;
