// SlotMap and ChosenValues (the Paxos core's slot-indexed stores) behave like the plain maps they
// replace, under random operations including slots far past the window and below it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { SlotMap } from '../../protocols/paxos/slot-map.ts';
import { ChosenValues } from '../../protocols/paxos/chosen-values.ts';
import { ValueKind, type Value } from '../../protocols/paxos/types.ts';

const slot = fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 3_000_000 }));

test('SlotMap: get, has, set, delete, size and slot-ordered iteration match a Map', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('set', 'delete', 'clear'), slot), { maxLength: 200 }), (ops) => {
      const m = new SlotMap<number>();
      const ref = new Map<number, number>();
      ops.forEach(([op, s], i) => {
        if (op === 'set') {
          m.set(s, i);
          ref.set(s, i);
        } else if (op === 'delete') assert.is(m.delete(s), ref.delete(s));
        else if (i % 17 === 0) {
          m.clear();
          ref.clear();
        }
        assert.is(m.size, ref.size);
        assert.is(m.get(s), ref.get(s));
        assert.is(m.has(s), ref.has(s));
      });
      assert.equal([...m], [...ref].sort((a, b) => a[0] - b[0]));
    }),
    // The first: a slot written again after the window grew down past spanMax below it (it
    // was then kept twice, once in the overflow map).
    { numRuns: 500, examples: [[[['set', 1_048_578], ['set', 2], ['set', 1], ['set', 1_048_578]]]] },
  );
});

const v = (n: number): Value => ({ kind: ValueKind.normal, data: new Uint8Array([n & 255]) });

test('ChosenValues: contiguous run, values ahead of a gap, dropping through a slot', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 80 })), { maxLength: 150 }), (ops) => {
      const c = new ChosenValues();
      const ref = new Map<number, Value>();
      let base = 0;
      for (const [drop, s] of ops) {
        if (drop) {
          if (s > base) {
            c.dropThrough(s);
            for (const k of [...ref.keys()]) if (k <= s) ref.delete(k);
            base = s;
          }
        } else if (s > base && !ref.has(s)) {
          const val = v(s);
          c.set(s, val);
          ref.set(s, val);
        }
        let contiguous = base;
        while (ref.has(contiguous + 1)) contiguous++;
        assert.is(c.contiguous, contiguous);
        for (let k = 1; k <= 81; k++) {
          assert.is(c.has(k), ref.has(k));
          assert.is(c.get(k), ref.get(k));
        }
      }
      assert.equal(new Map(c.entries()), ref);
    }),
    { numRuns: 500 },
  );
});

test.run();
