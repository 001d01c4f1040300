// `mkdir -p` one level at a time. Node's `mkdirSync(dir, { recursive: true })` spins forever where
// the file system answers ENOENT for the child and EEXIST for its parent (under /proc, for one):
// walked by hand, that is an error at once.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Creates `dir` and its missing parents; throws the first refusal (a Node error with `code` and `path`). */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!isDirectory(at)) {
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      // Another process may have made it meanwhile.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(d)) continue;
      throw err;
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
