// The fast path's precomputed answers (apps/http/reply-bytes.ts): byte for byte what the general
// encoder writes for the same KvReply, and, over a real server, the headers node:http sends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { encodeIndexReply, encodeReply, encodeValueReply, type ReplyShape } from '../../apps/http/reply-bytes.ts';
import { jsonReply } from '../../apps/http/server.ts';
import { use } from './harness.ts';

const bytes = (x: Buffer | string): Buffer => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x);

/** a() and b() encoded within one second (the Date header is the only part that moves). */
function sameSecond(a: () => Buffer | string, b: () => Buffer | string): [Buffer, Buffer] {
  for (;;) {
    const before = Math.floor(Date.now() / 1000);
    const x = bytes(a());
    const y = bytes(b());
    if (Math.floor(Date.now() / 1000) === before) return [x, y];
  }
}

test('encodeIndexReply: the bytes encodeReply writes for jsonReply(200, { index })', () => {
  for (const index of [0, 1, 9, 10, 4_711, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    const [fast, general] = sameSecond(() => encodeIndexReply(index), () => encodeReply(jsonReply(200, { index })));
    assert.equal(fast, general, `index ${index}`);
  }
  const text = encodeIndexReply(12);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\r\ncontent-length: 12\r\n/);
  assert.match(text, /\r\ndate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/);
  assert.ok(text.endsWith('\r\n\r\n{"index":12}'));
});

test('encodeValueReply: the bytes encodeReply writes for a GET that found the value', () => {
  const values = [new Uint8Array(0), new TextEncoder().encode('hello'), Uint8Array.from({ length: 256 }, (_, i) => i), new Uint8Array(10_000).fill(7)];
  // A view into a larger buffer: only its bytes are sent.
  const big = Buffer.from('xxabcxx');
  values.push(big.subarray(2, 5));
  for (const value of values) {
    const at = { index: 41, node: 2, applied: 43, commit: 44 };
    const shape: ReplyShape = {
      status: 200,
      headers: {
        'cache-control': 'no-store',
        'x-concur-index': '41',
        'x-concur-node': '2',
        'x-concur-applied-index': '43',
        'x-concur-commit-index': '44',
        'content-type': 'application/octet-stream',
      },
      body: value,
    };
    const [fast, general] = sameSecond(() => encodeValueReply(value, at), () => encodeReply(shape));
    assert.equal(fast, general, `${value.byteLength} bytes`);
    assert.equal(fast.subarray(fast.byteLength - value.byteLength), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
});

/** One request on a fresh connection: status line and headers (lower-cased names), body. */
function once(port: number, request: string): Promise<{ statusLine: string; headers: Map<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
      const length = Number(headers.get('content-length'));
      if (buf.byteLength < end + 4 + length) return;
      sock.destroy();
      resolve({ statusLine: lines[0]!, headers, body: buf.toString('latin1', end + 4, end + 4 + length) });
    });
    sock.on('error', reject);
    sock.write(request.replace(/\n/g, '\r\n'));
  });
}

test('a PUT answered on the fast path has the status line and headers node:http gives the same PUT', () =>
  use(async ({ api }) => {
    const fast = await once(api.port, 'PUT /kv/p HTTP/1.1\nHost: x\nContent-Length: 2\n\nv1');
    // Client identity headers hand the connection to node:http, which serves the same route.
    const slow = await once(api.port, 'PUT /kv/p HTTP/1.1\nHost: x\nX-Client-Id: reply-test\nX-Request-Seq: 1\nContent-Length: 2\n\nv2');
    assert.is(fast.statusLine, slow.statusLine);
    assert.match(fast.body, /^\{"index":\d+\}$/);
    assert.match(slow.body, /^\{"index":\d+\}$/);
    for (const h of ['content-type', 'cache-control', 'connection']) assert.is(fast.headers.get(h), slow.headers.get(h), h);
    assert.is(fast.headers.get('content-length'), String(fast.body.length));
    assert.ok(Math.abs(Date.parse(fast.headers.get('date')!) - Date.parse(slow.headers.get('date')!)) <= 2_000);
  }));

test.run();
