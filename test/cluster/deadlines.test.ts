import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { DeadlineHeap } from '../../apps/cluster/deadlines.ts';

interface Item {
  deadlineAt: number;
  done: boolean;
  id: number;
}

test('expires exactly the waiting items whose deadline passed, earliest first, across compactions', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.integer({ min: 0, max: 5000 }), settle: fc.integer({ min: 0, max: 9 }).map((d) => d < 8) }), { minLength: 1100, maxLength: 3000 }),
      fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 8 }),
      (spec, checks) => {
        const heap = new DeadlineHeap<Item>();
        const items: Item[] = [];
        let live = 0;
        for (const [id, s] of spec.entries()) {
          const it = { deadlineAt: s.at, done: false, id };
          items.push(it);
          live++;
          heap.push(it, live);
          // Settle some along the way, so compaction (at 1024+ entries, more than twice the live ones) runs.
          if (s.settle) {
            it.done = true;
            live--;
          }
        }
        const expired = new Set<number>();
        let last = -1;
        for (const now of [...checks].sort((a, b) => a - b)) {
          heap.expireThrough(now, (it) => {
            assert.ok(!it.done, 'a settled item is never expired');
            assert.ok(it.deadlineAt <= now, 'nothing expires early');
            assert.ok(it.deadlineAt >= last, 'earliest first');
            last = it.deadlineAt;
            expired.add(it.id);
            it.done = true;
          });
          for (const it of items) if (!it.done) assert.ok(it.deadlineAt > now, `item ${it.id} (deadline ${it.deadlineAt}) still waits at ${now}`);
        }
        for (const it of items) if (expired.has(it.id)) assert.ok(spec[it.id]!.settle === false);
      },
    ),
    { numRuns: 100 },
  );
});

test.run();
