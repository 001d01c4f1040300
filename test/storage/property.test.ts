// Property test: random sequences of append (with conflicts and gaps), setHardState, sync,
// compact, resetTo, clean reopen and crash-reopen, run against both stores and compared to a plain
// model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createMemoryDisk, openMemory } from '../../runtime/storage/memory.ts';
import { StorageError } from '../../runtime/storage/rules.ts';
import type { FsyncPolicy, HardState, LogEntry } from '../../runtime/storage/types.ts';
import { openWal } from '../../runtime/storage/wal.ts';
import type { Crashable } from './behaviour.ts';
import { makeEntries, plain } from './helpers.ts';

type Op =
  | { t: 'append'; back: number; count: number; term: number; bytes: number }
  | { t: 'gap'; ahead: number }
  | { t: 'hard'; hs: HardState }
  | { t: 'sync' }
  | { t: 'compact'; fraction: number }
  | { t: 'reset'; ahead: number; term: number }
  | { t: 'reopen' }
  | { t: 'crash' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('append' as const), back: fc.nat(4), count: fc.integer({ min: 1, max: 6 }), term: fc.integer({ min: 1, max: 9 }), bytes: fc.nat(300) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('gap' as const), ahead: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('hard' as const),
      hs: fc.record(
        { term: fc.nat(20), vote: fc.nat(5), commit: fc.nat(50), extra: fc.uint8Array({ maxLength: 6 }) },
        { requiredKeys: ['term', 'vote', 'commit'] },
      ),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ t: 'sync' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  // ahead is relative to the compaction point, so a reset lands below, at and above lastIndex.
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reset' as const), ahead: fc.nat(12), term: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'crash' as const }) },
);

interface ModelState {
  /** log[i].index === i + 1; compaction only moves `compacted`; a reset pads up to its point with
   * entries whose only meaningful field is the term at the point. */
  log: LogEntry[];
  compacted: number;
  hs: HardState;
}
const cloneState = (m: ModelState): ModelState => ({ log: m.log.slice(), compacted: m.compacted, hs: m.hs });
const termAt = (m: ModelState, index: number): number => (index === 0 ? 0 : m.log[index - 1]!.term);

function hsView(hs: HardState): unknown {
  return { term: hs.term, vote: hs.vote, commit: hs.commit, extra: hs.extra && hs.extra.length > 0 ? Array.from(hs.extra) : undefined };
}

function runAgainstModel(open: () => Crashable, policy: FsyncPolicy, ops: Op[]): void {
  let now: ModelState = { log: [], compacted: 0, hs: { term: 0, vote: 0, commit: 0 } };
  let durable = cloneState(now);
  let s = open();
  s.load();

  const reopenAndCompare = (): void => {
    s = open();
    const r = s.load();
    assert.equal(plain(r.entries), plain(now.log.slice(now.compacted)));
    assert.is(r.compactedIndex, now.compacted);
    assert.is(r.compactedTerm, termAt(now, now.compacted));
    assert.equal(hsView(r.hardState), hsView(now.hs));
    assert.is(r.report.dropped, null);
  };
  const wrote = (): void => {
    if (policy === 'always') durable = cloneState(now);
  };

  for (const op of ops) {
    const last = now.log.length;
    switch (op.t) {
      case 'append': {
        const first = Math.max(1, last + 1 - op.back);
        const entries = makeEntries(first, op.count, op.term, op.bytes);
        if (first <= now.compacted) {
          assert.throws(() => s.append(entries), (e: unknown) => e instanceof StorageError && e.code === 'COMPACTED');
          break;
        }
        s.append(entries);
        now.log = [...now.log.slice(0, first - 1), ...entries];
        wrote();
        break;
      }
      case 'gap':
        assert.throws(() => s.append(makeEntries(last + 1 + op.ahead, 1, 1)), (e: unknown) => e instanceof StorageError && e.code === 'GAP');
        break;
      case 'hard':
        s.setHardState(op.hs);
        now.hs = op.hs;
        wrote();
        break;
      case 'sync':
        s.sync();
        durable = cloneState(now);
        break;
      case 'compact': {
        const upTo = now.compacted + Math.floor(op.fraction * (last - now.compacted));
        s.compact(upTo, termAt(now, upTo));
        if (upTo > now.compacted) {
          now.compacted = upTo;
          durable = cloneState(now); // a real compaction syncs what came before it
        }
        break;
      }
      case 'reset': {
        const point = now.compacted + op.ahead;
        if (point === now.compacted && op.term !== termAt(now, point)) {
          // The compaction point's term is fixed: a snapshot there with another term is a bug.
          assert.throws(() => s.resetTo(point, op.term), (e: unknown) => e instanceof StorageError && e.code === 'BAD_ENTRY');
          break;
        }
        s.resetTo(point, op.term);
        const padding = makeEntries(1, point, 0, 0).slice(now.log.length);
        now.log = [...now.log, ...padding].slice(0, point);
        if (point > 0) now.log[point - 1] = { ...now.log[point - 1]!, term: op.term };
        now.compacted = point;
        wrote();
        break;
      }
      case 'reopen':
        s.close();
        durable = cloneState(now);
        reopenAndCompare();
        break;
      case 'crash':
        s.crash();
        now = cloneState(durable);
        reopenAndCompare();
        break;
    }
    assert.is(s.lastIndex, now.log.length);
    assert.is(s.firstIndex, now.compacted + 1);
    assert.is(s.compactedTerm, termAt(now, now.compacted));
  }
  s.close();
  reopenAndCompare();
  s.close();
}

const policyArb = fc.constantFrom<FsyncPolicy>('batch', 'always', 'never');

test('memory store matches the model', () => {
  fc.assert(
    fc.property(policyArb, fc.array(opArb, { maxLength: 60 }), (policy, ops) => {
      const disk = createMemoryDisk();
      runAgainstModel(() => openMemory({ disk, fsync: policy }), policy, ops);
    }),
    { numRuns: 1000 },
  );
});

test('WAL (4 KiB segments, 1 KiB records) matches the model', () => {
  fc.assert(
    fc.property(policyArb, fc.array(opArb, { maxLength: 60 }), (policy, ops) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concur-storage-prop-'));
      try {
        runAgainstModel(() => openWal({ dir, fsync: policy, segmentBytesMax: 4096, recordBytesMax: 1024 }), policy, ops);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 400 },
  );
});

test.run();
