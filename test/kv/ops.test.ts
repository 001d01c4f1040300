// The KV ops the Redis protocol door needs: incr-by, put-if (nx/xx, returning the previous value),
// mput, mdelete, and the scan / mget / dbsize queries. Each on the state machine directly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KvApp, KvAppMachine } from '../../apps/kv/app.ts';
import {
  type KvCommand,
  type KvResult,
  decodeCommand,
  decodeResult,
  encodeCommand,
  encodeResult,
  kvCodec,
  parseInt64,
  textBytes,
} from '../../apps/kv/commands.ts';
import { decodeCountAnswer, decodeMgetAnswer, decodeScanAnswer, encodeKvQuery, runKvQuery, scanCountMax } from '../../apps/kv/queries.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import { AppRouter } from '../../apps/platform/router.ts';
import { kvApp } from '../../apps/kv/app.ts';

const t = textBytes;
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

let seq = 0;
function run(sm: KvStateMachine, cmds: Array<KvCommand extends infer C ? (C extends unknown ? Omit<C, 'clientId' | 'seq'> : never) : never>): KvResult[] {
  return cmds.map((c) => decodeResult(sm.apply(sm.lastAppliedIndex + 1, encodeCommand({ ...c, clientId: 'c', seq: ++seq } as KvCommand))));
}

test('the new commands and results round-trip through their encodings; old tags decode as before', () => {
  const cmds: KvCommand[] = [
    { op: 'incr-by', clientId: 'c', seq: 1, key: 'n', delta: -(2n ** 63n) },
    { op: 'incr-by', clientId: 'c', seq: 2, key: 'n', delta: 2n ** 63n - 1n },
    { op: 'put-if', clientId: 'c', seq: 3, key: 'k', value: t('v'), condition: 'nx', returnPrevious: false },
    { op: 'put-if', clientId: 'c', seq: 4, key: 'k', value: t('v'), condition: 'xx', returnPrevious: true },
    { op: 'put-if', clientId: 'c', seq: 5, key: 'k', value: new Uint8Array(0), condition: null, returnPrevious: true },
    { op: 'mput', clientId: 'c', seq: 6, entries: [['a', t('1')], ['b', new Uint8Array([0, 255])]] },
    { op: 'mdelete', clientId: 'c', seq: 7, keys: ['a', 'b', 'a'] },
  ];
  for (const c of cmds) assert.equal(decodeCommand(encodeCommand(c)), c);
  const results: KvResult[] = [
    { type: 'integer', index: 3, value: -(2n ** 63n) },
    { type: 'swapped', index: 4, previous: null },
    { type: 'swapped', index: 4, previous: t('old') },
    { type: 'condition-failed', previous: null },
    { type: 'condition-failed', previous: t('cur') },
    { type: 'deleted-count', index: 9, count: 2 },
    { type: 'error', code: 'not-integer', message: 'm' },
  ];
  for (const r of results) assert.equal(decodeResult(encodeResult(r)), r);
  // The tags of the first four ops are unchanged: a log written before still decodes.
  assert.equal(decodeCommand(kvCodec.encode([1, 'c', 1, 'k', t('v')])), { op: 'put', clientId: 'c', seq: 1, key: 'k', value: t('v') });
  assert.equal(decodeCommand(kvCodec.encode([4, 'c', 1, 'k', null, t('v')])), { op: 'cas', clientId: 'c', seq: 1, key: 'k', expect: null, value: t('v') });
});

test('written results decode the same by the fast path as by the CBOR decoder, at every integer width', () => {
  for (const index of [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 24, 2 ** 32 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
    const bytes = encodeResult({ type: 'written', index });
    assert.equal(decodeResult(bytes), { type: 'written', index }, String(index));
    assert.equal(decodeResult(bytes), { type: 'written', index: kvCodec.decode(bytes)[1] });
  }
  // Bytes that only start like a written result go to the decoder, and its checks.
  assert.throws(() => decodeResult(new Uint8Array([0x82, 0x00, 0x18])), /not valid CBOR|must/);
  assert.throws(() => decodeResult(new Uint8Array([0x82, 0x00, 0x01, 0x00])), /not valid CBOR|must/);
  assert.equal(decodeResult(encodeResult({ type: 'deleted', index: 3, existed: true })), { type: 'deleted', index: 3, existed: true });
});

test('parseInt64 follows Redis: base 10, no "+", no leading zeros, no "-0", within int64', () => {
  for (const [s, n] of [['0', 0n], ['-1', -1n], ['42', 42n], ['9223372036854775807', 2n ** 63n - 1n], ['-9223372036854775808', -(2n ** 63n)]] as const) assert.is(parseInt64(t(s)), n, s);
  for (const s of ['', '+1', '01', '-0', ' 1', '1 ', '1.0', '1e3', '9223372036854775808', '-9223372036854775809', 'abc', '-']) assert.is(parseInt64(t(s)), null, s);
});

test('incr-by: absent counts as 0, the value is stored as decimal text, non-integers and overflow are errors that change nothing', () => {
  const sm = new KvStateMachine();
  const r = run(sm, [
    { op: 'incr-by', key: 'n', delta: 1n },
    { op: 'incr-by', key: 'n', delta: 41n },
    { op: 'incr-by', key: 'n', delta: -50n },
    { op: 'put', key: 's', value: t('abc') },
    { op: 'incr-by', key: 's', delta: 1n },
    { op: 'put', key: 'max', value: t('9223372036854775807') },
    { op: 'incr-by', key: 'max', delta: 1n },
    { op: 'incr-by', key: 'max', delta: -1n },
  ]);
  assert.equal(r.slice(0, 3), [
    { type: 'integer', index: 1, value: 1n },
    { type: 'integer', index: 2, value: 42n },
    { type: 'integer', index: 3, value: -8n },
  ]);
  assert.is(text(sm.readLocal('n')), '-8');
  const notInt = r[4] as Extract<KvResult, { type: 'error' }>;
  assert.is(notInt.code, 'not-integer');
  assert.match(notInt.message, /not a base-10 signed 64-bit integer/);
  assert.is(text(sm.readLocal('s')), 'abc');
  const overflow = r[6] as Extract<KvResult, { type: 'error' }>;
  assert.is(overflow.code, 'not-integer');
  assert.match(overflow.message, /overflow/);
  assert.is(text(sm.readLocal('max')), '9223372036854775806');
});

test('incr-by is applied once per (client, seq): a retry answers the cached value', () => {
  const sm = new KvStateMachine();
  const cmd = encodeCommand({ op: 'incr-by', clientId: 'r', seq: 1, key: 'n', delta: 5n });
  assert.equal(decodeResult(sm.apply(1, cmd)), { type: 'integer', index: 1, value: 5n });
  assert.equal(decodeResult(sm.apply(2, cmd)), { type: 'integer', index: 1, value: 5n });
  assert.is(text(sm.readLocal('n')), '5');
});

test('put-if: nx writes only when absent, xx only when present; returnPrevious answers the old value either way', () => {
  const sm = new KvStateMachine();
  const r = run(sm, [
    { op: 'put-if', key: 'k', value: t('one'), condition: 'xx', returnPrevious: false },
    { op: 'put-if', key: 'k', value: t('one'), condition: 'nx', returnPrevious: false },
    { op: 'put-if', key: 'k', value: t('two'), condition: 'nx', returnPrevious: true },
    { op: 'put-if', key: 'k', value: t('two'), condition: 'xx', returnPrevious: true },
    { op: 'put-if', key: 'k', value: t('three'), condition: null, returnPrevious: true },
    { op: 'put-if', key: 'new', value: t('x'), condition: null, returnPrevious: true },
    { op: 'put-if', key: 'gone', value: t('x'), condition: 'xx', returnPrevious: true },
  ]);
  assert.equal(r, [
    { type: 'condition-failed', previous: null },
    { type: 'written', index: 2 },
    { type: 'condition-failed', previous: t('one') },
    { type: 'swapped', index: 4, previous: t('one') },
    { type: 'swapped', index: 5, previous: t('two') },
    { type: 'swapped', index: 6, previous: null },
    { type: 'condition-failed', previous: null },
  ]);
  assert.is(text(sm.readLocal('k')), 'three');
  assert.is(sm.readLocal('gone'), undefined);
});

test('mput writes every pair in one entry (the last of a repeated key wins); mdelete counts the keys that existed', () => {
  const sm = new KvStateMachine();
  const r = run(sm, [
    { op: 'mput', entries: [['a', t('1')], ['b', t('2')], ['a', t('3')]] },
    { op: 'mdelete', keys: ['a', 'missing', 'a'] },
  ]);
  assert.equal(r, [
    { type: 'written', index: 1 },
    { type: 'deleted-count', index: 2, count: 1 },
  ]);
  assert.is(sm.readLocal('a'), undefined);
  assert.is(text(sm.readLocal('b')), '2');
});

test('mput and mdelete keep the KV limits: every key and value, and together no more than one put may carry', () => {
  const limits = { keyBytesMax: 4, valueBytesMax: 8, clientIdBytesMax: 8 };
  const mput = (entries: Array<[string, Uint8Array]>) => () => encodeCommand({ op: 'mput', clientId: 'c', seq: 1, entries }, limits);
  assert.throws(mput([]), /at least one key/);
  assert.throws(mput([['abcde', t('v')]]), /key is 5 bytes/);
  assert.throws(mput([['k', t('123456789')]]), /value is 9 bytes; the limit is 8/);
  assert.throws(mput([['k1', t('12345678')], ['k2', t('1')]]), /carries 13 bytes of keys and values; the limit is 12/);
  assert.not.throws(mput([['k1', t('1234')], ['k2', t('1234')]]));
  const mdelete = (keys: string[]) => () => encodeCommand({ op: 'mdelete', clientId: 'c', seq: 1, keys }, limits);
  assert.throws(mdelete([]), /at least one key/);
  assert.throws(mdelete(['', 'a']), /key must not be empty/);
  assert.throws(mdelete(['abcd', 'abcd', 'abcd', 'abcd']), /16 bytes/);
  // The state machine holds a command that skipped the edge checks to its own limits.
  const sm = new KvStateMachine(limits);
  const r = decodeResult(sm.apply(1, kvCodec.encode([7, 'c', 1, ['k1', t('12345678'), 'k2', t('1')]])));
  assert.is(r.type, 'error');
  assert.is((r as Extract<KvResult, { type: 'error' }>).code, 'invalid-command');
  assert.is(sm.keyCount, 0);
  const bad = decodeResult(sm.apply(2, kvCodec.encode([7, 'c', 2, ['k1']])));
  assert.match((bad as Extract<KvResult, { type: 'error' }>).message, /alternate key and value/);
});

test('scan lists keys in order after a cursor key, within a prefix, count and byte bound, and says where it stopped', () => {
  const sm = new KvStateMachine();
  run(sm, [{ op: 'mput', entries: ['user:3', 'user:1', 'order:1', 'user:2', 'zeta', 'user:10'].map((k) => [k, t('v')] as [string, Uint8Array]) }]);
  assert.equal(sm.scan(null, '', 100, 1 << 20), { keys: ['order:1', 'user:1', 'user:10', 'user:2', 'user:3', 'zeta'], last: null });
  assert.equal(sm.scan(null, 'user:', 2, 1 << 20), { keys: ['user:1', 'user:10'], last: 'user:10' });
  assert.equal(sm.scan('user:10', 'user:', 2, 1 << 20), { keys: ['user:2', 'user:3'], last: 'user:3' });
  assert.equal(sm.scan('user:3', 'user:', 2, 1 << 20), { keys: [], last: null });
  // A cursor before the prefix starts at the prefix; one past it finds nothing.
  assert.equal(sm.scan('a', 'user:', 10, 1 << 20).keys.length, 4);
  assert.equal(sm.scan('zz', '', 10, 1 << 20), { keys: [], last: null });
  // The byte bound stops the listing after the key that reached it.
  assert.equal(sm.scan(null, '', 100, 8), { keys: ['order:1', 'user:1'], last: 'user:1' });
  // The order follows keys added and removed since the last scan.
  run(sm, [{ op: 'put', key: 'user:0', value: t('v') }, { op: 'mdelete', keys: ['user:1', 'zeta'] }]);
  assert.equal(sm.scan(null, 'user:', 100, 1 << 20).keys, ['user:0', 'user:10', 'user:2', 'user:3']);
  assert.equal(sm.scan('user:3', '', 100, 1 << 20), { keys: [], last: null });
});

test('scan survives a snapshot restore (the order is rebuilt from the restored keys)', () => {
  const a = new KvStateMachine();
  run(a, [{ op: 'mput', entries: [['b', t('1')], ['a', t('2')]] }]);
  a.scan(null, '', 10, 1 << 20);
  const b = new KvStateMachine();
  b.scan(null, '', 10, 1 << 20);
  const image = a.snapshotImage();
  const restore = b.restoreImage();
  for (let p = image.next(); p; p = image.next()) restore.write(p);
  restore.finish();
  assert.equal(b.scan(null, '', 10, 1 << 20).keys, ['a', 'b']);
});

test('queries: scan, mget at one point, exists, dbsize; unknown or out-of-bounds queries answer nothing', () => {
  const sm = new KvStateMachine({ valueBytesMax: 8 });
  run(sm, [{ op: 'mput', entries: [['a', t('1234')], ['b', t('5678')], ['c', t('9')]] }]);
  const q = (x: Parameters<typeof encodeKvQuery>[0]) => runKvQuery(sm, encodeKvQuery(x)) ?? null;
  assert.equal(decodeScanAnswer(q({ q: 'scan', after: null, prefix: '', count: 2 })), { keys: ['a', 'b'], last: 'b' });
  assert.equal(decodeScanAnswer(q({ q: 'scan', after: 'b', prefix: '', count: 2 })), { keys: ['c'], last: null });
  assert.equal(decodeMgetAnswer(q({ q: 'mget', keys: ['a', 'x', 'c'] })), { values: [t('1234'), null, t('9')] });
  // Together over one value's limit: the size, not the values.
  assert.equal(decodeMgetAnswer(q({ q: 'mget', keys: ['a', 'b', 'c'] })), { tooLargeBytes: 9 });
  assert.is(decodeCountAnswer(q({ q: 'dbsize' })), 3);
  assert.is(decodeCountAnswer(q({ q: 'exists', keys: ['a', 'x', 'a'] })), 2);
  assert.is(q({ q: 'exists', keys: [] }), null);
  assert.is(q({ q: 'scan', after: null, prefix: '', count: scanCountMax + 1 }), null);
  assert.is(q({ q: 'scan', after: null, prefix: '', count: 0 }), null);
  assert.is(q({ q: 'mget', keys: [] }), null);
  assert.is(runKvQuery(sm, 'a'), undefined);
  assert.is(runKvQuery(sm, '{"q":"nope"}'), undefined);
  assert.throws(() => decodeScanAnswer(null), /no answer/);
});

test('on the app platform, key reads and kv queries are told apart: a key that looks like a query is still a key', () => {
  const router = new AppRouter([kvApp]);
  const dbsize = encodeKvQuery({ q: 'dbsize' });
  const put = encodeCommand({ op: 'put', clientId: 'c', seq: 1, key: dbsize, value: t('a key') });
  router.apply(1, put, 0, put.byteLength);
  assert.is(text(router.readLocal(dbsize)), 'a key');
  assert.is(decodeCountAnswer(router.query('kv', dbsize) ?? null), 1);
  // The same through KvAppMachine and the standalone KvApp.
  const m = new KvAppMachine();
  m.apply(put, { index: 1, timeMs: 0 });
  assert.is(text(m.readKey(dbsize)), 'a key');
  assert.is(decodeCountAnswer(m.query(dbsize) ?? null), 1);
  const app = new KvApp();
  app.apply(1, put, 0, put.byteLength);
  assert.is(decodeCountAnswer(app.query('kv', dbsize) ?? null), 1);
});

test.run();
