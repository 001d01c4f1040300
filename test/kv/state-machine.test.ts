import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type KvCommand,
  type KvResult,
  decodeCommand,
  decodeResult,
  encodeCommand,
  encodeResult,
  kvCodec,
  textBytes,
} from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import type { SnapshotImage } from '../../apps/state-machine.ts';

const t = textBytes;
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

/** All the pieces of an image, concatenated. */
function imageBytes(image: SnapshotImage): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (let p = image.next(); p; p = image.next()) pieces.push(p);
  return new Uint8Array(Buffer.concat(pieces));
}

/** Replaces `sm`'s state with an image's, fed in pieces of `pieceBytes`. */
function restoreFrom(sm: KvStateMachine, bytes: Uint8Array, pieceBytes = 5): void {
  const r = sm.restoreImage();
  for (let at = 0; at < bytes.byteLength; at += pieceBytes) r.write(bytes.subarray(at, at + pieceBytes));
  r.finish();
}

/** Applies commands at consecutive indexes and returns decoded results. */
function run(sm: KvStateMachine, cmds: KvCommand[]): KvResult[] {
  return cmds.map((c) => decodeResult(sm.apply(sm.lastAppliedIndex + 1, encodeCommand(c))));
}

test('commands and results round-trip through their encodings', () => {
  const cmds: KvCommand[] = [
    { op: 'put', clientId: 'c', seq: 1, key: 'k', value: t('v') },
    { op: 'get', clientId: 'c', seq: 2, key: 'ключ/🔑' },
    { op: 'delete', clientId: 'c', seq: 3, key: 'k' },
    { op: 'cas', clientId: 'c', seq: 4, key: 'k', expect: null, value: new Uint8Array([0, 255]) },
    { op: 'cas', clientId: 'c', seq: 2 ** 40, key: 'k', expect: t('a'), value: new Uint8Array(0) },
  ];
  for (const c of cmds) assert.equal(decodeCommand(encodeCommand(c)), c);
  const results: KvResult[] = [
    { type: 'written', index: 7 },
    { type: 'deleted', index: 8, existed: false },
    { type: 'value', value: t('x') },
    { type: 'not-found' },
    { type: 'cas-failed', current: null },
    { type: 'cas-failed', current: t('cur') },
    { type: 'error', code: 'stale-request', message: 'm' },
  ];
  for (const r of results) assert.equal(decodeResult(encodeResult(r)), r);
});

test('encodeCommand refuses bad keys, values, client ids and seqs', () => {
  const limits = { keyBytesMax: 4, valueBytesMax: 3, clientIdBytesMax: 8 };
  const put = (over: Partial<Extract<KvCommand, { op: 'put' }>>) => () =>
    encodeCommand({ op: 'put', clientId: 'c', seq: 1, key: 'k', value: t('v'), ...over }, limits);
  assert.throws(put({ key: '' }), /key must not be empty/);
  assert.throws(put({ key: 'abcde' }), /key is 5 bytes of UTF-8; the limit is 4/);
  assert.throws(put({ key: 'é é' }), /key is 5 bytes/); // 3 characters, 5 UTF-8 bytes
  assert.throws(put({ key: '\ud800' }), /unpaired UTF-16 surrogate/);
  assert.throws(put({ value: t('long') }), /value is 4 bytes; the limit is 3/);
  assert.throws(put({ clientId: '' }), /client id must be a non-empty/);
  assert.throws(put({ clientId: 'x'.repeat(9) }), /client id is longer than 8/);
  assert.throws(put({ seq: 0 }), /positive integer, got 0/);
  assert.throws(put({ seq: 1.5 }), /positive integer/);
  assert.not.throws(put({ key: 'abcd', value: t('abc') }));
});

test('put, get, delete', () => {
  const sm = new KvStateMachine();
  const r = run(sm, [
    { op: 'get', clientId: 'a', seq: 1, key: 'k' },
    { op: 'put', clientId: 'a', seq: 2, key: 'k', value: t('v1') },
    { op: 'get', clientId: 'a', seq: 3, key: 'k' },
    { op: 'put', clientId: 'a', seq: 4, key: 'k', value: t('v2') },
    { op: 'delete', clientId: 'a', seq: 5, key: 'k' },
    { op: 'delete', clientId: 'a', seq: 6, key: 'k' },
    { op: 'get', clientId: 'a', seq: 7, key: 'k' },
  ]);
  assert.equal(r, [
    { type: 'not-found' },
    { type: 'written', index: 2 },
    { type: 'value', value: t('v1') },
    { type: 'written', index: 4 },
    { type: 'deleted', index: 5, existed: true },
    { type: 'deleted', index: 6, existed: false },
    { type: 'not-found' },
  ]);
  assert.is(sm.readLocal('k'), undefined);
  assert.is(sm.lastAppliedIndex, 7);
});

test('cas: expect null means absent; a mismatch reports the current value and changes nothing', () => {
  const sm = new KvStateMachine();
  const r = run(sm, [
    { op: 'cas', clientId: 'a', seq: 1, key: 'k', expect: null, value: t('one') },
    { op: 'cas', clientId: 'a', seq: 2, key: 'k', expect: null, value: t('two') },
    { op: 'cas', clientId: 'a', seq: 3, key: 'k', expect: t('wrong'), value: t('two') },
    { op: 'cas', clientId: 'a', seq: 4, key: 'k', expect: t('one'), value: t('two') },
    { op: 'cas', clientId: 'a', seq: 5, key: 'missing', expect: t('x'), value: t('y') },
    // Same length, different bytes: comparison is by content, not length.
    { op: 'cas', clientId: 'a', seq: 6, key: 'k', expect: t('twx'), value: t('three') },
  ]);
  assert.equal(r, [
    { type: 'written', index: 1 },
    { type: 'cas-failed', current: t('one') },
    { type: 'cas-failed', current: t('one') },
    { type: 'written', index: 4 },
    { type: 'cas-failed', current: null },
    { type: 'cas-failed', current: t('two') },
  ]);
  assert.is(text(sm.readLocal('k')), 'two');
  assert.is(sm.readLocal('missing'), undefined);
});

test('a duplicate (clientId, seq) returns the cached result and is applied once', () => {
  const sm = new KvStateMachine();
  const put1 = encodeCommand({ op: 'put', clientId: 'a', seq: 1, key: 'k', value: t('first') });
  const first = sm.apply(1, put1);
  // Someone else overwrites; then a's retry of seq 1 arrives again (e.g. resent after a leader change).
  sm.apply(2, encodeCommand({ op: 'put', clientId: 'b', seq: 1, key: 'k', value: t('other') }));
  const retry = sm.apply(3, put1);
  assert.equal(decodeResult(retry), { type: 'written', index: 1 });
  assert.equal(retry, first);
  assert.is(text(sm.readLocal('k')), 'other', 'the retry must not re-apply the put');

  // A cas that failed stays failed on retry even though it would now succeed.
  const cas = encodeCommand({ op: 'cas', clientId: 'c', seq: 9, key: 'k', expect: t('first'), value: t('cas') });
  assert.equal(decodeResult(sm.apply(4, cas)), { type: 'cas-failed', current: t('other') });
  sm.apply(5, encodeCommand({ op: 'put', clientId: 'b', seq: 2, key: 'k', value: t('first') }));
  assert.equal(decodeResult(sm.apply(6, cas)), { type: 'cas-failed', current: t('other') });
  assert.is(text(sm.readLocal('k')), 'first');

  // A delete retried after a re-put does not delete again.
  const del = encodeCommand({ op: 'delete', clientId: 'd', seq: 1, key: 'k' });
  assert.equal(decodeResult(sm.apply(7, del)), { type: 'deleted', index: 7, existed: true });
  sm.apply(8, encodeCommand({ op: 'put', clientId: 'b', seq: 3, key: 'k', value: t('back') }));
  assert.equal(decodeResult(sm.apply(9, del)), { type: 'deleted', index: 7, existed: true });
  assert.is(text(sm.readLocal('k')), 'back');
});

test('a seq older than the last applied is a stale request and is not applied', () => {
  const sm = new KvStateMachine();
  run(sm, [
    { op: 'put', clientId: 'a', seq: 5, key: 'k', value: t('five') },
  ]);
  const [stale] = run(sm, [{ op: 'put', clientId: 'a', seq: 4, key: 'k', value: t('four') }]);
  assert.is(stale!.type, 'error');
  assert.is((stale as Extract<KvResult, { type: 'error' }>).code, 'stale-request');
  assert.match((stale as Extract<KvResult, { type: 'error' }>).message, /stale request: client a sent seq 4 after seq 5/);
  assert.is(text(sm.readLocal('k')), 'five');
  assert.is(sm.sessionSeq('a'), 5);
  // Gaps are fine: seq 9 after 5 is new.
  assert.equal(run(sm, [{ op: 'put', clientId: 'a', seq: 9, key: 'k', value: t('nine') }]), [{ type: 'written', index: 3 }]);
});

test('reads bypass the session table', () => {
  const sm = new KvStateMachine();
  run(sm, [{ op: 'put', clientId: 'a', seq: 5, key: 'k', value: t('v') }]);
  // An old seq on a read is answered, and does not record a session for a new client.
  assert.equal(run(sm, [{ op: 'get', clientId: 'a', seq: 1, key: 'k' }]), [{ type: 'value', value: t('v') }]);
  run(sm, [{ op: 'get', clientId: 'reader', seq: 1, key: 'k' }]);
  assert.is(sm.sessionSeq('reader'), undefined);
  assert.is(sm.sessionSeq('a'), 5);
});

test('malformed command bytes answer invalid-command on every replica and change nothing', () => {
  const sm = new KvStateMachine({ valueBytesMax: 2 });
  const bad = [
    new Uint8Array([0xff, 0x00]),
    kvCodec.encode([99, 'c', 1, 'k']),
    kvCodec.encode([1, 'c', 1, 'k']),
    kvCodec.encode({ op: 'put' }),
    // Well-formed but over this machine's value limit (a client that skipped the edge checks).
    kvCodec.encode([1, 'c', 1, 'k', new Uint8Array(3)]),
    kvCodec.encode([1, 'c', 0, 'k', new Uint8Array(1)]),
  ];
  bad.forEach((b, i) => {
    const r = decodeResult(sm.apply(i + 1, b));
    assert.is(r.type, 'error', `entry ${i}`);
    assert.is((r as Extract<KvResult, { type: 'error' }>).code, 'invalid-command');
  });
  assert.is(sm.keyCount, 0);
  assert.is(sm.sessionCount, 0);
  assert.is(sm.lastAppliedIndex, bad.length);
});

test('apply refuses an index that is not after the last applied one', () => {
  const sm = new KvStateMachine();
  const c = encodeCommand({ op: 'put', clientId: 'a', seq: 1, key: 'k', value: t('v') });
  sm.apply(3, c); // gaps allowed (no-op entries)
  assert.throws(() => sm.apply(3, c), /index 3 is not after the last applied index 3/);
  assert.throws(() => sm.apply(2, c), /not after/);
});

test('the session table is bounded by count, evicting the least recently used client', () => {
  const sm = new KvStateMachine({ sessionsMax: 3 });
  const put = (clientId: string, seq: number) => ({ op: 'put' as const, clientId, seq, key: clientId, value: t('v') });
  run(sm, [put('a', 1), put('b', 1), put('c', 1)]);
  // Touch a (a retry counts as use), so b is now the least recently used.
  run(sm, [put('a', 1)]);
  run(sm, [put('d', 1)]);
  assert.is(sm.sessionCount, 3);
  assert.is(sm.sessionSeq('b'), undefined, 'b was least recently used');
  assert.is(sm.sessionSeq('a'), 1);
  assert.is(sm.sessionSeq('c'), 1);
  assert.is(sm.sessionSeq('d'), 1);
  // What eviction costs: b's retry is no longer recognised and is applied again.
  sm.apply(sm.lastAppliedIndex + 1, encodeCommand({ op: 'put', clientId: 'x', seq: 1, key: 'b', value: t('changed') }));
  run(sm, [put('b', 1)]);
  assert.is(text(sm.readLocal('b')), 'v');
});

test('the session table is bounded by bytes of cached results', () => {
  const sm = new KvStateMachine({ sessionBytesMax: 4096 });
  run(sm, [{ op: 'put', clientId: 'big', seq: 1, key: 'k', value: new Uint8Array(3000) }]);
  // A failed cas caches the 3000-byte current value for each client.
  for (let i = 0; i < 5; i++) run(sm, [{ op: 'cas', clientId: `c${i}`, seq: 1, key: 'k', expect: null, value: t('x') }]);
  assert.ok(sm.sessionBytesUsed <= 4096, `used ${sm.sessionBytesUsed}`);
  assert.is(sm.sessionCount, 1, 'only the newest 3 KB result fits');
  assert.is(sm.sessionSeq('c4'), 1);
  // The newest entry stays even when it alone exceeds the bound.
  const tiny = new KvStateMachine({ sessionBytesMax: 100 });
  run(tiny, [{ op: 'put', clientId: 'a', seq: 1, key: 'k', value: new Uint8Array(500) }]);
  run(tiny, [{ op: 'cas', clientId: 'b', seq: 1, key: 'k', expect: null, value: t('x') }]);
  assert.is(tiny.sessionSeq('b'), 1);
  assert.is(tiny.sessionCount, 1);
});

test('snapshot and restore round-trip state, sessions and their LRU order', () => {
  const sm = new KvStateMachine({ sessionsMax: 3 });
  run(sm, [
    { op: 'put', clientId: 'a', seq: 1, key: 'x', value: t('1') },
    { op: 'put', clientId: 'b', seq: 1, key: 'y', value: new Uint8Array([0, 1, 2]) },
    { op: 'put', clientId: 'c', seq: 1, key: 'z', value: t('3') },
    { op: 'delete', clientId: 'a', seq: 2, key: 'z' },
  ]);
  const snap = imageBytes(sm.snapshotImage());
  const copy = new KvStateMachine({ sessionsMax: 3 });
  restoreFrom(copy, snap);
  assert.equal(imageBytes(copy.snapshotImage()), snap);
  assert.is(copy.lastAppliedIndex, 4);
  assert.equal(copy.readLocal('y'), new Uint8Array([0, 1, 2]));
  assert.is(copy.readLocal('z'), undefined);
  // Dedup survives: a's retry of seq 2 is answered from the restored cache, not re-applied.
  assert.equal(decodeResult(copy.apply(5, encodeCommand({ op: 'delete', clientId: 'a', seq: 2, key: 'z' }))), { type: 'deleted', index: 4, existed: true });
  // LRU order survives: a new client now evicts b (a was just used, c after b).
  run(copy, [{ op: 'put', clientId: 'd', seq: 1, key: 'w', value: t('4') }]);
  assert.is(copy.sessionSeq('b'), undefined);
  assert.is(copy.sessionSeq('c'), 1);
  // Both continue identically from the same point.
  sm.apply(5, encodeCommand({ op: 'delete', clientId: 'a', seq: 2, key: 'z' }));
  run(sm, [{ op: 'put', clientId: 'd', seq: 1, key: 'w', value: t('4') }]);
  assert.equal(imageBytes(copy.snapshotImage()), imageBytes(sm.snapshotImage()));
  assert.is(copy.digest(), sm.digest());
});

test('determinism: the same commands give the same image and digest; the digest ignores key insertion order', () => {
  const cmds: KvCommand[] = [];
  for (let i = 0; i < 200; i++) {
    const key = `k${(i * 7) % 23}`;
    const clientId = `c${i % 5}`;
    const seq = Math.floor(i / 5) + 1;
    if (i % 4 === 0) cmds.push({ op: 'delete', clientId, seq, key });
    else if (i % 4 === 1) cmds.push({ op: 'cas', clientId, seq, key, expect: i % 8 === 1 ? null : t(`v${i - 4}`), value: t(`v${i}`) });
    else cmds.push({ op: 'put', clientId, seq, key, value: t(`v${i}`) });
  }
  const a = new KvStateMachine({ sessionsMax: 3 });
  const b = new KvStateMachine({ sessionsMax: 3 });
  const ra = cmds.map((c, i) => a.apply(i + 1, encodeCommand(c)));
  const rb = cmds.map((c, i) => b.apply(i + 1, encodeCommand(c)));
  assert.equal(ra, rb);
  assert.equal(imageBytes(a.snapshotImage()), imageBytes(b.snapshotImage()));
  assert.is(a.digest(), b.digest());
  // The digest sorts keys: two machines holding the same data via different histories agree.
  const x = new KvStateMachine();
  const y = new KvStateMachine();
  run(x, [
    { op: 'put', clientId: 'p', seq: 1, key: 'b', value: t('2') },
    { op: 'put', clientId: 'p', seq: 2, key: 'a', value: t('1') },
  ]);
  run(y, [
    { op: 'put', clientId: 'p', seq: 1, key: 'a', value: t('1') },
    { op: 'put', clientId: 'p', seq: 2, key: 'b', value: t('2') },
  ]);
  assert.is(x.digest(), y.digest());
});

test.run();
