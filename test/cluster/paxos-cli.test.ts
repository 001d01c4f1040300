// `concur start --protocol multipaxos` as a user runs it: the KV store over HTTP on a Multi-Paxos
// cluster, the status line in ballots, a clean Ctrl-C; Raft-only flags refused in one line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, waitForLeader } from '../support/cli-process.ts';

test('concur start --protocol multipaxos serves the KV API and stops cleanly on Ctrl-C', async () => {
  const started = await startCli(['--protocol', 'multipaxos', '--nodes', '3']);
  try {
    await waitForLeader(started.url);
    const put = await fetch(`${started.url}/kv/greeting`, { method: 'PUT', body: 'hello' });
    assert.is(put.status, 200);
    const got = await fetch(`${started.url}/kv/greeting`);
    assert.is(await got.text(), 'hello');
    assert.match(started.output(), /3-node Multi-Paxos cluster, Paxos logs in /);
    const deadline = Date.now() + 5_000;
    while (!/ballot \d+\.\d+/.test(started.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(started.output(), /leader \d+ {2}ballot \d+\.\d+ {2}commit \d+/);
  } finally {
    started.child.kill('SIGINT');
  }
  const { code } = await started.exited;
  assert.is(code, 0, started.output());
  assert.match(started.output(), /SIGINT, shutting down/);
});

test('the whole process killed (SIGKILL) mid-load and started again on its directory: every acknowledged write is there', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'concur-paxos-kill-'));
  try {
    const acked = new Map<string, string>();
    const uncertain = new Set<string>();
    const first = await startCli(['--protocol', 'multipaxos', '--nodes', '3', '--data-dir', dataDir]);
    try {
      await waitForLeader(first.url);
      // Four writers at once, so the kill lands with proposals in flight.
      await Promise.all(
        [0, 1, 2, 3].map(async (w) => {
          for (let i = 0; i < 40; i++) {
            const key = `w${w}-k${i % 8}`;
            const r = await fetch(`${first.url}/kv/${key}`, { method: 'PUT', body: `v${i}` });
            // A write that did not answer 200 may still take effect: its key proves nothing.
            if (r.status === 200 && !uncertain.has(key)) acked.set(key, `v${i}`);
            else {
              uncertain.add(key);
              acked.delete(key);
            }
          }
        }),
      );
      // In flight when the process dies: unacknowledged, they may or may not survive.
      for (let i = 0; i < 20; i++) void fetch(`${first.url}/kv/late-${i}`, { method: 'PUT', body: 'x' }).catch(() => undefined);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    assert.ok(acked.size >= 30, `writes were acknowledged (${acked.size})`);
    const second = await startCli(['--protocol', 'multipaxos', '--nodes', '3', '--data-dir', dataDir]);
    try {
      await waitForLeader(second.url);
      for (const [key, value] of acked) {
        const r = await fetch(`${second.url}/kv/${key}`);
        assert.is(await r.text(), value, key);
      }
    } finally {
      second.child.kill('SIGINT');
      await second.exited;
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('Raft-only flags with --protocol multipaxos are refused with exit code 2 and one line', async () => {
  const r = await runCli(['start', '--protocol', 'multipaxos', '--nodes', '3', '--witnesses', '3', '--snapshot-catch-up', '10', '--port', '0']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--witnesses, --snapshot-catch-up are Raft-only/);
  const c = await runCli(['chaos', '--protocol', 'multipaxos', '--faults', 'membership', '--duration', '1']);
  assert.is(c.code, 2, c.stderr);
  assert.match(c.stderr, /membership faults need --protocol raft/);
});

test.run();
