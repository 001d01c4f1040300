// Directory locks: one live holder per directory, across processes and owners in one process;
// dead holders (killed, recycled pid, half-written file) are taken over; release is exact.
// Other processes are real child processes running lockDir, killed with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DirLockedError, isLockFileName, lockDir, lockHolder, type LockHolder } from '../../runtime/storage/dir-lock.ts';
import { cleanupTmp, tmpDir } from './helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const moduleUrl = pathToFileURL(join(root, 'runtime/storage/dir-lock.ts')).href;
/** Above Linux's largest pid_max (2^22), so no process can have it. */
const deadPid = 2 ** 22 + 12345;

const children: ChildProcess[] = [];

test.after.each(async () => {
  for (const child of children.splice(0)) await killHard(child);
  cleanupTmp();
});

// --- helpers ----------------------------------------------------------------------------------

/** A child that locks `dir` as `owner`, prints "locked" or "refused <holderPid> <message>", and
 * stays alive until killed. */
function holderScript(): string {
  const file = join(tmpDir(), 'hold.mjs');
  fs.writeFileSync(
    file,
    `import { lockDir } from ${JSON.stringify(moduleUrl)};
const [dir, owner] = process.argv.slice(2);
try {
  lockDir(dir, owner);
  console.log('locked');
} catch (e) {
  console.log('refused ' + (e.holderPid ?? '-') + ' ' + e.message);
}
setInterval(() => {}, 1 << 30);
`,
  );
  return file;
}

/** A child that locks `<base>/dir-<r>` as `owner` for each round r once `<base>/go-<r>` exists,
 * printing "<r> locked" or "<r> refused <holderPid> <message>", and keeps every lock it took. */
function racerScript(): string {
  const file = join(tmpDir(), 'race.mjs');
  fs.writeFileSync(
    file,
    `import * as fs from 'node:fs';
import { join } from 'node:path';
import { lockDir } from ${JSON.stringify(moduleUrl)};
const [base, owner, rounds] = process.argv.slice(2);
console.log('ready');
for (let r = 0; r < Number(rounds); r++) {
  const go = join(base, 'go-' + r);
  while (!fs.existsSync(go)) {}
  try {
    lockDir(join(base, 'dir-' + r), owner);
    console.log(r + ' locked');
  } catch (e) {
    console.log(r + ' refused ' + (e.holderPid ?? '-') + ' ' + e.message);
  }
}
setInterval(() => {}, 1 << 30);
`,
  );
  return file;
}

interface Child {
  child: ChildProcess;
  pid: number;
  nextLine(): Promise<string>;
}

function spawnHolder(script: string, ...args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let wake: () => void = () => {};
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      lines.push(partial.slice(0, i));
      partial = partial.slice(i + 1);
    }
    wake();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', () => wake());
  return {
    child,
    pid: child.pid!,
    async nextLine() {
      const deadline = Date.now() + 30_000;
      while (lines.length === 0) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child exited early: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no line from the child within 30 s: ${stderr}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      return lines.shift()!;
    },
  };
}

/** SIGKILL and wait for the exit, so the child is reaped (not left a zombie). */
async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function writeLock(dir: string, holder: LockHolder | string, name = 'LOCK'): string {
  const file = join(dir, name);
  fs.writeFileSync(file, typeof holder === 'string' ? holder : `${JSON.stringify(holder)}\n`);
  return file;
}

function age(file: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.unreachable('expected an exception');
}

/** Our own start time as lockDir records it. */
function ownHolder(): LockHolder {
  const dir = tmpDir();
  const lock = lockDir(dir, 'probe');
  const holder = lockHolder(dir)!;
  lock.release();
  return holder;
}

// --- tests ------------------------------------------------------------------------------------

test('lock shows us as holder; release clears it and the directory can be locked again', () => {
  const dir = tmpDir();
  assert.is(lockHolder(dir), null);
  const lock = lockDir(dir, 'concur start');
  assert.is(lock.dir, dir);
  assert.is(lock.path, join(dir, 'LOCK'));
  const holder = lockHolder(dir);
  assert.ok(holder);
  assert.is(holder.pid, process.pid);
  assert.is(holder.owner, 'concur start');
  assert.is(holder.hostname, os.hostname());
  assert.ok(Math.abs(holder.startedAtMs - (Date.now() - process.uptime() * 1000)) < 5000, 'start time is this process start');
  assert.equal(JSON.parse(fs.readFileSync(lock.path, 'utf8')), holder);
  assert.equal(fs.readdirSync(dir), ['LOCK'], 'no private files left behind');

  lock.release();
  assert.is(lockHolder(dir), null);
  assert.not.ok(fs.existsSync(lock.path));
  const again = lockDir(dir, 'concur start');
  assert.is(lockHolder(dir)?.pid, process.pid);
  again.release();
});

test('a live holder in another process is refused with its pid; once it is SIGKILLed its lock is taken over', async () => {
  const dir = tmpDir();
  const holder = spawnHolder(holderScript(), dir, 'concur start');
  assert.is(await holder.nextLine(), 'locked');
  const seen = lockHolder(dir);
  assert.is(seen?.pid, holder.pid);
  assert.is(seen?.owner, 'concur start');

  const e = caught(() => lockDir(dir, 'concur start'));
  assert.instance(e, DirLockedError);
  const err = e as DirLockedError;
  assert.is(err.name, 'DirLockedError');
  assert.is(err.holderPid, holder.pid);
  assert.is(err.dir, dir);
  assert.equal(err.holder, seen);
  assert.is(
    err.message,
    `${dir} is in use by process ${holder.pid} (concur start, started ${new Date(seen!.startedAtMs).toISOString()}): ` +
      'stop that process first, or pass another directory',
  );

  // The same pid with another start time is an earlier process that had that pid: not alive.
  const other = tmpDir();
  writeLock(other, { ...seen!, startedAtMs: seen!.startedAtMs - 3_600_000 });
  assert.is(lockHolder(other), null);
  lockDir(other, 'me').release();
  writeLock(other, seen!);
  assert.instance(caught(() => lockDir(other, 'me')), DirLockedError);

  await killHard(holder.child);
  assert.is(lockHolder(dir), null, 'a killed holder holds nothing');
  const lock = lockDir(dir, 'concur start');
  assert.is(lockHolder(dir)?.pid, process.pid);
  lock.release();
});

test('a holder killed but not yet reaped by its parent (a zombie) holds nothing', async () => {
  if (!fs.existsSync('/proc/self/stat')) return; // zombies are told apart through /proc only
  const dir = tmpDir();
  const holder = spawnHolder(holderScript(), dir, 'concur start');
  assert.is(await holder.nextLine(), 'locked');
  process.kill(holder.pid, 'SIGKILL');
  // This test stays synchronous until lockDir returns, so Node cannot reap the child meanwhile.
  const deadline = Date.now() + 10_000;
  const state = () => fs.readFileSync(`/proc/${holder.pid}/stat`, 'latin1').split(') ')[1]![0];
  while (state() !== 'Z') assert.ok(Date.now() < deadline, 'the killed child never became a zombie');
  const lock = lockDir(dir, 'concur start');
  assert.is(state(), 'Z', 'still a zombie while we took the lock');
  assert.is(lockHolder(dir)?.pid, process.pid);
  lock.release();
});

test('a LOCK naming a pid that does not exist is taken over', () => {
  const e = caught(() => process.kill(deadPid, 0)) as NodeJS.ErrnoException;
  assert.is(e.code, 'ESRCH', `pid ${deadPid} must not exist for this test`);
  const dir = tmpDir();
  writeLock(dir, { pid: deadPid, startedAtMs: Date.now() - 1000, owner: 'concur start', hostname: os.hostname() });
  assert.is(lockHolder(dir), null);
  const lock = lockDir(dir, 'concur start');
  assert.is(lockHolder(dir)?.pid, process.pid);
  assert.equal(fs.readdirSync(dir), ['LOCK']);
  lock.release();
});

test('a LOCK with our pid but another start time (a recycled pid) is taken over', () => {
  const me = ownHolder();
  const dir = tmpDir();
  writeLock(dir, { ...me, startedAtMs: me.startedAtMs - 3_600_000, owner: 'an earlier process' });
  assert.is(lockHolder(dir), null);
  // Another owner: had it been judged ours, this would throw.
  const lock = lockDir(dir, 'node 1');
  assert.is(lockHolder(dir)?.owner, 'node 1');
  lock.release();
});

test('in one process the same owner re-takes the lock and another owner is refused', () => {
  const dir = tmpDir();
  const first = lockDir(dir, 'node 3');
  const second = lockDir(dir, 'node 3');
  assert.is(lockHolder(dir)?.owner, 'node 3');

  const e = caught(() => lockDir(dir, 'node 4'));
  assert.instance(e, DirLockedError);
  assert.is((e as DirLockedError).holderPid, process.pid);
  assert.match((e as Error).message, `pid ${process.pid}`);
  assert.match((e as Error).message, '"node 3"');

  // The first handle's file was replaced by the re-take: releasing it must not free the second.
  first.release();
  assert.is(lockHolder(dir)?.owner, 'node 3');
  second.release();
  assert.is(lockHolder(dir), null);
  assert.equal(fs.readdirSync(dir), []);
});

test('an unparseable LOCK is taken over once 2 s old, and refused while fresh', () => {
  const dir = tmpDir();
  const file = writeLock(dir, '');
  const e = caught(() => lockDir(dir, 'concur start'));
  assert.instance(e, Error);
  assert.match((e as Error).message, 'probably taking it right now');
  assert.is(fs.readFileSync(file, 'utf8'), '', 'a fresh LOCK is left alone');
  assert.is(lockHolder(dir), null);

  age(file, 10_000);
  const lock = lockDir(dir, 'concur start');
  assert.is(lockHolder(dir)?.pid, process.pid);
  lock.release();

  age(writeLock(dir, '{"pid": 12, "startedAt'), 3000);
  lockDir(dir, 'concur start').release();
});

test('release removes only our own LOCK, is idempotent, and is quiet when LOCK is gone', () => {
  const someoneElse = { pid: deadPid, startedAtMs: 1, owner: 'someone else', hostname: 'h' };

  const rewritten = tmpDir();
  const a = lockDir(rewritten, 'me');
  writeLock(rewritten, someoneElse); // same file, new content
  a.release();
  assert.equal(JSON.parse(fs.readFileSync(a.path, 'utf8')), someoneElse);

  const replaced = tmpDir();
  const b = lockDir(replaced, 'me');
  const ours = fs.readFileSync(b.path);
  const twin = join(replaced, 'twin');
  fs.writeFileSync(twin, ours);
  fs.renameSync(twin, b.path); // same content, another file: not the one we made
  b.release();
  assert.ok(fs.existsSync(b.path));

  const removed = tmpDir();
  const c = lockDir(removed, 'me');
  fs.unlinkSync(c.path);
  c.release();
  c.release();
  const d = lockDir(removed, 'me');
  d.release();
  d.release();
  assert.not.ok(fs.existsSync(d.path));
});

test('a missing directory, a file and bad arguments give clear errors', () => {
  const base = tmpDir();
  const missing = join(base, 'nope');
  const e = caught(() => lockDir(missing, 'me')) as Error;
  assert.is(e.message, `cannot lock ${missing}: no such directory; create it first (lockDir does not create directories)`);
  assert.is(lockHolder(missing), null);

  const file = join(base, 'file');
  fs.writeFileSync(file, 'x');
  assert.match((caught(() => lockDir(file, 'me')) as Error).message, 'it is a file, not a directory');
  assert.match((caught(() => lockDir(base, '')) as Error).message, 'owner must be a non-empty string');
  assert.match((caught(() => lockDir('', 'me')) as Error).message, 'dir must be a non-empty path');

  fs.mkdirSync(join(base, 'LOCK'));
  assert.match((caught(() => lockDir(base, 'me')) as Error).message, 'is not a regular file');
});

test('LOCK.takeover left by a dead taker is cleared; one held by a live taker stops lockDir with its pid', async () => {
  const dead = { pid: deadPid, startedAtMs: 1, owner: 'concur start', hostname: os.hostname() };
  const dir = tmpDir();
  writeLock(dir, dead);
  writeLock(dir, { ...dead, owner: 'concur start, taking over a dead LOCK' }, 'LOCK.takeover');
  const lock = lockDir(dir, 'me');
  assert.equal(fs.readdirSync(dir), ['LOCK']);
  lock.release();

  const liveDir = tmpDir();
  const live = spawnHolder(holderScript(), liveDir, 'taker');
  assert.is(await live.nextLine(), 'locked');
  const liveHolder = lockHolder(liveDir)!;
  const stuck = tmpDir();
  const lockFile = writeLock(stuck, dead);
  writeLock(stuck, liveHolder, 'LOCK.takeover');
  const started = Date.now();
  const e = caught(() => lockDir(stuck, 'me')) as Error;
  assert.ok(Date.now() - started >= 2900, 'it waited for the live taker');
  assert.match(e.message, `process ${live.pid} (taker) has been taking over its dead LOCK`);
  assert.equal(JSON.parse(fs.readFileSync(lockFile, 'utf8')), dead, 'LOCK untouched');
});

test('leftover private files of killed lockers are removed; live ones and other files stay', () => {
  const dir = tmpDir();
  const keep = ['wal-0000000000000001.log', `LOCK.${process.pid}.abcdef012345`];
  const drop = [`LOCK.${deadPid}.abcdef012345`, `LOCK.stale.${deadPid}.0123456789ab`];
  for (const name of [...keep, ...drop]) fs.writeFileSync(join(dir, name), '');
  const lock = lockDir(dir, 'me');
  assert.equal(fs.readdirSync(dir).sort(), ['LOCK', ...keep].sort());
  lock.release();
});

test('processes racing for a dead LOCK: exactly one takes it, the others name the winner', async () => {
  // Each round the racers spin on a go-file, so they call lockDir at the same instant; many
  // rounds in the same processes make an interleaving that lets two in likely to show.
  const base = tmpDir();
  const rounds = 100;
  for (let r = 0; r < rounds; r++) {
    fs.mkdirSync(join(base, `dir-${r}`));
    writeLock(join(base, `dir-${r}`), { pid: deadPid, startedAtMs: 1, owner: 'concur start', hostname: os.hostname() });
  }
  const script = racerScript();
  const racers = Array.from({ length: 4 }, (_, i) => spawnHolder(script, base, `racer ${i}`, String(rounds)));
  for (const r of racers) assert.is(await r.nextLine(), 'ready');
  for (let r = 0; r < rounds; r++) {
    fs.writeFileSync(join(base, `go-${r}`), '');
    const results = await Promise.all(racers.map((racer) => racer.nextLine()));
    const winners = racers.filter((_, i) => results[i] === `${r} locked`);
    assert.is(winners.length, 1, `round ${r}:\n${results.join('\n')}`);
    const winner = winners[0]!;
    for (const line of results) if (line !== `${r} locked`) assert.match(line, `${r} refused ${winner.pid} `);
    const dir = join(base, `dir-${r}`);
    assert.is(lockHolder(dir)?.pid, winner.pid);
    assert.equal(fs.readdirSync(dir), ['LOCK'], 'no private files left behind');
  }
});

test('isLockFileName covers LOCK and its helper files only', () => {
  for (const name of ['LOCK', 'LOCK.takeover', 'LOCK.123.abcdef', 'LOCK.stale.123.abcdef']) assert.ok(isLockFileName(name), name);
  for (const name of ['wal-0000000000000001.log', 'LOCKS', 'lock', 'xLOCK']) assert.not.ok(isLockFileName(name), name);
});

test.run();
