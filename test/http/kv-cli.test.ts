import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KvClientError, kvCas, kvDel, kvGet, kvPut } from '../../apps/cli/commands/kv.ts';
import { textBytes } from '../../apps/kv/commands.ts';
import { use } from './harness.ts';
import { deadPort, runCli } from '../support/cli-process.ts';

const text = (b: Uint8Array | null | undefined) => (b == null ? b : Buffer.from(b).toString('utf8'));



test('client functions: put, get, del, cas against a live API', () =>
  use(async ({ url, backend }) => {
    const o = { url, timeoutMs: 5_000 };
    assert.equal(await kvPut(o, 'a/b', textBytes('one')), { index: 1 });
    assert.is(text(backend.sm.readLocal('a/b')), 'one');
    assert.is(text(await kvGet(o, 'a/b', 'log')), 'one');
    assert.is(await kvGet(o, 'missing', 'log'), null);
    assert.is(text(await kvGet(o, 'a/b')), 'one', 'the default read path (index) sees the write too');
    assert.equal(await kvCas(o, 'a/b', textBytes('zzz'), textBytes('two')), { ok: false, current: textBytes('one') });
    assert.equal(await kvCas(o, 'a/b', textBytes('one'), new Uint8Array([0, 255])), { ok: true, index: 5 });
    assert.equal(await kvCas(o, 'a/b', null, textBytes('x')), { ok: false, current: new Uint8Array([0, 255]) });
    assert.equal(await kvDel(o, 'a/b'), { index: 7, existed: true });
    assert.equal(await kvCas(o, 'a/b', null, textBytes('x')), { ok: true, index: 8 });

    // Identity flags make a retry safe.
    const ids = { ...o, clientId: 'cli-test', seq: 4 };
    const first = await kvPut(ids, 'once', textBytes('1'));
    await kvPut(o, 'once', textBytes('2'));
    assert.equal(await kvPut(ids, 'once', textBytes('1')), first);
    assert.is(text(backend.sm.readLocal('once')), '2');
  }));

test('client functions: server errors and unreachable servers become clear KvClientErrors', async () => {
  await use(async ({ url, backend }) => {
    backend.noLeader = true;
    try {
      await kvPut({ url, timeoutMs: 5_000 }, 'k', textBytes('v'));
      assert.unreachable('should have failed');
    } catch (err) {
      assert.instance(err, KvClientError);
      const e = err as KvClientError;
      assert.is(e.status, 503);
      assert.is(e.code, 'no-leader');
      assert.is(e.exitCode, 3);
      assert.is(e.message, 'the server answered 503 no-leader: no leader is elected right now; retry shortly (retry in 1 s)');
    }
    backend.noLeader = false;
    backend.hang = true;
    const started = Date.now();
    try {
      await kvGet({ url, timeoutMs: 200 }, 'k');
      assert.unreachable('should have timed out');
    } catch (err) {
      assert.instance(err, KvClientError);
      assert.match((err as Error).message, /no answer from the concur API at .* within 200 ms/);
      assert.ok(Date.now() - started < 2_000);
    }
  }, { requestDeadlineMs: 5_000, shutdownGraceMs: 100 });

  const port = await deadPort();
  try {
    await kvGet({ url: `http://127.0.0.1:${port}`, timeoutMs: 2_000 }, 'k');
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, KvClientError);
    assert.is((err as Error).message, `cannot reach the concur API at http://127.0.0.1:${port}: connection refused. Is \`concur start\` running there? (set --url to point elsewhere)`);
  }
});

test('`concur kv` end to end: output, exit codes and messages', () =>
  use(async ({ url, backend }) => {
    let r = await runCli(['kv', 'put', 'greeting', 'hello', '--url', url]);
    assert.equal([r.code, r.stdout, r.stderr], [0, 'ok index=1\n', '']);
    assert.is(text(backend.sm.readLocal('greeting')), 'hello');

    const [get, missing, cas, casOk, del] = await Promise.all([
      runCli(['kv', 'get', 'greeting', '--url', url]),
      runCli(['kv', 'get', 'nothing', '--url', url]),
      runCli(['kv', 'cas', 'greeting', 'bye', '--expect', 'wrong', '--url', url]),
      runCli(['kv', 'cas', 'fresh', 'new', '--absent', '--url', url]),
      runCli(['kv', 'del', 'never-set', '--url', url]),
    ]);
    assert.equal([get.code, get.stdout], [0, 'hello'], 'get prints the exact bytes when piped');
    assert.equal([missing.code, missing.stderr], [1, 'concur: key "nothing" not found\n']);
    assert.equal([cas.code, cas.stderr], [1, 'concur: cas failed: the current value is "hello"\n']);
    assert.equal(casOk.code, 0);
    assert.match(casOk.stdout, /^ok index=\d+\n$/);
    assert.is(text(backend.sm.readLocal('fresh')), 'new');
    assert.equal(del.code, 0);
    assert.match(del.stdout, /^was absent index=\d+\n$/);

    r = await runCli(['kv', 'cas', 'greeting', 'bye', '--url', url]);
    assert.is(r.code, 2);
    assert.match(r.stderr, /exactly one of --expect VALUE or --absent/);
  }));

test('`concur kv` says clearly when the server is unreachable', async () => {
  const port = await deadPort();
  const r = await runCli(['kv', 'get', 'k', '--url', `http://127.0.0.1:${port}`]);
  assert.is(r.code, 3);
  assert.match(r.stderr, /^concur: cannot reach the concur API at http:\/\/127\.0\.0\.1:\d+: connection refused\. Is `concur start` running there\?/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  const bad = await runCli(['kv', 'get', 'k', '--url', 'not a url']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--url must be an http:\/\/ URL, got "not a url"/);
});

test.run();
