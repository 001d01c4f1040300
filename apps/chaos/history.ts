// Client-side histories for the linearizability checker: the operation record, the recorder
// clients call around each request, and the JSON-lines file format of `concur chaos --history`.
// Never interprets results (that is checker.ts) and never lets a malformed record through.
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export type OpKind = 'put' | 'get' | 'delete' | 'cas';
/** ok: completed with `result`; fail: definitely did not take effect; unknown: may or may not have. */
export type OpStatus = 'ok' | 'fail' | 'unknown';
export type ClientId = string | number;

/**
 * One operation, exactly as one line of the history file.
 * - `value`: put/cas → the value written; get/delete → null.
 * - `expect`: cas only (present, string or null meaning "absent"); absent on the other ops.
 * - `invoke`/`complete`: ms on one monotonic clock (performance.now() of the recording
 *   process; the names are fixed by the file format); `complete` is null exactly when unknown.
 * - `result`: get/ok → value read or null; cas/ok → true|false; otherwise null.
 */
export interface HistoryOp {
  client: ClientId;
  op: OpKind;
  key: string;
  value: string | null;
  expect?: string | null;
  invoke: number;
  complete: number | null;
  status: OpStatus;
  result: string | boolean | null;
}

export type OpArgs<K extends OpKind> = K extends 'put'
  ? { value: string }
  : K extends 'cas'
    ? { value: string; expect: string | null }
    : Record<string, never> | undefined;
export type OpResult<K extends OpKind> = K extends 'get' ? string | null : K extends 'cas' ? boolean : null | undefined;

/** What a client holds while its request is in flight; exactly one of ok/fail/unknown, once. */
export interface OpHandle<K extends OpKind> {
  ok(result: OpResult<K>): void;
  fail(): void;
  unknown(): void;
}

export class HistoryError extends Error {
  override name = 'HistoryError';
}

const opKinds: readonly OpKind[] = ['put', 'get', 'delete', 'cas'];
const statuses: readonly OpStatus[] = ['ok', 'fail', 'unknown'];
const fieldsKnown = new Set(['client', 'op', 'key', 'value', 'expect', 'invoke', 'complete', 'status', 'result']);

/**
 * Records invocations and completions. Ops are kept in invocation order; one still in flight
 * when the history is taken counts as unknown (its client may have crashed mid-call), because
 * the request may still have reached the cluster.
 */
export class HistoryRecorder {
  private readonly records: HistoryOp[] = [];
  private readonly settled: boolean[] = [];
  private readonly nowMs: () => number;

  constructor(options: { nowMs?: () => number } = {}) {
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  invoke<K extends OpKind>(client: ClientId, op: K, key: string, args?: OpArgs<K>): OpHandle<K> {
    const a = (args ?? {}) as { value?: unknown; expect?: unknown };
    const record: HistoryOp = { client, op, key, value: null, invoke: this.nowMs(), complete: null, status: 'unknown', result: null };
    if (op === 'put' || op === 'cas') record.value = a.value as string;
    if (op === 'cas') record.expect = a.expect as string | null;
    // Validate at the edge so a client bug fails the call site, not the checker minutes later.
    const problem = validateOp(record);
    if (problem) throw new HistoryError(`invoke(${JSON.stringify(client)}, ${op}, ${JSON.stringify(key)}): ${problem}`);
    const index = this.records.length;
    this.records.push(record);
    this.settled.push(false);
    const settle = (status: OpStatus, result: string | boolean | null): void => {
      if (this.settled[index]) throw new HistoryError(`operation #${index} (${op} ${JSON.stringify(key)} by client ${JSON.stringify(client)}) completed twice`);
      const done: HistoryOp = { ...record, status, result, complete: status === 'unknown' ? null : this.nowMs() };
      const bad = validateOp(done);
      if (bad) throw new HistoryError(`operation #${index} (${op} ${JSON.stringify(key)}): ${bad}`);
      this.settled[index] = true;
      this.records[index] = done;
    };
    return {
      ok: (result) => settle('ok', result === undefined ? null : (result as string | boolean | null)),
      fail: () => settle('fail', null),
      unknown: () => settle('unknown', null),
    };
  }

  /** Ops recorded so far, in invocation order; in-flight ones appear as unknown. */
  ops(): HistoryOp[] {
    return this.records.map((r) => ({ ...r }));
  }

  get pendingCount(): number {
    return this.settled.filter((s) => !s).length;
  }
}

/** Why `op` is not a valid history record, or null when it is. */
export function validateOp(op: unknown): string | null {
  if (typeof op !== 'object' || op === null || Array.isArray(op)) return 'an operation must be a JSON object';
  const o = op as Record<string, unknown>;
  for (const f of Object.keys(o)) if (!fieldsKnown.has(f)) return `field "${f}" is not part of the format`;
  const c = o.client;
  if (!(typeof c === 'string' || (typeof c === 'number' && Number.isFinite(c)))) return `field "client" must be a string or a number, got ${show(c)}`;
  if (!opKinds.includes(o.op as OpKind)) return `field "op" must be one of ${opKinds.join(', ')}, got ${show(o.op)}`;
  const kind = o.op as OpKind;
  if (typeof o.key !== 'string') return `field "key" must be a string, got ${show(o.key)}`;
  if (kind === 'put' || kind === 'cas') {
    if (typeof o.value !== 'string') return `field "value" must be the string written by ${kind}, got ${show(o.value)}`;
  } else if (o.value !== null) return `field "value" must be null for ${kind}, got ${show(o.value)}`;
  if (kind === 'cas') {
    if (!('expect' in o) || !(typeof o.expect === 'string' || o.expect === null)) return `field "expect" must be a string or null (absent) for cas, got ${show(o.expect)}`;
  } else if ('expect' in o && o.expect !== undefined) return `field "expect" is only for cas, found on ${kind}`;
  if (typeof o.invoke !== 'number' || !Number.isFinite(o.invoke)) return `field "invoke" must be a finite number of ms, got ${show(o.invoke)}`;
  if (!statuses.includes(o.status as OpStatus)) return `field "status" must be one of ${statuses.join(', ')}, got ${show(o.status)}`;
  const status = o.status as OpStatus;
  if (status === 'unknown') {
    if (o.complete !== null) return `field "complete" must be null when status is unknown, got ${show(o.complete)}`;
  } else {
    if (typeof o.complete !== 'number' || !Number.isFinite(o.complete)) return `field "complete" must be a finite number of ms when status is ${status}, got ${show(o.complete)}`;
    if (o.complete < o.invoke) return `field "complete" (${o.complete}) is before "invoke" (${o.invoke})`;
  }
  const r = o.result;
  if (status !== 'ok' || kind === 'put' || kind === 'delete') {
    if (r !== null) return `field "result" must be null for ${kind} with status ${status}, got ${show(r)}`;
  } else if (kind === 'get') {
    if (!(typeof r === 'string' || r === null)) return `field "result" must be the value read (string) or null for get, got ${show(r)}`;
  } else if (typeof r !== 'boolean') return `field "result" must be true or false for cas, got ${show(r)}`;
  return null;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** The JSON-lines text of a history: one op per line, fields in the documented order. */
export function formatHistory(ops: readonly HistoryOp[]): string {
  let out = '';
  for (const o of ops) {
    const line: Record<string, unknown> = { client: o.client, op: o.op, key: o.key, value: o.value };
    if (o.op === 'cas') line.expect = o.expect ?? null;
    line.invoke = o.invoke;
    line.complete = o.complete;
    line.status = o.status;
    line.result = o.result;
    out += `${JSON.stringify(line)}\n`;
  }
  return out;
}

/** Parses JSON-lines text; blank lines are skipped; errors name the 1-based line and the field. */
export function parseHistory(text: string, source = 'history'): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      throw new HistoryError(`${source} line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const problem = validateOp(parsed);
    if (problem) throw new HistoryError(`${source} line ${i + 1}: ${problem}`);
    ops.push(parsed as HistoryOp);
  }
  return ops;
}

export async function writeHistory(path: string, ops: readonly HistoryOp[]): Promise<void> {
  await writeFile(path, formatHistory(ops));
}

export async function readHistory(path: string): Promise<HistoryOp[]> {
  return parseHistory(await readFile(path, 'utf8'), path);
}
