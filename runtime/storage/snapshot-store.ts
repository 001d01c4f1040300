// A node's snapshot files: images of the app's state machine at a log index, written in pieces,
// verified, pruned, read back in pieces, and received from a leader chunk by chunk (resumable).
// It must never touch a file whose name is not one of its own patterns (the WAL shares the
// directory), never hand out image bytes from a file that failed its checks, never decode them,
// and never reach the disk synchronously other than through the FileSystem it was opened with
// (node:fs by default; the asynchronous writer, on fs.promises, exists for node:fs only).
//
// File `snap-<index, 16 digits>-<term, 10 digits>.snap`, little-endian:
//   header (64 B): magic "CONCURSN" | version u32 | flags u32 | index u64 | term u64 |
//                  dataBytes u64 | dataCrc u32 | metaBytes u32 | reserved (12 B) | headerCrc u32
//   meta block:    version 1: voter count u32 | count × voter id u32
//                  version 2 (written when the snapshot records its whole configuration):
//                  flags u32 (bit 0: auto-leave) | then four lists, each count u32 | count × id
//                  u32: voters, outgoing voters (joint consensus), learners, witnesses
//   data:          the app image (dataBytes; 0 for an imageless snapshot, which only bounds a log)
// Version 1 files (no configuration beyond the voters) still load; they are written when the
// caller gives no membership, so a store's files never change format behind an older reader.
// headerCrc covers header bytes 0..59 and then the meta block; since it covers dataCrc it
// identifies the whole content, which is what a resumed transfer checks it is still receiving.
// u64 fields hold safe integers (< 2^53), stored as two u32 halves.
//
// Other names in the directory:
//   `<snapshot name>.tmp`                                   a write in progress (deleted at open)
//   `snap-<index16>-<term10>-<fileBytes>-<headerCrc hex8>.recv`  a transfer being received
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from './crc32.ts';
import { checkFileSystem, nodeFs, type FileSystem, type OpenFlags } from './fs.ts';
import { fsyncDir } from './fsync-dir.ts';
import { StorageError } from './rules.ts';

/**
 * The whole configuration at a snapshot's index (version 2 files). Sorted id lists; the store
 * checks their shape, not their meaning.
 */
export interface SnapshotMembership {
  readonly voters: readonly number[];
  /** Joint consensus: the outgoing configuration's voters (empty when not joint). */
  readonly outgoing: readonly number[];
  readonly learners: readonly number[];
  /** Voters (of either half) that keep no state machine. */
  readonly witnesses: readonly number[];
  readonly autoLeave: boolean;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  /** The voters; with `membership`, they must equal membership.voters. */
  voters: number[];
  /** The whole configuration; absent in version 1 files. */
  membership?: SnapshotMembership;
}

export interface SnapshotInfo extends SnapshotMeta {
  /** File name inside the directory. */
  name: string;
  /** Whole file size. */
  fileBytes: number;
  dataBytes: number;
  /** Identifies the content (for resuming transfers). */
  headerCrc: number;
}

/** The newest format this build writes and reads (it reads version 1 too). */
export const snapshotFormatVersion = 2;
const formatVersionVoters = 1;

const magic = Buffer.from('CONCURSN', 'ascii');
const headerBytes = 64;
const at = { magic: 0, version: 8, flags: 12, index: 16, term: 24, dataBytes: 32, dataCrc: 40, metaBytes: 44, headerCrc: 60 };
/** The file name has 10 digits for the term, and terms are u32 everywhere else in concur. */
const termMax = 0xffff_ffff;
const voterIdMax = 0xffff_ffff;
/** Bounds the meta block, so a damaged metaBytes never makes a reader allocate gigabytes. */
const votersMax = 4096;
const membershipLists = ['voters', 'outgoing', 'learners', 'witnesses'] as const;
const metaBytesMaxOf = (version: number): number => (version === formatVersionVoters ? 4 + 4 * votersMax : 4 + membershipLists.length * (4 + 4 * votersMax));
const pieceBytesDefault = 1024 * 1024;
/** Bounds one openData() piece and one readRaw() answer: both are allocated whole. */
const pieceBytesMax = 64 * 1024 * 1024;
const rawBytesMax = 64 * 1024 * 1024;
/** verify() streams the image through a buffer of this size rather than reading it whole. */
const verifyPieceBytes = 1024 * 1024;

const snapPattern = /^snap-(\d{16})-(\d{10})\.snap$/;
const tmpPattern = /^snap-\d{16}-\d{10}\.snap\.tmp$/;
const recvPattern = /^snap-(\d{16})-(\d{10})-(\d{1,16})-([0-9a-f]{8})\.recv$/;

// ---------------------------------------------------------------------------------------------
// Names and argument checks

export function snapshotFileName(index: number, term: number): string {
  checkIndexTerm(index, term, 'snapshotFileName');
  return `snap-${String(index).padStart(16, '0')}-${String(term).padStart(10, '0')}.snap`;
}

function partialFileName(index: number, term: number, fileBytes: number, headerCrc: number): string {
  return `${snapshotFileName(index, term).slice(0, -'.snap'.length)}-${fileBytes}-${hex(headerCrc)}.recv`;
}

function parseSnapName(name: string): { index: number; term: number } | null {
  const m = snapPattern.exec(name);
  if (!m) return null;
  const index = Number(m[1]);
  const term = Number(m[2]);
  return Number.isSafeInteger(index) && term <= termMax ? { index, term } : null;
}

/** Refuses anything but our own snapshot names, which also keeps paths inside the directory. */
function checkSnapName(name: unknown, where: string): { index: number; term: number } {
  const parsed = typeof name === 'string' ? parseSnapName(name) : null;
  if (!parsed) {
    throw new StorageError(
      'BAD_OPTION',
      `${where}: ${JSON.stringify(name)} is not a snapshot file name; expected snap-<index, 16 digits>-<term, 10 digits>.snap as list() returns`,
    );
  }
  return parsed;
}

function checkIndexTerm(index: unknown, term: unknown, where: string): void {
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
    throw new StorageError('BAD_OPTION', `${where}: index must be a safe integer ≥ 0, got ${JSON.stringify(index)}`);
  }
  if (typeof term !== 'number' || !Number.isInteger(term) || term < 0 || term > termMax) {
    throw new StorageError('BAD_OPTION', `${where}: term must be an integer from 0 to ${termMax}, got ${JSON.stringify(term)}`);
  }
}

function checkIds(ids: unknown, what: string, where: string): number[] {
  if (!Array.isArray(ids) || ids.length > votersMax) {
    throw new StorageError('BAD_OPTION', `${where}: ${what} must be an array of at most ${votersMax} node ids`);
  }
  for (const id of ids) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > voterIdMax) {
      throw new StorageError('BAD_OPTION', `${where}: ${what.replace(/s$/, '')} ids must be integers from 0 to ${voterIdMax}, got ${JSON.stringify(id)}`);
    }
  }
  if (new Set(ids).size !== ids.length) {
    throw new StorageError('BAD_OPTION', `${where}: ${what} lists a node twice: ${JSON.stringify(ids)}`);
  }
  return [...(ids as number[])];
}

function checkMembership(m: SnapshotMembership, voters: readonly number[], where: string): SnapshotMembership {
  if (m === null || typeof m !== 'object') throw new StorageError('BAD_OPTION', `${where}: membership must be { voters, outgoing, learners, witnesses, autoLeave }`);
  const lists = Object.fromEntries(membershipLists.map((name) => [name, checkIds(m[name], `membership ${name}`, where)])) as Record<(typeof membershipLists)[number], number[]>;
  if (typeof m.autoLeave !== 'boolean') throw new StorageError('BAD_OPTION', `${where}: membership autoLeave must be a boolean`);
  if (lists.voters.length !== voters.length || lists.voters.some((id, i) => id !== voters[i])) {
    throw new StorageError('BAD_OPTION', `${where}: voters ${JSON.stringify(voters)} must equal membership voters ${JSON.stringify(lists.voters)}`);
  }
  return { ...lists, autoLeave: m.autoLeave };
}

function checkMeta(meta: SnapshotMeta, where: string): SnapshotMeta {
  if (meta === null || typeof meta !== 'object') {
    throw new StorageError('BAD_OPTION', `${where} expects { index, term, voters, membership? }`);
  }
  checkIndexTerm(meta.index, meta.term, where);
  const voters = checkIds(meta.voters, 'voters', where);
  if (meta.membership === undefined) return { index: meta.index, term: meta.term, voters };
  return { index: meta.index, term: meta.term, voters, membership: checkMembership(meta.membership, voters, where) };
}

/** A copy the caller may change without touching what a writer holds. */
function copyMeta(meta: SnapshotMeta): SnapshotMeta {
  const m = meta.membership;
  const copy: SnapshotMeta = { index: meta.index, term: meta.term, voters: [...meta.voters] };
  if (m !== undefined) copy.membership = { voters: [...m.voters], outgoing: [...m.outgoing], learners: [...m.learners], witnesses: [...m.witnesses], autoLeave: m.autoLeave };
  return copy;
}

function checkCount(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new StorageError('BAD_OPTION', `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------------------------
// Header encoding and checks

interface Header {
  index: number;
  term: number;
  voters: number[];
  membership?: SnapshotMembership;
  dataBytes: number;
  dataCrc: number;
  metaBytes: number;
  headerCrc: number;
}

function putU64(b: Buffer, offset: number, n: number): void {
  b.writeUInt32LE(n % 2 ** 32, offset);
  b.writeUInt32LE(Math.floor(n / 2 ** 32), offset + 4);
}

/** null when the value is past 2^53 (only damage or a foreign writer produces that). */
function getU64(b: Buffer, offset: number): number | null {
  const hi = b.readUInt32LE(offset + 4);
  return hi > 0x1f_ffff ? null : hi * 2 ** 32 + b.readUInt32LE(offset);
}

/** Bytes of the meta block `meta` is recorded with (the format follows from it). */
function metaBytesOf(meta: SnapshotMeta): number {
  const m = meta.membership;
  if (m === undefined) return 4 + 4 * meta.voters.length;
  return 4 + membershipLists.reduce((n, name) => n + 4 + 4 * m[name].length, 0);
}

function encodeMetaBlock(meta: SnapshotMeta, out: Buffer): void {
  let o = 0;
  const list = (ids: readonly number[]) => {
    out.writeUInt32LE(ids.length, o);
    ids.forEach((id, i) => out.writeUInt32LE(id, o + 4 + 4 * i));
    o += 4 + 4 * ids.length;
  };
  const m = meta.membership;
  if (m === undefined) return list(meta.voters);
  out.writeUInt32LE(m.autoLeave ? 1 : 0, 0);
  o = 4;
  for (const name of membershipLists) list(m[name]);
}

/** Header and meta block, ready to write at offset 0; returns them with the headerCrc. */
function encodeHead(meta: SnapshotMeta, dataBytes: number, dataCrc: number): { head: Buffer; headerCrc: number } {
  const metaBytes = metaBytesOf(meta);
  const head = Buffer.alloc(headerBytes + metaBytes);
  magic.copy(head, at.magic);
  head.writeUInt32LE(meta.membership === undefined ? formatVersionVoters : snapshotFormatVersion, at.version);
  putU64(head, at.index, meta.index);
  putU64(head, at.term, meta.term);
  putU64(head, at.dataBytes, dataBytes);
  head.writeUInt32LE(dataCrc >>> 0, at.dataCrc);
  head.writeUInt32LE(metaBytes, at.metaBytes);
  encodeMetaBlock(meta, head.subarray(headerBytes));
  const headerCrc = crc32(head.subarray(headerBytes), crc32(head.subarray(0, at.headerCrc)));
  head.writeUInt32LE(headerCrc, at.headerCrc);
  return { head, headerCrc };
}

/** The voters (version 1) or the whole configuration (version 2) of a checked meta block; a string says what is damaged. */
function decodeMetaBlock(version: number, block: Buffer): { voters: number[]; membership?: SnapshotMembership } | string {
  let o = 0;
  const list = (what: string): number[] | string => {
    if (o + 4 > block.length) return `damaged meta block: it ends before the ${what} list`;
    const count = block.readUInt32LE(o);
    if (count > votersMax || o + 4 + 4 * count > block.length) return `damaged meta block: ${count} ${what} do not fit in ${block.length} bytes`;
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(block.readUInt32LE(o + 4 + 4 * i));
    o += 4 + 4 * count;
    return ids;
  };
  if (version === formatVersionVoters) {
    const voters = list('voters');
    if (typeof voters === 'string') return voters;
    return o === block.length ? { voters } : `damaged meta block: ${voters.length} voters do not fill ${block.length} bytes`;
  }
  const flags = block.readUInt32LE(0);
  if (flags > 1) return `damaged meta block: unknown membership flags ${hex(flags)}`;
  o = 4;
  const lists: number[][] = [];
  for (const name of membershipLists) {
    const ids = list(name);
    if (typeof ids === 'string') return ids;
    lists.push(ids);
  }
  if (o !== block.length) return `damaged meta block: the membership lists do not fill ${block.length} bytes`;
  const [voters, outgoing, learners, witnesses] = lists as [number[], number[], number[], number[]];
  return { voters, membership: { voters: [...voters], outgoing, learners, witnesses, autoLeave: flags === 1 } };
}

type Inspected = { ok: true; header: Header } | { ok: false; detail: string };

/** Reads and checks the header and meta block of an open file; with `wholeFile` also the size
 * and the image checksum. Damage is an answer ({ ok: false }); only I/O errors throw. */
function inspect(files: Files, fd: number, file: string, fileBytes: number, wholeFile: boolean): Inspected {
  const bad = (detail: string): Inspected => ({ ok: false, detail });
  if (fileBytes < headerBytes) return bad(`truncated: ${fileBytes} bytes, shorter than the ${headerBytes}-byte header`);
  const head = Buffer.alloc(headerBytes);
  files.readAt(fd, head, 0, file);
  if (!head.subarray(0, magic.length).equals(magic)) {
    return bad(`not a concur snapshot: the file does not start with "${magic.toString('ascii')}"`);
  }
  const version = head.readUInt32LE(at.version);
  if (version > snapshotFormatVersion) {
    return bad(`written by snapshot format version ${version}; this build reads versions up to ${snapshotFormatVersion} — run a newer concur`);
  }
  if (version !== formatVersionVoters && version !== snapshotFormatVersion) return bad(`unknown snapshot format version ${version}`);
  const metaBytes = head.readUInt32LE(at.metaBytes);
  if (metaBytes < 4 || metaBytes > metaBytesMaxOf(version) || metaBytes % 4 !== 0) {
    return bad(`damaged header: meta block size ${metaBytes} is not a multiple of 4 from 4 to ${metaBytesMaxOf(version)} (at most ${votersMax} ids per list)`);
  }
  if (headerBytes + metaBytes > fileBytes) {
    return bad(`truncated: ${fileBytes} bytes, but the header says a ${metaBytes}-byte meta block follows it`);
  }
  const metaBlock = Buffer.alloc(metaBytes);
  files.readAt(fd, metaBlock, headerBytes, file);
  const stored = head.readUInt32LE(at.headerCrc);
  const computed = crc32(metaBlock, crc32(head.subarray(0, at.headerCrc)));
  if (stored !== computed) {
    return bad(`header checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)}): the header or the meta block is damaged`);
  }
  // Past the checksum, odd values mean a buggy writer rather than a flipped bit.
  const index = getU64(head, at.index);
  const term = getU64(head, at.term);
  const dataBytes = getU64(head, at.dataBytes);
  if (index === null || term === null || term > termMax || dataBytes === null) {
    return bad('damaged header: index, term or dataBytes out of range');
  }
  if (head.readUInt32LE(at.flags) !== 0) return bad(`unknown header flags ${hex(head.readUInt32LE(at.flags))}`);
  const meta = decodeMetaBlock(version, metaBlock);
  if (typeof meta === 'string') return bad(meta);
  const header: Header = { index, term, ...meta, dataBytes, dataCrc: head.readUInt32LE(at.dataCrc), metaBytes, headerCrc: stored };
  if (!wholeFile) return { ok: true, header };

  const expectBytes = headerBytes + metaBytes + dataBytes;
  if (fileBytes < expectBytes) return bad(`truncated: ${fileBytes} bytes, the header says ${expectBytes}`);
  if (fileBytes > expectBytes) return bad(`${fileBytes - expectBytes} bytes longer than the header says (${expectBytes})`);
  const piece = Buffer.allocUnsafe(Math.min(verifyPieceBytes, Math.max(1, dataBytes)));
  let crc = 0;
  for (let done = 0; done < dataBytes; ) {
    const len = Math.min(piece.length, dataBytes - done);
    files.readAt(fd, piece.subarray(0, len), headerBytes + metaBytes + done, file);
    crc = crc32(piece.subarray(0, len), crc);
    done += len;
  }
  if (crc !== header.dataCrc) {
    return bad(`data checksum mismatch (stored ${hex(header.dataCrc)}, computed ${hex(crc)}): the image is damaged`);
  }
  return { ok: true, header };
}

function infoOf(name: string, fileBytes: number, h: Header): SnapshotInfo {
  const info: SnapshotInfo = { name, index: h.index, term: h.term, voters: h.voters, fileBytes, dataBytes: h.dataBytes, headerCrc: h.headerCrc };
  if (h.membership !== undefined) info.membership = h.membership;
  return info;
}

// ---------------------------------------------------------------------------------------------
// Synchronous file helpers: every fs error leaves here as StorageError 'FAILED' naming the file

function failed(op: string, file: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new StorageError('FAILED', `snapshot store: ${op} ${file} failed: ${why}`, { cause: e });
}

const isMissing = (e: unknown): boolean =>
  (e as NodeJS.ErrnoException | null)?.code === 'ENOENT' ||
  ((e as { cause?: NodeJS.ErrnoException } | null)?.cause?.code === 'ENOENT');

function io<T>(op: string, file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw failed(op, file, e);
  }
}

/** The store's synchronous file calls, on the FileSystem it was opened with. */
class Files {
  constructor(readonly fs: FileSystem) {}

  /** Fills `buf` from `position`; a short file is an error here because callers checked the size first. */
  readAt(fd: number, buf: Uint8Array, position: number, file: string): void {
    let done = 0;
    while (done < buf.length) {
      const n = io('read', file, () => this.fs.readSync(fd, buf, done, buf.length - done, position + done));
      if (n === 0) throw new StorageError('FAILED', `snapshot store: read ${file} failed: the file ended at ${position + done} bytes while being read`);
      done += n;
    }
  }

  writeAt(fd: number, buf: Uint8Array, position: number, file: string): void {
    let done = 0;
    while (done < buf.length) done += io('write', file, () => this.fs.writeSync(fd, buf, done, buf.length - done, position + done));
  }

  closeQuietly(fd: number): void {
    try {
      this.fs.closeSync(fd);
    } catch {
      // Closing only frees the descriptor here; the data was already synced or is being thrown away.
    }
  }

  unlinkIfPresent(file: string): void {
    try {
      this.fs.unlinkSync(file);
    } catch (e) {
      if (!isMissing(e)) throw failed('delete', file, e);
    }
  }

  /** A rename or unlink survives a crash only once the directory itself is synced. */
  fsyncDir(dir: string): void {
    io('fsync directory', dir, () => fsyncDir(dir, this.fs));
  }

  withFile<T>(file: string, flags: OpenFlags, f: (fd: number) => T): T {
    const fd = io('open', file, () => this.fs.openSync(file, flags));
    try {
      return f(fd);
    } finally {
      this.closeQuietly(fd);
    }
  }

  /** Read-write, created when missing, never truncated (O_RDWR | O_CREAT without a numeric flag:
   * the FileSystem interface speaks the string modes only). */
  openOrCreate(file: string): number {
    try {
      return this.fs.openSync(file, 'r+');
    } catch (e) {
      if (!isMissing(e)) throw failed('open', file, e);
    }
    return io('create', file, () => this.fs.openSync(file, 'wx+'));
  }
}

// ---------------------------------------------------------------------------------------------
// Writer: streams an image to `<name>.tmp` with async I/O, then header, fsync, rename, fsync dir

export interface SnapshotWriter {
  readonly meta: SnapshotMeta;
  /** Appends image bytes (the caller may reuse nothing it passed until the promise settles). */
  write(bytes: Uint8Array): Promise<void>;
  /** Writes the header, fsyncs the file, renames it into place, fsyncs the directory. */
  commit(): Promise<SnapshotInfo>;
  /** Closes and deletes the temporary file (safe to call after a failure, or twice). */
  abort(): Promise<void>;
}

class FileSnapshotWriter implements SnapshotWriter {
  readonly meta: SnapshotMeta;
  private readonly name: string;
  private readonly tmp: string;
  private readonly handle: Promise<FileHandle>;
  private state: 'open' | 'committing' | 'committed' | 'commit failed' | 'aborted' = 'open';
  private dataBytes = 0;
  private dataCrc = 0;
  private pending = 0;
  /** Settles (never rejects) when every write issued so far has settled. */
  private drained: Promise<void> = Promise.resolve();
  private failure: StorageError | null = null;
  private committing: Promise<SnapshotInfo> | null = null;
  private aborting: Promise<void> | null = null;
  private handleClosed = false;

  constructor(
    private readonly dir: string,
    meta: SnapshotMeta,
    private readonly release: () => void,
  ) {
    this.meta = meta;
    this.name = snapshotFileName(meta.index, meta.term);
    this.tmp = path.join(dir, `${this.name}.tmp`);
    // 'w' truncates a stale temp file of the same name left by a writer that was never aborted.
    this.handle = fsp.open(this.tmp, 'w').catch((e: unknown) => {
      throw this.fail('create', e);
    });
    // Handled here so a failed open is reported by write/commit, not as an unhandled rejection.
    this.handle.catch(() => {});
  }

  private fail(op: string, e: unknown): StorageError {
    this.failure ??= failed(op, this.tmp, e);
    return this.failure;
  }

  private refuseUnlessOpen(call: string): StorageError | null {
    if (this.state !== 'open') {
      const after = this.state === 'aborted' ? 'abort()' : this.state === 'commit failed' ? 'a failed commit()' : 'commit()';
      return new StorageError('CLOSED', `snapshot writer ${this.name}: ${call} after ${after}; create a new writer`);
    }
    if (this.failure) {
      return new StorageError('FAILED', `snapshot writer ${this.name} failed earlier (${this.failure.message}); abort() it and write the snapshot again`, {
        cause: this.failure,
      });
    }
    return null;
  }

  write(bytes: Uint8Array): Promise<void> {
    const refused = this.refuseUnlessOpen('write()');
    if (refused) return Promise.reject(refused);
    if (!(bytes instanceof Uint8Array)) {
      return Promise.reject(new StorageError('BAD_OPTION', `snapshot writer ${this.name}: write() expects a Uint8Array of image bytes`));
    }
    // Position and checksum are taken now, in call order, so concurrent writes land in order.
    const position = headerBytes + metaBytesOf(this.meta) + this.dataBytes;
    this.dataBytes += bytes.length;
    this.dataCrc = crc32(bytes, this.dataCrc);
    this.pending++;
    const done = this.writeAt(bytes, position).finally(() => this.pending--);
    const before = this.drained;
    this.drained = Promise.all([before, done.catch(() => {})]).then(() => {});
    return done;
  }

  private async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    const h = await this.handle;
    try {
      for (let off = 0; off < bytes.length; ) {
        const { bytesWritten } = await h.write(bytes, off, bytes.length - off, position + off);
        off += bytesWritten;
      }
    } catch (e) {
      throw this.fail('write', e);
    }
  }

  commit(): Promise<SnapshotInfo> {
    const refused = this.refuseUnlessOpen('commit()');
    if (refused) return Promise.reject(refused);
    if (this.pending > 0) {
      return Promise.reject(
        new StorageError('BAD_OPTION', `snapshot writer ${this.name}: commit() called with ${this.pending} write() call(s) still pending; await every write() first`),
      );
    }
    this.state = 'committing';
    this.committing = this.finish();
    return this.committing;
  }

  private async finish(): Promise<SnapshotInfo> {
    const { head, headerCrc } = encodeHead(this.meta, this.dataBytes, this.dataCrc);
    const final = path.join(this.dir, this.name);
    try {
      const h = await this.handle;
      let op = 'write header of';
      try {
        for (let off = 0; off < head.length; ) off += (await h.write(head, off, head.length - off, off)).bytesWritten;
        op = 'fsync';
        await h.sync();
        op = 'close';
        this.handleClosed = true;
        await h.close();
        op = `rename to ${this.name}`;
        await fsp.rename(this.tmp, final);
      } catch (e) {
        throw this.fail(op, e);
      }
    } catch (e) {
      this.state = 'commit failed';
      await this.cleanUp();
      this.release();
      throw e;
    }
    this.state = 'committed';
    this.release();
    // The file is complete and in place; a failed directory fsync only leaves its name not yet durable.
    try {
      const d = await fsp.open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (e) {
      throw failed('fsync directory', this.dir, e);
    }
    const fileBytes = head.length + this.dataBytes;
    return { ...copyMeta(this.meta), name: this.name, fileBytes, dataBytes: this.dataBytes, headerCrc };
  }

  /** Closes the handle and deletes the temp file; errors are swallowed because the caller is
   * already on a failure path or throwing the file away. */
  private async cleanUp(): Promise<void> {
    await this.drained;
    if (!this.handleClosed) {
      this.handleClosed = true;
      try {
        await (await this.handle).close();
      } catch {
        // The open failed or the descriptor is already gone: nothing left to close.
      }
    }
    try {
      await fsp.unlink(this.tmp);
    } catch {
      // Missing already, or undeletable: open() removes leftover temp files next time.
    }
  }

  abort(): Promise<void> {
    this.aborting ??= (async () => {
      // A commit in flight decides: once it succeeded the snapshot stays, abort does nothing.
      if (this.committing) await this.committing.catch(() => {});
      if (this.state !== 'open') return;
      this.state = 'aborted';
      await this.cleanUp();
      this.release();
    })();
    return this.aborting;
  }
}

// ---------------------------------------------------------------------------------------------
// Receiver: the leader's file bytes, written in order into a partial file that survives restarts

export interface SnapshotReceiver {
  /** Bytes [0, have) of the expected file are already on disk (after a restart, from the partial file). */
  readonly have: number;
  /** Writes bytes at `offset` if offset === have (synchronously, no fsync); ignores anything else. Returns the new `have`. */
  write(offset: number, bytes: Uint8Array): number;
  /** When have === fileBytes: fsync, verify (the header must match `expect`), rename to the final
   * snapshot name, fsync the directory; returns its info. Throws StorageError 'BAD_FORMAT' (and
   * deletes the partial file) when the bytes do not verify. */
  complete(): SnapshotInfo;
  /** Deletes the partial file. */
  discard(): void;
}

interface Expect {
  index: number;
  term: number;
  fileBytes: number;
  headerCrc: number;
}

class FileSnapshotReceiver implements SnapshotReceiver {
  private haveBytes: number;
  private fd: number;
  private state: 'receiving' | 'done' | 'superseded';
  private readonly partial: string;
  private readonly name: string;

  constructor(
    private readonly files: Files,
    private readonly dir: string,
    private readonly expect: Expect,
    private readonly installed: SnapshotInfo | null,
    private readonly onDone: (r: FileSnapshotReceiver) => void,
  ) {
    this.name = snapshotFileName(expect.index, expect.term);
    this.partial = path.join(dir, partialFileName(expect.index, expect.term, expect.fileBytes, expect.headerCrc));
    if (installed) {
      this.fd = -1;
      this.haveBytes = expect.fileBytes;
      this.state = 'receiving';
      return;
    }
    this.fd = files.openOrCreate(this.partial);
    try {
      const size = io('stat', this.partial, () => files.fs.fstatSync(this.fd).size);
      if (size > expect.fileBytes) io('truncate', this.partial, () => files.fs.ftruncateSync(this.fd, expect.fileBytes));
      this.haveBytes = Math.min(size, expect.fileBytes);
    } catch (e) {
      files.closeQuietly(this.fd);
      throw e;
    }
    this.state = 'receiving';
  }

  get have(): number {
    return this.haveBytes;
  }

  private refuseUnlessReceiving(call: string): void {
    if (this.state === 'superseded') {
      throw new StorageError('CLOSED', `snapshot receiver for ${this.name}: ${call} after a newer receive() replaced it; use the newer receiver`);
    }
    if (this.state === 'done') {
      throw new StorageError('CLOSED', `snapshot receiver for ${this.name}: ${call} after complete() or discard(); call receive() again`);
    }
  }

  write(offset: number, bytes: Uint8Array): number {
    this.refuseUnlessReceiving('write()');
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || !(bytes instanceof Uint8Array)) {
      throw new StorageError('BAD_OPTION', `snapshot receiver for ${this.name}: write(offset, bytes) expects an integer offset ≥ 0 and a Uint8Array`);
    }
    // Duplicates and chunks from before a restart arrive routinely; the sender resends from `have`.
    if (offset !== this.have || this.fd < 0) return this.have;
    if (offset + bytes.length > this.expect.fileBytes) {
      throw new StorageError(
        'BAD_OPTION',
        `snapshot receiver for ${this.name}: chunk [${offset}, ${offset + bytes.length}) goes past the expected file size ${this.expect.fileBytes}; the sender and the expect given to receive() disagree`,
      );
    }
    this.files.writeAt(this.fd, bytes, offset, this.partial);
    this.haveBytes += bytes.length;
    return this.haveBytes;
  }

  complete(): SnapshotInfo {
    this.refuseUnlessReceiving('complete()');
    if (this.installed) {
      this.finish();
      return this.installed;
    }
    if (this.have !== this.expect.fileBytes) {
      throw new StorageError('BAD_OPTION', `snapshot receiver for ${this.name}: complete() needs all ${this.expect.fileBytes} bytes, have ${this.have}`);
    }
    let result: Inspected;
    try {
      io('fsync', this.partial, () => this.files.fs.fsyncSync(this.fd));
      result = inspect(this.files, this.fd, this.partial, this.have, true);
    } catch (e) {
      this.finish();
      throw e;
    }
    this.finish();
    const detail = result.ok ? this.mismatch(result.header) : result.detail;
    if (!result.ok || detail !== null) {
      this.files.unlinkIfPresent(this.partial);
      throw new StorageError('BAD_FORMAT', `received snapshot ${this.name} does not verify (${detail}); the partial file was deleted, receive it again`);
    }
    const final = path.join(this.dir, this.name);
    io(`rename to ${this.name}`, this.partial, () => this.files.fs.renameSync(this.partial, final));
    this.files.fsyncDir(this.dir);
    return infoOf(this.name, this.have, result.header);
  }

  /** What differs between the received header and what receive() was told to expect. */
  private mismatch(h: Header): string | null {
    const e = this.expect;
    if (h.index !== e.index || h.term !== e.term) return `it holds index ${h.index} term ${h.term}, expected index ${e.index} term ${e.term}`;
    if (h.headerCrc !== e.headerCrc) return `its headerCrc is ${hex(h.headerCrc)}, expected ${hex(e.headerCrc)}`;
    return null;
  }

  discard(): void {
    if (this.state === 'done') return;
    const wasReceiving = this.state === 'receiving';
    this.finish();
    // A superseded receiver's partial may be the newer receiver's file; an installed one has none.
    if (wasReceiving && !this.installed) this.files.unlinkIfPresent(this.partial);
  }

  private finish(): void {
    if (this.fd >= 0) this.files.closeQuietly(this.fd);
    this.fd = -1;
    if (this.state === 'receiving') this.onDone(this);
    this.state = 'done';
  }

  /** Called by the store when a newer receive() takes over; keeps the file, drops the descriptor. */
  supersede(): void {
    if (this.fd >= 0) this.files.closeQuietly(this.fd);
    this.fd = -1;
    this.state = 'superseded';
  }
}

// ---------------------------------------------------------------------------------------------
// The store

export class SnapshotStore {
  readonly dir: string;
  /** Names with a writer still open: two writers on one temp file would interleave their bytes. */
  private readonly writing = new Set<string>();
  private receiver: FileSnapshotReceiver | null = null;
  private readonly files: Files;
  private readonly fs: FileSystem;

  private constructor(dir: string, fs: FileSystem) {
    this.dir = dir;
    this.fs = fs;
    this.files = new Files(fs);
  }

  /** Opens (creating if missing) the directory on `fs` (node:fs unless given, e.g. a SimFs);
   * deletes leftover `*.snap.tmp` files (an interrupted write). */
  static open(dir: string, fs: FileSystem = nodeFs): SnapshotStore {
    if (typeof dir !== 'string' || dir === '') {
      throw new StorageError('BAD_OPTION', `SnapshotStore.open expects a directory path, got ${JSON.stringify(dir)}`);
    }
    checkFileSystem(fs, 'SnapshotStore.open');
    let st: ReturnType<FileSystem['statSync']> | undefined;
    try {
      st = fs.statSync(dir);
    } catch (e) {
      if (!isMissing(e)) throw failed('stat', dir, e);
    }
    if (st && !st.isDirectory()) {
      throw new StorageError('NOT_A_DIRECTORY', `snapshot path ${dir} exists but is not a directory; pass a directory path (it is created if missing)`);
    }
    if (!st) io('create directory', dir, () => fs.mkdirSync(dir, { recursive: true }));
    const store = new SnapshotStore(dir, fs);
    for (const name of store.names()) if (tmpPattern.test(name)) store.files.unlinkIfPresent(path.join(dir, name));
    return store;
  }

  private names(): string[] {
    return io('list directory', this.dir, () => this.fs.readdirSync(this.dir));
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Complete snapshot files, newest first (by index, then term). Reads headers only; a file whose header
   *  is unreadable is still listed with what the name says, so verify() can report it. Never throws for damage. */
  list(): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    for (const name of this.names()) {
      const parsed = parseSnapName(name);
      if (parsed) out.push(this.headerInfo(name, parsed));
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  private headerInfo(name: string, parsed: { index: number; term: number }): SnapshotInfo {
    const fromName: SnapshotInfo = { name, ...parsed, voters: [], fileBytes: 0, dataBytes: 0, headerCrc: 0 };
    try {
      return this.files.withFile(this.file(name), 'r', (fd) => {
        fromName.fileBytes = this.fs.fstatSync(fd).size;
        const r = inspect(this.files, fd, name, fromName.fileBytes, false);
        const h = r.ok ? r.header : null;
        return h && h.index === parsed.index && h.term === parsed.term ? infoOf(name, fromName.fileBytes, h) : fromName;
      });
    } catch {
      // Unreadable now (permissions, a race with remove): listed by name; verify() says why.
      return fromName;
    }
  }

  /** Reads the whole file and checks magic, version, both CRCs and sizes. A missing file is not ok
   * (detail says so); other I/O errors throw StorageError 'FAILED'. */
  verify(name: string): { ok: true; info: SnapshotInfo } | { ok: false; detail: string } {
    const parsed = checkSnapName(name, 'verify');
    const file = this.file(name);
    let fd: number;
    try {
      fd = this.fs.openSync(file, 'r');
    } catch (e) {
      if (isMissing(e)) return { ok: false, detail: `missing: no file ${name} in ${this.dir}` };
      throw failed('open', file, e);
    }
    try {
      const fileBytes = io('stat', file, () => this.fs.fstatSync(fd).size);
      const r = inspect(this.files, fd, file, fileBytes, true);
      if (!r.ok) return r;
      const h = r.header;
      if (h.index !== parsed.index || h.term !== parsed.term) {
        return { ok: false, detail: `the header holds index ${h.index} term ${h.term} but the name says index ${parsed.index} term ${parsed.term}` };
      }
      return { ok: true, info: infoOf(name, fileBytes, h) };
    } finally {
      this.files.closeQuietly(fd);
    }
  }

  /** Starts writing a snapshot: data is streamed to `<name>.tmp` with async file I/O (fs.promises), so the
   *  caller's thread keeps working while the image is written. Real disks only: a store opened on
   *  another FileSystem refuses ('BAD_OPTION'); use writeNow() there. */
  createWriter(meta: SnapshotMeta): SnapshotWriter {
    if (this.fs !== nodeFs) {
      throw new StorageError(
        'BAD_OPTION',
        `createWriter streams with node:fs promises, but this snapshot store in ${this.dir} was opened on another FileSystem (a simulated disk?); use writeNow(meta, pieces) instead`,
      );
    }
    const checked = checkMeta(meta, 'createWriter');
    const name = this.claim(checked);
    return new FileSnapshotWriter(this.dir, checked, () => this.writing.delete(name));
  }

  /** The file name of `meta`, marked as being written: two writers on one temp file would
   * interleave their bytes. */
  private claim(meta: SnapshotMeta): string {
    const name = snapshotFileName(meta.index, meta.term);
    if (this.writing.has(name)) {
      throw new StorageError('BAD_OPTION', `a writer for ${name} is still open; commit() or abort() it before creating another`);
    }
    this.writing.add(name);
    return name;
  }

  /** Writes a whole snapshot synchronously, on any FileSystem: the same file and the same steps as
   * createWriter (image to `<name>.tmp`, then the header, fsync, rename, fsync the directory).
   * `pieces` are the image in order, as an iterable or as openData-style `next()` returning null
   * at the end. On failure the temp file is deleted and the error thrown ('FAILED' for I/O). */
  writeNow(meta: SnapshotMeta, pieces: Iterable<Uint8Array> | { next(): Uint8Array | null }): SnapshotInfo {
    const checked = checkMeta(meta, 'writeNow');
    if (pieces === null || typeof pieces !== 'object') {
      throw new StorageError('BAD_OPTION', 'writeNow expects the image as an iterable of Uint8Array, or { next(): Uint8Array | null }');
    }
    const name = this.claim(checked);
    try {
      return this.writeFile(checked, name, pieces);
    } finally {
      this.writing.delete(name);
    }
  }

  private writeFile(meta: SnapshotMeta, name: string, pieces: Iterable<Uint8Array> | { next(): Uint8Array | null }): SnapshotInfo {
    const tmp = this.file(`${name}.tmp`);
    // 'w' truncates a stale temp file of the same name, as the asynchronous writer does.
    const fd = io('create', tmp, () => this.fs.openSync(tmp, 'w'));
    let dataBytes = 0;
    let headerCrc: number;
    let fileBytes: number;
    try {
      const dataStart = headerBytes + metaBytesOf(meta);
      let dataCrc = 0;
      const add = (piece: unknown): void => {
        if (!(piece instanceof Uint8Array)) {
          throw new StorageError('BAD_OPTION', `writeNow ${name}: every piece of the image must be a Uint8Array, got ${piece === null ? 'null' : typeof piece}`);
        }
        this.files.writeAt(fd, piece, dataStart + dataBytes, tmp);
        dataCrc = crc32(piece, dataCrc);
        dataBytes += piece.length;
      };
      if (Symbol.iterator in pieces) for (const piece of pieces) add(piece);
      else for (let piece = pieces.next(); piece !== null; piece = pieces.next()) add(piece);
      const head = encodeHead(meta, dataBytes, dataCrc);
      headerCrc = head.headerCrc;
      fileBytes = head.head.length + dataBytes;
      this.files.writeAt(fd, head.head, 0, tmp);
      io('fsync', tmp, () => this.fs.fsyncSync(fd));
      io('close', tmp, () => this.fs.closeSync(fd));
    } catch (e) {
      this.files.closeQuietly(fd);
      try {
        this.fs.unlinkSync(tmp);
      } catch {
        // Already on a failure path; open() removes leftover temp files next time.
      }
      throw e;
    }
    io(`rename to ${name}`, tmp, () => this.fs.renameSync(tmp, this.file(name)));
    this.files.fsyncDir(this.dir);
    return { ...copyMeta(meta), name, fileBytes, dataBytes, headerCrc };
  }

  /** Reads the app image of a snapshot piece by piece (synchronous reads of `pieceBytes`, default
   * 1 MiB). Each piece is a fresh array the caller may keep. The image checksum is checked as it
   * is read: the call that would return null throws StorageError 'BAD_FORMAT' instead if it
   * does not match, so a caller must not act on the image before reaching the end. */
  openData(name: string, pieceBytes: number = pieceBytesDefault): { next(): Uint8Array | null; close(): void } {
    const parsed = checkSnapName(name, 'openData');
    checkCount('openData pieceBytes', pieceBytes, 1, pieceBytesMax);
    const file = this.file(name);
    const files = this.files;
    const fd = io('open', file, () => files.fs.openSync(file, 'r'));
    let header: Header;
    try {
      const r = inspect(files, fd, file, io('stat', file, () => files.fs.fstatSync(fd).size), false);
      if (!r.ok) throw new StorageError('BAD_FORMAT', `snapshot ${name} cannot be read: ${r.detail}`);
      header = r.header;
      if (header.index !== parsed.index || header.term !== parsed.term) {
        throw new StorageError('BAD_FORMAT', `snapshot ${name} cannot be read: its header holds index ${header.index} term ${header.term}`);
      }
    } catch (e) {
      files.closeQuietly(fd);
      throw e;
    }
    const start = headerBytes + header.metaBytes;
    let done = 0;
    let crc = 0;
    let state: 'reading' | 'ended' | 'closed' = 'reading';
    const close = (): void => {
      if (state === 'reading') files.closeQuietly(fd);
      if (state !== 'ended') state = 'closed';
    };
    return {
      next(): Uint8Array | null {
        if (state === 'ended') return null;
        if (state === 'closed') throw new StorageError('CLOSED', `openData(${name}): next() after close(); open it again`);
        try {
          if (done === header.dataBytes) {
            if (crc !== header.dataCrc) {
              throw new StorageError('BAD_FORMAT', `snapshot ${name}: data checksum mismatch (stored ${hex(header.dataCrc)}, computed ${hex(crc)}); the image is damaged — discard what was read`);
            }
            files.closeQuietly(fd);
            state = 'ended';
            return null;
          }
          const piece = new Uint8Array(Math.min(pieceBytes, header.dataBytes - done));
          const n = io('read', file, () => files.fs.readSync(fd, piece, 0, piece.length, start + done));
          if (n === 0) throw new StorageError('BAD_FORMAT', `snapshot ${name}: truncated, the image ends after ${done} of ${header.dataBytes} bytes`);
          done += n;
          const out = n === piece.length ? piece : piece.subarray(0, n);
          crc = crc32(out, crc);
          return out;
        } catch (e) {
          close();
          throw e;
        }
      },
      close,
    };
  }

  /** Raw bytes [offset, offset+length) of a snapshot file (clamped at its end), for sending it to a peer. */
  readRaw(name: string, offset: number, length: number): Uint8Array {
    checkSnapName(name, 'readRaw');
    checkCount('readRaw offset', offset, 0, Number.MAX_SAFE_INTEGER);
    checkCount('readRaw length', length, 0, rawBytesMax);
    const file = this.file(name);
    return this.files.withFile(file, 'r', (fd) => {
      const size = io('stat', file, () => this.fs.fstatSync(fd).size);
      const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      this.files.readAt(fd, out, offset, file);
      return out;
    });
  }

  /** Deletes complete snapshots beyond the `keep` newest (keep >= 1); returns the names removed.
   * Damaged files count like any other: prune goes by name only. fsyncs the dir when it removed something. */
  prune(keep: number): string[] {
    checkCount('prune keep', keep, 1, Number.MAX_SAFE_INTEGER);
    const old = this.list()
      .slice(keep)
      .map((s) => s.name);
    for (const name of old) this.files.unlinkIfPresent(this.file(name));
    if (old.length > 0) this.files.fsyncDir(this.dir);
    return old;
  }

  /** Deletes one snapshot file (already gone is fine). */
  remove(name: string): void {
    checkSnapName(name, 'remove');
    this.files.unlinkIfPresent(this.file(name));
    this.files.fsyncDir(this.dir);
  }

  /** A partial file being received from a peer. Reuses the partial file with exactly this expect
   * (resuming at its size) and deletes every other one: one transfer at a time per node. An
   * earlier receiver from this store stops working (its calls throw 'CLOSED'). */
  receive(expect: { index: number; term: number; fileBytes: number; headerCrc: number }): SnapshotReceiver {
    if (expect === null || typeof expect !== 'object') {
      throw new StorageError('BAD_OPTION', 'receive expects { index, term, fileBytes, headerCrc }');
    }
    checkIndexTerm(expect.index, expect.term, 'receive');
    checkCount('receive fileBytes', expect.fileBytes, headerBytes + 4, Number.MAX_SAFE_INTEGER);
    checkCount('receive headerCrc', expect.headerCrc, 0, 0xffff_ffff);
    const e: Expect = { index: expect.index, term: expect.term, fileBytes: expect.fileBytes, headerCrc: expect.headerCrc };
    const mine = partialFileName(e.index, e.term, e.fileBytes, e.headerCrc);
    const name = snapshotFileName(e.index, e.term);
    // Already installed (the transfer finished before a restart): nothing left to receive.
    const v = this.verify(name);
    const installed = v.ok && v.info.headerCrc === e.headerCrc && v.info.fileBytes === e.fileBytes ? v.info : null;
    this.receiver?.supersede();
    this.receiver = null;
    for (const other of this.names()) {
      if (recvPattern.test(other) && (other !== mine || installed)) this.files.unlinkIfPresent(this.file(other));
    }
    const r = new FileSnapshotReceiver(this.files, this.dir, e, installed, (done) => {
      if (this.receiver === done) this.receiver = null;
    });
    this.receiver = r;
    return r;
  }

  /** Every partial receive file present (to resume, or to clean up). */
  partials(): { name: string; index: number; term: number; fileBytes: number; headerCrc: number; have: number }[] {
    const out: { name: string; index: number; term: number; fileBytes: number; headerCrc: number; have: number }[] = [];
    for (const name of this.names()) {
      const m = recvPattern.exec(name);
      if (!m) continue;
      const [index, term, fileBytes] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (!Number.isSafeInteger(index) || term > termMax || !Number.isSafeInteger(fileBytes)) continue;
      let size: number;
      try {
        size = this.fs.statSync(this.file(name)).size;
      } catch (e) {
        if (isMissing(e)) continue;
        throw failed('stat', this.file(name), e);
      }
      out.push({ name, index, term, fileBytes, headerCrc: parseInt(m[4]!, 16), have: Math.min(size, fileBytes) });
    }
    return out;
  }
}
