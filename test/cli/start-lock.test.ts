// One cluster per data directory: a second `concur start --data-dir D` while the first runs is
// refused (exit code 2, naming the holder's pid); after the first is killed, D starts again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCli, waitForLeader } from '../support/cli-process.ts';

const bin = fileURLToPath(new URL('../../bin/concur.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('a second start on a data directory in use exits 2 naming the holder; a killed holder leaves nothing stuck', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-lock-'));
  try {
    const first = await startCli(['--nodes', '1', '--data-dir', dataDir]);
    try {
      await waitForLeader(first.url);
      const second = await run(['start', '--port', '0', '--nodes', '1', '--data-dir', dataDir]);
      assert.is(second.code, 2, second.out);
      assert.match(second.out, new RegExp(`in use by process ${first.child.pid}`));
      assert.not.match(second.out, /\n\s+at /, 'one line, no stack trace');
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    const third = await startCli(['--nodes', '1', '--data-dir', dataDir]);
    try {
      await waitForLeader(third.url);
    } finally {
      third.child.kill('SIGINT');
      await third.exited;
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('start refuses bad snapshot settings in one line', async () => {
  const r = await run(['start', '--port', '0', '--snapshot-entries', '-5']);
  assert.ok(r.code !== 0, r.out);
  assert.match(r.out, /--snapshot-entries/);
});

test.run();
