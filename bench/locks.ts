// `concur bench locks`: the lock service on a live cluster, through Cluster.submit and linearizable
// queries — the path its HTTP routes take (apps/lock/app.ts) — without HTTP itself. Two cells:
//   uncontended: N clients, each acquiring and releasing a lock of its own (two log entries a pair);
//   contended:   N clients on ONE lock, each acquiring with a wait (queued FIFO in the log), watching
//                the lock by queries every 10 ms as the route does until granted, then releasing at
//                once: a pair costs the hand-off (release → the next waiter's grant → its query sees it).
// Reports acquire+release pairs per second and the latency of a pair (acquire sent → release
// answered), of the acquire (until the grant is known) and of the release, as p50/p99.
import { Cluster, type ClusterProtocol } from '../apps/cluster/cluster.ts';
import { decodeLockResult, encodeLockCommand, type LockCommand, type LockResult, type LockState } from '../apps/lock/commands.ts';
import { lockQueryPrefix } from '../apps/lock/state-machine.ts';
import { cborDecode, encodeAppCommand } from '../apps/platform/envelope.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export interface LocksBenchOptions {
  nodes: number;
  clients: number;
  /** Seconds of load per cell. */
  durationSec: number;
  storage: 'wal' | 'memory';
  protocol?: ClusterProtocol;
  cells?: readonly LocksCellName[];
}

export const locksCellNames = ['uncontended', 'contended'] as const;
export type LocksCellName = (typeof locksCellNames)[number];

export interface LocksCell extends LatencySummary {
  cell: LocksCellName;
  locks: number;
  clients: number;
  /** Acquire+release pairs completed, and per second of the cell (its drain included). */
  pairs: number;
  pairsPerSec: number;
  /** Acquires that were queued and granted later (contended). */
  waited: number;
  errors: number;
  acquire: { p50Ms: number; p99Ms: number };
  release: { p50Ms: number; p99Ms: number };
  elapsedSec: number;
}

export interface LocksReport {
  nodes: number;
  clients: number;
  durationSec: number;
  storage: 'wal' | 'memory';
  protocol: ClusterProtocol;
  /** How often a queued acquire queries the lock (as the HTTP route). */
  waitPollMs: number;
  cells: LocksCell[];
}

const waitPollMs = 10;
const timeoutMs = 10_000;
const ttlMs = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchLocks(o: LocksBenchOptions, onCell?: (c: LocksCell) => void): Promise<LocksReport> {
  const cluster = await Cluster.start({ nodes: o.nodes, storage: o.storage, apps: ['lock'], metricsIntervalMs: 0, ...(o.protocol !== undefined ? { protocol: o.protocol } : {}) });
  try {
    const deadline = Date.now() + 10_000;
    while (cluster.leader() === null) {
      if (Date.now() > deadline) throw new Error('no leader within 10 s');
      await sleep(10);
    }
    const cells: LocksCell[] = [];
    for (const name of o.cells ?? locksCellNames) {
      const cell = await runCell(cluster, o, name);
      cells.push(cell);
      onCell?.(cell);
    }
    return { nodes: o.nodes, clients: o.clients, durationSec: o.durationSec, storage: o.storage, protocol: o.protocol ?? 'raft', waitPollMs, cells };
  } finally {
    await cluster.stop();
  }
}

async function runCell(cluster: Cluster, o: LocksBenchOptions, cell: LocksCellName): Promise<LocksCell> {
  const pair = new LatencyRecorder();
  const acquire = new LatencyRecorder();
  const release = new LatencyRecorder();
  let pairs = 0;
  let waited = 0;
  let errors = 0;
  const started = performance.now();
  const endAt = started + o.durationSec * 1000;
  await Promise.all(
    Array.from({ length: o.clients }, async (_, c) => {
      const session = `bench-locks-${cell}-${c}`;
      const owner = `bench-${c}`;
      const lock = cell === 'contended' ? 'hot' : `lock-${c}`;
      let seq = 0;
      const run = async (cmd: LockCommand): Promise<LockResult> => decodeLockResult((await cluster.submit(encodeAppCommand('lock', session, ++seq, encodeLockCommand(cmd)), timeoutMs)).result);
      while (performance.now() < endAt) {
        const t0 = performance.now();
        try {
          const r = await run({ op: 'acquire', lock, client: owner, ttlMs, waitMs: cell === 'contended' ? timeoutMs : 0 });
          let token: number;
          if (r.r === 'granted') token = r.token;
          else if (r.r === 'queued') {
            waited++;
            token = await waitForGrant(cluster, lock, owner, t0 + timeoutMs);
          } else throw new Error(`acquire answered ${r.r}`);
          const t1 = performance.now();
          acquire.recordMs(t1 - t0);
          const rel = await run({ op: 'release', lock, client: owner, token });
          if (rel.r !== 'released') throw new Error(`release answered ${rel.r}`);
          const t2 = performance.now();
          release.recordMs(t2 - t1);
          pair.recordMs(t2 - t0);
          pairs++;
        } catch {
          errors++;
          await sleep(50);
        }
      }
    }),
  );
  const elapsedSec = (performance.now() - started) / 1000;
  const a = acquire.summary();
  const r = release.summary();
  return {
    cell,
    locks: cell === 'contended' ? 1 : o.clients,
    clients: o.clients,
    pairs,
    pairsPerSec: Math.round(pairs / elapsedSec),
    waited,
    errors,
    ...pair.summary(),
    acquire: { p50Ms: a.p50Ms, p99Ms: a.p99Ms },
    release: { p50Ms: r.p50Ms, p99Ms: r.p99Ms },
    elapsedSec: Math.round(elapsedSec * 10) / 10,
  };
}

/** Watches the lock by linearizable queries until `owner` holds it (its token), as the HTTP route does. */
async function waitForGrant(cluster: Cluster, lock: string, owner: string, deadline: number): Promise<number> {
  for (;;) {
    const { value } = await cluster.read(lockQueryPrefix + lock, 'index', timeoutMs, { app: 'lock' });
    if (value === null) throw new Error('the lock service answered no state');
    const s = cborDecode(value) as LockState;
    if (s.holder?.client === owner) return s.holder.token;
    if (!s.waiters.some((w) => w.client === owner)) throw new Error(`${owner} is no longer waiting for ${lock}`);
    if (performance.now() > deadline) throw new Error(`${owner} waited too long for ${lock}`);
    await sleep(waitPollMs);
  }
}
