import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CountStateMachine, countImageBytes } from '../../apps/count/state-machine.ts';
import { KvApp } from '../../apps/kv/app.ts';
import { type KvCommand, KvDecodeError, decodeResult, encodeCommand, keysWritten, kvEncode, textBytes } from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import type { SnapshotImage, SnapshotRestore } from '../../apps/state-machine.ts';

const t = textBytes;

function pieces(image: SnapshotImage): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = image.next(); p; p = image.next()) out.push(p);
  assert.is(image.next(), null, 'a drained image stays drained');
  return out;
}

const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const imageBytes = (image: SnapshotImage) => concat(pieces(image));

/** Feeds `bytes` in pieces of `pieceBytes`, each a fresh copy that is scribbled over after the write. */
function feed(restore: SnapshotRestore, bytes: Uint8Array, pieceBytes: number): void {
  for (let at = 0; at < bytes.byteLength; at += pieceBytes) {
    const piece = bytes.slice(at, at + pieceBytes);
    restore.write(piece);
    // A restore must not keep the caller's buffer: network and file readers reuse theirs.
    piece.fill(0xee);
  }
}

/** One image record: u32 length (LE) then the bytes. */
function record(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

const records = (...items: unknown[]) => concat(items.map((i) => record(kvEncode(i))));

type WithoutSeq<C> = C extends unknown ? Omit<C, 'seq'> : never;

/**
 * A machine with keys of assorted sizes (one value larger than a 64 KiB piece), deletes,
 * overwrites and sessions, built by committed commands. Returns it and every key it touched.
 */
function busyMachine(settings: ConstructorParameters<typeof KvStateMachine>[0] = {}): { sm: KvStateMachine; keys: string[]; clients: string[] } {
  const sm = new KvStateMachine(settings);
  const keys: string[] = [];
  const clients = ['c0', 'c1', 'c2', 'c3', 'c4'];
  const seqs = new Map<string, number>();
  const apply = (c: WithoutSeq<KvCommand>) => {
    const seq = (seqs.get(c.clientId) ?? 0) + 1;
    seqs.set(c.clientId, seq);
    // Gaps between indexes, as a leader's no-op entries leave them.
    sm.apply(sm.lastAppliedIndex + 1 + (seq % 3), encodeCommand({ ...c, seq } as KvCommand));
  };
  for (let i = 0; i < 300; i++) {
    const key = `key/${i % 120}/${'é'.repeat(i % 5)}`;
    if (!keys.includes(key)) keys.push(key);
    const clientId = clients[i % clients.length]!;
    const value = new Uint8Array(i % 37 === 0 ? 100_000 + i : i % 50).fill(i % 251);
    if (i % 7 === 3) apply({ op: 'delete', clientId, key });
    else if (i % 11 === 5) apply({ op: 'cas', clientId, key, expect: null, value });
    else apply({ op: 'put', clientId, key, value });
  }
  return { sm, keys, clients };
}

function sameState(a: KvStateMachine, b: KvStateMachine, keys: string[], clients: string[]): void {
  assert.is(b.lastAppliedIndex, a.lastAppliedIndex);
  assert.is(b.keyCount, a.keyCount);
  assert.is(b.sessionCount, a.sessionCount);
  assert.is(b.sessionBytesUsed, a.sessionBytesUsed);
  for (const k of keys) assert.equal(b.readLocal(k), a.readLocal(k), `key ${k}`);
  for (const c of clients) assert.is(b.sessionSeq(c), a.sessionSeq(c), `client ${c}`);
  assert.is(b.digest(), a.digest());
}

test('round trip through pieces of 1 byte, 7 bytes, 64 KiB and others gives the same state and image', () => {
  const { sm, keys, clients } = busyMachine();
  assert.ok(sm.keyCount > 50 && sm.sessionCount === 5, 'the fixture holds a real state');
  const reference = imageBytes(sm.snapshotImage());
  for (const imagePieceBytes of [1, 7, 1000, 64 * 1024]) {
    const image = sm.snapshotImage(imagePieceBytes);
    assert.is(image.index, sm.lastAppliedIndex);
    const ps = pieces(image);
    // One format whatever the cut: the concatenation does not depend on the piece size.
    assert.equal(concat(ps), reference, `image pieces of ${imagePieceBytes}`);
    // Pieces are about pieceBytes; only a piece holding a single record may be larger.
    for (const p of ps) {
      const first = new DataView(p.buffer, p.byteOffset).getUint32(0, true);
      assert.ok(p.byteLength <= imagePieceBytes || p.byteLength === 4 + first, `a ${p.byteLength}-byte piece for pieceBytes ${imagePieceBytes}`);
    }
  }
  assert.ok(pieces(sm.snapshotImage()).length > 1, 'the default 64 KiB pieces cut this image');

  for (const writeBytes of [1, 7, 4, 5, 4096, 64 * 1024, reference.byteLength]) {
    const copy = new KvStateMachine();
    const restore = copy.restoreImage();
    feed(restore, reference, writeBytes);
    restore.finish();
    sameState(sm, copy, keys, clients);
    assert.equal(imageBytes(copy.snapshotImage()), reference, `re-snapshot after writes of ${writeBytes}`);
  }
});

test('an image taken before more puts, deletes and cas still yields the old state', () => {
  const { sm, keys, clients } = busyMachine();
  const expected = imageBytes(sm.snapshotImage());
  const frozen = new KvStateMachine();
  const restore = frozen.restoreImage();
  feed(restore, expected, 999);
  restore.finish();

  const image = sm.snapshotImage(100);
  const firstPiece = image.next()!;
  let index = sm.lastAppliedIndex;
  for (const k of keys) {
    const key = k;
    sm.apply(++index, encodeCommand({ op: 'put', clientId: 'late', seq: index, key, value: t('overwritten') }));
    sm.apply(++index, encodeCommand({ op: 'cas', clientId: 'late2', seq: index, key, expect: t('overwritten'), value: t('cas') }));
    if (key.length % 2 === 0) sm.apply(++index, encodeCommand({ op: 'delete', clientId: 'late3', seq: index, key }));
  }
  for (let i = 0; i < 20; i++) sm.apply(++index, encodeCommand({ op: 'put', clientId: `new${i}`, seq: 1, key: `fresh${i}`, value: t('x') }));
  assert.is.not(sm.digest(), frozen.digest(), 'the live state did change');

  assert.equal(concat([firstPiece, ...pieces(image)]), expected);
  const fromImage = new KvStateMachine();
  const r = fromImage.restoreImage();
  r.write(expected);
  r.finish();
  sameState(frozen, fromImage, [...keys, 'fresh0'], [...clients, 'late', 'new0']);
});

test('restore answers a retried seq from the restored session cache', () => {
  const sm = new KvStateMachine();
  const put = encodeCommand({ op: 'put', clientId: 'a', seq: 7, key: 'k', value: t('first') });
  const answer = sm.apply(1, put);
  sm.apply(2, encodeCommand({ op: 'put', clientId: 'b', seq: 1, key: 'k', value: t('second') }));
  const copy = new KvStateMachine();
  const r = copy.restoreImage();
  feed(r, imageBytes(sm.snapshotImage(1)), 1);
  r.finish();
  assert.equal(copy.apply(3, put), answer, 'the cached answer, not a new write');
  assert.equal(decodeResult(answer), { type: 'written', index: 1 });
  assert.equal(copy.readLocal('k'), t('second'), 'the retry was not applied again');
});

test('restore evicts sessions beyond this machine\'s bounds, least recently used first', () => {
  const { sm } = busyMachine();
  const small = new KvStateMachine({ sessionsMax: 2 });
  const r = small.restoreImage();
  r.write(imageBytes(sm.snapshotImage()));
  r.finish();
  assert.is(small.sessionCount, 2);
  // busyMachine's last two commands came from c3 then c4.
  assert.is(small.sessionSeq('c4'), sm.sessionSeq('c4'));
  assert.is(small.sessionSeq('c3'), sm.sessionSeq('c3'));
  assert.is(small.sessionSeq('c2'), undefined);
});

test('commands applied while a restore is open are replaced by the image at finish', () => {
  const { sm, keys, clients } = busyMachine();
  const copy = new KvStateMachine();
  const r = copy.restoreImage();
  const bytes = imageBytes(sm.snapshotImage());
  r.write(bytes.subarray(0, 1000));
  copy.apply(1, encodeCommand({ op: 'put', clientId: 'z', seq: 1, key: 'stray', value: t('x') }));
  r.write(bytes.subarray(1000));
  r.finish();
  sameState(sm, copy, [...keys, 'stray'], [...clients, 'z']);
});

test('malformed images are refused with a clear error and leave the state as it was', () => {
  const sm = new KvStateMachine();
  sm.apply(3, encodeCommand({ op: 'put', clientId: 'a', seq: 1, key: 'k', value: t('v') }));
  const digest = sm.digest();
  const valid = records([2, 9, 1, 1], ['x', t('1')], ['c', 4, t('r')]);
  const garbage = new Uint8Array([0xff, 0xff]);

  const cases: { name: string; bytes: Uint8Array; at: 'write' | 'finish'; error: RegExp }[] = [
    { name: 'not CBOR', bytes: concat([record(new Uint8Array([0xff]))]), at: 'write', error: /record 0 is not valid CBOR/ },
    { name: 'two items in one record', bytes: concat([record(concat([kvEncode([2, 0, 0, 0]), kvEncode(1)]))]), at: 'write', error: /not valid CBOR/ },
    { name: 'header not an array', bytes: records({ version: 2 }), at: 'write', error: /header must be a CBOR array/ },
    { name: 'unsupported version', bytes: records([3, 0, 0, 0]), at: 'write', error: /format 3 is not supported \(expected 2\)/ },
    { name: 'old single-CBOR format', bytes: kvEncode([1, 0, [], []]), at: 'write', error: /over this machine's \d+-byte limit/ },
    { name: 'header fields', bytes: records([2, 0, 0]), at: 'write', error: /header must be \[version, appliedIndex, keyCount, sessionCount\], got 3 fields/ },
    { name: 'negative index', bytes: records([2, -1, 0, 0]), at: 'write', error: /applied index must be a non-negative integer, got -1/ },
    { name: 'key record shape', bytes: records([2, 0, 1, 0], ['k', 'not bytes']), at: 'write', error: /key record 0 must be \[key, value bytes\]/ },
    { name: 'session record shape', bytes: records([2, 0, 0, 1], ['c', 0, t('r')]), at: 'write', error: /session record 0 must be \[clientId, positive seq, result bytes\]/ },
    { name: 'duplicate key', bytes: records([2, 0, 2, 0], ['k', t('1')], ['k', t('2')]), at: 'write', error: /holds key "k" twice/ },
    { name: 'duplicate client', bytes: records([2, 0, 0, 2], ['c', 1, t('1')], ['c', 2, t('2')]), at: 'write', error: /holds client "c" twice/ },
    { name: 'empty record', bytes: new Uint8Array(4), at: 'write', error: /empty record/ },
    { name: 'oversized record', bytes: concat([records([2, 0, 1, 0]), new Uint8Array([0, 0, 0, 0x7f])]), at: 'write', error: /record of 2130706432 bytes is over/ },
    { name: 'trailing garbage', bytes: concat([valid, garbage]), at: 'write', error: /trailing bytes after its last record \([12] in this write\)/ },
    { name: 'more keys than counted', bytes: records([2, 0, 1, 0], ['x', t('1')], ['y', t('2')]), at: 'write', error: /trailing bytes/ },
    { name: 'fewer keys than counted', bytes: records([2, 0, 3, 0], ['x', t('1')], ['y', t('2')]), at: 'finish', error: /incomplete: it ends after 2 of 3 key records/ },
    { name: 'fewer sessions than counted', bytes: valid.subarray(0, valid.byteLength - record(kvEncode(['c', 4, t('r')])).byteLength), at: 'finish', error: /ends after 0 of 1 session records/ },
    { name: 'truncated inside a record', bytes: valid.subarray(0, valid.byteLength - 1), at: 'finish', error: /ends inside a record \(\d+ of \d+ bytes\)/ },
    { name: 'truncated inside a length', bytes: valid.subarray(0, 2), at: 'finish', error: /ends inside a record's length prefix \(2 of 4 bytes\)/ },
    { name: 'empty', bytes: new Uint8Array(0), at: 'finish', error: /ends before its header/ },
  ];
  for (const c of cases) {
    for (const pieceBytes of [1, 3, 1 << 20]) {
      const r = sm.restoreImage();
      let thrown: unknown;
      try {
        feed(r, c.bytes, pieceBytes);
      } catch (err) {
        thrown = err;
      }
      if (c.at === 'write') {
        assert.instance(thrown, KvDecodeError, `${c.name}: write must throw`);
      } else {
        assert.is(thrown, undefined, `${c.name}: write must accept what may still be a prefix`);
        try {
          r.finish();
        } catch (err) {
          thrown = err;
        }
        assert.instance(thrown, KvDecodeError, `${c.name}: finish must throw`);
      }
      assert.match((thrown as Error).message, c.error, c.name);
      // Spent: no more bytes, no finish, and the machine never changed.
      assert.throws(() => r.write(new Uint8Array(1)), /after the restore failed/);
      assert.throws(() => r.finish(), /after the restore failed/);
      assert.is(sm.digest(), digest, `${c.name}: state unchanged`);
      assert.is(sm.lastAppliedIndex, 3);
      assert.equal(sm.readLocal('k'), t('v'));
    }
  }

  // The valid image the broken ones derive from does restore, and only once.
  const r = sm.restoreImage();
  feed(r, valid, 2);
  r.finish();
  assert.throws(() => r.finish(), /after the restore finished/);
  assert.is(sm.lastAppliedIndex, 9);
  assert.equal(sm.readLocal('x'), t('1'));
  assert.is(sm.readLocal('k'), undefined);
  assert.is(sm.sessionSeq('c'), 4);
  assert.is(sm.sessionSeq('a'), undefined);
});

test('digest: same state by different histories agrees; any difference in data or sessions shows', () => {
  const cmds: KvCommand[] = [];
  for (let i = 1; i <= 60; i++) {
    const key = `k${(i * 5) % 17}`;
    if (i % 6 === 0) cmds.push({ op: 'delete', clientId: `c${i % 4}`, seq: i, key });
    else cmds.push({ op: 'put', clientId: `c${i % 4}`, seq: i, key, value: t(`v${i}`) });
  }
  const whole = new KvStateMachine();
  cmds.forEach((c, i) => whole.apply(i + 1, encodeCommand(c)));

  // The other replica applies half, is replaced by a peer's snapshot, then goes on.
  const peer = new KvStateMachine();
  cmds.slice(0, 30).forEach((c, i) => peer.apply(i + 1, encodeCommand(c)));
  const restored = new KvStateMachine();
  restored.apply(1, encodeCommand({ op: 'put', clientId: 'gone', seq: 1, key: 'gone', value: t('gone') }));
  const r = restored.restoreImage();
  feed(r, imageBytes(peer.snapshotImage(64)), 13);
  r.finish();
  cmds.slice(30).forEach((c, i) => restored.apply(31 + i, encodeCommand(c)));
  assert.is(restored.digest(), whole.digest());
  assert.match(whole.digest(), /^[0-9a-f]{64}$/);

  // The applied index is not state: entries that change nothing (a read, a bad command) move it
  // and leave the digest alone. (Gaps before writes would show: their results cache the index.)
  const further = new KvStateMachine();
  cmds.forEach((c, i) => further.apply(i + 1, encodeCommand(c)));
  further.apply(70, encodeCommand({ op: 'get', clientId: 'r', seq: 1, key: 'k1' }));
  further.apply(71, new Uint8Array([0xff]));
  assert.is(further.digest(), whole.digest());
  assert.is.not(further.lastAppliedIndex, whole.lastAppliedIndex);

  // One value differs.
  const changed = new KvStateMachine();
  cmds.forEach((c, i) => changed.apply(i + 1, encodeCommand(c.op === 'put' && c.seq === 59 ? { ...c, value: t('v5X') } : c)));
  assert.is.not(changed.digest(), whole.digest());
  // Same data, but a session's seq differs.
  const otherSeq = new KvStateMachine();
  cmds.forEach((c, i) => otherSeq.apply(i + 1, encodeCommand(i === cmds.length - 1 ? { ...c, seq: c.seq + 1 } : c)));
  const lastKey = keysWritten(cmds.at(-1)!)[0]!;
  assert.equal(otherSeq.readLocal(lastKey), whole.readLocal(lastKey));
  assert.is.not(otherSeq.digest(), whole.digest());
});

test('KvApp drives the KV store through the StateMachine interface', () => {
  const app = new KvApp();
  const command = encodeCommand({ op: 'put', clientId: 'a', seq: 1, key: 'k', value: t('v') });
  // Log memory: the command sits inside a larger buffer that is reused after apply.
  const log = new Uint8Array(command.byteLength + 10);
  log.set(command, 5);
  assert.equal(decodeResult(app.apply(4, log, 5, 5 + command.byteLength)), { type: 'written', index: 4 });
  log.fill(0);
  assert.equal(app.readLocal('k'), t('v'));

  const image = app.snapshot();
  assert.is(image.index, 4);
  const other = new KvApp(new KvStateMachine({ sessionsMax: 5 }));
  const r = other.restore();
  for (let p = image.next(); p; p = image.next()) r.write(p);
  r.finish();
  assert.is(other.kv.lastAppliedIndex, 4);
  assert.equal(other.readLocal('k'), t('v'));
  assert.is(other.digest(), app.digest());
});

test('CountStateMachine counts, snapshots as one fixed record, restores and digests', () => {
  const sm = new CountStateMachine();
  const log = new Uint8Array(100);
  sm.apply(1, log, 0, 10);
  sm.apply(3, log, 10, 13);
  sm.apply(4, log, 13, 13);
  assert.is(sm.commands, 3);
  assert.is(sm.bytes, 13);
  assert.is(sm.readLocal(), undefined);
  assert.throws(() => sm.apply(4, log, 0, 1), /index 4 is not after the last applied index 4/);

  const image = sm.snapshot();
  assert.is(image.index, 4);
  const ps = pieces(image);
  assert.is(ps.length, 1);
  assert.is(ps[0]!.byteLength, countImageBytes);
  sm.apply(5, log, 0, 50);
  assert.equal(concat(ps), imageBytes(((): SnapshotImage => {
    const again = new CountStateMachine();
    again.apply(1, log, 0, 10);
    again.apply(3, log, 10, 13);
    again.apply(4, log, 13, 13);
    return again.snapshot();
  })()), 'the image was fixed when taken');

  const copy = new CountStateMachine();
  const r = copy.restore();
  feed(r, ps[0]!, 1);
  r.finish();
  assert.is(copy.lastAppliedIndex, 4);
  assert.is(copy.commands, 3);
  assert.is(copy.bytes, 13);
  copy.apply(5, log, 0, 50);
  assert.is(copy.digest(), sm.digest());
  // The index is not state; the counts are.
  const gappy = new CountStateMachine();
  [10, 20, 30, 40].forEach((i, n) => gappy.apply(i, log, 0, [10, 3, 0, 50][n]!));
  assert.is(gappy.digest(), sm.digest());
  gappy.apply(41, log, 0, 0);
  assert.is.not(gappy.digest(), sm.digest());

  // Refusals leave the counts alone.
  const image28 = ps[0]!;
  const badVersion = image28.slice();
  badVersion[0] = 9;
  const tooMany = new Uint8Array(image28.byteLength);
  new DataView(tooMany.buffer).setUint32(0, 1, true);
  new DataView(tooMany.buffer).setBigUint64(12, 5n, true); // 5 commands by index 0
  const refusals: [string, Uint8Array, RegExp][] = [
    ['version', badVersion, /format 9 is not supported/],
    ['truncated', image28.subarray(0, 27), /ends after 27 of 28 bytes/],
    ['trailing', new Uint8Array([...image28, 0]), /image is 28 bytes; got 29/],
    ['counts', tooMany, /5 commands cannot have been applied by index 0/],
  ];
  for (const [name, bytes, error] of refusals) {
    const before = copy.digest();
    const rr = copy.restore();
    assert.throws(() => {
      rr.write(bytes);
      rr.finish();
    }, error, name);
    assert.throws(() => rr.finish(), /after the restore failed/, name);
    assert.is(copy.digest(), before, name);
    assert.is(copy.lastAppliedIndex, 5, name);
  }
});

test.run();
