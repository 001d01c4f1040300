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

export class LatencyRecorder {
  private readonly h: hdr.Histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

  /** The histogram itself, in microseconds (to encode and merge across threads). */
  get histogram(): hdr.Histogram {
    return this.h;
  }

  /** Adds the values of a histogram recorded elsewhere (encodeIntoCompressedBase64 form). */
  addEncoded(base64: string): void {
    this.h.add(hdr.decodeFromCompressedBase64(base64));
  }

  /** The histogram in compressed base64, to send to another thread (see addEncoded). */
  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.h);
  }

  /** Records one latency given in milliseconds (kept to the microsecond). */
  recordMs(ms: number): void {
    this.h.recordValue(Math.max(1, Math.min(60_000_000, Math.round(ms * 1000))));
  }

  summary(): LatencySummary {
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
