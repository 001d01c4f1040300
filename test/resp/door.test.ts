// The Redis door over a fake backend (test/support/local-backend.ts), byte for byte with a raw
// client: each error answer, the order of pipelined answers, the limits, and a malformed stream
// that closes its own connection while another goes on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BusyError, ConflictError, type LocalReadMode, type LocalReadResult, NoQuorumError } from '../../apps/http/backend.ts';
import { startRespServer, type RespServer } from '../../apps/resp/server.ts';
import type { RespSettings } from '../../apps/resp/settings.ts';
import { LocalBackend } from '../support/local-backend.ts';
import { type Answer, encodeRequest, RawClient, text } from './support.ts';

/** Refuses lease reads as a Multi-Paxos cluster does. */
class NoLeaseBackend extends LocalBackend {
  override read(key: string, mode: LocalReadMode, timeoutMs: number, opts: { via?: number; app?: string } = {}): Promise<LocalReadResult> {
    if (mode === 'lease') return Promise.reject(new ConflictError('read=lease is not available on multipaxos (its leader holds no lease); use read=index (the default), follower, log or stale', 'read-mode-unavailable'));
    return super.read(key, mode, timeoutMs, opts);
  }
}

async function withDoor(settings: Partial<RespSettings>, body: (door: RespServer, backend: LocalBackend) => Promise<void>, backend: LocalBackend = new LocalBackend()): Promise<void> {
  const door = await startRespServer(backend, { port: 0, ...settings }, { onInternalError: () => {} });
  try {
    await body(door, backend);
  } finally {
    await door.close();
  }
}

const isError = (a: unknown, pattern: RegExp) => {
  assert.ok(a instanceof Error, `expected an error answer, got ${String(a)}`);
  assert.match((a as Error).message, pattern);
};

test('strings: SET with NX, XX and GET; GET, GETSET, SETNX, MSET, MGET, INCR, DECRBY, DEL, EXISTS, DBSIZE, TYPE', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    assert.is(text(await c.call('SET', 'k', 'v1')), 'OK');
    assert.is(await c.call('SET', 'k', 'v2', 'NX'), null);
    assert.is(text(await c.call('SET', 'k', 'v2', 'XX', 'GET')), 'v1');
    assert.is(await c.call('SET', 'absent', 'v', 'XX'), null);
    assert.is(await c.call('SET', 'new', 'v', 'GET'), null);
    assert.is(text(await c.call('SET', 'new', 'v3', 'nx', 'get')), 'v');
    assert.is(text(await c.call('GET', 'new')), 'v');
    assert.is(text(await c.call('SET', 'k', 'v4', 'KEEPTTL')), 'OK');
    assert.is(text(await c.call('GETSET', 'k', 'v5')), 'v4');
    assert.is(await c.call('SETNX', 'k', 'x'), 0);
    assert.is(await c.call('SETNX', 'k2', 'x'), 1);
    assert.is(text(await c.call('MSET', 'a', '1', 'b', '2')), 'OK');
    assert.equal((await c.call('MGET', 'a', 'nope', 'b')) as Buffer[], [Buffer.from('1'), null, Buffer.from('2')]);
    assert.is(await c.call('INCR', 'a'), 2);
    assert.is(await c.call('INCRBY', 'a', '40'), 42);
    assert.is(await c.call('DECRBY', 'a', '50'), -8);
    assert.is(await c.call('DECR', 'fresh'), -1);
    assert.is(await c.call('EXISTS', 'a', 'a', 'nope'), 2);
    assert.is(text(await c.call('TYPE', 'a')), 'string');
    assert.is(text(await c.call('TYPE', 'nope')), 'none');
    assert.is(await c.call('DBSIZE'), 6);
    assert.is(await c.call('DEL', 'a', 'b', 'nope'), 2);
    assert.is(await c.call('UNLINK', 'k2'), 1);
    assert.is(await c.call('GET', 'a'), null);
    // Binary values round-trip.
    const bin = Buffer.from([0, 255, 13, 10, 36]);
    assert.is(text(await c.call('SET', 'bin', bin)), 'OK');
    assert.equal(await c.call('GET', 'bin'), bin);
    c.close();
  }));

test('SCAN walks keys in order with numeric cursors, MATCH and COUNT; bad cursors are refused', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    const keys = Array.from({ length: 25 }, (_, i) => `user:${String(i).padStart(2, '0')}`);
    await c.call('MSET', ...keys.flatMap((k) => [k, 'v']), 'other', 'v');
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const [next, batch] = (await c.call('SCAN', cursor, 'MATCH', 'user:*', 'COUNT', '10')) as [Buffer, Buffer[]];
      cursor = next.toString();
      assert.ok(/^\d+$/.test(cursor), 'a numeric cursor, as redis-cli parses it');
      seen.push(...batch.map((b) => b.toString()));
      pages++;
    } while (cursor !== '0');
    assert.equal(seen, keys);
    assert.ok(pages >= 3);
    // MATCH beyond the prefix filters within each page.
    const [, odd] = (await c.call('SCAN', '0', 'MATCH', 'user:?[13579]', 'COUNT', '1000')) as [Buffer, Buffer[]];
    assert.is(odd.length, 12);
    const [, none] = (await c.call('SCAN', '0', 'TYPE', 'hash', 'COUNT', '1000')) as [Buffer, Buffer[]];
    assert.is(none.length, 0);
    isError(await c.call('SCAN', '12345'), /^ERR invalid cursor/);
    isError(await c.call('SCAN', 'abc'), /^ERR invalid cursor/);
    isError(await c.call('SCAN', '0', 'COUNT', 'x'), /^ERR value is not an integer or out of range/);
    isError(await c.call('SCAN', '0', 'COUNT', '0'), /^ERR syntax error/);
    isError(await c.call('SCAN', '0', 'BOGUS', '1'), /^ERR syntax error/);
    c.close();
  }));

test('errors: arity, unknown commands, syntax, not an integer, overflow, TTLs, databases, transactions', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    isError(await c.call('GET'), /^ERR wrong number of arguments for 'get' command$/);
    isError(await c.call('GET', 'a', 'b'), /^ERR wrong number of arguments for 'get' command$/);
    isError(await c.call('MSET', 'a', '1', 'b'), /^ERR wrong number of arguments for 'mset' command$/);
    isError(await c.call('FLUSHALL', 'ASYNC'), /^ERR unknown command 'FLUSHALL', with args beginning with: 'ASYNC' $/);
    isError(await c.call('SET', 'k', 'v', 'NX', 'XX'), /^ERR syntax error$/);
    isError(await c.call('SET', 'k', 'v', 'EX', '10'), /^ERR SET EX is not supported: concur's KV store keeps no expiry/);
    isError(await c.call('SET', 'k', 'v', 'PX', '10'), /^ERR SET PX is not supported/);
    await c.call('SET', 'word', 'hello');
    isError(await c.call('INCR', 'word'), /^ERR value is not an integer or out of range$/);
    isError(await c.call('INCRBY', 'n', '1.5'), /^ERR value is not an integer or out of range$/);
    await c.call('SET', 'max', '9223372036854775807');
    isError(await c.call('INCR', 'max'), /^ERR value is not an integer or out of range$/);
    isError(await c.call('DECRBY', 'n', '-9223372036854775808'), /^ERR decrement would overflow$/);
    isError(await c.call('SELECT', '1'), /^ERR DB index is out of range/);
    assert.is(text(await c.call('SELECT', '0')), 'OK');
    isError(await c.call('MULTI'), /^ERR MULTI is not supported: concur has no transactions/);
    // What a client queued behind MULTI does not run on its own.
    isError(await c.call('SET', 'in-multi', 'v'), /^ERR SET was not run: it follows a MULTI, which concur does not support; send DISCARD \(or EXEC\) to go on$/);
    isError(await c.call('EXEC'), /^EXECABORT Transaction discarded: MULTI is not supported/);
    assert.is(await c.call('GET', 'in-multi'), null);
    isError(await c.call('EXEC'), /^ERR EXEC without MULTI$/);
    isError(await c.call('MULTI'), /^ERR MULTI/);
    assert.is(text(await c.call('DISCARD')), 'OK');
    isError(await c.call('WATCH', 'k'), /^ERR WATCH is not supported/);
    isError(await c.call('GET', ''), /^ERR concur keys must not be empty/);
    isError(await c.call('GET', Buffer.from([0xff, 0xfe])), /^ERR concur keys are text: this key is not valid UTF-8/);
    isError(await c.call('CLIENT', 'BOGUS'), /^ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.$/);
    isError(await c.call('CLIENT', 'READMODE', 'fast'), /^ERR unknown read mode 'fast'; use one of log, index, lease, follower, stale$/);
    isError(await c.call('AUTH', 'secret'), /^ERR AUTH <password> called without any password configured/);
    assert.is(text(await c.call('PING')), 'PONG');
    c.close();
  }));

test('oversize keys and values are refused with the limit; a request over requestBytesMax is dropped and the connection goes on', () =>
  withDoor({ valueBytesMax: 100, keyBytesMax: 10, requestBytesMax: 1000 }, async (door, backend) => {
    const c = await RawClient.open(door.port);
    isError(await c.call('SET', 'k', 'x'.repeat(101)), /^ERR the value is 101 bytes; the limit is 100$/);
    isError(await c.call('GET', 'k'.repeat(11)), /^ERR the key is 11 bytes; the limit is 10$/);
    // MSET together may carry what one SET may: keyBytesMax + valueBytesMax.
    isError(await c.call('MSET', 'a', 'x'.repeat(100), 'b', 'x'.repeat(10)), /^ERR an mput carries 112 bytes of keys and values; the limit is 110/);
    c.command('SET', 'big', 'x'.repeat(5000));
    c.command('SET', 'after', 'ok');
    isError(await c.next(), /^ERR the request is \d+ bytes or more; the limit is 1000 \(a value may be at most 100 bytes\); it was not run$/);
    assert.is(text(await c.next()), 'OK');
    assert.is(text(await c.call('GET', 'after')), 'ok');
    assert.is(backend.sm.readLocal('big'), undefined);
    c.close();
  }));

test('a clientIdBytesMax below the lanes\' ids refuses a plain SET with the limit, and stores nothing', () =>
  withDoor({ clientIdBytesMax: 8 }, async (door, backend) => {
    const c = await RawClient.open(door.port);
    // A plain SET takes the door's byte path, whose lane id (~20 bytes) the limit refuses: the
    // general path then says why, as it does for a SET with options.
    isError(await c.call('SET', 'k', 'v'), /^ERR the client id is longer than 8 bytes$/);
    isError(await c.call('SET', 'k', 'v', 'NX'), /^ERR the client id is longer than 8 bytes$/);
    assert.is(backend.sm.readLocal('k'), undefined);
    c.close();
  }));

test('a malformed stream closes that connection only; its earlier commands are answered first', () =>
  withDoor({}, async (door) => {
    const good = await RawClient.open(door.port);
    const bad = await RawClient.open(door.port);
    bad.send(Buffer.concat([encodeRequest(['SET', 'x', '1']), Buffer.from('*1\r\n:5\r\n'), encodeRequest(['SET', 'y', '2'])]));
    assert.is(text(await bad.next()), 'OK');
    isError(await bad.next(), /^ERR Protocol error: expected '\$', got ":"$/);
    await bad.closed;
    const inline = await RawClient.open(door.port);
    inline.send('PING\r\n');
    isError(await inline.next(), /inline commands are not supported/);
    await inline.closed;
    assert.is(text(await good.call('GET', 'x')), '1');
    assert.is(await good.call('GET', 'y'), null, 'nothing after the error was run');
    good.close();
  }));

test('backend failures: no leader, no quorum and busy answer TRYAGAIN; a deadline answers TIMEOUT; a backend that hangs is cut by the door', () =>
  withDoor({ requestDeadlineMs: 300 }, async (door, backend) => {
    const c = await RawClient.open(door.port);
    backend.noLeader = true;
    isError(await c.call('SET', 'k', 'v'), /^TRYAGAIN no leader is elected right now; retry shortly$/);
    isError(await c.call('GET', 'k'), /^TRYAGAIN no leader/);
    backend.noLeader = false;
    backend.partition([[1], [2, 3]]);
    backend.crash(2);
    isError(await c.call('SET', 'k', 'v'), /^TRYAGAIN the leader cannot reach a quorum/);
    backend.heal();
    await backend.restart(2);
    backend.failWith = new BusyError();
    isError(await c.call('INCR', 'n'), /^TRYAGAIN the leader is busy; retry shortly$/);
    backend.failWith = new NoQuorumError();
    isError(await c.call('MGET', 'a', 'b'), /^TRYAGAIN the leader cannot reach a quorum/);
    backend.failWith = null;
    backend.commitDelayMs = 1_000;
    isError(await c.call('SET', 'k', 'v'), /^TIMEOUT .*may still be applied/);
    backend.commitDelayMs = 0;
    backend.hang = true;
    const started = Date.now();
    isError(await c.call('SET', 'k', 'v'), /^TIMEOUT the command was not known to be applied within 300 ms; it may still be applied$/);
    isError(await c.call('GET', 'k'), /^TIMEOUT the read was not served within 300 ms; retry$/);
    assert.ok(Date.now() - started < 2_000);
    // A whole pipeline past its deadline: every command answered, in order.
    c.send(Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeRequest(i % 2 === 0 ? ['SET', `k${i}`, 'v'] : ['PING']))));
    for (let i = 0; i < 50; i++) {
      const a = await c.next();
      if (i % 2 === 0) isError(a, /^TIMEOUT the command was not known to be applied/);
      else assert.is(text(a), 'PONG');
    }
    backend.hang = false;
    assert.is(text(await c.call('SET', 'k', 'v')), 'OK');
    c.close();
  }));

test('pipelined answers come in order, and a pipeline reads its own writes', () =>
  withDoor({}, async (door, backend) => {
    backend.commitDelayMs = 20;
    const c = await RawClient.open(door.port);
    const reqs: Buffer[] = [];
    for (let i = 0; i < 50; i++) reqs.push(encodeRequest(['SET', 'k', String(i)]), encodeRequest(['GET', 'k']), encodeRequest(['PING']), encodeRequest(['INCR', 'n']));
    c.send(Buffer.concat(reqs));
    for (let i = 0; i < 50; i++) {
      assert.is(text(await c.next()), 'OK');
      assert.is(text(await c.next()), String(i), 'the GET after a SET sees it');
      assert.is(text(await c.next()), 'PONG');
      assert.is(await c.next(), i + 1);
    }
    c.close();
  }));

for (const waiters of [true, false]) {
  test(`a stream of plain and other commands split at every byte gets the same answers in order (backend ${waiters ? 'with' : 'without'} waiters)`, () =>
    withDoor(
      {},
      async (door) => {
        for (const cut of [1, 2, 3, 7, 13, 14, 20, 33, 150]) {
          // Keys of their own per cut: each run starts from absent keys.
          const p = `cut${cut}:`;
          const reqs: Buffer[] = [];
          const expected: Answer[] = [];
          for (let i = 0; i < 6; i++) {
            // Plain SET/GET (taken from the bytes), then forms the general path takes: mixed case, options, other commands.
            reqs.push(encodeRequest(['SET', `${p}k${i}`, `v${i}`]), encodeRequest(['get', `${p}k${i}`]), encodeRequest(['SeT', `${p}n`, String(i), 'XX']), encodeRequest(['GET', `${p}n`]));
            reqs.push(encodeRequest(['INCR', `${p}c`]), encodeRequest(['GET', `${p}missing`]), encodeRequest(['SET', 'k', 'x', 'y']), encodeRequest(['GET', '']));
            expected.push('OK', `v${i}`, null, null, i + 1, null, new Error('ERR syntax error'), new Error('ERR concur keys must not be empty'));
          }
          const all = Buffer.concat(reqs);
          const c = await RawClient.open(door.port);
          // Two pieces, cut at `cut` bytes and sent apart, so the second arrives as its own read.
          c.send(all.subarray(0, cut));
          await new Promise((r) => setTimeout(r, 5));
          c.send(all.subarray(cut));
          for (const [i, want] of expected.entries()) {
            const got = await c.next();
            if (want instanceof Error) isError(got, new RegExp(`^${want.message}`));
            else assert.equal(got === null || typeof got === 'number' ? got : text(got as Buffer), want, `answer ${i} with the stream cut at ${cut}`);
          }
          c.close();
        }
      },
      new LocalBackend({ waiters }),
    ));
}

test('a client that pipelines past pendingCommandsMax is paused, not refused; connections past connectionsMax are turned away', () =>
  withDoor({ pendingCommandsMax: 8, connectionsMax: 2 }, async (door, backend) => {
    backend.commitDelayMs = 5;
    const c = await RawClient.open(door.port);
    const n = 200;
    c.send(Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest(['SET', `k${i}`, 'v']))));
    for (let i = 0; i < n; i++) assert.is(text(await c.next()), 'OK');
    const second = await RawClient.open(door.port);
    assert.is(text(await second.call('PING')), 'PONG');
    const third = await RawClient.open(door.port);
    isError(await third.next(), /^ERR max number of clients reached$/);
    await third.closed;
    c.close();
    second.close();
  }));

test('HELLO 3 switches to RESP3 (null as _), HELLO 4 answers NOPROTO; CLIENT names, ids, info; QUIT closes after answering', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    isError(await c.call('HELLO', '4'), /^NOPROTO unsupported protocol version$/);
    c.command('HELLO', '3', 'SETNAME', 'tester');
    // The raw client's parser reads RESP2 only: look at the bytes instead.
    const raw = await new Promise<string>((resolve) => {
      let got = '';
      c.socket.removeAllListeners('data');
      c.socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('modules')) resolve(got);
      });
    });
    assert.match(raw, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n/);
    assert.match(raw, /\$5\r\nproto\r\n:3\r\n/);
    const nullAnswer = await new Promise<string>((resolve) => {
      c.socket.removeAllListeners('data');
      c.socket.once('data', (d: Buffer) => resolve(d.toString('latin1')));
      c.command('GET', 'absent');
    });
    assert.is(nullAnswer, '_\r\n');
    c.close();
    const d = await RawClient.open(door.port);
    assert.is(text(await d.call('CLIENT', 'SETNAME', 'door-test')), 'OK');
    assert.is(text(await d.call('CLIENT', 'GETNAME')), 'door-test');
    isError(await d.call('CLIENT', 'SETNAME', 'has space'), /cannot contain spaces/);
    const id = (await d.call('CLIENT', 'ID')) as number;
    assert.ok(id > 0);
    assert.match(text(await d.call('CLIENT', 'INFO')), new RegExp(`^id=${id} .*name=door-test .*read-mode=index`));
    assert.match(text(await d.call('CLIENT', 'LIST')), /name=door-test/);
    assert.is(text(await d.call('CLIENT', 'SETINFO', 'LIB-NAME', 'raw')), 'OK');
    assert.is(text(await d.call('ECHO', 'hi')), 'hi');
    d.command('QUIT');
    d.command('PING');
    assert.is(text(await d.next()), 'OK');
    await d.closed;
  }));

test('CLIENT READMODE switches the read path of one connection; a mode the backend refuses is an error and not kept', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    assert.is(text(await c.call('CLIENT', 'READMODE')), 'index');
    assert.is(text(await c.call('CLIENT', 'READMODE', 'stale')), 'OK');
    assert.is(text(await c.call('CLIENT', 'READMODE')), 'stale');
    await c.call('SET', 'k', 'v');
    assert.is(text(await c.call('GET', 'k')), 'v');
    assert.is(text(await c.call('CLIENT', 'READMODE', 'log')), 'OK');
    assert.is(text(await c.call('GET', 'k')), 'v');
    assert.equal(await c.call('MGET', 'k', 'nope'), [Buffer.from('v'), null]);
    isError(await c.call('CLIENT', 'READMODE', 'lease'), /^ERR read=lease is not available on multipaxos/);
    assert.is(text(await c.call('CLIENT', 'READMODE')), 'log');
    c.close();
  }, new NoLeaseBackend()));

test('INFO tells role, leader, term, commit index and the nodes; COMMAND, COMMAND COUNT and COMMAND DOCS describe the table; CONFIG GET answers what redis-benchmark asks', () =>
  withDoor({}, async (door) => {
    const c = await RawClient.open(door.port);
    await c.call('SET', 'k', 'v');
    const info = text(await c.call('INFO'));
    for (const line of ['# Server', 'redis_version:7.0.0', 'loading:0', 'role:master', 'leader:1', 'term:1', 'commit_index:1', 'nodes:3', 'nodes_up:3', 'db0:keys=1,expires=0,avg_ttl=0']) assert.ok(info.includes(line), `INFO has ${line}`);
    assert.match(info, /node1:role=leader,up=1,term=1,commit_index=1/);
    const only = text(await c.call('INFO', 'concur'));
    assert.ok(only.startsWith('# Concur') && !only.includes('# Server'));
    const count = (await c.call('COMMAND', 'COUNT')) as number;
    const all = (await c.call('COMMAND')) as Answer[];
    assert.is(all.length, count);
    const get = (await c.call('COMMAND', 'INFO', 'get')) as Answer[][];
    const plain = (x: Answer): unknown => (Buffer.isBuffer(x) ? x.toString() : Array.isArray(x) ? x.map(plain) : x);
    assert.equal(plain(get[0]!.slice(0, 6)), ['get', 2, ['readonly', 'fast'], 1, 1, 1]);
    const docs = (await c.call('COMMAND', 'DOCS', 'set')) as Answer[];
    assert.is(text(docs[0]!), 'set');
    assert.ok(text((docs[1] as Answer[])[1]!).includes('NX'));
    assert.equal((await c.call('CONFIG', 'GET', 'save')) as Buffer[], [Buffer.from('save'), Buffer.from('')]);
    assert.equal((await c.call('CONFIG', 'GET', 'appendonly')) as Buffer[], [Buffer.from('appendonly'), Buffer.from('no')]);
    isError(await c.call('CONFIG', 'SET', 'save', ''), /^ERR CONFIG SET is not supported/);
    c.close();
  }));

test('a client that ends its side after sending still gets every answer, then the connection closes', () =>
  withDoor({}, async (door, backend) => {
    backend.commitDelayMs = 50;
    const c = await RawClient.open(door.port);
    c.socket.end(Buffer.concat([encodeRequest(['SET', 'half', 'open']), encodeRequest(['GET', 'half'])]));
    assert.is(text(await c.next()), 'OK');
    assert.is(text(await c.next()), 'open');
    await c.closed;
  }));

test('close() ends idle connections and answers what was asked before cutting', () =>
  withDoor({}, async (door, backend) => {
    const idle = await RawClient.open(door.port);
    const busy = await RawClient.open(door.port);
    backend.commitDelayMs = 100;
    busy.command('SET', 'k', 'v');
    await new Promise((r) => setTimeout(r, 20));
    const closing = door.close();
    assert.is(text(await busy.next()), 'OK');
    await Promise.all([idle.closed, busy.closed, closing]);
  }));

test.run();
