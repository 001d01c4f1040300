// Latency recording for every benchmark: an HDR histogram in microseconds, and the summary
// (percentiles in milliseconds) the reports print. One place, so every bench reports alike.
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/**
 * Latencies below this many microseconds are first counted in a plain array (one increment each)
 * and moved into the HDR histogram in one pass when it is read: HDR's own record costs a
 * Math.pow per call, which at a million proposals a second took a third of a client's CPU.
 */
const directUsMax = 1 << 17;

export class LatencyRecorder {
  private readonly h: hdr.Histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  /** Counts per microsecond below directUsMax, not yet in `h` (allocated on first use). */
  private direct: Uint32Array | null = null;
  private directPending = false;

  /** The histogram itself, in microseconds (to encode and merge across threads). */
  get histogram(): hdr.Histogram {
    this.flush();
    return this.h;
  }

  /** Adds the values of a histogram recorded elsewhere (encodeIntoCompressedBase64 form). */
  addEncoded(base64: string): void {
    this.h.add(hdr.decodeFromCompressedBase64(base64));
  }

  /** The histogram in compressed base64, to send to another thread (see addEncoded). */
  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.histogram);
  }

  /** Records one latency given in milliseconds (kept to the microsecond). */
  recordMs(ms: number): void {
    this.recordUs(Math.round(ms * 1000), 1);
  }

  /** Records `count` latencies of `us` microseconds (at least 1, at most 60 s): the hot path. */
  recordUs(us: number, count: number): void {
    const v = us < 1 ? 1 : us > 60_000_000 ? 60_000_000 : us;
    if (v < directUsMax) {
      (this.direct ??= new Uint32Array(directUsMax))[v]! += count;
      this.directPending = true;
    } else {
      this.h.recordValueWithCount(v, count);
    }
  }

  private flush(): void {
    if (!this.directPending) return;
    this.directPending = false;
    const d = this.direct!;
    for (let v = 1; v < directUsMax; v++) {
      if (d[v] === 0) continue;
      this.h.recordValueWithCount(v, d[v]!);
      d[v] = 0;
    }
  }

  summary(): LatencySummary {
    this.flush();
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.h.totalCount,
      p50Ms: ms(this.h.getValueAtPercentile(50)),
      p90Ms: ms(this.h.getValueAtPercentile(90)),
      p99Ms: ms(this.h.getValueAtPercentile(99)),
      maxMs: ms(this.h.maxValue),
      meanMs: ms(this.h.mean),
    };
  }
}
