// The synchronous file operations concur's stores (WAL, snapshot files, directory fsync) make, as
// an interface a simulated disk can implement; node:fs satisfies it as is. It must stay the
// smallest set those stores call, and never grow operations a store does not use.
import * as fs from 'node:fs';
import { StorageError } from './rules.ts';

/** The open modes the stores use: read, read-write existing, write (create or truncate),
 * read-write exclusive create. A simulated disk supports exactly these. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx+';

export interface FileStats {
  isDirectory(): boolean;
  isFile(): boolean;
  size: number;
}

/** Errors are Node's: an Error whose `code` is 'ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'EBADF'...,
 * because the stores branch on `code`. */
export interface FileSystem {
  statSync(path: string): FileStats;
  fstatSync(fd: number): { size: number };
  mkdirSync(path: string, options?: { recursive?: boolean }): unknown;
  readdirSync(path: string): string[];
  readFileSync(path: string): Buffer;
  openSync(path: string, flags: OpenFlags): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fsyncSync(fd: number): void;
  fdatasyncSync(fd: number): void;
  ftruncateSync(fd: number, length: number): void;
  closeSync(fd: number): void;
  unlinkSync(path: string): void;
  renameSync(from: string, to: string): void;
}

/** The real disk. Stores compare against it: only it has an asynchronous side (fs.promises). */
export const nodeFs: FileSystem = fs;

const fileSystemMethods = [
  'statSync',
  'fstatSync',
  'mkdirSync',
  'readdirSync',
  'readFileSync',
  'openSync',
  'readSync',
  'writeSync',
  'fsyncSync',
  'fdatasyncSync',
  'ftruncateSync',
  'closeSync',
  'unlinkSync',
  'renameSync',
] as const satisfies readonly (keyof FileSystem)[];

/** Refuses a `fs` option that is not a FileSystem where it enters, naming what is missing, rather
 * than failing later with "x is not a function" deep inside recovery. */
export function checkFileSystem(value: unknown, where: string): FileSystem {
  if (value === null || typeof value !== 'object') {
    throw new StorageError('BAD_OPTION', `${where}: fs must be a FileSystem object (nodeFs, or a SimFs), got ${value === null ? 'null' : typeof value}`);
  }
  const missing = fileSystemMethods.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw new StorageError('BAD_OPTION', `${where}: fs is not a FileSystem; it lacks ${missing.join(', ')}`);
  }
  return value as FileSystem;
}
