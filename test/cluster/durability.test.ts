import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';
import { startCli, waitForLeader } from '../support/cli-process.ts';

function lastSegment(dir: string): string {
  const segs = readdirSync(dir).filter((f) => f.startsWith('wal-')).sort();
  return join(dir, segs[segs.length - 1]!);
}

test('killing the whole process and starting again on the same data dir keeps every acknowledged write', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-kill-'));
  try {
    const first = await startCli(['--nodes', '3', '--data-dir', dataDir]);
    await waitForLeader(first.url);
    const acked: string[] = [];
    // Concurrent writers, so the kill lands while writes are in flight.
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; i < 15; i++) {
          const key = `w${w}-${i}`;
          const r = await fetch(`${first.url}/kv/${key}`, { method: 'PUT', body: `value-${key}` });
          if (r.status === 200) acked.push(key);
        }
      }),
    );
    assert.is(acked.length, 60, 'every write was acknowledged before the kill');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startCli(['--nodes', '3', '--data-dir', dataDir]);
    try {
      await waitForLeader(second.url);
      for (const key of acked) {
        const r = await fetch(`${second.url}/kv/${key}`);
        assert.is(r.status, 200, `acknowledged ${key} is there after the restart`);
        assert.is(await r.text(), `value-${key}`);
      }
      // Ctrl-C shuts down cleanly, with exit code 0.
      second.child.kill('SIGINT');
      const { code } = await second.exited;
      assert.is(code, 0, second.output());
      assert.match(second.output(), /SIGINT, shutting down/);
    } finally {
      second.child.kill('SIGKILL');
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('killed while snapshotting every few entries: the restarted cluster comes back from snapshots and WAL tails with every acknowledged write', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-kill-snap-'));
  try {
    const first = await startCli(['--nodes', '3', '--data-dir', dataDir, '--snapshot-entries', '20', '--snapshot-catch-up', '5']);
    await waitForLeader(first.url);
    const acked: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const key = `s${w}-${i % 10}`;
          const r = await fetch(`${first.url}/kv/${key}`, { method: 'PUT', body: `value-${w}-${i}` });
          if (r.status === 200) acked[w * 10 + (i % 10)] = `value-${w}-${i}`;
        }
      }),
    );
    const snaps = readdirSync(join(dataDir, 'node-1')).filter((f) => f.endsWith('.snap'));
    assert.ok(snaps.length > 0, 'snapshots were written before the kill');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startCli(['--nodes', '3', '--data-dir', dataDir, '--snapshot-entries', '20']);
    try {
      await waitForLeader(second.url);
      assert.match(second.output(), /state from snapshot snap-/, 'nodes started from their snapshots');
      for (let k = 0; k < 40; k++) {
        const key = `s${Math.floor(k / 10)}-${k % 10}`;
        const r = await fetch(`${second.url}/kv/${key}`);
        assert.is(r.status, 200, `acknowledged ${key} is there after the restart`);
        assert.is(await r.text(), acked[k]);
      }
    } finally {
      second.child.kill('SIGINT');
      await second.exited;
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a torn WAL tail and a corrupted last record are cut off at restart, reported, and the data survives', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-torn-'));
  try {
    const c1 = await Cluster.start({ nodes: 3, storage: 'wal', dataDir });
    const kv1 = new KvTestClient(c1);
    await eventually(() => c1.leader() ?? undefined, 'a leader');
    for (let i = 0; i < 20; i++) await kv1.put(`t${i}`, `v${i}`);
    await c1.stop();

    // Node 1: half a record at the end, as a crash in mid-write leaves it.
    const seg1 = lastSegment(join(dataDir, 'node-1'));
    appendFileSync(seg1, Buffer.from([0x10, 0x00, 0x00, 0x00, 0xde, 0xad]));
    // Node 2: one flipped byte inside its last record.
    const seg2 = lastSegment(join(dataDir, 'node-2'));
    const bytes = readFileSync(seg2);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(seg2, bytes);
    const size2 = statSync(seg2).size;

    const c2 = await Cluster.start({ nodes: 3, storage: 'wal', dataDir });
    try {
      const r1 = c2.recoveries.get(1)!;
      const r2 = c2.recoveries.get(2)!;
      assert.is(r1.dropped?.reason, 'torn', r1.summary);
      assert.is(r1.dropped?.bytes, 6);
      assert.is(r2.dropped?.reason, 'corrupt', r2.summary);
      assert.match(r2.summary, /corrupt|checksum/i);
      assert.is(c2.recoveries.get(3)!.dropped, null);
      // The node appends again at once after recovery, so the file's size says nothing; the cut is
      // where the report says, inside what was on disk.
      assert.ok(r2.dropped!.offset < size2 && r2.dropped!.bytes > 0 && r2.dropped!.offset + r2.dropped!.bytes === size2, `cut at ${r2.dropped!.offset} of ${size2}`);
      await eventually(() => c2.leader() ?? undefined, 'a leader after recovery');
      const kv2 = new KvTestClient(c2);
      for (let i = 0; i < 20; i++) assert.is(await kv2.get(`t${i}`), `v${i}`);
      await kv2.put('after', 'recovery');
    } finally {
      await c2.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
