// Messages a node sent since its last status report, counted per peer and message type: what the
// dashboard draws as traffic between nodes. Per message, one increment in a flat array (this runs
// for every message a node sends); the counts are gathered only per report.

/** Message types per peer a slot is kept for (Raft uses 1..12, Paxos 1..10). */
const typeSlots = 16;

export class SentCounts {
  private readonly counts: Uint32Array;
  /** Slots counted since the last take, each once. */
  private readonly touched: number[] = [];

  /** Peers are ids 0..idMax (the supervisor's actorIdMax). */
  constructor(private readonly idMax = 255) {
    this.counts = new Uint32Array((idMax + 1) * typeSlots);
  }

  count(to: number, type: number): void {
    // Out of range (never for the protocols' own types and ids): not worth a slot, nor an error.
    if (to > this.idMax || type >= typeSlots) return;
    const slot = to * typeSlots + type;
    if (this.counts[slot]++ === 0) this.touched.push(slot);
  }

  /** [to, type, count] triples since the last call, flattened; resets the counts. */
  take(): number[] {
    const out: number[] = [];
    for (const slot of this.touched) {
      out.push(Math.floor(slot / typeSlots), slot % typeSlots, this.counts[slot]!);
      this.counts[slot] = 0;
    }
    this.touched.length = 0;
    return out;
  }
}

/** The leader's view of one follower, as a status report carries it (flattened). */
export const progressStates = ['probe', 'replicate', 'snapshot'] as const;
export const progressFields = 5; // id, match, next, state (index in progressStates), inflight
