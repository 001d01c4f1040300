// The snapshot store on SimFs, the simulator's disk: writeNow (and the same file on node:fs as the
// asynchronous writer makes), what a crash keeps of a snapshot write and of a transfer, and
// createWriter refused there with what to use instead.
import * as nodeFsModule from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fsyncDir } from '../../runtime/storage/fsync-dir.ts';
import { SimFs } from '../../runtime/storage/sim-fs.ts';
import { SnapshotStore, snapshotFileName, type SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';
import { cleanupTmp, rng, throwsCode, tmpDir } from './helpers.ts';

test.after.each(() => cleanupTmp());

const dir = '/data/n1';

function disk(syncDelayMs = 4): { fs: SimFs; now: () => number } {
  let t = 0;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  return { fs: new SimFs({ clock, syncDelayMs: () => syncDelayMs }), now: () => t };
}

function image(bytes: number, seed: number): Uint8Array {
  const random = rng(seed);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function piecesOf(data: Uint8Array, pieceBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += pieceBytes) out.push(data.subarray(off, off + pieceBytes));
  return out;
}

function readAll(store: SnapshotStore, name: string): Uint8Array {
  const r = store.openData(name, 1000);
  const parts: Uint8Array[] = [];
  for (let p = r.next(); p !== null; p = r.next()) parts.push(p);
  return new Uint8Array(Buffer.concat(parts));
}

test('writeNow on SimFs: list, verify and openData see it; pieces as an iterable or as next()', () => {
  const { fs, now } = disk();
  const store = SnapshotStore.open(dir, fs);
  const data = image(5000, 1);
  const info = store.writeNow({ index: 40, term: 2, voters: [1, 2, 3] }, piecesOf(data, 777));
  assert.is(info.name, snapshotFileName(40, 2));
  assert.is(info.dataBytes, 5000);
  assert.is(info.fileBytes, 64 + 4 + 12 + 5000);
  assert.equal(fs.readdirSync(dir), [info.name], 'no temporary file left');
  assert.equal(store.list(), [info]);
  const v = store.verify(info.name);
  assert.ok(v.ok, v.ok ? '' : v.detail);
  assert.equal(readAll(store, info.name), data);

  const parts = piecesOf(image(300, 2), 100);
  let i = 0;
  const second = store.writeNow({ index: 50, term: 2, voters: [1] }, { next: () => parts[i++] ?? null });
  assert.equal(readAll(store, second.name), new Uint8Array(Buffer.concat(parts)));
  assert.equal(
    store.list().map((s) => s.index),
    [50, 40],
  );

  fs.crash(now());
  const after = SnapshotStore.open(dir, fs);
  assert.equal(after.list(), [second, info], 'both were durable: file fsync, rename, directory fsync');
  assert.equal(readAll(after, info.name), data);
});

test('writeNow refuses bad pieces and leaves no temporary file', () => {
  const { fs } = disk();
  const store = SnapshotStore.open(dir, fs);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1] }, ['abc' as unknown as Uint8Array]), 'BAD_OPTION', /must be a Uint8Array/);
  assert.equal(fs.readdirSync(dir), []);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1, 1] }, []), 'BAD_OPTION', /writeNow: voters lists a node twice/);
  throwsCode(() => store.writeNow({ index: 1, term: 1, voters: [1] }, null as unknown as []), 'BAD_OPTION', /iterable/);
});

test('a crash before the directory fsync of the rename loses the snapshot: nothing, or a .tmp open() removes', () => {
  {
    const { fs, now } = disk(4);
    const store = SnapshotStore.open(dir, fs);
    store.writeNow({ index: 9, term: 1, voters: [1] }, [image(100, 3)]);
    // writeNow ends with the directory fsync (4 ms): a crash inside it undoes the rename.
    fs.crash(now() - 1);
    assert.equal(fs.readdirSync(dir), [], 'the temporary name was never durable either');
    assert.equal(SnapshotStore.open(dir, fs).list(), []);
  }
  {
    const { fs, now } = disk(4);
    const store = SnapshotStore.open(dir, fs);
    const data = image(100, 4);
    // Something else syncs the directory while the image is written: the .tmp name is durable.
    function* pieces(): Generator<Uint8Array> {
      yield data.subarray(0, 50);
      fsyncDir(dir, fs);
      yield data.subarray(50);
    }
    const name = store.writeNow({ index: 9, term: 1, voters: [1] }, pieces()).name;
    fs.crash(now() - 1);
    assert.equal(fs.readdirSync(dir), [`${name}.tmp`]);
    const again = SnapshotStore.open(dir, fs);
    assert.equal(fs.readdirSync(dir), [], 'open() removed the interrupted write');
    assert.equal(again.list(), []);
  }
  {
    const { fs, now } = disk(4);
    const store = SnapshotStore.open(dir, fs);
    const info = store.writeNow({ index: 9, term: 1, voters: [1] }, [image(100, 5)]);
    fs.crash(now());
    assert.equal(SnapshotStore.open(dir, fs).list(), [info], 'once the directory fsync is done, it stays');
  }
});

test('receive/complete on SimFs: a transfer installs and survives a crash; an unsynced partial does not', () => {
  const source = disk();
  const leader = SnapshotStore.open('/leader', source.fs);
  const info = leader.writeNow({ index: 70, term: 4, voters: [1, 2] }, piecesOf(image(3000, 6), 500));
  const expect = { index: info.index, term: info.term, fileBytes: info.fileBytes, headerCrc: info.headerCrc };

  const { fs, now } = disk();
  const follower = SnapshotStore.open(dir, fs);
  let r = follower.receive(expect);
  r.write(0, leader.readRaw(info.name, 0, 1000));
  assert.is(r.have, 1000);
  fs.crash(now()); // the partial file was never synced, nor its name
  r = SnapshotStore.open(dir, fs).receive(expect);
  assert.is(r.have, 0, 'the transfer starts over');
  for (let off = 0; off < info.fileBytes; off += 700) r.write(off, leader.readRaw(info.name, off, 700));
  const installed = r.complete();
  assert.equal(installed, info);
  fs.crash(now());
  const after = SnapshotStore.open(dir, fs);
  assert.equal(after.list(), [info]);
  assert.equal(readAll(after, info.name), readAll(leader, info.name));
  assert.equal(after.partials(), []);
});

test('createWriter on SimFs is refused with what to use instead', () => {
  const store = SnapshotStore.open(dir, disk().fs);
  throwsCode(() => store.createWriter({ index: 1, term: 1, voters: [1] }), 'BAD_OPTION', /another FileSystem .*use writeNow/);
});

test('SnapshotStore.open refuses an fs that is not a FileSystem', () => {
  throwsCode(() => SnapshotStore.open(dir, { readdirSync() {} } as unknown as SimFs), 'BAD_OPTION', /lacks statSync/);
});

test('writeNow on node:fs makes the same file as the asynchronous writer', async () => {
  const a = tmpDir();
  const b = tmpDir();
  const data = image(20_000, 7);
  const meta = { index: 12, term: 3, voters: [4, 2] };
  const viaNow = SnapshotStore.open(a).writeNow(meta, piecesOf(data, 4096));
  const w = SnapshotStore.open(b).createWriter(meta);
  for (const p of piecesOf(data, 3000)) await w.write(p);
  const viaWriter: SnapshotInfo = await w.commit();
  assert.equal(viaNow, viaWriter);
  assert.equal(nodeFsModule.readdirSync(a), [viaNow.name]);
  assert.ok(nodeFsModule.readFileSync(path.join(a, viaNow.name)).equals(nodeFsModule.readFileSync(path.join(b, viaWriter.name))));
  const store = SnapshotStore.open(a);
  assert.ok(store.verify(viaNow.name).ok);
  assert.equal(readAll(store, viaNow.name), data);
});

test.run();
