// Snapshot files that record a whole configuration (format version 2): round trips through the
// asynchronous writer, writeNow and a transfer; version 1 files still load and are still written
// when no configuration is given; damage in the configuration block is found.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SnapshotStore, type SnapshotMembership } from '../../runtime/storage/snapshot-store.ts';
import { cleanupTmp, throwsCode, tmpDir } from './helpers.ts';

test.after.each(() => cleanupTmp());

const headerBytes = 64;
const joint: SnapshotMembership = { voters: [1, 4, 5], outgoing: [1, 2, 3], learners: [7], witnesses: [5], autoLeave: true };
const data = new Uint8Array(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));

test('a snapshot with a membership is version 2 and round-trips the whole configuration', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const w = store.createWriter({ index: 40, term: 3, voters: [1, 4, 5], membership: joint });
  await w.write(data);
  const info = await w.commit();
  assert.equal(info.membership, joint);
  const file = fs.readFileSync(path.join(dir, info.name));
  assert.is(file.readUInt32LE(8), 2, 'format version');
  // flags + four lists: 3 voters, 3 outgoing, 1 learner, 1 witness.
  assert.is(info.fileBytes, headerBytes + 4 + 4 * 4 + 4 * 8 + data.length);
  const v = store.verify(info.name);
  assert.ok(v.ok);
  if (v.ok) assert.equal(v.info, info);
  assert.equal(store.list()[0], info);
  const r = store.openData(info.name);
  assert.equal(r.next(), data);
  r.close();
});

test('version 1 files are written without a membership and read back without one', () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const info = store.writeNow({ index: 9, term: 1, voters: [1, 2, 3] }, [data]);
  assert.is(info.membership, undefined);
  assert.is(fs.readFileSync(path.join(dir, info.name)).readUInt32LE(8), 1);
  const v = store.verify(info.name);
  assert.ok(v.ok);
  if (v.ok) {
    assert.is(v.info.membership, undefined);
    assert.equal(v.info.voters, [1, 2, 3]);
  }
});

test('an imageless snapshot (a witness bounds its log with it) round-trips with its configuration', () => {
  const store = SnapshotStore.open(tmpDir());
  const m: SnapshotMembership = { voters: [1, 2, 3], outgoing: [], learners: [], witnesses: [3], autoLeave: false };
  const info = store.writeNow({ index: 100, term: 2, voters: [1, 2, 3], membership: m }, []);
  assert.is(info.dataBytes, 0);
  const v = store.verify(info.name);
  assert.ok(v.ok);
  if (v.ok) assert.equal(v.info.membership, m);
});

test('a received version 2 file verifies and keeps its membership', async () => {
  const from = SnapshotStore.open(tmpDir());
  const info = from.writeNow({ index: 12, term: 4, voters: [1, 4, 5], membership: joint }, [data]);
  const to = SnapshotStore.open(tmpDir());
  const r = to.receive({ index: info.index, term: info.term, fileBytes: info.fileBytes, headerCrc: info.headerCrc });
  r.write(0, from.readRaw(info.name, 0, info.fileBytes));
  assert.equal(r.complete().membership, joint);
});

test('bad memberships are refused when writing; a damaged membership block is found by verify', () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1, 2], membership: joint }, []), 'BAD_OPTION', /must equal membership voters/);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1, 4, 5], membership: { ...joint, learners: [7, 7] } }, []), 'BAD_OPTION', /twice/);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1, 4, 5], membership: { ...joint, autoLeave: 'yes' as unknown as boolean } }, []), 'BAD_OPTION', /autoLeave/);
  const info = store.writeNow({ index: 2, term: 1, voters: [1, 4, 5], membership: joint }, [data]);
  const file = fs.readFileSync(path.join(dir, info.name));
  file[headerBytes + 8] = file[headerBytes + 8]! ^ 0xff; // the first voter id
  fs.writeFileSync(path.join(dir, info.name), file);
  const v = store.verify(info.name);
  assert.not.ok(v.ok);
  if (!v.ok) assert.match(v.detail, /header checksum/);
});

test.run();
