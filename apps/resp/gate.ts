// The order of one connection's commands against the store: reads run together and writes run
// together, but a read waits for the writes before it and a write for the reads before it. So a
// pipeline reads its own writes (Redis's per-connection order) while a run of SETs or GETs is
// still sent all at once. Writes in a run keep their order through the log: the client pipeline
// sends a stream's writes in the order they were submitted, and resends them in that order.

export type JobKind = 'read' | 'write';

export class PhaseGate<T> {
  private phase: JobKind = 'read';
  private running = 0;
  private readonly waiting: Array<{ kind: JobKind; item: T }> = [];
  private waitHead = 0;

  /** `start` is called for each item once it may run. */
  constructor(private readonly start: (item: T) => void) {}

  /** Starts `item` now if it may run beside what runs, else once what runs before it is done. */
  enter(kind: JobKind, item: T): void {
    if (this.waitHead === this.waiting.length && (this.running === 0 || this.phase === kind)) {
      this.phase = kind;
      this.running++;
      this.start(item);
      return;
    }
    this.waiting.push({ kind, item });
  }

  /** One started item is done (called once per started item). */
  leave(): void {
    this.running--;
    if (this.running > 0) return;
    const w = this.waiting;
    while (this.waitHead < w.length && (this.running === 0 || this.phase === w[this.waitHead]!.kind)) {
      const next = w[this.waitHead]!;
      w[this.waitHead++] = undefined as never;
      this.phase = next.kind;
      this.running++;
      this.start(next.item);
    }
    if (this.waitHead === w.length) {
      w.length = 0;
      this.waitHead = 0;
    }
  }
}
