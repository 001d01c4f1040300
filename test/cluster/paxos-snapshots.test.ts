// A live Multi-Paxos cluster that runs for long: every node snapshots its KV store every few
// slots, rewrites its Paxos log to what lies past the snapshot (so the file and the memory stay
// bounded by the state, not the history), a node that was down while the others compacted comes
// back through a snapshot streamed from a peer, and the whole cluster restarts from snapshots
// plus short logs with nothing acknowledged lost.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

const fast = { electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 } as const;
const every = 50;

interface PaxosNodeStatus {
  applied: number;
  snapshotIndex: number;
  firstIndex: number;
  log: { bytes: number; compactions: number };
  snapshots: { current: number | null; taken: number };
}

const snapFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.snap'));

test('snapshots bound the log; a node down through compaction catches up by a streamed snapshot; a restart starts from snapshots', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-paxos-snap-'));
  const acked = new Map<string, string>();
  try {
    let c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, snapshot: { entries: every }, ...fast });
    try {
      const kv = new KvTestClient(c);
      const first = await eventually(() => c.leader() ?? undefined, 'a leader');
      const follower = [1, 2, 3].find((n) => n !== first)!;
      const put = async (i: number, tag: string) => {
        await kv.put(`k${i % 20}`, `${tag}${i}`);
        acked.set(`k${i % 20}`, `${tag}${i}`);
      };
      for (let i = 0; i < 4 * every; i++) await put(i, 'a');
      const st = await eventually(async () => {
        const s = await c.supervisor.call<PaxosNodeStatus>(first, 'status');
        return s.snapshots.taken >= 2 && s.log.compactions >= 2 ? s : undefined;
      }, 'the leader snapshotting and compacting');
      assert.ok(st.snapshotIndex >= 2 * every, `compacted through ${st.snapshotIndex}`);
      assert.is(st.firstIndex, st.snapshotIndex + 1);
      // The log holds the slots past the snapshot only: far fewer bytes than the history's.
      const leaderDir = join(dataDir, `node-${first}`);
      assert.ok(snapFiles(leaderDir).length <= 3, `old snapshots pruned: ${snapFiles(leaderDir).join(', ')}`);

      // A follower down while the others go on and compact: its next slot is gone from them.
      await c.crash(follower);
      for (let i = 0; i < 3 * every; i++) await put(i, 'b');
      const others = await eventually(async () => {
        const s = await c.supervisor.call<PaxosNodeStatus>(c.leader()!, 'status');
        return s.snapshotIndex > st.applied ? s : undefined;
      }, 'compaction past what the crashed node holds');
      await c.restart(follower);
      const back = await eventually(async () => {
        const s = await c.supervisor.call<PaxosNodeStatus>(follower, 'status');
        return s.applied >= others.applied && s.snapshotIndex >= others.snapshotIndex - every ? s : undefined;
      }, 'the restarted follower catching up through a snapshot', 15_000);
      assert.ok(back.snapshots.current !== null && back.snapshots.current > st.applied, `it holds a snapshot past where it stopped (${back.snapshots.current})`);
      for (const [key, value] of acked) {
        const r = await c.read(key, 'follower', 5_000, { via: follower });
        assert.is(new TextDecoder().decode(r.value!), value, `${key} on the caught-up follower`);
      }
      // Same state on every node once all applied the same slots.
      await eventually(async () => {
        const ds = await Promise.all([1, 2, 3].map((n) => c.supervisor.call<{ applied: number; digest: string }>(n, 'digest')));
        return ds.every((d) => d.applied === ds[0]!.applied && d.digest === ds[0]!.digest) ? true : undefined;
      }, 'equal digests on all nodes');
    } finally {
      await c.stop();
    }
    for (const n of [1, 2, 3]) {
      const dir = join(dataDir, `node-${n}`);
      assert.ok(snapFiles(dir).length >= 1, `node ${n} keeps a snapshot`);
      // 350 puts of ~40-byte commands would be > 20 KB of history; past the snapshot the log is short.
      assert.ok(statSync(join(dir, 'paxos.log')).size < 16_384, `node ${n}'s log was compacted (${statSync(join(dir, 'paxos.log')).size} bytes)`);
    }
    // The whole cluster again: each node from its snapshot plus the short log past it.
    c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, snapshot: { entries: every }, ...fast });
    try {
      for (const r of c.recoveries.values()) {
        assert.match(r.summary, /compacted through slot \d+/);
        assert.ok(r.snapshotIndex > 0, `started from a snapshot (${r.snapshotIndex})`);
      }
      await eventually(() => c.leader() ?? undefined, 'a leader after the restart');
      const kv = new KvTestClient(c);
      for (const [key, value] of acked) assert.is(await kv.get(key), value, key);
    } finally {
      await c.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a node whose log was compacted refuses to start without a snapshot that covers it, saying what to do', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-paxos-snap-'));
  try {
    const c = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, snapshot: { entries: 20 }, ...fast });
    try {
      const kv = new KvTestClient(c);
      await eventually(() => c.leader() ?? undefined, 'a leader');
      for (let i = 0; i < 60; i++) await kv.put(`k${i}`, `v${i}`);
      await eventually(async () => ((await c.supervisor.call<PaxosNodeStatus>(1, 'status')).log.compactions >= 1 ? true : undefined), 'node 1 compacting');
    } finally {
      await c.stop();
    }
    const dir = join(dataDir, 'node-1');
    for (const f of snapFiles(dir)) rmSync(join(dir, f));
    const err = await Cluster.start({ nodes: 3, protocol: 'multipaxos', storage: 'wal', dataDir, snapshot: { entries: 20 }, ...fast }).then(
      (x) => x.stop().then(() => null),
      (e: Error) => e,
    );
    assert.ok(err !== null, 'node 1 refused to start');
    assert.match(err!.message, /no snapshot file covers it/);
    assert.match(err!.message, /empty directory/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
