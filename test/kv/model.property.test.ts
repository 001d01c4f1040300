import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type KvCommand, type KvResult, decodeResult, encodeCommand } from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';

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
    if (c.op === 'put') {
      this.data.set(c.key, hex(c.value));
      result = { type: 'written', index };
    } else if (c.op === 'delete') {
      result = { type: 'deleted', index, existed: this.data.delete(c.key) };
    } else {
      const cur = this.data.get(c.key);
      if ((c.expect === null && cur === undefined) || (c.expect !== null && cur === hex(c.expect))) {
        this.data.set(c.key, hex(c.value));
        result = { type: 'written', index };
      } else {
        result = { type: 'cas-failed', current: cur === undefined ? null : new Uint8Array(Buffer.from(cur, 'hex')) };
      }
    }
    this.sessions.set(c.clientId, { seq: c.seq, result });
    return result;
  }
}

// Few keys, clients and tiny values so collisions (cas matches, duplicates, stale seqs) are common.
const key = fc.constantFrom('a', 'b', 'c');
const value = fc.uint8Array({ maxLength: 2, max: 2 });
const session = { clientId: fc.constantFrom('x', 'y'), seq: fc.integer({ min: 1, max: 6 }) };
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), ...session, key, value }),
  fc.record({ op: fc.constant('get' as const), ...session, key }),
  fc.record({ op: fc.constant('delete' as const), ...session, key }),
  fc.record({ op: fc.constant('cas' as const), ...session, key, expect: fc.option(value, { nil: null }), value }),
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
        assert.equal(got, model.apply(i + 1, c), `command ${i}: ${JSON.stringify(c)}`);
      });
      assert.is(sm.keyCount, model.data.size);
      for (const [k, v] of model.data) assert.is(Buffer.from(sm.readLocal(k)!).toString('hex'), v);
    }),
    { numRuns: 500 },
  );
});

test('snapshot at any point, restore elsewhere: both continue identically', () => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 40 }), fc.array(command, { maxLength: 20 }), (before, after) => {
      const a = new KvStateMachine({ sessionsMax: 1 });
      before.forEach((c, i) => a.apply(i + 1, encodeCommand(c)));
      const b = new KvStateMachine({ sessionsMax: 1 });
      b.restore(a.snapshot());
      after.forEach((c, i) => {
        const index = before.length + i + 1;
        assert.equal(b.apply(index, encodeCommand(c)), a.apply(index, encodeCommand(c)));
      });
      assert.equal(b.snapshot(), a.snapshot());
    }),
    { numRuns: 300 },
  );
});

test.run();
