// The mutual-exclusion checker of `concur chaos --workload lock` on hand-made histories: what it
// accepts (a waiter queued before the release but granted after it; unknown outcomes; overlaps
// within the clock-rounding margin) and what it flags, in log order (two grants proven to hold at
// one index; a lock read free while a grant is proven held) and in real time (two owners'
// believed windows overlapping; a later window with a smaller token; tokens no grant can explain).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkLockHistory, formatLockViolations, lockMarginMs } from '../../apps/chaos/lock-checker.ts';
import { LockHistoryRecorder, formatLockHistory, parseLockHistory, type LockHistoryOp, type LockOutcome } from '../../apps/chaos/lock-history.ts';

type Op = Partial<LockHistoryOp> & Pick<LockHistoryOp, 'owner' | 'op' | 'invoke'>;
function op(o: Op): LockHistoryOp {
  return { client: o.owner.split('.')[0]!, lock: 'L', ttlMs: null, waitMs: null, token: null, complete: null, status: 'unknown', result: null, index: null, ...o };
}
const ok = (o: Op & { complete: number; result: LockOutcome; index: number }): LockHistoryOp => op({ status: 'ok', ...o });
const acquire = (owner: string, invoke: number, complete: number, token: number, index = token, ttlMs = 1000, waited = false) =>
  ok({ owner, op: 'acquire', invoke, complete, ttlMs, waitMs: waited ? 5000 : 0, result: { r: 'granted', token, waited }, index });

test('a correct history: hold, renew, release, then a waiter granted; no violation, one holder at a time', () => {
  const h = [
    acquire('a.1', 0, 10, 5),
    // b queued before a released; it learns of its grant (by a query) after the release.
    op({ owner: 'b.1', op: 'acquire', invoke: 100, ttlMs: 1000, waitMs: 5000 }),
    ok({ owner: 'a.1', op: 'renew', invoke: 300, complete: 310, token: 5, result: { r: 'renewed', token: 5 }, index: 9 }),
    ok({ owner: 'a.1', op: 'release', invoke: 500, complete: 510, token: 5, result: { r: 'released' }, index: 12 }),
    ok({ owner: 'b.1', op: 'query', invoke: 520, complete: 525, result: { r: 'state', holder: { client: 'b.1', token: 12 } }, index: 12 }),
    // An acquire whose outcome is unknown believes nothing.
    op({ owner: 'c.1', op: 'acquire', invoke: 200, ttlMs: 1000, waitMs: 0 }),
    ok({ owner: 'd.1', op: 'acquire', invoke: 250, complete: 260, ttlMs: 1000, waitMs: 0, result: { r: 'held', holder: { client: 'a.1', token: 5 } }, index: 8 }),
  ];
  h[1] = { ...h[1]!, status: 'ok', complete: 525, result: { r: 'granted', token: 12, waited: true }, index: 7 };
  const r = checkLockHistory(h);
  assert.is(r.exclusive, true, formatLockViolations(r));
  assert.is(r.maxConcurrentHolders, 1);
  assert.is(r.beliefs, 2);
  assert.is(r.grantsSeen, 2);
  // a believed [10, 500) (cut at its release), b [525, 1100).
  assert.is(r.believedMs, 490 + 575);
  assert.is(r.closestGapMs, 25, 'a released at 500, b learned of its grant at 525');
  assert.is(r.closestExpiryGapMs, null, 'no window ended by its ttl before another began');
  // b's window ended by its ttl (1100); c granted after its expiry, learned at 1180.
  const after = checkLockHistory([...h, acquire('c.2', 1150, 1180, 30)]);
  assert.is(after.closestExpiryGapMs, 80);
});

test('real time: two owners believing they hold one lock at once are caught; within the margin, or after a release or expiry, they are not', () => {
  const overlap = checkLockHistory([acquire('a.1', 0, 10, 5), acquire('b.1', 200, 210, 8)]);
  assert.is(overlap.exclusive, false);
  assert.is(overlap.violationsByKind['belief-overlap'], 1);
  assert.is(overlap.maxConcurrentHolders, 2);
  assert.match(formatLockViolations(overlap), /a\.1 \(token 5\) believed it held L over \[10\.0, 1000\.0\) ms and b\.1 \(token 8\)/);
  // a's window is [10, 1000): b learning at 1001 is after it; at 995, within the margin.
  assert.is(checkLockHistory([acquire('a.1', 0, 10, 5), acquire('b.1', 990, 1001, 8)]).exclusive, true);
  assert.is(checkLockHistory([acquire('a.1', 0, 10, 5), acquire('b.1', 990, 995, 8)], { marginMs: 9 }).exclusive, true);
  assert.is(checkLockHistory([acquire('a.1', 0, 10, 5), acquire('b.1', 900, 980, 8)], { marginMs: 9 }).exclusive, false);
  // Sending a release ends the belief, whatever its outcome.
  const released = [acquire('a.1', 0, 10, 5), op({ owner: 'a.1', op: 'release', invoke: 300, token: 5 }), acquire('b.1', 301, 305, 8)];
  assert.is(checkLockHistory(released).exclusive, true);
  // A renew extends the belief from its send time: b granted inside it is caught.
  const renewed = [
    acquire('a.1', 0, 10, 5),
    ok({ owner: 'a.1', op: 'renew', invoke: 900, complete: 905, token: 5, result: { r: 'renewed', token: 5 }, index: 7 }),
    acquire('b.1', 1500, 1510, 9),
  ];
  assert.is(checkLockHistory(renewed).violationsByKind['belief-overlap'], 1);
  // A renew that did not answer extends nothing.
  renewed[1] = op({ owner: 'a.1', op: 'renew', invoke: 900, token: 5 });
  assert.is(checkLockHistory(renewed).exclusive, true);
});

test('log order: grants proven to hold at one index, and a lock read free inside a grant, are caught', () => {
  // Queries of the state: a holds from 5 (read at 6 and again at 10), b was read holding at 9.
  const q = (invoke: number, index: number, holder: { client: string; token: number } | null) => ok({ owner: 'x', op: 'query', invoke, complete: invoke + 1, result: { r: 'state', holder }, index });
  const r = checkLockHistory([q(0, 6, { client: 'a.1', token: 5 }), q(10, 9, { client: 'b.1', token: 8 }), q(20, 10, { client: 'a.1', token: 5 })]);
  assert.is(r.exclusive, false);
  assert.is(r.violationsByKind['log-overlap'], 1);
  assert.match(r.violations[0]!.message, /a\.1 \(token 5\) is proven to hold L through state 10, but b\.1 was granted it at 8/);
  // A release that succeeded proves its grant held at every state up to one known committed before it was sent.
  const free = checkLockHistory([
    acquire('a.1', 0, 10, 5),
    q(20, 7, null),
    ok({ owner: 'a.1', op: 'release', invoke: 30, complete: 40, token: 5, result: { r: 'released' }, index: 11 }),
  ]);
  assert.is(free.violationsByKind['held-while-free'], 1, formatLockViolations(free));
  // The same release sent before the free read completed proves nothing about index 7: it may have applied at 7.
  const early = checkLockHistory([
    acquire('a.1', 0, 10, 5),
    q(20, 7, null),
    ok({ owner: 'a.1', op: 'release', invoke: 15, complete: 40, token: 5, result: { r: 'released' }, index: 7 }),
  ]);
  assert.is(early.exclusive, true, formatLockViolations(early));
});

test('tokens: a later belief with a smaller token, a grant outside its own request, and a renew answering another token are flagged', () => {
  const order = checkLockHistory([acquire('a.1', 0, 10, 20, 20, 100), acquire('b.1', 200, 210, 15, 21, 100)]);
  assert.ok(order.violationsByKind['token-order'] === 1, formatLockViolations(order));
  assert.ok(order.violationsByKind.unbacked === 1, 'token 15 was committed before b asked (a answered at 20)');
  const renew = checkLockHistory([acquire('a.1', 0, 10, 5), ok({ owner: 'a.1', op: 'renew', invoke: 20, complete: 30, token: 5, result: { r: 'renewed', token: 6 }, index: 9 })]);
  assert.is(renew.violationsByKind.unbacked, 1);
  const invalid = checkLockHistory([ok({ owner: 'a.1', op: 'acquire', invoke: 0, complete: 1, ttlMs: 1000, waitMs: 0, result: { r: 'invalid', message: 'bad' }, index: 3 })]);
  assert.is(invalid.violationsByKind.invalid, 1);
});

test('the margin covers clock entries rounding up: 0.5 ms per entry a ttl can span, plus 2 ms', () => {
  assert.is(lockMarginMs(1200), 9);
  assert.is(lockMarginMs(100), 4);
  assert.is(checkLockHistory([acquire('a.1', 0, 10, 5, 5, 1199)]).marginMs, 9);
});

test('the recorder settles each operation once and its JSON lines read back', () => {
  let now = 0;
  const rec = new LockHistoryRecorder(() => (now += 5));
  const a = rec.invoke(0, 'c0.1', 'acquire', 'l0', { ttlMs: 500, waitMs: 0 });
  const r = rec.invoke(0, 'c0.1', 'renew', 'l0', { token: 3 });
  a.ok({ r: 'granted', token: 3, waited: false }, 3);
  assert.throws(() => a.fail(), /completed twice/);
  const ops = rec.ops();
  assert.is(ops[1]!.status, 'unknown', 'in flight counts as unknown');
  r.unknown();
  const back = parseLockHistory(formatLockHistory(rec.ops()));
  assert.equal(back, rec.ops());
  assert.is(back[0]!.complete, 15);
  assert.throws(() => parseLockHistory('{"op":"acquire","owner":"x","lock":"l","invoke":1,"complete":null,"status":"ok","result":null,"index":null}\n'), /line 1/);
});

test.run();
