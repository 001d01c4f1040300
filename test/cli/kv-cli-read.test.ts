// `concur kv get` (the trailing newline only on a terminal, --node for follower and stale
// reads) and `concur kv list` (GET /kv page by page, following `next`, --limit in all, UTF-8 or
// base64), against a real HTTP server in the test that checks what the CLI sends; and the token
// of --token-file / CONCUR_TOKEN_FILE on every request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvListAll, kvListPage, valueEnding } from '../../apps/cli/commands/kv.ts';
import { runCli } from '../support/cli-process.ts';
import { startStubApi, type SeenRequest, type StubAnswer, type StubApi } from './stub-api.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'concur-kv-cli-'));
const secret = 's3cr3t-kv-token';
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${secret}\n`);

/** The store the stub serves: sorted keys; one value that is not UTF-8. */
const store = new Map<string, Buffer>();
for (let i = 0; i < 25; i++) store.set(`user/${String(i).padStart(2, '0')}`, Buffer.from(`name ${i}`));
store.set('colour', Buffer.from('blue'));
store.set('zz/bin', Buffer.from([0xff, 0x00, 0x80]));

function listPage(r: SeenRequest): StubAnswer {
  const prefix = r.query.get('prefix') ?? '';
  const after = r.query.get('after');
  const limit = Number(r.query.get('limit') ?? 100);
  const encoding = r.query.get('encoding') ?? 'utf8';
  const keys = [...store.keys()].sort().filter((k) => k.startsWith(prefix) && (after === null || k > after));
  const page = keys.slice(0, limit);
  const values = page.map((k) => store.get(k)!);
  if (encoding === 'utf8' && values.some((v) => !Buffer.from(v.toString('utf8')).equals(v))) {
    return { status: 422, body: { error: 'a key or value in this page is not valid UTF-8; use encoding=base64', code: 'not-utf8' } };
  }
  const enc = (b: Buffer) => b.toString(encoding === 'base64' ? 'base64' : 'utf8');
  return { body: { items: page.map((k, i) => ({ key: enc(Buffer.from(k)), value: enc(values[i]!) })), encoding, next: keys.length > page.length ? page.at(-1)! : null } };
}

let stub: StubApi;

test.before(async () => {
  stub = await startStubApi((r) => {
    if (r.method === 'GET' && r.path === '/kv') return listPage(r);
    const m = /^\/kv\/(.+)$/.exec(r.path);
    if (r.method === 'GET' && m) {
      const v = store.get(decodeURIComponent(m[1]!));
      return v === undefined ? { status: 404, body: { error: 'no such key', code: 'key-not-found' } } : { body: v };
    }
    return { status: 404, body: { error: 'no such route', code: 'not-found' } };
  });
});
test.after(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

const last = () => stub.seen.at(-1)!;

test('valueEnding: a newline only on a terminal, and not twice', () => {
  const blue = new Uint8Array(Buffer.from('blue'));
  assert.is(valueEnding(blue, true), '\n');
  assert.is(valueEnding(blue, false), '');
  assert.is(valueEnding(blue, undefined), '');
  assert.is(valueEnding(new Uint8Array(Buffer.from('line\n')), true), '');
  assert.is(valueEnding(new Uint8Array(0), true), '\n');
});

test('kv get: exact bytes into a pipe; a trailing newline on a terminal (a real pty)', async () => {
  const piped = await runCli(['kv', 'get', 'colour', '--url', stub.url]);
  assert.equal([piped.code, piped.stdout], [0, 'blue']);
  const onTty = await new Promise<string>((resolve, reject) => {
    // script(1) runs the command on a pseudo-terminal; its output is what the terminal showed.
    const cmd = `${process.execPath} bin/concur.mjs kv get colour --url ${stub.url}`;
    execFile('script', ['-qec', cmd, '/dev/null'], { cwd: repoRoot, timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  }).catch((err: Error) => (/ENOENT/.test(err.message) ? null : Promise.reject(err)));
  if (onTty === null) return; // no script(1) here: valueEnding above covers the decision
  assert.is(onTty.replace(/\r\n/g, '\n'), 'blue\n');
});

test('kv get --node N: follower and stale reads name their node', async () => {
  for (const mode of ['follower', 'stale']) {
    const r = await runCli(['kv', 'get', 'colour', '--read', mode, '--node', '3', '--url', stub.url]);
    assert.equal([r.code, r.stdout, r.stderr], [0, 'blue', '']);
    assert.is(last().query.get('read'), mode);
    assert.is(last().query.get('node'), '3');
  }
  const r = await runCli(['kv', 'get', 'colour', '--url', stub.url]);
  assert.is(r.code, 0);
  assert.is(last().query.get('node'), null, 'no node= unless asked');
  assert.is(last().query.get('read'), 'index');
});

test('kvListPage / kvListAll: query parameters, following next, --limit in all, base64 fallback', async () => {
  const o = { url: stub.url, timeoutMs: 5_000 };
  const before = stub.seen.length;
  const page = await kvListPage(o, { prefix: 'user/', limit: 10, read: 'stale', node: 2 });
  assert.is(page.items.length, 10);
  assert.is(page.next, 'user/09');
  const q = last().query;
  assert.equal(Object.fromEntries(q), { prefix: 'user/', limit: '10', read: 'stale', node: '2', encoding: 'utf8' });

  const seen: string[] = [];
  const next = await kvListAll(o, { prefix: 'user/' }, 12, (items) => seen.push(...items.map((i) => Buffer.from(i.key).toString())));
  assert.is(seen.length, 12);
  assert.is(seen[11], 'user/11');
  assert.is(next, 'user/11', 'stopped by the limit: next says where to go on');

  const all: string[] = [];
  assert.is(await kvListAll(o, {}, Number.POSITIVE_INFINITY, (items) => all.push(...items.map((i) => Buffer.from(i.key).toString()))), null);
  assert.equal(all, [...store.keys()].sort());

  // The page holding zz/bin is asked for again as base64, and the bytes come back exact.
  const bin = await kvListPage(o, { prefix: 'zz/' });
  assert.equal([...bin.items[0]!.value], [0xff, 0x00, 0x80]);
  assert.equal(stub.seen.slice(-2).map((r) => r.query.get('encoding')), ['utf8', 'base64']);
  assert.ok(stub.seen.length > before);
});

test('concur kv list: pages of at most 1000 following next, --prefix, --after, --limit, --json', async () => {
  let before = stub.seen.length;
  let r = await runCli(['kv', 'list', '--prefix', 'user/', '--url', stub.url]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.is(lines.length, 25);
  assert.is(lines[0], 'user/00 "name 0"');
  assert.equal(stub.seen.slice(before).map((s) => s.query.get('limit')), ['1000']);

  before = stub.seen.length;
  r = await runCli(['kv', 'list', '--prefix', 'user/', '--after', 'user/19', '--limit', '3', '--url', stub.url]);
  assert.equal([r.code, r.stdout], [0, 'user/20 "name 20"\nuser/21 "name 21"\nuser/22 "name 22"\n']);
  assert.equal(Object.fromEntries(stub.seen[before]!.query), { read: 'index', prefix: 'user/', after: 'user/19', limit: '3', encoding: 'utf8' });

  r = await runCli(['kv', 'list', '--json', '--limit', '2', '--url', stub.url]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { items: [{ key: 'colour', value: 'blue' }, { key: 'user/00', value: 'name 0' }], encoding: 'utf8', next: 'user/00' });

  r = await runCli(['kv', 'list', '--prefix', 'zz/', '--url', stub.url]);
  assert.equal([r.code, r.stdout], [0, 'zz/bin base64:/wCA\n']);
  r = await runCli(['kv', 'list', '--prefix', 'zz/', '--json', '--url', stub.url]);
  assert.equal(JSON.parse(r.stdout), { items: [{ key: Buffer.from('zz/bin').toString('base64'), value: '/wCA' }], encoding: 'base64', next: null });

  r = await runCli(['kv', 'list', '--prefix', 'nothing/', '--url', stub.url]);
  assert.equal([r.code, r.stdout, r.stderr], [0, '', '']);
});

test('concur kv list follows next across many pages', async () => {
  const saved = new Map(store);
  for (let i = 0; i < 2_500; i++) store.set(`many/${String(i).padStart(5, '0')}`, Buffer.from('x'));
  try {
    const before = stub.seen.length;
    const r = await runCli(['kv', 'list', '--prefix', 'many/', '--url', stub.url]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.split('\n').filter((l) => l !== '').length, 2_500);
    assert.equal(stub.seen.slice(before).map((s) => s.query.get('after')), [null, 'many/00999', 'many/01999']);
  } finally {
    store.clear();
    for (const [k, v] of saved) store.set(k, v);
  }
});

test('--token-file and CONCUR_TOKEN_FILE: sent as Authorization: Bearer on kv get and kv list; never printed', async () => {
  let r = await runCli(['kv', 'get', 'colour', '--token-file', tokenFile, '--url', stub.url]);
  assert.is(r.code, 0, r.stderr);
  assert.is(last().headers.authorization, `Bearer ${secret}`);
  process.env.CONCUR_TOKEN_FILE = tokenFile;
  const listed = runCli(['kv', 'list', '--limit', '1', '--url', stub.url]); // the child's environment is taken now
  delete process.env.CONCUR_TOKEN_FILE;
  r = await listed;
  assert.is(r.code, 0, r.stderr);
  assert.is(last().headers.authorization, `Bearer ${secret}`);
  r = await runCli(['kv', 'get', 'colour', '--url', stub.url]);
  assert.is(last().headers.authorization, undefined, 'no token file, no header');

  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n');
  r = await runCli(['kv', 'get', 'colour', '--token-file', empty, '--url', stub.url]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^concur: --token-file .*empty is empty; put the token in it/);
});

test('a 401 answer says to give the token, and does not echo it', async () => {
  const guarded = await startStubApi((req) =>
    req.headers.authorization === 'Bearer right'
      ? { body: 'ok' }
      : { status: 401, body: { error: 'unauthorized', message: 'this API needs "Authorization: Bearer <token>"' }, headers: { 'www-authenticate': 'Bearer' } },
  );
  try {
    const wrong = join(dir, 'wrong');
    writeFileSync(wrong, 'wrong-token-value');
    const [none, bad] = await Promise.all([runCli(['kv', 'get', 'k', '--url', guarded.url]), runCli(['kv', 'get', 'k', '--token-file', wrong, '--url', guarded.url])]);
    for (const r of [none, bad]) {
      assert.is(r.code, 3);
      assert.is(r.stderr, 'concur: the server answered 401 unauthorized: this API needs "Authorization: Bearer <token>"; give the cluster\'s token with --token-file FILE (or CONCUR_TOKEN_FILE=FILE)\n');
    }
    assert.not.ok(bad.stderr.includes('wrong-token-value'));
  } finally {
    await guarded.close();
  }
});

test.run();
