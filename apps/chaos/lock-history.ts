// Histories of `concur chaos --workload lock`: one record per lock operation a chaos client made
// (acquire, renew, release, and the state queries a waiting acquire polls with), with its invoke
// and complete times on one monotonic clock and its outcome. Never interprets them (that is
// lock-checker.ts). Written as JSON lines by `--history FILE`, one record per line.
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export type LockOpKind = 'acquire' | 'renew' | 'release' | 'query';
/** ok: answered (result set); fail: certainly not applied; unknown: may or may not have been. */
export type LockOpStatus = 'ok' | 'fail' | 'unknown';

/** A holder as a result named it: the owner (the `client` of its acquire) and its fencing token. */
export interface HolderSeen {
  client: string;
  token: number;
}

/** What an operation answered, as far as the checker needs it. */
export type LockOutcome =
  /** acquire: the owner holds the lock with `token`; `waited`: it was queued and saw its grant by a query. */
  | { r: 'granted'; token: number; waited: boolean }
  /** acquire with waitMs 0: another holds it. */
  | { r: 'held'; holder: HolderSeen | null }
  /** acquire that waited: not seen granted by the client's deadline, or dropped from the waiters (it may still be granted later; nobody believes it). */
  | { r: 'gave-up'; holder: HolderSeen | null }
  | { r: 'renewed'; token: number }
  | { r: 'released' }
  | { r: 'not-holder'; holder: HolderSeen | null }
  /** query: the lock's holder in the state read. */
  | { r: 'state'; holder: HolderSeen | null }
  /** The service refused the command as malformed (a client bug: the checker flags it). */
  | { r: 'invalid'; message: string };

export interface LockHistoryOp {
  /** The chaos client (one loop, one request in flight apart from a waiting acquire's polls). */
  client: number | string;
  /** The lock-level client id sent in the command; fresh for every acquire, so a grant is never a retry's. */
  owner: string;
  op: LockOpKind;
  lock: string;
  /** acquire only (else null). */
  ttlMs: number | null;
  waitMs: number | null;
  /** renew and release: the token sent (else null). */
  token: number | null;
  /** ms on the recording process's monotonic clock (performance.now()). */
  invoke: number;
  /** null exactly when unknown. For an acquire that waited: when the grant (or giving up) was seen. */
  complete: number | null;
  status: LockOpStatus;
  result: LockOutcome | null;
  /**
   * ok only (else null). A submit: the log index of the entry that answered (a copy of a command
   * the cluster resent may answer with the first copy's result, so the command took effect at
   * this index or before). A query: the applied index the state read is exactly the state after.
   * An acquire that waited: its own (queued) entry's index.
   */
  index: number | null;
}

export interface LockOpHandle {
  ok(result: LockOutcome, index: number): void;
  fail(): void;
  unknown(): void;
}

export class LockHistoryRecorder {
  private readonly records: LockHistoryOp[] = [];
  private readonly settled: boolean[] = [];

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  invoke(client: number | string, owner: string, op: LockOpKind, lock: string, args: { ttlMs?: number; waitMs?: number; token?: number } = {}): LockOpHandle {
    const record: LockHistoryOp = {
      client,
      owner,
      op,
      lock,
      ttlMs: args.ttlMs ?? null,
      waitMs: args.waitMs ?? null,
      token: args.token ?? null,
      invoke: this.nowMs(),
      complete: null,
      status: 'unknown',
      result: null,
      index: null,
    };
    const at = this.records.length;
    this.records.push(record);
    this.settled.push(false);
    const settle = (status: LockOpStatus, result: LockOutcome | null, index: number | null): void => {
      if (this.settled[at]) throw new Error(`lock operation #${at} (${op} ${lock} by ${owner}) completed twice`);
      this.settled[at] = true;
      this.records[at] = { ...record, status, result, index, complete: status === 'unknown' ? null : this.nowMs() };
    };
    return {
      ok: (result, index) => settle('ok', result, index),
      fail: () => settle('fail', null, null),
      unknown: () => settle('unknown', null, null),
    };
  }

  /** Every operation so far in invocation order; one still in flight counts as unknown. */
  ops(): LockHistoryOp[] {
    return this.records.map((r) => ({ ...r }));
  }
}

const kinds: readonly string[] = ['acquire', 'renew', 'release', 'query'];

/** Why `o` is not a lock history record, or null. */
export function lockOpProblem(o: unknown): string | null {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return 'a record is a JSON object';
  const r = o as Record<string, unknown>;
  if (!kinds.includes(r.op as string)) return `"op" must be one of ${kinds.join(', ')}`;
  if (typeof r.owner !== 'string' || typeof r.lock !== 'string') return '"owner" and "lock" must be strings';
  if (typeof r.invoke !== 'number') return '"invoke" must be a number';
  if (r.status === 'unknown' ? r.complete !== null : typeof r.complete !== 'number' || r.complete < r.invoke) return '"complete" must be a number ≥ invoke, or null exactly when unknown';
  if (r.status === 'ok') {
    if (r.result === null || typeof r.result !== 'object' || typeof (r.result as { r?: unknown }).r !== 'string') return 'an ok record needs a "result" object';
    if (typeof r.index !== 'number') return 'an ok record needs an "index"';
  } else if (r.status !== 'fail' && r.status !== 'unknown') return '"status" must be ok, fail or unknown';
  return null;
}

export function formatLockHistory(ops: readonly LockHistoryOp[]): string {
  return ops.map((o) => `${JSON.stringify(o)}\n`).join('');
}

export function parseLockHistory(text: string, source = 'history'): LockHistoryOp[] {
  const out: LockHistoryOp[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new Error(`${source} line ${i + 1}: not JSON (${(err as Error).message})`);
    }
    const problem = lockOpProblem(v);
    if (problem !== null) throw new Error(`${source} line ${i + 1}: ${problem}`);
    out.push(v as LockHistoryOp);
  });
  return out;
}

export async function writeLockHistory(path: string, ops: readonly LockHistoryOp[]): Promise<void> {
  await writeFile(path, formatLockHistory(ops));
}

export async function readLockHistory(path: string): Promise<LockHistoryOp[]> {
  return parseLockHistory(await readFile(path, 'utf8'), path);
}
