// makeDirs: mkdir -p that fails at once where Node's recursive mkdir spins (under /proc), and a
// library caller of Cluster.start gets the error instead of a hung process.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeDirs } from '../../runtime/storage/make-dirs.ts';
import { Cluster } from '../../apps/cluster/cluster.ts';

test('creates missing parents, accepts an existing directory, refuses a file in the way', () => {
  const root = mkdtempSync(join(tmpdir(), 'concur-makedirs-'));
  try {
    makeDirs(join(root, 'a', 'b', 'c'));
    assert.ok(statSync(join(root, 'a', 'b', 'c')).isDirectory());
    makeDirs(join(root, 'a', 'b', 'c'));
    writeFileSync(join(root, 'file'), 'x');
    assert.throws(() => makeDirs(join(root, 'file', 'sub')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' || e.code === 'EEXIST');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('under /proc it fails at once (Node\'s recursive mkdir spins there), and so does Cluster.start', async () => {
  const t0 = Date.now();
  assert.throws(() => makeDirs('/proc/concur-no-such/dir'));
  assert.ok(Date.now() - t0 < 1_000);
  const t1 = Date.now();
  let failed = false;
  try {
    const c = await Cluster.start({ nodes: 1, dataDir: '/proc/concur-no-such/dir' });
    await c.stop();
  } catch {
    failed = true;
  }
  assert.ok(failed, 'Cluster.start refuses the directory');
  assert.ok(Date.now() - t1 < 5_000, `and quickly (${Date.now() - t1} ms)`);
});

test.run();
