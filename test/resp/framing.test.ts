// The Redis door's pure pieces: request framing ahead of the parser (what is fed, dropped, or
// fatal), glob matching for SCAN MATCH, and answer encoding. No sockets, no cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RequestFramer } from '../../apps/resp/framing.ts';
import { globMatcher, literalPrefix } from '../../apps/resp/glob.ts';
import { array, bulk, bulkOrNil, error, integer, map } from '../../apps/resp/reply.ts';
import { encodeRequest } from './support.ts';

type Event = ['feed', string] | ['drop', number] | ['fatal', string];

/** Runs the framer over `chunks` and returns what it told, feeds as text. */
function frame(chunks: Array<string | Buffer>, requestBytesMax = 1024, argsMax = 100): Event[] {
  const events: Event[] = [];
  const f = new RequestFramer(requestBytesMax, argsMax, {
    feed: (chunk, start, end) => events.push(['feed', chunk.subarray(start, end).toString('latin1')]),
    drop: (bytes) => events.push(['drop', bytes]),
    fatal: (message) => events.push(['fatal', message]),
  });
  for (const c of chunks) f.scan(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return events;
}

test('whole and split requests are fed as they arrive, byte for byte', () => {
  const req = encodeRequest(['SET', 'k', 'value']).toString('latin1');
  assert.equal(frame([req + req]), [['feed', req + req]]);
  // Split at every byte: every byte is fed once, in order.
  const fed = frame(req.split('')).map((e) => e[1]).join('');
  assert.is(fed, req);
  // Empty requests pass (the parser answers nothing for them).
  assert.equal(frame(['*0\r\n*-1\r\n']), [['feed', '*0\r\n*-1\r\n']]);
  // Empty lines between requests are skipped (redis-cli --pipe sends one), never fed.
  const ping = encodeRequest(['PING']).toString('latin1');
  assert.equal(frame([`${ping}\r\n${ping}\n`, `\r\n${ping}`]), [['feed', ping], ['feed', ping], ['feed', ping]]);
});

test('a request over requestBytesMax is dropped unbuffered; the requests around it go on', () => {
  const small = encodeRequest(['GET', 'a']).toString('latin1');
  const big = encodeRequest(['SET', 'k', 'x'.repeat(200)]).toString('latin1');
  const events = frame([small + big.slice(0, 30), big.slice(30) + small], 100);
  assert.equal(events, [['feed', small], ['drop', 228], ['feed', small]]);
  // A request whose head went to the parser in an earlier chunk: that head is not fed again.
  const e2 = frame([small + big.slice(0, 10), big.slice(10, 150), big.slice(150) + small], 100);
  assert.equal(e2, [['feed', small + big.slice(0, 10)], ['drop', 228], ['feed', small]]);
});

test('protocol errors are fatal, after the whole requests before them', () => {
  const ok = encodeRequest(['PING']).toString('latin1');
  assert.equal(frame([`${ok}PING\r\n`]), [['feed', ok], ['fatal', `Protocol error: expected '*', got "P" (send each command as an array of bulk strings; inline commands are not supported)`]]);
  assert.equal(frame(['*1\r\n+OK\r\n']), [['fatal', `Protocol error: expected '$', got "+"`]]);
  assert.equal(frame(['*x\r\n']), [['fatal', 'Protocol error: invalid multibulk length']]);
  assert.equal(frame(['*1\r\n$-1\r\n']), [['fatal', 'Protocol error: invalid bulk length']]);
  assert.equal(frame(['*1\r\n$2\r\nabc\r\n']), [['fatal', 'Protocol error: a bulk string is not followed by CRLF (its length is wrong)']]);
  assert.equal(frame(['*101\r\n'], 1024, 100), [['fatal', 'Protocol error: invalid multibulk length (101 arguments; at most 100)']]);
  // 16 digits is no length.
  assert.equal(frame(['*1\r\n$1234567890123456\r\n']), [['fatal', 'Protocol error: invalid bulk length']]);
  // Nothing is read after a fatal error.
  assert.equal(frame(['*x\r\n', ok]), [['fatal', 'Protocol error: invalid multibulk length']]);
});

test('globs: *, ?, classes, ranges, negation, escapes; no blow-up on many stars', () => {
  const m = (p: string, k: string) => {
    const f = globMatcher(p);
    return f === null ? true : f(k);
  };
  assert.ok(m('*', 'anything'));
  assert.ok(m('user:*', 'user:1'));
  assert.not.ok(m('user:*', 'order:1'));
  assert.ok(m('h?llo', 'hello'));
  assert.not.ok(m('h?llo', 'hllo'));
  assert.ok(m('h[ae]llo', 'hallo'));
  assert.not.ok(m('h[ae]llo', 'hillo'));
  assert.ok(m('h[^e]llo', 'hallo'));
  assert.not.ok(m('h[^e]llo', 'hello'));
  assert.ok(m('k[a-c]', 'kb'));
  assert.not.ok(m('k[a-c]', 'kd'));
  assert.ok(m('a\\*b', 'a*b'));
  assert.not.ok(m('a\\*b', 'axb'));
  assert.ok(m('*a*b*', 'xxaxxbxx'));
  assert.ok(m('ключ:?', 'ключ:🔑'));
  const started = Date.now();
  assert.not.ok(m('a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(1000)));
  assert.ok(Date.now() - started < 500, 'linear-ish time on a pathological pattern');
  assert.is(literalPrefix('user:*'), 'user:');
  assert.is(literalPrefix('us?r'), 'us');
  assert.is(literalPrefix('a\\*'), 'a');
  assert.is(literalPrefix('*'), '');
});

test('answers encode as RESP2, and null and maps as RESP3 after HELLO 3', () => {
  assert.is(bulk('héllo').toString('latin1'), '$6\r\nh\xc3\xa9llo\r\n');
  assert.is(bulk(new Uint8Array([0, 13, 10])).toString('latin1'), '$3\r\n\x00\r\n\r\n');
  assert.is(bulkOrNil(null, 2).toString(), '$-1\r\n');
  assert.is(bulkOrNil(null, 3).toString(), '_\r\n');
  assert.is(integer(5).toString(), ':5\r\n');
  assert.is(integer(-(2n ** 63n)).toString(), ':-9223372036854775808\r\n');
  assert.is(array([integer(1), bulk('a')]).toString(), '*2\r\n:1\r\n$1\r\na\r\n');
  assert.is(map([['k', integer(1)]], 2).toString(), '*2\r\n$1\r\nk\r\n:1\r\n');
  assert.is(map([['k', integer(1)]], 3).toString(), '%1\r\n$1\r\nk\r\n:1\r\n');
  assert.is(error('ERR a\r\nb').toString(), '-ERR a b\r\n');
});

test.run();
