// Counts applied commands and their bytes, nothing else: the cheapest honest state machine, so a
// benchmark measures the log and not the app. Never looks inside a command (apply allocates nothing).
import { createHash } from 'node:crypto';
import type { SnapshotImage, SnapshotRestore, StateMachine } from '../state-machine.ts';

const noResult = new Uint8Array(0);

/*
 * Image format 1, one piece of countImageBytes:
 *   u32 formatVersion (LE) | u64 appliedIndex | u64 commands | u64 bytes   (all little-endian)
 * Bytes exceed 2^32 within minutes of a benchmark, hence 64-bit counters; values stay below 2^53.
 */
const countFormatVersion = 1;
const versionBytes = 4;
export const countImageBytes = versionBytes + 3 * 8;

export class CountStateMachine implements StateMachine {
  private appliedIndex = 0;
  private commandCount = 0;
  private byteCount = 0;

  get lastAppliedIndex(): number {
    return this.appliedIndex;
  }

  /** Commands applied (every committed entry handed to apply). */
  get commands(): number {
    return this.commandCount;
  }

  /** Bytes of those commands. */
  get bytes(): number {
    return this.byteCount;
  }

  apply(index: number, _bytes: Uint8Array, start: number, end: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index <= this.appliedIndex) {
      // Applying twice or out of order would silently fork replicas' counts: fail loudly.
      throw new Error(`CountStateMachine.apply: index ${index} is not after the last applied index ${this.appliedIndex}`);
    }
    this.appliedIndex = index;
    this.commandCount++;
    this.byteCount += end - start;
    return noResult;
  }

  readLocal(): undefined {
    return undefined;
  }

  snapshot(): SnapshotImage {
    const piece = new Uint8Array(countImageBytes);
    const view = new DataView(piece.buffer);
    view.setUint32(0, countFormatVersion, true);
    view.setBigUint64(4, BigInt(this.appliedIndex), true);
    view.setBigUint64(12, BigInt(this.commandCount), true);
    view.setBigUint64(20, BigInt(this.byteCount), true);
    let taken = false;
    return {
      index: this.appliedIndex,
      next: () => {
        if (taken) return null;
        taken = true;
        return piece;
      },
    };
  }

  restore(): SnapshotRestore {
    const image = new Uint8Array(countImageBytes);
    let fill = 0;
    let state: 'open' | 'failed' | 'finished' = 'open';
    const fail = (message: string): never => {
      state = 'failed';
      throw new Error(`count snapshot: ${message}`);
    };
    const checkOpen = (call: string) => {
      if (state !== 'open') throw new Error(`count snapshot restore: ${call} after the restore ${state}; start a new one`);
    };
    return {
      write: (bytes) => {
        checkOpen('write');
        if (fill + bytes.byteLength > countImageBytes) fail(`the image is ${countImageBytes} bytes; got ${fill + bytes.byteLength} or more`);
        const before = fill;
        image.set(bytes, fill);
        fill += bytes.byteLength;
        // Refuse a wrong format as soon as its version is in, not only at finish.
        if (before < versionBytes && fill >= versionBytes) {
          const version = new DataView(image.buffer).getUint32(0, true);
          if (version !== countFormatVersion) fail(`format ${version} is not supported (expected ${countFormatVersion})`);
        }
      },
      finish: () => {
        checkOpen('finish');
        if (fill < countImageBytes) fail(`the image ends after ${fill} of ${countImageBytes} bytes`);
        const view = new DataView(image.buffer);
        const field = (at: number, what: string): number => {
          const v = view.getBigUint64(at, true);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is beyond 2^53`);
          return Number(v);
        };
        const index = field(4, 'applied index');
        const commands = field(12, 'command count');
        const bytes = field(20, 'byte count');
        if (commands > index) fail(`${commands} commands cannot have been applied by index ${index}`);
        state = 'finished';
        this.appliedIndex = index;
        this.commandCount = commands;
        this.byteCount = bytes;
      },
    };
  }

  /** SHA-256 (hex) of the counts, not of the applied index: the state alone. */
  digest(): string {
    const counts = new DataView(new ArrayBuffer(16));
    counts.setBigUint64(0, BigInt(this.commandCount), true);
    counts.setBigUint64(8, BigInt(this.byteCount), true);
    return createHash('sha256').update('concur-count-state-1').update(new Uint8Array(counts.buffer)).digest('hex');
  }
}
