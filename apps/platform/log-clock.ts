// A leader's side of time on the log: while some app waits on the log's time (a lock held with a
// TTL), it proposes a clock entry every `everyMs` carrying the milliseconds elapsed on its own
// monotonic clock since its previous one. Time the leader did not measure — before it led, or
// while no app wanted time — is never counted, so the log's time runs at most as fast as real
// time: expiries come late, never early. Shared by the Raft and the Multi-Paxos hosts.
import { encodeClock } from './envelope.ts';

/** How often a leader proposes a clock entry while an app wants time. */
export const clockEveryMsDefault = 100;

export class LogClock {
  /** Monotonic time the next entry's elapsed time counts from. */
  private from = 0;
  private wanted = false;
  entries = 0;

  constructor(private readonly everyMs: number = clockEveryMsDefault) {}

  /** Leadership (re)gained at `now`: count from here. */
  restart(now: number): void {
    this.from = now;
    this.wanted = false;
  }

  /**
   * Called on the leader's timer. `propose` appends the entry and says whether it was taken (a
   * refused one is counted in the next).
   */
  due(now: number, app: { wantsTime?(): boolean }, propose: (bytes: Uint8Array) => boolean): void {
    const wants = app.wantsTime?.() === true;
    if (!wants) {
      this.wanted = false;
      return;
    }
    if (!this.wanted) {
      // Time starts to matter now: what passed before is not the apps' concern.
      this.wanted = true;
      this.from = now;
      return;
    }
    // Whole milliseconds, rounded down, and the remainder carried: the log's time must never get
    // ahead of the time that passed, not even by a rounding.
    const elapsed = Math.floor(now - this.from);
    if (elapsed < this.everyMs) return;
    if (propose(encodeClock(elapsed))) {
      this.from += elapsed;
      this.entries++;
    }
  }
}
