// The KV fast path in front of node:http (apps/http/fast-kv.ts): which requests it takes and
// which it hands on, pipelined answers in order, a hand-off in the middle of a connection that
// loses no byte, and answers the same as node:http's for the same request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { handOff, incomplete, parseRequest, type FastKvSettings } from '../../apps/http/fast-kv.ts';
import { use } from './harness.ts';

const s: FastKvSettings = { headerBytesMax: 8192, valueBytesMax: 1024, requestDeadlineMs: 1000, keepAliveMs: 5000, pipelinedMax: 64 };
const req = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');

test('parseRequest takes plain KV requests and leaves everything else to node:http', () => {
  const put = parseRequest(req('PUT /kv/a-b.c_1 HTTP/1.1\nHost: x\nContent-Length: 3\n\nabcEXTRA'), s);
  assert.ok(typeof put === 'object');
  if (typeof put === 'object') {
    assert.is(put.method, 'PUT');
    assert.is(put.key, 'a-b.c_1');
    assert.is(Buffer.from(put.body!).toString(), 'abc');
    assert.is(put.bytes, req('PUT /kv/a-b.c_1 HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc').length);
  }
  const get = parseRequest(req('GET /kv/k HTTP/1.1\nhost: x\n\n'), s);
  assert.ok(typeof get === 'object' && get.method === 'GET' && get.body === null);
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
