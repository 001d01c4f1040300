// `concur bench raft` refuses bad flags before starting anything, naming the flag and the fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/concur.mjs', import.meta.url));

function run(...args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'bench', 'raft', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

const cases: [string[], RegExp][] = [
  [['--batch', '0'], /--batch.*from 1 to 65536, got 0/],
  [['--batch', '1,,8'], /--batch.*comma-separated/],
  [['--inflight', 'many'], /--inflight.*got "many"/],
  [['--nodes', '3,99'], /--nodes.*from 1 to 15, got 99/],
  [['--payload', '-5'], /--payload.*from 1 to 65536/],
  [['--storage', 'disk'], /--storage.*one of memory, wal, got "disk"/],
  [['--fsync', 'sometimes', '--storage', 'wal'], /--fsync.*one of/],
  [['--fsync', 'always'], /--fsync applies to the WAL only; add --storage wal/],
  [['--quick', '--batch', '1,2'], /--quick sets its own sweep; drop --batch/],
  [['--duration', '0'], /--duration.*from 1 to 3600, got 0/],
  [['--snapshot-entries', '100,0'], /--snapshot-entries applies to the WAL only/],
];

for (const [args, message] of cases) {
  test(`refuses ${args.join(' ')}`, () => {
    const r = run(...args);
    assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace for a usage error');
  });
}

test.run();
