#!/usr/bin/env node
// The package's bin. Runs the compiled CLI in dist/ (built by `npm ci` / `npm install` through
// the `prepare` script, or `npm run build`): plain Node, no TypeScript compiler at start, in the
// main thread or in any worker. When a source file differs from what that build compiled (edited
// after it, see dist-freshness.mjs) or there is no build, it runs the TypeScript sources through
// tsx instead, as they are: slower, never stale. Rebuilding here instead would race other CLIs
// running from the same dist/ and hold up a command for a build; falling back costs only speed,
// until `npm run build`.
import { fileURLToPath } from 'node:url';
import { whyNotFresh } from './dist-freshness.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const stale = whyNotFresh(root);
let main;
if (stale === null) {
  ({ main } = await import('../dist/apps/cli/main.js'));
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(`concur: cannot run: ${stale}, and tsx (to run the sources) is not installed; run \`npm run build\` in ${root}\n`);
    process.exit(2);
  }
  // Said only to a person at a terminal: scripts and tests read stderr, and the output is the same.
  if (process.stderr.isTTY) process.stderr.write(`concur: running the sources through tsx (${stale}); \`npm run build\` makes the CLI start fast again\n`);
  register();
  ({ main } = await import('../apps/cli/main.ts'));
}
await main(process.argv);
// Every command's work is done when main returns; what may still hold the process is fetch's idle
// keep-alive socket to the API, 0.2-0.5 s after the answer. Exit once stdout and stderr are flushed.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit();
