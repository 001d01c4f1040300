// One load-generator thread of `concur bench soak` (a piscina task): closed-loop PUTs from
// `clients` keep-alive connections for `durationMs`, posting every second what completed in that
// second (count, errors, latencies) on a port, so the soak can chart throughput and p99 over time.
import { Agent } from 'node:http';
import type { MessagePort } from 'node:worker_threads';
import { put } from './kv-load.ts';

export interface SoakLoadTask {
  port: number;
  clients: number;
  durationMs: number;
  valueBytes: number;
  keys: number;
  /** Distinguishes this thread's clients' keys from the other threads'. */
  offset: number;
  /** Where the per-second reports go. */
  reports: MessagePort;
}

/** One second of one thread's load. */
export interface SoakLoadReport {
  ok: number;
  errors: number;
  /** Latencies of the puts that completed in the second, in ms. */
  latenciesMs: Float64Array;
  statuses: Record<string, number>;
}

export default async function soakLoad(t: SoakLoadTask): Promise<{ ok: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: t.clients });
  const body = Buffer.alloc(t.valueBytes, 'v');
  let latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let statuses: Record<string, number> = {};
  let totalOk = 0;
  let totalErrors = 0;
  const flush = () => {
    const report: SoakLoadReport = { ok, errors, latenciesMs: Float64Array.from(latencies), statuses };
    t.reports.postMessage(report, [report.latenciesMs.buffer as ArrayBuffer]);
    latencies = [];
    ok = 0;
    errors = 0;
    statuses = {};
  };
  const timer = setInterval(flush, 1_000);
  const endAt = performance.now() + t.durationMs;
  await Promise.all(
    Array.from({ length: t.clients }, async (_, c) => {
      for (let i = 0; performance.now() < endAt; i++) {
        const began = performance.now();
        const status = await put(agent, t.port, `k${(t.offset + c * 7919 + i) % t.keys}`, body);
        if (status === 200) {
          ok++;
          totalOk++;
          latencies.push(performance.now() - began);
        } else {
          errors++;
          totalErrors++;
          statuses[status] = (statuses[status] ?? 0) + 1;
          // A refusal (busy, no leader) asks for a pause: do not spin on it.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  clearInterval(timer);
  flush();
  t.reports.close();
  agent.destroy();
  return { ok: totalOk, errors: totalErrors };
}
