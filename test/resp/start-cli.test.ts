// `concur start --resp-port`: the banner names the Redis address, the port is validated like
// --port, a cluster without the kv app refuses it in one line, and Ctrl-C closes the door with
// the rest. A real child process, reached over RESP with a raw client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli, startCli, waitForLeader } from '../support/cli-process.ts';
import { RawClient, text } from './support.ts';

test('start --resp-port serves RESP beside HTTP, prints its address, and shuts down cleanly on SIGINT', async () => {
  const started = await startCli(['--nodes', '3', '--storage', 'memory', '--resp-port', '0']);
  try {
    await waitForLeader(started.url);
    const m = /Redis protocol on redis:\/\/127\.0\.0\.1:(\d+)/.exec(started.output());
    assert.ok(m, started.output());
    const c = await RawClient.open(Number(m![1]));
    assert.is(text(await c.call('SET', 'cli', 'yes')), 'OK');
    assert.is(text(await c.call('GET', 'cli')), 'yes');
    // The same store as HTTP.
    assert.is(await (await fetch(`${started.url}/kv/cli`)).text(), 'yes');
    started.child.kill('SIGINT');
    await c.closed;
    const { code } = await started.exited;
    assert.is(code, 0, started.output());
  } finally {
    started.child.kill('SIGKILL');
  }
});

test('start --resp-port --resp-door leader: the leader\'s node serves the port, the banner says so, SIGINT stops it', async () => {
  const started = await startCli(['--nodes', '3', '--storage', 'memory', '--resp-port', '0', '--resp-door', 'leader']);
  try {
    await waitForLeader(started.url);
    const m = /Redis protocol on redis:\/\/127\.0\.0\.1:(\d+), served by the leader's thread \(--resp-door leader\)/.exec(started.output());
    assert.ok(m, started.output());
    // Under load leadership may move on its own just after the start, and the port with it: a
    // connect in that moment is refused, or lands on a node that has just stopped leading. A
    // client tries again; within a few seconds the port must reach the leader.
    const deadline = Date.now() + 10_000;
    let c: RawClient | null = null;
    let info = '';
    for (;;) {
      const leader = await waitForLeader(started.url);
      c = await RawClient.open(Number(m![1])).catch(() => null);
      if (c !== null) {
        // INFO on a node's door reports that node alone: the one that accepted this connection.
        info = await c.call('INFO', 'concur').then(text, (e: Error) => e.message);
        if (new RegExp(`\\bnode${leader}:role=leader\\b`).test(info)) break;
        c.close();
      }
      assert.ok(Date.now() < deadline, `no connection to the port reached the leader within 10 s (last INFO: ${info})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(text(await c.call('SET', 'door', 'leader')), 'OK');
    assert.is(await (await fetch(`${started.url}/kv/door`)).text(), 'leader');
    started.child.kill('SIGINT');
    await c.closed;
    const { code } = await started.exited;
    assert.is(code, 0, started.output());
  } finally {
    started.child.kill('SIGKILL');
  }
});

test('--resp-door: needs --resp-port, Raft, and a known value; the kv app as the supervisor\'s door does', async () => {
  const cases: [string[], RegExp][] = [
    [['--resp-door', 'leader'], /--resp-door leader says who serves --resp-port; give --resp-port too/],
    [['--protocol', 'multipaxos', '--resp-port', '0', '--resp-door', 'leader'], /--resp-door leader is served by Raft nodes only/],
    [['--resp-port', '0', '--resp-door', 'anyone'], /--resp-door.*anyone.*expected one of supervisor, leader/],
    [['--nodes', '1', '--storage', 'memory', '--apps', 'lock', '--resp-port', '0', '--resp-door', 'leader'], /the Redis protocol serves the kv app, which does not run on this cluster \(it runs lock\)/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['start', '--port', '0', ...args]);
    assert.ok(r.code !== 0, `${args.join(' ')} was refused`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'one line, no stack trace');
  }
});

test('--resp-port is checked like --port; a cluster without the kv app refuses it', async () => {
  const bad = await runCli(['start', '--port', '0', '--resp-port', '70000']);
  assert.ok(bad.code !== 0);
  assert.match(bad.stderr, /--resp-port.*expected an integer from 0 to 65535, got 70000/);
  const noKv = await runCli(['start', '--port', '0', '--nodes', '1', '--storage', 'memory', '--apps', 'lock', '--resp-port', '0']);
  assert.is(noKv.code, 2, noKv.stderr);
  assert.match(noKv.stderr, /the Redis protocol serves the kv app, which does not run on this cluster \(it runs lock\)/);
  assert.not.match(noKv.stderr, /\n\s+at /, 'one line, no stack trace');
});

test.run();
