#!/usr/bin/env node
// Runs every test file (test/**/*.test.ts) in its own Node process, two at a time, and sums
// uvu's per-file totals into the last line `N passed, N failed`. A file that crashes, hangs past
// its deadline or prints no totals counts as one failure, so nothing fails silently.
// Usage: node test/run.mjs [substring ...]   (only files whose path contains a substring)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
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

const files = findTests(join(root, 'test')).filter(
  (f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)),
);

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, fileDeadlineMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(output)?.[1] ?? 0);
      let failed;
      let ok;
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        ok = 0;
        failed = 1;
      } else {
        ok = passed;
        failed = total - passed - skipped;
        if (code !== 0 && failed === 0) failed = 1;
      }
      resolve({ file, output, code, signal, timedOut, ok, failed, ms: Date.now() - started });
    });
  });
}

let passedAll = 0;
let failedAll = 0;
const queue = [...files];
async function lane() {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const r = await runFile(file);
    const name = relative(root, r.file);
    const status = r.failed === 0 ? 'ok  ' : 'FAIL';
    process.stdout.write(`\n=== ${status} ${name} (${r.ok} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)\n`);
    if (r.failed > 0 || process.env.CONCUR_TEST_VERBOSE) {
      process.stdout.write(r.output);
      if (r.timedOut) process.stdout.write(`\n${name}: killed after ${fileDeadlineMs} ms\n`);
      else if (r.code !== 0) process.stdout.write(`\n${name}: exited with code ${r.code} ${r.signal ?? ''}\n`);
    }
    passedAll += r.ok;
    failedAll += r.failed;
  }
}
await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane));
if (files.length === 0) failedAll += 1;
process.stdout.write(`\n${passedAll} passed, ${failedAll} failed\n`);
process.exit(failedAll === 0 ? 0 : 1);
