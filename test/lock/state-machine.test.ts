// The lock service's state machine and the app router under it: grants in log order with
// fencing tokens that strictly increase, FIFO waiters, renew/release only by the holder's token,
// expiry on the log's time (a TTL starts at the first clock entry after the grant: never early),
// waiter deadlines; the router's envelopes, exactly-once retries and snapshots (including an
// image from before apps shared the log); and determinism: replicas that apply the same log,
// one of them restored from a snapshot midway, end with equal digests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeLockResult, encodeLockCommand, lockLimits, type LockCommand, type LockResult, type LockState } from '../../apps/lock/commands.ts';
import { LockStateMachine } from '../../apps/lock/state-machine.ts';
import { AppRouter } from '../../apps/platform/router.ts';
import { builtinAppsNamed } from '../../apps/platform/registry.ts';
import { cborDecode, encodeAppCommand, encodeClock, routerErrorOf } from '../../apps/platform/envelope.ts';
import { decodeResult, encodeCommand } from '../../apps/kv/commands.ts';
import { KvApp } from '../../apps/kv/app.ts';
import type { StateMachine } from '../../apps/state-machine.ts';

class Log {
  index = 0;
  constructor(readonly sm: StateMachine) {}
  raw(bytes: Uint8Array): Uint8Array {
    return this.sm.apply(++this.index, bytes, 0, bytes.length);
  }
  lock(c: LockCommand, client = '', seq = 0): LockResult {
    const r = this.raw(encodeAppCommand('lock', client, seq, encodeLockCommand(c)));
    const e = routerErrorOf(r);
    if (e !== null) throw new Error(`${e.error}: ${e.message}`);
    return decodeLockResult(r);
  }
  clock(ms: number): void {
    this.raw(encodeClock(ms));
  }
  state(name: string): LockState {
    return cborDecode((this.sm as AppRouter).query('lock', `lock:${name}`)!) as LockState;
  }
}

const router = () => new AppRouter(builtinAppsNamed(['kv', 'lock']));
const acq = (client: string, ttlMs = 1000, waitMs = 0, lock = 'L'): LockCommand => ({ op: 'acquire', lock, client, ttlMs, waitMs });

test('grants in log order: a free lock is granted (token = its index), a held one answers held or queues FIFO; release hands on with a higher token', () => {
  const log = new Log(router());
  const a = log.lock(acq('a'));
  assert.equal(a, { r: 'granted', token: 1, expiresInMs: 1000 });
  assert.equal(log.lock(acq('a')), { r: 'granted', token: 1, expiresInMs: 1000, again: true }, 'the holder asking again keeps its token');
  const held = log.lock(acq('b'));
  assert.is(held.r, 'held');
  assert.is((held as { holder: { client: string } }).holder.client, 'a');
  assert.is(log.lock(acq('b', 500, 5000)).r, 'queued');
  const c = log.lock(acq('c', 500, 5000));
  assert.equal((c as { position: number }).position, 2);
  assert.equal(log.state('L').waiters.map((w) => w.client), ['b', 'c']);
  assert.equal(log.lock({ op: 'release', lock: 'L', client: 'b', token: 1 }).r, 'not-holder', 'only the holder releases');
  assert.equal(log.lock({ op: 'release', lock: 'L', client: 'a', token: 99 }).r, 'not-holder', 'and only with its token');
  assert.equal(log.lock({ op: 'release', lock: 'L', client: 'a', token: 1 }), { r: 'released' });
  const s = log.state('L');
  assert.is(s.holder!.client, 'b');
  assert.ok(s.holder!.token > 1, 'the next grant has a higher token');
  const t = s.holder!.token;
  log.lock({ op: 'release', lock: 'L', client: 'b', token: t });
  assert.is(log.state('L').holder!.client, 'c');
  assert.ok(log.state('L').holder!.token > t);
});

test('expiry on the log\'s time: the TTL starts at the first clock entry after the grant; renewing keeps it; an expired holder loses it to the next waiter', () => {
  const log = new Log(router());
  log.clock(10_000); // time before the grant must not count against it
  log.lock(acq('a', 1000));
  log.lock(acq('b', 1000, 60_000));
  log.clock(5_000); // starts a's TTL (the gap before it may predate the request)
  assert.is(log.state('L').holder!.client, 'a');
  log.clock(900);
  assert.is(log.state('L').holder!.client, 'a', 'not expired before its TTL');
  const token = log.state('L').holder!.token;
  assert.equal(log.lock({ op: 'renew', lock: 'L', client: 'a', token }), { r: 'renewed', token, expiresInMs: 1000 });
  log.clock(500); // starts the renewed TTL
  log.clock(999);
  assert.is(log.state('L').holder!.client, 'a', 'renewed: still held');
  log.clock(1);
  const s = log.state('L');
  assert.is(s.holder!.client, 'b', 'expired and handed to the waiter');
  assert.ok(s.holder!.token > token);
  assert.is(log.lock({ op: 'renew', lock: 'L', client: 'a', token }).r, 'not-holder', 'the old holder cannot renew');
});

test('the holder asking again renews (its TTL restarts after the request); a waiter that cancels leaves the queue and never gets the lock', () => {
  const log = new Log(router());
  log.lock(acq('a', 1000));
  log.clock(10); // starts a's TTL
  log.clock(900);
  assert.equal(log.lock(acq('a', 1000)), { r: 'granted', token: 1, expiresInMs: 1000, again: true });
  log.clock(10); // restarts it
  log.clock(900);
  assert.is(log.state('L').holder!.client, 'a', 'still held: the re-acquire renewed it');
  log.lock(acq('b', 1000, 60_000));
  log.lock(acq('c', 1000, 60_000));
  assert.equal(log.lock({ op: 'cancel', lock: 'L', client: 'b' }), { r: 'cancelled', waited: true });
  assert.equal(log.lock({ op: 'cancel', lock: 'L', client: 'b' }), { r: 'cancelled', waited: false });
  log.lock({ op: 'release', lock: 'L', client: 'a', token: 1 });
  assert.is(log.state('L').holder!.client, 'c', 'the lock skips the client that left');
});

test('bounded: a lock refuses more waiters than waitersMax (nothing changes; the route answers 503)', () => {
  const log = new Log(router());
  log.lock(acq('holder', 60_000));
  for (let i = 0; i < lockLimits.waitersMax; i++) assert.is(log.lock(acq(`w${i}`, 1000, 60_000)).r, 'queued');
  const full = log.lock(acq('one-too-many', 1000, 60_000));
  assert.is(full.r, 'full');
  assert.match((full as { message: string }).message, /clients waiting already/);
  assert.is(log.state('L').waiters.length, lockLimits.waitersMax);
  assert.not.ok(log.state('L').waiters.some((w) => w.client === 'one-too-many'));
});

test('a waiter gives up at its deadline in log time; a lock with no holder and no waiters is forgotten', () => {
  const log = new Log(router());
  log.lock(acq('a', 10_000));
  log.lock(acq('b', 1000, 300));
  log.clock(100);
  log.clock(250);
  assert.equal(log.state('L').waiters, []);
  const t = log.state('L').holder!.token;
  log.lock({ op: 'release', lock: 'L', client: 'a', token: t });
  assert.equal(log.state('L').holder, null);
  assert.equal(cborDecode((log.sm as AppRouter).query('lock', 'list')!), { locks: [], logTimeMs: 350, grants: 1, expiries: 0 });
  assert.not.ok((log.sm as AppRouter).wantsTime(), 'nothing to expire: no clock needed');
});

test('bad commands get an error result, the same on every replica (never a throw)', () => {
  const log = new Log(router());
  const bad = decodeLockResult(log.raw(encodeAppCommand('lock', '', 0, new Uint8Array([0xff, 0x00]))));
  assert.is(bad.r, 'invalid');
  assert.throws(() => encodeLockCommand({ op: 'acquire', lock: '', client: 'a', ttlMs: 1, waitMs: 0 }), /lock name/);
  assert.throws(() => encodeLockCommand({ op: 'acquire', lock: 'x', client: 'a', ttlMs: 0, waitMs: 0 }), /ttlMs/);
  assert.is(routerErrorOf(log.raw(encodeAppCommand('nope', '', 0, new Uint8Array(1))))!.error, 'unknown-app');
  assert.is(routerErrorOf(log.raw(new Uint8Array([0x82, 0x40, 0x40])))!.error, 'malformed');
});

test('router: a retried app command (same client, same seq) is answered from the session table, not applied twice; an older seq is stale', () => {
  const log = new Log(router());
  const first = log.lock(acq('a'), 'http-1', 7);
  log.lock({ op: 'release', lock: 'L', client: 'a', token: (first as { token: number }).token }, 'http-1', 8);
  assert.equal(log.lock({ op: 'release', lock: 'L', client: 'a', token: 1 }, 'http-1', 8), { r: 'released' }, 'a retry of the release answers as the first did');
  assert.throws(() => log.lock(acq('a'), 'http-1', 7), /stale-request/);
});

test('router: KV commands go to the kv app unwrapped; a KV-only image from before apps shared the log restores', () => {
  const r = router();
  const log = new Log(r);
  const put = log.raw(encodeCommand({ op: 'put', key: 'k', value: new TextEncoder().encode('v'), clientId: 'c', seq: 1 }));
  assert.is(decodeResult(put).type, 'written');
  assert.is(new TextDecoder().decode(r.readLocal('k')!), 'v');
  // An image written by the KV store alone (before the router existed).
  const old = new KvApp();
  const cmd = encodeCommand({ op: 'put', key: 'old', value: new Uint8Array([1, 2]), clientId: 'c', seq: 1 });
  old.apply(1, cmd, 0, cmd.length);
  const fresh = router();
  const restore = fresh.restore();
  const image = old.snapshot();
  for (let p = image.next(); p !== null; p = image.next()) restore.write(p);
  restore.finish();
  assert.equal([...fresh.readLocal('old')!], [1, 2]);
});

const lockOps = fc.oneof(
  fc.record({ kind: fc.constant('acq' as const), client: fc.constantFrom('a', 'b', 'c'), lock: fc.constantFrom('L', 'M'), ttl: fc.integer({ min: 1, max: 400 }), wait: fc.integer({ min: 0, max: 400 }) }),
  fc.record({ kind: fc.constant('rel' as const), client: fc.constantFrom('a', 'b', 'c'), lock: fc.constantFrom('L', 'M'), renew: fc.boolean() }),
  fc.record({ kind: fc.constant('clock' as const), ms: fc.integer({ min: 0, max: 300 }) }),
  fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom('x', 'y'), v: fc.integer({ min: 0, max: 255 }) }),
);

test('property: the same log gives the same digest, snapshot midway or not; at most one holder per lock; tokens strictly increase per lock', () => {
  fc.assert(
    fc.property(fc.array(lockOps, { maxLength: 60 }), fc.nat(60), (ops, cut) => {
      const a = new Log(router());
      let b = new Log(router());
      const lastToken = new Map<string, number>();
      let seq = 0;
      ops.forEach((op, i) => {
        if (i === cut) {
          // b restarts from a snapshot of itself
          const img = b.sm.snapshot();
          const fresh = router();
          const r = fresh.restore();
          for (let p = img.next(); p !== null; p = img.next()) r.write(p);
          r.finish();
          const nb = new Log(fresh);
          nb.index = b.index;
          b = nb;
        }
        let bytes: Uint8Array;
        if (op.kind === 'clock') bytes = encodeClock(op.ms);
        else if (op.kind === 'put') bytes = encodeCommand({ op: 'put', key: op.key, value: new Uint8Array([op.v]), clientId: 'p', seq: ++seq });
        else if (op.kind === 'acq') bytes = encodeAppCommand('lock', '', 0, encodeLockCommand({ op: 'acquire', lock: op.lock, client: op.client, ttlMs: op.ttl, waitMs: op.wait }));
        else {
          const h = a.state(op.lock).holder;
          const token = h?.client === op.client ? h.token : 1;
          bytes = encodeAppCommand('lock', '', 0, encodeLockCommand({ op: op.renew ? 'renew' : 'release', lock: op.lock, client: op.client, token }));
        }
        a.raw(bytes);
        b.raw(bytes);
        for (const l of ['L', 'M']) {
          const h = a.state(l).holder;
          if (h !== null) {
            const prev = lastToken.get(l) ?? 0;
            if (h.token < prev) throw new Error(`token went back on ${l}: ${h.token} after ${prev}`);
            lastToken.set(l, h.token);
          }
        }
      });
      assert.is(b.sm.digest(), a.sm.digest());
    }),
    { numRuns: 300 },
  );
});

test('the lock state machine alone: snapshot and restore give the same digest', () => {
  const m = new LockStateMachine();
  m.apply(encodeLockCommand(acq('a')), { index: 1, timeMs: 0 });
  m.apply(encodeLockCommand(acq('b', 10, 10)), { index: 2, timeMs: 0 });
  const img = m.snapshot();
  const n = new LockStateMachine();
  const r = n.restore();
  for (let p = img.next(); p !== null; p = img.next()) r.write(p);
  r.finish();
  assert.is(n.digest(), m.digest());
  assert.equal(n.state('L'), m.state('L'));
});

test.run();
