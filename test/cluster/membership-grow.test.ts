// A live WAL cluster grows from 3 to 5 voters and shrinks back to 3 while clients write without
// pause: every acknowledged write reads back afterwards, the remaining full replicas agree, and
// the removed nodes' workers are gone. New members catch up by snapshot (the leader compacted
// its log long before they came).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { checkAcked, converged, memberIds, WriteLoad } from './membership-support.ts';

test('grow 3 → 5 → 3 under a steady write load: nothing acknowledged is lost', async () => {
  const c = await Cluster.start({ nodes: 3, metricsIntervalMs: 0, snapshot: { entries: 200, catchUpEntries: 20, retainEntriesMax: 100 } });
  let load: WriteLoad | null = null;
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    load = new WriteLoad(c);
    await load.progress(400, 'before growing');

    const a = await c.addMember('voter', 15_000);
    assert.is(a.id, 4);
    await load.progress(100, 'with node 4');
    const b = await c.addMember('voter', 15_000);
    assert.is(b.id, 5);
    assert.ok(b.index > a.index);
    assert.is(memberIds(c), '1,2,3,4,5');
    await load.progress(200, 'with five voters');
    // An added node cut off, then back: the others go on, and it catches up.
    c.partition([[5]]);
    await load.progress(100, 'with node 5 cut off');
    c.heal();

    // Shrink by one original and one new member; neither is the leader here (see membership-roles for that).
    const leader = c.leader()!;
    const [first, second] = [1, 2, 3, 4, 5].filter((id) => id !== leader && id !== 5).slice(1);
    await c.removeMember(first!, 15_000);
    await load.progress(100, `without node ${first}`);
    await c.removeMember(second!, 15_000);
    await load.progress(200, 'with three voters again');
    await load.stop();

    const left = [1, 2, 3, 4, 5].filter((id) => id !== first && id !== second);
    assert.is(memberIds(c), left.join(','));
    assert.equal(c.supervisor.ids, left, 'the removed nodes have no worker');
    assert.not.ok(c.hasNode(first!));
    assert.ok(load.acked.size >= 1000, `${load.acked.size} writes acknowledged`);
    await checkAcked(c, load.acked);
    await converged(c, left);
    const st = await c.supervisor.call<{ snapshot: { index: number } }>(5, 'status');
    assert.ok(st.snapshot.index > 0, 'node 5 holds a snapshot (installed from the leader, or its own since)');
  } finally {
    await load?.stop();
    await c.stop();
  }
});

test.run();
