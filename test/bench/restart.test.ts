// `concur bench restart`: a node restarted after a long history loads a snapshot and the log
// after it, not the whole history — and without snapshots it replays everything (the control).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchRestart } from '../../bench/restart.ts';

test('restart after 20,000 entries: with snapshots every 500 only the tail is replayed (after the 5,000-entry margin, or the previous snapshot if older); without, the whole log', async () => {
  const [withSnap, without] = await benchRestart({ entries: 20_000, payloadBytes: 64, snapshotEntries: [500, 0] });
  assert.ok(withSnap!.snapshotIndex > 0, `started from a snapshot (${withSnap!.snapshotIndex})`);
  // The WAL keeps what follows the older of the node's previous snapshot and the 5,000-entry
  // margin behind its last one, from the start of the segment that holds it. Where the previous
  // snapshot lies depends on how well snapshot writing kept pace with the load: usually ~5,000
  // entries are replayed, but on a loaded machine the previous snapshot lay 4,000-12,000 entries in
  // (12,000-16,000 replayed). So: fewer than the whole history, which the control replays.
  const w = withSnap!;
  assert.ok(w.previousSnapshotIndex > 0, `a snapshot before the last one (${w.previousSnapshotIndex})`);
  assert.is(without!.snapshotIndex, 0);
  assert.ok(without!.walEntriesReplayed >= 20_000, `replayed the whole history (${without!.walEntriesReplayed} entries)`);
  assert.ok(w.walEntriesReplayed < without!.walEntriesReplayed - w.previousSnapshotIndex / 2, `replayed a tail (${w.walEntriesReplayed} entries; snapshots ${w.previousSnapshotIndex}, ${w.snapshotIndex}; applied ${w.appliedAtCrash})`);
  for (const c of [withSnap!, without!]) assert.ok(c.caughtUpMs >= c.loadMs && c.loadMs > 0);
});

test.run();
