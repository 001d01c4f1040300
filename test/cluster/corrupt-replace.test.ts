// Recovery from a corrupt log, end to end (README: "A member whose log is damaged"): a node whose
// WAL is damaged in the middle refuses to start and says why; the operator removes it from the
// configuration, wipes its directory and adds a fresh member, which catches up by snapshot; nothing
// acknowledged is lost and the cluster is back to three voters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

function firstSegment(dir: string): string {
  const segs = readdirSync(dir).filter((f) => f.startsWith('wal-')).sort();
  return join(dir, segs[0]!);
}

test('a member with a damaged log is removed, its directory wiped, a new member added: nothing acknowledged is lost', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-replace-'));
  const c = await Cluster.start({ nodes: 3, storage: 'wal', dataDir, snapshot: { entries: 50 } });
  try {
    const kv = new KvTestClient(c);
    await eventually(() => c.leader() ?? undefined, 'a leader');
    for (let i = 0; i < 200; i++) await kv.put(`k${i}`, `v${i}`);
    const victim = [1, 2, 3].find((id) => id !== c.leader())!;
    await c.crash(victim);

    // One flipped byte early in its oldest segment: damage followed by valid records.
    const seg = firstSegment(join(dataDir, `node-${victim}`));
    const bytes = readFileSync(seg);
    bytes[Math.min(200, bytes.length - 100)] ^= 0xff;
    writeFileSync(seg, bytes);
    const refusal = await c.restart(victim).then(() => 'started', (e: Error) => e.message);
    assert.match(refusal, /corrupt|damaged|checksum|refuse/i, `the damaged node refuses to start: ${refusal}`);

    // The cluster goes on with two of three voters meanwhile.
    await kv.put('during', 'two-of-three');

    await c.removeMember(victim, 10_000);
    assert.not.ok(c.members().some((m) => m.id === victim), 'the broken member is gone from the configuration');
    rmSync(join(dataDir, `node-${victim}`), { recursive: true, force: true });
    const added = await c.addMember('voter', 20_000);
    assert.ok(added.id > 3, `a fresh id (${added.id})`);
    assert.equal(
      c.members().map((m) => m.role),
      ['voter', 'voter', 'voter'],
    );
    assert.ok(existsSync(join(dataDir, `node-${added.id}`)), 'the new member keeps its own directory');

    // The newcomer holds everything: read each key from it directly.
    await eventually(async () => ((await c.read('during', 'stale', 2_000, { via: added.id })).value !== null ? true : undefined), 'the new member caught up', 20_000);
    for (let i = 0; i < 200; i += 7) {
      const r = await c.read(`k${i}`, 'stale', 2_000, { via: added.id });
      assert.is(r.value === null ? null : new TextDecoder().decode(r.value), `v${i}`, `k${i} on node ${added.id}`);
    }
    for (let i = 0; i < 200; i++) assert.is(await kv.get(`k${i}`), `v${i}`);
    assert.is(await kv.get('during'), 'two-of-three');
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
