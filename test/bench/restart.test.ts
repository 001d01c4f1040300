// `concur bench restart`: a node restarted after a long history loads a snapshot and the log
// after it, not the whole history — and without snapshots it replays everything (the control).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchRestart } from '../../bench/restart.ts';
import { snapshotSettingsDefault } from '../../apps/cluster/snapshot-keeper.ts';

test('restart after 20,000 entries (4 steps): with snapshots every 500 only the tail is replayed (after the 5,000-entry margin, or the previous snapshot if older); without, the whole log', async () => {
  const [withSnap, without] = await benchRestart({ entries: 20_000, payloadBytes: 64, snapshotEntries: [500, 0], steps: 4 });
  // The WAL keeps what follows the older of the node's previous snapshot and the 5,000-entry margin
  // behind its last one, from the start of the segment that holds that point. Each step ends with
  // the follower's due snapshot written, so the previous one lies at most a step (5,000) behind:
  // about 5,000 entries are replayed, plus what the segment holds before that point. So: fewer than
  // the whole history (which the control replays) by at least half of what the node could drop.
  const w = withSnap!;
  const margin = w.snapshotIndex - snapshotSettingsDefault.catchUpEntries;
  const keptFrom = w.previousSnapshotIndex > 0 ? Math.min(w.previousSnapshotIndex, margin) : margin;
  const seen = `replayed ${w.walEntriesReplayed} entries; snapshots ${w.previousSnapshotIndex}, ${w.snapshotIndex}; applied ${w.appliedAtCrash}; control replayed ${without!.walEntriesReplayed}`;
  assert.ok(w.snapshotIndex > w.appliedAtCrash - 500, `restarted from the snapshot due at the crash (${seen})`);
  assert.ok(w.previousSnapshotIndex >= 15_000 - 500, `the previous snapshot at most a step behind (${seen})`);
  assert.is(without!.snapshotIndex, 0);
  assert.ok(without!.walEntriesReplayed >= 20_000, `replayed the whole history (${seen})`);
  assert.ok(w.walEntriesReplayed < without!.walEntriesReplayed - keptFrom / 2, `replayed a tail (${seen})`);
  for (const c of [withSnap!, without!]) assert.ok(c.caughtUpMs >= c.loadMs && c.loadMs > 0);
});

test.run();
