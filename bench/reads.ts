// `concur bench reads`: every read path of the KV store on one live cluster, in one run: reads/s
// and latency percentiles with N concurrent readers, so the paths compare under the same load.
import { Cluster } from '../apps/cluster/cluster.ts';
import { readModes, type ReadMode } from '../apps/http/backend.ts';
import { decodeResult, encodeCommand, textBytes } from '../apps/kv/commands.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export interface ReadsBenchOptions {
  nodes: number;
  clients: number;
  durationSec: number;
  keys: number;
  modes: readonly ReadMode[];
}

export interface ReadsCell extends LatencySummary {
  mode: ReadMode;
  readsPerSec: number;
  errors: number;
}

export async function benchReads(o: ReadsBenchOptions, onCell?: (c: ReadsCell) => void): Promise<{ nodes: number; clients: number; cells: ReadsCell[] }> {
  const cluster = await Cluster.start({ nodes: o.nodes, storage: 'memory', metricsIntervalMs: 0 });
  try {
    const deadline = Date.now() + 10_000;
    while (cluster.leader() === null) {
      if (Date.now() > deadline) throw new Error('no leader within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Every key holds a value, so every read returns bytes.
    for (let k = 0; k < o.keys; k++) {
      const r = decodeResult((await cluster.submit(encodeCommand({ op: 'put', key: `k${k}`, value: textBytes(`value-${k}`), clientId: 'bench-reads', seq: k + 1 }), 5_000)).result);
      if (r.type !== 'written') throw new Error(`could not write k${k}: ${JSON.stringify(r)}`);
    }
    const cells: ReadsCell[] = [];
    let seq = o.keys;
    for (const mode of o.modes) {
      const latency = new LatencyRecorder();
      let ok = 0;
      let errors = 0;
      const started = performance.now();
      const endAt = started + o.durationSec * 1000;
      await Promise.all(
        Array.from({ length: o.clients }, async (_, c) => {
          for (let i = 0; performance.now() < endAt; i++) {
            const key = `k${(c + i) % o.keys}`;
            const t = performance.now();
            try {
              let found: boolean;
              if (mode === 'log') found = decodeResult((await cluster.submit(encodeCommand({ op: 'get', key, clientId: 'bench-reads', seq: ++seq }), 5_000)).result).type === 'value';
              else found = (await cluster.read(key, mode, 5_000)).value !== null;
              if (!found) throw new Error(`${key} read as absent`);
              ok++;
              latency.recordMs(performance.now() - t);
            } catch {
              errors++;
            }
          }
        }),
      );
      const cell: ReadsCell = { mode, readsPerSec: Math.round(ok / ((performance.now() - started) / 1000)), errors, ...latency.summary() };
      cells.push(cell);
      onCell?.(cell);
    }
    return { nodes: o.nodes, clients: o.clients, cells };
  } finally {
    await cluster.stop();
  }
}

export { readModes };
