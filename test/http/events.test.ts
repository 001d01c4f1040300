import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHttpApi } from '../../apps/http/server.ts';
import { LocalBackend } from '../support/local-backend.ts';
import { eventually, json, use } from './harness.ts';

/** Opens /events and collects the text as it arrives. */
async function subscribe(url: string) {
  const abort = new AbortController();
  const res = await fetch(`${url}/events`, { signal: abort.signal });
  let received = '';
  let ended = false;
  const reader = res.body!.getReader();
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received += Buffer.from(value).toString('utf8');
      }
    } catch {
      // aborted by the test
    }
    ended = true;
  })();
  return {
    res,
    get received() {
      return received;
    },
    get ended() {
      return ended;
    },
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

test('GET /events streams backend events as SSE data lines, with heartbeats', () =>
  use(
    async ({ url, backend, api }) => {
      const s = await subscribe(url);
      assert.is(s.res.status, 200);
      assert.match(s.res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.ok(await eventually(() => backend.subscriberCount === 1));
      backend.emit({ type: 'role', node: 2, role: 'leader', term: 3 });
      backend.emit({ type: 'bytes', data: new Uint8Array([1, 2, 3]), big: 12n });
      // A real commit through the API shows up too.
      await json(`${url}/kv/k`, { method: 'PUT', body: 'v' });
      assert.ok(await eventually(() => s.received.includes('"type":"commit"')), s.received);
      assert.ok(s.received.includes('data: {"type":"role","node":2,"role":"leader","term":3}\n\n'), s.received);
      assert.ok(s.received.includes('data: {"type":"bytes","data":"AQID","big":"12"}\n\n'), s.received);
      assert.ok(await eventually(() => s.received.includes(': heartbeat\n\n')), 'a heartbeat comment arrives');
      assert.is(api.handler.sseClientCount, 1);
      await s.close();
    },
    { sseHeartbeatMs: 50 },
  ));

test('a disconnecting subscriber is cleaned up: subscription, timer and slot', () =>
  use(
    async ({ url, backend, api }) => {
      const a = await subscribe(url);
      const b = await subscribe(url);
      assert.ok(await eventually(() => backend.subscriberCount === 2));
      // The slot limit holds while both are connected.
      const third = await json(`${url}/events`);
      assert.is(third.status, 503);
      assert.is(third.body.code, 'too-many-subscribers');

      await a.close();
      assert.ok(await eventually(() => backend.subscriberCount === 1), `subscribers: ${backend.subscriberCount}`);
      assert.ok(await eventually(() => api.handler.sseClientCount === 1));
      backend.emit({ type: 'after-a-left' });
      assert.ok(await eventually(() => b.received.includes('after-a-left')));
      // The freed slot can be taken again.
      const c = await subscribe(url);
      assert.is(c.res.status, 200);
      await b.close();
      await c.close();
      assert.ok(await eventually(() => backend.subscriberCount === 0 && api.handler.sseClientCount === 0));
    },
    { sseClientsMax: 2, sseHeartbeatMs: 20 },
  ));

test('closing the server ends open event streams', async () => {
  const backend = new LocalBackend();
  const api = await startHttpApi(backend, { host: '127.0.0.1', port: 0 });
  const s = await subscribe(api.url);
  assert.ok(await eventually(() => backend.subscriberCount === 1));
  const started = Date.now();
  await api.close();
  assert.ok(Date.now() - started < 1_000, 'close does not wait for the stream to end by itself');
  assert.ok(await eventually(() => s.ended), 'the client sees the stream end');
  assert.is(backend.subscriberCount, 0);
});

test('events reach subscribers in one shape: the node as "node" (never "id"), a leader no one knows as null, "at" kept', () =>
  use(async ({ url, backend }) => {
    const s = await subscribe(url);
    assert.ok(await eventually(() => backend.subscriberCount === 1));
    backend.emit({ type: 'restarted', id: 2, incarnation: 1, at: 1500 });
    backend.emit({ type: 'role', node: 3, role: 'follower', term: 4, leader: 0, at: 1600 });
    backend.emit({ type: 'role', node: 1, role: 'leader', term: 4, leader: 1, at: 1700 });
    backend.emit({ type: 'healed', at: 1800 });
    assert.ok(await eventually(() => s.received.includes('"healed"')), s.received);
    assert.ok(s.received.includes('data: {"type":"restarted","node":2,"at":1500,"incarnation":1}\n\n'), s.received);
    assert.ok(s.received.includes('data: {"type":"role","node":3,"at":1600,"role":"follower","term":4,"leader":null}\n\n'), s.received);
    assert.ok(s.received.includes('data: {"type":"role","node":1,"at":1700,"role":"leader","term":4,"leader":1}\n\n'), s.received);
    assert.ok(s.received.includes('data: {"type":"healed","at":1800}\n\n'), s.received);
    await s.close();
  }));

test.run();
