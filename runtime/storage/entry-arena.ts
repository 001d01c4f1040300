// A contiguous run of log entries kept in columns: terms, kinds and data positions in typed
// arrays, data bytes copied into large chunks. A node keeps every entry it has ever logged; as
// objects (an entry plus a Uint8Array view each) millions of them make every garbage collection
// copy and mark them again, which cost more than the protocol itself. Here they cost the GC
// nothing: copying 64 bytes is cheaper than keeping two objects alive.
// It must never change the bytes of an entry that is still in the run.
import type { LogEntry } from './types.ts';

/** Bytes per data chunk; an entry larger than this gets a chunk of its own. */
const chunkBytesDefault = 4 << 20;
/** Entries per column block (a power of two). Blocks, not one growing array: growing copies and
 * touches fresh memory, and fresh pages are slow to fault in (milliseconds per MiB here). */
const blockBits = 16;
const blockEntries = 1 << blockBits;
const blockMask = blockEntries - 1;
/** Per entry in a block's `slots`: kind, chunk, offset in the chunk, length. */
const slotWords = 4;

interface Block {
  terms: Float64Array;
  slots: Uint32Array;
}

export class EntryArena {
  /** Index of slot 0 of block 0; fixed, so an entry's block and slot never move. */
  private readonly origin: number;
  /** Index of the first entry held; entries before it were dropped (compacted) or never held. */
  private first: number;
  /** Index the next entry takes. */
  private next: number;
  private blocks: (Block | null)[] = [];
  private chunks: Uint8Array[] = [];
  /** chunks[i].buffer, kept: reading `.buffer` off a typed array is a slow builtin call. */
  private chunkBuffers: ArrayBuffer[] = [];
  /** Where the next entry's data goes in the last chunk. */
  private fill = 0;
  /** Released standard-size chunks and blocks, reused before allocating: fresh memory costs
   * page faults, and a steadily compacted log then needs none. */
  private spareChunks: ArrayBuffer[] = [];
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

  /** Term of the entry at `index`, or -1 when the run does not hold it. */
  term(index: number): number {
    if (!(index >= this.first && index < this.next)) return -1;
    const s = index - this.origin;
    return this.blocks[s >>> blockBits]!.terms[s & blockMask]!;
  }

  /** The entry at `index` as an object whose data is a view of the arena (valid while it is held). */
  get(index: number): LogEntry {
    if (!(index >= this.first && index < this.next)) throw new RangeError(`entry ${index} is not held (held: ${this.first}..${this.lastIndex})`);
    const s = index - this.origin;
    const b = this.blocks[s >>> blockBits]!;
    const w = (s & blockMask) * slotWords;
    const slots = b.slots;
    // Chunks are whole buffers (byteOffset 0).
    return { index, term: b.terms[s & blockMask]!, kind: slots[w]!, data: new Uint8Array(this.chunkBuffers[slots[w + 1]!]!, slots[w + 2]!, slots[w + 3]!) };
  }

  /** Entries [lo, hi) as objects; the caller keeps within [firstIndex, lastIndex + 1). */
  slice(lo: number, hi: number): LogEntry[] {
    const out: LogEntry[] = new Array(Math.max(0, hi - lo));
    for (let x = lo; x < hi; x++) out[x - lo] = this.get(x);
    return out;
  }

  /** Appends one entry; it must take the next index. Its data is copied. */
  push(e: LogEntry): void {
    if (e.index !== this.next) throw new RangeError(`entry arena: entry ${e.index} does not follow ${this.lastIndex}`);
    const s = this.next - this.origin;
    const bi = s >>> blockBits;
    let b = this.blocks[bi];
    if (b === undefined || b === null) {
      b = this.spareBlocks.pop() ?? { terms: new Float64Array(blockEntries), slots: new Uint32Array(blockEntries * slotWords) };
      this.blocks[bi] = b;
    }
    const data = e.data;
    const n = data.length;
    let c = this.chunks.length - 1;
    if (c < 0 || this.fill + n > this.chunks[c]!.length) {
      const buffer = (n <= this.chunkBytes ? this.spareChunks.pop() : undefined) ?? new ArrayBuffer(Math.max(this.chunkBytes, n));
      this.chunks.push(new Uint8Array(buffer));
      this.chunkBuffers.push(buffer);
      c++;
      this.fill = 0;
    }
    this.chunks[c]!.set(data, this.fill); // a memcpy; faster than a byte loop even for 64 bytes
    const w = (s & blockMask) * slotWords;
    b.terms[s & blockMask] = e.term;
    const slots = b.slots;
    slots[w] = e.kind;
    slots[w + 1] = c;
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
      this.chunks.length = this.chunkBuffers.length = 0;
      this.fill = 0;
      return;
    }
    const s = index - this.origin;
    const w = (s & blockMask) * slotWords;
    const slots = this.blocks[s >>> blockBits]!.slots;
    this.chunks.length = this.chunkBuffers.length = slots[w + 1]! + 1;
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
      // Keep the numbering of blocks (slots are fixed by index) but release all memory.
      for (let i = 0; i < this.blocks.length; i++) this.releaseBlock(i);
      for (let c = 0; c < this.chunks.length; c++) this.releaseChunk(c);
      this.chunks.length = this.chunkBuffers.length = 0;
      this.fill = 0;
      return;
    }
    this.first = index + 1;
    const s = this.first - this.origin;
    for (let i = 0; i < s >>> blockBits; i++) this.releaseBlock(i);
    const firstChunk = this.blocks[s >>> blockBits]!.slots[(s & blockMask) * slotWords + 1]!;
    for (let c = 0; c < firstChunk; c++) this.releaseChunk(c);
  }

  private releaseBlock(i: number): void {
    const b = this.blocks[i];
    if (b === null || b === undefined) return;
    this.blocks[i] = null;
    if (this.spareBlocks.length < sparesMax) this.spareBlocks.push(b);
  }

  /** Releases chunk c's memory but keeps the numbering of later chunks. */
  private releaseChunk(c: number): void {
    const buffer = this.chunkBuffers[c]!;
    if (buffer === emptyBuffer) return;
    if (buffer.byteLength === this.chunkBytes && this.spareChunks.length < sparesMax) this.spareChunks.push(buffer);
    this.chunks[c] = emptyChunk;
    this.chunkBuffers[c] = emptyBuffer;
  }
}

/** Released chunks and blocks kept for reuse, at most (each): enough for a steady compaction. */
const sparesMax = 4;
const emptyBuffer = new ArrayBuffer(0);
const emptyChunk = new Uint8Array(emptyBuffer);
