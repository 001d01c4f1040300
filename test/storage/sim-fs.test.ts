// SimFs, the simulator's disk: Node-like behaviour and errors, what a crash keeps (synced data,
// durable directory entries, torn prefixes), latent corruption, virtual time, and a long append +
// fsync history rebuilt at arbitrary crash times against a reference model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import { SimFs } from '../../runtime/storage/sim-fs.ts';

function setup(syncDelayMs = 5): { fs: SimFs; now: () => number; tick: (ms: number) => void } {
  let t = 0;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  return { fs: new SimFs({ clock, syncDelayMs: () => syncDelayMs }), now: () => t, tick: (ms) => void (t += ms) };
}

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const text = (fs: SimFs, p: string): string => fs.readFileSync(p).toString('utf8');

function write(fs: SimFs, fd: number, data: string | Uint8Array, position: number): void {
  const b = typeof data === 'string' ? bytes(data) : data;
  assert.is(fs.writeSync(fd, b, 0, b.length, position), b.length);
}

function syncPath(fs: SimFs, p: string): void {
  const fd = fs.openSync(p, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return String((e as { code?: string }).code);
  }
  return 'no error';
}

/** A durable directory /d holding a durable file /d/f with `content`; returns its open fd. */
function durableFile(fs: SimFs, content: string): number {
  fs.mkdirSync('/d');
  const fd = fs.openSync('/d/f', 'wx+');
  write(fs, fd, content, 0);
  fs.fsyncSync(fd);
  syncPath(fs, '/d');
  return fd;
}

test('files: write, read, stat, readdir (sorted), rename, unlink; reads see unsynced data', () => {
  const { fs } = setup();
  fs.mkdirSync('/a/b', { recursive: true });
  fs.mkdirSync('/a/b', { recursive: true }); // again: fine
  const fd = fs.openSync('/a/b/x', 'wx+');
  write(fs, fd, 'hello', 0);
  write(fs, fd, 'HE', 0);
  write(fs, fd, '!', 8); // past the end: the gap reads as zeros
  assert.equal([...fs.readFileSync('/a/b/x')], [...bytes('HEllo'), 0, 0, 0, ...bytes('!')]);
  assert.is(fs.fstatSync(fd).size, 9);
  const buf = Buffer.alloc(4);
  assert.is(fs.readSync(fd, buf, 1, 3, 1), 3);
  assert.equal([...buf], [0, ...bytes('Ell')]);
  assert.is(fs.readSync(fd, buf, 0, 4, 9), 0, 'at the end: nothing');
  fs.ftruncateSync(fd, 2);
  fs.ftruncateSync(fd, 4);
  assert.equal([...fs.readFileSync('a/b/x')], [...bytes('HE'), 0, 0], 'truncate zero-fills when growing again; relative paths start at /');
  fs.closeSync(fd);
  const copy = fs.readFileSync('/a/b/x');
  copy[0] = 0;
  assert.is(text(fs, '/a/b/x')[0], 'H', 'readFileSync hands out a copy');

  const w = fs.openSync('/a/b/c', 'w');
  write(fs, w, 'zz', 0);
  fs.closeSync(w);
  const w2 = fs.openSync('/a/b/c', 'w');
  fs.closeSync(w2);
  assert.is(fs.statSync('/a/b/c').size, 0, "'w' truncates");
  assert.equal(fs.readdirSync('/a/b'), ['c', 'x']);
  assert.equal(fs.readdirSync('/'), ['a']);
  assert.ok(fs.statSync('/a').isDirectory() && !fs.statSync('/a').isFile());
  assert.ok(fs.statSync('/a/b/x').isFile());
  fs.renameSync('/a/b/x', '/a/y');
  fs.renameSync('/a/y', '/a/b/c'); // replaces c
  assert.equal(fs.readdirSync('/a/b'), ['c']);
  assert.equal([...fs.readFileSync('/a/b/c')], [...bytes('HE'), 0, 0]);
  fs.unlinkSync('/a/b/c');
  assert.equal(fs.readdirSync('/a/b'), []);
});

test('errors carry Node codes', () => {
  const { fs } = setup();
  fs.mkdirSync('/d');
  const fd = fs.openSync('/d/f', 'wx+');
  assert.is(code(() => fs.statSync('/nope')), 'ENOENT');
  assert.is(code(() => fs.openSync('/d/nope', 'r')), 'ENOENT');
  assert.is(code(() => fs.openSync('/d/nope', 'r+')), 'ENOENT');
  assert.is(code(() => fs.openSync('/nodir/f', 'w')), 'ENOENT');
  assert.is(code(() => fs.mkdirSync('/x/y')), 'ENOENT');
  assert.is(code(() => fs.unlinkSync('/d/nope')), 'ENOENT');
  assert.is(code(() => fs.renameSync('/d/nope', '/d/g')), 'ENOENT');
  assert.is(code(() => fs.readdirSync('/nope')), 'ENOENT');
  assert.is(code(() => fs.openSync('/d/f', 'wx+')), 'EEXIST');
  assert.is(code(() => fs.mkdirSync('/d')), 'EEXIST');
  assert.is(code(() => fs.mkdirSync('/d/f', { recursive: true })), 'EEXIST');
  assert.is(code(() => fs.readdirSync('/d/f')), 'ENOTDIR');
  assert.is(code(() => fs.openSync('/d/f/g', 'r')), 'ENOTDIR');
  assert.is(code(() => fs.mkdirSync('/d/f/g', { recursive: true })), 'ENOTDIR');
  assert.is(code(() => fs.openSync('/d', 'r+')), 'EISDIR');
  assert.is(code(() => fs.openSync('/d', 'w')), 'EISDIR');
  assert.is(code(() => fs.unlinkSync('/d')), 'EISDIR');
  assert.is(code(() => fs.readFileSync('/d')), 'EISDIR');
  assert.is(code(() => fs.renameSync('/d/f', '/d')), 'EISDIR');
  const dfd = fs.openSync('/d', 'r');
  assert.is(code(() => fs.readSync(dfd, Buffer.alloc(1), 0, 1, 0)), 'EISDIR');
  const ro = fs.openSync('/d/f', 'r');
  assert.is(code(() => fs.writeSync(ro, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  assert.is(code(() => fs.ftruncateSync(ro, 0)), 'EBADF');
  const wo = fs.openSync('/d/f', 'w');
  assert.is(code(() => fs.readSync(wo, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  fs.closeSync(fd);
  assert.is(code(() => fs.closeSync(fd)), 'EBADF');
  assert.is(code(() => fs.fsyncSync(fd)), 'EBADF');
  assert.is(code(() => fs.writeSync(fd, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  assert.is(code(() => fs.readSync(ro, Buffer.alloc(1), 0, 2, 0)), 'ERR_OUT_OF_RANGE');
  let message = '';
  try {
    fs.openSync('/d/nope', 'r');
  } catch (e) {
    message = (e as Error).message;
  }
  assert.is(message, "ENOENT: no such file or directory, open '/d/nope'");
});

test('an unlinked file stays usable through an open descriptor', () => {
  const { fs } = setup();
  fs.mkdirSync('/d');
  const fd = fs.openSync('/d/f', 'wx+');
  fs.unlinkSync('/d/f');
  write(fs, fd, 'abc', 0);
  const b = Buffer.alloc(3);
  fs.readSync(fd, b, 0, 3, 0);
  assert.is(b.toString(), 'abc');
  assert.equal(fs.readdirSync('/d'), []);
});

test('fsync advances the clock by syncDelayMs, and its durability point is after the delay', () => {
  const { fs, now } = setup(7);
  const fd = durableFile(fs, 'a');
  const t0 = now();
  write(fs, fd, 'b', 1);
  fs.fdatasyncSync(fd);
  assert.is(now(), t0 + 7);
  fs.crash(t0 + 6); // during the fsync: it never completed
  assert.is(text(fs, '/d/f'), 'a');
});

test('a crash loses what was written but not synced and keeps what was synced', () => {
  const { fs, now, tick } = setup();
  const fd = durableFile(fs, 'synced');
  tick(1);
  write(fs, fd, '+lost', 6);
  assert.is(fs.pendingBytes(), 5);
  fs.crash(now());
  assert.is(text(fs, '/d/f'), 'synced');
  assert.is(fs.pendingBytes(), 0);

  const other = setup();
  const fd2 = durableFile(other.fs, '');
  other.tick(1);
  write(other.fs, fd2, 'never synced', 0);
  other.fs.crash(other.now());
  assert.is(text(other.fs, '/d/f'), '', 'a durable name with no durable content is an empty file');
});

test('a crash time between two fsyncs keeps the first; operations after the crash time are undone', () => {
  const run = (crashAt: (marks: number[]) => number): SimFs => {
    const { fs, now, tick } = setup();
    const marks: number[] = [];
    const fd = durableFile(fs, 'one');
    marks.push(now()); // 0: first fsync done
    tick(10);
    write(fs, fd, '+two', 3);
    fs.fsyncSync(fd);
    marks.push(now()); // 1: second fsync done
    tick(10);
    fs.ftruncateSync(fd, 0);
    write(fs, fd, 'three', 0);
    fs.fsyncSync(fd);
    const g = fs.openSync('/d/g', 'wx+');
    fs.fsyncSync(g);
    syncPath(fs, '/d');
    fs.mkdirSync('/late');
    marks.push(now()); // 2: everything done
    tick(10);
    fs.crash(crashAt(marks));
    return fs;
  };
  assert.is(text(run((m) => m[0]!), '/d/f'), 'one');
  assert.is(text(run((m) => m[1]! - 1), '/d/f'), 'one');
  assert.is(text(run((m) => m[1]!), '/d/f'), 'one+two');
  const early = run((m) => m[1]! + 1);
  assert.is(text(early, '/d/f'), 'one+two', 'the truncate and rewrite after the crash time never happened');
  assert.equal(early.readdirSync('/d'), ['f'], 'a file created after the crash time is gone');
  assert.equal(early.readdirSync('/'), ['d'], 'a directory made after the crash time is gone');
  const late = run((m) => m[2]!);
  assert.is(text(late, '/d/f'), 'three');
  assert.equal(late.readdirSync('/'), ['d', 'late'], 'mkdir is durable at once');
  assert.equal(late.readdirSync('/d'), ['f', 'g']);
});

test('an operation at the same instant as a finished fsync is not covered by it', () => {
  const { fs, now } = setup(0); // free fsyncs: nothing moves the clock
  const fd = durableFile(fs, 'kept');
  write(fs, fd, '+lost', 4);
  const g = fs.openSync('/d/g', 'wx+');
  fs.closeSync(g);
  fs.crash(now());
  assert.is(text(fs, '/d/f'), 'kept');
  assert.equal(fs.readdirSync('/d'), ['f']);
});

test('directory entries: a create, a rename and an unlink not made durable by a directory fsync are undone', () => {
  {
    const { fs, now } = setup();
    fs.mkdirSync('/d');
    const fd = fs.openSync('/d/new', 'wx+');
    write(fs, fd, 'data', 0);
    fs.fsyncSync(fd); // the content is durable, the name is not
    fs.crash(now());
    assert.equal(fs.readdirSync('/d'), []);
  }
  {
    const { fs, now } = setup();
    durableFile(fs, 'x');
    fs.renameSync('/d/f', '/d/g');
    fs.crash(now());
    assert.equal(fs.readdirSync('/d'), ['f']);
    assert.is(text(fs, '/d/f'), 'x');
  }
  {
    const { fs, now } = setup();
    durableFile(fs, 'x');
    fs.renameSync('/d/f', '/d/g');
    syncPath(fs, '/d');
    fs.crash(now());
    assert.equal(fs.readdirSync('/d'), ['g'], 'after the directory fsync the rename stays');
  }
  {
    const { fs, now } = setup();
    durableFile(fs, 'x');
    fs.unlinkSync('/d/f');
    fs.crash(now());
    assert.equal(fs.readdirSync('/d'), ['f']);
    assert.is(text(fs, '/d/f'), 'x');
  }
  {
    const { fs, now } = setup();
    durableFile(fs, 'x');
    fs.unlinkSync('/d/f');
    syncPath(fs, '/d');
    fs.crash(now());
    assert.equal(fs.readdirSync('/d'), []);
  }
});

test('torn: with chance 1 a prefix of the unsynced tail survives, never more than was written', () => {
  const lengths = new Set<number>();
  for (let seed = 1; seed <= 40; seed++) {
    const { fs, now, tick } = setup();
    const fd = durableFile(fs, 'base-');
    tick(1);
    write(fs, fd, 'abcdefghij', 5);
    const at = now();
    tick(1);
    write(fs, fd, 'KLMNOP', 15); // after the crash time: never happened, never torn in
    const { tornFiles } = fs.crash(at, { rng: createRng(seed), chance: 1 });
    const got = text(fs, '/d/f');
    assert.ok('base-abcdefghij'.startsWith(got) && got.startsWith('base-'), `seed ${seed}: ${got}`);
    assert.equal(tornFiles, got.length > 5 ? ['/d/f'] : [], `seed ${seed}`);
    lengths.add(got.length);
  }
  assert.ok(lengths.size >= 5, `prefix lengths vary with the seed: ${[...lengths].join(', ')}`);
  {
    const { fs, now } = setup();
    const fd = durableFile(fs, 'base-');
    write(fs, fd, 'abc', 5);
    fs.crash(now(), { rng: createRng(1), chance: 0 });
    assert.is(text(fs, '/d/f'), 'base-', 'chance 0: nothing unsynced survives');
  }
});

test('corrupt() flips exactly one durable byte, seen after a crash, and survives later appends', () => {
  const { fs, now } = setup();
  const original = 'the quick brown fox';
  const fd = durableFile(fs, original);
  fs.corrupt('/d/f', 4);
  assert.is(text(fs, '/d/f'), original, 'the page cache still holds the good byte');
  write(fs, fd, '!', original.length);
  fs.fsyncSync(fd);
  fs.crash(now());
  const after = fs.readFileSync('/d/f');
  const want = bytes(original + '!');
  const diff = [...after].map((b, i) => (b !== want[i] ? i : -1)).filter((i) => i >= 0);
  assert.equal(diff, [4]);
  assert.is(after[4], want[4]! ^ 0xff);
  assert.throws(() => fs.corrupt('/d/f', after.length), /outside the 20 durable bytes/);
  assert.is(code(() => fs.corrupt('/d/none', 0)), 'ENOENT');

  const again = setup();
  const fd2 = durableFile(again.fs, 'abc');
  again.fs.corrupt('/d/f', 1);
  write(again.fs, fd2, 'B', 1); // rewritten: the damaged sector is replaced
  again.fs.fsyncSync(fd2);
  again.fs.crash(again.now());
  assert.is(text(again.fs, '/d/f'), 'aBc');
});

test('descriptors are invalid after a crash, and numbers are not reused', () => {
  const { fs, now } = setup();
  const fd = durableFile(fs, 'x');
  fs.crash(now());
  assert.is(code(() => fs.readSync(fd, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  assert.is(code(() => fs.closeSync(fd)), 'EBADF');
  const fd2 = fs.openSync('/d/f', 'r');
  assert.ok(fd2 > fd);
  assert.throws(() => fs.crash(now() + 1), /between/, 'no crash in the future');
});

test('crash() and forgetBefore() refuse times before the last crash or forget', () => {
  const { fs, now, tick } = setup();
  durableFile(fs, 'x');
  tick(10);
  const t = now();
  fs.forgetBefore(t);
  assert.throws(() => fs.crash(t - 1), /between/);
  tick(10);
  fs.crash(now());
  assert.throws(() => fs.forgetBefore(t), /between/);
});

/** A reference disk: the whole content after every operation, and which of those were durable. */
interface Op {
  kind: 'append' | 'overwrite' | 'truncate' | 'fsync' | 'tick';
  at: number;
  data?: Uint8Array;
  length?: number;
}

function randomOps(seed: number, appends: number): Op[] {
  const r = createRng(seed);
  const ops: Op[] = [];
  let len = 0;
  for (let i = 0; i < appends; i++) {
    const n = r.int(1, 200);
    const data = new Uint8Array(n).map(() => r.int(0, 256));
    ops.push({ kind: 'append', at: len, data });
    len += n;
    if (r.chance(0.05) && len > 10) {
      const at = r.int(0, len - 1);
      const m = Math.min(len - at, r.int(1, 50));
      ops.push({ kind: 'overwrite', at, data: new Uint8Array(m).map(() => r.int(0, 256)) });
    }
    if (r.chance(0.02)) {
      len = r.int(0, len + 1);
      ops.push({ kind: 'truncate', at: 0, length: len });
    }
    if (r.chance(0.3)) ops.push({ kind: 'tick', at: 0, length: r.int(0, 3) });
    ops.push({ kind: 'fsync', at: 0 });
  }
  return ops;
}

/** Runs `ops` on a fresh SimFs; with `record`, also the reference: per operation, the time and
 * the whole content then (and whether it was an fsync), checking that reads see it. */
function play(ops: Op[], syncDelayMs: number, record: boolean): { fs: SimFs; now: () => number; start: number; states: { at: number; content: Buffer; durable: boolean }[] } {
  const { fs, now, tick } = setup(syncDelayMs);
  fs.mkdirSync('/d');
  const fd = fs.openSync('/d/f', 'wx+');
  syncPath(fs, '/d');
  const start = now(); // the file's name is durable from here on
  let model: Buffer = Buffer.alloc(0);
  const states: { at: number; content: Buffer; durable: boolean }[] = [{ at: now(), content: model, durable: true }];
  for (const op of ops) {
    if (op.kind === 'tick') {
      tick(op.length!);
      continue;
    }
    if (op.kind === 'append' || op.kind === 'overwrite') {
      fs.writeSync(fd, op.data!, 0, op.data!.length, op.at);
      if (record) {
        const next = Buffer.alloc(Math.max(model.length, op.at + op.data!.length));
        model.copy(next);
        next.set(op.data!, op.at);
        model = next;
      }
    } else if (op.kind === 'truncate') {
      fs.ftruncateSync(fd, op.length!);
      if (record) {
        const next = Buffer.alloc(op.length!);
        model.copy(next, 0, 0, Math.min(model.length, op.length!));
        model = next;
      }
    } else {
      fs.fsyncSync(fd);
    }
    if (!record) continue;
    states.push({ at: now(), content: model, durable: op.kind === 'fsync' });
    if (op.kind !== 'fsync') assert.ok(fs.readFileSync('/d/f').equals(model), 'reads see the current content');
  }
  return { fs, now, start, states };
}

test('property: a long append + fsync history (overwrites, truncates) rebuilds correctly at any crash time', () => {
  const ops = randomOps(11, 1000);
  const reference = play(ops, 1, true);
  const { start } = reference;
  const end = reference.now();
  const r = createRng(5);
  const crashTimes = [start, start + 1, end, end - 1, ...Array.from({ length: 40 }, () => r.int(start, end + 1))];
  for (const at of crashTimes) {
    const { fs } = play(ops, 1, false);
    fs.crash(at);
    let want: Buffer = Buffer.alloc(0);
    for (const s of reference.states) if (s.durable && s.at <= at) want = s.content;
    assert.ok(fs.readFileSync('/d/f').equals(want), `crash at ${at} of ${end}`);
  }
  // Torn: the kept bytes are the durable ones plus a prefix of the content at the crash time.
  for (const at of crashTimes.slice(0, 15)) {
    const { fs } = play(ops, 1, false);
    fs.crash(at, { rng: createRng(at), chance: 1 });
    let durable: Buffer = Buffer.alloc(0);
    let then: Buffer = Buffer.alloc(0);
    for (const s of reference.states) {
      if (s.at > at) break;
      if (s.durable) durable = s.content;
      then = s.content;
    }
    const got = fs.readFileSync('/d/f');
    assert.ok(got.subarray(0, durable.length).equals(durable), `torn crash at ${at}: durable bytes kept`);
    assert.ok(got.length <= Math.max(durable.length, then.length), `torn crash at ${at}: never more than was written`);
    assert.ok(got.subarray(durable.length).equals(then.subarray(durable.length, got.length)), `torn crash at ${at}: a prefix of what was written`);
  }
  // After forgetBefore(t), a crash at or after t still rebuilds the same.
  const { fs } = play(ops, 1, false);
  const t = Math.floor(end / 2);
  fs.forgetBefore(t);
  fs.crash(t + 3);
  let want: Buffer = Buffer.alloc(0);
  for (const s of reference.states) if (s.durable && s.at <= t + 3) want = s.content;
  assert.ok(fs.readFileSync('/d/f').equals(want), 'crash after forgetBefore');
});

test('a WAL-sized history (8 MB in 8000 appends, an fsync each) is not quadratic', () => {
  const { fs, now } = setup(1);
  fs.mkdirSync('/d');
  const fd = fs.openSync('/d/f', 'wx+');
  const chunk = new Uint8Array(1024).fill(7);
  const started = performance.now();
  for (let i = 0; i < 8000; i++) {
    fs.writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
    fs.fdatasyncSync(fd);
  }
  const ms = performance.now() - started;
  // Copying the file at each fsync would move 32 GB; appending moves 8 MB (plus doublings).
  assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
  assert.is(fs.fstatSync(fd).size, 8000 * 1024);
  syncPath(fs, '/d');
  fs.crash(now() - 1); // inside the last directory fsync: the name was never made durable
  assert.equal(fs.readdirSync('/d'), []);
});

test.run();
