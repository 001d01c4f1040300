// EntryArena: the columnar entry run that the memory store and a node's in-memory log keep.
// Small chunks and random operations against a plain array model, so chunk and block boundaries,
// truncation into the middle of a chunk and compaction are all crossed many times.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryArena } from '../../runtime/storage/entry-arena.ts';
import { openMemory, createMemoryDisk } from '../../runtime/storage/memory.ts';
import { StorageError } from '../../runtime/storage/rules.ts';
import type { LogEntry } from '../../runtime/storage/types.ts';
import { makeEntries, plain, throwsCode } from './helpers.ts';

test('push, term, get and slice give back every entry exactly, across chunks and blocks', () => {
  const a = new EntryArena(1, 256);
  const all = [...makeEntries(1, 70_000, 3, 5, 7), ...makeEntries(70_001, 3, 4, 700)];
  for (const e of all) a.push(e);
  assert.is(a.firstIndex, 1);
  assert.is(a.lastIndex, 70_003);
  assert.is(a.length, 70_003);
  assert.is(a.term(0), -1);
  assert.is(a.term(70_004), -1);
  assert.is(a.term(65_537), 3, 'second column block');
  assert.is(a.term(70_002), 4);
  assert.equal(plain([a.get(65_536), a.get(65_537)]), plain(all.slice(65_535, 65_537)));
  assert.equal(plain(a.slice(69_999, 70_004)), plain(all.slice(69_998)), 'an entry larger than a chunk gets its own');
  assert.throws(() => a.get(70_004), /not held/);
  assert.throws(() => a.push(makeEntries(70_010, 1, 4)[0]!), /does not follow/);
  // locate: the same kind and bytes as get, with no object made (one reused reference).
  const at = { bytes: new Uint8Array(0), start: 0, end: 0 };
  for (const i of [1, 2, 65_536, 65_537, 70_000, 70_001, 70_003]) {
    const e = a.get(i);
    assert.is(a.locate(i, at), e.kind, `kind of ${i}`);
    assert.equal(at.bytes.subarray(at.start, at.end), e.data, `data of ${i}`);
  }
  assert.throws(() => a.locate(0, at), /not held/);
  assert.throws(() => a.push({ index: 70_004, term: 2 ** 32, kind: 0, data: new Uint8Array(1) }), /beyond the largest a log can hold/);
  assert.is(a.lastIndex, 70_003, 'a refused entry is not half-written');
  a.dropThrough(10);
  assert.throws(() => a.locate(10, at), /not held/);
});

test('dropped chunks and column blocks are reused without mixing up what is still held', () => {
  const a = new EntryArena(1, 1024);
  const term = (i: number) => 1 + (i >> 12);
  const entry = (i: number) => ({ index: i, term: term(i), kind: i % 3, data: new Uint8Array([i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff]) });
  for (let i = 1; i <= 200_000; i++) a.push(entry(i));
  a.dropThrough(150_000); // releases two column blocks and most chunks
  for (let i = 200_001; i <= 330_000; i++) a.push(entry(i)); // needs two more blocks: the released ones
  assert.is(a.firstIndex, 150_001);
  assert.is(a.lastIndex, 330_000);
  for (let i = 150_001; i <= 330_000; i += 997) {
    const e = a.get(i);
    assert.equal([e.index, e.term, e.kind, ...e.data], [i, term(i), i % 3, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff], `entry ${i}`);
  }
  assert.is(a.term(150_000), -1);
});

test('a log compacted as it goes holds a bounded number of blocks and chunks, however long it runs', () => {
  const a = new EntryArena(1, 4096);
  const data = new Uint8Array(64);
  let most = { blocks: 0, chunks: 0 };
  for (let i = 1; i <= 2_000_000; i++) {
    a.push({ index: i, term: 1, kind: 0, data });
    if (i % 100_000 === 0) {
      const f = a.footprint();
      most = { blocks: Math.max(most.blocks, f.blocks), chunks: Math.max(most.chunks, f.chunks) };
      a.dropThrough(i - 1_000);
    }
  }
  // At most 101,000 entries held: two or three column blocks, 64 B × 101,000 / 4 KiB ≈ 1,580 chunks.
  assert.ok(most.blocks <= 3, `blocks ${most.blocks}`);
  assert.ok(most.chunks <= 1_600, `chunks ${most.chunks}`);
  assert.equal(a.footprint(), { blocks: 1, chunks: 16 }, '1,000 entries held at the end');
  assert.is(a.get(1_999_001).index, 1_999_001);
  assert.is(a.term(1_999_000), -1);
});

test('data are copied: the caller may reuse its buffers after push', () => {
  const a = new EntryArena(1, 64);
  const data = new Uint8Array([1, 2, 3]);
  a.push({ index: 1, term: 1, kind: 0, data });
  data.fill(9);
  assert.equal(Array.from(a.get(1).data), [1, 2, 3]);
});

type Op = { t: 'push'; count: number; term: number; bytes: number } | { t: 'truncate'; back: number } | { t: 'drop'; fraction: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('push' as const), count: fc.integer({ min: 1, max: 40 }), term: fc.integer({ min: 1, max: 9 }), bytes: fc.nat(90) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('truncate' as const), back: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

test('random push / truncate / drop sequences match a plain array model', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { maxLength: 80 }), (origin, ops) => {
      const a = new EntryArena(origin, 128);
      let first = origin;
      let model: LogEntry[] = []; // model[i].index === first + i
      for (const op of ops) {
        const next = first + model.length;
        if (op.t === 'push') {
          const es = makeEntries(next, op.count, op.term, op.bytes);
          for (const e of es) a.push(e);
          model.push(...es);
        } else if (op.t === 'truncate') {
          const from = Math.max(first, next - op.back);
          a.truncateFrom(from);
          model = model.slice(0, from - first);
        } else {
          const through = first - 1 + Math.floor(op.fraction * model.length);
          a.dropThrough(through);
          model = model.slice(through + 1 - first);
          first = through + 1;
        }
        assert.is(a.firstIndex, first);
        assert.is(a.lastIndex, first + model.length - 1);
        assert.is(a.term(first - 1), -1);
      }
      assert.equal(plain(a.slice(first, first + model.length)), plain(model));
      for (const e of model) assert.is(a.term(e.index), e.term);
    }),
    { numRuns: 500 },
  );
});

test('memory store with keepEntries: false tracks positions and hard state, keeps no entries, refuses a disk', () => {
  const s = openMemory({ keepEntries: false });
  s.append(makeEntries(1, 10, 1));
  s.setHardState({ term: 2, vote: 1, commit: 5 });
  s.sync();
  s.append(makeEntries(8, 2, 2));
  s.sync();
  assert.is(s.lastIndex, 9);
  assert.is(s.hardState.term, 2);
  throwsCode(() => s.compact(4, 2), 'BAD_ENTRY', /index 4 has term 1, not 2/); // terms are kept without the entries
  s.compact(4, 1);
  assert.is(s.firstIndex, 5);
  assert.is(s.compactedTerm, 1);
  assert.throws(
    () => openMemory({ keepEntries: false, disk: createMemoryDisk() }),
    (e: unknown) => e instanceof StorageError && e.code === 'BAD_OPTION' && /cannot be combined with disk/.test(e.message),
  );
  assert.throws(() => openMemory({ keepEntries: 'no' as unknown as boolean }), /keepEntries must be true or false/);
});

test.run();
