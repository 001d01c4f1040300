// Files a command writes at its end (`chaos --history`): checked before the run, so a path that
// cannot be written fails in one line at once, not with a stack after minutes of work.
import { closeSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from './options.ts';

/** Throws a UsageError naming `flag` unless `path` can be created or overwritten as a file. */
export function checkOutputFile(path: string, flag: string): void {
  let existed = true;
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`${flag} ${path} is a directory; give a file path, e.g. ${path.replace(/\/+$/, '')}/history.jsonl`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    existed = false;
  }
  try {
    // Opened for appending, so an existing file keeps its content until the run writes it.
    closeSync(openSync(path, 'a'));
    if (!existed) unlinkSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const dir = dirname(path);
    const why =
      code === 'ENOENT' || code === 'ENOTDIR' ? `the directory ${dir} does not exist` : code === 'EACCES' || code === 'EPERM' ? 'no permission to write it' : code === 'EROFS' ? 'a read-only file system' : (code ?? (err as Error).message);
    throw new UsageError(`cannot write ${flag} ${path}: ${why}; give a path in an existing directory you can write`);
  }
}
