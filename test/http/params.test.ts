import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { json, post, raw, use } from './harness.ts';

function bodyOf(answer: string): Record<string, unknown> {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

test('unknown, repeated and meaningless query parameters are 400 bad-parameter, naming the parameter and what the route takes', () =>
  use(async ({ url, backend }) => {
    await json(`${url}/kv/a`, { method: 'PUT', body: 'v' });
    const before = backend.submitted.length;
    const cases: [string, RequestInit, RegExp][] = [
      ['/kv/a?b=c', { method: 'PUT', body: 'x' }, /unknown query parameter "b" on PUT \/kv\/:key; it takes no query parameters/],
      ['/kv/a?read=index&read=stale', {}, /query parameter "read" is given more than once on GET \/kv\/:key/],
      ['/kv/a?node=2', {}, /node=2 picks the node that serves a follower or stale read; an index read is served by the leader/],
      ['/kv/a?read=lease&node=2', {}, /a lease read is served by the leader/],
      ['/kv/a?read=log&node=2', {}, /a log read is served by the leader/],
      ['/kv/a?colour=blue', {}, /unknown query parameter "colour" on GET \/kv\/:key; it takes read, node/],
      ['/kv/a?x', { method: 'DELETE' }, /unknown query parameter "x" on DELETE \/kv\/:key/],
      ['/cluster?verbose=1', {}, /unknown query parameter "verbose" on GET \/cluster; it takes no query parameters/],
      ['/events?since=3', {}, /on GET \/events/],
      ['/kv?limit=5&limit=6', {}, /"limit" is given more than once/],
      ['/kv?prefixx=a', {}, /it takes prefix, after, limit, read, node, encoding/],
      ['/cluster/heal?now=1', { method: 'POST' }, /on POST \/cluster\/heal/],
    ];
    for (const [path, init, message] of cases) {
      const r = await json(`${url}${path}`, init);
      assert.is(r.status, 400, path);
      assert.is(r.body.code, 'bad-parameter', path);
      assert.match(String(r.body.error), message);
    }
    assert.is(backend.submitted.length, before, 'no refused request reached the log');
    assert.is(backend.groups, null);
    // A long parameter name is cut short in the message.
    const long = await json(`${url}/cluster?${'z'.repeat(500)}=1`);
    assert.ok(String(long.body.error).length < 200);
    // Still fine: what each route takes.
    assert.is((await fetch(`${url}/kv/a?read=stale&node=2`)).status, 200);
    assert.is((await fetch(`${url}/kv/a?read=follower`)).status, 200);
    assert.is((await fetch(`${url}/kv/a?read=log`)).status, 200);
  }));

test('HEAD answers as GET without a body: KV values, status, listings, the event stream', () =>
  use(async ({ url }) => {
    await json(`${url}/kv/colour`, { method: 'PUT', body: 'blue' });
    const value = await fetch(`${url}/kv/colour`, { method: 'HEAD' });
    assert.is(value.status, 200);
    assert.is(value.headers.get('content-length'), '4');
    assert.is(await value.text(), '');
    const missing = await fetch(`${url}/kv/nothing`, { method: 'HEAD' });
    assert.is(missing.status, 404);
    assert.is(await missing.text(), '');
    const status = await fetch(`${url}/cluster`, { method: 'HEAD' });
    assert.is(status.status, 200);
    assert.match(status.headers.get('content-type') ?? '', /application\/json/);
    assert.is(await status.text(), '');
    assert.is((await fetch(`${url}/kv?prefix=c`, { method: 'HEAD' })).status, 200);
    const events = await fetch(`${url}/events`, { method: 'HEAD' });
    assert.is(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.is(await events.text(), '', 'HEAD /events ends at once');
    const bad = await fetch(`${url}/kv/colour?read=bogus`, { method: 'HEAD' });
    assert.is(bad.status, 400);
    // Routes without GET still answer 405 to HEAD, naming what they take.
    const heal = await fetch(`${url}/cluster/heal`, { method: 'HEAD' });
    assert.is(heal.status, 405);
    assert.is(heal.headers.get('allow'), 'POST');
  }));

test("node:http's own refusals get the JSON error shape: a 20,000-byte key (431), a malformed request (400)", () =>
  use(async ({ url, api }) => {
    const key = 'k'.repeat(20_000);
    const big = await fetch(`${url}/kv/${key}`);
    assert.is(big.status, 431);
    assert.match(big.headers.get('content-type') ?? '', /application\/json/);
    const b = (await big.json()) as Record<string, unknown>;
    assert.is(b.code, 'headers-too-large');
    assert.match(String(b.error), /over 16384 bytes; a key is at most 1024 bytes/);
    // The same on the fast path's socket (a plain PUT it hands on when the header is too large).
    const fast = await raw(api.port, `PUT /kv/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz`);
    assert.match(fast, /^HTTP\/1\.1 431 /);
    assert.is(bodyOf(fast).code, 'headers-too-large');
    // A key under node:http's limit but over the KV limit: the API's own 400.
    const long = await json(`${url}/kv/${'k'.repeat(10_000)}`, { method: 'PUT', body: 'v' });
    assert.is(long.status, 400);
    assert.is(long.body.code, 'bad-key');
    const garbage = await raw(api.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.is(bodyOf(garbage).code, 'bad-request');
    assert.match(String(bodyOf(garbage).error), /not valid HTTP\/1\.1/);
    const badLength = await raw(api.port, 'PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nzz');
    assert.match(badLength, /^HTTP\/1\.1 400 /);
    assert.is(bodyOf(badLength).code, 'bad-request');
    // The server still serves afterwards.
    assert.is((await post(`${url}/cluster/heal`, '')).status, 200);
  }));

test.run();
