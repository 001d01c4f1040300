import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHttpApi } from '../../apps/http/server.ts';
import { LocalBackend } from '../support/local-backend.ts';
import { json, post, raw, use } from './harness.ts';

const token = 's3cret-token-4242';
const bearer = { authorization: `Bearer ${token}` };

/** Sends an HTTP exchange written with \n line ends, as the fast path sees it (harness `raw`). */
const rawCrlf = (port: number, text: string, ms = 1_000) => raw(port, text.replace(/\n/g, '\r\n'), ms);

test('with a token, every route refuses a request without it or with another: 401, WWW-Authenticate, and no trace of the token', () => {
  const internal: unknown[] = [];
  return use(
    async ({ url, api }) => {
      const answers = [
        await json(`${url}/cluster`),
        await json(`${url}/kv/k`),
        await json(`${url}/kv/k`, { method: 'PUT', body: 'v' }),
        await json(`${url}/kv?prefix=a`),
        await json(`${url}/events`),
        await json(`${url}/no/such/route`),
        await post(`${url}/cluster/nodes/1/crash`, ''),
        await json(`${url}/cluster`, { headers: { authorization: 'Bearer wrong-token' } }),
        await json(`${url}/cluster`, { headers: { authorization: `Basic ${token}` } }),
        await json(`${url}/cluster`, { headers: { authorization: `Bearer ${token}x` } }),
        await json(`${url}/kv/k`, { headers: { authorization: `Bearer ${token.slice(0, -1)}` } }),
      ];
      for (const a of answers) {
        assert.is(a.status, 401);
        assert.is(a.body.code, 'unauthorized');
        assert.is(a.headers.get('www-authenticate'), 'Bearer');
        assert.match(String(a.body.error), /Authorization: Bearer <token>/);
        assert.not.match(JSON.stringify(a.body), token.slice(0, 8));
        for (const [, v] of a.headers) assert.not.match(v, token.slice(0, 8));
      }
      assert.match(String(answers[0]!.body.error), /carries none/);
      assert.match(String(answers[7]!.body.error), /not the one this API accepts/);

      // The fast path: plain PUT/GET/DELETE without the token are answered 401 too, with a JSON body.
      const fast = await rawCrlf(api.port, 'PUT /kv/a HTTP/1.1\nHost: x\nContent-Length: 1\n\nzGET /kv/a HTTP/1.1\nHost: x\n\n');
      assert.match(fast, /^HTTP\/1\.1 401 /);
      assert.match(fast, /"code":"unauthorized"/);
      assert.not.match(fast, /HTTP\/1\.1 200/, 'nothing was served after the refused request');
      assert.not.ok(JSON.stringify(api.handler.settings).includes(token), 'the settings do not hold the token');
      assert.equal(internal, []);
    },
    { token },
    {},
    { onInternalError: (e) => internal.push(e) },
  );
});

test('with the token, every route serves as before: the fast path, node:http routes and the event stream', () =>
  use(
    async ({ url, api, backend }) => {
      assert.is((await json(`${url}/cluster`, { headers: bearer })).status, 200);
      assert.is((await json(`${url}/kv/colour`, { method: 'PUT', body: 'blue', headers: bearer })).status, 200);
      const got = await fetch(`${url}/kv/colour`, { headers: { authorization: `bearer  ${token}` } });
      assert.is(got.status, 200, 'the scheme is case-insensitive');
      assert.is(await got.text(), 'blue');
      const list = await json(`${url}/kv`, { headers: bearer });
      assert.equal(list.body.items, [{ key: 'colour', value: 'blue' }]);
      // Pipelined plain requests with the token stay on the fast path and are answered in order.
      const fast = await rawCrlf(api.port, `PUT /kv/a HTTP/1.1\nHost: x\nAuthorization: Bearer ${token}\nContent-Length: 1\n\nzGET /kv/a HTTP/1.1\nHost: x\nAuthorization: Bearer ${token}\n\n`);
      const statuses = [...fast.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
      assert.equal(statuses, [200, 200]);
      assert.ok(fast.endsWith('z'));
      const abort = new AbortController();
      const events = await fetch(`${url}/events`, { headers: bearer, signal: abort.signal });
      assert.is(events.status, 200);
      abort.abort();
      assert.ok(backend.sm.readLocal('a') !== undefined);
    },
    { token },
  ));

test('a token that cannot travel in a header is refused at start, without echoing it', async () => {
  for (const bad of ['', 'has space', 'line\nbreak', 'ünïcode']) {
    try {
      await startHttpApi(new LocalBackend(), { host: '127.0.0.1', port: 0, token: bad });
      assert.unreachable(`token ${JSON.stringify(bad)} was accepted`);
    } catch (err) {
      assert.instance(err, RangeError);
      assert.match((err as Error).message, /visible ASCII/);
      if (bad !== '') assert.not.ok((err as Error).message.includes(bad));
    }
  }
});

test('faultApi false: every fault endpoint answers 403 fault-api-disabled; status, KV and membership still serve', () =>
  use(
    async ({ url, backend }) => {
      const faults: [string, string, unknown][] = [
        ['POST', '/cluster/nodes/2/crash', ''],
        ['POST', '/cluster/nodes/2/restart', ''],
        ['POST', '/cluster/nodes/2/pause', ''],
        ['POST', '/cluster/nodes/2/resume', ''],
        ['POST', '/cluster/nodes/2/isolate', ''],
        ['POST', '/cluster/partition', { groups: [[1], [2, 3]] }],
        ['POST', '/cluster/cut', { from: [1], to: [2] }],
        ['POST', '/cluster/faults', { loss: 0.5 }],
        ['DELETE', '/cluster/faults', undefined],
        ['POST', '/cluster/heal', ''],
      ];
      for (const [method, path, body] of faults) {
        const r = await json(`${url}${path}`, { method, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
        assert.is(r.status, 403, `${method} ${path}`);
        assert.is(r.body.code, 'fault-api-disabled');
        assert.match(String(r.body.error), /--no-fault-api/);
      }
      assert.is(backend.up.get(2), true, 'nothing was crashed');
      assert.is(backend.groups, null, 'nothing was partitioned');
      assert.is((await json(`${url}/cluster`)).status, 200);
      assert.is((await json(`${url}/kv/k`, { method: 'PUT', body: 'v' })).status, 200);
    },
    { faultApi: false },
  ));

test.run();
