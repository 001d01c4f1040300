// The socket floor server (bench/socket-floor.mjs) must answer every request once, even one split
// between chunks, or a comparison loading it would hang or count wrong.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startSocketFloor } from '../../bench/socket-floor-process.ts';

const script = fileURLToPath(new URL('../../bench/socket-floor.mjs', import.meta.url));

/**
 * Sends `pieces` one write (and one pause) apart and collects what comes back: once `expectBytes`
 * have come (or 2 s passed), a little longer, so a reply too many is caught too.
 */
async function exchange(port: number, pieces: string[], expectBytes: number): Promise<string> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((r) => socket.once('connect', r));
  let got = '';
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d) => {
      got += d;
      if (got.length >= expectBytes) resolve();
    });
    socket.once('error', reject);
  });
  for (const p of pieces) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, 2_000))]);
  await new Promise((r) => setTimeout(r, 50));
  socket.destroy();
  return got;
}

test('RESP: SET and GET answered once each, in order, a request split anywhere included', async () => {
  const { port, stop } = await startSocketFloor('resp');
  try {
    const set = '*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n';
    const get = '*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n';
    const stream = set + get + set + get;
    const want = '+OK\r\n$3\r\nxxx\r\n+OK\r\n$3\r\nxxx\r\n';
    for (const cut of [1, set.length, set.length + 1, set.length + get.length - 1, stream.length - 1]) {
      assert.is(await exchange(port, [stream.slice(0, cut), stream.slice(cut)], want.length), want, `cut at ${cut}`);
    }
  } finally {
    await stop();
  }
});

test('HTTP: one reply per request, a blank line split between chunks counted once', async () => {
  const { port, stop } = await startSocketFloor('http');
  try {
    const put = 'PUT /kv/bench HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nvvv';
    const stream = put + put + put;
    const reply = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"index":123}';
    const end = put.indexOf('\r\n\r\n');
    for (const cut of [end + 1, end + 2, end + 3, end + 4, put.length + end + 2]) {
      const got = await exchange(port, [stream.slice(0, cut), stream.slice(cut)], 3 * reply.length);
      assert.is(got, reply.repeat(3), `cut at ${cut}`);
    }
  } finally {
    await stop();
  }
});

test('an unknown kind is refused with its usage', async () => {
  const child = spawn(process.execPath, [script, 'smtp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const code = await new Promise((r) => child.once('exit', r));
  assert.is(code, 2);
  assert.match(err, /usage: node bench\/socket-floor\.mjs resp\|http/);
});

test.run();
