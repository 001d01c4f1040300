import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type IndexedOp, checkHistory, checkKey } from '../../apps/chaos/checker.ts';
import type { HistoryOp } from '../../apps/chaos/history.ts';
import { generateHistory } from './generate.ts';

// Sequential histories from a Map: op i runs in [2i, 2i+1], so the only linearization is
// program order and every result is determined. Keys 'a'..'c', values 'v0'..'v3'.
const seqOp = fc.record({
  kind: fc.constantFrom('put', 'get', 'delete', 'cas'),
  key: fc.constantFrom('a', 'b', 'c'),
  value: fc.constantFrom('v0', 'v1', 'v2', 'v3'),
  expect: fc.constantFrom(null, 'v0', 'v1', 'v2', 'v3'),
  status: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'fail', 'unknown'),
  applied: fc.boolean(),
});

function sequential(steps: Array<typeof seqOp extends fc.Arbitrary<infer T> ? T : never>): HistoryOp[] {
  const data = new Map<string, string>();
  return steps.map((s, i) => {
    const invoke = 2 * i;
    const status = s.status as HistoryOp['status'];
    // A sequential unknown op took effect (if at all) before the next op began.
    const applies = status === 'ok' || (status === 'unknown' && s.applied);
    const cur = data.get(s.key) ?? null;
    const o: HistoryOp = { client: i % 3, op: s.kind as HistoryOp['op'], key: s.key, value: null, invoke, complete: status === 'unknown' ? null : invoke + 1, status, result: null };
    if (o.op === 'put') {
      o.value = s.value;
      if (applies) data.set(s.key, s.value);
    } else if (o.op === 'delete') {
      if (applies) data.delete(s.key);
    } else if (o.op === 'get') {
      if (status === 'ok') o.result = cur;
    } else {
      o.value = s.value;
      o.expect = s.expect;
      const swapped = cur === s.expect;
      if (applies && swapped) data.set(s.key, s.value);
      if (status === 'ok') o.result = swapped;
    }
    return o;
  });
}

const indexed = (ops: HistoryOp[]): IndexedOp[] => ops.map((o, id) => ({ ...o, id }));

test('property: sequential histories from a real map are accepted', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(seqOp, { minLength: 1, maxLength: 60 }), async (steps) => {
      const r = await checkHistory(sequential(steps));
      assert.is(r.linearizable, true);
    }),
    { numRuns: 300 },
  );
});

test('property: one read changed to an impossible value is rejected', () => {
  fc.assert(
    fc.property(fc.array(seqOp, { minLength: 1, maxLength: 60 }), fc.nat(), (steps, pick) => {
      const h = sequential(steps);
      const reads = h.map((o, i) => i).filter((i) => h[i]!.op === 'get' && h[i]!.status === 'ok');
      fc.pre(reads.length > 0);
      const i = reads[pick % reads.length]!;
      h[i]!.result = 'never-written';
      const v = checkKey(h[i]!.key, indexed(h).filter((o) => o.key === h[i]!.key));
      assert.is(v.linearizable, false);
      assert.is(v.failure!.stuck.id, i, 'the corrupted read is the op that cannot be placed');
    }),
    { numRuns: 300 },
  );
});

test('property: without unknown ops, any other read result or flipped cas is rejected', () => {
  // Sequential and nothing uncertain: every result is forced, so any change must be caught.
  const certain = seqOp.filter((s) => s.status !== 'unknown');
  fc.assert(
    fc.property(fc.array(certain, { minLength: 1, maxLength: 50 }), fc.nat(), fc.constantFrom(null, 'v0', 'v1', 'v2', 'v3'), (steps, pick, other) => {
      const h = sequential(steps);
      const observed = h.map((o, i) => i).filter((i) => h[i]!.status === 'ok' && (h[i]!.op === 'get' || h[i]!.op === 'cas'));
      fc.pre(observed.length > 0);
      const i = observed[pick % observed.length]!;
      const o = h[i]!;
      if (o.op === 'cas') o.result = !o.result;
      else {
        fc.pre(o.result !== other);
        o.result = other;
      }
      assert.is(checkKey(o.key, indexed(h).filter((x) => x.key === o.key)).linearizable, false);
    }),
    { numRuns: 400 },
  );
});

test('property: concurrent histories linearizable by construction are accepted', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
      const h = generateHistory({ seed, clients: 5, opsPerClient: 40, keys: 2, unknownRate: 0.05, failRate: 0.05 });
      const byKey = new Map<string, IndexedOp[]>();
      indexed(h).forEach((o) => byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]));
      for (const [key, ops] of byKey) assert.is(checkKey(key, ops).linearizable, true, `seed ${seed} key ${key}`);
    }),
    { numRuns: 100 },
  );
});

test.run();
