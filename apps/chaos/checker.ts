// Linearizability checker for the KV register model (put, get, delete, cas): Wing & Gong search
// with memoisation of (linearized set, state) as in Porcupine and Knossos, one key at a time.
// Never answers `true` without a linearization in hand: an exhausted search budget is `unknown`.
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createPool } from '../../runtime/pool.ts';
import { type HistoryOp, HistoryError, validateOp } from './history.ts';

/** A history op plus its position in the whole history (0-based; the file line is id + 1). */
export type IndexedOp = HistoryOp & { id: number };

export interface KeySettings {
  /** Search steps (event visits) allowed per key before the verdict becomes `unknown`. */
  searchStepsMax: number;
  /** How many ops of the longest linearizable prefix a failure report keeps (its tail). */
  reportPrefixOpsMax: number;
  /** How many of the ops pending at the failure point a failure report keeps. */
  reportPendingOpsMax: number;
}

export const keySettingsDefault: KeySettings = {
  searchStepsMax: 5_000_000,
  reportPrefixOpsMax: 8,
  reportPendingOpsMax: 12,
};

/**
 * Why a key is not linearizable, Porcupine style: the longest linearizable prefix the search
 * found, and the op that then had to take effect (its completion came next) but could not,
 * whatever else pending was placed before it. That tail + op + pending is the smallest window.
 */
export interface LinearizationFailure {
  key: string;
  /** Length of the longest linearizable prefix found. */
  prefixOpsTotal: number;
  /** Its last `reportPrefixOpsMax` ops in linearization order, with the value after each. */
  prefix: Array<{ op: IndexedOp; stateAfter: string | null }>;
  /** Value of the key after the whole prefix (null: absent). */
  stateAfterPrefix: string | null;
  /** An ok op whose completion forces it into the linearization next; no order of `pending` allows it. */
  stuck: IndexedOp;
  /** Other ops invoked before `stuck` completed and not in the prefix (ok ops first, then unknown writes). */
  pending: IndexedOp[];
  pendingOpsTotal: number;
}

export interface KeyVerdict {
  key: string;
  linearizable: boolean | 'unknown';
  /** Ops the search had to place: ok ops plus unknown writes (failed ops and unknown reads are dropped). */
  opsChecked: number;
  opsDropped: number;
  steps: number;
  elapsedMs: number;
  /** Set when `linearizable` is 'unknown'. */
  reason?: string;
  failure?: LinearizationFailure;
}

export interface CheckResult {
  linearizable: boolean | 'unknown';
  keys: KeyVerdict[];
  /** The first non-linearizable key's failure, in key order. */
  failure?: LinearizationFailure;
  opsTotal: number;
  elapsedMs: number;
  /** Whether keys were checked on a worker pool or on the calling thread. */
  ranOn: 'pool' | 'inline';
}

export interface CheckOptions extends Partial<KeySettings> {
  /** Pool threads; default min(2, cores). */
  threads?: number;
  /** 'auto' uses the pool only when the history has more than `inlineOpsMax` ops and more than one key. */
  mode?: 'auto' | 'inline' | 'pool';
  inlineOpsMax?: number;
}

export const inlineOpsMaxDefault = 2_000;

/** What check-task.ts receives: one key's ops (any status) and the settings. */
export interface KeyTask {
  key: string;
  ops: IndexedOp[];
  settings: KeySettings;
}

// Model ops, as small ints so the search loop stays monomorphic.
const PUT = 0;
const GET = 1;
const DEL = 2;
const CAS = 3;
/** Model step result meaning "this op cannot take effect in this state". */
const IMPOSSIBLE = -1;
/** Interned id of "absent"; values get 1, 2, ... */
const ABSENT = 0;
const wordAllOnes = 0xffffffff;

interface CacheEntry {
  fullWords: number;
  tail: Uint32Array;
  state: number;
  unk: Uint32Array;
}

/**
 * Checks one key's ops. Ops on other keys must not be passed (the model is one register).
 * `fail` ops and unknown reads are dropped: neither constrains the state. Unknown writes are
 * kept with completion at +infinity and are optional: the search succeeds as soon as every ok
 * op is linearized, which leaves the unplaced unknown writes as "never took effect".
 */
export function checkKey(key: string, opsAll: readonly IndexedOp[], settingsIn: Partial<KeySettings> = {}): KeyVerdict {
  const settings = { ...keySettingsDefault, ...settingsIn };
  const startedMs = performance.now();
  // Ok ops are numbered first so "is ok" is `i < okCount` and each kind has its own bitset.
  const ops = [...opsAll.filter((o) => o.status === 'ok'), ...opsAll.filter((o) => o.status === 'unknown' && o.op !== 'get')];
  const n = ops.length;
  const verdict = (linearizable: boolean | 'unknown', steps: number): KeyVerdict => ({
    key,
    linearizable,
    opsChecked: n,
    opsDropped: opsAll.length - n,
    steps,
    elapsedMs: performance.now() - startedMs,
  });

  const valueIds = new Map<string, number>();
  const valueOf: Array<string | null> = [null];
  const intern = (v: string | null): number => {
    if (v === null) return ABSENT;
    let id = valueIds.get(v);
    if (id === undefined) {
      id = valueOf.length;
      valueIds.set(v, id);
      valueOf.push(v);
    }
    return id;
  };
  const kind = new Uint8Array(n);
  const arg = new Int32Array(n);
  const expect = new Int32Array(n);
  // For ok gets: the value id read. For ok cas: 1 = succeeded, 0 = failed. Unknown cas: -1.
  const outcome = new Int32Array(n);
  const isOk = new Uint8Array(n);
  const okCount = ops.filter((o) => o.status === 'ok').length;
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (o.key !== key) throw new HistoryError(`checkKey(${JSON.stringify(key)}) was given op #${o.id} on key ${JSON.stringify(o.key)}`);
    isOk[i] = o.status === 'ok' ? 1 : 0;
    if (o.op === 'put') {
      kind[i] = PUT;
      arg[i] = intern(o.value);
    } else if (o.op === 'delete') kind[i] = DEL;
    else if (o.op === 'get') {
      kind[i] = GET;
      outcome[i] = intern(o.result as string | null);
    } else {
      kind[i] = CAS;
      arg[i] = intern(o.value);
      expect[i] = intern(o.expect ?? null);
      outcome[i] = o.status === 'ok' ? (o.result ? 1 : 0) : -1;
    }
  }
  if (okCount === 0) return verdict(true, 0);

  const step = (state: number, i: number): number => {
    switch (kind[i]) {
      case PUT:
        return arg[i]!;
      case DEL:
        return ABSENT;
      case GET:
        return state === outcome[i] ? state : IMPOSSIBLE;
      default: {
        const r = outcome[i]!;
        // An unknown cas that takes effect where expect mismatches is a no-op, same as never.
        if (r === -1) return state === expect[i] ? arg[i]! : state;
        if (r === 1) return state === expect[i] ? arg[i]! : IMPOSSIBLE;
        return state !== expect[i] ? state : IMPOSSIBLE;
      }
    }
  };

  // Events: e < n is the call of op e; n + i the return of ok op i (i < okCount, since ok ops
  // are numbered first). Unknown ops have no return event: it would be at +infinity and the
  // search stops as soon as every ok op is placed. Head sentinel is 2n. Calls sort before
  // returns at equal times, so touching ops count as concurrent (the permissive choice: a
  // checker may only reject what is certainly wrong).
  const eventCount = n + okCount;
  const events = new Int32Array(eventCount);
  for (let e = 0; e < n; e++) events[e] = e;
  for (let i = 0; i < okCount; i++) events[n + i] = n + i;
  const timeOf = (e: number): number => (e < n ? ops[e]!.invoke : ops[e - n]!.complete!);
  events.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    const ra = a >= n ? 1 : 0;
    const rb = b >= n ? 1 : 0;
    return ra - rb || a - b;
  });
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  const position = new Int32Array(2 * n);
  let last = head;
  for (let k = 0; k < eventCount; k++) {
    const e = events[k]!;
    position[e] = k;
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  // Dancing links: a lifted event keeps its own next/prev, so unlift (in reverse) restores it.
  const unlink = (e: number): void => {
    next[prev[e]!] = next[e]!;
    if (next[e]! !== -1) prev[next[e]!] = prev[e]!;
  };
  const relink = (e: number): void => {
    next[prev[e]!] = e;
    if (next[e]! !== -1) prev[next[e]!] = e;
  };
  const lift = (i: number): void => {
    unlink(i);
    if (i < okCount) unlink(i + n);
  };
  const unlift = (i: number): void => {
    if (i < okCount) relink(i + n);
    relink(i);
  };

  // The memo key is (ok ops placed, unknown ops placed, state); Zobrist hashing keeps its
  // hash O(1) per step. (Tried: pruning supersets of unknown sets by dominance with unknown ops
  // tried last; it slowed linearizable histories with many unknowns by 100x, so it is not used.)
  const okWords = (okCount + 31) >>> 5;
  const unkWords = (n - okCount + 31) >>> 5;
  const okBits = new Uint32Array(okWords);
  const unkBits = new Uint32Array(unkWords);
  const zobrist = new Int32Array(n);
  let seed = 0x2545f491;
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    zobrist[i] = seed;
  }
  let setHash = 0;
  const cache = new Map<number, CacheEntry[]>();
  // Linearized ok sets are mostly a dense prefix plus a few later ops, so store the set as the
  // count of leading all-ones words and the rest up to the last non-zero word: tiny entries.
  /** Records the current configuration with `state`; false when it was seen before. */
  const addIfNew = (state: number): boolean => {
    let full = 0;
    while (full < okWords && okBits[full] === wordAllOnes) full++;
    let end = okWords;
    while (end > full && okBits[end - 1] === 0) end--;
    let unkEnd = unkWords;
    while (unkEnd > 0 && unkBits[unkEnd - 1] === 0) unkEnd--;
    const h = (setHash ^ Math.imul(state + 1, 0x9e3779b1)) & 0x3fffffff;
    let bucket = cache.get(h);
    if (bucket === undefined) {
      bucket = [];
      cache.set(h, bucket);
    } else {
      candidates: for (const c of bucket) {
        if (c.state !== state || c.fullWords !== full || c.tail.length !== end - full) continue;
        for (let w = 0; w < c.tail.length; w++) if (c.tail[w] !== okBits[full + w]) continue candidates;
        if (c.unk.length !== unkEnd) continue;
        for (let w = 0; w < unkEnd; w++) if (c.unk[w] !== unkBits[w]) continue candidates;
        return false;
      }
    }
    bucket.push({ fullWords: full, tail: okBits.slice(full, end), state, unk: unkBits.slice(0, unkEnd) });
    return true;
  };
  const flip = (i: number): void => {
    if (i < okCount) {
      okBits[i >>> 5]! ^= 1 << (i & 31);
      setHash ^= zobrist[i]!;
    } else {
      const u = i - okCount;
      unkBits[u >>> 5]! ^= 1 << (u & 31);
      setHash ^= zobrist[i]!;
    }
  };

  const callsOp = new Int32Array(n);
  const callsState = new Int32Array(n);
  let depth = 0;
  let state = ABSENT;
  let okLinearized = 0;
  // The deepest dead end seen: prefix ops, and the ok op whose return could not be passed.
  const bestPrefix = new Int32Array(n);
  let bestDepth = -1;
  let bestStuck = -1;
  let bestState = ABSENT;
  // Stack slots below lowWater are unchanged since the last snapshot, so copies stay amortised O(1).
  let lowWater = 0;

  // Candidates for the next op are the calls before the first pending return, tried in order.
  let steps = 0;
  let entry = next[head]!;
  for (;;) {
    if (++steps > settings.searchStepsMax) {
      const v = verdict('unknown', steps - 1);
      v.reason = `search budget exhausted: searchStepsMax = ${settings.searchStepsMax} steps on ${n} ops`;
      return v;
    }
    if (entry < n) {
      const after = step(state, entry);
      if (after !== IMPOSSIBLE) {
        flip(entry);
        if (addIfNew(after)) {
          callsOp[depth] = entry;
          callsState[depth] = state;
          depth++;
          state = after;
          lift(entry);
          if (entry < okCount && ++okLinearized === okCount) return verdict(true, steps);
          entry = next[head]!;
          continue;
        }
        flip(entry);
      }
      entry = next[entry]!;
      continue;
    }
    const returning = entry - n;
    if (depth > bestDepth) {
      bestPrefix.set(callsOp.subarray(lowWater, depth), lowWater);
      bestDepth = depth;
      bestStuck = returning;
      bestState = state;
      lowWater = depth;
    }
    if (depth === 0) break;
    depth--;
    if (depth < lowWater) lowWater = depth;
    const undone = callsOp[depth]!;
    state = callsState[depth]!;
    flip(undone);
    if (undone < okCount) okLinearized--;
    unlift(undone);
    entry = next[undone]!;
  }

  const v = verdict(false, steps);
  const inPrefix = new Uint8Array(n);
  const prefixAll: Array<{ op: IndexedOp; stateAfter: string | null }> = [];
  let s = ABSENT;
  for (let k = 0; k < bestDepth; k++) {
    const i = bestPrefix[k]!;
    inPrefix[i] = 1;
    s = step(s, i);
    prefixAll.push({ op: ops[i]!, stateAfter: valueOf[s]! });
  }
  if (s !== bestState) throw new Error(`checker invariant broken on key ${JSON.stringify(key)}: prefix replay disagrees with the search`);
  const stuckReturnAt = position[bestStuck + n]!;
  const pendingAll: number[] = [];
  for (let i = 0; i < n; i++) if (i !== bestStuck && !inPrefix[i] && position[i]! < stuckReturnAt) pendingAll.push(i);
  // Ok ops are what the reader must look at; among unknown writes the latest are the likeliest suspects.
  pendingAll.sort((a, b) => isOk[b]! - isOk[a]! || (isOk[a] ? ops[a]!.invoke - ops[b]!.invoke : ops[b]!.invoke - ops[a]!.invoke));
  const pending = pendingAll.slice(0, settings.reportPendingOpsMax).sort((a, b) => ops[a]!.invoke - ops[b]!.invoke);
  v.failure = {
    key,
    prefixOpsTotal: bestDepth,
    prefix: prefixAll.slice(Math.max(0, prefixAll.length - settings.reportPrefixOpsMax)),
    stateAfterPrefix: valueOf[bestState]!,
    stuck: ops[bestStuck]!,
    pending: pending.map((i) => ops[i]!),
    pendingOpsTotal: pendingAll.length,
  };
  return v;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`checkHistory: option ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Checks a whole history, each key on its own (P-compositionality: a history is linearizable
 * iff each key's sub-history is). Verdict: false if any key is not linearizable, else
 * 'unknown' if any key ran out of search budget, else true.
 */
export async function checkHistory(ops: readonly HistoryOp[], options: CheckOptions = {}): Promise<CheckResult> {
  const startedMs = performance.now();
  const settings: KeySettings = {
    searchStepsMax: positiveInt('searchStepsMax', options.searchStepsMax ?? keySettingsDefault.searchStepsMax),
    reportPrefixOpsMax: positiveInt('reportPrefixOpsMax', options.reportPrefixOpsMax ?? keySettingsDefault.reportPrefixOpsMax),
    reportPendingOpsMax: positiveInt('reportPendingOpsMax', options.reportPendingOpsMax ?? keySettingsDefault.reportPendingOpsMax),
  };
  const threads = positiveInt('threads', options.threads ?? Math.min(2, availableParallelism()));
  const inlineOpsMax = positiveInt('inlineOpsMax', options.inlineOpsMax ?? inlineOpsMaxDefault);
  const mode = options.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'inline' && mode !== 'pool') throw new RangeError(`checkHistory: option mode must be auto, inline or pool, got ${JSON.stringify(mode)}`);

  const byKey = new Map<string, IndexedOp[]>();
  ops.forEach((o, id) => {
    const problem = validateOp(o);
    if (problem) throw new HistoryError(`history op #${id}: ${problem}`);
    let list = byKey.get(o.key);
    if (list === undefined) byKey.set(o.key, (list = []));
    list.push({ ...o, id });
  });
  const tasks: KeyTask[] = [...byKey.entries()].map(([key, keyOps]) => ({ key, ops: keyOps, settings }));
  const usePool = mode === 'pool' || (mode === 'auto' && ops.length > inlineOpsMax && tasks.length > 1);

  let keys: KeyVerdict[];
  if (!usePool) keys = tasks.map((t) => checkKey(t.key, t.ops, t.settings));
  else {
    const pool = createPool(new URL('./check-task.ts', import.meta.url), threads);
    try {
      // Largest keys first so one big key does not start last and run alone.
      const order = [...tasks].sort((a, b) => b.ops.length - a.ops.length);
      const done = await Promise.all(order.map((t) => pool.run(t) as Promise<KeyVerdict>));
      keys = done;
    } finally {
      await pool.destroy();
    }
  }
  keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const failed = keys.find((k) => k.linearizable === false);
  const result: CheckResult = {
    linearizable: failed ? false : keys.some((k) => k.linearizable === 'unknown') ? 'unknown' : true,
    keys,
    opsTotal: ops.length,
    elapsedMs: performance.now() - startedMs,
    ranOn: usePool ? 'pool' : 'inline',
  };
  if (failed?.failure) result.failure = failed.failure;
  return result;
}

function fmtMs(t: number | null): string {
  return t === null ? '?' : t.toFixed(1);
}

/** How an op's `[invoke → complete]` reads: ms for concur's clock; other recorders use other units. */
export type SpanFormat = (invoke: number, complete: number | null) => string;

export const msSpan: SpanFormat = (invoke, complete) => `[${fmtMs(invoke)} → ${fmtMs(complete)} ms]`;

function fmtValue(v: string | null): string {
  return v === null ? 'absent' : JSON.stringify(v);
}

/** One op on one line: `#id  client C  call  [invoke → complete ms]  status → result`. */
export function formatOp(o: IndexedOp, span: SpanFormat = msSpan): string {
  const call =
    o.op === 'put' ? `put ${JSON.stringify(o.value)}`
    : o.op === 'cas' ? `cas ${fmtValue(o.expect ?? null)} → ${JSON.stringify(o.value)}`
    : o.op;
  const result =
    o.status !== 'ok' ? o.status
    : o.op === 'get' ? `ok, read ${fmtValue(o.result as string | null)}`
    : o.op === 'cas' ? `ok, ${o.result ? 'swapped' : 'did not swap'}`
    : 'ok';
  return `#${String(o.id).padEnd(6)} client ${String(o.client).padEnd(4)} ${call.padEnd(28)} ${span(o.invoke, o.complete)}  ${result}`;
}

/** The smallest window that cannot be linearized, for a person to read. */
export function formatFailure(f: LinearizationFailure, span: SpanFormat = msSpan): string {
  const lines: string[] = [];
  lines.push(`key ${JSON.stringify(f.key)} is not linearizable.`);
  if (f.prefixOpsTotal === 0) lines.push('No operation on it could be placed first.');
  else {
    const shown = f.prefix.length < f.prefixOpsTotal ? `; its last ${f.prefix.length}` : '';
    lines.push(`Longest linearizable prefix found: ${f.prefixOpsTotal} ops${shown}, in linearization order:`);
    for (const p of f.prefix) lines.push(`  ${formatOp(p.op, span)}   ⇒ ${fmtValue(p.stateAfter)}`);
  }
  lines.push(`Value after the prefix: ${fmtValue(f.stateAfterPrefix)}.`);
  lines.push(`This op completed next, so it must take effect next, but cannot be placed:`);
  lines.push(`  ${formatOp(f.stuck, span)}`);
  if (f.pendingOpsTotal === 0) lines.push('No other op was pending that could have come before it.');
  else {
    const shown = f.pending.length < f.pendingOpsTotal ? ` (${f.pending.length} of ${f.pendingOpsTotal} shown)` : '';
    lines.push(`Ops pending then${shown}; placing any of them next dead-ends too:`);
    for (const o of f.pending) lines.push(`  ${formatOp(o, span)}`);
  }
  return lines.join('\n');
}
