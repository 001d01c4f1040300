// `concur bench locks`: both cells (each client on its own lock; every client on one lock) complete
// acquire+release pairs through Cluster.submit, and the report has the shape the README and
// --json promise. Never asserts throughput: the machine is shared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchLocks, type LocksCell } from '../../bench/locks.ts';

const bin = fileURLToPath(new URL('../../bin/concur.mjs', import.meta.url));

function checkCell(c: LocksCell, clients: number): void {
  assert.ok(c.pairs > 0, `${c.cell}: pairs completed (${c.pairs})`);
  assert.is(c.count, c.pairs, `${c.cell}: one latency per pair`);
  assert.is(c.errors, 0, `${c.cell}: no errors on a healthy cluster`);
  assert.is(c.clients, clients);
  assert.ok(c.pairsPerSec > 0);
  for (const k of ['p50Ms', 'p90Ms', 'p99Ms', 'maxMs', 'meanMs'] as const) assert.ok(Number.isFinite(c[k]) && c[k] > 0, `${c.cell}: ${k} ${c[k]}`);
  assert.ok(c.p50Ms <= c.p99Ms, `${c.cell}: p50 ${c.p50Ms} ≤ p99 ${c.p99Ms}`); // (HDR percentiles are bucket bounds: p99 may read a hair above max)
  assert.ok(c.acquire.p50Ms > 0 && c.acquire.p50Ms <= c.acquire.p99Ms);
  assert.ok(c.release.p50Ms > 0 && c.release.p50Ms <= c.release.p99Ms);
}

test('uncontended (a lock per client) and contended (one lock, waiters queued): pairs complete, latencies recorded', async () => {
  const r = await benchLocks({ nodes: 3, clients: 4, durationSec: 1, storage: 'memory' });
  assert.equal(r.cells.map((c) => c.cell), ['uncontended', 'contended']);
  assert.is(r.protocol, 'raft');
  const [free, hot] = r.cells as [LocksCell, LocksCell];
  checkCell(free, 4);
  checkCell(hot, 4);
  assert.is(free.locks, 4);
  assert.is(free.waited, 0, 'nobody waits for a lock of its own');
  assert.is(hot.locks, 1);
  assert.ok(hot.waited > 0, `on one lock, acquires queued and were granted later (${hot.waited})`);
});

test('concur bench locks --json prints the report as the last line', () => {
  const r = spawnSync(process.execPath, [bin, 'bench', 'locks', '--nodes', '1', '--clients', '2', '--duration', '1', '--storage', 'memory', '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { nodes: number; cells: LocksCell[] };
  assert.is(report.nodes, 1);
  assert.equal(report.cells.map((c) => c.cell), ['uncontended', 'contended']);
  for (const c of report.cells) assert.ok(c.pairs > 0, `${c.cell}: ${c.pairs} pairs`);
  assert.match(r.stderr, /uncontended .* pairs\/s/);
  const bad = spawnSync(process.execPath, [bin, 'bench', 'locks', '--clients', '0'], { encoding: 'utf8' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /expected an integer from 1 to 1024/);
});

test.run();
