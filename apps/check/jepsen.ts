// Reads Jepsen cas-register histories (jepsen.log lines or history.txt: `PROCESS :TYPE :F VALUE`)
// into concur's history records, so the one checker in apps/chaos/checker.ts judges them.
// Never guesses: a line it cannot read, or an op that breaks Jepsen's process rules, is an error.
import { HistoryError, type HistoryOp } from '../chaos/history.ts';

/** The key a single-register history is checked under (independent histories carry their own). */
export const jepsenRegisterKey = 'register';

/** An EDN value as far as cas-register histories use them: nil, scalars (kept as text), vectors. */
type Edn = null | string | Edn[];

const opTypes = ['invoke', 'ok', 'fail', 'info'] as const;
type OpType = (typeof opTypes)[number];
const registerFns = ['read', 'write', 'cas'] as const;
type RegisterFn = (typeof registerFns)[number];

// `0 :invoke :read nil`, anywhere in the line so a log prefix (level, logger, thread, time) may
// come before it. The process is a number, or :nemesis (whose ops are faults, not client ops).
const opLine = /(?:^|\s)(\d+|:nemesis)\s+:(invoke|ok|fail|info)\s+:([\w.?!*+-]+)(?:\s+(.*?))?\s*$/;
// Log lines of other loggers (test set-up, nemesis, db) carry a level word; they are skipped.
const logLine = /\b(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\b/;

/** Whether `line` reads as a Jepsen op line (used to auto-detect the format). */
export function looksLikeJepsenOp(line: string): boolean {
  return opLine.test(line);
}

class EdnReader {
  private at = 0;
  constructor(private readonly text: string) {}

  /** The whole text as one value; throws a message (not yet located in a file) when it is not. */
  readAll(): Edn {
    const v = this.value();
    this.skipSpace();
    if (this.at < this.text.length) throw new Error(`unexpected ${JSON.stringify(this.text.slice(this.at, this.at + 10))} after the value`);
    return v;
  }

  private skipSpace(): void {
    while (this.at < this.text.length && /[\s,]/.test(this.text[this.at]!)) this.at++;
  }

  private value(): Edn {
    this.skipSpace();
    const c = this.text[this.at];
    if (c === undefined) throw new Error('a value is missing');
    if (c === '[') {
      this.at++;
      const items: Edn[] = [];
      for (;;) {
        this.skipSpace();
        if (this.text[this.at] === ']') {
          this.at++;
          return items;
        }
        if (this.at >= this.text.length) throw new Error('a vector "[" is not closed');
        items.push(this.value());
      }
    }
    if (c === '"') {
      const m = /^"((?:[^"\\]|\\.)*)"/.exec(this.text.slice(this.at));
      if (!m) throw new Error('a string is not closed');
      this.at += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    const m = /^[^\s,[\]"{}()]+/.exec(this.text.slice(this.at));
    if (!m) throw new Error(`unexpected ${JSON.stringify(c)} (maps, lists and sets are not cas-register values)`);
    this.at += m[0].length;
    return m[0] === 'nil' ? null : m[0];
  }
}

export function parseEdnValue(text: string): Edn {
  return new EdnReader(text).readAll();
}

function showEdn(v: Edn): string {
  return v === null ? 'nil' : Array.isArray(v) ? `[${v.map(showEdn).join(' ')}]` : v;
}

interface Invocation {
  line: number;
  fn: RegisterFn;
  value: Edn;
  /** The independent key, or null for the single register. */
  key: string | null;
  /** The op's argument with the key taken off. */
  arg: Edn;
  index: number;
}

/** `[k v]` of an independent history: the key (as text) and v. */
function splitIndependent(v: Edn): { key: string; rest: Edn } | null {
  if (!Array.isArray(v) || v.length !== 2 || Array.isArray(v[0]) || v[0] === null) return null;
  return { key: v[0], rest: v[1]! };
}

/**
 * Parses a Jepsen cas-register history. Each op's invoke and complete times are the 1-based line
 * numbers of its invocation and completion (the logs carry no usable clock; line order is the
 * real-time order Jepsen observed). Mapping, with Jepsen's meaning of each type:
 * - `:ok` → status ok (a read's value is the result; nil reads the initial, absent value);
 * - `:fail` → status fail: the op certainly did not take effect (the checker drops it);
 * - `:info` → status unknown: it may take effect at any time after its invocation;
 * - an op still open at the end of the history → unknown, as if it had ended with `:info`.
 * `[key value]` tuples (jepsen.independent) make a multi-key history, one key per tuple key.
 */
export function parseJepsenHistory(text: string, source = 'history'): HistoryOp[] {
  const lines = text.split('\n');
  const open = new Map<string, Invocation>();
  const ops: Array<HistoryOp | null> = [];
  let independent: boolean | null = null;
  let independentFirstLine = 0;
  const fail = (line: number, why: string): never => {
    throw new HistoryError(`${source} line ${line}: ${why}`);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = opLine.exec(line);
    if (!m) {
      if (/:(invoke|ok|fail|info)\b/.test(line)) fail(lineNo, `cannot read this op line; expected PROCESS :TYPE :F VALUE, e.g. "0 :invoke :read nil" or "3 :ok :cas [1 2]"`);
      if (logLine.test(line)) continue;
      fail(lineNo, `not a Jepsen op line; expected PROCESS :TYPE :F VALUE, e.g. "0 :invoke :write 3" (log lines of other loggers are skipped only when they carry a level such as INFO)`);
    }
    const [, processText, typeText, fnText, valueText] = m!;
    if (processText === ':nemesis') continue;
    const type = typeText as OpType;
    if (!(registerFns as readonly string[]).includes(fnText!)) fail(lineNo, `:${fnText} is not a cas-register op; expected :read, :write or :cas`);
    const fn = fnText as RegisterFn;
    let value: Edn;
    try {
      value = parseEdnValue(valueText ?? '');
    } catch (e) {
      return fail(lineNo, `cannot read the value ${JSON.stringify(valueText ?? '')}: ${(e as Error).message}`);
    }
    const process = processText!;

    if (type === 'invoke') {
      const already = open.get(process);
      if (already) fail(lineNo, `process ${process} invokes :${fn} while its :${already.fn} from line ${already.line} has not completed (a Jepsen process runs one op at a time)`);
      // A single-register read invokes with nil, a write with a scalar, a cas with [old new];
      // independent ops wrap each in [key ...].
      const tuple = splitIndependent(value);
      const isIndependent = fn === 'read' ? tuple !== null : fn === 'write' ? Array.isArray(value) : Array.isArray(value) && value.length === 2 && Array.isArray(value[1]);
      if (independent === null) {
        independent = isIndependent;
        independentFirstLine = lineNo;
      } else if (independent !== isIndependent) {
        fail(lineNo, `this ${isIndependent ? 'independent [key value]' : 'single-register'} op follows ${independent ? 'independent [key value]' : 'single-register'} ops (line ${independentFirstLine}); a history is one or the other`);
      }
      let key: string | null = null;
      let arg: Edn = value;
      if (isIndependent) {
        if (!tuple) fail(lineNo, `an independent op's value must be [key value], got ${showEdn(value)}`);
        key = tuple!.key;
        arg = tuple!.rest;
      }
      if (fn === 'read' && arg !== null) fail(lineNo, `a read is invoked with nil, got ${showEdn(arg)}`);
      if (fn === 'write' && (arg === null || Array.isArray(arg))) fail(lineNo, `a write is invoked with the value to write, got ${showEdn(arg)}`);
      if (fn === 'cas' && !(Array.isArray(arg) && arg.length === 2 && !Array.isArray(arg[0]) && !Array.isArray(arg[1]) && arg[1] !== null)) {
        fail(lineNo, `a cas is invoked with [expected new], got ${showEdn(arg)}`);
      }
      open.set(process, { line: lineNo, fn, value, key, arg, index: ops.length });
      ops.push(null);
      continue;
    }

    const inv = open.get(process);
    if (!inv) fail(lineNo, `process ${process} completes :${fn} (:${type}) but has no open invocation`);
    if (inv!.fn !== fn) fail(lineNo, `process ${process} completes :${fn} but invoked :${inv!.fn} on line ${inv!.line}`);
    open.delete(process);
    const rec = invocationRecord(inv!, process);
    if (type === 'info') {
      ops[inv!.index] = rec;
      continue;
    }
    if (type === 'fail') {
      ops[inv!.index] = { ...rec, status: 'fail', complete: lineNo };
      continue;
    }
    // :ok — a write and a cas echo their invocation's value; a read carries what it read.
    let result: string | boolean | null = null;
    if (fn === 'read') {
      let read = value;
      if (inv!.key !== null) {
        const t = splitIndependent(value);
        if (!t || t.key !== inv!.key) fail(lineNo, `an independent read completes with [key value] for key ${inv!.key} (line ${inv!.line}), got ${showEdn(value)}`);
        read = t!.rest;
      }
      if (Array.isArray(read)) fail(lineNo, `a read returns nil or a value, got ${showEdn(read)}`);
      result = read as string | null;
    } else {
      if (showEdn(value) !== showEdn(inv!.value)) fail(lineNo, `:ok :${fn} ${showEdn(value)} does not match its invocation :${fn} ${showEdn(inv!.value)} on line ${inv!.line}`);
      if (fn === 'cas') result = true;
    }
    ops[inv!.index] = { ...rec, status: 'ok', complete: lineNo, result };
  }
  // Still open at the end: the client never learnt the outcome, exactly like :info.
  for (const [process, inv] of open) ops[inv.index] = invocationRecord(inv, process);
  return ops as HistoryOp[];
}

/** The op as invoked, outcome unknown: what :info (or no completion at all) leaves. */
function invocationRecord(inv: Invocation, process: string): HistoryOp {
  const key = inv.key ?? jepsenRegisterKey;
  const client = Number(process);
  const base = { client, key, invoke: inv.line, complete: null, status: 'unknown' as const, result: null };
  if (inv.fn === 'read') return { ...base, op: 'get', value: null };
  if (inv.fn === 'write') return { ...base, op: 'put', value: inv.arg as string };
  const [expect, next] = inv.arg as [string | null, string];
  return { ...base, op: 'cas', value: next, expect };
}
