// The sending end of one directed link: applies the link's fault policy to each frame, writes it
// into the ring, and queues (boundedly) while the ring is full. Used by actors and the supervisor.
// A frame is never dropped without a report: faults and overflow both go through `onDrop`.
import { LinkFaults } from './faults.ts';
import { Ring } from './ring.ts';

/** 'removed': sent by an actor to a peer the supervisor has removed from the cluster. */
export type DropReason = 'cut' | 'loss' | 'down' | 'overflow' | 'removed';

export interface OutLinkSettings {
  /** Frames queued behind a full ring before new frames are dropped (and reported). */
  queueFramesMax: number;
  /** A frame held for reordering is released after this long if no other frame overtakes it. */
  reorderHoldMs: number;
}

export const defaultOutLinkSettings: OutLinkSettings = { queueFramesMax: 65_536, reorderHoldMs: 20 };

export class OutLink {
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private waiting = false;
  private held: Uint8Array | null = null;
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly delayed = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;
  /** While set, frames are written without waking the reader; `publish()` wakes it once. */
  private deferWakeups = false;
  private unpublished = false;
  dropped = 0;

  constructor(
    private ring: Ring,
    private readonly faults: LinkFaults,
    private readonly onDrop: (reason: DropReason, bytes: number) => void,
    private readonly settings: OutLinkSettings = defaultOutLinkSettings,
  ) {}

  get to(): number {
    return this.faults.to;
  }

  /**
   * Sends one frame. The caller may reuse `frame` once this returns: a frame that cannot go
   * into the ring at once (queued, delayed, held) is copied first.
   */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.faults.isClean() && this.held === null) {
      this.enqueue(frame);
      return;
    }
    frame = frame.slice();
    const fate = this.faults.fate();
    if (fate.copies === 0) {
      this.drop(fate.dropReason ?? 'loss', frame.length);
      return;
    }
    for (let i = 0; i < fate.copies; i++) {
      if (fate.delayMs > 0) this.later(frame, fate.delayMs);
      else if (fate.holdForReorder && this.held === null && i === 0) this.hold(frame);
      else this.deliverOvertaking(frame);
    }
  }

  /**
   * Defers reader wake-ups: the host sets it for a drained batch, then calls `publish()` once.
   * One doorbell ring per batch instead of per frame saves the notify (and the reader waking to
   * find one frame) while a batch's frames are still being written.
   */
  setDeferWakeups(on: boolean): void {
    this.deferWakeups = on;
    if (!on) this.publish();
  }

  /** Wakes the reader if frames were written since the last wake-up. */
  publish(): void {
    if (!this.unpublished) return;
    this.unpublished = false;
    this.ring.publish();
  }

  /** The frames waiting behind a full ring. */
  queuedFrames(): number {
    return this.queue.length - this.queueHead;
  }

  /** Stops all timers and forgets queued frames (the link's actor is stopping or was restarted). */
  close(): void {
    this.closed = true;
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.held = null;
    this.queue.length = 0;
    this.queueHead = 0;
  }

  private drop(reason: DropReason, bytes: number): void {
    this.dropped++;
    this.onDrop(reason, bytes);
  }

  private later(frame: Uint8Array, delayMs: number): void {
    const t = setTimeout(() => {
      this.delayed.delete(t);
      this.deliverOvertaking(frame);
    }, delayMs);
    this.delayed.add(t);
  }

  private hold(frame: Uint8Array): void {
    this.held = frame;
    this.heldTimer = setTimeout(() => this.releaseHeld(), this.settings.reorderHoldMs);
  }

  private releaseHeld(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const frame = this.held;
    this.held = null;
    if (frame) this.enqueue(frame);
  }

  /** Delivers `frame`, then any held frame behind it: that is what "reordered" means. */
  private deliverOvertaking(frame: Uint8Array): void {
    this.enqueue(frame);
    if (this.held) this.releaseHeld();
  }

  private enqueue(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.queuedFrames() === 0) {
      if (this.deferWakeups) {
        if (this.ring.tryWriteQuiet(frame)) {
          this.unpublished = true;
          return;
        }
      } else if (this.ring.tryWrite(frame)) return;
    }
    if (this.queuedFrames() >= this.settings.queueFramesMax) {
      this.drop('overflow', frame.length);
      return;
    }
    // The caller may reuse its buffer: a queued frame must own its bytes. (Frames that went
    // through the fault path were copied already; one more copy there is rare and harmless.)
    this.queue.push(frame.slice());
    this.pump();
  }

  private pump(): void {
    while (this.queuedFrames() > 0) {
      const frame = this.queue[this.queueHead]!;
      if (!this.ring.tryWriteQuiet(frame)) break;
      this.queue[this.queueHead++] = undefined as unknown as Uint8Array;
    }
    // Always at once here, deferred or not: the reader must drain before we can write more.
    this.unpublished = false;
    this.ring.publish();
    if (this.queuedFrames() === 0) {
      this.queue.length = 0;
      this.queueHead = 0;
      return;
    }
    if (this.waiting) return;
    this.waiting = true;
    const head = this.queue[this.queueHead]!;
    void this.ring.waitWritable(head.length).then(() => {
      this.waiting = false;
      if (!this.closed) this.pump();
    });
  }
}
