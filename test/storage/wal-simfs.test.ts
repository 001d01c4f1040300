// The WAL on SimFs, the simulator's disk: the shared storage behaviour, then what survives a crash
// of the disk (synced entries, never unsynced ones), torn tails cut at recovery, damage to an old
// record refused, and segment deletions that count only once their directory is synced.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import { SimFs } from '../../runtime/storage/sim-fs.ts';
import { openWal, walRecordOffsets, type WalStorage } from '../../runtime/storage/wal.ts';
import type { WalOptions } from '../../runtime/storage/types.ts';
import { behaviourSuite } from './behaviour.ts';
import { makeEntries, plain, throwsCode } from './helpers.ts';

const dir = '/nodes/n1';
const seg1 = `${dir}/wal-0000000000000001.log`;

function disk(syncDelayMs = 3): { fs: SimFs; now: () => number; tick: (ms: number) => void } {
  let t = 0;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  return { fs: new SimFs({ clock, syncDelayMs: () => syncDelayMs }), now: () => t, tick: (ms) => void (t += ms) };
}

const open = (fs: SimFs, o: Partial<WalOptions> = {}): WalStorage => openWal({ dir, fs, ...o });

const behaviour = behaviourSuite('wal on SimFs', () => {
  const { fs } = disk();
  return {
    open: (o = {}) => open(fs, o),
    openRaw: (o) => openWal({ dir, fs, ...(o as object) }),
  };
});
behaviour.run();

/** A WAL with `synced` entries made durable, then `unsynced` more written to the file (not
 * fsynced: pendingBytesMax 0 flushes every call). The store is dropped as a killed process. */
function withTail(synced: number, unsynced: number): { fs: SimFs; now: () => number } {
  const d = disk();
  const s = open(d.fs, { pendingBytesMax: 0 });
  s.load();
  s.append(makeEntries(1, synced, 1, 40));
  s.setHardState({ term: 1, vote: 1, commit: synced });
  s.sync();
  d.tick(1);
  for (let i = 0; i < unsynced; i++) s.append(makeEntries(synced + 1 + i, 1, 1, 40));
  assert.ok(d.fs.pendingBytes() > 0 || unsynced === 0, 'the tail reached the file without an fsync');
  s.crash();
  return d;
}

test('append, sync, reopen on SimFs; the directory and the first segment are durable at once', () => {
  const { fs, now } = disk();
  const s = open(fs);
  s.load();
  s.append(makeEntries(1, 5, 2));
  s.setHardState({ term: 2, vote: 1, commit: 3 });
  s.sync();
  s.close();
  fs.crash(now());
  const r = open(fs).load();
  assert.equal(plain(r.entries), plain(makeEntries(1, 5, 2)));
  assert.equal(r.hardState, { term: 2, vote: 1, commit: 3 });
  assert.is(r.report.dropped, null);
});

test('a crash of the disk after append but before sync loses the entries; after sync keeps them', () => {
  const { fs, now } = withTail(4, 3);
  fs.crash(now());
  const r = open(fs).load();
  assert.equal(plain(r.entries), plain(makeEntries(1, 4, 1, 40)));
  assert.is(r.report.dropped, null, 'untorn: the unsynced records are simply absent');
  assert.equal(r.hardState, { term: 1, vote: 1, commit: 4 });
});

test('a torn crash leaves a torn tail that recovery cuts and reports; the log goes on', () => {
  let cut = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const { fs, now } = withTail(4, 6);
    const { tornFiles } = fs.crash(now(), { rng: createRng(seed), chance: 1 });
    const s = open(fs);
    const r = s.load();
    assert.ok(r.entries.length >= 4 && r.entries.length <= 10, `seed ${seed}: ${r.entries.length} entries`);
    assert.equal(plain(r.entries), plain(makeEntries(1, r.entries.length, 1, 40)), `seed ${seed}: a prefix`);
    if (r.report.dropped !== null) {
      cut++;
      assert.is(r.report.dropped.reason, 'torn', `seed ${seed}: ${r.report.summary}`);
      assert.equal(tornFiles, [seg1]);
    }
    s.append(makeEntries(r.entries.length + 1, 2, 2));
    s.close();
    const again = open(fs).load();
    assert.is(again.entries.length, r.entries.length + 2, `seed ${seed}: appends after the cut replay`);
    assert.is(again.report.dropped, null);
  }
  assert.ok(cut >= 10, `most seeds tear a record in the middle (${cut} of 30)`);
});

test('damage to any byte of a record followed by valid records is refused (CORRUPT), the length field too', () => {
  const build = (): { fs: SimFs; now: () => number } => {
    const d = disk();
    const s = open(d.fs);
    s.load();
    for (let i = 0; i < 6; i++) {
      s.append(makeEntries(i * 3 + 1, 3, 1, 20));
      s.sync();
    }
    s.close();
    return d;
  };
  const offsets = walRecordOffsets(build().fs.readFileSync(seg1));
  // SEGMENT_START and HARD_STATE open the segment, then one ENTRIES record per synced batch.
  assert.is(offsets.length, 8);
  assert.is(offsets[0], 32, 'records start after the 32-byte header');
  const victim = offsets[4]!;
  const end = offsets[5]!;
  for (let at = victim; at < end; at++) {
    const { fs, now } = build();
    fs.corrupt(seg1, at);
    fs.crash(now());
    const before = fs.readFileSync(seg1);
    throwsCode(() => open(fs), 'CORRUPT', new RegExp(`damaged at byte offset ${victim}`));
    assert.ok(fs.readFileSync(seg1).equals(before), `byte ${at}: a refusal changes nothing`);
  }
});

test('walRecordOffsets lists complete, checksum-valid records only', () => {
  const { fs } = disk();
  const s = open(fs);
  s.load();
  s.append(makeEntries(1, 2, 1));
  s.sync();
  s.close();
  const b = fs.readFileSync(seg1);
  const all = walRecordOffsets(b);
  assert.is(all.length, 3);
  assert.equal(walRecordOffsets(b.subarray(0, b.length - 1)), all.slice(0, 2), 'a torn last record is not listed');
  const damaged = Buffer.from(b);
  damaged[all[1]! + 9]! ^= 1;
  assert.equal(walRecordOffsets(damaged), all.slice(0, 1), 'listing stops at the first record that fails its checksum');
  assert.equal(walRecordOffsets(b.subarray(0, 20)), []);
});

test('compaction deletes segments; the deletion survives a crash only after the directory fsync', () => {
  const build = (): { fs: SimFs; now: () => number; before: string[]; after: string[] } => {
    const d = disk(5);
    const s = open(d.fs, { segmentBytesMax: 4096 });
    s.load();
    for (let i = 0; i < 40; i++) {
      s.append(makeEntries(i * 5 + 1, 5, 1, 100));
      s.sync();
    }
    const before = d.fs.readdirSync(dir);
    s.compact(150, 1);
    const after = d.fs.readdirSync(dir);
    s.crash();
    return { ...d, before, after };
  };
  const { fs, now, before, after } = build();
  assert.ok(after.length < before.length, `compaction deleted segments: ${before.length} -> ${after.length}`);
  // compact(): fdatasync (5 ms), unlink, directory fsync (5 ms): one ms earlier is inside the latter.
  fs.crash(now() - 1);
  assert.equal(fs.readdirSync(dir), before, 'the unlinks were not durable: the segments are back');
  const r1 = open(fs).load();
  assert.is(r1.compactedIndex, 150, 'the compaction point itself was durable');
  assert.is(r1.entries.length, 50);

  const second = build();
  second.fs.crash(second.now());
  assert.equal(second.fs.readdirSync(dir), second.after);
  const r2 = open(second.fs).load();
  assert.is(r2.compactedIndex, 150);
  assert.equal(plain(r2.entries), plain(makeEntries(151, 50, 1, 100)));
});

test("fsync 'never': a crash of the disk keeps nothing written, across segment rollovers too", () => {
  const d = disk(5);
  const s = open(d.fs, { segmentBytesMax: 4096, pendingBytesMax: 0, fsync: 'never' });
  s.load();
  s.append(makeEntries(1, 60, 1, 100)); // rolls over; 'never': no fsync at all
  const names = d.fs.readdirSync(dir);
  s.crash();
  d.fs.crash(d.now());
  assert.ok(names.length >= 1);
  const r = open(d.fs).load();
  assert.is(r.entries.length, 0, 'nothing was ever synced');
});

test('openWal refuses an fs option that is not a FileSystem; a relative dir on SimFs starts at /', () => {
  throwsCode(() => openWal({ dir, fs: {} as unknown as SimFs }), 'BAD_OPTION', /lacks statSync/);
  throwsCode(() => openWal({ dir, fs: null as unknown as SimFs }), 'BAD_OPTION', /fs must be a FileSystem/);
  const { fs } = disk();
  const s = openWal({ dir: 'relative/n1', fs });
  assert.is(s.dir, '/relative/n1', 'not the process working directory');
  assert.equal(fs.readdirSync('/relative/n1'), ['wal-0000000000000001.log']);
});

test.run();
