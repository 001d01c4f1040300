#!/usr/bin/env node
// Builds dist/: every source module (runtime/, protocols/, apps/, bench/; no tests) compiled to
// JavaScript one file per module, what the `concur` CLI runs (bin/concur.mjs) and what the
// package's `exports` point at. With --declarations, also the declarations of the public entry
// points (tsconfig.build.json), which tsc checks; the JavaScript is never type-checked here (that
// is `npm run typecheck`), as tsx does not when it runs the sources.
//
// esbuild strips the types file by file, as tsx does for the sources, so compiled and source runs
// execute the same code; every import stays an import (nothing is bundled), with `.ts` rewritten
// to `.js`, and so does a module URL built as `new URL('./x.ts', import.meta.url)` (how the code
// names the module a worker or pool thread starts from). The worker bootstraps (.mjs) and other
// assets are copied beside the code. dist/build-info.json, written last, says when the build
// started and from which files (size and hash): bin/concur.mjs runs dist/ only while they are
// unchanged (bin/dist-freshness.mjs).
//
// Usage: node scripts/build.mjs [--declarations] [--if-stale] [--out DIR]
//   --if-stale      keep DIR when it holds a build of the sources as they are (only adding the
//                   declarations if asked for and missing): what `prepare` and `prepack` run, so
//                   `npm ci` after a build, and `npm pack`, rebuild only what changed
//   --out DIR       build into DIR instead of dist/ (tests build a scratch copy)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildInfoFile, sourceHash, whyNotFresh } from '../bin/dist-freshness.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
/** What the build compiles; tests, examples and bench results are not part of the package's code. */
const sourceDirs = ['runtime', 'protocols', 'apps', 'bench'];
const skippedDirs = new Set(['bench/results', 'node_modules']);
/** The compiler settings the build reads: a change to them makes dist/ stale too. */
const configFiles = ['tsconfig.json'];

let args;
try {
  args = parseArgs({ options: { declarations: { type: 'boolean' }, 'if-stale': { type: 'boolean' }, out: { type: 'string' } } }).values;
} catch (e) {
  process.stderr.write(`build: ${e.message}; usage: node scripts/build.mjs [--declarations] [--if-stale] [--out DIR]\n`);
  process.exit(2);
}
const out = resolve(args.out ?? join(root, 'dist'));

/** Emits the public entry points' declarations (tsconfig.build.json) into `dir`, with tsc. */
function emitDeclarations(dir) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dir], { cwd: root, stdio: 'inherit' });
}
const infoPath = (dir) => join(dir, buildInfoFile);
/** Writes build-info.json whole or not at all: a reader never sees half a record. */
function writeBuildInfo(dir, info) {
  writeFileSync(`${infoPath(dir)}.tmp`, `${JSON.stringify(info)}\n`);
  renameSync(`${infoPath(dir)}.tmp`, infoPath(dir));
}

if (args['if-stale'] && whyNotFresh(root, out) === null) {
  const info = JSON.parse(readFileSync(infoPath(out), 'utf8'));
  if (args.declarations && !info.declarations) {
    // Adds files beside current ones and removes none, so a CLI running from `out` is undisturbed.
    const started = Date.now();
    emitDeclarations(out);
    writeBuildInfo(out, { ...info, declarations: true });
    process.stdout.write(`${relative(root, out) || out} is current; added declarations in ${Date.now() - started} ms\n`);
  } else {
    process.stdout.write(`${relative(root, out) || out} is current; not rebuilt\n`);
  }
  process.exit(0);
}

const startedAtMs = Date.now();

/** Source files under `dir`, relative to the root: modules (.ts, not .d.ts) and assets (the rest). */
function listSources(dir, found = { modules: [], assets: [] }) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!skippedDirs.has(path)) listSources(path, found);
    } else if (/\.d\.[cm]?ts$/.test(entry.name) || entry.name.endsWith('.md')) {
      continue;
    } else if (entry.name.endsWith('.ts')) {
      found.modules.push(path);
    } else {
      found.assets.push(path);
    }
  }
  return found;
}

const { modules, assets } = sourceDirs.reduce((found, dir) => listSources(dir, found), { modules: [], assets: [] });
// Read before compiling: a source edited during the build then differs from its record (stale).
const sources = [...modules, ...assets, ...configFiles].map((path) => {
  const bytes = readFileSync(join(root, path));
  return { path, bytes: bytes.length, sha1: sourceHash(bytes) };
});

/**
 * `new URL('./x.ts', import.meta.url)` names a module a Worker or pool thread loads by URL, which
 * no import rewriting sees; compiled, it must name x.js. Only relative literals are rewritten, and
 * each must name a source module, so a typo fails the build instead of a worker at run time.
 */
const moduleUrl = /new URL\((['"])(\.{1,2}\/[^'"]+)\.ts\1,(\s*)import\.meta\.url\)/g;

function rewriteModuleUrls(path, text) {
  return text.replace(moduleUrl, (_, quote, spec, space) => {
    const target = join(dirname(path), `${spec}.ts`);
    if (!existsSync(target)) throw new Error(`${relative(root, path)}: new URL('${spec}.ts', import.meta.url) names no source module (${relative(root, target)})`);
    return `new URL(${quote}${spec}.js${quote},${space}import.meta.url)`;
  });
}

/** Keeps every import an import of its own module (nothing bundled), naming compiled `.js` files. */
const oneFilePerModule = {
  name: 'one-file-per-module',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (a) => {
      if (a.kind === 'entry-point') return undefined;
      const relativeTs = /^\.{1,2}\//.test(a.path) && /\.[cm]?ts$/.test(a.path);
      return { path: relativeTs ? a.path.replace(/\.([cm]?)ts$/, '.$1js') : a.path, external: true };
    });
    b.onLoad({ filter: /\.ts$/ }, (a) => ({ contents: rewriteModuleUrls(a.path, readFileSync(a.path, 'utf8')), loader: 'ts' }));
  },
};

// Built beside `out` and swapped in whole: a CLI running from `out` (tests run many at once while
// `npm pack` rebuilds) never finds a module missing, only the old build or the new one.
const building = `${out}.building-${process.pid}`;
const retired = `${out}.old-${process.pid}`;
rmSync(building, { recursive: true, force: true });
const { build } = await import('esbuild');
await build({
  entryPoints: modules.map((m) => join(root, m)),
  outdir: building,
  outbase: root,
  // bundle only so that the plugin sees every import; it marks each one external.
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Maps point at the sources (not copied in): coverage (c8) of a CLI run counts the .ts lines,
  // and `node --enable-source-maps` traces name them.
  sourcemap: true,
  sourcesContent: false,
  tsconfig: join(root, 'tsconfig.json'),
  plugins: [oneFilePerModule],
  logLevel: 'warning',
});
for (const a of assets) {
  mkdirSync(dirname(join(building, a)), { recursive: true });
  copyFileSync(join(root, a), join(building, a));
}
if (args.declarations) emitDeclarations(building);
// Last: a build cut short has no build-info, and the CLI runs no partial build.
writeBuildInfo(building, { startedAtMs, declarations: args.declarations === true, sources });
if (existsSync(out)) renameSync(out, retired);
renameSync(building, out);
rmSync(retired, { recursive: true, force: true });
process.stdout.write(`built ${relative(root, out) || out}: ${modules.length} modules, ${assets.length} assets${args.declarations ? ', declarations' : ''} in ${Date.now() - startedAtMs} ms\n`);
