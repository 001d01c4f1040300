#!/usr/bin/env node
// Runs every test file (**/*.test.ts under the test root) in its own Node process, two at a time,
// and sums uvu's per-file totals into the last line `N passed, N failed` (CI reads that line).
// A file counts its failures from uvu's own summary block only; a file that crashes, hangs past
// its deadline, exits non-zero or prints no summary counts at least one failure, so nothing
// fails silently and no file can subtract from another's failures.
// Usage: node test/run.mjs [substring ...]   (only files whose path contains a substring)
// Environment: CONCUR_TEST_ROOT (directory to search; default this test/ directory),
// CONCUR_TEST_FILE_TIMEOUT_MS, CONCUR_TEST_PARALLEL, CONCUR_TEST_VERBOSE.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testRoot = resolve(process.env.CONCUR_TEST_ROOT ?? join(root, 'test'));
const fileDeadlineMs = Number(process.env.CONCUR_TEST_FILE_TIMEOUT_MS ?? 300_000);
const parallel = Number(process.env.CONCUR_TEST_PARALLEL ?? 2);
const filters = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** A file's name as printed and filtered: from the repo root if inside it, else from the test root. */
function displayName(file) {
  const fromRepo = relative(root, file);
  return fromRepo.startsWith('..') || isAbsolute(fromRepo) ? relative(testRoot, file) : fromRepo;
}

const files = findTests(testRoot).filter((f) => filters.length === 0 || filters.some((s) => displayName(f).includes(s)));

/**
 * uvu's summary, printed once per process after every suite has run. Only a whole block at line
 * starts counts, and only the last one: a test that prints `Total: 99` of its own comes before
 * uvu's block and cannot stand in for it. uvu's Total excludes skipped tests (test.skip only
 * bumps a counter), so failures are Total - Passed.
 */
const summaryBlock = /^ {2}Total: +(\d+)\r?\n {2}Passed: +(\d+)\r?\n {2}Skipped: +(\d+)\r?\n {2}Duration: +\S+/gm;
const ansi = /\x1b\[[0-9;]*m/g;

/** Counts for one file from its stdout and how its process ended; never a negative failure count. */
function countsOf(stdout, exitedClean) {
  let last = null;
  for (const m of stdout.replace(ansi, '').matchAll(summaryBlock)) last = m;
  if (last === null) return { passed: 0, failed: 1, skipped: 0, summary: false };
  const [total, passed, skipped] = [Number(last[1]), Number(last[2]), Number(last[3])];
  let failed = Math.max(0, total - passed);
  if (!exitedClean) failed = Math.max(failed, 1);
  return { passed, failed, skipped, summary: true };
}

function runFile(file) {
  return new Promise((resolveRun) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Both streams together for a person to read; stdout alone for the summary, so stray stderr
    // lines cannot split uvu's block.
    let output = '';
    let stdout = '';
    child.stdout.on('data', (d) => {
      output += d;
      stdout += d;
    });
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, fileDeadlineMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const exitedClean = code === 0 && signal === null && !timedOut;
      resolveRun({ file, output, code, signal, timedOut, ...countsOf(stdout, exitedClean), ms: Date.now() - started });
    });
  });
}

let passedAll = 0;
let failedAll = 0;
const queue = [...files];
async function lane() {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const r = await runFile(file);
    const name = displayName(r.file);
    const status = r.failed === 0 ? 'ok  ' : 'FAIL';
    process.stdout.write(`\n=== ${status} ${name} (${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped, ${(r.ms / 1000).toFixed(1)} s)\n`);
    if (r.failed > 0 || process.env.CONCUR_TEST_VERBOSE) {
      process.stdout.write(r.output);
      if (r.timedOut) process.stdout.write(`\n${name}: killed after ${fileDeadlineMs} ms\n`);
      else if (r.code !== 0) process.stdout.write(`\n${name}: exited with code ${r.code} ${r.signal ?? ''}\n`);
      if (!r.summary) process.stdout.write(`\n${name}: no uvu summary in its output; counted as one failure\n`);
    }
    passedAll += r.passed;
    failedAll += r.failed;
  }
}
await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane));
if (files.length === 0) {
  process.stdout.write(`\nno test files under ${testRoot}${filters.length ? ` matching ${filters.join(', ')}` : ''}\n`);
  failedAll += 1;
}
process.stdout.write(`\n${passedAll} passed, ${failedAll} failed\n`);
process.exit(failedAll === 0 ? 0 : 1);
