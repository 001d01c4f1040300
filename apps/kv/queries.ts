// Read-only queries of the KV store that are not one key's value: a scan in key order, a page of
// keys with their values (list, for GET /kv), several values at one point of the log (mget), how many of some keys exist, and the key count. They travel as app queries (a read
// with `app: 'kv'`), so every read path serves them, ReadIndex included. Must never change state.
import { type KvLimits, kvCodec, kvEncode, kvLimitsDefault, KvDecodeError } from './commands.ts';
import type { KvStateMachine } from './state-machine.ts';

export type KvQuery =
  /** Keys after `after` (null: from the first) that start with `prefix`, at most `count`. */
  | { q: 'scan'; after: string | null; prefix: string; count: number }
  /** Like scan, with each key's value, all as of one log index; bounded in bytes like one value. */
  | { q: 'list'; after: string | null; prefix: string; count: number }
  /** The values of `keys` (null: absent), all as of one log index. */
  | { q: 'mget'; keys: string[] }
  /** How many of `keys` are present (a key named twice counts twice, as Redis's EXISTS). */
  | { q: 'exists'; keys: string[] }
  | { q: 'dbsize' };

/** The most keys one scan query lists. */
export const scanCountMax = 1_000;
/** A scan stops listing once its keys reach this many bytes, so its answer fits any frame a value fits. */
export const scanAnswerBytesMax = 256 * 1024;

export type ScanAnswer = { keys: string[]; last: string | null };
/** `more`: keys after the last item match too (ask again with `after` = the last key). */
export type ListAnswer = { items: { key: string; value: Uint8Array }[]; more: boolean };
/** An mget answers its values, or, when together they are over the limit, how many bytes they are. */
export type MgetAnswer = { values: (Uint8Array | null)[] } | { tooLargeBytes: number };

/** Why a query is not acceptable, or null. Keys are held to the same limits as commands'. */
export function queryProblem(query: KvQuery, limits: KvLimits = kvLimitsDefault): string | null {
  switch (query.q) {
    case 'scan':
    case 'list':
      if (!Number.isSafeInteger(query.count) || query.count < 1 || query.count > scanCountMax) return `a scan lists from 1 to ${scanCountMax} keys at a time, got ${query.count}`;
      if (Buffer.byteLength(query.prefix) > limits.keyBytesMax) return `the prefix is longer than a key may be (${limits.keyBytesMax} bytes)`;
      return null;
    case 'mget':
    case 'exists': {
      if (query.keys.length === 0) return `an ${query.q} must name at least one key`;
      let bytes = 0;
      for (const k of query.keys) bytes += Buffer.byteLength(k);
      const max = limits.keyBytesMax + limits.valueBytesMax;
      if (bytes > max) return `an ${query.q} names ${bytes} bytes of keys; the limit is ${max}`;
      return null;
    }
    case 'dbsize':
      return null;
  }
}

/** A query as the string an app query carries. */
export function encodeKvQuery(query: KvQuery): string {
  return JSON.stringify(query);
}

function parseQuery(text: string): KvQuery | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.q === 'dbsize') return { q: 'dbsize' };
  if ((o.q === 'mget' || o.q === 'exists') && Array.isArray(o.keys) && o.keys.every((k) => typeof k === 'string')) return { q: o.q, keys: o.keys as string[] };
  if ((o.q === 'scan' || o.q === 'list') && (o.after === null || typeof o.after === 'string') && typeof o.prefix === 'string' && typeof o.count === 'number') {
    return { q: o.q, after: o.after, prefix: o.prefix, count: o.count };
  }
  return null;
}

/** Answers a query against the state as applied here; undefined for a query it does not know. */
export function runKvQuery(kv: KvStateMachine, text: string): Uint8Array | undefined {
  const query = parseQuery(text);
  if (query === null || queryProblem(query, kv.settings) !== null) return undefined;
  switch (query.q) {
    case 'dbsize':
      return kvEncode(kv.keyCount);
    case 'exists': {
      let n = 0;
      for (const k of query.keys) if (kv.readLocal(k) !== undefined) n++;
      return kvEncode(n);
    }
    case 'scan': {
      const { keys, last } = kv.scan(query.after, query.prefix, query.count, scanAnswerBytesMax);
      return kvEncode([keys, last]);
    }
    case 'list': {
      // One key more than asked says whether more remain.
      const { keys } = kv.scan(query.after, query.prefix, query.count + 1, Number.POSITIVE_INFINITY);
      const flat: (string | Uint8Array)[] = [];
      let bytes = 0;
      let n = 0;
      for (const key of keys.slice(0, query.count)) {
        const value = kv.readLocal(key)!;
        const itemBytes = Buffer.byteLength(key, 'utf8') + value.byteLength;
        // Bounded like one value (as mget), so the answer fits wherever a GET's does; one item always goes.
        if (n > 0 && bytes + itemBytes > kv.settings.valueBytesMax) break;
        flat.push(key, value);
        bytes += itemBytes;
        n++;
      }
      return kvEncode([flat, n < keys.length]);
    }
    case 'mget': {
      const values = query.keys.map((k) => kv.readLocal(k) ?? null);
      let bytes = 0;
      for (const v of values) bytes += v?.byteLength ?? 0;
      // Bounded like one value, so the answer fits wherever a GET's does.
      if (bytes > kv.settings.valueBytesMax) return kvEncode([1, bytes]);
      return kvEncode([0, values]);
    }
  }
}

function decoded(bytes: Uint8Array | null, what: string): unknown {
  if (bytes === null) throw new KvDecodeError(`the ${what} query had no answer (does this cluster run the kv app?)`);
  try {
    return kvCodec.decode(bytes);
  } catch (err) {
    throw new KvDecodeError(`the ${what} answer is not valid CBOR: ${(err as Error).message}`);
  }
}

const plain = (b: Uint8Array): Uint8Array => (b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

export function decodeScanAnswer(bytes: Uint8Array | null): ScanAnswer {
  const t = decoded(bytes, 'scan');
  if (!Array.isArray(t) || t.length !== 2 || !Array.isArray(t[0]) || !(t[1] === null || typeof t[1] === 'string')) throw new KvDecodeError('a scan answer must be [keys, last]');
  return { keys: t[0] as string[], last: t[1] };
}

export function decodeListAnswer(bytes: Uint8Array | null): ListAnswer {
  const t = decoded(bytes, 'list');
  if (!Array.isArray(t) || t.length !== 2 || !Array.isArray(t[0]) || t[0].length % 2 !== 0 || typeof t[1] !== 'boolean') throw new KvDecodeError('a list answer must be [[key, value, ...], more]');
  const flat = t[0] as unknown[];
  const items: ListAnswer['items'] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const key = flat[i];
    const value = flat[i + 1];
    if (typeof key !== 'string' || !(value instanceof Uint8Array)) throw new KvDecodeError('a list answer item must be a key (text) and a value (bytes)');
    items.push({ key, value: plain(value) });
  }
  return { items, more: t[1] };
}

export function decodeMgetAnswer(bytes: Uint8Array | null): MgetAnswer {
  const t = decoded(bytes, 'mget');
  if (!Array.isArray(t) || t.length !== 2) throw new KvDecodeError('an mget answer must be [tag, body]');
  if (t[0] === 1 && typeof t[1] === 'number') return { tooLargeBytes: t[1] };
  if (t[0] !== 0 || !Array.isArray(t[1])) throw new KvDecodeError('an mget answer must be [0, values] or [1, bytes]');
  return { values: (t[1] as unknown[]).map((v) => (v instanceof Uint8Array ? plain(v) : null)) };
}

/** The answer of a dbsize or exists query: a count. */
export function decodeCountAnswer(bytes: Uint8Array | null): number {
  const n = decoded(bytes, 'count');
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new KvDecodeError('a dbsize or exists answer must be an integer');
  return n;
}
