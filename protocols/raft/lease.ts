// The leader's read lease: from which tick each voter is known to have heard this leader, and
// until which tick no other node can have been elected. Pure tick arithmetic over acks the node
// hands it; it never reads a clock and never decides by itself that the node leads.
import type { MajorityConfig } from './quorum.ts';

/** An ack not yet received: older than any tick, so it can never start a lease. */
const neverTick = Number.NEGATIVE_INFINITY;

export interface LeaseMutations {
  /** Renew at every round start, without waiting for a majority to ack it. */
  ignoreAcks?: boolean;
  /** Lease of 2*electionTicks from the round start, ignoring the drift margin (too long). */
  tooLong?: boolean;
}

/**
 * Why the lease is safe (all nodes tick at the same rate): a voter that acks a heartbeat sent
 * at the leader's tick T heard it at or after T and, with CheckQuorum, refuses to vote for
 * anyone for electionTicks of its own ticks from then. Any new leader needs a vote from a
 * member of the acking majority, so none can exist before (about) T + electionTicks; the lease
 * stops leaseDriftTicks earlier to absorb tick phase skew and clock-rate drift.
 */
export class LeaderLease {
  /** Voter → the leader's tick at which the newest heartbeat it acked was sent. */
  private readonly ackedSentTick = new Map<number, number>();
  private expiresTick = neverTick;
  /** Set by revoke(): no ack may bring the lease back during this leadership. */
  private revoked = false;

  constructor(
    private readonly self: number,
    private readonly quorum: () => Pick<MajorityConfig, 'committedIndex'>,
    private readonly lengthTicks: number,
    private readonly unsafe: LeaseMutations,
    private readonly electionTicks: number,
  ) {}

  /** The lease is valid while the leader's tick counter is below this (−Infinity: never held). */
  get untilTick(): number {
    return this.revoked ? neverTick : this.expiresTick;
  }

  validAt(nowTick: number): boolean {
    return !this.revoked && nowTick < this.expiresTick;
  }

  /** A heartbeat round leaves at `sentTick`: the leader has certainly heard from itself. */
  roundStarted(sentTick: number): void {
    this.ackedSentTick.set(this.self, sentTick);
    if (this.unsafe.ignoreAcks === true) {
      this.expiresTick = Math.max(this.expiresTick, sentTick + this.lengthTicks);
      return;
    }
    this.recompute();
  }

  /**
   * `from` acked a heartbeat sent at `sentTick`. Only the newest ack per voter counts, so an old
   * or duplicated ack can never move the lease past what its own send tick allows.
   */
  acked(from: number, sentTick: number): void {
    const prev = this.ackedSentTick.get(from) ?? neverTick;
    if (sentTick <= prev) return;
    this.ackedSentTick.set(from, sentTick);
    if (this.unsafe.ignoreAcks !== true) this.recompute();
  }

  private recompute(): void {
    // The newest send tick that a majority (the leader included) has acked at or after.
    const start = this.quorum().committedIndex((id) => this.ackedSentTick.get(id) ?? neverTick);
    const length = this.unsafe.tooLong === true ? 2 * this.electionTicks : this.lengthTicks;
    this.expiresTick = Math.max(this.expiresTick, start + length);
  }

  /** A new leadership starts with no lease. */
  reset(): void {
    this.ackedSentTick.clear();
    this.expiresTick = neverTick;
    this.revoked = false;
  }

  /**
   * The configuration changed: acks counted toward the old quorum say nothing about the new one
   * (after a joint step the two may not overlap), so the lease starts over from new acks.
   */
  configChanged(): void {
    this.ackedSentTick.clear();
    this.expiresTick = neverTick;
  }

  /** Gives the lease up for good (leadership transfer: voters stop honouring their memory). */
  revoke(): void {
    this.revoked = true;
  }
}
