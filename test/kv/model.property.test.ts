import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type KvCommand, type KvResult, decodeResult, encodeCommand } from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import type { SnapshotImage } from '../../apps/state-machine.ts';

// The model: a Map for data and, per client, the last seq and its result. Written the obvious
// way, independently of the state machine, so they can only agree if both are right.
class Model {
  data = new Map<string, string>();
  sessions = new Map<string, { seq: number; result: KvResult }>();

  apply(index: number, c: KvCommand): KvResult {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    if (c.op === 'get') {
      const v = this.data.get(c.key);
      return v === undefined ? { type: 'not-found' } : { type: 'value', value: new Uint8Array(Buffer.from(v, 'hex')) };
    }
    const s = this.sessions.get(c.clientId);
    if (s && c.seq === s.seq) return s.result;
    if (s && c.seq < s.seq) return { type: 'error', code: 'stale-request', message: '' };
    let result: KvResult;
    const bytesOf = (h: string | undefined) => (h === undefined ? null : new Uint8Array(Buffer.from(h, 'hex')));
    if (c.op === 'put') {
      this.data.set(c.key, hex(c.value));
      result = { type: 'written', index };
    } else if (c.op === 'delete') {
      result = { type: 'deleted', index, existed: this.data.delete(c.key) };
    } else if (c.op === 'cas') {
      const cur = this.data.get(c.key);
      if ((c.expect === null && cur === undefined) || (c.expect !== null && cur === hex(c.expect))) {
        this.data.set(c.key, hex(c.value));
        result = { type: 'written', index };
      } else {
        result = { type: 'cas-failed', current: bytesOf(cur) };
      }
    } else if (c.op === 'put-if') {
      const cur = this.data.get(c.key);
      const previous = c.returnPrevious ? bytesOf(cur) : null;
      if ((c.condition === 'nx' && cur !== undefined) || (c.condition === 'xx' && cur === undefined)) {
        result = { type: 'condition-failed', previous };
      } else {
        this.data.set(c.key, hex(c.value));
        result = c.returnPrevious ? { type: 'swapped', index, previous } : { type: 'written', index };
      }
    } else if (c.op === 'incr-by') {
      // The model reads integers the lax way and checks the text round-trips instead.
      const cur = this.data.get(c.key);
      const text = cur === undefined ? '0' : Buffer.from(cur, 'hex').toString('latin1');
      const ok = /^-?\d+$/.test(text) && BigInt(text).toString() === text;
      const next = ok ? BigInt(text) + c.delta : 0n;
      if (!ok || next > 2n ** 63n - 1n || next < -(2n ** 63n)) {
        result = { type: 'error', code: 'not-integer', message: '' };
      } else {
        this.data.set(c.key, Buffer.from(next.toString()).toString('hex'));
        result = { type: 'integer', index, value: next };
      }
    } else if (c.op === 'mput') {
      for (const [k, v] of c.entries) this.data.set(k, hex(v));
      result = { type: 'written', index };
    } else {
      let count = 0;
      for (const k of c.keys) if (this.data.delete(k)) count++;
      result = { type: 'deleted-count', index, count };
    }
    this.sessions.set(c.clientId, { seq: c.seq, result });
    return result;
  }
}

// Few keys, clients and tiny values so collisions (cas matches, duplicates, stale seqs) are common.
const key = fc.constantFrom('a', 'b', 'c');
// Bytes 0x2d ('-') and 0x30..0x32 ('0'-'2') so some values read as integers and some nearly do.
const value = fc.array(fc.constantFrom(0x2d, 0x30, 0x31, 0x32, 0), { maxLength: 2 }).map((a) => new Uint8Array(a));
const session = { clientId: fc.constantFrom('x', 'y'), seq: fc.integer({ min: 1, max: 6 }) };
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), ...session, key, value }),
  fc.record({ op: fc.constant('get' as const), ...session, key }),
  fc.record({ op: fc.constant('delete' as const), ...session, key }),
  fc.record({ op: fc.constant('cas' as const), ...session, key, expect: fc.option(value, { nil: null }), value }),
  fc.record({ op: fc.constant('put-if' as const), ...session, key, value, condition: fc.constantFrom('nx' as const, 'xx' as const, null), returnPrevious: fc.boolean() }),
  // Near the int64 edges too, so overflow is drawn; small values may spell integers ("1", "-").
  fc.record({ op: fc.constant('incr-by' as const), ...session, key, delta: fc.oneof(fc.bigInt(-3n, 3n), fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n))) }),
  fc.record({ op: fc.constant('mput' as const), ...session, entries: fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant('mdelete' as const), ...session, keys: fc.array(key, { minLength: 1, maxLength: 3 }) }),
);

function normalise(r: KvResult): KvResult {
  // The model does not reproduce error wording; the code is what clients act on.
  return r.type === 'error' ? { ...r, message: '' } : r;
}

test('the state machine agrees with a Map model on every result and the final data', () => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 60 }), (cmds) => {
      const sm = new KvStateMachine();
      const model = new Model();
      cmds.forEach((c, i) => {
        const got = normalise(decodeResult(sm.apply(i + 1, encodeCommand(c))));
        assert.equal(got, model.apply(i + 1, c), `command ${i}: ${JSON.stringify(c, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      });
      assert.is(sm.keyCount, model.data.size);
      for (const [k, v] of model.data) assert.is(Buffer.from(sm.readLocal(k)!).toString('hex'), v);
    }),
    { numRuns: 500 },
  );
});

function imageBytes(image: SnapshotImage): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (let p = image.next(); p; p = image.next()) pieces.push(p);
  return new Uint8Array(Buffer.concat(pieces));
}

test('snapshot at any point, restore elsewhere in pieces of any size: both continue identically', () => {
  fc.assert(
    fc.property(
      fc.array(command, { maxLength: 40 }),
      fc.array(command, { maxLength: 20 }),
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.integer({ min: 1, max: 48 }), { minLength: 1, maxLength: 8 }),
      (before, after, imagePieceBytes, writeSizes) => {
        const a = new KvStateMachine({ sessionsMax: 1 });
        before.forEach((c, i) => a.apply(i + 1, encodeCommand(c)));
        // Stream the image straight into the restore, re-cut into pieces of the drawn sizes.
        const image = a.snapshotImage(imagePieceBytes);
        const b = new KvStateMachine({ sessionsMax: 1 });
        const restore = b.restoreImage();
        let cut = 0;
        for (let piece = image.next(); piece; piece = image.next()) {
          for (let at = 0; at < piece.byteLength; cut++) {
            const n = writeSizes[cut % writeSizes.length]!;
            restore.write(piece.subarray(at, at + n));
            at += n;
          }
        }
        restore.finish();
        assert.is(b.lastAppliedIndex, a.lastAppliedIndex);
        assert.is(b.digest(), a.digest());
        after.forEach((c, i) => {
          const index = before.length + i + 1;
          assert.equal(b.apply(index, encodeCommand(c)), a.apply(index, encodeCommand(c)));
        });
        assert.equal(imageBytes(b.snapshotImage()), imageBytes(a.snapshotImage()));
        assert.is(b.digest(), a.digest());
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
