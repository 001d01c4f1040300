// `concur bench restart`: how long a node takes to come back after a long history. A WAL cluster
// commits N entries (client actors, the count app), then one follower is crashed and restarted:
// with snapshots it loads the newest snapshot and replays only the log after it; without, it
// replays the whole history. Reported per setting: the restart, the catch-up, what was replayed.
import { filter, firstValueFrom, timeout } from 'rxjs';
import { dirBytes } from './soak.ts';
import { BenchCluster, raftBenchDefaults, type RaftBenchOptions } from './raft.ts';
import { join } from 'node:path';

export interface RestartBenchOptions {
  entries: number;
  payloadBytes: number;
  /** Snapshot intervals to compare (0: snapshots off). */
  snapshotEntries: number[];
  /**
   * The entries are written in this many steps; after each the follower catches up and finishes
   * the snapshot that is due. How many snapshots a node holds at a given entry otherwise depends
   * on how fast its disk syncs against how fast the cluster commits (one run, the whole history
   * committed while the first snapshot was still being written); stepping makes it the same on
   * every machine: the node's previous snapshot lies at most one step behind its last.
   */
  steps?: number;
}

export interface RestartCase {
  snapshotEntries: number;
  entriesWritten: number;
  /** Writing them, with the waits after each step for the follower's catch-up and snapshot. */
  writeSec: number;
  /** From the restart call until the node's storage and state were loaded (the `recovered` event). */
  loadMs: number;
  /** From the restart call until it had applied everything the leader had committed. */
  caughtUpMs: number;
  /** WAL entries replayed at start, and the snapshot it started from (0: none). */
  walEntriesReplayed: number;
  snapshotIndex: number;
  /**
   * The node's snapshot before the one it restarts from (0: none), as it stood at the crash. The
   * WAL keeps what follows the older of this and the margin behind the last snapshot, from the
   * start of the segment holding it; with the load written in steps it lies at most a step behind.
   */
  previousSnapshotIndex: number;
  /** The last entry the node had applied at the crash (the commands, and the log's own entries: no-ops, clock). */
  appliedAtCrash: number;
  /** The restarted node's directory. */
  nodeDirMb: number;
}

interface Status {
  applied: number;
  snapshot: { index: number; previousIndex: number; writing: boolean } | null;
}

interface Stats {
  role: number;
  applied: number;
}

export async function benchRestart(o: RestartBenchOptions, log: (line: string) => void = () => {}): Promise<RestartCase[]> {
  const out: RestartCase[] = [];
  for (const snap of o.snapshotEntries) {
    const bo: RaftBenchOptions = { ...raftBenchDefaults, storage: 'wal', fsync: 'batch', payloadBytes: o.payloadBytes, snapshotEntries: [snap] };
    const c = await BenchCluster.start(bo, 3, 512, 32, snap);
    try {
      const follower = c.voters.find((id) => id !== c.leader)!;
      const steps = o.steps ?? 4;
      const t0 = performance.now();
      for (let step = 0; step < steps; step++) {
        const ops = Math.floor(o.entries / steps) + (step < o.entries % steps ? 1 : 0);
        await c.runClients({ mode: 'closed', outstanding: 4096, ratePerSec: 0, warmupMs: 0, durationMs: 3_600_000, totalOps: ops, drainTimeoutMs: 10_000 });
        // A follower still behind when crashed would replay less than the history: wait until it holds all of it.
        await waitCaughtUp(c, follower);
        if (snap > 0) await waitSnapshotSettled(c, follower, snap);
      }
      const writeSec = (performance.now() - t0) / 1000;
      log(`  snapshots ${snap === 0 ? 'off' : `every ${snap}`}: wrote ${o.entries} entries in ${writeSec.toFixed(1)} s (${steps} steps); restarting node ${follower}`);
      const recovered = firstValueFrom(
        c.supervisor.events$.pipe(
          filter((e) => e.type === 'actor' && e.id === follower && e.event.type === 'recovered'),
          timeout({ first: 600_000 }),
        ),
      );
      const before = await c.supervisor.call<Status>(follower, 'status');
      await c.supervisor.crash(follower);
      const nodeDirMb = Math.round(dirBytes(join(c.dataDirPath!, `node-${follower}`)) / 1e5) / 10;
      const r0 = performance.now();
      await c.supervisor.restart(follower);
      const ev = (await recovered) as unknown as { event: { ms: number; entries: number; snapshotIndex: number } };
      const loadMs = Math.round(performance.now() - r0);
      await waitCaughtUp(c, follower);
      const caughtUpMs = Math.round(performance.now() - r0);
      const one: RestartCase = { snapshotEntries: snap, entriesWritten: o.entries, writeSec: Math.round(writeSec * 10) / 10, loadMs, caughtUpMs, walEntriesReplayed: ev.event.entries, snapshotIndex: ev.event.snapshotIndex, previousSnapshotIndex: before.snapshot?.previousIndex ?? 0, appliedAtCrash: before.applied, nodeDirMb };
      log(`    loaded in ${loadMs} ms (replayed ${one.walEntriesReplayed} WAL entries after snapshot ${one.snapshotIndex}; directory ${nodeDirMb} MB), caught up in ${caughtUpMs} ms`);
      out.push(one);
    } finally {
      await c.stop();
    }
  }
  return out;
}

/** Resolves once `follower` has applied everything the leader had applied when this was called. */
async function waitCaughtUp(c: BenchCluster, follower: number, timeoutMs = 120_000): Promise<void> {
  const lead = await c.supervisor.call<Stats>(c.leader, 'benchStats');
  const t0 = performance.now();
  for (;;) {
    const f = await c.supervisor.call<Stats>(follower, 'benchStats');
    if (f.applied >= lead.applied) return;
    if (performance.now() - t0 > timeoutMs) throw new Error(`node ${follower} did not catch up within ${timeoutMs / 1000} s (applied ${f.applied} of the leader's ${lead.applied})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves once `follower` has no snapshot due (fewer than `every` entries applied since its last) nor being written. */
async function waitSnapshotSettled(c: BenchCluster, follower: number, every: number, timeoutMs = 120_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const st = await c.supervisor.call<Status>(follower, 'status');
    const s = st.snapshot;
    if (s !== null && !s.writing && st.applied - s.index < every) return;
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`node ${follower} did not finish its snapshots within ${timeoutMs / 1000} s (applied ${st.applied}, snapshot ${s?.index ?? 'none'}${s?.writing ? ', one being written' : ''}); see its snapshot-failed events`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
