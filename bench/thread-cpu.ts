// CPU time per thread of a process on Linux (/proc/<pid>/task/*/stat), to say where a load's CPU
// went: the main thread, the busiest worker threads (a cluster's nodes), and the rest (V8's
// compiler and GC threads, libuv). Rates on a shared machine swing; CPU per request does not.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime (USER_HZ: 100 on Linux for every architecture Node supports). */
const ticksPerSecond = 100;

/** CPU seconds (user + system) of each thread of `pid`, by thread id; empty where /proc is unreadable. */
export function threadTimes(pid: number): Map<number, number> {
  const times = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return times;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      times.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / ticksPerSecond);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return times;
}

/**
 * CPU seconds (user + system) of this process's children that have ended and been reaped
 * (/proc/self/stat cutime and cstime): read around a load generator's run, the difference is
 * what the generator itself spent, while servers still running are not counted.
 */
export function reapedChildrenTimes(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
  } catch {
    return 0;
  }
}

/** Microseconds of CPU per request, split by thread kind. */
export interface CpuPerRequest {
  main: number;
  /** The `workers` busiest threads besides the main one, summed. */
  workers: number;
  /** Every other thread. */
  other: number;
  total: number;
}

/** CPU per request between two `threadTimes` readings of `pid`, with `workers` worker threads expected. */
export function cpuPerRequest(pid: number, before: Map<number, number>, after: Map<number, number>, requests: number, workers: number): CpuPerRequest {
  const deltas: Array<[number, number]> = [];
  for (const [tid, t] of after) deltas.push([tid, t - (before.get(tid) ?? 0)]);
  const us = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, requests) * 10) / 10;
  const main = deltas.find(([tid]) => tid === pid)?.[1] ?? 0;
  const rest = deltas.filter(([tid]) => tid !== pid).map(([, d]) => d).sort((a, b) => b - a);
  const busiest = rest.slice(0, workers).reduce((a, b) => a + b, 0);
  const other = rest.slice(workers).reduce((a, b) => a + b, 0);
  return { main: us(main), workers: us(busiest), other: us(other), total: us(main + busiest + other) };
}
