// How much a thread that never sleeps loses to the machine: one spinner per CPU reads the clock
// in a tight loop and counts every gap as time its CPU was taken away (by the host, the kernel,
// other processes). Measured in the same run as the cluster benchmarks, it shows the floor that
// tail latencies on this machine cannot go below, whatever concur does.
import { availableParallelism } from 'node:os';
import { threadId } from 'node:worker_threads';
import { createPool } from '../runtime/pool.ts';

/** A gap shorter than this is the loop's own jitter (a clock read, an interrupt), not a stall. */
export const stallGapMinMs = 0.2;

export interface StallScan {
  /** The thread that spun (worker_threads threadId). */
  threadId: number;
  durationMs: number;
  /** Gaps of at least stallGapMinMs, in ms, longest first (at most `keep`). */
  longest: number[];
  gaps: number;
  /** Gaps of 1 ms or more. */
  gapsOver1Ms: number;
  lostMs: number;
}

/** Spins for `durationMs` on `now` and records every gap between two readings. */
export function scanGaps(durationMs: number, now: () => number = () => performance.now(), keep = 16): StallScan {
  const start = now();
  const end = start + durationMs;
  let last = start;
  let gaps = 0;
  let gapsOver1Ms = 0;
  let lostMs = 0;
  const longest: number[] = [];
  while (last < end) {
    const t = now();
    const gap = t - last;
    last = t;
    if (gap < stallGapMinMs) continue;
    gaps++;
    lostMs += gap;
    if (gap >= 1) gapsOver1Ms++;
    if (longest.length < keep || gap > longest[longest.length - 1]!) {
      longest.push(gap);
      longest.sort((a, b) => b - a);
      if (longest.length > keep) longest.pop();
    }
  }
  return { threadId, durationMs: last - start, longest, gaps, gapsOver1Ms, lostMs };
}

/** One pool task: wait until every spinner has arrived, so that all scan at once, then scan. */
export interface StallTask {
  durationMs: number;
  /** An Int32 counter shared by the spinners of one measurement. */
  barrier: SharedArrayBuffer;
  spinners: number;
  /** How long a spinner waits for the others to arrive before it gives up. */
  barrierTimeoutMs: number;
}

export function runStallTask(t: StallTask): StallScan {
  const arrived = new Int32Array(t.barrier);
  Atomics.add(arrived, 0, 1);
  // A waiting spinner holds its thread, so all can arrive only on as many threads as spinners.
  const giveUpAt = performance.now() + t.barrierTimeoutMs;
  while (Atomics.load(arrived, 0) < t.spinners) {
    if (performance.now() > giveUpAt) throw new Error(`stall scan: only ${Atomics.load(arrived, 0)} of ${t.spinners} spinners started within ${t.barrierTimeoutMs} ms (the pool has fewer threads than spinners)`);
  }
  return scanGaps(t.durationMs);
}

export interface StallSummary {
  /** Threads that spun, at once: one per CPU. */
  threads: number;
  durationMs: number;
  /** Share of each spinner's time lost to gaps, averaged over the spinners. */
  lostFraction: number;
  /** Gaps of 1 ms or more per second, per spinner. */
  gapsOver1MsPerSec: number;
  maxGapMs: number;
}

export function summarizeStalls(scans: StallScan[]): StallSummary {
  const seconds = scans.reduce((s, x) => s + x.durationMs, 0) / 1000;
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    threads: new Set(scans.map((s) => s.threadId)).size,
    durationMs: Math.round(Math.max(0, ...scans.map((s) => s.durationMs))),
    lostFraction: seconds > 0 ? round(scans.reduce((s, x) => s + x.lostMs, 0) / 1000 / seconds, 4) : 0,
    gapsOver1MsPerSec: seconds > 0 ? round(scans.reduce((s, x) => s + x.gapsOver1Ms, 0) / seconds, 1) : 0,
    maxGapMs: round(Math.max(0, ...scans.map((s) => s.longest[0] ?? 0)), 2),
  };
}

/** Runs one spinner per CPU at once, on pool threads, with nothing else of concur running. */
export async function measureStalls(durationMs: number, threads = availableParallelism()): Promise<StallSummary> {
  const pool = createPool(new URL('./stall-task.ts', import.meta.url), threads);
  try {
    const task: StallTask = { durationMs, barrier: new SharedArrayBuffer(4), spinners: threads, barrierTimeoutMs: 30_000 };
    return summarizeStalls(await Promise.all(Array.from({ length: threads }, () => pool.run(task) as Promise<StallScan>)));
  } finally {
    await pool.destroy();
  }
}
