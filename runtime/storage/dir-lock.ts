// Exclusive locks on directories: `<dir>/LOCK` names the one process (and owner inside it) that
// may write there. It must never let a second live holder in, and never leave a directory stuck
// after its holder died without cleaning up (SIGKILL): a holder that is gone is taken over.
//
// LOCK is JSON `{ pid, startedAtMs, owner, hostname }` and a newline. It appears complete or not
// at all: the content is written and fsynced under a private name `LOCK.<pid>.<random>`, then
// hard-linked to LOCK, which fails with EEXIST while someone holds it.
//
// A holder is alive when its pid exists and, where /proc can tell, that pid started at the
// recorded time (so a recycled pid does not keep the lock). Dead holders are taken over under a
// second lock, `LOCK.takeover`, made the same way: only its holder may replace LOCK, so a LOCK
// found dead stays the same file until the taker renames its own file over it. The rename means
// LOCK never goes missing during a takeover, so a plain acquirer cannot slip in, and two takers
// cannot both replace one dead LOCK (the second sees the new file and judges it anew).
//
// Limits: liveness is judged with this host's process table, so a directory shared between hosts
// or PID namespaces (NFS, two containers on one volume) is not protected. A taker killed during
// its takeover leaves LOCK.takeover behind; the next taker clears it. If three processes meet that
// leftover at the same instant, two may still end up taking over together (not prevented).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { basename, join } from 'node:path';
import { fsyncDir } from './fsync-dir.ts';

export interface LockHolder {
  pid: number;
  /** When the holder process started (ms since the epoch); tells a recycled pid apart. */
  startedAtMs: number;
  /** Who holds it, e.g. "concur start" or "node 3". */
  owner: string;
  hostname: string;
}

export interface DirLock {
  readonly dir: string;
  /** The lock file, `<dir>/LOCK`. */
  readonly path: string;
  /** Removes LOCK if it is still the file this lock wrote; idempotent, and quiet if it is gone. */
  release(): void;
}

/** The directory is held by a live process (or, under another owner, by this one). */
export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
  readonly dir: string;
  readonly holderPid: number;
  readonly holder: LockHolder;

  constructor(dir: string, holder: LockHolder, message?: string) {
    super(
      message ??
        `${dir} is in use by process ${holder.pid} (${holder.owner}, started ${isoTime(holder.startedAtMs)}): ` +
          'stop that process first, or pass another directory',
    );
    this.dir = dir;
    this.holderPid = holder.pid;
    this.holder = holder;
  }
}

const lockName = 'LOCK';
const takeoverName = 'LOCK.takeover';
/** Private files this module leaves only when killed mid-way: `LOCK.<pid>.<hex>` (a file being
 * linked to LOCK) and `LOCK.stale.<pid>.<hex>` (a stale file moved aside before removal). */
const leftoverPattern = /^LOCK\.(?:stale\.)?(\d+)\.[0-9a-f]+$/;

/** Two readings of one process's start time may differ this much: /proc/stat's btime has whole
 * seconds and moves when the wall clock is stepped, and the fallback reads a different clock. */
const startTimeSlackMs = 1000;
/** An unparseable LOCK younger than this is taken to be still being written by someone (lockDir
 * never shows a partial file, but another writer or a file system that lost data may). */
const unparseableStaleMs = 2000;
/** How often LOCK may change hands under us before lockDir gives up. */
const acquireAttemptsMax = 5;
/** A takeover takes milliseconds; a live taker holding LOCK.takeover longer is stuck. */
const takeoverWaitMsMax = 3000;
const takeoverPollMs = 5;
/** A leftover of this very process is removed only once this old: it may be another thread's
 * file in use (a worker terminated mid-lock is the case that leaves them). */
const ownLeftoverAgeMsMin = 10_000;
/** LOCK is small; anything larger is not ours and is read as unparseable. */
const lockBytesMax = 4096;
const ownerCharsMax = 200;
/** Linux's USER_HZ, the unit of /proc/<pid>/stat starttime: 100 on every architecture Node runs
 * on (it is a fixed ABI value, not the kernel's HZ). */
const userHz = 100;

/** Takes `<dir>/LOCK` (dir must exist). `owner` says who holds it, e.g. "concur start" or "node 3".
 * Re-taking under the same owner in the same process succeeds (a worker restarted by its
 * supervisor); under another owner it throws DirLockedError, as does a live holder elsewhere. */
export function lockDir(dir: string, owner: string): DirLock {
  checkArgs(dir, owner);
  checkDir(dir);
  const lockPath = join(dir, lockName);
  const mine = writePrivate(dir, holderBytes(owner));
  let held = false;
  try {
    for (let attempt = 0; attempt < acquireAttemptsMax && !held; attempt++) {
      held = tryLink(mine.path, lockPath, dir) || placeOver(dir, lockPath, mine, owner);
    }
  } finally {
    unlinkQuiet(mine.path);
  }
  if (!held) {
    throw new Error(
      `cannot lock ${dir}: its LOCK changed hands ${acquireAttemptsMax} times while this process tried to take it ` +
        '(other processes are starting on this directory right now); stop them, then try again',
    );
  }
  try {
    fsyncDir(dir);
  } catch (e) {
    unlinkIfSame(lockPath, mine, dir);
    throw fsFailure(dir, 'fsync the directory after taking its LOCK', e);
  }
  removeLeftovers(dir);
  return new HeldLock(dir, lockPath, mine);
}

/** Who holds the lock of `dir` now, or null (no lock file, or its holder is dead). An
 * unparseable LOCK names no holder, so it answers null too. */
export function lockHolder(dir: string): LockHolder | null {
  const file = readLockFile(join(dir, lockName), dir);
  if (file === null) return null;
  const verdict = judge(file);
  return verdict.kind === 'alive' || verdict.kind === 'self' ? verdict.holder : null;
}

/** True for the files lockDir keeps in a directory (LOCK and its helpers), so that a directory
 * scan (the WAL's "is this directory ours?") can skip them. */
export function isLockFileName(name: string): boolean {
  return name === lockName || name.startsWith(`${lockName}.`);
}

class HeldLock implements DirLock {
  readonly dir: string;
  readonly path: string;
  private readonly mine: PrivateFile;
  private held = true;

  constructor(dir: string, lockPath: string, mine: PrivateFile) {
    this.dir = dir;
    this.path = lockPath;
    this.mine = mine;
  }

  release(): void {
    if (!this.held) return;
    // Same inode and same bytes: a LOCK rewritten by someone else, or re-taken by a restarted
    // worker of this process (a new file), is theirs now and stays.
    unlinkIfSame(this.path, this.mine, this.dir);
    this.held = false;
  }
}

// --- acquiring --------------------------------------------------------------------------------

/** LOCK exists: re-takes it (same process and owner), takes it over (dead holder) or throws.
 * False means LOCK changed while we looked; the caller tries again. */
function placeOver(dir: string, lockPath: string, mine: PrivateFile, owner: string): boolean {
  const seen = readLockFile(lockPath, dir);
  if (seen === null) return false; // released between our link and this read
  const verdict = judge(seen);
  switch (verdict.kind) {
    case 'alive':
      throw new DirLockedError(dir, verdict.holder);
    case 'self':
      if (verdict.holder.owner !== owner) {
        throw new DirLockedError(
          dir,
          verdict.holder,
          `${dir} is already locked by this process (pid ${process.pid}) as "${verdict.holder.owner}", so it cannot ` +
            `also be locked as "${owner}": release the first lock, or pass another directory`,
        );
      }
      // No other process judges our own live lock dead, so nobody else replaces it meanwhile.
      renameOrThrow(mine.path, lockPath, dir);
      return true;
    case 'writing':
      throw new Error(
        `cannot lock ${dir}: its LOCK is empty or unreadable and was written ${Math.max(0, Math.round(Date.now() - seen.mtimeMs))} ms ago, ` +
          `so another process is probably taking it right now; try again in a few seconds ` +
          `(a LOCK left like this by a crash is taken over once it is ${unparseableStaleMs / 1000} s old)`,
      );
    case 'dead':
      return takeOver(dir, lockPath, seen, mine, owner);
  }
}

/** Replaces the dead `seen` LOCK with ours, under LOCK.takeover. False if LOCK is no longer
 * `seen` (someone took it meanwhile): the caller judges the new holder. */
function takeOver(dir: string, lockPath: string, seen: LockFile, mine: PrivateFile, owner: string): boolean {
  const takeover = lockTakeover(dir, owner);
  try {
    // Under the takeover lock only we may replace LOCK, and a holder once dead stays dead, so
    // a LOCK that is still `seen` here is still dead at the rename.
    const now = readLockFile(lockPath, dir);
    if (now === null || !sameFile(now, seen)) return false;
    renameOrThrow(mine.path, lockPath, dir);
    return true;
  } finally {
    unlinkIfSame(join(dir, takeoverName), takeover, dir);
  }
}

/** Takes LOCK.takeover, waiting while a live process holds it, clearing it when stale. */
function lockTakeover(dir: string, owner: string): PrivateFile {
  const takeoverPath = join(dir, takeoverName);
  const mine = writePrivate(dir, holderBytes(`${owner}, taking over a dead LOCK`));
  const deadline = Date.now() + takeoverWaitMsMax;
  let last: LockFile | null = null;
  try {
    while (Date.now() <= deadline) {
      if (tryLink(mine.path, takeoverPath, dir)) return mine;
      last = readLockFile(takeoverPath, dir);
      if (last === null) continue;
      const verdict = judge(last);
      // One left by this process is stale once old: a worker terminated mid-takeover leaves it.
      const ownLeftover = verdict.kind === 'self' && Date.now() - last.ctimeMs > unparseableStaleMs;
      if (verdict.kind === 'dead' || ownLeftover) removeStale(dir, takeoverPath, last);
      else sleepMs(takeoverPollMs);
    }
  } finally {
    unlinkQuiet(mine.path);
  }
  const who = last?.holder ? `process ${last.holder.pid} (${last.holder.owner})` : 'another process';
  throw new Error(
    `cannot lock ${dir}: ${who} has been taking over its dead LOCK for over ${takeoverWaitMsMax / 1000} s; ` +
      `if that process is stuck, stop it (or delete ${takeoverPath}), then try again`,
  );
}

/** Removes `file` if it is still `seen`. It moves the file aside first and checks what it moved:
 * a check-then-unlink could delete a live file that replaced `seen` in between. */
function removeStale(dir: string, file: string, seen: LockFile): void {
  const aside = join(dir, `${lockName}.stale.${process.pid}.${randomHex()}`);
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw fsFailure(dir, `move the stale ${basename(file)} aside`, e);
  }
  try {
    const moved = readLockFile(aside, dir);
    if (moved !== null && !sameFile(moved, seen)) {
      try {
        fs.linkSync(aside, file); // put the live one back
      } catch {
        // EEXIST: a third process made `file` meanwhile; the one we moved is lost (see Limits).
      }
    }
  } finally {
    unlinkQuiet(aside);
  }
}

// --- judging a holder -------------------------------------------------------------------------

type Verdict =
  | { kind: 'self' | 'alive'; holder: LockHolder }
  | { kind: 'dead' } // gone, recycled pid, or unparseable and old
  | { kind: 'writing' }; // unparseable and young

function judge(file: LockFile): Verdict {
  const holder = file.holder;
  if (holder === null) return Date.now() - file.mtimeMs > unparseableStaleMs ? { kind: 'dead' } : { kind: 'writing' };
  if (holder.pid === process.pid && holder.hostname === os.hostname()) {
    // Our own pid with another start time is an earlier process that had this pid.
    return near(holder.startedAtMs, selfStartMs()) ? { kind: 'self', holder } : { kind: 'dead' };
  }
  return isAlive(holder) ? { kind: 'alive', holder } : { kind: 'dead' };
}

function isAlive(holder: LockHolder): boolean {
  if (!pidExists(holder.pid)) return false;
  const startedAtMs = procStartMs(holder.pid);
  if (startedAtMs === 'gone') return false;
  // Without /proc the pid is all we can check; keeping the lock is the safe side.
  return startedAtMs === 'unknown' || near(startedAtMs, holder.startedAtMs);
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists under another user. Anything else we cannot read: assume it exists.
    return errCode(e) !== 'ESRCH';
  }
}

/** Start time of `pid` from /proc: 'gone' if it has exited (or is a zombie, which has let go of
 * its files), 'unknown' where /proc cannot tell. */
function procStartMs(pid: number): number | 'gone' | 'unknown' {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (e) {
    return errCode(e) === 'ENOENT' && procReadable() ? 'gone' : 'unknown';
  }
  // Field 2 (comm) may hold spaces and ')': count from the last ')'. fields[0] is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return 'gone';
  const startTicks = Number(fields[19]); // field 22: starttime, in USER_HZ ticks since boot
  const bootS = bootTimeS();
  if (!Number.isFinite(startTicks) || bootS === null) return 'unknown';
  return bootS * 1000 + Math.round((startTicks * 1000) / userHz);
}

let procSelfReadable: boolean | undefined;
function procReadable(): boolean {
  if (procSelfReadable === undefined) {
    try {
      fs.readFileSync('/proc/self/stat');
      procSelfReadable = true;
    } catch {
      procSelfReadable = false;
    }
  }
  return procSelfReadable;
}

/** Read every time, not cached: it moves when the wall clock is stepped. */
function bootTimeS(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let selfStart: number | undefined;
function selfStartMs(): number {
  if (selfStart === undefined) {
    const fromProc = procStartMs(process.pid);
    // process.uptime() counts from the process's start in worker threads too.
    selfStart = typeof fromProc === 'number' ? fromProc : Math.round(Date.now() - process.uptime() * 1000);
  }
  return selfStart;
}

function near(aMs: number, bMs: number): boolean {
  return Math.abs(aMs - bMs) <= startTimeSlackMs;
}

// --- files ------------------------------------------------------------------------------------

interface PrivateFile {
  path: string;
  ino: bigint;
  dev: bigint;
  bytes: Buffer;
}

interface LockFile {
  ino: bigint;
  dev: bigint;
  mtimeMs: number;
  ctimeMs: number;
  bytes: Buffer;
  holder: LockHolder | null;
}

function holderBytes(owner: string): Buffer {
  const holder: LockHolder = { pid: process.pid, startedAtMs: selfStartMs(), owner, hostname: os.hostname() };
  return Buffer.from(`${JSON.stringify(holder)}\n`);
}

/** Writes and fsyncs `LOCK.<pid>.<random>`, so the name it is linked to shows complete content
 * even after a power loss. */
function writePrivate(dir: string, bytes: Buffer): PrivateFile {
  const file = join(dir, `${lockName}.${process.pid}.${randomHex()}`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o644);
  } catch (e) {
    throw fsFailure(dir, `create ${basename(file)}`, e);
  }
  try {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    fs.fsyncSync(fd);
    const st = fs.fstatSync(fd, { bigint: true });
    return { path: file, ino: st.ino, dev: st.dev, bytes };
  } catch (e) {
    unlinkQuiet(file);
    throw fsFailure(dir, `write ${basename(file)}`, e);
  } finally {
    fs.closeSync(fd);
  }
}

/** null when the file does not exist (nor its directory). */
function readLockFile(file: string, dir: string): LockFile | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw fsFailure(dir, `read ${basename(file)}`, e);
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) {
      throw new Error(`${file} is not a regular file, but lockDir keeps its lock under that name; move it away`);
    }
    const buf = Buffer.alloc(lockBytesMax + 1);
    let size = 0;
    for (let n = -1; n !== 0 && size < buf.length; size += n) n = fs.readSync(fd, buf, size, buf.length - size, size);
    const bytes = buf.subarray(0, size);
    const holder = size > lockBytesMax ? null : parseHolder(bytes);
    return { ino: st.ino, dev: st.dev, mtimeMs: Number(st.mtimeMs), ctimeMs: Number(st.ctimeMs), bytes, holder };
  } catch (e) {
    if (errCode(e) === undefined) throw e; // the not-a-file error above says it already
    throw fsFailure(dir, `read ${basename(file)}`, e);
  } finally {
    fs.closeSync(fd);
  }
}

function parseHolder(bytes: Buffer): LockHolder | null {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object') return null;
  const { pid, startedAtMs, owner, hostname } = v as Record<string, unknown>;
  // pid 0 and negative pids would make process.kill address process groups.
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > 0x7fffffff) return null;
  if (typeof startedAtMs !== 'number' || !Number.isFinite(startedAtMs) || Math.abs(startedAtMs) > 8.64e15) return null;
  if (typeof owner !== 'string' || typeof hostname !== 'string') return null;
  return { pid, startedAtMs, owner, hostname };
}

function sameFile(a: { ino: bigint; dev: bigint; bytes: Buffer }, b: { ino: bigint; dev: bigint; bytes: Buffer }): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.bytes.equals(b.bytes);
}

/** Links `from` to `to`; false if `to` exists. */
function tryLink(from: string, to: string, dir: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (e) {
    const code = errCode(e);
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      throw new Error(
        `cannot lock ${dir}: its file system refuses hard links (${code}), which lockDir needs to create ${basename(to)} ` +
          'atomically; put the directory on a local file system',
        { cause: e },
      );
    }
    throw fsFailure(dir, `create ${basename(to)}`, e);
  }
}

function renameOrThrow(from: string, to: string, dir: string): void {
  try {
    fs.renameSync(from, to);
  } catch (e) {
    throw fsFailure(dir, `replace ${basename(to)}`, e);
  }
}

function unlinkIfSame(file: string, mine: PrivateFile, dir: string): void {
  const now = readLockFile(file, dir);
  if (now === null || !sameFile(now, mine)) return;
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw fsFailure(dir, `remove ${basename(file)}`, e);
  }
}

/** For our private files only: a failure to remove one must not hide the error that got us here. */
function unlinkQuiet(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // ENOENT is the usual case: the file was renamed to LOCK.
  }
}

/** Removes private files left by killed lockers, so they do not pile up across crashes. */
function removeLeftovers(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = leftoverPattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid < 1 || pid > 0x7fffffff) continue;
    const file = join(dir, name);
    if (pid === process.pid) {
      try {
        // ctime, not mtime: a file moved aside keeps the old mtime of what it was.
        if (Date.now() - fs.lstatSync(file).ctimeMs < ownLeftoverAgeMsMin) continue;
      } catch {
        continue;
      }
    } else if (pidExists(pid)) {
      continue;
    }
    unlinkQuiet(file);
  }
}


// --- input and errors -------------------------------------------------------------------------

function checkArgs(dir: unknown, owner: unknown): void {
  if (typeof dir !== 'string' || dir === '') {
    throw new TypeError(`lockDir: dir must be a non-empty path string, got ${describe(dir)}`);
  }
  if (typeof owner !== 'string' || owner === '' || owner.length > ownerCharsMax) {
    throw new TypeError(
      `lockDir: owner must be a non-empty string of at most ${ownerCharsMax} characters saying who holds the lock ` +
        `(e.g. "concur start" or "node 3"), got ${describe(owner)}`,
    );
  }
}

function checkDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new Error(`cannot lock ${dir}: no such directory; create it first (lockDir does not create directories)`, { cause: e });
    }
    throw fsFailure(dir, 'look at the directory', e);
  }
  if (!st.isDirectory()) throw new Error(`cannot lock ${dir}: it is a file, not a directory; pass the directory to lock`);
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new Error(
      `cannot lock ${dir}: this process may not read and write it (${errCode(e)}); fix its permissions or pass another directory`,
      { cause: e },
    );
  }
}

const hints: Record<string, string> = {
  EACCES: "this process lacks permission; fix the directory's permissions or pass another directory",
  EPERM: "this process lacks permission; fix the directory's permissions or pass another directory",
  EROFS: 'the file system is read-only; pass a directory on a writable one',
  ENOSPC: 'the disk is full; free some space',
  EDQUOT: 'the disk quota is used up; free some space',
  ENOENT: 'the directory was removed meanwhile; create it again',
};

function fsFailure(dir: string, doing: string, e: unknown): Error {
  const code = errCode(e) ?? 'error';
  const hint = hints[code] ?? (e instanceof Error ? e.message : String(e));
  return new Error(`cannot ${doing} in ${dir} (${code}): ${hint}`, { cause: e });
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v;
}

function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `at ${ms} ms` : d.toISOString();
}

function randomHex(): string {
  return crypto.randomBytes(6).toString('hex');
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
