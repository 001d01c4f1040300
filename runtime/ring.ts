// A single-producer/single-consumer ring of variable-length frames in SharedArrayBuffers,
// and the doorbell a reader sleeps on while any of its rings is empty.
// It never overwrites an unread frame and never drops one: a full ring refuses the write.
//
// Memory layout
//   control: Int32Array over its own SharedArrayBuffer
//     [WRITE]   bytes ever written (uint32, wraps)  — written by the producer only
//     [READ]    bytes ever released (uint32, wraps) — written by the consumer only
//     [WRITER_WAITING] 1 while the producer sleeps for space; the consumer clears it and notifies
//   stats: Float64Array, single-writer counters read approximately by anyone
//     [FRAMES_IN, BYTES_IN] by the producer; [FRAMES_OUT, WAKEUPS] by the consumer
//   data: Uint8Array of `capacityBytes` (a power of two, so positions are `counter & mask`)
//
// Frames: a little-endian uint32 payload length, the payload, padding to a multiple of 4.
// Every frame starts 4-byte aligned, so at least 4 bytes always remain before the end: a frame
// that does not fit there is preceded by a WRAP marker and starts again at offset 0.
// A frame of at most capacity/2 - 4 bytes can always be written into an empty ring whatever
// the position, which is why that is the limit (`frameBytesMax`).
//
// Doorbell: one Int32 word per consumer, shared by all rings feeding it. The consumer sets it
// to 1 before it sleeps and re-checks its rings (so a write that raced the flag is seen); a
// producer that publishes a frame swaps it to 0 and notifies only if it was 1. With sequentially
// consistent atomics one of the two always sees the other: no lost wake-ups, and no notify
// system call while the consumer is busy.

const WRITE = 0;
const READ = 1;
const WRITER_WAITING = 2;
const CONTROL_WORDS = 4;

const FRAMES_IN = 0;
const BYTES_IN = 1;
const FRAMES_OUT = 2;
const WAKEUPS = 3;
const STAT_WORDS = 4;

const HEADER_BYTES = 4;
const WRAP = 0xffffffff;

export const ringCapacityBytesMin = 64;
export const ringCapacityBytesMax = 1 << 30;

/** Everything needed to open one ring from another thread (structured-cloneable). */
export interface RingHandle {
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  data: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
}

export class FrameTooLargeError extends RangeError {
  constructor(readonly frameBytes: number, readonly frameBytesMax: number) {
    super(`frame of ${frameBytes} bytes exceeds this ring's limit of ${frameBytesMax} bytes (half the ring); raise the ring size or send smaller messages`);
    this.name = 'FrameTooLargeError';
  }
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * A pending Atomics.waitAsync does not keep Node's event loop alive. A bounded wait holds a timer
 * so that its caller sees it end; an unbounded one relies on the caller's own handles (an actor's
 * parentPort listener), so an idle program can still exit.
 */
function keepAliveUntil<T>(p: Promise<T>, timeoutMs: number): Promise<T> {
  if (timeoutMs === Infinity) return p;
  // An interval, not a timer of the same length: V8 may deliver the wait's time-out later than
  // Node's own timer fires, and the loop must still be alive then.
  const keepAlive = setInterval(() => {}, Math.max(1, Math.min(timeoutMs, 1_000)));
  return p.finally(() => clearInterval(keepAlive));
}

/** The word a consumer sleeps on; shared by every ring that feeds that consumer. */
export class Doorbell {
  readonly word: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.word = new Int32Array(buffer, 0, 1);
  }

  /** Producer side: wake the consumer if, and only if, it said it sleeps. */
  ring(): void {
    if (Atomics.compareExchange(this.word, 0, 1, 0) === 1) Atomics.notify(this.word, 0);
  }

  /**
   * Consumer side: sleep until a producer rings or `timeoutMs` passes, unless `hasWork()` is
   * already true once the flag is up. Resolves true when woken by a producer.
   */
  async sleep(hasWork: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    Atomics.store(this.word, 0, 1);
    if (hasWork()) {
      Atomics.store(this.word, 0, 0);
      return true;
    }
    const waited = Atomics.waitAsync(this.word, 0, 1, timeoutMs);
    const outcome = waited.async ? await keepAliveUntil(waited.value, timeoutMs) : waited.value;
    Atomics.store(this.word, 0, 0);
    return outcome !== 'timed-out';
  }

  /** Wakes a sleeping consumer from outside (used to stop it). */
  interrupt(): void {
    Atomics.store(this.word, 0, 0);
    Atomics.notify(this.word, 0);
  }
}

export class Ring {
  readonly capacityBytes: number;
  readonly frameBytesMax: number;
  readonly doorbell: Doorbell;
  private readonly control: Int32Array;
  private readonly stats: Float64Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;
  // Each side caches the counter it owns; only the other side's counter is read atomically.
  private writePos: number;
  private readPos: number;

  static handle(capacityBytes: number, doorbell: SharedArrayBuffer = new SharedArrayBuffer(4)): RingHandle {
    if (!Number.isInteger(capacityBytes) || capacityBytes < ringCapacityBytesMin || capacityBytes > ringCapacityBytesMax || (capacityBytes & (capacityBytes - 1)) !== 0) {
      throw new RangeError(`ring capacity must be a power of two from ${ringCapacityBytesMin} to ${ringCapacityBytesMax} bytes, got ${capacityBytes}`);
    }
    return {
      control: new SharedArrayBuffer(CONTROL_WORDS * 4),
      stats: new SharedArrayBuffer(STAT_WORDS * 8),
      data: new SharedArrayBuffer(capacityBytes),
      doorbell,
    };
  }

  static create(capacityBytes: number): Ring {
    return new Ring(Ring.handle(capacityBytes));
  }

  constructor(readonly handle: RingHandle) {
    this.control = new Int32Array(handle.control);
    this.stats = new Float64Array(handle.stats);
    this.bytes = new Uint8Array(handle.data);
    this.view = new DataView(handle.data);
    this.capacityBytes = handle.data.byteLength;
    this.mask = this.capacityBytes - 1;
    this.frameBytesMax = this.capacityBytes / 2 - HEADER_BYTES;
    this.doorbell = new Doorbell(handle.doorbell);
    this.writePos = Atomics.load(this.control, WRITE);
    this.readPos = Atomics.load(this.control, READ);
  }

  /** Bytes written but not yet released by the consumer (frames, headers, padding). */
  usedBytes(): number {
    return (Atomics.load(this.control, WRITE) - Atomics.load(this.control, READ)) >>> 0;
  }

  isEmpty(): boolean {
    return Atomics.load(this.control, WRITE) === this.readPos;
  }

  // ---- producer ---------------------------------------------------------------------------

  /**
   * Appends one frame and wakes the consumer if it sleeps. Returns false when the ring has no
   * room (backpressure: nothing was written; retry after `waitWritable`). Throws
   * FrameTooLargeError for a frame that could never fit.
   */
  tryWrite(payload: Uint8Array): boolean {
    if (!this.tryWriteQuiet(payload)) return false;
    this.doorbell.ring();
    return true;
  }

  /** As tryWrite, but leaves the wake-up to a later `publish()`: for writing many frames at once. */
  tryWriteQuiet(payload: Uint8Array): boolean {
    const length = payload.length;
    if (length > this.frameBytesMax) throw new FrameTooLargeError(length, this.frameBytesMax);
    const need = align4(HEADER_BYTES + length);
    const w = this.writePos;
    let pos = w & this.mask;
    const toEnd = this.capacityBytes - pos;
    const skip = need > toEnd ? toEnd : 0;
    if (skip + need > this.freeBytes()) return false;
    if (skip > 0) {
      this.view.setUint32(pos, WRAP, true);
      pos = 0;
    }
    this.view.setUint32(pos, length, true);
    this.bytes.set(payload, pos + HEADER_BYTES);
    this.writePos = (w + skip + need) >>> 0;
    Atomics.store(this.control, WRITE, this.writePos | 0);
    this.stats[FRAMES_IN]++;
    this.stats[BYTES_IN] += length;
    return true;
  }

  private freeBytes(): number {
    return this.capacityBytes - ((this.writePos - Atomics.load(this.control, READ)) >>> 0);
  }

  /** Whether a frame of `length` payload bytes fits now, counting the wrap it may need. */
  private fits(length: number): boolean {
    const need = align4(HEADER_BYTES + length);
    const toEnd = this.capacityBytes - (this.writePos & this.mask);
    return (need > toEnd ? toEnd : 0) + need <= this.freeBytes();
  }

  /** Wakes the consumer after `tryWriteQuiet` calls. */
  publish(): void {
    this.doorbell.ring();
  }

  /** Resolves once the consumer has released space, or after `timeoutMs`. */
  async waitWritable(payloadBytes: number, timeoutMs = Infinity): Promise<boolean> {
    if (payloadBytes > this.frameBytesMax) throw new FrameTooLargeError(payloadBytes, this.frameBytesMax);
    const deadline = timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      Atomics.store(this.control, WRITER_WAITING, 1);
      if (this.fits(payloadBytes)) {
        Atomics.store(this.control, WRITER_WAITING, 0);
        return true;
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const waited = Atomics.waitAsync(this.control, WRITER_WAITING, 1, left);
      if (waited.async) await keepAliveUntil(waited.value, left);
    }
  }

  // ---- consumer ---------------------------------------------------------------------------

  /**
   * Drains up to `framesMax` frames, calling `onFrame(bytes, start, end)` for each. The bytes
   * are ring memory: valid only during the call (copy what must outlive it). Space is released
   * after the batch, so a slow handler holds back the producer, never corrupts its frame.
   */
  read(onFrame: (bytes: Uint8Array, start: number, end: number) => void, framesMax = Infinity): number {
    const w = Atomics.load(this.control, WRITE) >>> 0;
    let r = this.readPos;
    let frames = 0;
    try {
      while (r !== w && frames < framesMax) {
        let pos = r & this.mask;
        let length = this.view.getUint32(pos, true);
        if (length === WRAP) {
          r = (r + this.capacityBytes - pos) >>> 0;
          pos = 0;
          length = this.view.getUint32(0, true);
        }
        // Advance first: a handler that throws must not see the same frame again.
        r = (r + align4(HEADER_BYTES + length)) >>> 0;
        frames++;
        onFrame(this.bytes, pos + HEADER_BYTES, pos + HEADER_BYTES + length);
      }
    } finally {
      this.release(r, frames);
    }
    return frames;
  }

  private release(r: number, frames: number): void {
    if (frames === 0) return;
    this.readPos = r;
    Atomics.store(this.control, READ, r | 0);
    this.stats[FRAMES_OUT] += frames;
    if (Atomics.compareExchange(this.control, WRITER_WAITING, 1, 0) === 1) Atomics.notify(this.control, WRITER_WAITING);
  }

  /**
   * Discards every unread frame. Only for a ring whose consumer is dead (a crashed actor about
   * to be restarted): messages in flight to a crashed node are lost, as on a real network.
   */
  discardUnread(): void {
    const w = Atomics.load(this.control, WRITE) >>> 0;
    this.release(w, w === this.readPos ? 0 : 1);
  }

  /** Counts a consumer wake-up (kept here so metrics see every ring's number in one place). */
  countWakeup(): void {
    this.stats[WAKEUPS]++;
  }

  counters(): { framesIn: number; bytesIn: number; framesOut: number; wakeups: number; usedBytes: number; capacityBytes: number } {
    return {
      framesIn: this.stats[FRAMES_IN]!,
      bytesIn: this.stats[BYTES_IN]!,
      framesOut: this.stats[FRAMES_OUT]!,
      wakeups: this.stats[WAKEUPS]!,
      usedBytes: this.usedBytes(),
      capacityBytes: this.capacityBytes,
    };
  }
}
