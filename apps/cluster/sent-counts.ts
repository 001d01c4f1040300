// Messages a node sent since its last status report, counted per peer and message type: what the
// dashboard draws as traffic between nodes. One Map update per message; flattened only per report.

export class SentCounts {
  private readonly counts = new Map<number, number>();

  /** `type` is the protocol's message type number (below 256). */
  count(to: number, type: number): void {
    const key = to * 256 + type;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** [to, type, count] triples since the last call, flattened; resets the counts. */
  take(): number[] {
    const out: number[] = [];
    for (const [key, n] of this.counts) out.push(Math.floor(key / 256), key % 256, n);
    this.counts.clear();
    return out;
  }
}

/** The leader's view of one follower, as a status report carries it (flattened). */
export const progressStates = ['probe', 'replicate', 'snapshot'] as const;
export const progressFields = 5; // id, match, next, state (index in progressStates), inflight
