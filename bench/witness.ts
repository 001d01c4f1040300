// `concur bench witness`: what a witness replica costs against a full one. A 3-node cluster with
// node 3 a witness takes N writes (distinct keys, so the state machine grows with them); then each
// node reports its directory size on disk, the log entries it holds in memory, its state
// machine's size and its worker's JS heap. A full replica holds the whole KV state (in memory and
// in its snapshots) plus a log tail; a witness holds only the entries not every full voter has.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../apps/cluster/cluster.ts';
import { encodeCommand } from '../apps/kv/commands.ts';
import { dirBytes } from './soak.ts';

export interface WitnessBenchOptions {
  writes: number;
  valueBytes: number;
  /** Puts in flight at once. */
  concurrency: number;
  snapshotEntries: number;
}

export interface NodeCost {
  id: number;
  role: 'voter' | 'witness';
  diskBytes: number;
  logEntriesInMemory: number;
  /** The state machine's size as its last snapshot image measured it (0: none). */
  snapshotDataBytes: number;
  heapUsedBytes: number;
}

export interface WitnessBenchResult {
  writes: number;
  writeSec: number;
  nodes: NodeCost[];
  /** Witness ÷ the mean of the full voters, per measure. */
  ratios: { disk: number; logEntries: number; heap: number };
}

interface NodeStatus {
  logEntriesInMemory: number;
  snapshot: { current: { dataBytes: number } | null } | null;
}

export async function benchWitness(o: WitnessBenchOptions, log: (line: string) => void = () => {}): Promise<WitnessBenchResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-witness-'));
  const c = await Cluster.start({ nodes: 3, witnesses: [3], storage: 'wal', dataDir, snapshot: { entries: o.snapshotEntries } });
  try {
    const t0 = performance.now();
    await writeAll(c, o);
    const writeSec = (performance.now() - t0) / 1000;
    log(`witness: ${o.writes} puts of ${o.valueBytes}-byte values in ${writeSec.toFixed(1)} s`);
    // Let the witness hear, with the next heartbeats, what every full voter holds.
    await new Promise((r) => setTimeout(r, 1_500));
    const nodes: NodeCost[] = [];
    for (const id of [1, 2, 3]) {
      const st = await c.supervisor.call<NodeStatus>(id, 'status');
      const mem = await c.supervisor.call<{ heapUsedBytes: number }>(id, 'memory');
      nodes.push({
        id,
        role: id === 3 ? 'witness' : 'voter',
        diskBytes: dirBytes(join(dataDir, `node-${id}`)),
        logEntriesInMemory: st.logEntriesInMemory,
        snapshotDataBytes: st.snapshot?.current?.dataBytes ?? 0,
        heapUsedBytes: mem.heapUsedBytes,
      });
    }
    const full = nodes.filter((n) => n.role === 'voter');
    const w = nodes.find((n) => n.role === 'witness')!;
    const mean = (f: (n: NodeCost) => number) => full.reduce((a, n) => a + f(n), 0) / full.length;
    const ratio = (f: (n: NodeCost) => number) => Math.round((f(w) / Math.max(1, mean(f))) * 1000) / 1000;
    const ratios = { disk: ratio((n) => n.diskBytes), logEntries: ratio((n) => n.logEntriesInMemory), heap: ratio((n) => n.heapUsedBytes) };
    for (const n of nodes) {
      log(`  node ${n.id} (${n.role}): disk ${(n.diskBytes / 1e6).toFixed(2)} MB, log in memory ${n.logEntriesInMemory} entries, state machine ${(n.snapshotDataBytes / 1e6).toFixed(2)} MB (snapshot image), JS heap ${(n.heapUsedBytes / 1e6).toFixed(1)} MB`);
    }
    log(`  witness ÷ full voter: disk ${ratios.disk}, log entries ${ratios.logEntries}, heap ${ratios.heap}`);
    return { writes: o.writes, writeSec: Math.round(writeSec * 10) / 10, nodes, ratios };
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function writeAll(c: Cluster, o: WitnessBenchOptions): Promise<void> {
  const value = new Uint8Array(o.valueBytes).fill(0x61);
  let next = 0;
  const worker = async (w: number) => {
    // One client session per worker: a retry carries the same seq, so it applies at most once.
    let seq = 0;
    while (next < o.writes) {
      const i = next++;
      const command = encodeCommand({ op: 'put', key: `w${i}`, value, clientId: `witness-bench-${w}`, seq: ++seq });
      for (let attempt = 0; ; attempt++) {
        try {
          await c.submit(command, 10_000);
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)));
}
