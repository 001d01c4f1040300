// A contiguous run of log entries kept in columns: terms, kinds and data positions in typed
// arrays, data bytes copied into large chunks. A node keeps every entry it has ever logged; as
// objects (an entry plus a Uint8Array view each) millions of them make every garbage collection
// copy and mark them again, which cost more than the protocol itself. Here they cost the GC
// nothing: copying 64 bytes is cheaper than keeping two objects alive.
// It must never change the bytes of an entry that is still in the run.
import type { LogEntry } from './types.ts';

/** Bytes per data chunk; an entry larger than this gets a chunk of its own. */
const chunkBytesDefault = 4 << 20;
/** The largest term a column holds (u32). */
const termMax = 0xffffffff;
/** Entries per column block (a power of two). Blocks, not one growing array: growing copies and
 * touches fresh memory, and fresh pages are slow to fault in (milliseconds per MiB here). */
const blockBits = 16;
const blockEntries = 1 << blockBits;
const blockMask = blockEntries - 1;
/** Per entry in a block's `slots`: kind, chunk, offset in the chunk, length. */
const slotWords = 4;

interface Block {
  /**
   * Terms as u32 (the wire's limit too), not f64: a term read from a Float64Array is a double, and
   * entry objects made here with double terms next to the core's with small-integer ones kept V8
   * migrating the core's entries to a new map (3–7 % of a leader's time in `MigrateToMap`).
   */
  terms: Uint32Array;
  slots: Uint32Array;
}

/**
 * A data chunk: its buffer, for making an entry's view (`new Uint8Array(buffer, …)`; a
 * `subarray` made such views objects whose map V8 kept migrating: 7 % of a leader's time), and one
 * view of it all, for writing and for `locate`.
 */
interface Chunk {
  buffer: ArrayBuffer;
  bytes: Uint8Array;
}

/** Where an entry's data lies (see EntryArena.locate): reused by the caller, so nothing is allocated. */
export interface DataRef {
  bytes: Uint8Array;
  start: number;
  end: number;
}

export class EntryArena {
  /** Index of slot 0 of block 0 ever; fixed, so an entry's block and slot never move. */
  private readonly origin: number;
  /** Index of the first entry held; entries before it were dropped (compacted) or never held. */
  private first: number;
  /** Index the next entry takes. */
  private next: number;
  /**
   * Column blocks from block number `blockBase` on, and data chunks from chunk number `chunkBase`
   * on (slots store absolute chunk numbers). Dropped ones are cut off the front, so both arrays
   * stay as long as what is held, however long the log has run.
   */
  private blocks: Block[] = [];
  private blockBase = 0;
  private chunks: Chunk[] = [];
  private chunkBase = 0;
  /** The last chunk, where the next entry's data goes at `fill` (null: none yet). */
  private current: Uint8Array | null = null;
  private fill = 0;
  /** Released standard-size chunks and blocks, reused before allocating: fresh memory costs
   * page faults, and a steadily compacted log then needs none. */
  private spareChunks: Chunk[] = [];
  private spareBlocks: Block[] = [];

  constructor(
    firstIndex: number,
    private readonly chunkBytes = chunkBytesDefault,
  ) {
    this.origin = firstIndex;
    this.first = firstIndex;
    this.next = firstIndex;
  }

  /** Index of the first entry held (the index the next entry takes when the run is empty). */
  get firstIndex(): number {
    return this.first;
  }
  get length(): number {
    return this.next - this.first;
  }
  /** Index of the last entry held; firstIndex − 1 when empty. */
  get lastIndex(): number {
    return this.next - 1;
  }

  /** Column blocks and data chunks in use (not counting spares): what holding the run costs. */
  footprint(): { blocks: number; chunks: number } {
    return { blocks: this.blocks.length, chunks: this.chunks.length };
  }

  /** Term of the entry at `index`, or -1 when the run does not hold it. */
  term(index: number): number {
    if (!(index >= this.first && index < this.next)) return -1;
    const s = index - this.origin;
    return this.blocks[(s >>> blockBits) - this.blockBase]!.terms[s & blockMask]!;
  }

  /** The entry at `index` as an object whose data is a view of the arena (valid while it is held). */
  get(index: number): LogEntry {
    if (!(index >= this.first && index < this.next)) throw notHeld(index, this.first, this.lastIndex);
    const s = index - this.origin;
    const b = this.blocks[(s >>> blockBits) - this.blockBase]!;
    const w = (s & blockMask) * slotWords;
    const slots = b.slots;
    const start = slots[w + 2]!;
    return { index, term: b.terms[s & blockMask]!, kind: slots[w]!, data: new Uint8Array(this.chunks[slots[w + 1]! - this.chunkBase]!.buffer, start, slots[w + 3]!) };
  }

  /**
   * The kind of the entry at `index`, and where its data lies, written into `at` (valid while the
   * entry is held): for readers that must not allocate per entry, such as apply.
   */
  locate(index: number, at: DataRef): number {
    if (!(index >= this.first && index < this.next)) throw notHeld(index, this.first, this.lastIndex);
    const s = index - this.origin;
    const slots = this.blocks[(s >>> blockBits) - this.blockBase]!.slots;
    const w = (s & blockMask) * slotWords;
    at.bytes = this.chunks[slots[w + 1]! - this.chunkBase]!.bytes;
    at.start = slots[w + 2]!;
    at.end = at.start + slots[w + 3]!;
    return slots[w]!;
  }

  /** Entries [lo, hi) as objects; the caller keeps within [firstIndex, lastIndex + 1). */
  slice(lo: number, hi: number): LogEntry[] {
    const out: LogEntry[] = new Array(Math.max(0, hi - lo));
    for (let x = lo; x < hi; x++) out[x - lo] = this.get(x);
    return out;
  }

  /** Appends one entry; it must take the next index. Its data is copied. */
  push(e: LogEntry): void {
    if (e.index !== this.next) throw doesNotFollow(e.index, this.lastIndex);
    if (!(e.term >= 0 && e.term <= termMax)) throw termTooLarge(e.index, e.term);
    const s = this.next - this.origin;
    const bi = (s >>> blockBits) - this.blockBase;
    let b = this.blocks[bi];
    if (b === undefined) {
      // Entries come in order: a new block is always the next one.
      b = this.spareBlocks.pop() ?? { terms: new Uint32Array(blockEntries), slots: new Uint32Array(blockEntries * slotWords) };
      this.blocks.push(b);
    }
    const data = e.data;
    const n = data.length;
    let chunk = this.current;
    if (chunk === null || this.fill + n > chunk.length) {
      let c = n <= this.chunkBytes ? this.spareChunks.pop() : undefined;
      if (c === undefined) {
        const buffer = new ArrayBuffer(Math.max(this.chunkBytes, n));
        c = { buffer, bytes: new Uint8Array(buffer) };
      }
      this.chunks.push(c);
      chunk = this.current = c.bytes;
      this.fill = 0;
    }
    chunk.set(data, this.fill); // a memcpy; faster than a byte loop even for 64 bytes
    const w = (s & blockMask) * slotWords;
    b.terms[s & blockMask] = e.term;
    const slots = b.slots;
    slots[w] = e.kind;
    slots[w + 1] = this.chunkBase + this.chunks.length - 1;
    slots[w + 2] = this.fill;
    slots[w + 3] = n;
    this.fill += n;
    this.next++;
  }

  /** Drops `index` and everything after it; the space is reused by what comes next. */
  truncateFrom(index: number): void {
    if (index >= this.next) return;
    if (index <= this.first) {
      this.next = this.first;
      this.releaseChunksBelow(this.chunkBase + this.chunks.length);
      return;
    }
    const s = index - this.origin;
    const slots = this.blocks[(s >>> blockBits) - this.blockBase]!.slots;
    const w = (s & blockMask) * slotWords;
    // Later chunks are left to the GC (a truncation is rare); the entry's own chunk is refilled.
    this.chunks.length = slots[w + 1]! - this.chunkBase + 1;
    this.current = this.chunks[this.chunks.length - 1]!.bytes;
    this.fill = slots[w + 2]!;
    this.next = index;
  }

  /**
   * Drops every entry up to and including `index` (after compaction), releasing whole blocks and
   * chunks. The caller must hold no view of a dropped entry's data: its memory is reused.
   */
  dropThrough(index: number): void {
    if (index < this.first) return;
    if (index >= this.next - 1) {
      this.first = this.next = index + 1;
      this.releaseBlocksBelow((this.next - this.origin) >>> blockBits);
      this.releaseChunksBelow(this.chunkBase + this.chunks.length);
      return;
    }
    this.first = index + 1;
    const s = this.first - this.origin;
    const firstBlock = s >>> blockBits;
    const firstChunk = this.blocks[firstBlock - this.blockBase]!.slots[(s & blockMask) * slotWords + 1]!;
    this.releaseBlocksBelow(firstBlock);
    this.releaseChunksBelow(firstChunk);
  }

  /** Releases every block numbered below `block` (absolute), keeping some for reuse. */
  private releaseBlocksBelow(block: number): void {
    const n = Math.min(block - this.blockBase, this.blocks.length);
    if (n <= 0) {
      if (this.blocks.length === 0) this.blockBase = Math.max(this.blockBase, block);
      return;
    }
    for (const b of this.blocks.splice(0, n)) if (this.spareBlocks.length < sparesMax) this.spareBlocks.push(b);
    this.blockBase += n;
    if (this.blocks.length === 0) this.blockBase = Math.max(this.blockBase, block);
  }

  /** Releases every chunk numbered below `chunk` (absolute), keeping some standard ones for reuse. */
  private releaseChunksBelow(chunk: number): void {
    const n = Math.min(chunk - this.chunkBase, this.chunks.length);
    if (n <= 0) return;
    for (const c of this.chunks.splice(0, n)) if (c.buffer.byteLength === this.chunkBytes && this.spareChunks.length < sparesMax) this.spareChunks.push(c);
    this.chunkBase += n;
    if (this.chunks.length === 0) {
      this.current = null;
      this.fill = 0;
    }
  }
}

/** Released chunks and blocks kept for reuse, at most (each): enough for a steady compaction. */
const sparesMax = 4;

// Errors are built in functions of their own: on this V8 a template literal in a hot function's
// never-taken throw still converted its numbers to strings on every call (NumberToString in
// profiles of the per-entry paths).
function notHeld(index: number, first: number, last: number): RangeError {
  return new RangeError(`entry ${index} is not held (held: ${first}..${last})`);
}

function doesNotFollow(index: number, last: number): RangeError {
  return new RangeError(`entry arena: entry ${index} does not follow ${last}`);
}

function termTooLarge(index: number, term: number): RangeError {
  return new RangeError(`entry arena: entry ${index} has term ${term}, beyond the largest a log can hold (${termMax})`);
}
