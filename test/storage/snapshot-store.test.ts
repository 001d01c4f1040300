// Snapshot files: writing in pieces, reading back, damage found by verify(), pruning, raw reads,
// and receiving a file chunk by chunk across a simulated restart.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from '../../runtime/storage/crc32.ts';
import { StorageError } from '../../runtime/storage/rules.ts';
import { SnapshotStore, snapshotFileName, snapshotFormatVersion } from '../../runtime/storage/snapshot-store.ts';
import type { SnapshotInfo, SnapshotMeta, SnapshotReceiver } from '../../runtime/storage/snapshot-store.ts';
import { cleanupTmp, rng, throwsCode, tmpDir } from './helpers.ts';

test.after.each(() => cleanupTmp());

const headerBytes = 64;

function image(bytes: number, seed: number): Uint8Array {
  const random = rng(seed);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Math.floor(random() * 256);
  return out;
}

async function writeSnapshot(store: SnapshotStore, meta: SnapshotMeta, data: Uint8Array, pieceBytes = 1000): Promise<SnapshotInfo> {
  const w = store.createWriter(meta);
  for (let off = 0; off < data.length; off += pieceBytes) await w.write(data.subarray(off, off + pieceBytes));
  return w.commit();
}

function readAll(store: SnapshotStore, name: string, pieceBytes?: number): { bytes: Uint8Array; pieces: number } {
  const r = store.openData(name, pieceBytes);
  const parts: Uint8Array[] = [];
  for (let p = r.next(); p !== null; p = r.next()) parts.push(p);
  r.close();
  return { bytes: new Uint8Array(Buffer.concat(parts)), pieces: parts.length };
}

async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StorageError, `expected StorageError ${code}, got ${String(caught)}`);
  assert.is((caught as StorageError).code, code, (caught as Error).message);
  if (message) assert.match((caught as Error).message, message);
}

/** A copy of `file` with the byte at `offset` inverted, written under `name` in `dir`. */
function flipped(dir: string, file: string, offset: number, name: string): void {
  const b = fs.readFileSync(file);
  b[offset] = b[offset]! ^ 0xff;
  fs.writeFileSync(path.join(dir, name), b);
}

test('snapshotFileName pads index to 16 digits and term to 10, and refuses what does not fit', () => {
  assert.is(snapshotFileName(42, 7), 'snap-0000000000000042-0000000007.snap');
  assert.is(snapshotFormatVersion, 2, "the newest format; version 1 files are still written without a membership and still read");
  throwsCode(() => snapshotFileName(-1, 1), 'BAD_OPTION', /index/);
  throwsCode(() => snapshotFileName(1, 2 ** 32), 'BAD_OPTION', /term/);
  throwsCode(() => snapshotFileName(1.5, 1), 'BAD_OPTION', /index/);
});

test('round trip: pieces written, committed, listed, verified and read back at any piece size', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const data = image(10_007, 1);
  const info = await writeSnapshot(store, { index: 120, term: 3, voters: [1, 2, 5] }, data, 999);
  const name = snapshotFileName(120, 3);
  assert.is(info.name, name);
  assert.is(info.index, 120);
  assert.is(info.term, 3);
  assert.equal(info.voters, [1, 2, 5]);
  assert.is(info.dataBytes, data.length);
  assert.is(info.fileBytes, fs.statSync(path.join(dir, name)).size);
  assert.is(info.fileBytes, headerBytes + 4 + 3 * 4 + data.length);
  assert.equal(fs.readdirSync(dir), [name], 'no temporary file left behind');

  assert.equal(store.list(), [info]);
  const v = store.verify(name);
  assert.ok(v.ok, v.ok ? '' : v.detail);
  if (v.ok) assert.equal(v.info, info);

  for (const pieceBytes of [1, 7, 4096, 10_007, 1 << 20, undefined]) {
    const { bytes, pieces } = readAll(store, name, pieceBytes);
    assert.equal(bytes, data, `piece size ${pieceBytes}`);
    assert.is(pieces, Math.ceil(data.length / Math.min(pieceBytes ?? 1 << 20, data.length)), `piece count at ${pieceBytes}`);
  }
  // A second store on the same directory sees the same thing.
  assert.equal(SnapshotStore.open(dir).list(), [info]);
});

test('an empty image and an empty voter list round-trip too', async () => {
  const store = SnapshotStore.open(tmpDir());
  const info = await writeSnapshot(store, { index: 0, term: 0, voters: [] }, new Uint8Array(0));
  assert.is(info.fileBytes, headerBytes + 4);
  assert.ok(store.verify(info.name).ok);
  const r = store.openData(info.name);
  assert.is(r.next(), null);
  assert.is(r.next(), null, 'still null after the end');
  r.close();
});

test('list() is newest first: by index, then by term', async () => {
  const store = SnapshotStore.open(tmpDir());
  for (const [index, term] of [[5, 2], [10, 1], [7, 9], [10, 3], [1, 1]] as const) {
    await writeSnapshot(store, { index, term, voters: [1] }, image(50, index * 10 + term));
  }
  assert.equal(
    store.list().map((s) => [s.index, s.term]),
    [[10, 3], [10, 1], [7, 9], [5, 2], [1, 1]],
  );
});

test('open() deletes interrupted writes (snap-*.snap.tmp) and nothing else', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const info = await writeSnapshot(store, { index: 3, term: 1, voters: [1] }, image(100, 3));
  const keep = [
    info.name,
    'wal-0000000000000001.log',
    'snap-0000000000000009-0000000002-200-0badf00d.recv',
    'notes.txt',
    'mine.snap.tmp', // not one of our names: someone else's file
  ];
  for (const name of keep.slice(1)) fs.writeFileSync(path.join(dir, name), 'x');
  fs.writeFileSync(path.join(dir, `${snapshotFileName(8, 2)}.tmp`), 'half a snapshot');
  fs.writeFileSync(path.join(dir, `${snapshotFileName(9, 2)}.tmp`), '');
  SnapshotStore.open(dir);
  assert.equal(fs.readdirSync(dir).sort(), [...keep].sort());
  assert.equal(fs.readFileSync(path.join(dir, 'wal-0000000000000001.log'), 'utf8'), 'x');
});

test('open() creates a missing directory and refuses a path that is a file', () => {
  const dir = path.join(tmpDir(), 'a', 'b');
  SnapshotStore.open(dir);
  assert.ok(fs.statSync(dir).isDirectory());
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  throwsCode(() => SnapshotStore.open(file), 'NOT_A_DIRECTORY', /not a directory/);
  throwsCode(() => SnapshotStore.open(''), 'BAD_OPTION');
});

test('verify() finds a flipped byte in data, meta block or header, truncation, extra bytes and foreign files', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const data = image(3000, 7);
  const good = await writeSnapshot(store, { index: 50, term: 4, voters: [1, 2, 3] }, data);
  const src = path.join(dir, good.name);
  assert.ok(store.verify(good.name).ok, 'the original verifies');
  const metaAt = headerBytes + 4; // first voter id

  const cases: [string, (name: string) => void, RegExp][] = [
    ['data byte', (n) => flipped(dir, src, good.fileBytes - 10, n), /data checksum/],
    ['first data byte', (n) => flipped(dir, src, metaAt + 12, n), /data checksum/],
    ['meta block', (n) => flipped(dir, src, metaAt, n), /header checksum/],
    ['header index', (n) => flipped(dir, src, 16, n), /header checksum/],
    ['header dataCrc', (n) => flipped(dir, src, 40, n), /header checksum/],
    ['header crc itself', (n) => flipped(dir, src, 61, n), /header checksum/],
    ['magic', (n) => flipped(dir, src, 0, n), /not a concur snapshot/],
    ['truncated data', (n) => fs.writeFileSync(path.join(dir, n), fs.readFileSync(src).subarray(0, good.fileBytes - 1)), /truncated/],
    ['truncated header', (n) => fs.writeFileSync(path.join(dir, n), fs.readFileSync(src).subarray(0, 40)), /truncated/],
    ['empty', (n) => fs.writeFileSync(path.join(dir, n), ''), /truncated/],
    ['extra bytes', (n) => fs.writeFileSync(path.join(dir, n), Buffer.concat([fs.readFileSync(src), Buffer.from([0])])), /longer/],
    ['foreign', (n) => fs.writeFileSync(path.join(dir, n), 'just some text that happens to be long enough to hold a whole header, and then some more'), /not a concur snapshot/],
    ['renamed', (n) => fs.copyFileSync(src, path.join(dir, n)), /name says/],
  ];
  let index = 100;
  for (const [what, make, detail] of cases) {
    const name = snapshotFileName(index++, 4);
    make(name);
    const v = store.verify(name);
    assert.not.ok(v.ok, `${what}: must not verify`);
    if (!v.ok) assert.match(v.detail, detail, `${what}: ${v.detail}`);
  }
  // list() never throws for damage and lists every one of them, with what the names say.
  const listed = store.list();
  assert.is(listed.length, cases.length + 1);
  const foreign = listed.find((s) => s.index === 100 + cases.findIndex((c) => c[0] === 'foreign'))!;
  assert.is(foreign.term, 4);
  assert.is(foreign.dataBytes, 0);
  assert.ok(store.verify(good.name).ok, 'the original is untouched');
  // A missing file is an answer, not an exception; a name that is not ours is a bad argument.
  const missing = store.verify(snapshotFileName(999, 1));
  assert.not.ok(missing.ok);
  if (!missing.ok) assert.match(missing.detail, /missing/);
  throwsCode(() => store.verify('wal-0000000000000001.log'), 'BAD_OPTION', /not a snapshot file name/);
  throwsCode(() => store.verify('../snap-0000000000000001-0000000001.snap'), 'BAD_OPTION');
});

test('openData() refuses a damaged header at once and a damaged image when it reaches the end', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const damagedImage = await writeSnapshot(store, { index: 5, term: 1, voters: [1] }, image(5000, 5));
  flipped(dir, path.join(dir, damagedImage.name), damagedImage.fileBytes - 1, damagedImage.name);
  const r = store.openData(damagedImage.name, 1024);
  let pieces = 0;
  let caught: unknown;
  try {
    while (r.next() !== null) pieces++;
  } catch (e) {
    caught = e;
  }
  assert.is(pieces, 5, 'every piece is handed out; the check comes where next() would return null');
  assert.ok(caught instanceof StorageError && caught.code === 'BAD_FORMAT', String(caught));
  assert.match((caught as Error).message, /data checksum/);
  throwsCode(() => r.next(), 'CLOSED');

  const damagedHeader = await writeSnapshot(store, { index: 6, term: 1, voters: [1] }, image(5000, 6));
  flipped(dir, path.join(dir, damagedHeader.name), 20, damagedHeader.name);
  throwsCode(() => store.openData(damagedHeader.name), 'BAD_FORMAT', /header checksum/);
  const renamed = snapshotFileName(7, 1);
  fs.copyFileSync(path.join(dir, damagedImage.name), path.join(dir, renamed));
  throwsCode(() => store.openData(renamed), 'BAD_FORMAT', /index 5 term 1/);
  throwsCode(() => store.openData(damagedImage.name, 0), 'BAD_OPTION', /pieceBytes/);
});

test('prune(keep) deletes all but the newest `keep`, by name, and leaves other files alone', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  for (const index of [10, 20, 30, 40, 50]) await writeSnapshot(store, { index, term: 1, voters: [1] }, image(64, index));
  fs.writeFileSync(path.join(dir, 'wal-0000000000000001.log'), 'wal');
  // The newest is damaged: prune goes by name, so it counts as one of those kept.
  fs.writeFileSync(path.join(dir, snapshotFileName(60, 1)), 'not a snapshot');
  assert.equal(store.prune(3), [snapshotFileName(30, 1), snapshotFileName(20, 1), snapshotFileName(10, 1)]);
  assert.equal(store.list().map((s) => s.index), [60, 50, 40]);
  assert.equal(store.prune(3), [], 'nothing more to remove');
  assert.equal(store.prune(1), [snapshotFileName(50, 1), snapshotFileName(40, 1)]);
  assert.equal(fs.readdirSync(dir).sort(), [snapshotFileName(60, 1), 'wal-0000000000000001.log']);
  throwsCode(() => store.prune(0), 'BAD_OPTION', /keep/);

  store.remove(snapshotFileName(60, 1));
  store.remove(snapshotFileName(60, 1)); // already gone is fine
  assert.equal(store.list(), []);
  throwsCode(() => store.remove('wal-0000000000000001.log'), 'BAD_OPTION');
  assert.ok(fs.existsSync(path.join(dir, 'wal-0000000000000001.log')));
});

test('readRaw() returns exact ranges of the file and clamps at its end', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const info = await writeSnapshot(store, { index: 9, term: 2, voters: [4, 5] }, image(2500, 9));
  const whole = new Uint8Array(fs.readFileSync(path.join(dir, info.name)));
  const size = whole.length;
  for (const [offset, length] of [
    [0, 10],
    [0, size],
    [64, 100],
    [size - 5, 100],
    [size - 1, 1],
    [size, 10],
    [size + 100, 10],
    [7, 0],
  ] as const) {
    const got = store.readRaw(info.name, offset, length);
    assert.equal(got, whole.slice(offset, Math.min(size, offset + length)), `[${offset}, +${length})`);
  }
  // Chunks concatenated give the file back.
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < size; off += 333) chunks.push(store.readRaw(info.name, off, 333));
  assert.equal(new Uint8Array(Buffer.concat(chunks)), whole);
  throwsCode(() => store.readRaw(info.name, -1, 10), 'BAD_OPTION', /offset/);
  throwsCode(() => store.readRaw(info.name, 0, 1.5), 'BAD_OPTION', /length/);
  throwsCode(() => store.readRaw(snapshotFileName(1, 1), 0, 10), 'FAILED', /open/);
});

/** A source snapshot in its own store, to send from. */
async function source(index = 77, term = 5, bytes = 20_000): Promise<{ from: SnapshotStore; info: SnapshotInfo; data: Uint8Array }> {
  const from = SnapshotStore.open(tmpDir());
  const data = image(bytes, index);
  const info = await writeSnapshot(from, { index, term, voters: [1, 2, 3] }, data);
  return { from, info, data };
}

/** Sends the source file's bytes [have, until) in chunks; each chunk must advance `have`, so a
 * broken sender or receiver fails here instead of spinning forever. */
function send(r: SnapshotReceiver, from: SnapshotStore, name: string, until: number, chunkBytes: number): number {
  while (r.have < until) {
    const before = r.have;
    r.write(before, from.readRaw(name, before, Math.min(chunkBytes, until - before)));
    assert.ok(r.have > before, `a chunk at ${before} must advance have`);
  }
  return r.have;
}

const expectOf = (i: SnapshotInfo) => ({ index: i.index, term: i.term, fileBytes: i.fileBytes, headerCrc: i.headerCrc });

test('receiving: in-order chunks land, others are ignored, a restart resumes at have, complete() installs', async () => {
  const { from, info, data } = await source();
  const dir = tmpDir();
  const to = SnapshotStore.open(dir);
  fs.writeFileSync(path.join(dir, 'wal-0000000000000001.log'), 'wal');
  const chunkBytes = 3000;
  let r = to.receive(expectOf(info));
  assert.is(r.have, 0);
  assert.is(r.write(chunkBytes, from.readRaw(info.name, chunkBytes, chunkBytes)), 0, 'a chunk ahead of have is ignored');
  const off = send(r, from, info.name, 4 * chunkBytes, chunkBytes);
  assert.is(off, 4 * chunkBytes);
  assert.is(r.write(0, new Uint8Array(chunkBytes).fill(0xee)), off, 'a chunk behind have (a duplicate) is ignored');
  assert.is(r.write(off - 1, new Uint8Array(2).fill(0xee)), off, 'an overlapping chunk is ignored');
  assert.is(r.have, off);

  // Restart: the object is dropped; a new store on the same directory resumes from the partial file.
  r = SnapshotStore.open(dir).receive(expectOf(info));
  assert.is(r.have, off, 'resumes at the bytes already on disk');
  const p = to.partials();
  assert.is(p.length, 1);
  assert.equal({ ...p[0]!, name: '' }, { name: '', ...expectOf(info), have: off });
  assert.match(p[0]!.name, /^snap-0000000000000077-0000000005-\d+-[0-9a-f]{8}\.recv$/);
  throwsCode(() => r.complete(), 'BAD_OPTION', /needs all/);
  send(r, from, info.name, info.fileBytes, chunkBytes);
  throwsCode(() => r.write(r.have, new Uint8Array(1)), 'BAD_OPTION', /past the expected file size/);

  const got = r.complete();
  assert.equal(got, { ...info });
  assert.equal(to.list(), [got]);
  assert.ok(to.verify(info.name).ok);
  assert.equal(readAll(to, info.name, 4096).bytes, data);
  assert.equal(to.partials(), []);
  assert.equal(fs.readdirSync(dir).sort(), [info.name, 'wal-0000000000000001.log']);
  throwsCode(() => r.write(0, new Uint8Array(1)), 'CLOSED');

  // Asking again for what is already installed: nothing to receive, complete() answers at once.
  const again = to.receive(expectOf(info));
  assert.is(again.have, info.fileBytes);
  assert.equal(again.complete(), got);
  again.discard();
  assert.ok(to.verify(info.name).ok, 'discard of an installed transfer keeps the snapshot');
});

test('receiving: a different expect discards the old partial and retires its receiver', async () => {
  const a = await source(10, 1, 5000);
  const b = await source(20, 2, 7000);
  const dir = tmpDir();
  const to = SnapshotStore.open(dir);
  const ra = to.receive(expectOf(a.info));
  ra.write(0, a.from.readRaw(a.info.name, 0, 1000));
  assert.is(to.partials().length, 1);

  const rb = to.receive(expectOf(b.info));
  assert.is(rb.have, 0);
  assert.equal(to.partials().map((p) => [p.index, p.have]), [[20, 0]], 'only the new transfer remains');
  throwsCode(() => ra.write(1000, new Uint8Array(10)), 'CLOSED', /newer receive/);
  ra.discard(); // must not delete the newer partial
  assert.is(to.partials().length, 1);

  // Same index and term but other content (a new leader's snapshot): also a different transfer.
  rb.write(0, b.from.readRaw(b.info.name, 0, 500));
  const rb2 = to.receive({ ...expectOf(b.info), headerCrc: (b.info.headerCrc ^ 1) >>> 0 });
  assert.is(rb2.have, 0);
  assert.is(to.partials().length, 1);
  rb2.discard();
  assert.equal(to.partials(), []);
  assert.equal(fs.readdirSync(dir), []);
});

test('receiving: bytes that do not verify make complete() throw BAD_FORMAT and leave no file', async () => {
  const { from, info } = await source(30, 3, 9000);
  const dir = tmpDir();
  const to = SnapshotStore.open(dir);

  // One flipped byte in the image.
  let r = to.receive(expectOf(info));
  const bytes = from.readRaw(info.name, 0, info.fileBytes);
  bytes[info.fileBytes - 100] ^= 0x01;
  r.write(0, bytes);
  throwsCode(() => r.complete(), 'BAD_FORMAT', /data checksum.*receive it again/);
  assert.equal(fs.readdirSync(dir), []);
  assert.equal(to.list(), []);

  // A whole, valid file that is not the one expected (another headerCrc).
  r = to.receive({ ...expectOf(info), headerCrc: (info.headerCrc + 1) >>> 0 });
  r.write(0, from.readRaw(info.name, 0, info.fileBytes));
  throwsCode(() => r.complete(), 'BAD_FORMAT', /headerCrc/);
  assert.equal(fs.readdirSync(dir), []);

  // A damaged partial on disk from before a restart is caught the same way.
  r = to.receive(expectOf(info));
  r.write(0, from.readRaw(info.name, 0, 1000));
  const partial = path.join(dir, to.partials()[0]!.name);
  const onDisk = fs.readFileSync(partial);
  onDisk[70] ^= 0xff;
  fs.writeFileSync(partial, onDisk);
  r = to.receive(expectOf(info));
  assert.is(r.have, 1000);
  send(r, from, info.name, info.fileBytes, 4096);
  throwsCode(() => r.complete(), 'BAD_FORMAT', /header checksum/);
  assert.equal(fs.readdirSync(dir), []);
});

test('receive() refuses an impossible expect', () => {
  const to = SnapshotStore.open(tmpDir());
  throwsCode(() => to.receive({ index: 1, term: 1, fileBytes: 10, headerCrc: 0 }), 'BAD_OPTION', /fileBytes/);
  throwsCode(() => to.receive({ index: 1, term: 1, fileBytes: 100, headerCrc: -1 }), 'BAD_OPTION', /headerCrc/);
  throwsCode(() => to.receive({ index: -1, term: 1, fileBytes: 100, headerCrc: 0 }), 'BAD_OPTION', /index/);
});

test('an aborted writer leaves nothing, abort twice is fine, and the writer is then closed', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const w = store.createWriter({ index: 4, term: 1, voters: [1] });
  await w.write(image(5000, 4));
  const pending = w.write(image(5000, 5)); // abort waits for writes still in flight
  await w.abort();
  await pending;
  await w.abort();
  assert.equal(fs.readdirSync(dir), []);
  assert.equal(store.list(), []);
  await rejectsCode(w.write(new Uint8Array(1)), 'CLOSED', /abort/);
  await rejectsCode(w.commit(), 'CLOSED', /abort/);
  // The name is free again.
  const info = await writeSnapshot(store, { index: 4, term: 1, voters: [1] }, image(10, 1));
  assert.ok(store.verify(info.name).ok);
  await w.abort();
  assert.ok(store.verify(info.name).ok, 'a late abort of an old writer does not touch the new file');
});

test('commit() with a write still pending rejects clearly; after the write it commits', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const data = image(200_000, 8);
  const w = store.createWriter({ index: 8, term: 2, voters: [1, 2] });
  const pending = w.write(data);
  await rejectsCode(w.commit(), 'BAD_OPTION', /still pending/);
  await pending;
  const info = await w.commit();
  assert.equal(readAll(store, info.name).bytes, data);
  await rejectsCode(w.commit(), 'CLOSED', /commit/);
  await w.abort();
  assert.ok(store.verify(info.name).ok, 'abort after commit keeps the snapshot');
});

test('writers: one open writer per name, a later commit replaces an earlier file, bad meta refused', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const w = store.createWriter({ index: 3, term: 3, voters: [1] });
  throwsCode(() => store.createWriter({ index: 3, term: 3, voters: [1] }), 'BAD_OPTION', /still open/);
  // Concurrent writes land in call order.
  const data = image(30_000, 3);
  await Promise.all([w.write(data.subarray(0, 10_000)), w.write(data.subarray(10_000, 20_000)), w.write(data.subarray(20_000))]);
  const first = await w.commit();
  assert.equal(readAll(store, first.name).bytes, data);
  const second = await writeSnapshot(store, { index: 3, term: 3, voters: [1, 2] }, image(100, 33));
  assert.not.equal(second.headerCrc, first.headerCrc);
  assert.equal(store.list(), [second]);
  assert.equal(readAll(store, second.name).bytes, image(100, 33));

  throwsCode(() => store.createWriter({ index: 1, term: 1, voters: [1, 1] }), 'BAD_OPTION', /twice/);
  throwsCode(() => store.createWriter({ index: 1, term: 2 ** 32, voters: [1] }), 'BAD_OPTION', /term/);
  throwsCode(() => store.createWriter({ index: 1, term: 1, voters: [-1] }), 'BAD_OPTION', /voter/);
  const w2 = store.createWriter({ index: 1, term: 1, voters: [] });
  await rejectsCode(w2.write('text' as unknown as Uint8Array), 'BAD_OPTION', /Uint8Array/);
  await w2.abort();
});

test('a writer whose directory vanished fails with FAILED naming the file, and abort() still works', async () => {
  const dir = path.join(tmpDir(), 'gone');
  const store = SnapshotStore.open(dir);
  fs.rmSync(dir, { recursive: true });
  const w = store.createWriter({ index: 2, term: 1, voters: [1] });
  await rejectsCode(w.write(new Uint8Array(10)), 'FAILED', /snap-0000000000000002-0000000001\.snap\.tmp/);
  await rejectsCode(w.commit(), 'FAILED', /abort\(\) it/);
  await w.abort();
  await w.abort();
});

test('a 5 MiB image streams in 64 KiB pieces and comes back intact', async () => {
  const dir = tmpDir();
  const store = SnapshotStore.open(dir);
  const pieceBytes = 64 * 1024;
  const pieces = 80; // 5 MiB
  const piece = (i: number): Uint8Array => image(pieceBytes, 1000 + i);
  const w = store.createWriter({ index: 1_000_000, term: 12, voters: [1, 2, 3, 4, 5] });
  let crc = 0;
  for (let i = 0; i < pieces; i++) {
    const p = piece(i);
    crc = crc32(p, crc);
    await w.write(p);
  }
  const info = await w.commit();
  assert.is(info.dataBytes, 5 * 1024 * 1024);
  assert.ok(store.verify(info.name).ok);
  const r = store.openData(info.name, pieceBytes);
  let i = 0;
  let readCrc = 0;
  for (let p = r.next(); p !== null; p = r.next(), i++) {
    assert.equal(p, piece(i), `piece ${i}`);
    readCrc = crc32(p, readCrc);
  }
  assert.is(i, pieces);
  assert.is(readCrc, crc);
});

test.run();
