// One load-generator thread of `concur bench kv` (a piscina task): closed-loop PUTs from
// `clients` keep-alive connections until `durationMs` passes; returns counts and a histogram.
import { Agent, request } from 'node:http';
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { LatencyRecorder } from './latency.ts';

export interface KvLoadTask {
  port: number;
  clients: number;
  durationMs: number;
  valueBytes: number;
  keys: number;
  /** Distinguishes this thread's clients' keys from the other threads'. */
  offset: number;
}

export interface KvLoadResult {
  ok: number;
  errors: number;
  statuses: Record<string, number>;
  histogram: string;
  seconds: number;
}

/** One PUT /kv/:key over a keep-alive agent; resolves with the status (0: a connection error). */
export function put(agent: Agent, port: number, key: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/kv/${key}`, method: 'PUT', agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

export default async function kvLoad(t: KvLoadTask): Promise<KvLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: t.clients });
  const body = Buffer.alloc(t.valueBytes, 'x');
  const latency = new LatencyRecorder();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const endAt = started + t.durationMs;
  await Promise.all(
    Array.from({ length: t.clients }, async (_, c) => {
      for (let i = 0; performance.now() < endAt; i++) {
        const began = performance.now();
        const status = await put(agent, t.port, `k${(t.offset + c * 7919 + i) % t.keys}`, body);
        if (status === 200) {
          ok++;
          latency.recordMs(performance.now() - began);
        } else {
          errors++;
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      }
    }),
  );
  agent.destroy();
  return { ok, errors, statuses, histogram: encodeIntoCompressedBase64(latency.histogram), seconds: (performance.now() - started) / 1000 };
}
