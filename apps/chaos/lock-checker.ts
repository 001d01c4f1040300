// The mutual-exclusion checker of `concur chaos --workload lock`. It judges a lock history
// (lock-history.ts) in two independent ways and never needs the log itself:
//
// (a) Log order. Every answer is a fact about the state the log reached at some index. A token is
//     the log index of its grant, so a grant (owner, T) holds from state T until its release or
//     expiry, and never again (a new grant gets a new index): the states at which a grant held
//     are one contiguous range. An answer naming holder (owner, T) — a grant, a renew or release
//     that succeeded, a "held"/"not-holder" naming the holder, a state query — proves the grant
//     held at the state the answer was computed on. Which state that is: a query reads exactly the
//     state after its `index`; a submitted command took effect at an index j after every index
//     known committed before it was sent (F: the largest index of an answer completed before its
//     invoke; the log is linearizable), so the state it saw (j − 1) is at least F. Then each grant
//     is proven to hold over [T, highest state proven]; two grants of one lock whose ranges meet
//     held the lock together at one index, and a query reading the lock free inside a range
//     contradicts it. Tokens must also lie in the answering command's own span of the log
//     (F < T ≤ index for a fresh grant): a token not of this request's grant is an unbacked one.
//
// (b) Real time, as clients believed it. A client may use a lock from the moment it learned of
//     its grant (the acquire's answer, or the query that showed a queued acquire granted) until
//     the acquire's SEND time + ttl; a renew that succeeded extends it to the renew's send time +
//     ttl; sending a release ends it. Unknown outcomes make no belief. The service guarantees this
//     window: the ttl starts at the first clock entry after the grant (or renew), which was
//     proposed after the request was sent, and the log's time never runs faster than real time;
//     and any later grant of the lock is applied (so learned) after the holder's release or
//     expiry entry. So no two owners' windows of one lock may overlap, and a window after another
//     must hold a larger token (fencing). All times are on one process clock, so the comparison is
//     exact but for `marginMs`: a clock entry rounds its milliseconds to an integer (up to 0.5 ms
//     early per entry, one entry per ≥ 100 ms of a ttl).
//
// The verdict `exclusive` is true only when both hold.
import type { HolderSeen, LockHistoryOp } from './lock-history.ts';

export type LockViolationKind = 'log-overlap' | 'held-while-free' | 'unbacked' | 'invalid' | 'belief-overlap' | 'token-order';

export interface LockViolation {
  kind: LockViolationKind;
  lock: string;
  message: string;
  /** Positions in the history (0-based; the history file's line is one more). */
  ops: number[];
}

export interface LockCheckResult {
  exclusive: boolean;
  violations: LockViolation[];
  violationsTotal: number;
  violationsByKind: Partial<Record<LockViolationKind, number>>;
  /** Distinct grants (lock, owner, token) the answers name. */
  grantsSeen: number;
  /** Log-order facts (answers placed at a state) checked by (a). */
  facts: number;
  /** Owners that believed they held a lock for a non-empty window, and the sum of those windows. */
  beliefs: number;
  believedMs: number;
  /** The most owners that believed they held one lock at the same moment (1 when exclusive). */
  maxConcurrentHolders: number;
  /**
   * The closest call: the least time from one owner's believed window ending to another owner's
   * starting on the same lock (negative within the margin is tolerated); and the same for windows
   * that ended by their ttl (the holder did not release: the gap is the expiry's slack). null: none.
   */
  closestGapMs: number | null;
  closestExpiryGapMs: number | null;
  marginMs: number;
}

export interface LockCheckOptions {
  /** Slack for the real-time comparison (see the header); default from the largest ttl. */
  marginMs?: number;
  violationsMax?: number;
}

/** The margin for a history whose longest ttl is `ttlMsMax`: 0.5 ms per possible clock entry, plus 2 ms. */
export function lockMarginMs(ttlMsMax: number): number {
  return Math.ceil(2 + 0.5 * (Math.floor(ttlMsMax / 100) + 2));
}

interface Grant {
  lock: string;
  owner: string;
  token: number;
  /** Highest state index at which the grant is proven to hold. */
  hi: number;
  hiOp: number;
  firstOp: number;
}

interface Segment {
  owner: string;
  token: number;
  start: number;
  end: number;
  op: number;
  /** The window ended because its owner sent a release (else by its ttl). */
  byRelease: boolean;
}

export function checkLockHistory(history: readonly LockHistoryOp[], options: LockCheckOptions = {}): LockCheckResult {
  const ttlMax = history.reduce((m, o) => Math.max(m, o.ttlMs ?? 0), 0);
  const marginMs = options.marginMs ?? lockMarginMs(ttlMax);
  const violationsMax = options.violationsMax ?? 20;
  const violations: LockViolation[] = [];
  const byKind: Partial<Record<LockViolationKind, number>> = {};
  let total = 0;
  const flag = (kind: LockViolationKind, lock: string, message: string, ops: number[]): void => {
    total++;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    if (violations.length < violationsMax) violations.push({ kind, lock, message, ops });
  };
  const describe = (i: number): string => {
    const o = history[i]!;
    return `#${i} ${o.op} ${o.lock} by ${o.owner}${o.token !== null ? ` token ${o.token}` : ''} [${o.invoke.toFixed(1)}, ${o.complete === null ? '?' : o.complete.toFixed(1)}] ms → ${o.status}${o.result ? ` ${JSON.stringify(o.result)}` : ''}${o.index !== null ? ` @${o.index}` : ''}`;
  };

  // F(op): the largest index known committed before op was invoked.
  const done = history.map((o, i) => ({ o, i })).filter(({ o }) => o.status === 'ok' && o.index !== null && o.complete !== null);
  done.sort((a, b) => a.o.complete! - b.o.complete!);
  const completes = done.map(({ o }) => o.complete!);
  const prefixMax: number[] = [];
  for (const { o } of done) prefixMax.push(Math.max(prefixMax.at(-1) ?? 0, o.index!));
  const floorOf = (invoke: number): number => {
    let lo = 0;
    let hi = completes.length; // first complete >= invoke
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (completes[mid]! < invoke) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : prefixMax[lo - 1]!;
  };

  // ---- (a) log order ------------------------------------------------------------------------
  const grants = new Map<string, Grant>();
  const frees: { lock: string; at: number; op: number }[] = [];
  let facts = 0;
  const hold = (lock: string, h: HolderSeen, state: number, op: number): void => {
    facts++;
    const key = `${lock}\u0000${h.client}\u0000${h.token}`;
    const g = grants.get(key);
    const at = Math.max(state, h.token);
    if (g === undefined) grants.set(key, { lock, owner: h.client, token: h.token, hi: at, hiOp: op, firstOp: op });
    else if (at > g.hi) {
      g.hi = at;
      g.hiOp = op;
    }
  };
  history.forEach((o, i) => {
    if (o.status !== 'ok' || o.result === null || o.index === null) return;
    const r = o.result;
    const floor = floorOf(o.invoke);
    switch (r.r) {
      case 'invalid':
        flag('invalid', o.lock, `the service refused a command as invalid (${r.message}): ${describe(i)}`, [i]);
        return;
      case 'granted':
        // A fresh owner's grant is this request's own doing: after everything committed before it
        // was sent; a direct grant at (or before) the answering entry, a waited one after its queued entry.
        if (r.token <= floor || (!r.waited && r.token > o.index)) {
          flag('unbacked', o.lock, `token ${r.token} cannot be the grant of this acquire (log ${floor} was committed before it was sent${r.waited ? '' : `; it answered at ${o.index}`}): ${describe(i)}`, [i]);
        }
        hold(o.lock, { client: o.owner, token: r.token }, r.token, i);
        return;
      case 'renewed':
        if (r.token !== o.token) flag('unbacked', o.lock, `a renew of token ${o.token} answered token ${r.token}: ${describe(i)}`, [i]);
        hold(o.lock, { client: o.owner, token: o.token! }, floor, i);
        return;
      case 'released':
        hold(o.lock, { client: o.owner, token: o.token! }, floor, i);
        return;
      case 'held':
      case 'not-holder':
        if (r.holder !== null) {
          if (r.holder.token > o.index) flag('unbacked', o.lock, `holder token ${r.holder.token} is past the answering index ${o.index}: ${describe(i)}`, [i]);
          hold(o.lock, r.holder, floor, i);
        }
        return;
      case 'state':
        if (r.holder === null) {
          facts++;
          frees.push({ lock: o.lock, at: o.index, op: i });
        } else {
          if (r.holder.token > o.index) flag('unbacked', o.lock, `holder token ${r.holder.token} is past the state read (after ${o.index}): ${describe(i)}`, [i]);
          hold(o.lock, r.holder, o.index, i);
        }
        return;
      case 'gave-up':
        // Its facts are the queries it polled with, recorded on their own.
        return;
    }
  });
  const byLock = new Map<string, Grant[]>();
  for (const g of grants.values()) {
    const list = byLock.get(g.lock) ?? [];
    list.push(g);
    byLock.set(g.lock, list);
  }
  for (const [lock, list] of byLock) {
    list.sort((a, b) => a.token - b.token);
    let top: Grant | null = null; // the grant with the highest proven state so far
    const tops: Grant[] = [];
    for (const g of list) {
      if (top !== null && g.token <= top.hi) {
        flag(
          'log-overlap',
          lock,
          `${top.owner} (token ${top.token}) is proven to hold ${lock} through state ${top.hi}, but ${g.owner} was granted it at ${g.token}: both held it at index ${g.token}.\n    ${describe(top.firstOp)}\n    ${describe(top.hiOp)}\n    ${describe(g.firstOp)}`,
          [top.firstOp, top.hiOp, g.firstOp],
        );
      }
      if (top === null || g.hi > top.hi) top = g;
      tops.push(top);
    }
    for (const f of frees.filter((x) => x.lock === lock)) {
      // The grant with the highest proven state among those granted at or before f.at.
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]!.token <= f.at) lo = mid + 1;
        else hi = mid;
      }
      const t = lo === 0 ? null : tops[lo - 1]!;
      if (t !== null && t.hi >= f.at) {
        flag('held-while-free', lock, `a query read ${lock} free after index ${f.at}, but ${t.owner} (token ${t.token}) is proven to hold it from ${t.token} through ${t.hi}.\n    ${describe(f.op)}\n    ${describe(t.hiOp)}`, [f.op, t.hiOp]);
      }
    }
  }

  // ---- (b) real time, as believed ---------------------------------------------------------
  interface OwnerLife {
    lock: string;
    ttlMs: number;
    token: number | null;
    pieces: { start: number; end: number; op: number }[];
    releasedAt: number;
  }
  const owners = new Map<string, OwnerLife>();
  history.forEach((o, i) => {
    let life = owners.get(o.owner);
    if (life === undefined) {
      life = { lock: o.lock, ttlMs: 0, token: null, pieces: [], releasedAt: Infinity };
      owners.set(o.owner, life);
    }
    if (o.op === 'acquire') life.ttlMs = o.ttlMs ?? 0;
    if (o.op === 'release') life.releasedAt = Math.min(life.releasedAt, o.invoke);
    if (o.status !== 'ok' || o.result === null || o.complete === null) return;
    if (o.op === 'acquire' && o.result.r === 'granted') {
      life.token = o.result.token;
      life.pieces.push({ start: o.complete, end: o.invoke + life.ttlMs, op: i });
    } else if (o.op === 'renew' && o.result.r === 'renewed') {
      life.token ??= o.token;
      life.pieces.push({ start: o.complete, end: o.invoke + life.ttlMs, op: i });
    }
  });
  const segmentsByLock = new Map<string, Segment[]>();
  let beliefs = 0;
  let believedMs = 0;
  for (const [owner, life] of owners) {
    const pieces = life.pieces.map((p) => ({ ...p, end: Math.min(p.end, life.releasedAt), byRelease: life.releasedAt <= p.end })).filter((p) => p.end > p.start);
    if (pieces.length === 0 || life.token === null) continue;
    beliefs++;
    pieces.sort((a, b) => a.start - b.start);
    const merged: Segment[] = [];
    for (const p of pieces) {
      const last = merged.at(-1);
      if (last !== undefined && p.start <= last.end) {
        if (p.end > last.end) [last.end, last.byRelease] = [p.end, p.byRelease];
      } else merged.push({ owner, token: life.token, start: p.start, end: p.end, op: p.op, byRelease: p.byRelease });
    }
    for (const s of merged) believedMs += s.end - s.start;
    const list = segmentsByLock.get(life.lock) ?? [];
    list.push(...merged);
    segmentsByLock.set(life.lock, list);
  }
  let maxConcurrent = 0;
  let closestGap: number | null = null;
  let closestExpiryGap: number | null = null;
  for (const [lock, segs] of segmentsByLock) {
    segs.sort((a, b) => a.start - b.start);
    let longest: Segment | null = null;
    for (const s of segs) {
      if (longest !== null && longest.owner !== s.owner) {
        const gap = s.start - longest.end;
        if (closestGap === null || gap < closestGap) closestGap = gap;
        if (!longest.byRelease && (closestExpiryGap === null || gap < closestExpiryGap)) closestExpiryGap = gap;
      }
      if (longest !== null && longest.owner !== s.owner && Math.min(longest.end, s.end) - s.start > marginMs) {
        const overlap = Math.min(longest.end, s.end) - s.start;
        flag(
          'belief-overlap',
          lock,
          `${longest.owner} (token ${longest.token}) believed it held ${lock} over [${longest.start.toFixed(1)}, ${longest.end.toFixed(1)}) ms and ${s.owner} (token ${s.token}) over [${s.start.toFixed(1)}, ${s.end.toFixed(1)}): ${overlap.toFixed(1)} ms together.\n    ${describe(longest.op)}\n    ${describe(s.op)}`,
          [longest.op, s.op],
        );
      }
      if (longest === null || s.end > longest.end) longest = s;
    }
    // Fencing: a window that starts after another ended (by the margin) holds a larger token.
    const byEnd = [...segs].sort((a, b) => a.end - b.end);
    const maxTok: Segment[] = [];
    for (const s of byEnd) maxTok.push(maxTok.length > 0 && maxTok.at(-1)!.token >= s.token ? maxTok.at(-1)! : s);
    for (const s of segs) {
      let lo = 0;
      let hi = byEnd.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (byEnd[mid]!.end + marginMs <= s.start) lo = mid + 1;
        else hi = mid;
      }
      const before = lo === 0 ? null : maxTok[lo - 1]!;
      if (before !== null && before.token > s.token) {
        flag('token-order', lock, `${s.owner} believed it held ${lock} with token ${s.token} from ${s.start.toFixed(1)} ms, after ${before.owner} held it with the larger token ${before.token} until ${before.end.toFixed(1)} ms.\n    ${describe(before.op)}\n    ${describe(s.op)}`, [before.op, s.op]);
      }
    }
    // The most owners believing at one moment (each window shortened by the margin).
    const events: [number, number][] = [];
    for (const s of segs) if (s.end - marginMs > s.start) events.push([s.start, 1], [s.end - marginMs, -1]);
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    for (const [, d] of events) maxConcurrent = Math.max(maxConcurrent, (now += d));
  }

  return {
    exclusive: total === 0,
    violations,
    violationsTotal: total,
    violationsByKind: byKind,
    grantsSeen: grants.size,
    facts,
    beliefs,
    believedMs: Math.round(believedMs),
    maxConcurrentHolders: maxConcurrent,
    closestGapMs: closestGap === null ? null : Math.round(closestGap * 10) / 10,
    closestExpiryGapMs: closestExpiryGap === null ? null : Math.round(closestExpiryGap * 10) / 10,
    marginMs,
  };
}

/** A failure for people: the first violations. */
export function formatLockViolations(r: LockCheckResult, max = 5): string {
  if (r.violationsTotal === 0) return '';
  const lines = [`${r.violationsTotal} violation${r.violationsTotal === 1 ? '' : 's'} of mutual exclusion (${Object.entries(r.violationsByKind).map(([k, n]) => `${k} ${n}`).join(', ')}); the first:`];
  for (const v of r.violations.slice(0, max)) lines.push(`  [${v.kind}] ${v.message}`);
  return lines.join('\n');
}
