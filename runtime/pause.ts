// Pausing an actor like SIGSTOP pauses a process: one Int32 per actor id in shared memory, set by
// the supervisor, which the actor's host checks at its safe points and then blocks on with
// Atomics.wait, so the worker thread runs nothing at all (no frames, no timers, no control calls)
// until it is resumed. Must never be waited on from the main thread (Atomics.wait blocks it).

/** A word's states. Only the supervisor writes `running` and `requested`; only the host writes `frozen`. */
export const PauseState = { running: 0, requested: 1, frozen: 2 } as const;

export class PauseTable {
  readonly words: Int32Array;

  static allocate(idMax: number): SharedArrayBuffer {
    return new SharedArrayBuffer((idMax + 1) * 4);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
  }

  state(id: number): number {
    return Atomics.load(this.words, id);
  }

  // ---- supervisor side ------------------------------------------------------------------

  /** Asks `id`'s host to freeze at its next safe point; `frozen` resolves true once it has. */
  request(id: number, timeoutMs: number): Promise<boolean> {
    Atomics.compareExchange(this.words, id, PauseState.running, PauseState.requested);
    return this.frozen(id, timeoutMs);
  }

  /** Resolves true once `id`'s host has frozen, false when `timeoutMs` passed first or the request was withdrawn. */
  async frozen(id: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = Atomics.load(this.words, id);
      if (s === PauseState.frozen) return true;
      if (s === PauseState.running) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.words, id, PauseState.requested, left);
      if (w.async) await w.value;
    }
  }

  /** Lets `id`'s host run again (or withdraws a request it has not yet seen); also used before a restart. */
  release(id: number): void {
    Atomics.store(this.words, id, PauseState.running);
    Atomics.notify(this.words, id);
  }

  // ---- host side --------------------------------------------------------------------------

  /**
   * Called by `id`'s host at a safe point: if a pause is requested, says so (the supervisor waits
   * for it) and blocks the thread until released. Returns the milliseconds it was frozen (0: not).
   */
  holdIfRequested(id: number): number {
    if (Atomics.load(this.words, id) === PauseState.running) return 0;
    const since = performance.now();
    for (;;) {
      const s = Atomics.load(this.words, id);
      if (s === PauseState.running) return performance.now() - since;
      if (s === PauseState.requested) {
        Atomics.compareExchange(this.words, id, PauseState.requested, PauseState.frozen);
        Atomics.notify(this.words, id);
        continue;
      }
      Atomics.wait(this.words, id, PauseState.frozen);
    }
  }
}
