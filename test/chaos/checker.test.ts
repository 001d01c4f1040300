import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type IndexedOp, checkHistory, checkKey, formatFailure } from '../../apps/chaos/checker.ts';
import type { HistoryOp } from '../../apps/chaos/history.ts';
import { cas, del, get, put } from './generate.ts';

const indexed = (ops: HistoryOp[]): IndexedOp[] => ops.map((o, id) => ({ ...o, id }));
const verdict = (ops: HistoryOp[]) => checkKey('x', indexed(ops));
const accepts = (ops: HistoryOp[], why: string) => assert.is(verdict(ops).linearizable, true, why);
const rejects = (ops: HistoryOp[], why: string) => {
  const v = verdict(ops);
  assert.is(v.linearizable, false, why);
  assert.ok(v.failure, 'a rejection carries a failure report');
  return v.failure!;
};

test('concurrent writes may take effect in either order', () => {
  const writes = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 1, 11)];
  accepts([...writes, get(3, 'x', 'a', 12, 13)], 'b then a');
  accepts([...writes, get(3, 'x', 'b', 12, 13)], 'a then b');
  rejects([...writes, get(3, 'x', null, 12, 13)], 'both writes completed, so the key exists');
});

test('reads concurrent with a write see old then new, never new then old', () => {
  const w = put(1, 'x', 'a', 0, 10);
  accepts([w, get(2, 'x', null, 2, 3), get(2, 'x', 'a', 4, 5)], 'old then new');
  accepts([w, get(2, 'x', 'a', 2, 3), get(3, 'x', 'a', 4, 5)], 'new then new');
  accepts([w, get(2, 'x', 'a', 2, 6), get(3, 'x', null, 3, 5)], 'overlapping reads may see new and old');
});

test('an unknown write may or may not have taken effect, but at most once', () => {
  const before = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, null)];
  accepts([...before, get(3, 'x', 'b', 10, 11)], 'took effect');
  accepts([...before, get(3, 'x', 'a', 10, 11)], 'never took effect');
  accepts([...before, get(3, 'x', 'a', 10, 11), get(3, 'x', 'b', 12, 13)], 'took effect late, after the first read');
  rejects([...before, get(3, 'x', 'b', 10, 11), get(3, 'x', 'a', 12, 13)], 'a write cannot be undone');
  rejects([put(2, 'x', 'b', 20, null), get(3, 'x', 'b', 10, 11)], 'an unknown write cannot take effect before it was invoked');
});

test('failed ops never took effect; unknown reads constrain nothing', () => {
  const h = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, 3, 'fail'), get(4, 'x', null, 2, 3, 'unknown')];
  h[2]!.complete = null;
  accepts([...h, get(3, 'x', 'a', 4, 5)], 'the failed write is ignored');
  rejects([...h, get(3, 'x', 'b', 4, 5)], 'a failed write must not be visible');
  const v = verdict([...h, get(3, 'x', 'a', 4, 5)]);
  assert.is(v.opsDropped, 2, 'the failed put and the unknown get are dropped');
});

test('cas succeeds only from the expected value and fails otherwise', () => {
  accepts(
    [
      cas(1, 'x', null, 'a', true, 0, 1),
      cas(1, 'x', 'a', 'b', true, 2, 3),
      get(1, 'x', 'b', 4, 5),
      cas(1, 'x', 'a', 'c', false, 6, 7),
      get(1, 'x', 'b', 8, 9),
    ],
    'cas from absent, cas a→b, failed cas a→c',
  );
  rejects([put(1, 'x', 'a', 0, 1), cas(1, 'x', 'a', 'b', false, 2, 3)], 'cas from the current value cannot fail');
  rejects([cas(1, 'x', 'a', 'b', true, 0, 1)], 'cas from a value that was never there cannot succeed');
  accepts([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', null, 2, null), get(1, 'x', 'b', 5, 6)], 'an unknown cas that applied');
  accepts([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', null, 2, null), get(1, 'x', 'a', 5, 6)], 'an unknown cas that did not');
  rejects([put(1, 'x', 'c', 0, 1), cas(2, 'x', 'a', 'b', null, 2, null), get(1, 'x', 'b', 5, 6)], 'an unknown cas cannot apply from the wrong value');
});

test('delete then get reads absent', () => {
  accepts([put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 3), get(2, 'x', null, 4, 5)], 'deleted');
  rejects([put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 3), get(2, 'x', 'a', 4, 5)], 'a read after a completed delete sees the old value');
});

test('rejects a stale read after a completed write, naming it in the report', () => {
  const f = rejects([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)], 'stale read');
  assert.is(f.key, 'x');
  assert.is(f.stuck.id, 2, 'the stale get is the op that cannot be placed');
  assert.is(f.prefixOpsTotal, 2);
  assert.is(f.stateAfterPrefix, 'b');
  const text = formatFailure(f);
  assert.match(text, /key "x" is not linearizable/);
  assert.match(text, /#2 .*get .*\[4\.0 → 5\.0 ms\].*read "a"/);
  assert.match(text, /Value after the prefix: "b"/);
});

test('rejects a lost write: a completed write never seen by a later read', () => {
  const f = rejects([put(1, 'x', 'a', 0, 1), get(2, 'x', null, 5, 6), get(2, 'x', null, 7, 8)], 'lost write');
  assert.is(f.stuck.id, 1);
});

test('rejects a cas that succeeded twice from the same expected value', () => {
  rejects([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 5), cas(3, 'x', 'a', 'c', true, 3, 6)], 'double cas');
  accepts([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 5), cas(3, 'x', 'a', 'c', false, 3, 6)], 'one wins, one loses');
});

test('rejects a read of a value never written', () => {
  const f = rejects([put(1, 'x', 'a', 0, 1), get(2, 'x', 'zzz', 2, 3)], 'phantom value');
  assert.is(f.stuck.result, 'zzz');
});

test('rejects reads that go back in time', () => {
  const w = put(1, 'x', 'b', 2, 10);
  rejects([put(1, 'x', 'a', 0, 1), w, get(2, 'x', 'b', 3, 4), get(2, 'x', 'a', 5, 6)], 'same client');
  rejects([put(1, 'x', 'a', 0, 1), w, get(2, 'x', 'b', 3, 4), get(3, 'x', 'a', 5, 6)], 'different clients');
});

test('the failure window lists what was pending when the search got stuck', () => {
  // The deepest dead end places every op it can; what cannot be placed stays pending.
  const h = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, null), get(3, 'x', 'q', 2, 10), get(4, 'x', 'zzz', 3, 4)];
  const f = rejects(h, 'phantom values');
  assert.equal(f.prefix.map((p) => p.op.id), [0, 1]);
  assert.equal(f.prefix.map((p) => p.stateAfter), ['a', 'b']);
  assert.is(f.stuck.id, 3, 'the read that completes first is stuck');
  assert.equal(f.pending.map((o) => o.id), [2]);
  assert.is(f.pendingOpsTotal, 1);
  assert.match(formatFailure(f), /Ops pending then; [^\n]*\n  #2 /);
});

test('many concurrent ops on one key stay fast thanks to memoisation', () => {
  // 16 overlapping ops (8 writes, 8 reads of them) then a read nothing explains: the search
  // must refute every order of the window: 16! ≈ 2e13 without memo, ≤ 2^16 · 9 with it.
  const h: HistoryOp[] = [put(0, 'x', 'a', 0, 1)];
  for (let i = 0; i < 8; i++) h.push(put(i + 1, 'x', `v${i}`, 2 + i, 50));
  for (let i = 0; i < 8; i++) h.push(get(i + 10, 'x', `v${(i * 3) % 8}`, 2 + i, 50));
  h.push(get(20, 'x', 'never', 60, 61));
  const started = performance.now();
  const v = checkKey('x', indexed(h), { searchStepsMax: 50_000_000 });
  const tookMs = performance.now() - started;
  assert.is(v.linearizable, false);
  assert.ok(v.steps < 2_000_000, `steps ${v.steps}`);
  assert.ok(tookMs < 10_000, `took ${tookMs} ms`);
  // Same window without the bogus read is linearizable and found quickly.
  const ok = checkKey('x', indexed(h.slice(0, -1)));
  assert.is(ok.linearizable, true);
});

test('an exhausted search budget is unknown, never true', () => {
  const h: HistoryOp[] = [put(0, 'x', 'a', 0, 1)];
  for (let i = 0; i < 6; i++) h.push(put(i + 1, 'x', `v${i}`, 2 + i, 50), get(i + 10, 'x', `v${5 - i}`, 2 + i, 50));
  const full = checkKey('x', indexed(h));
  assert.is(full.linearizable, true);
  assert.ok(full.steps > 5);
  const starved = checkKey('x', indexed(h), { searchStepsMax: 5 });
  assert.is(starved.linearizable, 'unknown');
  assert.match(starved.reason!, /searchStepsMax = 5/);
  const bad = checkKey('x', indexed([...h, get(1, 'x', 'never', 60, 61)]), { searchStepsMax: 5 });
  assert.is(bad.linearizable, 'unknown', 'not false either: the search did not finish');
});

test('checkHistory partitions by key and combines verdicts', async () => {
  const good = [put(1, 'a', '1', 0, 1), get(2, 'a', '1', 2, 3)];
  const stale = [put(1, 'b', '1', 0, 1), put(1, 'b', '2', 2, 3), get(2, 'b', '1', 4, 5)];
  const r = await checkHistory([...good, ...stale]);
  assert.is(r.linearizable, false);
  assert.is(r.ranOn, 'inline');
  assert.equal(r.keys.map((k) => [k.key, k.linearizable]), [['a', true], ['b', false]]);
  assert.is(r.failure!.key, 'b');
  assert.is(r.failure!.stuck.id, 4, 'ids are positions in the whole history');
  // Keys are independent: the same ops interleaved on one key would be fine on another.
  assert.is((await checkHistory(good)).linearizable, true);
  const starved = await checkHistory([...good, put(3, 'c', '1', 0, 9), get(4, 'c', '1', 1, 2), get(5, 'c', null, 1, 2)], { searchStepsMax: 3 });
  assert.is(starved.linearizable, 'unknown');
  assert.is((await checkHistory([])).linearizable, true);
});

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}

test('checkHistory refuses bad options and bad ops up front, naming them', async () => {
  await rejectsWith(checkHistory([], { threads: 0 }), /threads must be a positive integer, got 0/);
  await rejectsWith(checkHistory([], { searchStepsMax: 1.5 }), /searchStepsMax/);
  const bad = { ...put(1, 'a', '1', 0, 1), value: null } as unknown as HistoryOp;
  await rejectsWith(checkHistory([get(1, 'a', null, 0, 1), bad]), /op #1: field "value"/);
});

test.run();
