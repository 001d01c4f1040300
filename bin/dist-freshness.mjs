// Whether dist/ holds a build of the sources as they are now. The build (scripts/build.mjs) writes
// dist/build-info.json last: when it started and the files it compiled or copied. A file modified
// after that start makes the build stale. Only mtimes are read (one stat per source file, a few
// milliseconds), so bin/concur.mjs checks on every run.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const buildInfoFile = 'build-info.json';

/** null when `dist` is a complete build no source under `root` is newer than; else why not. */
export function whyNotFresh(root, dist = join(root, 'dist')) {
  let info;
  try {
    info = JSON.parse(readFileSync(join(dist, buildInfoFile), 'utf8'));
  } catch {
    return `no complete build in ${dist}`;
  }
  if (!Number.isFinite(info?.startedAtMs) || !Array.isArray(info.sources)) return `${join(dist, buildInfoFile)} is not a build record`;
  for (const source of info.sources) {
    // A source that is gone counts as unchanged: whatever imported it changed too, and an
    // installed package may ship dist/ without every source.
    const stat = statSync(join(root, source), { throwIfNoEntry: false });
    if (stat !== undefined && stat.mtimeMs > info.startedAtMs) return `${source} changed since the build`;
  }
  return null;
}
