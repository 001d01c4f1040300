// WAL-only behaviour: a torn tail is cut, damage anywhere else is refused untouched; segment
// rollover, compaction and reset; reading format v1; refusing directories and files that are not
// ours, and the checksum itself.
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

// Records built by hand, for formats and damage the writer never produces.
function record(type: number, body: Buffer): Buffer {
  const out = Buffer.alloc(9 + body.length);
  out.writeUInt32LE(1 + body.length, 4);
  out[8] = type;
  body.copy(out, 9);
  out.writeUInt32LE(crc32(out.subarray(4)), 0);
  return out;
}

function u64(...ns: number[]): Buffer {
  const b = Buffer.alloc(8 * ns.length);
  ns.forEach((n, i) => b.writeBigUInt64LE(BigInt(n), 8 * i));
  return b;
}

function header(seq: number, version: number): Buffer {
  const b = Buffer.alloc(32);
  b.write('CONCURWL', 0, 'ascii');
  b.writeUInt32LE(version, 8);
  b.writeBigUInt64LE(BigInt(seq), 16);
  b.writeUInt32LE(crc32(b.subarray(0, 28)), 28);
  return b;
}

function hardStateBody(term: number, vote: number, commit: number): Buffer {
  return Buffer.concat([u64(term, vote, commit), Buffer.alloc(4)]);
}

/** An ENTRIES body of empty-data entries from `first`, one per term given. */
function entriesBody(first: number, terms: number[]): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt32LE(terms.length, 0);
  return Buffer.concat([u64(first), fixed, ...terms.map((t) => Buffer.concat([u64(t), Buffer.alloc(8)]))]);
}

const segmentName = (seq: number): string => `wal-${String(seq).padStart(16, '0')}.log`;

/** Start offsets of the records of a segment (its bytes must parse to the end). */
function recordOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let p = 32; p + 8 <= b.length; p += 8 + b.readUInt32LE(p + 4)) out.push(p);
  return out;
}
const lastRecordOffset = (b: Buffer): number => recordOffsets(b).pop()!;

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
      // Inside the preamble only the exact record boundaries (header end 32, segment-start end
      // 32 + 8 + 1 + 24 = 65) are clean; every other cut is a torn write and must be reported.
      if (cut !== 32 && cut !== 65) assert.ok(r.report.dropped, `a torn preamble is reported: ${where}`);
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

/** Every file of a directory with its bytes, to show a refusal changed nothing. */
function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync(dir).sort()) out[n] = fs.readFileSync(path.join(dir, n)).toString('base64');
  return out;
}

/** Opening must refuse with CORRUPT, naming file and offset, and leave every byte as it was. */
function refusesUntouched(dir: string, segment: string, offset: number, what: RegExp): string {
  const before = snapshotDir(dir);
  let message = '';
  throwsCode(
    () => {
      try {
        openWal({ dir });
      } catch (e) {
        message = (e as Error).message;
        throw e;
      }
    },
    'CORRUPT',
    what,
  );
  assert.ok(message.includes(`WAL segment ${path.join(dir, segment)} is damaged at byte offset ${offset}:`), message);
  assert.match(message, /must not start as a voter: it may have lost votes and acknowledged entries/);
  assert.ok(message.includes(`move ${dir} aside (keep it for inspection) and start this node with an empty directory`), message);
  assert.match(message, /safe only while the other nodes are healthy, because the node forgets its votes/);
  assert.equal(snapshotDir(dir), before, 'a refusal changes nothing on disk');
  return message;
}

test('a flipped byte in a middle record refuses to open, naming the file and offset, and changes nothing', () => {
  const { bytes, ends } = buildLog(10);
  const damaged = Buffer.from(bytes);
  damaged[ends[2]! + 30]! ^= 0x01; // batch 4 of 10
  const dir = dirWith(damaged);
  const len = bytes.readUInt32LE(ends[2]! + 4);
  refusesUntouched(dir, seg1, ends[2]!, new RegExp(`checksum mismatch in a ${len}-byte record, followed by 6 valid records\\. This is damage on disk, not a torn write`));
  refusesUntouched(dir, seg1, ends[2]!, /CORRUPT|checksum/); // and again: nothing was repaired in between
});

test('a record that passes its checksum but makes no sense is refused, even as the last record', () => {
  const { bytes, ends } = buildLog(4);
  const unknown = Buffer.concat([bytes, record(9, Buffer.alloc(3))]);
  refusesUntouched(dirWith(unknown), seg1, bytes.length, /passes its checksum but cannot belong to this log: unknown record type 9 in a v2 segment/);

  // An entries record that skips an index, in the middle of the log.
  const gap = Buffer.concat([bytes.subarray(0, ends[1]!), record(2, entriesBody(99, [1])), bytes.subarray(ends[1]!)]);
  refusesUntouched(dirWith(gap), seg1, ends[1]!, /entries record starts at index 99 but the log continues at 7/);
});

test('any single damaged byte after the header is detected: cut as a tail or refused, never returned as data', () => {
  const random = rng(7);
  const { bytes, ends, all } = buildLog(8);
  let refused = 0;
  for (let i = 0; i < 60; i++) {
    const at = 32 + Math.floor(random() * (bytes.length - 32));
    const damaged = Buffer.from(bytes);
    damaged[at]! ^= 1 + Math.floor(random() * 255);
    const dir = dirWith(damaged);
    let s;
    try {
      s = openWal({ dir });
    } catch (e) {
      assert.is((e as { code?: string }).code, 'CORRUPT', `byte ${at}: ${(e as Error).message}`);
      assert.equal(fs.readFileSync(path.join(dir, seg1)), damaged, `byte ${at}: a refusal leaves the file as it was`);
      refused++;
      continue;
    }
    const r = s.load();
    assert.ok(r.report.dropped, `byte ${at} damaged but nothing reported`);
    assert.ok(r.entries.length < all.length, `byte ${at}`);
    assert.equal(plain(r.entries), plain(all.slice(0, r.entries.length)), `byte ${at}: recovered a non-prefix`);
    // A length field damaged into one that runs past the end reads as a torn tail; anything else
    // that is cut must be in the last record.
    if (r.report.dropped!.reason !== 'torn') assert.is(r.report.dropped!.offset, ends[6], `byte ${at}: cut before the last record`);
    s.close();
  }
  assert.ok(refused > 30, `most damage is followed by valid records and refused (${refused} of 60)`);
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
  s.compact(300, all[299]!.term);
  const after = segments(dir);
  assert.ok(after.length < before.length, `${after.length} segments left of ${before.length}`);
  assert.is(after[after.length - 1], before[before.length - 1]);
  s.close();
  const again = openWal({ dir, segmentBytesMax: 4096 });
  const r = again.load();
  assert.equal(plain(r.entries), plain(all.slice(300)));
  assert.is(again.firstIndex, 301);
  assert.is(again.lastIndex, 400);
  assert.is(r.compactedIndex, 300);
  assert.is(r.compactedTerm, all[299]!.term);
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

test('damage at the end of an early segment is refused: later segments hold valid records', () => {
  const { dir } = buildSegmented();
  const names = segments(dir);
  const second = path.join(dir, names[1]!);
  const b = fs.readFileSync(second);
  b[b.length - 20]! ^= 0xff;
  fs.writeFileSync(second, b);
  const offset = lastRecordOffset(b);
  refusesUntouched(dir, names[1]!, offset, new RegExp(`followed by \\d+ valid records \\(0 in this segment, \\d+ in ${names.length - 2} later segments\\)`));
});

test('damage in the middle of a later segment is refused', () => {
  const { dir } = buildSegmented();
  const names = segments(dir);
  const last = path.join(dir, names[names.length - 1]!);
  const b = fs.readFileSync(last);
  const offsets = recordOffsets(b);
  const victim = offsets[Math.floor(offsets.length / 2)]!;
  b[victim + 12]! ^= 0x10;
  fs.writeFileSync(last, b);
  refusesUntouched(dir, names[names.length - 1]!, victim, /checksum mismatch in a \d+-byte record, followed by \d+ valid records\. /);
});

test('a torn header or tail in a segment that is not the last is damage, not a tear', () => {
  const { dir } = buildSegmented();
  const names = segments(dir);
  fs.truncateSync(path.join(dir, names[2]!), 20);
  refusesUntouched(dir, names[2]!, 0, /segment header cut short \(20 of 32 bytes\), followed by \d+ valid records \(0 in this segment/);

  const other = buildSegmented().dir;
  const third = path.join(other, names[2]!);
  fs.truncateSync(third, fs.statSync(third).size - 5);
  refusesUntouched(other, names[2]!, lastRecordOffset(fs.readFileSync(third).subarray(0, fs.statSync(third).size)), /extends past the end|impossible here/);
});

test('a header whose sequence number disagrees with its file name is refused', () => {
  const { bytes } = buildLog(2);
  const b = Buffer.from(bytes);
  b.writeUInt32LE(5, 16);
  b.writeUInt32LE(crc32(b.subarray(0, 28)), 28);
  refusesUntouched(dirWith(b), seg1, 0, /header says segment 5 but the file name says 1/);
});

test('a torn last segment and empty later files are cut; a torn record with a damaged checksum too', () => {
  const { dir, all } = buildSegmented();
  const names = segments(dir);
  const last = path.join(dir, names[names.length - 1]!);
  const b = fs.readFileSync(last);
  const offsets = recordOffsets(b);
  const lastAt = offsets[offsets.length - 1]!;
  b[b.length - 2]! ^= 0x55; // the last record fails its checksum; nothing follows it
  fs.writeFileSync(last, b);
  const next = segmentName(names.length + 1);
  fs.writeFileSync(path.join(dir, next), Buffer.alloc(0)); // a crash right after creating the next segment
  const s = openWal({ dir });
  const r = s.load();
  const d = r.report.dropped!;
  assert.is(d.reason, 'corrupt');
  assert.is(d.offset, lastAt);
  assert.is(d.records, 1);
  assert.equal(d.segmentsRemoved, [next]);
  assert.equal(plain(r.entries), plain(all.slice(0, r.entries.length)));
  assert.ok(r.entries.length >= all.length - 4);
  s.close();
  assert.is(openWal({ dir }).load().report.dropped, null);
});

test('a segment deleted from the front of the log is refused, not read as a shorter log', () => {
  const { dir } = buildSegmented();
  const names = segments(dir);
  fs.unlinkSync(path.join(dir, names[0]!));
  throwsCode(() => openWal({ dir }), 'MISSING_SEGMENT', new RegExp(`begins with ${names[1]}, which starts the log at index \\d+, but the compaction point is 0: entries 1 to \\d+ were in earlier segments that are missing`));
});

test('a truncation that reaches back into a segment compaction deleted still replays', () => {
  const dir = tmpDir();
  const s = openWal({ dir, segmentBytesMax: 4096 });
  s.load();
  s.append(makeEntries(1, 30, 1, 200));
  s.sync();
  s.append(makeEntries(30, 1, 1, 3000)); // rolls over: the next segment starts after index 30
  s.sync();
  s.append(makeEntries(25, 10, 2, 200)); // truncates back into the earlier segments
  s.sync();
  s.compact(33, 2); // deletes every segment the truncation reached into
  assert.ok(!segments(dir).includes(seg1));
  s.close();
  const again = openWal({ dir });
  const r = again.load();
  assert.is(r.report.dropped, null, r.report.summary);
  assert.equal(plain(r.entries), plain(makeEntries(34, 1, 2, 200)));
  assert.is(again.lastIndex, 34);
  again.close();
});

test('resetTo deletes the old segments once synced, not before; a crash before sync keeps them', () => {
  for (const point of [450, 200]) {
    const { dir, all } = buildSegmented();
    const before = segments(dir);
    const s = openWal({ dir, segmentBytesMax: 4096 });
    s.load();
    s.resetTo(point, 9);
    assert.equal(segments(dir), before, `resetTo(${point}): nothing deleted before the reset is durable`);
    s.crash();
    const old = openWal({ dir, segmentBytesMax: 4096 });
    assert.equal(plain(old.load().entries), plain(all), `resetTo(${point}) then a crash: the old log`);
    old.resetTo(point, 9);
    old.sync();
    assert.equal(segments(dir), [before[before.length - 1]!], `resetTo(${point}): every older segment goes at sync`);
    old.append(makeEntries(point + 1, 2, 9));
    old.close();
    const again = openWal({ dir });
    const r = again.load();
    assert.equal(plain(r.entries), plain(makeEntries(point + 1, 2, 9)));
    assert.is(r.compactedIndex, point);
    assert.is(r.compactedTerm, 9);
    assert.equal(r.hardState, { term: 7, vote: 2, commit: 396 });
    again.close();
  }
});

test('compaction and reset records replay across rolled-over segments', () => {
  const dir = tmpDir();
  const s = openWal({ dir, segmentBytesMax: 4096 });
  s.load();
  let next = 1;
  for (let round = 0; round < 6; round++) {
    s.append(makeEntries(next, 20, round + 1, 100));
    next += 20;
    s.compact(next - 5, round + 1);
    if (round % 2 === 1) {
      s.resetTo(next + 10, round + 1);
      next += 11;
    }
    s.sync();
  }
  s.append(makeEntries(next, 3, 7));
  s.close();
  const again = openWal({ dir });
  const r = again.load();
  assert.is(r.report.dropped, null);
  assert.equal(plain(r.entries), plain(makeEntries(next, 3, 7)));
  assert.is(r.compactedIndex, next - 1);
  assert.is(r.compactedTerm, 6);
  again.close();
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
  newer.writeUInt32LE(3, 8);
  newer.writeUInt32LE(crc32(newer.subarray(0, 28)), 28);
  const dir = dirWith(newer);
  throwsCode(() => openWal({ dir }), 'NEWER_FORMAT', /format v3 but this concur reads up to v2; upgrade concur/);
  assert.is(fs.statSync(path.join(dir, seg1)).size, bytes.length);
});

test('a v1 WAL (16-byte segment start, 8-byte compact) still loads; the compaction term is unknown until the next compact', () => {
  const dir = tmpDir();
  // Segment 3 of a v1 WAL whose first segments compaction deleted: the log starts at 6, compacted through 5.
  const v1 = Buffer.concat([
    header(3, 1),
    record(5, u64(6, 5)),
    record(1, hardStateBody(2, 1, 7)),
    record(2, entriesBody(6, [2, 2, 2])),
  ]);
  fs.writeFileSync(path.join(dir, segmentName(3)), v1);
  const s = openWal({ dir });
  const r = s.load();
  assert.is(r.report.dropped, null, r.report.summary);
  assert.equal(r.entries.map((e) => e.index), [6, 7, 8]);
  assert.is(r.compactedIndex, 5);
  assert.is(r.compactedTerm, -1);
  assert.is(s.compactedTerm, -1);
  assert.match(r.report.summary, /compacted through 5 \(term unknown\)/);
  assert.equal(r.hardState, { term: 2, vote: 1, commit: 7 });
  s.append(makeEntries(9, 2, 3));
  s.close();
  assert.equal(fs.readFileSync(path.join(dir, segmentName(3))), v1, 'a v1 segment is never appended to');
  assert.is(fs.readFileSync(path.join(dir, segmentName(4))).readUInt32LE(8), 2, 'new records go into a v2 segment');

  const again = openWal({ dir });
  const r2 = again.load();
  assert.equal(r2.entries.map((e) => e.index), [6, 7, 8, 9, 10]);
  assert.is(r2.compactedTerm, -1, 'the v2 segment start carries "unknown" on');
  again.compact(9, 3);
  again.close();
  const third = openWal({ dir });
  const r3 = third.load();
  assert.is(r3.compactedIndex, 9);
  assert.is(r3.compactedTerm, 3);
  assert.equal(r3.entries.map((e) => e.index), [10]);
  third.close();
});

test('a v1 compact record whose entry is still on disk gets its term from that entry', () => {
  const dir = tmpDir();
  const v1 = Buffer.concat([
    header(1, 1),
    record(5, u64(1, 0)),
    record(1, hardStateBody(1, 1, 4)),
    record(2, entriesBody(1, [1, 1, 2, 2])),
    record(4, u64(3)),
  ]);
  fs.writeFileSync(path.join(dir, seg1), v1);
  const r = openWal({ dir }).load();
  assert.is(r.compactedIndex, 3);
  assert.is(r.compactedTerm, 2);
  assert.equal(r.entries.map((e) => e.index), [4]);
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
