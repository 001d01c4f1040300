// The KV fast path in front of node:http (apps/http/fast-kv.ts): which requests it takes and
// which it hands on, pipelined answers in order, a hand-off in the middle of a connection that
// loses no byte, and answers the same as node:http's for the same request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { FastKvFront, handOff, incomplete, parseRequest, type FastKvSettings } from '../../apps/http/fast-kv.ts';
import type { KvAnswerSink, KvOps } from '../../apps/http/server.ts';
import { use } from './harness.ts';

const s: FastKvSettings = { headerBytesMax: 8192, valueBytesMax: 1024, requestDeadlineMs: 1000, keepAliveMs: 5000, pipelinedMax: 64 };
const req = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');

test('parseRequest takes plain KV requests and leaves everything else to node:http', () => {
  const putBytes = req('PUT /kv/a-b.c_1 HTTP/1.1\nHost: x\nContent-Length: 3\n\nabcEXTRA');
  const put = parseRequest(putBytes, s);
  assert.ok(typeof put === 'object');
  if (typeof put === 'object') {
    assert.is(put.method, 'PUT');
    assert.is(put.key, 'a-b.c_1');
    assert.is(putBytes.toString('latin1', put.bodyAt, put.bodyAt + put.bodyBytes), 'abc');
    assert.is(put.end, req('PUT /kv/a-b.c_1 HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc').length);
  }
  const get = parseRequest(req('GET /kv/k HTTP/1.1\nhost: x\n\n'), s);
  assert.ok(typeof get === 'object' && get.method === 'GET' && get.bodyBytes === 0);
  assert.is(parseRequest(req('GET /kv/k HTTP/1.1\nhost: x\n'), s), incomplete, 'headers not complete yet');
  const handedOn = [
    'GET /kv/k?read=stale HTTP/1.1\n\n',
    'GET /kv/a%20b HTTP/1.1\n\n',
    'GET /kv/ HTTP/1.1\n\n',
    'GET /kv/a/cas HTTP/1.1\n\n',
    'POST /kv/a/cas HTTP/1.1\n\n',
    'HEAD /kv/a HTTP/1.1\n\n',
    'GET /cluster HTTP/1.1\n\n',
    'GET /kv/a HTTP/1.0\n\n',
    'PUT /kv/a HTTP/1.1\nTransfer-Encoding: chunked\n\n',
    'PUT /kv/a HTTP/1.1\n\n',
    'PUT /kv/a HTTP/1.1\nContent-Length: 2048\n\n',
    'PUT /kv/a HTTP/1.1\nContent-Length: 5\n\nab',
    'PUT /kv/a HTTP/1.1\nContent-Length: 1\nContent-Length: 1\n\na',
    'PUT /kv/a HTTP/1.1\nExpect: 100-continue\nContent-Length: 1\n\na',
    'PUT /kv/a HTTP/1.1\nX-Client-Id: me\nX-Request-Seq: 1\nContent-Length: 1\n\na',
    'GET /kv/a HTTP/1.1\nConnection: close\n\n',
    'DELETE /kv/a HTTP/1.1\nContent-Length: 1\n\na',
    `GET /kv/a HTTP/1.1\nX-Big: ${'x'.repeat(9000)}\n\n`,
  ];
  for (const r of handedOn) assert.is(parseRequest(req(r), s), handOff, r.slice(0, 60));
});

test('parseRequest: header names in any case, lengths between blanks, at an offset; odd values hand off', () => {
  const two = req('PUT /kv/x HTTP/1.1\ncOnTeNt-LeNgTh:\t 2 \nHOST: y\n\nabDELETE /kv/y HTTP/1.1\nconnection: keep-alive\n\nGET');
  const first = parseRequest(two, s);
  assert.ok(typeof first === 'object' && first.method === 'PUT' && first.key === 'x' && first.bodyBytes === 2);
  if (typeof first !== 'object') return;
  assert.is(two.toString('latin1', first.bodyAt, first.end), 'ab');
  const second = parseRequest(two, s, first.end);
  assert.ok(typeof second === 'object' && second.method === 'DELETE' && second.key === 'y' && second.bodyBytes === 0, 'the second request, at an offset');
  if (typeof second !== 'object') return;
  assert.is(parseRequest(two, s, second.end), incomplete, 'a third only begun');
  const handedOn = [
    'PUT /kv/a HTTP/1.1\nContent-Length: 1a\n\n1a',
    'PUT /kv/a HTTP/1.1\nContent-Length: -1\n\n',
    'PUT /kv/a HTTP/1.1\nContent-Length: \n\n',
    'PUT /kv/a HTTP/1.1\nContent-Length: 1 1\n\n11',
    'PUT /kv/a HTTP/1.1\nContent-Length: 0000000000001\n\na',
    // Not Content-Length (a blank before the colon): a PUT without a length.
    'PUT /kv/a HTTP/1.1\nContent-Length : 1\n\na',
    'PUT /kv/a HTTP/1.1\nTRANSFER-ENCODING: chunked\nContent-Length: 1\n\na',
    'GET /kv/a HTTP/1.1\nCONNECTION: Upgrade\nUpgrade: websocket\n\n',
    'GET /kv/a HTTP/1.1\nconnection: keep-alive, close\n\n',
    'GET /kv/a HTTP/1.1\nX-REQUEST-SEQ: 1\n\n',
    'GET /kv/a HTTP/1.1\nno colon here\n\n',
    'GET /kv/a b HTTP/1.1\n\n',
    'GET /kv/a  HTTP/1.1\n\n',
    'GET /kv/a HTTP/1.10\n\n',
    'get /kv/a HTTP/1.1\n\n',
    'PATCH /kv/a HTTP/1.1\nContent-Length: 1\n\na',
  ];
  for (const r of handedOn) assert.is(parseRequest(req(r), s), handOff, r.slice(0, 60));
  const exact = parseRequest(req('PUT /kv/a HTTP/1.1\nContent-Length: 000000000002\n\nab'), s);
  assert.ok(typeof exact === 'object' && exact.bodyBytes === 2, 'twelve digits, leading zeros');
  const withToken: FastKvSettings = { ...s, authorized: (h) => h === 'Bearer t' };
  assert.ok(typeof parseRequest(req('GET /kv/a HTTP/1.1\nauthorization:  Bearer t \n\n'), withToken) === 'object');
  assert.is(parseRequest(req('GET /kv/a HTTP/1.1\nAuthorization: Bearer u\n\n'), withToken), handOff);
  assert.is(parseRequest(req('GET /kv/a HTTP/1.1\n\n'), withToken), handOff);
  assert.is(parseRequest(req('GET /kv/a HTTP/1.1\nAuthorization: Bearer t\nAuthorization: Bearer t\n\n'), withToken), handOff);
});

/** A FastKvFront alone on 127.0.0.1:0 over `kv`; node:http (for hand-offs) answers 418. */
async function front(kv: KvOps, settings: Partial<FastKvSettings> = {}): Promise<{ port: number; front: FastKvFront; close(): Promise<void> }> {
  const http = createHttpServer((_req, res) => res.writeHead(418).end());
  const f = new FastKvFront(kv, { ...s, ...settings }, http);
  const listener = createServer(f.accept);
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  return {
    port: (listener.address() as AddressInfo).port,
    front: f,
    close: () =>
      new Promise((r) => {
        f.closeAll();
        listener.close(() => r());
      }),
  };
}

/** Requests the KvOps were given, to answer when and how a test likes. */
function heldOps(): { kv: KvOps; held: { key: string; sink: KvAnswerSink; tag: number }[] } {
  const held: { key: string; sink: KvAnswerSink; tag: number }[] = [];
  const hold = (key: string, _deadlineAtMs: number, sink: KvAnswerSink, tag: number) => void held.push({ key, sink, tag });
  return { kv: { put: (key, _value, deadlineAtMs, sink, tag) => hold(key, deadlineAtMs, sink, tag), get: hold, delete: hold }, held };
}

test('answers given out of order, and at once, go out in request order', async () => {
  const { kv, held } = heldOps();
  const sync: KvOps = {
    ...kv,
    // A DELETE is answered before the call returns.
    delete: (key, _deadlineAtMs, sink, tag) => sink.replied(tag, { status: 404, headers: { 'content-type': 'text/plain' }, body: `no ${key}` }),
  };
  const f = await front(sync);
  try {
    const answers = exchange(f.port, ['PUT /kv/a HTTP/1.1\nContent-Length: 1\n\n1GET /kv/b HTTP/1.1\n\nDELETE /kv/c HTTP/1.1\n\nPUT /kv/d HTTP/1.1\nContent-Length: 1\n\n2'], 4);
    while (held.length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.equal(held.map((h) => h.key), ['a', 'b', 'd']);
    held[2]!.sink.putApplied(held[2]!.tag, 9);
    held[1]!.sink.valueFound(held[1]!.tag, Buffer.from('vb'), { value: null, index: 7, node: 1, applied: 8, commit: 9 });
    await new Promise((r) => setTimeout(r, 30));
    held[0]!.sink.putApplied(held[0]!.tag, 6);
    const got = await answers;
    assert.equal(got.map((a) => a.status), [200, 200, 404, 200]);
    assert.equal(got.map((a) => a.body), ['{"index":6}', 'vb', 'no c', '{"index":9}']);
    assert.match(got[1]!.head, /x-concur-index: 7\r\nx-concur-node: 1\r\nx-concur-applied-index: 8\r\nx-concur-commit-index: 9\r\n/);
  } finally {
    await f.close();
  }
});

/** A connection, and when it closed (null: open). */
function watch(port: number, text?: string): { socket: Socket; closedAtMs: () => number | null } {
  const socket = connect(port, '127.0.0.1');
  let closed: number | null = null;
  socket.on('close', () => (closed = Date.now()));
  socket.on('data', () => {});
  socket.on('error', () => {});
  if (text !== undefined) socket.write(req(text));
  return { socket, closedAtMs: () => closed };
}

test('an idle connection is closed after keepAliveMs, not before; one waiting for an answer is kept', async () => {
  const { kv, held } = heldOps();
  const f = await front(kv, { keepAliveMs: 100 });
  try {
    const openedAtMs = Date.now();
    const idle = watch(f.port);
    const waiting = watch(f.port, 'GET /kv/w HTTP/1.1\n\n');
    await new Promise((r) => setTimeout(r, 80));
    assert.is(idle.closedAtMs(), null, 'not before keepAliveMs');
    await new Promise((r) => setTimeout(r, 170));
    const closedAfterMs = idle.closedAtMs()! - openedAtMs;
    assert.ok(idle.closedAtMs() !== null && closedAfterMs >= 100 && closedAfterMs < 250, `idle closed after ${closedAfterMs} ms`);
    assert.is(waiting.closedAtMs(), null, 'a connection waiting for an answer stays');
    const answeredAtMs = Date.now();
    held[0]!.sink.replied(held[0]!.tag, { status: 404, headers: {}, body: '' });
    while (waiting.closedAtMs() === null) await new Promise((r) => setTimeout(r, 5));
    assert.ok(waiting.closedAtMs()! - answeredAtMs >= 100, 'then idle from its answer');
    assert.is(f.front.size, 0);
  } finally {
    await f.close();
  }
});

/** Sends raw bytes on one connection and collects `answers` whole HTTP answers. */
function exchange(port: number, chunks: string[], answers: number): Promise<{ status: number; head: string; body: string }[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: { status: number; head: string; body: string }[] = [];
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) break;
        out.push({ status: Number(head.split(' ')[1]), head: head.toLowerCase(), body: buf.toString('utf8', end + 4, end + 4 + len) });
        buf = buf.subarray(end + 4 + len);
      }
      if (out.length >= answers) {
        sock.destroy();
        resolve(out);
      }
    });
    sock.on('error', reject);
    let i = 0;
    const next = () => {
      if (i < chunks.length) sock.write(req(chunks[i++]!), () => setTimeout(next, 20));
    };
    next();
  });
}

test('pipelined KV requests are answered in order, then a hand-off mid-connection loses nothing', () =>
  use(async ({ api }) => {
    const answers = await exchange(
      api.port,
      [
        // Three in one write, a fourth split across writes, then routes the fast path does not take.
        'PUT /kv/a HTTP/1.1\nHost: x\nContent-Length: 2\n\nv1PUT /kv/a HTTP/1.1\nHost: x\nContent-Length: 2\n\nv2GET /kv/a HTTP/1.1\nHost: x\n\n',
        'DELETE /kv/a HTTP/1.1\nHo',
        'st: x\n\nGET /kv/a HTTP/1.1\nHost: x\n\n',
        'GET /cluster HTTP/1.1\nHost: x\n\nPUT /kv/b?x=1 HTTP/1.1\nHost: x\nContent-Length: 1\n\nz',
        'PUT /kv/c HTTP/1.1\nHost: x\nContent-Length: 2\n\nok',
      ],
      8,
    );
    assert.equal(answers.map((a) => a.status), [200, 200, 200, 200, 404, 200, 400, 200]);
    assert.match(answers[0]!.body, /"index":\d+/);
    assert.is(answers[2]!.body, 'v2', 'the GET sees the second PUT: in order');
    assert.match(answers[3]!.body, /"existed":true/);
    assert.match(answers[4]!.body, /"code":"key-not-found"/);
    assert.match(answers[5]!.body, /"leader"/, 'GET /cluster answered by node:http after the hand-off');
    assert.match(answers[6]!.body, /"code":"bad-parameter"/, 'a PUT with a query: node:http answers it (a PUT takes no parameters)');
    assert.match(answers[7]!.body, /"index":\d+/, 'a KV request after the hand-off: node:http serves it');
  }));

test('the fast path answers as node:http does for the same request', () =>
  use(async ({ url }) => {
    assert.is((await fetch(`${url}/kv/same`, { method: 'PUT', body: 'value' })).status, 200);
    const fast = await fetch(`${url}/kv/same`);
    const slow = await fetch(`${url}/kv/same?read=index`);
    assert.is(fast.status, slow.status);
    assert.is(await fast.text(), await slow.text());
    for (const h of ['content-type', 'cache-control', 'x-concur-index', 'x-concur-node', 'x-concur-applied-index', 'x-concur-commit-index']) assert.is(fast.headers.get(h), slow.headers.get(h), h);
    const fastMissing = await fetch(`${url}/kv/none`);
    const slowMissing = await fetch(`${url}/kv/none?read=index`);
    assert.is(fastMissing.status, 404);
    assert.equal(await fastMissing.json(), await slowMissing.json());
    const tooLong = 'k'.repeat(2000);
    const badKey = await fetch(`${url}/kv/${tooLong}`, { method: 'PUT', body: 'x' });
    assert.is(badKey.status, 400);
    assert.is(((await badKey.json()) as { code: string }).code, 'bad-key');
  }));

test.run();
