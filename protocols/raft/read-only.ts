// ReadIndex bookkeeping on the leader: reads wait until they join a heartbeat round, a round
// records the commit index when it started and which voters acknowledged it. Never decides
// leadership itself: the node asks it whether a quorum acked and serves what it releases.

export interface ReadRequest {
  /** The caller's request id, returned in the ReadState. */
  readonly context: number;
  /** Who asked: the leader itself, or a follower that forwarded the read. */
  readonly from: number;
}

interface Round {
  readonly id: number;
  readonly index: number;
  readonly requests: ReadRequest[];
  readonly acks: Set<number>;
}

export interface ConfirmedRead extends ReadRequest {
  readonly index: number;
}

export class ReadOnly {
  /** Admitted reads not yet in a round: they ride the next heartbeat round together. */
  private waiting: ReadRequest[] = [];
  /** Rounds in flight, oldest first (ids increase). */
  private rounds: Round[] = [];
  private nextRoundId = 1;

  constructor(private readonly pendingMax: number) {}

  get waitingCount(): number {
    return this.waiting.length;
  }

  get roundCount(): number {
    return this.rounds.length;
  }

  /** Returns false when the bound is reached: the caller should retry later. */
  add(req: ReadRequest): boolean {
    if (this.waiting.length + this.inRounds() >= this.pendingMax) return false;
    this.waiting.push(req);
    return true;
  }

  private inRounds(): number {
    let n = 0;
    for (const r of this.rounds) n += r.requests.length;
    return n;
  }

  /**
   * Starts one round for every waiting read at `commitIndex`; returns its id (the heartbeat
   * context), or 0 when nothing waits. `self` counts as the first ack.
   */
  startRound(commitIndex: number, self: number): number {
    if (this.waiting.length === 0) return 0;
    const round: Round = { id: this.nextRoundId++, index: commitIndex, requests: this.waiting, acks: new Set([self]) };
    this.waiting = [];
    this.rounds.push(round);
    return round.id;
  }

  /** Records an ack for round `id` and returns the acked voters (empty for an unknown round). */
  ack(id: number, from: number): ReadonlySet<number> {
    for (const r of this.rounds) {
      if (r.id === id) {
        r.acks.add(from);
        return r.acks;
      }
    }
    return new Set();
  }

  /**
   * A quorum acked round `id`: it and every older round are confirmed (leadership held when
   * the later round was sent, which is after the older reads arrived).
   */
  release(id: number, unsafeAll = false): ConfirmedRead[] {
    const out: ConfirmedRead[] = [];
    // unsafeAll (a mutation for the simulator): newer rounds go too, unconfirmed.
    while (this.rounds.length > 0 && (unsafeAll || this.rounds[0]!.id <= id)) {
      const r = this.rounds.shift()!;
      for (const q of r.requests) out.push({ context: q.context, from: q.from, index: r.index });
    }
    return out;
  }

  /** Leadership lost: every pending read is dropped (callers time out and retry elsewhere). */
  reset(): void {
    this.waiting = [];
    this.rounds = [];
  }
}
