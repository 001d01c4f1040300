// `concur bench restart`: a node restarted after a long history loads a snapshot and the log
// after it, not the whole history — and without snapshots it replays everything (the control).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchRestart } from '../../bench/restart.ts';

test('restart after 20,000 entries: with snapshots every 500 only the tail (the 5,000-entry margin and a segment) is replayed; without, the whole log', async () => {
  const [withSnap, without] = await benchRestart({ entries: 20_000, payloadBytes: 64, snapshotEntries: [500, 0] });
  assert.ok(withSnap!.snapshotIndex > 0, `started from a snapshot (${withSnap!.snapshotIndex})`);
  assert.ok(withSnap!.walEntriesReplayed < 10_000, `replayed a tail (${withSnap!.walEntriesReplayed} entries)`);
  assert.is(without!.snapshotIndex, 0);
  assert.ok(without!.walEntriesReplayed >= 20_000, `replayed the whole history (${without!.walEntriesReplayed} entries)`);
  for (const c of [withSnap!, without!]) assert.ok(c.caughtUpMs >= c.loadMs && c.loadMs > 0);
});

test.run();
