import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeCommand } from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import { decodeListAnswer, encodeKvQuery, runKvQuery } from '../../apps/kv/queries.ts';
import { json, use } from './harness.ts';

type Page = { items: { key: string; value: string }[]; encoding: string; next: string | null };

test('GET /kv lists keys in order with their values, paginated by after= and next', () =>
  use(async ({ url }) => {
    for (const k of ['user:3', 'order:1', 'user:1', 'user:10', 'zeta', 'user:2']) await json(`${url}/kv/${k}`, { method: 'PUT', body: `v-${k}` });
    const all = await json(`${url}/kv`);
    assert.is(all.status, 200);
    assert.equal(all.body as unknown, {
      items: ['order:1', 'user:1', 'user:10', 'user:2', 'user:3', 'zeta'].map((key) => ({ key, value: `v-${key}` })),
      encoding: 'utf8',
      next: null,
    });
    assert.ok(Number(all.headers.get('x-concur-index')) > 0, 'served by a read path, which says where');

    // Two at a time within a prefix: next is the last key given, null once nothing more matches.
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const r = await json(`${url}/kv?prefix=user:&limit=2${after === null ? '' : `&after=${encodeURIComponent(after)}`}`);
      const page = r.body as unknown as Page;
      seen.push(...page.items.map((i) => i.key));
      pages++;
      if (page.next === null) break;
      assert.is(page.next, page.items.at(-1)!.key);
      after = page.next;
    }
    assert.equal(seen, ['user:1', 'user:10', 'user:2', 'user:3']);
    assert.is(pages, 2, 'the last full page says null when nothing more matches the prefix');
    assert.equal((await json(`${url}/kv?prefix=nothing`)).body as unknown, { items: [], encoding: 'utf8', next: null });
    assert.equal(((await json(`${url}/kv?after=user:3`)).body as unknown as Page).items.map((i) => i.key), ['zeta']);
    assert.is(((await json(`${url}/kv?limit=1000`)).body as unknown as Page).items.length, 6);
    // The read modes of GET /kv/:key.
    for (const mode of ['log', 'index', 'lease', 'follower', 'stale']) assert.is((await json(`${url}/kv?read=${mode}&limit=1`)).status, 200, mode);
    assert.is((await json(`${url}/kv?read=stale&node=2&limit=1`)).headers.get('x-concur-node'), '2');
  }));

test('GET /kv: bad limits, encodings, read modes and cursors are 400 with what is allowed; invalid UTF-8 needs encoding=base64 (422)', () =>
  use(async ({ url }) => {
    for (const [q, message] of [
      ['limit=0', /limit= is how many keys a page lists, from 1 to 1000 \(default 100\), got "0"/],
      ['limit=1001', /from 1 to 1000/],
      ['limit=ten', /got "ten"/],
      ['encoding=hex', /encoding= is utf8 \(the default\) or base64, got "hex"/],
      ['after=', /after= names the key to list after.*must not be empty/],
      ['node=2', /picks the node that serves a follower or stale read/],
      [`prefix=${'p'.repeat(2000)}`, /the prefix is longer than a key may be/],
    ] as const) {
      const r = await json(`${url}/kv?${q}`);
      assert.is(r.status, 400, q);
      assert.is(r.body.code, 'bad-parameter');
      assert.match(String(r.body.error), message);
    }
    assert.is((await json(`${url}/kv?read=quick`)).body.code, 'bad-read-mode');
    assert.is((await json(`${url}/kv?read=stale&node=9`)).status, 404);

    await json(`${url}/kv/text`, { method: 'PUT', body: 'héllo' });
    await json(`${url}/kv/bin`, { method: 'PUT', body: new Uint8Array([0xff, 0x00, 0xfe]) });
    const refused = await json(`${url}/kv`);
    assert.is(refused.status, 422);
    assert.is(refused.body.code, 'not-utf8');
    assert.match(String(refused.body.error), /the value of key "bin" is not valid UTF-8.*encoding=base64/);
    // A page without the binary value is fine as text.
    assert.equal((await json(`${url}/kv?prefix=t`)).body.items, [{ key: 'text', value: 'héllo' }]);
    const b64 = (await json(`${url}/kv?encoding=base64`)).body as unknown as Page;
    assert.is(b64.encoding, 'base64');
    assert.equal(b64.items, [
      { key: Buffer.from('bin').toString('base64'), value: Buffer.from([0xff, 0x00, 0xfe]).toString('base64') },
      { key: Buffer.from('text').toString('base64'), value: Buffer.from('héllo').toString('base64') },
    ]);
    // next stays text, to pass back as after= as is.
    const firstOnly = (await json(`${url}/kv?encoding=base64&limit=1`)).body as unknown as Page;
    assert.is(firstOnly.next, 'bin');
  }));

test('the list query holds a page to the bytes of one value (one item always goes) and says whether more remain', () => {
  const sm = new KvStateMachine({ valueBytesMax: 100 });
  let seq = 0;
  // Through the state machine's own apply, as the log would.
  const apply = (key: string, value: Uint8Array) => sm.apply(sm.lastAppliedIndex + 1, encodeCommand({ op: 'put', key, value, clientId: 'list-test', seq: ++seq }));
  apply('a', new Uint8Array(60));
  apply('b', new Uint8Array(60));
  apply('c', new Uint8Array(10));
  const ask = (after: string | null, count: number) => decodeListAnswer(runKvQuery(sm, encodeKvQuery({ q: 'list', after, prefix: '', count }))!);
  let page = ask(null, 10);
  assert.equal(page.items.map((i) => i.key), ['a'], 'a + b would be 122 bytes, over the 100 of one value');
  assert.ok(page.more);
  page = ask('a', 10);
  assert.equal(page.items.map((i) => [i.key, i.value.byteLength]), [['b', 60], ['c', 10]]);
  assert.not.ok(page.more);
  page = ask(null, 1);
  assert.ok(page.more);
  assert.equal(ask('c', 5), { items: [], more: false });
});

test.run();
