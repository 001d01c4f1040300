// Bad `concur start` options, each in a real `concur start` process: exit code 2, one line on
// stderr saying what is wrong and what to do, no stack trace, nothing on stdout (no cluster was
// started), and quickly — including --data-dir under /proc, where Node's own recursive mkdir spins
// forever.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, waitForLeader } from '../support/cli-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'concur-start-errors-'));
const aFile = join(dir, 'a-file');
writeFileSync(aFile, 'not a directory');
const secret = 'tok-3f9a1c7e5b2d8-never-printed';
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `  ${secret}\n`);
const emptyToken = join(dir, 'empty-token');
writeFileSync(emptyToken, ' \n');

/** Runs `concur start ARGS` and checks the one-line refusal. */
async function refused(args: string[], message: RegExp): Promise<void> {
  const started = Date.now();
  const r = await runCli(['start', '--port', '0', ...args]);
  const ms = Date.now() - started;
  const what = `concur start ${args.join(' ')}`;
  assert.is(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.is(r.stdout, '', `${what} printed a banner: a cluster started`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, `${what}: one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^concur: /);
  assert.match(lines[0]!, message, what);
  assert.not.match(r.stderr, /\bat .*\(.*:\d+:\d+\)|Error:|node:internal/, `${what}: no stack`);
  assert.not.ok(r.stderr.includes(secret), `${what}: the token is never printed`);
  // The CLI's own start-up (compiling TypeScript) takes a second or two; a spin would take 60.
  assert.ok(ms < 20_000, `${what} took ${ms} ms`);
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('--data-dir that is a regular file, or lies under one', async () => {
  await Promise.all([
    refused(['--data-dir', aFile], /--data-dir .*a-file is a file, not a directory; give a directory/),
    refused(['--data-dir', join(aFile, 'sub', 'dir')], /cannot create --data-dir .*: .*a-file is a file, not a directory; pick another path/),
  ]);
});

test('--data-dir whose node-N is a file (Supervisor.spawn failed on it with a stack)', async () => {
  const data = join(dir, 'with-node-file');
  mkdirSync(data);
  writeFileSync(join(data, 'node-1'), '');
  await refused(['--nodes', '1', '--data-dir', data], /--data-dir .*with-node-file holds node-1, which is not a directory: .*move it aside/);
});

test('--data-dir under /proc fails fast instead of spinning', async () => {
  if (!existsSync('/proc/self')) return; // not Linux
  await Promise.all([
    refused(['--data-dir', '/proc/nc'], /cannot create --data-dir \/proc\/nc: \/proc does not allow directories to be created in it/),
    refused(['--data-dir', '/proc/nc/deeper'], /cannot create --data-dir \/proc\/nc\/deeper: \/proc does not allow directories/),
  ]);
});

test('--data-dir that cannot be written', async () => {
  const ro = join(dir, 'read-only');
  mkdirSync(ro);
  chmodSync(ro, 0o555);
  try {
    if (process.getuid?.() !== 0) {
      await Promise.all([
        refused(['--data-dir', ro], /cannot use --data-dir .*read-only: no permission to write in it; pick a directory this user can write/),
        refused(['--data-dir', join(ro, 'new')], /cannot create --data-dir .*: no permission to create .*new in .*read-only; pick another directory/),
      ]);
    } else if (existsSync('/sys/kernel')) {
      // Root ignores permission bits; sysfs refuses root too.
      await refused(['--data-dir', '/sys/kernel/concur-test'], /cannot create --data-dir \/sys\/kernel\/concur-test: .*; pick another directory/);
    }
  } finally {
    chmodSync(ro, 0o755);
  }
});

test('--host that is no address, and one this machine does not have', async () => {
  await Promise.all([
    refused(['--host', '999.1.1.1'], /--host 999\.1\.1\.1 is neither an IP address nor a name this machine resolves \(ENOTFOUND|EAI_AGAIN\); give an address of this machine/),
    refused(['--host', '10.99.99.99', '--token-file', tokenFile], /--host 10\.99\.99\.99 is not an address of this machine \(its addresses: .*127\.0\.0\.1.*\); use one of them, or 0\.0\.0\.0/),
  ]);
});

test('a port in use, and --resp-port equal to --port', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as { port: number }).port;
  try {
    await Promise.all([
      refused(['--port', String(port)], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use; pick another with --port`)),
      refused(['--resp-port', String(port)], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use; pick another with --resp-port`)),
      refused(['--port', '7999', '--resp-port', '7999'], /--port and --resp-port are both 7999/),
    ]);
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

test('--client-ports and --resp-client-ports: a port in use, past 65535, overlapping --port and each other, on Multi-Paxos', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as { port: number }).port;
  try {
    await Promise.all([
      refused(['--nodes', '3', '--client-ports', String(port - 1)], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use; pick another with --client-ports \\(node 2's port\\)$`)),
      refused(['--nodes', '3', '--resp-client-ports', String(port - 2)], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use; pick another with --resp-client-ports \\(node 3's port\\)$`)),
      refused(['--nodes', '3', '--client-ports', '65534'], /--client-ports 65534 gives node 3 port 65536, past 65535; pick a base of at most 65533/),
      refused(['--nodes', '3', '--port', '7101', '--client-ports', '7100'], /--port 7101 is one of the nodes' --client-ports ports \(7100-7102\); move one of them/),
      refused(['--protocol', 'multipaxos', '--client-ports', '7100'], /--client-ports is served by Raft nodes only/),
      refused(['--protocol', 'multipaxos', '--resp-client-ports', '7100'], /--resp-client-ports is served by Raft nodes only/),
      refused(['--nodes', '3', '--client-ports', '7100', '--resp-client-ports', '7102'], /--resp-client-ports 7102 is one of the nodes' --client-ports ports \(7100-7102\); move one of them/),
    ]);
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

test('a non-loopback host needs --token-file or --insecure; a bad token file is refused without showing it', async () => {
  await Promise.all([
    refused(['--host', '0.0.0.0'], /--host 0\.0\.0\.0 lets other machines reach the API.*give --token-file FILE.*or --insecure/),
    refused(['--host', '0.0.0.0', '--token-file', join(dir, 'missing')], /cannot read --token-file .*missing: no such file/),
    refused(['--token-file', emptyToken], /--token-file .*empty-token is empty; put the token in it/),
    refused(['--token-file', dir], /cannot read --token-file .*: it is a directory/),
    // The Redis door has no password: a token on the HTTP API does not cover it.
    refused(['--host', '0.0.0.0', '--token-file', tokenFile, '--resp-port', '0'], /--resp-port has no authentication/),
  ]);
  const spaced = join(dir, 'spaced-token');
  writeFileSync(spaced, 'two words');
  await refused(['--token-file', spaced], /holds characters a token cannot have/);
});

test('no worker starts: a refused --data-dir leaves no node directory behind', async () => {
  const target = join(dir, 'fresh', 'data');
  // The host is refused after the token check and before the directory is touched.
  await refused(['--host', '999.1.1.1', '--data-dir', target], /--host 999\.1\.1\.1/);
  assert.not.ok(existsSync(target));
});

test('with --token-file the banner names the file, never the token; --no-fault-api says so', async () => {
  const data = join(dir, 'ok-data');
  const started = await startCli(['--nodes', '1', '--token-file', tokenFile, '--no-fault-api', '--data-dir', data]);
  try {
    // The banner's lines may arrive after the URL line startCli waits for.
    for (let i = 0; i < 100 && !/fault API off/.test(started.output()); i++) await new Promise((r) => setTimeout(r, 50));
    const out = started.output();
    assert.match(out, /every request needs "Authorization: Bearer <the token in .*token>"/);
    assert.match(out, /fault API off \(--no-fault-api\)/);
    assert.match(out, /curl -H "Authorization: Bearer \$\(cat .*token\)"/);
    assert.not.ok(out.includes(secret), 'the token is not in the banner');
    assert.ok(readdirSync(data).some((n) => n.startsWith('node-')), 'the data directory was created and used');
  } finally {
    started.child.kill('SIGINT');
    await started.exited;
  }
  assert.not.ok(started.output().includes(secret), 'nor in anything printed at shutdown');
});

test('a plain loopback start still works (the checks pass a good setup)', async () => {
  const started = await startCli(['--nodes', '1', '--data-dir', join(dir, 'new', 'nested', 'data')]);
  try {
    await waitForLeader(started.url);
  } finally {
    started.child.kill('SIGINT');
    await started.exited;
  }
});

test.run();
