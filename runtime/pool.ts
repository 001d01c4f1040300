// Pools of worker threads for stateless, CPU-heavy side work (load generation, history
// checking), on piscina. Never for actors: a pool reaps idle threads and shares them by task.
import { Piscina } from 'piscina';

const bootUrl = new URL('./pool-boot.mjs', import.meta.url).href;

/** A pool whose threads run the default export of `entry` (a .ts module URL) once per task. */
export function createPool(entry: URL, threads: number): Piscina {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`a pool needs at least one thread, got ${threads}`);
  return new Piscina({ filename: bootUrl, workerData: { entry: entry.href }, minThreads: threads, maxThreads: threads, idleTimeout: 1_000 });
}
