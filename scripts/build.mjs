#!/usr/bin/env node
// Builds dist/, what the package's `exports` point at: tsc compiles the public entry points
// (tsconfig.build.json) to JavaScript and declarations, then the worker bootstrap is copied next
// to the compiled supervisor, which starts its workers from ./worker-boot.mjs and ./actor-host.js
// (it picks .js when it runs compiled itself).
// The bootstrap registers tsx in each worker, so a consumer's actor modules may be .ts or .js.
// Run by `npm run build` and by `npm pack` / `npm publish` (prepack).
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
copyFileSync(join(root, 'runtime/worker-boot.mjs'), join(dist, 'runtime/worker-boot.mjs'));

process.stdout.write('built dist/\n');
