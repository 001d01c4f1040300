// Whether dist/ holds a build of the sources as they are now. The build (scripts/build.mjs) writes
// dist/build-info.json last: when it started, and each file it compiled or copied with its size
// and SHA-1. A source whose mtime is not after that start is unchanged (one stat: the usual case,
// ~1 ms for all). A later mtime alone proves nothing (a checkout, a copy, and npm's install set
// mtimes to their own time), so such a file is read and counts as changed only when its size or
// its hash differs from the build's.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const buildInfoFile = 'build-info.json';

/** The hash build-info.json records for a source's bytes. */
export const sourceHash = (bytes) => createHash('sha1').update(bytes).digest('hex');

/** null when `dist` is a complete build of the sources under `root` as they are; else why not. */
export function whyNotFresh(root, dist = join(root, 'dist')) {
  let info;
  try {
    info = JSON.parse(readFileSync(join(dist, buildInfoFile), 'utf8'));
  } catch {
    return `no complete build in ${dist}`;
  }
  if (!Number.isFinite(info?.startedAtMs) || !Array.isArray(info.sources)) return `${join(dist, buildInfoFile)} is not a build record`;
  for (const { path, bytes, sha1 } of info.sources) {
    // A source that is gone counts as unchanged: whatever imported it changed too, and an
    // installed package may ship dist/ without every source.
    const stat = statSync(join(root, path), { throwIfNoEntry: false });
    if (stat === undefined || stat.mtimeMs <= info.startedAtMs) continue;
    if (stat.size !== bytes || sourceHash(readFileSync(join(root, path))) !== sha1) return `${path} changed since the build`;
  }
  return null;
}
