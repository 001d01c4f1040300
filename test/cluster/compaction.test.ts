// In-memory log compaction on memory-storage clusters: applied entries that every voter holds are
// dropped, a partitioned follower holds compaction back and catches up after the heal, and no
// node ever asks for an entry that is gone (it would crash: every node must stay up).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

interface NodeStatus {
  role: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
}

const statusOf = (c: Cluster, id: number) => c.supervisor.call<NodeStatus>(id, 'status');

async function writeMany(kv: KvTestClient, prefix: string, n: number): Promise<void> {
  // Concurrent writers: many entries quickly, each still acknowledged only after apply.
  const writers = 8;
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = w; i < n; i += writers) await kv.put(`${prefix}${i}`, `${prefix}-value-${i}`);
  }));
}

test('memory storage: every node drops what all hold; a cut-off follower holds it back, then catches up', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory', compactEntries: 40, metricsIntervalMs: 0 });
  try {
    const leader = await eventually(() => c.leader() ?? undefined, 'a leader', 5_000, 5);
    const kv = new KvTestClient(c);
    await writeMany(kv, 'a', 400);
    await eventually(async () => {
      const all = await Promise.all(c.supervisor.ids.map((id) => statusOf(c, id)));
      return all.every((s) => s.firstIndex > 100) ? true : undefined;
    }, 'every node compacted past index 100');

    const follower = c.supervisor.ids.find((id) => id !== leader)!;
    const before = await statusOf(c, follower);
    c.partition([[follower], c.supervisor.ids.filter((id) => id !== follower)]);
    await writeMany(kv, 'b', 400);
    const lead = await statusOf(c, c.leader()!);
    assert.ok(lead.lastIndex > before.lastIndex + 300, `the majority went on: ${lead.lastIndex} vs ${before.lastIndex}`);
    for (const id of c.supervisor.ids.filter((x) => x !== follower)) {
      const s = await statusOf(c, id);
      assert.ok(s.firstIndex - 1 <= before.lastIndex, `node ${id} compacted through ${s.firstIndex - 1}, beyond what the cut-off follower holds (${before.lastIndex})`);
    }

    c.heal();
    await eventually(async () => {
      const [f, l] = await Promise.all([statusOf(c, follower), statusOf(c, c.leader()!)]);
      return f.applied >= lead.lastIndex && l.firstIndex - 1 > before.lastIndex ? true : undefined;
    }, 'the follower caught up and compaction moved on', 15_000);
    for (const id of c.supervisor.ids) {
      assert.ok(c.supervisor.isUp(id), `node ${id} is up`);
      assert.is(new TextDecoder().decode((await c.supervisor.call<Uint8Array>(id, 'read', ['b399']))!), 'b-value-399');
      assert.is(new TextDecoder().decode((await c.supervisor.call<Uint8Array>(id, 'read', ['a0']))!), 'a-value-0');
    }
  } finally {
    await c.stop();
  }
});

test('a WAL cluster keeps its whole log; compactEntries is checked', async () => {
  for (const bad of [-1, 1.5, Number.NaN]) {
    const err = await Cluster.start({ nodes: 3, storage: 'memory', compactEntries: bad }).then(
      async (c) => {
        await c.stop();
        return null;
      },
      (e: unknown) => e,
    );
    assert.match(String(err), /compactEntries must be a whole number ≥ 0/, `compactEntries ${bad}`);
  }
  const c = await Cluster.start({ nodes: 3, storage: 'wal', compactEntries: 10, metricsIntervalMs: 0 });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader', 5_000, 5);
    await writeMany(new KvTestClient(c), 'w', 100);
    for (const id of c.supervisor.ids) assert.is((await statusOf(c, id)).firstIndex, 1, `node ${id} keeps index 1`);
  } finally {
    await c.stop();
  }
});

test.run();
