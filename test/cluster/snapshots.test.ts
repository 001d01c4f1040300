// Snapshots on live WAL clusters: nodes snapshot and cut their logs (memory and segment files),
// a follower that was down while the others compacted catches up by InstallSnapshot and ends
// with the same state, a follower restarted in the middle of a transfer resumes it, and a node
// restarts from its snapshot plus the log after it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterOptions } from '../../apps/cluster/cluster.ts';
import { eventually, nextEvent } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

interface SnapshotStatus {
  index: number;
  fileBytes: number;
  taken: number;
  transfersCompleted: number;
  bytesReceived: number;
  receiving: { index: number; fileBytes: number; have: number } | null;
}
interface NodeStatus {
  role: number;
  applied: number;
  commit: number;
  firstIndex: number;
  lastIndex: number;
  logEntriesInMemory: number;
  snapshot: SnapshotStatus;
}

const statusOf = (c: Cluster, id: number) => c.supervisor.call<NodeStatus>(id, 'status');
const digestOf = (c: Cluster, id: number) => c.supervisor.call<{ applied: number; digest: string }>(id, 'digest');

const small: Partial<ClusterOptions> = {
  nodes: 3,
  storage: 'wal',
  metricsIntervalMs: 0,
  snapshot: { entries: 50, catchUpEntries: 10, retainEntriesMax: 100 },
  walSegmentBytesMax: 4096,
};

/** `n` puts from 8 concurrent writers (each its own client: a client has one write in flight). */
async function writeMany(kv: KvTestClient, prefix: string, n: number, valueBytes = 16): Promise<void> {
  const writers = 8;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const own = new KvTestClient(kv.cluster);
      for (let i = w; i < n; i += writers) await own.put(`${prefix}${i % 97}`, `${prefix}-${i}-`.padEnd(valueBytes, 'x'));
    }),
  );
}

/** Every up node has applied the same index and holds the same state. */
async function converged(c: Cluster, ids: readonly number[]): Promise<{ applied: number; digest: string }> {
  return eventually(async () => {
    const ds = await Promise.all(ids.map((id) => digestOf(c, id)));
    const first = ds[0]!;
    return ds.every((d) => d.applied === first.applied && d.digest === first.digest) ? first : undefined;
  }, `nodes ${ids.join(', ')} to converge`, 15_000, 50);
}

test('nodes snapshot and cut their logs: memory and WAL segments stay bounded while writes go on', async () => {
  const c = await Cluster.start(small);
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    const kv = new KvTestClient(c);
    await writeMany(kv, 'a', 600);
    const all = await Promise.all(c.supervisor.ids.map((id) => statusOf(c, id)));
    for (const s of all) {
      assert.ok(s.snapshot.taken >= 5, `node took snapshots (${JSON.stringify(s.snapshot)})`);
      assert.ok(s.firstIndex > 400, `the log in memory was cut (first index ${s.firstIndex})`);
      assert.ok(s.logEntriesInMemory <= 50 + 10 + 100 + 50, `bounded log in memory (${s.logEntriesInMemory} entries)`);
    }
    for (const id of c.supervisor.ids) {
      const files = readdirSync(join(c.dataDir!, `node-${id}`));
      const segs = files.filter((f) => f.startsWith('wal-'));
      const snaps = files.filter((f) => f.endsWith('.snap'));
      assert.ok(segs.length < 40, `old WAL segments were deleted (node ${id}: ${segs.length} left)`);
      // Two kept, and perhaps a third just written and not yet adopted (the older ones go then).
      assert.ok(snaps.length <= 3, `at most two snapshots kept (node ${id}: ${snaps.join(', ')})`);
    }
    await kv.put('last', 'written after 600 others');
    await converged(c, c.supervisor.ids);
    assert.is(await kv.get('last'), 'written after 600 others');
  } finally {
    await c.stop();
  }
});

test('a follower down while the others compact past its log catches up by InstallSnapshot, with the same state', async () => {
  const c = await Cluster.start(small);
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader');
    const follower = c.supervisor.ids.find((id) => id !== leader)!;
    const kv = new KvTestClient(c);
    await writeMany(kv, 'b', 100);
    await c.crash(follower);
    const before = await Promise.all(c.supervisor.ids.filter((id) => id !== follower).map((id) => statusOf(c, id)));
    await writeMany(kv, 'c', 500);
    const leaderStatus = await statusOf(c, c.leader()!);
    assert.ok(leaderStatus.firstIndex > before[0]!.lastIndex + 100, `the live nodes cut their logs well past the follower's (${leaderStatus.firstIndex})`);
    await c.restart(follower);
    const up = await converged(c, c.supervisor.ids);
    const f = await statusOf(c, follower);
    assert.ok(f.snapshot.bytesReceived > 0, 'the follower received a snapshot');
    assert.ok(f.snapshot.index >= leaderStatus.snapshot.index, `and based its log on it (${f.snapshot.index})`);
    assert.ok(up.applied >= leaderStatus.applied);
    // Reads served by the follower itself see the same data.
    const r = await c.read('c7', 'stale', 2_000, { via: follower });
    assert.is(new TextDecoder().decode(r.value!), (await kv.get('c7'))!);
  } finally {
    await c.stop();
  }
});

test('a follower restarted in the middle of a snapshot transfer resumes it and catches up', async () => {
  // Large values and a small transfer window make the transfer long enough to interrupt.
  const c = await Cluster.start({ ...small, snapshot: { entries: 100, catchUpEntries: 10, retainEntriesMax: 100 }, transfer: { chunkBytes: 8 * 1024, inflightBytesMax: 16 * 1024 } });
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader');
    const follower = c.supervisor.ids.find((id) => id !== leader)!;
    const kv = new KvTestClient(c);
    await c.crash(follower);
    await writeMany(kv, 'd', 400, 8 * 1024);
    await c.restart(follower);
    const partway = await eventually(async () => {
      const s = await statusOf(c, follower).catch(() => undefined);
      const r = s?.snapshot.receiving;
      return r && r.have > r.fileBytes / 4 && r.have < r.fileBytes ? r : undefined;
    }, 'the transfer to be under way', 15_000, 5);
    await c.crash(follower);
    await c.restart(follower);
    await converged(c, c.supervisor.ids);
    const f = await statusOf(c, follower);
    assert.ok(f.snapshot.index >= partway.index, 'the follower installed the snapshot');
    assert.ok(f.snapshot.bytesReceived < partway.fileBytes, `after the restart it received only the rest (${f.snapshot.bytesReceived} of ${partway.fileBytes} bytes)`);
  } finally {
    await c.stop();
  }
});

/**
 * A follower comes back far behind over slow links and a slow disk, while writes go on: its
 * snapshot transfer takes many snapshot intervals. Returns how many snapshots it installed.
 */
async function slowFollowerRun(retainEntriesMax: number): Promise<number> {
  const c = await Cluster.start({
    ...small,
    snapshot: { entries: 50, catchUpEntries: 10, retainEntriesMax },
    transfer: { chunkBytes: 4096, inflightBytesMax: 8192 },
    syncDelayMs: { 3: 10 },
  });
  try {
    // Node 3 is the slow one: it must not lead.
    await eventually(async () => {
      const l = c.leader();
      if (l === 3) await c.supervisor.call(3, 'transferLeadership', [1]);
      return l !== null && l !== 3 ? l : undefined;
    }, 'a leader other than node 3', 15_000, 100);
    const kv = new KvTestClient(c);
    await c.crash(3);
    await writeMany(kv, 'f', 400, 1024);
    let installs = 0;
    const sub = c.events().subscribe((e) => {
      if (e.type === 'snapshot-installed' && e.node === 3) installs++;
      if (e.type === 'crashed' && e.reason === 'error') console.error(`node ${String(e.id)} died: ${String(e.error)}`);
    });
    c.supervisor.setFaults({ delayMs: 40 }, { from: [3] });
    c.supervisor.setFaults({ delayMs: 40 }, { to: [3] });
    await c.restart(3);
    await writeMany(kv, 'g', 800, 1024);
    c.supervisor.setFaults({ delayMs: 0 });
    await converged(c, c.supervisor.ids);
    sub.unsubscribe();
    return installs;
  } finally {
    await c.stop();
  }
}

test('no snapshot loops: a follower slower than the snapshot interval catches up from the log the leader keeps for it', async () => {
  // The control: a leader that keeps only the margin sends the returning follower snapshot after snapshot.
  const notHeld = await slowFollowerRun(10);
  assert.ok(notHeld >= 2, `without the hold-back the follower needs snapshot after snapshot (${notHeld})`);
  const held = await slowFollowerRun(5_000);
  assert.is(held, 1, `with the hold-back one snapshot, then the log (${held} snapshots installed)`);
});

test('a node restarts from its newest snapshot and the log after it, and a damaged newest snapshot falls back to the one before', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-snap-restart-'));
  try {
    let c = await Cluster.start({ ...small, dataDir });
    const kv = new KvTestClient(c);
    try {
      await eventually(() => c.leader() ?? undefined, 'a leader');
      await writeMany(kv, 'e', 400);
      await kv.put('marker', 'survives');
      await converged(c, c.supervisor.ids);
      // Restart one node: it comes back from its snapshot, not from the whole history.
      const id = c.supervisor.ids.find((x) => x !== c.leader())!;
      const snapBefore = (await statusOf(c, id)).snapshot.index;
      await c.crash(id);
      const recovered = nextEvent(c.supervisor, 'actor', (e) => e.id === id && e.event.type === 'recovered');
      await c.restart(id);
      const ev = (await recovered).event;
      assert.ok(Number(ev.snapshotIndex) >= snapBefore && snapBefore > 0, `restarted from snapshot ${String(ev.snapshotIndex)}`);
      assert.match(String(ev.summary), /state from snapshot snap-/);
      assert.ok(Number(ev.entries) < 400, `and replayed only the log after it (${String(ev.entries)} entries)`);
      await converged(c, c.supervisor.ids);
    } finally {
      await c.stop();
    }
    // Damage node 1's newest snapshot: it starts from the older one, which its WAL still covers.
    const dir1 = join(dataDir, 'node-1');
    const snaps = readdirSync(dir1).filter((f) => f.endsWith('.snap')).sort();
    assert.is(snaps.length, 2, `two snapshots kept: ${snaps.join(', ')}`);
    const { openSync, writeSync, closeSync, statSync } = await import('node:fs');
    const newest = join(dir1, snaps[1]!);
    const fd = openSync(newest, 'r+');
    writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, statSync(newest).size - 3);
    closeSync(fd);
    c = await Cluster.start({ ...small, dataDir });
    try {
      await eventually(() => c.leader() ?? undefined, 'a leader after the restart');
      await converged(c, c.supervisor.ids);
      assert.is(await new KvTestClient(c).get('marker'), 'survives');
    } finally {
      await c.stop();
    }
    // Damage both: the log no longer covers what the snapshots held, so node 1 refuses to start.
    for (const f of readdirSync(dir1).filter((n) => n.endsWith('.snap'))) {
      const p = join(dir1, f);
      const d = openSync(p, 'r+');
      writeSync(d, Buffer.from([0xde, 0xad]), 0, 2, 70);
      closeSync(d);
    }
    const err = await Cluster.start({ ...small, dataDir }).then(
      async (cl) => {
        await cl.stop();
        return null;
      },
      (e: Error) => e,
    );
    assert.ok(err !== null, 'the cluster must not start with node 1 unable to rebuild its state');
    assert.match(err!.message, /node 1/);
    assert.match(err!.message, /cannot rebuild its state/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
