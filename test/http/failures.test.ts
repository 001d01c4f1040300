import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError, DeadlineError, NoQuorumError } from '../../apps/http/backend.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { decodeCommand } from '../../apps/kv/commands.ts';
import { LocalBackend } from '../support/local-backend.ts';
import { json, post, use } from './harness.ts';

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

test('no leader: 503 with Retry-After (the backend hint, or the setting)', () =>
  use(
    async ({ url, backend }) => {
      backend.noLeader = true;
      let r = await json(`${url}/kv/k`, { method: 'PUT', body: 'v' });
      assert.is(r.status, 503);
      assert.equal(r.body, { error: 'no leader is elected right now; retry shortly', code: 'no-leader' });
      assert.is(r.headers.get('retry-after'), '2');
      for (const req of [
        () => json(`${url}/kv/k`),
        () => json(`${url}/kv/k`, { method: 'DELETE' }),
        () => post(`${url}/kv/k/cas`, { expect: null, value: 'v' }),
      ]) {
        r = await req();
        assert.is(r.status, 503);
        assert.is(r.body.code, 'no-leader');
      }
      backend.noLeaderRetryAfterMs = 2500;
      r = await json(`${url}/kv/k`);
      assert.is(r.headers.get('retry-after'), '3');
      assert.is(backend.sm.lastAppliedIndex, 0);
      backend.noLeader = false;
      assert.is((await json(`${url}/kv/k`, { method: 'PUT', body: 'v' })).status, 200);
    },
    { retryAfterSeconds: 2 },
  ));

test('no quorum (majority crashed, or the leader on the minority side): 503 no-quorum', () =>
  use(async ({ url, backend }) => {
    await post(`${url}/cluster/nodes/2/crash`, '');
    assert.is((await json(`${url}/kv/k`, { method: 'PUT', body: 'a' })).status, 200, 'two of three is a majority');
    await post(`${url}/cluster/nodes/3/crash`, '');
    let r = await json(`${url}/kv/k`, { method: 'PUT', body: 'b' });
    assert.is(r.status, 503);
    assert.is(r.body.code, 'no-quorum');
    assert.is(r.headers.get('retry-after'), '1');
    await post(`${url}/cluster/nodes/2/restart`, '');
    await post(`${url}/cluster/nodes/3/restart`, '');
    await post(`${url}/cluster/partition`, { groups: [[1]] });
    r = await json(`${url}/kv/k`, { method: 'PUT', body: 'c' });
    assert.is(r.status, 503);
    assert.is(r.body.code, 'no-quorum');
    assert.is(text(backend.sm.readLocal('k')), 'a');
  }));

test('a backend deadline is 504 and says the write may still apply', () =>
  use(
    async ({ url, backend }) => {
      backend.commitDelayMs = 10_000;
      const started = Date.now();
      const r = await json(`${url}/kv/k`, { method: 'PUT', body: 'v' });
      assert.is(r.status, 504);
      assert.is(r.body.code, 'deadline-exceeded');
      assert.match(r.body.error as string, /may still (be applied|take effect)/);
      const ms = Date.now() - started;
      assert.ok(ms >= 250 && ms < 1_500, `answered after ${ms} ms`);
    },
    { requestDeadlineMs: 300 },
  ));

test('backend errors map to status codes and keep their messages', () =>
  use(
    async ({ url, backend }) => {
      const cases: Array<[Error, number, string, string | null]> = [
        [new DeadlineError(), 504, 'deadline-exceeded', null],
        [new NoQuorumError('only 2 of 5 reachable', 4_000), 503, 'no-quorum', '4'],
        [new BackendError('log is closed', 'closed'), 500, 'closed', null],
      ];
      for (const [err, status, code, retryAfter] of cases) {
        backend.failWith = err;
        const r = await json(`${url}/kv/k`, { method: 'PUT', body: 'v' });
        assert.is(r.status, status, err.message);
        assert.equal(r.body, { error: err.message, code });
        assert.is(r.headers.get('retry-after'), retryAfter);
      }
    },
    {},
    {},
    { onInternalError: () => {} },
  ));

test('a backend that never answers still gets a 504 at the deadline: never a hang', () =>
  use(
    async ({ url, backend }) => {
      backend.hang = true;
      for (const send of [
        () => json(`${url}/kv/k`, { method: 'PUT', body: 'v' }),
        () => json(`${url}/kv/k`),
        () => post(`${url}/kv/k/cas`, { expect: null, value: 'v' }),
      ]) {
        const started = Date.now();
        const r = await send();
        const ms = Date.now() - started;
        assert.is(r.status, 504);
        assert.is(r.body.code, 'deadline-exceeded');
        assert.match(r.body.error as string, /did not finish within the 200 ms deadline; it may still take effect/);
        assert.ok(ms >= 150 && ms < 1_500, `answered after ${ms} ms`);
      }
    },
    { requestDeadlineMs: 200 },
  ));

test('too many requests in flight: 503 overloaded, and the slot frees after the deadline', () =>
  use(
    async ({ url, backend, api }) => {
      backend.hang = true;
      const first = json(`${url}/kv/a`, { method: 'PUT', body: '1' });
      while (api.handler.inflightRequests === 0) await new Promise((r) => setTimeout(r, 5));
      const r = await json(`${url}/kv/b`, { method: 'PUT', body: '2' });
      assert.is(r.status, 503);
      assert.is(r.body.code, 'overloaded');
      assert.is(r.headers.get('retry-after'), '1');
      assert.is((await first).status, 504);
      backend.hang = false;
      assert.is((await json(`${url}/kv/b`, { method: 'PUT', body: '2' })).status, 200);
      assert.is(api.handler.inflightRequests, 0);
    },
    { inflightRequestsMax: 1, requestDeadlineMs: 300 },
  ));

test('close lets a request in flight finish (within the grace period), then closes', async () => {
  const backend = new LocalBackend();
  backend.hang = true;
  const api = await startHttpApi(backend, { host: '127.0.0.1', port: 0, requestDeadlineMs: 300, shutdownGraceMs: 5_000 });
  const pending = json(`${api.url}/kv/k`, { method: 'PUT', body: 'v' });
  while (api.handler.inflightRequests === 0) await new Promise((r) => setTimeout(r, 5));
  const started = Date.now();
  await api.close();
  const closedMs = Date.now() - started;
  const r = await pending;
  assert.is(r.status, 504, 'the request in flight still got its answer');
  assert.ok(closedMs < 2_000, `close took ${closedMs} ms: it waited for the request, not the grace period`);
  assert.is(api.server.listening, false);
});

test('an unexpected backend failure is a 500 with a message, reported to the hook', async () => {
  const seen: unknown[] = [];
  await use(
    async ({ url, backend }) => {
      backend.failWith = new Error('disk on fire');
      const r = await json(`${url}/kv/k`, { method: 'PUT', body: 'v' });
      assert.is(r.status, 500);
      assert.equal(r.body, { error: 'internal error: disk on fire', code: 'internal' });
    },
    {},
    {},
    { onInternalError: (e) => seen.push(e) },
  );
  assert.is(seen.length, 1);
  assert.is((seen[0] as Error).message, 'disk on fire');
});

test('X-Client-Id / X-Request-Seq: a retried write is applied once; an old seq is stale', () =>
  use(async ({ url, backend }) => {
    const ids = { 'x-client-id': 'laptop-7', 'x-request-seq': '1' };
    const first = await json(`${url}/kv/k`, { method: 'PUT', body: 'mine', headers: ids });
    assert.is(first.status, 200);
    await json(`${url}/kv/k`, { method: 'PUT', body: 'theirs' });
    // The client never saw the answer and retries: same id and seq.
    const retry = await json(`${url}/kv/k`, { method: 'PUT', body: 'mine', headers: ids });
    assert.is(retry.status, 200);
    assert.equal(retry.body, first.body, 'the retry answers with the original index');
    assert.is(text(backend.sm.readLocal('k')), 'theirs', 'and did not overwrite again');
    assert.is(backend.sm.sessionSeq('laptop-7'), 1);

    // cas retries keep their first outcome too.
    const cas = { 'x-client-id': 'laptop-7', 'x-request-seq': '2' };
    assert.is((await post(`${url}/kv/k/cas`, { expect: 'theirs', value: 'cas' }, cas)).status, 200);
    await json(`${url}/kv/k`, { method: 'PUT', body: 'theirs' });
    assert.is((await post(`${url}/kv/k/cas`, { expect: 'theirs', value: 'cas' }, cas)).status, 200);
    assert.is(text(backend.sm.readLocal('k')), 'theirs');

    const stale = await json(`${url}/kv/k`, { method: 'PUT', body: 'old', headers: { 'x-client-id': 'laptop-7', 'x-request-seq': '1' } });
    assert.is(stale.status, 409);
    assert.is(stale.body.code, 'stale-request');
    assert.match(stale.body.error as string, /client laptop-7 sent seq 1 after seq 2/);
  }));

test('bad client identity headers are 400 and never reach the log', () =>
  use(async ({ url, backend }) => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'x-client-id': 'a' }, /send X-Client-Id and X-Request-Seq together/],
      [{ 'x-request-seq': '1' }, /together/],
      [{ 'x-client-id': 'a', 'x-request-seq': '0' }, /positive integer, got 0/],
      [{ 'x-client-id': 'a', 'x-request-seq': 'one' }, /positive integer, got NaN/],
      [{ 'x-client-id': 'x'.repeat(129), 'x-request-seq': '1' }, /longer than 128 bytes/],
      [{ 'x-client-id': 'http-abc-0', 'x-request-seq': '1' }, /reserved for the server/],
    ];
    for (const [headers, message] of cases) {
      const r = await json(`${url}/kv/k`, { method: 'PUT', body: 'v', headers });
      assert.is(r.status, 400, JSON.stringify(headers));
      assert.is(r.body.code, 'bad-client-identity');
      assert.match(r.body.error as string, message);
    }
    assert.is(backend.submitted.length, 0);
  }));

test('server-generated identities: concurrent requests each get a lane with increasing seqs', () =>
  use(
    async ({ url, backend }) => {
      backend.commitDelayMs = 20;
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => json(`${url}/kv/k${i}`, { method: 'PUT', body: String(i) })));
      assert.ok(answers.every((a) => a.status === 200));
      const again = await Promise.all(Array.from({ length: 8 }, (_, i) => json(`${url}/kv/k${i}`, { method: 'PUT', body: `${i}!` })));
      assert.ok(again.every((a) => a.status === 200), 'lane reuse must not produce stale requests');
      const cmds = backend.submitted.map(decodeCommand);
      const ids = new Set(cmds.map((c) => c.clientId));
      assert.ok(ids.size <= 8, `${ids.size} client ids for a concurrency of 8`);
      for (const id of ids) {
        const seqs = cmds.filter((c) => c.clientId === id).map((c) => c.seq);
        assert.equal(seqs, [...seqs].sort((a, b) => a - b), `seqs of ${id} increase in log order`);
        assert.is(new Set(seqs).size, seqs.length);
      }
      assert.ok([...ids].every((id) => /^http-[A-Za-z0-9_-]+-\d+$/.test(id)));
      for (let i = 0; i < 8; i++) assert.is(text(backend.sm.readLocal(`k${i}`)), `${i}!`);
    },
    { inflightRequestsMax: 8 },
  ));

test.run();
