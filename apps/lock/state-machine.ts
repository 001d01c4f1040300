// The lock service's deterministic state machine: ACQUIRE, RENEW and RELEASE in log order; one
// holder per lock with a fencing token (the log index of its grant, so tokens strictly increase
// per lock); waiters in FIFO order with a deadline; expiry decided on the log's time (clock
// entries the leaders propose), never on any node's clock, so every replica expires the same
// holders at the same index. It must never read a clock or randomness.
//
// A grant's (or renewal's) TTL starts counting at the first clock entry after it, not at the
// log time it was applied at: the clock entry before it may have been proposed before the client
// even asked, and counting from there could expire the lock before the client's own deadline
// (its request time + ttl). Never early, at most one clock interval late.
import { createHash } from 'node:crypto';
import type { AppContext, AppStateMachine } from '../platform/app.ts';
import { cborDecode, cborEncode } from '../platform/envelope.ts';
import type { SnapshotImage, SnapshotRestore } from '../state-machine.ts';
import { decodeLockCommand, encodeLockResult, lockLimits, type Holder, type LockResult, type LockState } from './commands.ts';

interface Grant {
  client: string;
  token: number;
  ttlMs: number;
  /** Log time at which the grant lapses unless renewed; null until the next clock entry starts its TTL. */
  expiresAt: number | null;
}

interface Waiter {
  client: string;
  ttlMs: number;
  /** Log time after which the waiter gives up. */
  deadline: number;
}

interface Lock {
  holder: Grant | null;
  waiters: Waiter[];
}

/**
 * Deliberate bugs, for the chaos checker's test only (apps/chaos/lock-unsafe-app.ts): never set
 * otherwise. `grantWhileHeld` grants an acquire at once even while another client holds the lock
 * (the holder is replaced without its release or expiry): mutual exclusion is broken.
 */
export interface LockMutations {
  grantWhileHeld?: boolean;
}

/** Queries: a lock's name after this prefix, or the list of held locks. */
export const lockQueryPrefix = 'lock:';
export const lockListQuery = 'list';

export class LockStateMachine implements AppStateMachine {
  private locks = new Map<string, Lock>();
  private timeMs = 0;
  /** Counters for status (part of the state: every replica counts the same). */
  grants = 0;
  expiries = 0;

  constructor(private readonly unsafe: LockMutations = {}) {}

  apply(command: Uint8Array, ctx: AppContext): Uint8Array {
    this.timeMs = ctx.timeMs;
    let c;
    try {
      c = decodeLockCommand(command);
    } catch (err) {
      return encodeLockResult({ r: 'invalid', message: (err as Error).message });
    }
    return encodeLockResult(this.run(c, ctx));
  }

  private run(c: ReturnType<typeof decodeLockCommand>, ctx: AppContext): LockResult {
    const now = ctx.timeMs;
    let l = this.locks.get(c.lock);
    if (c.op === 'acquire') {
      if (l === undefined) {
        if (this.locks.size >= lockLimits.locksMax) return { r: 'full', message: `${lockLimits.locksMax} locks are in use already; release some, or retry later` };
        l = { holder: null, waiters: [] };
        this.locks.set(c.lock, l);
      }
      const h = l.holder;
      if (h === null) {
        const g = this.grant(l, c.client, c.ttlMs, ctx.index, now);
        return { r: 'granted', token: g.token, expiresInMs: c.ttlMs };
      }
      // The holder asking again (a retry, or a client that lost track): it keeps its token, and
      // the request counts as a renewal, so the TTL runs from (after) this request as it expects.
      if (h.client === c.client) {
        h.ttlMs = c.ttlMs;
        h.expiresAt = null;
        return { r: 'granted', token: h.token, expiresInMs: c.ttlMs, again: true };
      }
      if (this.unsafe.grantWhileHeld === true) {
        const g = this.grant(l, c.client, c.ttlMs, ctx.index, now);
        return { r: 'granted', token: g.token, expiresInMs: c.ttlMs };
      }
      if (c.waitMs === 0) return { r: 'held', holder: this.holderOf(h) };
      let at = l.waiters.findIndex((w) => w.client === c.client);
      if (at < 0) {
        if (l.waiters.length >= lockLimits.waitersMax) return { r: 'full', message: `lock ${c.lock} has ${lockLimits.waitersMax} clients waiting already; retry later` };
        l.waiters.push({ client: c.client, ttlMs: c.ttlMs, deadline: now + c.waitMs });
        at = l.waiters.length - 1;
      } else {
        // A retry keeps its place in the queue and may wait longer.
        const w = l.waiters[at]!;
        w.ttlMs = c.ttlMs;
        w.deadline = Math.max(w.deadline, now + c.waitMs);
      }
      return { r: 'queued', position: at + 1, holder: this.holderOf(h) };
    }
    if (c.op === 'cancel') {
      // A waiter that gave up leaves the queue, so the lock never goes to a client that left.
      const before = l?.waiters.length ?? 0;
      if (l !== undefined) l.waiters = l.waiters.filter((w) => w.client !== c.client);
      if (l !== undefined && l.holder === null && l.waiters.length === 0) this.locks.delete(c.lock);
      return { r: 'cancelled', waited: before !== (l?.waiters.length ?? 0) };
    }
    const h = l?.holder ?? null;
    if (h === null || h.client !== c.client || h.token !== c.token) return { r: 'not-holder', holder: h === null ? null : this.holderOf(h) };
    if (c.op === 'renew') {
      h.expiresAt = null;
      return { r: 'renewed', token: h.token, expiresInMs: h.ttlMs };
    }
    l!.holder = null;
    this.handOn(c.lock, l!, ctx.index, now);
    return { r: 'released' };
  }

  onTime(ctx: AppContext): void {
    const now = ctx.timeMs;
    this.timeMs = now;
    for (const [name, l] of this.locks) {
      const h = l.holder;
      if (h !== null && h.expiresAt === null) h.expiresAt = now + h.ttlMs;
      else if (h !== null && h.expiresAt! <= now) {
        l.holder = null;
        this.expiries++;
      }
      if (l.waiters.length > 0) l.waiters = l.waiters.filter((w) => w.deadline > now);
      if (l.holder === null) this.handOn(name, l, ctx.index, now);
    }
  }

  wantsTime(): boolean {
    // Clock entries matter only while something can expire.
    for (const l of this.locks.values()) if (l.holder !== null || l.waiters.length > 0) return true;
    return false;
  }

  /** The lock is free: the first waiter still waiting gets it (token: this index), or it is forgotten. */
  private handOn(name: string, l: Lock, index: number, now: number): void {
    const next = l.waiters.shift();
    if (next !== undefined) this.grant(l, next.client, next.ttlMs, index, now);
    else this.locks.delete(name);
  }

  private grant(l: Lock, client: string, ttlMs: number, index: number, now: number): Grant {
    const g: Grant = { client, token: index, ttlMs, expiresAt: null };
    l.holder = g;
    this.grants++;
    return g;
  }

  private holderOf(g: Grant): Holder {
    return { client: g.client, token: g.token, expiresInMs: g.expiresAt === null ? g.ttlMs : Math.max(0, g.expiresAt - this.timeMs) };
  }

  state(name: string): LockState {
    const l = this.locks.get(name);
    return {
      lock: name,
      holder: l?.holder ? this.holderOf(l.holder) : null,
      waiters: (l?.waiters ?? []).map((w) => ({ client: w.client, waitsMs: Math.max(0, w.deadline - this.timeMs) })),
      logTimeMs: this.timeMs,
    };
  }

  query(q: string): Uint8Array | undefined {
    if (q.startsWith(lockQueryPrefix)) return cborEncode(this.state(q.slice(lockQueryPrefix.length)));
    if (q === lockListQuery) {
      const held: LockState[] = [];
      for (const name of this.locks.keys()) held.push(this.state(name));
      return cborEncode({ locks: held, logTimeMs: this.timeMs, grants: this.grants, expiries: this.expiries });
    }
    return undefined;
  }

  private image(): Uint8Array {
    return cborEncode([1, this.timeMs, this.grants, this.expiries, [...this.locks].map(([n, l]) => [n, l.holder, l.waiters])]);
  }

  snapshot(): SnapshotImage {
    // Small state (one record per lock in use): captured and serialized at once.
    let bytes: Uint8Array | null = this.image();
    return {
      index: 0,
      next: () => {
        const b = bytes;
        bytes = null;
        return b;
      },
    };
  }

  restore(): SnapshotRestore {
    const parts: Uint8Array[] = [];
    return {
      write: (b) => void parts.push(b.slice()),
      finish: () => {
        if (parts.length === 0) {
          this.locks = new Map();
          this.timeMs = this.grants = this.expiries = 0;
          return;
        }
        const all = Buffer.concat(parts);
        const t = cborDecode(all) as [number, number, number, number, [string, Grant | null, Waiter[]][]];
        if (!Array.isArray(t) || t[0] !== 1) throw new Error('not a lock service image (version 1)');
        this.timeMs = t[1];
        this.grants = t[2];
        this.expiries = t[3];
        this.locks = new Map(t[4].map(([n, holder, waiters]) => [n, { holder, waiters }]));
      },
    };
  }

  digest(): string {
    return createHash('sha256').update(this.image()).digest('hex');
  }
}
