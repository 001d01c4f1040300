// Test helpers for the checker: terse hand-made ops, and seeded histories of concurrent clients
// on a real register that are linearizable by construction. Never used by concur itself.
import type { HistoryOp, OpStatus } from '../../apps/chaos/history.ts';
import { createRng } from '../../runtime/rng.ts';

type Result = string | boolean | null;

/** A completed op: `[invoke, complete]` in ms; complete null makes it unknown. */
export function put(client: number, key: string, value: string, invoke: number, complete: number | null, status: OpStatus = complete === null ? 'unknown' : 'ok'): HistoryOp {
  return { client, op: 'put', key, value, invoke, complete, status, result: null };
}
export function get(client: number, key: string, read: string | null, invoke: number, complete: number | null, status: OpStatus = complete === null ? 'unknown' : 'ok'): HistoryOp {
  return { client, op: 'get', key, value: null, invoke, complete, status, result: status === 'ok' ? read : null };
}
export function del(client: number, key: string, invoke: number, complete: number | null, status: OpStatus = complete === null ? 'unknown' : 'ok'): HistoryOp {
  return { client, op: 'delete', key, value: null, invoke, complete, status, result: null };
}
export function cas(client: number, key: string, expect: string | null, value: string, swapped: boolean | null, invoke: number, complete: number | null, status: OpStatus = complete === null ? 'unknown' : 'ok'): HistoryOp {
  const result: Result = status === 'ok' ? swapped : null;
  return { client, op: 'cas', key, value, expect, invoke, complete, status, result };
}

export interface GenerateSettings {
  seed: number;
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Longest an op may take, ms. */
  opDurationMsMax: number;
  /** Longest pause between one client's ops, ms. */
  thinkMsMax: number;
  failRate: number;
  unknownRate: number;
  /** Distinct values per key, so reads often see values written by others. */
  valuesPerKey: number;
}

export const generateDefaults: GenerateSettings = {
  seed: 1,
  clients: 10,
  opsPerClient: 200,
  keys: 4,
  opDurationMsMax: 4,
  thinkMsMax: 1,
  failRate: 0.03,
  unknownRate: 0.03,
  valuesPerKey: 6,
};

/**
 * Each client issues ops back to back; each op takes effect (or not: fail, half the unknowns)
 * at a random instant inside [invoke, complete], applied to a Map in that order. Results are
 * what the Map answered, so the history is linearizable by construction. After an unknown op
 * the client goes on (as after a timeout); its op may still have applied before its deadline.
 */
export function generateHistory(partial: Partial<GenerateSettings> = {}): HistoryOp[] {
  const s = { ...generateDefaults, ...partial };
  const rng = createRng(s.seed);
  type Pending = { op: HistoryOp; atMs: number; applies: boolean };
  const pending: Pending[] = [];
  let written = 0;
  for (let c = 0; c < s.clients; c++) {
    let t = rng.next() * s.thinkMsMax;
    for (let k = 0; k < s.opsPerClient; k++) {
      const key = `k${rng.int(0, s.keys)}`;
      const invoke = t;
      const complete = invoke + 0.01 + rng.next() * s.opDurationMsMax;
      const atMs = invoke + rng.next() * (complete - invoke);
      const status: OpStatus = rng.chance(s.failRate) ? 'fail' : rng.chance(s.unknownRate) ? 'unknown' : 'ok';
      const applies = status === 'ok' || (status === 'unknown' && rng.chance(0.5));
      const value = `${key}-v${rng.int(0, s.valuesPerKey)}-${written++ % 3}`;
      const which = rng.int(0, 10);
      let op: HistoryOp;
      if (which < 4) op = get(c, key, null, invoke, complete, status);
      else if (which < 7) op = put(c, key, value, invoke, complete, status);
      else if (which < 8) op = del(c, key, invoke, complete, status);
      else op = cas(c, key, rng.chance(0.2) ? null : `${key}-v${rng.int(0, s.valuesPerKey)}-${rng.int(0, 3)}`, value, null, invoke, complete, status);
      if (status === 'unknown') op.complete = null;
      pending.push({ op, atMs, applies });
      t = complete + rng.next() * s.thinkMsMax;
    }
  }
  const data = new Map<string, string>();
  for (const p of [...pending].sort((a, b) => a.atMs - b.atMs)) {
    if (!p.applies) continue;
    const o = p.op;
    const cur = data.get(o.key) ?? null;
    if (o.op === 'put') data.set(o.key, o.value!);
    else if (o.op === 'delete') data.delete(o.key);
    else if (o.op === 'get') {
      if (o.status === 'ok') o.result = cur;
    } else {
      const swapped = cur === (o.expect ?? null);
      if (swapped) data.set(o.key, o.value!);
      if (o.status === 'ok') o.result = swapped;
    }
  }
  return pending.map((p) => p.op).sort((a, b) => a.invoke - b.invoke);
}
