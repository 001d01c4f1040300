// Making a directory's entries durable (a created, renamed or deleted file name survives a crash
// only once its directory is synced). Shared by every store that creates or removes files; it
// must reach the disk only through the FileSystem it is given.
import { nodeFs, type FileSystem } from './fs.ts';

export function fsyncDir(dir: string, fs: FileSystem = nodeFs): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
