// WAL-only behaviour: recovery from torn and corrupt tails, segment rollover and compaction,
// refusing directories and files that are not ours, and the checksum itself.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32, crc32Native, crc32Table } from '../../runtime/storage/crc32.ts';
import { openWal } from '../../runtime/storage/wal.ts';
import type { LogEntry } from '../../runtime/storage/types.ts';
import { cleanupTmp, makeEntries, plain, rng, throwsCode, tmpDir } from './helpers.ts';

test.after.each(() => cleanupTmp());

const seg1 = 'wal-0000000000000001.log';

/** A one-segment WAL of `batches` synced batches, each a single ENTRIES record; returns the file
 * bytes and the file size after each batch, so a cut offset maps to the batches it keeps. */
function buildLog(batches: number, perBatch = 3): { bytes: Buffer; ends: number[]; start: number; all: LogEntry[] } {
  const dir = tmpDir();
  const s = openWal({ dir });
  s.load();
  const file = path.join(dir, seg1);
  const start = fs.statSync(file).size;
  const ends: number[] = [];
  const all: LogEntry[] = [];
  for (let b = 0; b < batches; b++) {
    const e = makeEntries(b * perBatch + 1, perBatch, 1, 10 + b);
    all.push(...e);
    s.append(e);
    s.sync();
    ends.push(fs.statSync(file).size);
  }
  s.close();
  return { bytes: fs.readFileSync(file), ends, start, all };
}

function dirWith(bytes: Uint8Array): string {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, seg1), bytes);
  return dir;
}

test('a tail cut at random offsets is recovered to the last whole record, reported, and repaired', () => {
  const seed = 0xc0ffee;
  const random = rng(seed);
  const { bytes, ends, start, all } = buildLog(12);
  const cuts = new Set<number>([start, ends[0]!, ends[5]! + 1, bytes.length - 1, 5, 31, 33]);
  while (cuts.size < 80) cuts.add(1 + Math.floor(random() * (bytes.length - 1)));
  for (const cut of cuts) {
    const dir = dirWith(bytes.subarray(0, cut));
    const s = openWal({ dir });
    const r = s.load();
    const whole = ends.filter((e) => e <= cut).length;
    const where = `cut at ${cut} (seed ${seed})`;
    assert.equal(plain(r.entries), plain(all.slice(0, whole * 3)), where);
    if (cut >= start) {
      const boundary = whole > 0 ? ends[whole - 1]! : start;
      if (cut === boundary) {
        assert.is(r.report.dropped, null, where);
      } else {
        assert.ok(r.report.dropped, where);
        assert.is(r.report.dropped!.reason, 'torn', where);
        assert.is(r.report.dropped!.offset, boundary, where);
        assert.is(r.report.dropped!.bytes, cut - boundary, where);
        assert.is(r.report.dropped!.records, 1, where);
        assert.match(r.report.summary, /DROPPED/);
      }
      assert.is(fs.statSync(path.join(dir, seg1)).size, boundary, `file cut back to the last good record: ${where}`);
    } else {
      // Inside the preamble only the exact record boundaries (header end 32, segment-start end 57)
      // are clean; every other cut is a torn write and must be reported.
      if (cut !== 32 && cut !== 57) assert.ok(r.report.dropped, `a torn preamble is reported: ${where}`);
    }
    // Later appends land cleanly after the repair.
    s.append(makeEntries(whole * 3 + 1, 2, 2));
    s.close();
    const again = openWal({ dir });
    const r2 = again.load();
    assert.is(r2.report.dropped, null, where);
    assert.is(r2.entries.length, whole * 3 + 2, where);
    again.close();
  }
});

test('a flipped byte in the last record is caught by its checksum', () => {
  const { bytes, ends, all } = buildLog(6);
  const damaged = Buffer.from(bytes);
  damaged[ends[4]! + 8 + 1 + 12 + 16 + 3]! ^= 0x40; // inside the first entry's data of batch 6
  const s = openWal({ dir: dirWith(damaged) });
  const r = s.load();
  assert.equal(plain(r.entries), plain(all.slice(0, 15)));
  assert.is(r.report.dropped!.reason, 'corrupt');
  assert.is(r.report.dropped!.offset, ends[4]);
  assert.is(r.report.dropped!.records, 1);
  assert.match(r.report.dropped!.detail, /checksum mismatch/);
  s.close();
});

test('a flipped byte in a middle record stops recovery there even though valid records follow', () => {
  const { bytes, ends, all } = buildLog(10);
  const damaged = Buffer.from(bytes);
  damaged[ends[2]! + 30]! ^= 0x01; // batch 4 of 10
  const dir = dirWith(damaged);
  const s = openWal({ dir });
  const r = s.load();
  assert.equal(plain(r.entries), plain(all.slice(0, 9)));
  const d = r.report.dropped!;
  assert.is(d.reason, 'corrupt');
  assert.is(d.offset, ends[2]);
  assert.is(d.records, 7);
  assert.is(d.bytes, bytes.length - ends[2]!);
  assert.match(d.detail, /followed by 6 valid record\(s\): damage on disk, not a torn write/);
  s.close();
  assert.is(openWal({ dir }).load().report.dropped, null, 'the repair is durable: a second open is clean');
});

test('any single damaged byte after the header is detected, never returned as data', () => {
  const random = rng(7);
  const { bytes, all } = buildLog(8);
  for (let i = 0; i < 60; i++) {
    const at = 32 + Math.floor(random() * (bytes.length - 32));
    const damaged = Buffer.from(bytes);
    damaged[at]! ^= 1 + Math.floor(random() * 255);
    const s = openWal({ dir: dirWith(damaged) });
    const r = s.load();
    assert.ok(r.report.dropped, `byte ${at} damaged but nothing reported`);
    assert.ok(r.entries.length < all.length, `byte ${at}`);
    assert.equal(plain(r.entries), plain(all.slice(0, r.entries.length)), `byte ${at}: recovered a non-prefix`);
    s.close();
  }
});

test('a zero-filled tail (file grew, data never landed) is a torn write', () => {
  const { bytes, all } = buildLog(3);
  const s = openWal({ dir: dirWith(Buffer.concat([bytes, Buffer.alloc(4096)])) });
  const r = s.load();
  assert.is(r.entries.length, all.length);
  assert.is(r.report.dropped!.reason, 'torn');
  assert.match(r.report.dropped!.detail, /zero-filled tail of 4096 bytes/);
  s.close();
});

function segments(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort();
}

/** 100 batches of 4 × 64-byte entries into 4 KiB segments: about ten segments. */
function buildSegmented(): { dir: string; all: LogEntry[] } {
  const dir = tmpDir();
  const s = openWal({ dir, segmentBytesMax: 4096 });
  s.load();
  const all: LogEntry[] = [];
  for (let b = 0; b < 100; b++) {
    const e = makeEntries(b * 4 + 1, 4, 1 + (b >> 4), 64);
    all.push(...e);
    s.append(e);
    s.setHardState({ term: 1 + (b >> 4), vote: 2, commit: b * 4 });
    s.sync();
  }
  assert.is(s.stats().segments, segments(dir).length);
  s.close();
  return { dir, all };
}

test('segments roll over at segmentBytesMax and replay as one log', () => {
  const { dir, all } = buildSegmented();
  const names = segments(dir);
  assert.ok(names.length >= 8, `expected many segments, got ${names.length}`);
  for (const n of names) assert.ok(fs.statSync(path.join(dir, n)).size <= 4096, `${n} over segmentBytesMax`);
  const s = openWal({ dir, segmentBytesMax: 4096 });
  const r = s.load();
  assert.equal(plain(r.entries), plain(all));
  assert.equal(r.hardState, { term: 7, vote: 2, commit: 396 });
  assert.is(r.report.segmentsRead, names.length);
  assert.is(r.report.dropped, null);
  s.close();
});

test('compaction deletes whole old segments; the rest replays on its own', () => {
  const { dir, all } = buildSegmented();
  const before = segments(dir);
  const s = openWal({ dir, segmentBytesMax: 4096 });
  s.load();
  s.compact(300);
  const after = segments(dir);
  assert.ok(after.length < before.length, `${after.length} segments left of ${before.length}`);
  assert.is(after[after.length - 1], before[before.length - 1]);
  s.close();
  const again = openWal({ dir, segmentBytesMax: 4096 });
  const r = again.load();
  assert.equal(plain(r.entries), plain(all.slice(300)));
  assert.is(again.firstIndex, 301);
  assert.is(again.lastIndex, 400);
  assert.equal(r.hardState, { term: 7, vote: 2, commit: 396 });
  again.append(makeEntries(401, 1, 9));
  again.close();
  assert.is(openWal({ dir }).load().entries.length, 101);
});

test('a torn last segment keeps every earlier segment', () => {
  const { dir, all } = buildSegmented();
  const names = segments(dir);
  const last = path.join(dir, names[names.length - 1]!);
  fs.truncateSync(last, fs.statSync(last).size - 50);
  const s = openWal({ dir });
  const r = s.load();
  assert.is(r.report.dropped!.reason, 'torn');
  assert.is(r.report.dropped!.segment, names[names.length - 1]);
  assert.ok(r.entries.length >= all.length - 8 && r.entries.length < all.length);
  assert.equal(plain(r.entries), plain(all.slice(0, r.entries.length)));
  s.close();
});

test('damage in an early segment drops it from there and removes the later segments', () => {
  const { dir, all } = buildSegmented();
  const names = segments(dir);
  const second = path.join(dir, names[1]!);
  const b = fs.readFileSync(second);
  b[b.length - 20]! ^= 0xff;
  fs.writeFileSync(second, b);
  const s = openWal({ dir });
  const r = s.load();
  const d = r.report.dropped!;
  assert.is(d.reason, 'corrupt');
  assert.is(d.segment, names[1]);
  assert.equal(d.segmentsRemoved, names.slice(2));
  assert.ok(d.records > 10, `records dropped ${d.records}`);
  assert.equal(segments(dir), names.slice(0, 2));
  assert.ok(r.entries.length < 100);
  assert.equal(plain(r.entries), plain(all.slice(0, r.entries.length)));
  assert.match(r.report.summary, /removed wal-0000000000000003\.log/);
  s.close();
});

test('a missing middle segment is refused, not silently skipped', () => {
  const { dir } = buildSegmented();
  const names = segments(dir);
  fs.unlinkSync(path.join(dir, names[3]!));
  throwsCode(() => openWal({ dir }), 'MISSING_SEGMENT', new RegExp(`between ${names[2]} and ${names[4]}`));
});

test('paths and directories that are not a WAL are refused with what to do', () => {
  const base = tmpDir();
  const file = path.join(base, 'plain-file');
  fs.writeFileSync(file, 'x');
  throwsCode(() => openWal({ dir: file }), 'NOT_A_DIRECTORY', /is not a directory; pass a directory path/);

  const foreign = path.join(base, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  throwsCode(() => openWal({ dir: foreign }), 'NOT_A_WAL_DIRECTORY', /not empty and holds no concur WAL \(found notes\.txt\)/);
  assert.is(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8'), 'mine');

  const alien = tmpDir();
  fs.writeFileSync(path.join(alien, seg1), Buffer.from('this is not a log file, honestly'));
  throwsCode(() => openWal({ dir: alien }), 'BAD_FORMAT', /not a concur WAL segment/);
  assert.is(fs.statSync(path.join(alien, seg1)).size, 32, 'a foreign file is never truncated');

  const nested = path.join(base, 'a', 'b', 'node-1');
  const s = openWal({ dir: nested });
  assert.ok(fs.statSync(nested).isDirectory(), 'a missing directory is created');
  s.close();

  throwsCode(() => openWal({ dir: '' }), 'BAD_OPTION', /dir must be/);
  throwsCode(() => openWal({ dir: nested, segmentBytesMax: 10 }), 'BAD_OPTION', /segmentBytesMax must be an integer from 4096/);
});

test('a segment from a newer format version is refused, not repaired', () => {
  const { bytes } = buildLog(2);
  const newer = Buffer.from(bytes);
  newer.writeUInt32LE(2, 8);
  newer.writeUInt32LE(crc32(newer.subarray(0, 28)), 28);
  const dir = dirWith(newer);
  throwsCode(() => openWal({ dir }), 'NEWER_FORMAT', /format v2 but this concur reads up to v1; upgrade concur/);
  assert.is(fs.statSync(path.join(dir, seg1)).size, bytes.length);
});

test('entries are packed into records of at most recordBytesMax; an entry too big is refused', () => {
  const dir = tmpDir();
  const s = openWal({ dir, recordBytesMax: 1024 });
  s.load();
  throwsCode(() => s.append(makeEntries(1, 1, 1, 2000)), 'TOO_LARGE', /recordBytesMax 1024/);
  const e = makeEntries(1, 50, 1, 100);
  s.append(e);
  s.close();
  const r = openWal({ dir }).load();
  assert.equal(plain(r.entries), plain(e));
  assert.ok(r.report.recordsReplayed >= 2 + 5, `entries split into records: ${r.report.recordsReplayed}`);
});

test('crc32: native and table versions agree and match the check value', () => {
  const check = Buffer.from('123456789');
  assert.is(crc32Table(check), 0xcbf43926);
  assert.is(crc32(check), 0xcbf43926);
  const random = rng(99);
  for (let n = 0; n < 200; n++) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(random() * 256);
    assert.is(crc32Table(b), crc32(b), `length ${n}`);
    const cut = Math.floor(n / 3);
    assert.is(crc32Table(b.subarray(cut), crc32Table(b.subarray(0, cut))), crc32(b), `chained, length ${n}`);
  }
  assert.type(crc32Native, 'boolean');
});

test.run();
