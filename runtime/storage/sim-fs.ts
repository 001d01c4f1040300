// SimFs: an in-memory FileSystem for the deterministic simulator, where writes and fsyncs happen
// in virtual time and a crash keeps only what was made durable (and maybe a torn prefix of more).
// It must never read the real clock, Math.random or the real disk, nor let iteration order leak.
//
// Model
// - Paths are POSIX, absolute or relative to '/', normalised. Directories must exist (mkdirSync,
//   with `recursive` for a chain), as on a real disk. Only files can be renamed or unlinked; there
//   is no rmdir (the stores never remove directories).
// - Files are inodes with content; names are directory entries. Every mutation (write, truncate,
//   create, rename, unlink, mkdir) happens at `clock.now()`. An unlinked file stays usable through
//   the descriptors open on it, as on POSIX.
// - fsyncSync/fdatasyncSync on a file: `clock.advance(syncDelayMs())`, then the file's content as
//   of that instant is durable. On a directory descriptor (openSync(dir, 'r')): the same for the
//   directory's file entries (creates, renames, unlinks in it). Simplification: mkdir is durable
//   at once, and a durable directory wins over a file entry of the same name.
// - crash(at): every operation stamped after `at` never happened. A file's content is what its
//   last durability point at or before `at` made durable (empty if none); with `torn`, a file
//   whose content at `at` extends past that is, with probability `chance`, kept with a random
//   prefix (0..all) of the extension: a write cut short. Writes that changed durable bytes in
//   place are simply lost. A directory's file entries are those of its last durability point at or
//   before `at` (none if none); a file left with no name is gone. Every descriptor becomes invalid
//   (EBADF); descriptor numbers are never reused, so a stale one cannot reach a new file.
// - Reads see the current content, durable or not, as the page cache does.
// - corrupt(path, offset) flips a byte of the file's latest durable version (latent media damage):
//   a crash that keeps that or a later durability point sees it, until the byte is rewritten;
//   reads before the crash do not (the page cache holds the good byte).
//
// Memory: a file's history is a list of versions { at, buf, len } that share one buffer while the
// file only grows, and durability points that reference versions. A write or truncate that would
// change a byte an older version still reads (below `protectedLen`) copies the buffer first, so a
// WAL (appends, an fsync each) costs amortised O(bytes), not a copy per fsync. History grows with
// the run; forgetBefore(t) drops what no crash at or after t can need.
import * as path from 'node:path';
import type { FileStats, FileSystem, OpenFlags } from './fs.ts';

export interface SimClock {
  now(): number;
  advance(ms: number): void;
}

export interface SimFsOptions {
  /** Every operation happens at clock.now(). */
  clock: SimClock;
  /** What an fsync/fdatasync costs: the clock advances by this before its durability point. */
  syncDelayMs(): number;
}

/** The generator torn writes draw from; `int(lo, hi)` is in [lo, hi) as in runtime/rng.ts. */
export interface SimRng {
  next(): number;
  int(lo: number, hi: number): number;
}

const bufferBytesMin = 256;

// ---------------------------------------------------------------------------------------------
// Errors shaped like Node's, because the stores branch on `code`.

const errnos = {
  ENOENT: [-2, 'no such file or directory'],
  EBADF: [-9, 'bad file descriptor'],
  EEXIST: [-17, 'file already exists'],
  ENOTDIR: [-20, 'not a directory'],
  EISDIR: [-21, 'illegal operation on a directory'],
  EINVAL: [-22, 'invalid argument'],
  ENOSYS: [-38, 'function not implemented'],
} as const;
type Code = keyof typeof errnos;

function fsError(code: Code, syscall: string, where?: string, dest?: string): NodeJS.ErrnoException & { dest?: string } {
  const [errno, text] = errnos[code];
  const target = where === undefined ? '' : dest === undefined ? ` '${where}'` : ` '${where}' -> '${dest}'`;
  const e: NodeJS.ErrnoException & { dest?: string } = new Error(`${code}: ${text}, ${syscall}${target}`);
  e.code = code;
  e.errno = errno;
  e.syscall = syscall;
  if (where !== undefined) e.path = where;
  if (dest !== undefined) e.dest = dest;
  return e;
}

// ---------------------------------------------------------------------------------------------
// History: versions over time, and durability points that pin one of them.

interface Stamped {
  at: number;
}

/** Index of the last element whose `at` is ≤ t, or -1 (the array is sorted by `at`). */
function lastAtOrBefore(list: readonly Stamped[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.at <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** A file's content from `at` on: bytes [0, len) of `buf`. Once sealed (a later version exists, or
 * a durability point pins it) no byte below `len` of `buf` changes. */
interface Version {
  at: number;
  buf: Buffer;
  len: number;
  sealed: boolean;
}

interface Durable<V> {
  at: number;
  version: V;
}

const emptyBuffer = Buffer.alloc(0);

class FileNode {
  readonly kind = 'file';
  /** Sorted by `at`; the last is the current content. */
  versions: Version[];
  durable: Durable<Version>[];
  /** Bytes [0, protectedLen) of the current buffer are read by a sealed version too. Invariant:
   * bytes of the current buffer past the current length are zero. */
  protectedLen = 0;
  /** Damaged bytes on the medium: seen by a crash that keeps a durability point at or after
   * `at` and before `healedAt` (the byte was rewritten, or cut off by a truncate). */
  corruptions: { offset: number; at: number; healedAt: number }[] = [];

  constructor(at: number, content?: Buffer) {
    const v: Version = { at, buf: content ?? emptyBuffer, len: content?.length ?? 0, sealed: content !== undefined };
    this.versions = [v];
    // A rebuilt file (after a crash) is durable as it stands.
    this.durable = content === undefined ? [] : [{ at, version: v }];
  }

  get current(): Version {
    return this.versions[this.versions.length - 1]!;
  }

  durableLen(): number {
    return this.durable.length === 0 ? 0 : this.durable[this.durable.length - 1]!.version.len;
  }

  /** The version mutations at `now` may change in place, able to hold `end` bytes, with
   * [from, ∞) safe to change: copied away from sealed versions when they read those bytes. */
  private writable(now: number, from: number, end: number): Version {
    let v = this.current;
    if (v.at !== now || v.sealed) {
      v.sealed = true;
      this.protectedLen = Math.max(this.protectedLen, v.len);
      v = { at: now, buf: v.buf, len: v.len, sealed: false };
      this.versions.push(v);
    }
    const mustCopy = from < this.protectedLen;
    if (mustCopy || end > v.buf.length) {
      const size = end > v.buf.length ? Math.max(end, 2 * v.buf.length, bufferBytesMin) : v.buf.length;
      const next = Buffer.alloc(size);
      v.buf.copy(next, 0, 0, v.len);
      v.buf = next;
      this.protectedLen = 0;
    }
    return v;
  }

  write(now: number, src: Uint8Array, position: number): void {
    const end = position + src.length;
    const v = this.writable(now, position, end);
    v.buf.set(src, position);
    v.len = Math.max(v.len, end);
    this.heal(now, position, end);
  }

  private heal(now: number, from: number, end: number): void {
    for (const c of this.corruptions) if (c.healedAt === Infinity && c.offset >= from && c.offset < end) c.healedAt = now;
  }

  truncate(now: number, length: number): void {
    const cur = this.current;
    if (length === cur.len) return;
    const v = this.writable(now, Math.min(length, cur.len), length);
    if (length < v.len) {
      v.buf.fill(0, length, v.len);
      this.heal(now, length, v.len);
    }
    v.len = length;
  }

  sync(now: number): void {
    const v = this.current;
    v.sealed = true;
    this.durable.push({ at: now, version: v });
  }

  /** Content after a crash at `at`, and how many bytes past the durable ones a tear kept. */
  rebuild(at: number, torn: { rng: SimRng; chance: number } | undefined): { content: Buffer; tornBytes: number } {
    const d = lastAtOrBefore(this.durable, at);
    const kept = d < 0 ? { at: -Infinity, buf: emptyBuffer, len: 0 } : { ...this.durable[d]!.version, at: this.durable[d]!.at };
    const i = lastAtOrBefore(this.versions, at);
    const then = i < 0 ? kept : this.versions[i]!;
    let extra = 0;
    if (torn !== undefined && then.len > kept.len && torn.rng.next() < torn.chance) {
      // Clamped: a generator whose upper bound is inclusive must not reach past what was written.
      extra = Math.max(0, Math.min(then.len - kept.len, torn.rng.int(0, then.len - kept.len + 1)));
    }
    const content = Buffer.alloc(kept.len + extra);
    kept.buf.copy(content, 0, 0, kept.len);
    then.buf.copy(content, kept.len, kept.len, kept.len + extra);
    for (const c of this.corruptions) {
      if (c.at <= kept.at && kept.at < c.healedAt && c.offset < kept.len) content[c.offset] = content[c.offset]! ^ 0xff;
    }
    return { content, tornBytes: extra };
  }

  forgetBefore(t: number): void {
    const d = lastAtOrBefore(this.durable, t);
    if (d > 0) this.durable = this.durable.slice(d);
    const i = lastAtOrBefore(this.versions, t);
    if (i > 0) this.versions = this.versions.slice(i);
    const cur = this.current;
    let protectedLen = 0;
    for (const v of this.versions) if (v !== cur && v.buf === cur.buf) protectedLen = Math.max(protectedLen, v.len);
    for (const p of this.durable) if (p.version !== cur && p.version.buf === cur.buf) protectedLen = Math.max(protectedLen, p.version.len);
    this.protectedLen = protectedLen;
  }
}

/** A directory's file entries from `at` on. */
interface Entries {
  at: number;
  files: Map<string, FileNode>;
  sealed: boolean;
}

class DirNode {
  readonly kind = 'dir';
  readonly createdAt: number;
  /** Subdirectories: durable from their mkdir on. */
  readonly dirs = new Map<string, DirNode>();
  entries: Entries[];
  durable: Durable<Entries>[];

  constructor(createdAt: number, files?: Map<string, FileNode>) {
    this.createdAt = createdAt;
    const e: Entries = { at: createdAt, files: files ?? new Map(), sealed: files !== undefined };
    this.entries = [e];
    this.durable = files === undefined ? [] : [{ at: createdAt, version: e }];
  }

  get files(): Map<string, FileNode> {
    return this.entries[this.entries.length - 1]!.files;
  }

  /** The entry map a mutation at `now` may change. */
  mutableFiles(now: number): Map<string, FileNode> {
    const e = this.entries[this.entries.length - 1]!;
    if (e.at === now && !e.sealed) return e.files;
    e.sealed = true;
    const next: Entries = { at: now, files: new Map(e.files), sealed: false };
    this.entries.push(next);
    return next.files;
  }

  sync(now: number): void {
    const e = this.entries[this.entries.length - 1]!;
    e.sealed = true;
    this.durable.push({ at: now, version: e });
  }

  durableFilesAt(at: number): Map<string, FileNode> {
    const d = lastAtOrBefore(this.durable, at);
    return d < 0 ? new Map() : this.durable[d]!.version.files;
  }

  forgetBefore(t: number): void {
    const d = lastAtOrBefore(this.durable, t);
    if (d > 0) this.durable = this.durable.slice(d);
    const i = lastAtOrBefore(this.entries, t);
    if (i > 0) this.entries = this.entries.slice(i);
  }
}

type FsNode = FileNode | DirNode;

interface OpenFile {
  node: FsNode;
  path: string;
  readable: boolean;
  writable: boolean;
}

const openModes: Record<OpenFlags, { readable: boolean; writable: boolean; create: boolean; exclusive: boolean; truncate: boolean }> = {
  r: { readable: true, writable: false, create: false, exclusive: false, truncate: false },
  'r+': { readable: true, writable: true, create: false, exclusive: false, truncate: false },
  w: { readable: false, writable: true, create: true, exclusive: false, truncate: true },
  'wx+': { readable: true, writable: true, create: true, exclusive: true, truncate: false },
};

function sortedEntries<V>(m: Map<string, V>): [string, V][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkRange(what: string, buffer: Uint8Array, offset: number, length: number, position: number): void {
  const ok =
    Number.isSafeInteger(offset) && Number.isSafeInteger(length) && Number.isSafeInteger(position) &&
    offset >= 0 && length >= 0 && position >= 0 && offset + length <= buffer.length;
  if (!ok) {
    const e = new RangeError(`SimFs ${what}: offset ${offset}, length ${length}, position ${position} do not fit a buffer of ${buffer.length} bytes`) as RangeError & { code: string };
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------

export class SimFs implements FileSystem {
  private readonly clock: SimClock;
  private readonly syncDelayMs: () => number;
  private root = new DirNode(-Infinity, new Map());
  private readonly fds = new Map<number, OpenFile>();
  private nextFd = 3;
  /** crash() and forgetBefore() never go back before this: the history it needs is gone. */
  private floor = -Infinity;

  constructor(options: SimFsOptions) {
    if (options === null || typeof options !== 'object' || typeof options.clock?.now !== 'function' || typeof options.clock?.advance !== 'function') {
      throw new TypeError('SimFs expects { clock: { now(), advance(ms) }, syncDelayMs() }');
    }
    if (typeof options.syncDelayMs !== 'function') throw new TypeError('SimFs: syncDelayMs must be a function returning the ms an fsync costs');
    this.clock = options.clock;
    this.syncDelayMs = options.syncDelayMs;
  }

  // --- paths ----------------------------------------------------------------------------------

  private static normalize(p: string): string {
    if (typeof p !== 'string') {
      throw Object.assign(new TypeError(`SimFs: a path must be a string, got ${typeof p}`), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    if (p === '') throw fsError('ENOENT', 'open', p);
    return path.posix.resolve('/', p);
  }

  private static parts(p: string): string[] {
    return p === '/' ? [] : p.slice(1).split('/');
  }

  /** The directory holding `p`'s last component, and that component. */
  private parentOf(p: string, syscall: string): { dir: DirNode; name: string } {
    const parts = SimFs.parts(p);
    if (parts.length === 0) throw fsError('EISDIR', syscall, p);
    let dir = this.root;
    for (const part of parts.slice(0, -1)) {
      const sub = dir.dirs.get(part);
      if (sub !== undefined) dir = sub;
      else throw fsError(dir.files.has(part) ? 'ENOTDIR' : 'ENOENT', syscall, p);
    }
    return { dir, name: parts[parts.length - 1]! };
  }

  private lookup(p: string, syscall: string): FsNode {
    if (p === '/') return this.root;
    const { dir, name } = this.parentOf(p, syscall);
    const node = dir.dirs.get(name) ?? dir.files.get(name);
    if (node === undefined) throw fsError('ENOENT', syscall, p);
    return node;
  }

  private fd(fd: number, syscall: string): OpenFile {
    const f = this.fds.get(fd);
    if (f === undefined) throw fsError('EBADF', syscall);
    return f;
  }

  // --- FileSystem -----------------------------------------------------------------------------

  statSync(p: string): FileStats {
    const node = this.lookup(SimFs.normalize(p), 'stat');
    const size = node.kind === 'file' ? node.current.len : 0;
    const isDir = node.kind === 'dir';
    return { isDirectory: () => isDir, isFile: () => !isDir, size };
  }

  fstatSync(fd: number): FileStats {
    const { node } = this.fd(fd, 'fstat');
    const size = node.kind === 'file' ? node.current.len : 0;
    const isDir = node.kind === 'dir';
    return { isDirectory: () => isDir, isFile: () => !isDir, size };
  }

  mkdirSync(p: string, options?: { recursive?: boolean }): undefined {
    const full = SimFs.normalize(p);
    const now = this.clock.now();
    if (options?.recursive) {
      let dir = this.root;
      const parts = SimFs.parts(full);
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        // A file in the way: Node says EEXIST for the last component, ENOTDIR before it.
        if (dir.files.has(part)) throw fsError(i === parts.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', full);
        let sub = dir.dirs.get(part);
        if (sub === undefined) {
          sub = new DirNode(now);
          dir.dirs.set(part, sub);
        }
        dir = sub;
      }
      return undefined;
    }
    if (full === '/') throw fsError('EEXIST', 'mkdir', full);
    const { dir, name } = this.parentOf(full, 'mkdir');
    if (dir.dirs.has(name) || dir.files.has(name)) throw fsError('EEXIST', 'mkdir', full);
    dir.dirs.set(name, new DirNode(now));
    return undefined;
  }

  readdirSync(p: string): string[] {
    const full = SimFs.normalize(p);
    const node = this.lookup(full, 'scandir');
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'scandir', full);
    return [...node.dirs.keys(), ...node.files.keys()].sort();
  }

  readFileSync(p: string): Buffer {
    const full = SimFs.normalize(p);
    const node = this.lookup(full, 'open');
    if (node.kind !== 'file') throw fsError('EISDIR', 'read');
    const v = node.current;
    // A copy: callers keep views into what they read (the WAL's entries do), and the file changes.
    return Buffer.from(v.buf.subarray(0, v.len));
  }

  openSync(p: string, flags: OpenFlags): number {
    const mode = openModes[flags];
    if (mode === undefined) {
      throw Object.assign(new TypeError(`SimFs: open flags ${JSON.stringify(flags)} are not simulated; use one of ${Object.keys(openModes).join(', ')}`), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const full = SimFs.normalize(p);
    const now = this.clock.now();
    let node: FsNode;
    if (full === '/') {
      node = this.root;
    } else {
      const { dir, name } = this.parentOf(full, 'open');
      const found = dir.dirs.get(name) ?? dir.files.get(name);
      if (found !== undefined && mode.exclusive) throw fsError('EEXIST', 'open', full);
      if (found === undefined) {
        if (!mode.create) throw fsError('ENOENT', 'open', full);
        const file = new FileNode(now);
        dir.mutableFiles(now).set(name, file);
        node = file;
      } else {
        node = found;
      }
    }
    if (node.kind === 'dir' && mode.writable) throw fsError('EISDIR', 'open', full);
    if (node.kind === 'file' && mode.truncate) node.truncate(now, 0);
    const fd = this.nextFd++;
    this.fds.set(fd, { node, path: full, readable: mode.readable, writable: mode.writable });
    return fd;
  }

  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.fd(fd, 'read');
    if (f.node.kind === 'dir') throw fsError('EISDIR', 'read');
    if (!f.readable) throw fsError('EBADF', 'read');
    checkRange('readSync', buffer, offset, length, position);
    const v = f.node.current;
    const n = Math.max(0, Math.min(length, v.len - position));
    if (n > 0) buffer.set(v.buf.subarray(position, position + n), offset);
    return n;
  }

  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.fd(fd, 'write');
    if (!f.writable || f.node.kind !== 'file') throw fsError('EBADF', 'write');
    checkRange('writeSync', buffer, offset, length, position);
    f.node.write(this.clock.now(), buffer.subarray(offset, offset + length), position);
    return length;
  }

  fsyncSync(fd: number): void {
    const f = this.fd(fd, 'fsync');
    this.clock.advance(this.syncDelayMs());
    // The durability point comes after the delay: a crash during the fsync loses what it covers.
    f.node.sync(this.clock.now());
  }

  fdatasyncSync(fd: number): void {
    this.fd(fd, 'fdatasync');
    this.fsyncSync(fd);
  }

  ftruncateSync(fd: number, length: number): void {
    const f = this.fd(fd, 'ftruncate');
    if (!f.writable || f.node.kind !== 'file') throw fsError('EBADF', 'ftruncate');
    if (!Number.isSafeInteger(length) || length < 0) throw fsError('EINVAL', 'ftruncate');
    f.node.truncate(this.clock.now(), length);
  }

  closeSync(fd: number): void {
    this.fd(fd, 'close');
    this.fds.delete(fd);
  }

  unlinkSync(p: string): void {
    const full = SimFs.normalize(p);
    const { dir, name } = this.parentOf(full, 'unlink');
    if (dir.dirs.has(name)) throw fsError('EISDIR', 'unlink', full);
    if (!dir.files.has(name)) throw fsError('ENOENT', 'unlink', full);
    dir.mutableFiles(this.clock.now()).delete(name);
  }

  renameSync(from: string, to: string): void {
    const src = SimFs.normalize(from);
    const dst = SimFs.normalize(to);
    const now = this.clock.now();
    const a = this.parentOf(src, 'rename');
    const file = a.dir.files.get(a.name);
    if (file === undefined) {
      if (a.dir.dirs.has(a.name)) throw fsError('ENOSYS', 'rename', src, dst);
      throw fsError('ENOENT', 'rename', src, dst);
    }
    const b = this.parentOf(dst, 'rename');
    if (b.dir.dirs.has(b.name)) throw fsError('EISDIR', 'rename', src, dst);
    if (src === dst) return;
    a.dir.mutableFiles(now).delete(a.name);
    b.dir.mutableFiles(now).set(b.name, file);
  }

  // --- faults ---------------------------------------------------------------------------------

  /** What survives a crash at time `at` (see the top of the file); returns the files that kept
   * part of a write that was never made durable, sorted. Open descriptors become invalid. */
  crash(at: number, torn?: { rng: SimRng; chance: number }): { tornFiles: string[] } {
    this.checkPast('crash', at);
    if (torn !== undefined && (typeof torn.rng?.next !== 'function' || typeof torn.rng.int !== 'function' || !(torn.chance >= 0 && torn.chance <= 1))) {
      throw new RangeError('SimFs crash: torn must be { rng: { next(), int(lo, hi) }, chance in [0, 1] }');
    }
    const tornFiles: string[] = [];
    const rebuilt = new Map<FileNode, FileNode>();
    const rebuildDir = (dir: DirNode, dirPath: string): DirNode => {
      const files = new Map<string, FileNode>();
      const out = new DirNode(-Infinity, files);
      for (const [name, sub] of sortedEntries(dir.dirs)) {
        if (sub.createdAt <= at) out.dirs.set(name, rebuildDir(sub, path.posix.join(dirPath, name)));
      }
      for (const [name, file] of sortedEntries(dir.durableFilesAt(at))) {
        if (out.dirs.has(name)) continue;
        let again = rebuilt.get(file);
        if (again === undefined) {
          const { content, tornBytes } = file.rebuild(at, torn);
          again = new FileNode(-Infinity, content);
          rebuilt.set(file, again);
          if (tornBytes > 0) tornFiles.push(path.posix.join(dirPath, name));
        }
        files.set(name, again);
      }
      return out;
    };
    this.root = rebuildDir(this.root, '/');
    this.fds.clear();
    this.floor = at;
    return { tornFiles: tornFiles.sort() };
  }

  /** Flips one byte (xor 0xff) of file `path` at `offset` in its latest durable version: latent
   * media damage, seen by a crash that keeps this or a later durability point (until the byte is
   * rewritten). Reads before that crash still see the page cache's good byte. */
  corrupt(p: string, offset: number): void {
    const full = SimFs.normalize(p);
    const node = this.lookup(full, 'open');
    if (node.kind !== 'file') throw fsError('EISDIR', 'open', full);
    const last = node.durable[node.durable.length - 1];
    const len = last?.version.len ?? 0;
    if (last === undefined || !Number.isSafeInteger(offset) || offset < 0 || offset >= len) {
      throw new RangeError(`SimFs corrupt: offset ${offset} is outside the ${len} durable bytes of ${full}`);
    }
    node.corruptions.push({ offset, at: last.at, healedAt: Infinity });
  }

  /** Bytes past each named file's durable length, summed: what a crash now would cut off. */
  pendingBytes(): number {
    let sum = 0;
    const seen = new Set<FileNode>();
    const walk = (dir: DirNode): void => {
      for (const sub of dir.dirs.values()) walk(sub);
      for (const f of dir.files.values()) {
        if (seen.has(f)) continue;
        seen.add(f);
        sum += Math.max(0, f.current.len - f.durableLen());
      }
    };
    walk(this.root);
    return sum;
  }

  /** Drops the history no crash at or after `t` needs; crash(at < t) is refused afterwards. For
   * long runs, whose history would otherwise grow with every write. */
  forgetBefore(t: number): void {
    this.checkPast('forgetBefore', t);
    const files = new Set<FileNode>();
    const walk = (dir: DirNode): void => {
      dir.forgetBefore(t);
      for (const e of dir.entries) for (const f of e.files.values()) files.add(f);
      for (const d of dir.durable) for (const f of d.version.files.values()) files.add(f);
      for (const sub of dir.dirs.values()) walk(sub);
    };
    walk(this.root);
    for (const f of this.fds.values()) if (f.node.kind === 'file') files.add(f.node);
    for (const f of files) f.forgetBefore(t);
    this.floor = t;
  }

  private checkPast(what: string, t: number): void {
    const now = this.clock.now();
    if (typeof t !== 'number' || Number.isNaN(t) || t > now || t < this.floor) {
      throw new RangeError(`SimFs ${what}(${t}): the time must lie between ${this.floor} (the last crash or forgetBefore) and now (${now})`);
    }
  }
}
