// Making a directory's entries durable (a created, renamed or deleted file name survives a crash
// only once its directory is synced). Shared by every store that creates or removes files.
import * as fs from 'node:fs';

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
