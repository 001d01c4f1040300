// Learners, witnesses, leader removal and leadership transfer on live WAL clusters: a learner is
// promoted only once caught up; removing the leader hands leadership over and stops its worker;
// transfer answers once the new leader leads; a 2-full + 1-witness cluster loses a full node and
// keeps committing, and its witness holds no state machine, serves no reads and bounds its log
// with imageless snapshots; a witness added later is sent no image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { ConflictError, NodeStateError } from '../../apps/http/backend.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';
import { checkAcked, converged, memberIds, WriteLoad } from './membership-support.ts';

async function rejects(p: Promise<unknown>, check: (e: unknown) => boolean, what: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    assert.ok(check(e), `${what}: got ${String(e)}`);
    return e;
  }
  assert.unreachable(`${what}: it succeeded`);
}

const small = { entries: 100, catchUpEntries: 10, retainEntriesMax: 50 };

test('a learner is refused promotion while behind, promoted once caught up; transfer and removing the leader', async () => {
  const c = await Cluster.start({ nodes: 3, metricsIntervalMs: 0, snapshot: small });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    const kv = new KvTestClient(c);
    for (let i = 0; i < 20; i++) await kv.put(`a${i}`, `${i}`);
    const { id } = await c.addMember('learner', 15_000);
    assert.is(memberIds(c), '1,2,3,4:learner');
    await c.crash(id);
    for (let i = 0; i < 150; i++) await kv.put(`b${i}`, `${i}`);
    const e = (await rejects(c.promote(id, 5_000), (x) => x instanceof ConflictError && x.code === 'learner-behind', 'promoting a learner 150 entries behind')) as Error;
    assert.match(e.message, /learner 4 is \d+ entries behind the leader \(at most 100 to be promoted\); retry once it has caught up/);
    await c.restart(id);
    // Promotion answers once the learner has caught up (the core says when): retried here as a client would.
    const promoted = await eventually(() => c.promote(id, 5_000).catch(() => undefined), 'node 4 promoted', 15_000, 100);
    assert.ok(promoted.index > 0);
    assert.is(memberIds(c), '1,2,3,4');
    await rejects(c.promote(id, 5_000), (x) => x instanceof ConflictError && /already a voter/.test((x as Error).message), 'promoting a voter');

    // Transfer answers once the new leader leads.
    const before = c.leader()!;
    const to = [1, 2, 3, 4].find((n) => n !== before)!;
    const t = await c.transfer(to, 5_000);
    assert.is(t.leader, to);
    assert.is(c.leader(), to);

    // Removing the leader: it commits its own removal, hands over and its worker stops.
    const r = await c.removeMember(to, 10_000);
    assert.ok(r.index > promoted.index);
    assert.not.ok(c.supervisor.ids.includes(to));
    const next = await eventually(() => c.leader() ?? undefined, 'a new leader', 10_000);
    assert.is.not(next, to);
    await kv.put('after-removal', 'yes', { timeoutMs: 10_000 });
    assert.is(await kv.get('after-removal'), 'yes');
    await rejects(c.transfer(to, 1_000), (x) => (x as Error).name === 'UnknownNodeError', 'transfer to a removed node');
    // A node that is down can be removed too (as when its directory is damaged and it cannot start).
    const down = [1, 2, 3, 4].find((n) => n !== to && n !== c.leader())!;
    await c.crash(down);
    await c.removeMember(down, 10_000);
    assert.not.ok(c.supervisor.ids.includes(down));
    const left = [1, 2, 3, 4].filter((n) => n !== to && n !== down);
    assert.is(memberIds(c), left.join(','));
    await kv.put('two-left', 'yes', { timeoutMs: 10_000 });
    await converged(c, left);
  } finally {
    await c.stop();
  }
});

test('2 full + 1 witness: lose a full node and keep committing; the witness keeps no state and serves no reads', async () => {
  const c = await Cluster.start({ nodes: 3, witnesses: [3], metricsIntervalMs: 0, snapshot: small });
  let load: WriteLoad | null = null;
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    assert.is(memberIds(c), '1,2,3:witness');
    load = new WriteLoad(c, 3);
    await load.progress(400, 'on 2 full + 1 witness');
    // Whichever full node leads, crash it: the other full node and the witness are a majority.
    const lost = c.leader() === 3 ? 1 : c.leader()!;
    const kept = lost === 1 ? 2 : 1;
    await c.crash(lost);
    await load.progress(300, `with node ${lost} down`);
    await eventually(() => (c.leader() === kept ? true : undefined), `node ${kept} leading (a witness hands leadership on)`, 10_000);
    await load.stop();
    await checkAcked(c, load.acked);

    const st = await c.supervisor.call<{ witness: boolean; applied: number; fullyHeld: number; firstIndex: number; snapshot: { index: number; fileBytes: number } }>(3, 'status');
    assert.ok(st.witness);
    assert.ok(st.applied > 700);
    assert.ok(st.snapshot.index > 0 && st.snapshot.index <= st.fullyHeld, `imageless snapshot at ${st.snapshot.index}, all full voters held ${st.fullyHeld}`);
    assert.ok(st.snapshot.fileBytes < 200, `the witness's snapshot holds no image (${st.snapshot.fileBytes} bytes)`);
    assert.ok(st.firstIndex > 1, 'the witness dropped the log its snapshot covers');
    const empty = await c.supervisor.call<{ digest: string }>(3, 'digest');
    const full = await c.supervisor.call<{ digest: string }>(kept, 'digest');
    assert.is.not(empty.digest, full.digest, 'the witness applied nothing');
    const e = await rejects(c.read('load-0-1', 'stale', 2_000, { via: 3 }), (x) => x instanceof NodeStateError, 'a stale read from the witness');
    assert.is((e as Error).message, 'node 3 is a witness and serves no reads; read from a full voter');

    // The crashed full node comes back and catches up: from the leader, never from the witness.
    await c.restart(lost);
    await converged(c, [1, 2]);
  } finally {
    await load?.stop();
    await c.stop();
  }
});

test('a witness added to a running cluster is sent no image and serves no reads', async () => {
  const c = await Cluster.start({ nodes: 2, metricsIntervalMs: 0, snapshot: small });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    const kv = new KvTestClient(c);
    for (let i = 0; i < 300; i++) await kv.put(`k${i % 50}`, `value ${i}`.padEnd(200, '.'));
    const { id } = await c.addMember('witness', 15_000);
    assert.is(memberIds(c), `1,2,${id}:witness`);
    for (let i = 0; i < 30; i++) await kv.put(`late${i}`, `${i}`);
    const st = await eventually(async () => {
      const s = await c.supervisor.call<{ applied: number; commit: number; snapshot: { index: number; bytesReceived: number } }>(id, 'status');
      return s.applied >= 330 ? s : undefined;
    }, 'the witness caught up', 10_000);
    assert.ok(st.snapshot.index > 0, 'it started from a snapshot (the leader had compacted its log)');
    assert.is(st.snapshot.bytesReceived, 0, 'no image bytes were streamed to it');
    const files = readdirSync(join(c.dataDir!, `node-${id}`)).filter((f) => f.endsWith('.snap'));
    assert.ok(files.length > 0);
    // Crash a full node: the other one and the witness still commit.
    const lost = c.leader() === 1 ? 2 : 1;
    await c.crash(lost);
    await kv.put('with-witness', 'ok', { timeoutMs: 10_000 });
    assert.is(await kv.get('with-witness', { timeoutMs: 10_000 }), 'ok');
  } finally {
    await c.stop();
  }
});

test.run();
