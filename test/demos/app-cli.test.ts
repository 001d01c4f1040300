// An app's own CLI commands (App.cli) through `concur app MODULE ...`: the chat demo's `post` and
// `read` against a real `concur start --app` of the same module; errors as one line with an exit
// code, and a module without commands or that is not an app refused with exit 2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { runCli, startCli, waitForLeader, type StartedCli } from '../support/cli-process.ts';

const chat = fileURLToPath(new URL('../../apps/demos/chat/app.ts', import.meta.url));
let cli: StartedCli;

test.before(async () => {
  cli = await startCli(['--nodes', '3', '--storage', 'memory', '--election-ms', '100-200', '--heartbeat-ms', '20', '--app', chat]);
  await waitForLeader(cli.url);
});

test.after(async () => {
  cli.child.kill('SIGINT');
  await cli.exited;
});

test('the chat app\'s commands post and read through the running cluster', async () => {
  const p1 = await runCli(['app', chat, 'post', 'lobby', '--from', 'ann', '--url', cli.url, 'hello', 'there']);
  assert.is(p1.code, 0, p1.stderr);
  assert.match(p1.stdout, /^posted #1$/m);
  const p2 = await runCli(['app', chat, 'post', 'lobby', '--from', 'bob', '--url', cli.url, 'hi']);
  assert.match(p2.stdout, /^posted #2$/m);
  const r = await runCli(['app', chat, 'read', 'lobby', '--url', cli.url]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '#1 ann: hello there\n#2 bob: hi\n');
});

test('bad input answers one line and an exit code; a module that is no app, or has no commands, exits 2', async () => {
  const bad = await runCli(['app', chat, 'post', 'lobby', '--from', '', '--url', cli.url, 'x']);
  assert.is(bad.code, 3);
  assert.match(bad.stderr, /^concur: the server answered 400/m);
  const notApp = await runCli(['app', fileURLToPath(new URL('../../package.json', import.meta.url)), 'x']);
  assert.is(notApp.code, 2);
  const lock = await runCli(['app', fileURLToPath(new URL('../../apps/lock/app.ts', import.meta.url)), 'x']);
  assert.is(lock.code, 2, lock.stderr);
});

test.run();
