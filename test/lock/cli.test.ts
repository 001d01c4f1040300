// `concur lock` end to end: the real CLI against a real `concur start --port 0` (acquire, held,
// renew, release, status, bad input, exit codes), and `lock run`: the command's exit code passed
// on, its fencing token in CONCUR_LOCK_TOKEN, a second run waiting for the first's command to
// end, and a lost lock stopping the command — taken away (a renewal answered "not the holder"),
// and renewals failing until the lease's own deadline (against a stand-in API that stops
// renewing, so the timing can be checked).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deadPort, runCli, startCli, waitForLeader, type StartedCli } from '../support/cli-process.ts';
import { eventually } from '../support/cluster.ts';

let cli: StartedCli;
let url: string;

test.before(async () => {
  cli = await startCli(['--nodes', '3', '--storage', 'memory', '--election-ms', '100-200', '--heartbeat-ms', '20']);
  url = cli.url;
  await waitForLeader(url);
});

test.after(async () => {
  cli.child.kill('SIGINT');
  await cli.exited;
});

/** `concur lock SUB --url URL ...` (the flags before any `-- COMMAND`). */
const lock = (sub: string, ...args: string[]) => runCli(['lock', sub, '--url', url, ...args]);

async function holder(name: string): Promise<{ client: string; token: number; expiresInMs: number } | undefined> {
  const s = (await (await fetch(`${url}/locks/${name}`)).json()) as { holder: { client: string; token: number; expiresInMs: number } | null };
  return s.holder ?? undefined;
}

/** A node one-liner as a command for `lock run`. */
const node = (script: string) => ['--', process.execPath, '-e', script];

test('acquire, held (1), renew, release, not the holder (1), status of one lock and of all', async () => {
  const a = await lock('acquire', 'db', '--client', 'alice', '--ttl-ms', '20000');
  assert.is(a.code, 0, a.stderr);
  const m = /^token=(\d+) expires-in-ms=20000\n$/.exec(a.stdout);
  assert.ok(m, a.stdout);
  const token = Number(m![1]);

  const [held, renew, wrongRenew, wrongRelease, one, all] = await Promise.all([
    lock('acquire', 'db', '--client', 'bob'),
    lock('renew', 'db', '--client', 'alice', '--token', String(token)),
    lock('renew', 'db', '--client', 'bob', '--token', String(token)),
    lock('release', 'db', '--client', 'alice', '--token', String(token + 1)),
    lock('status', 'db'),
    lock('status'),
  ]);
  assert.is(held.code, 1);
  assert.match(held.stderr, new RegExp(`^concur: lock db is held by alice \\(token ${token}, expires in \\d+ ms\\)\\n$`));
  assert.equal([renew.code, renew.stdout], [0, `token=${token} expires-in-ms=20000\n`]);
  assert.is(wrongRenew.code, 1);
  assert.match(wrongRenew.stderr, /bob with token \d+ is not the holder of lock db; it is held by alice/);
  assert.is(wrongRelease.code, 1, 'only with its own token');
  assert.is(one.code, 0);
  assert.match(one.stdout, new RegExp(`^lock db: held by alice \\(token ${token}, expires in \\d+ ms\\)\\n$`));
  assert.match(all.stdout, /lock db: held by alice/);
  assert.match(all.stdout, /log time \d+ ms, \d+ grants, \d+ expiries\n$/);

  const release = await lock('release', 'db', '--client', 'alice', '--token', String(token));
  assert.equal([release.code, release.stdout, release.stderr], [0, 'released\n', '']);
  const [free, json, again] = await Promise.all([lock('status', 'db'), lock('status', 'db', '--json'), lock('release', 'db', '--client', 'alice', '--token', String(token))]);
  assert.equal([free.code, free.stdout], [0, 'lock db: free\n']);
  assert.equal(JSON.parse(json.stdout).holder, null);
  assert.equal([again.code, again.stderr], [1, `concur: alice with token ${token} is not the holder of lock db; it is free\n`]);
});

test('bad input exits 2 with a clear message; an unreachable server 3; help lists the exit codes', async () => {
  const port = await deadPort();
  const cases: [string[], RegExp][] = [
    [['lock', 'acquire', 'x', '--client', 'c', '--ttl-ms', '0', '--url', url], /--ttl-ms .* expected an integer from 1 to 86400000, got 0/],
    [['lock', 'acquire', 'x', '--url', url], /required option '--client <id>' not specified/],
    [['lock', 'release', 'x', '--client', 'c'.repeat(200), '--token', '1', '--url', url], /--client: a client id is 1 to 128 bytes of text/],
    [['lock', 'acquire', 'n'.repeat(300), '--client', 'c', '--url', url], /a lock name is 1 to 256 bytes of text/],
    [['lock', 'renew', 'x', '--client', 'c'.repeat(200), '--token', '-1', '--url', url], /--token .* expected an integer from 1/],
    [['lock', 'run', 'x', '--url', url], /lock run needs a command to run/],
    [['lock', 'status', 'x', '--url', 'not a url'], /--url must be an http:\/\/ URL, got "not a url"/],
    [['lock', 'unlock', 'x'], /unknown command 'unlock'/],
  ];
  const results = await Promise.all([...cases.map(([args]) => runCli(args)), runCli(['lock', 'status', '--url', `http://127.0.0.1:${port}`]), runCli(['lock', '--help']), runCli(['lock', 'run', '--help'])]);
  cases.forEach(([args, message], i) => {
    const r = results[i]!;
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  });
  const [unreachable, help, runHelp] = results.slice(cases.length);
  assert.is(unreachable!.code, 3);
  assert.match(unreachable!.stderr, /^concur: cannot reach the concur API at .*: connection refused/);
  assert.is(help!.code, 0);
  assert.match(help!.stdout, /Exit codes: 0 ok; 1 a negative answer/);
  assert.match(help!.stdout, /4 the lock was lost while the command ran/);
  assert.match(runHelp!.stdout, /CONCUR_LOCK_TOKEN/);
  assert.match(runHelp!.stdout, /Exit codes/);
});

test('lock run: the command sees its token, its exit code is passed on, the lock is released after; a missing command is 127', async () => {
  const [r, missing, defaultClient] = await Promise.all([
    lock('run', 'job', '--ttl-ms', '3000', '--client', 'runner-1', ...node("console.log('token=' + process.env.CONCUR_LOCK_TOKEN + ' name=' + process.env.CONCUR_LOCK_NAME + ' client=' + process.env.CONCUR_LOCK_CLIENT); process.exit(7)")),
    lock('run', 'job2', '--', 'no-such-command-concur-test'),
    lock('run', 'job3', ...node('console.log(process.env.CONCUR_LOCK_CLIENT)')),
  ]);
  assert.is(r.code, 7, r.stderr);
  assert.match(r.stdout, /^token=\d+ name=job client=runner-1\n$/);
  assert.is(missing.code, 127);
  assert.match(missing.stderr, /cannot run "no-such-command-concur-test"/);
  assert.is(defaultClient.code, 0);
  assert.match(defaultClient.stdout, /^.+-\d+\n$/, 'default client id: host-pid');
  assert.equal([await holder('job'), await holder('job2'), await holder('job3')], [undefined, undefined, undefined], 'each released when its command ended (or could not start)');
});

test('lock run: a second run waits until the first one\'s command has exited, and gets a higher token', async () => {
  const first = lock('run', 'queue', '--ttl-ms', '1000', '--client', 'first', ...node("console.log('A start ' + Date.now() + ' ' + process.env.CONCUR_LOCK_TOKEN); setTimeout(() => console.log('A end ' + Date.now()), 2000)"));
  await eventually(async () => ((await holder('queue'))?.client === 'first' ? true : undefined), 'the first run to hold the lock');
  const second = await lock('run', 'queue', '--ttl-ms', '1000', '--client', 'second', ...node("console.log('B start ' + Date.now() + ' ' + process.env.CONCUR_LOCK_TOKEN)"));
  const a = await first;
  assert.equal([a.code, second.code], [0, 0], a.stderr + second.stderr);
  const [, aStart, aToken] = /A start (\d+) (\d+)/.exec(a.stdout)!.map(Number);
  const aEnd = Number(/A end (\d+)/.exec(a.stdout)![1]);
  const [, bStart, bToken] = /B start (\d+) (\d+)/.exec(second.stdout)!.map(Number);
  assert.ok(aEnd - aStart! >= 2_000, 'the first command ran its course: renewals kept the 1000 ms lease');
  assert.ok(bStart! >= aEnd, `B started (${bStart}) after A's command ended (${aEnd})`);
  assert.ok(bToken! > aToken!);
});

test('lock run: a lock taken away (a renewal answered "not the holder") stops the command: SIGTERM, SIGKILL after the grace; exit 4', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concur-lock-run-'));
  const ready = join(dir, 'ready');
  try {
    // The command ignores SIGTERM, so only SIGKILL ends it; it says when it is ready for signals.
    const run = lock('run', 'stolen', '--ttl-ms', '1500', '--kill-grace-ms', '400', '--client', 'victim', ...node(`process.on('SIGTERM', () => console.log('got SIGTERM, ignoring it')); console.log('running ' + process.env.CONCUR_LOCK_TOKEN); require('fs').writeFileSync(${JSON.stringify(ready)}, process.env.CONCUR_LOCK_TOKEN); setInterval(() => {}, 1000)`));
    const token = await eventually(() => (existsSync(ready) ? Number(readFileSync(ready, 'utf8')) : undefined), 'the command to start');
    const h = await holder('stolen');
    assert.equal([h?.client, h?.token], ['victim', token]);
    // Someone with the token releases it from under the run (an operator, or a bug).
    const rel = await fetch(`${url}/locks/stolen/release`, { method: 'POST', body: JSON.stringify({ client: 'victim', token }) });
    assert.is(rel.status, 200);
    const releasedAt = Date.now();
    const r = await run;
    const took = Date.now() - releasedAt;
    assert.is(r.code, 4, r.stderr);
    assert.match(r.stdout, new RegExp(`running ${token}\\ngot SIGTERM, ignoring it\\n`));
    assert.match(r.stderr, /concur: lost lock stolen: a renewal was answered "not the holder" \(the lock is free\); stopping the command \(SIGTERM, then SIGKILL after 400 ms\)/);
    assert.ok(took >= 400, `SIGKILL came after the grace (${took} ms)`);
    assert.ok(took < 1_500 / 3 + 400 + 3_000, `and soon after the next renewal (${took} ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A stand-in for the API: grants, answers the first renewal, then fails every renewal with 503. */
async function failingApi(): Promise<{ url: string; log: { op: string; at: number; status: number }[]; close: () => Promise<void> }> {
  const log: { op: string; at: number; status: number }[] = [];
  let renewals = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const op = /\/locks\/[^/]+\/(\w+)$/.exec(req.url ?? '')?.[1] ?? req.url ?? '';
      let status = 200;
      let body: unknown;
      if (op === 'acquire') body = { lock: 'L', client: 'c', token: 41, expiresInMs: 900 };
      else if (op === 'renew' && renewals++ === 0) body = { lock: 'L', token: 41, expiresInMs: 900 };
      else if (op === 'renew') [status, body] = [503, { error: 'no leader is elected right now; retry shortly', code: 'no-leader' }];
      else body = { lock: 'L', released: true };
      log.push({ op, at: Date.now(), status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

test('lock run: renewals failing until the lease\'s deadline (last good renewal\'s send time + ttl − drift margin) stop the command; exit 4', async () => {
  const api = await failingApi();
  try {
    const ttlMs = 900;
    const r = await runCli(['lock', 'run', 'L', '--url', api.url, '--ttl-ms', String(ttlMs), '--kill-grace-ms', '2000', ...node("process.on('SIGTERM', () => { console.log('SIGTERM at ' + Date.now()); process.exit(0); }); setInterval(() => {}, 1000)")]);
    assert.is(r.code, 4, r.stderr);
    assert.match(r.stderr, /lost lock L: no renewal succeeded before the lease's deadline .*; the last attempt: the server answered 503 no-leader/);
    const termAt = Number(/SIGTERM at (\d+)/.exec(r.stdout)?.[1]);
    const ops = api.log.map((e) => `${e.op}:${e.status}`);
    assert.equal(ops.slice(0, 2), ['acquire:200', 'renew:200'], 'granted, then renewed at once');
    assert.ok(ops.filter((o) => o === 'renew:503').length >= 3, `renewals were retried: ${ops.join(' ')}`);
    assert.is(ops.at(-1), 'release:200', 'a best-effort release after the command stopped');
    const goodRenewal = api.log[1]!.at;
    const acquired = api.log[0]!.at;
    // The good renewal was sent after the acquire reached the server and before it reached it itself.
    assert.ok(termAt >= acquired + ttlMs - Math.ceil(ttlMs / 100) - 5, `not stopped before the lease could have ended (${termAt - acquired} ms after the grant)`);
    assert.ok(termAt <= goodRenewal + ttlMs + 3_000, `stopped once it may have ended (${termAt - goodRenewal} ms after the last good renewal)`);
  } finally {
    await api.close();
  }
});

test.run();
