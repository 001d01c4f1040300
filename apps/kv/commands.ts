// The KV store's wire format: commands (what a client proposes to the log) and results (what
// `apply` hands back), both CBOR tuples, plus the key/value/client-id limits checked at the edge.
// Must never depend on a protocol or the runtime: the log carries these bytes opaquely.
import { Encoder } from 'cbor-x';

/** Limits every node and every edge must agree on; they are part of the cluster's configuration. */
export interface KvLimits {
  /** A key is a non-empty string of at most this many UTF-8 bytes. */
  keyBytesMax: number;
  /** A value is at most this many bytes. */
  valueBytesMax: number;
  /** A client id is a non-empty string of at most this many UTF-8 bytes. */
  clientIdBytesMax: number;
}

export const kvLimitsDefault: Readonly<KvLimits> = Object.freeze({
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  clientIdBytesMax: 128,
});

/** Every write carries (clientId, seq) so a retried request is applied at most once. */
interface Session {
  clientId: string;
  /** Positive, strictly increasing per client; gaps are allowed. */
  seq: number;
}

/** A conditional put: `nx` only if the key is absent, `xx` only if present, null always. */
export type PutCondition = 'nx' | 'xx' | null;

export type KvCommand =
  | (Session & { op: 'put'; key: string; value: Uint8Array })
  | (Session & { op: 'get'; key: string })
  | (Session & { op: 'delete'; key: string })
  // `expect: null` means "only if the key is absent".
  | (Session & { op: 'cas'; key: string; expect: Uint8Array | null; value: Uint8Array })
  // Adds `delta` to the key's value read as a base-10 signed 64-bit integer (absent counts as 0).
  | (Session & { op: 'incr-by'; key: string; delta: bigint })
  // `returnPrevious`: the result carries the value before the command (Redis `SET ... GET`).
  | (Session & { op: 'put-if'; key: string; value: Uint8Array; condition: PutCondition; returnPrevious: boolean })
  // Several puts applied as one entry: all or none. Keys may repeat; the last value wins.
  | (Session & { op: 'mput'; entries: ReadonlyArray<readonly [string, Uint8Array]> })
  // Several deletes applied as one entry; the result counts the keys that existed.
  | (Session & { op: 'mdelete'; keys: readonly string[] });

export type KvErrorCode = 'stale-request' | 'invalid-command' | 'not-integer';

export type KvResult =
  /** put, or cas that matched; `index` is the log index at which the write took effect. */
  | { type: 'written'; index: number }
  | { type: 'deleted'; index: number; existed: boolean }
  | { type: 'value'; value: Uint8Array }
  | { type: 'not-found' }
  | { type: 'cas-failed'; current: Uint8Array | null }
  /** incr-by: the value after the command. */
  | { type: 'integer'; index: number; value: bigint }
  /** put-if that wrote with returnPrevious: what the key held before (null: absent). */
  | { type: 'swapped'; index: number; previous: Uint8Array | null }
  /** put-if whose condition did not hold; `previous` is the current value if asked for (else null). */
  | { type: 'condition-failed'; previous: Uint8Array | null }
  | { type: 'deleted-count'; index: number; count: number }
  | { type: 'error'; code: KvErrorCode; message: string };

// Numeric tags keep the log compact and the format independent of JS property order.
// Append new tags; never renumber (old logs and snapshots must still decode).
const OP_PUT = 1;
const OP_GET = 2;
const OP_DELETE = 3;
const OP_CAS = 4;
const OP_INCR_BY = 5;
const OP_PUT_IF = 6;
const OP_MPUT = 7;
const OP_MDELETE = 8;

const RESULT_WRITTEN = 0;
const RESULT_VALUE = 1;
const RESULT_NOT_FOUND = 2;
const RESULT_DELETED = 3;
const RESULT_CAS_FAILED = 4;
const RESULT_ERROR = 5;
const RESULT_INTEGER = 6;
const RESULT_SWAPPED = 7;
const RESULT_CONDITION_FAILED = 8;
const RESULT_DELETED_COUNT = 9;

const conditionTags: readonly PutCondition[] = [null, 'nx', 'xx'];

/** The range of a Redis integer: a signed 64-bit two's complement value. */
export const int64Min = -(2n ** 63n);
export const int64Max = 2n ** 63n - 1n;
// Redis's own rule (string2ll): no sign but '-', no leading zeros, no "-0", no spaces.
const int64Text = /^(?:0|-?[1-9][0-9]{0,18})$/;

/** The integer a value's bytes spell in base 10 within int64, or null if they spell none. */
export function parseInt64(bytes: Uint8Array): bigint | null {
  if (bytes.byteLength === 0 || bytes.byteLength > 20) return null;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!int64Text.test(text)) return null;
  const n = BigInt(text);
  return n < int64Min || n > int64Max ? null : n;
}

// Plain CBOR (no records, no typed-array tags) so any CBOR decoder can read a log. copyBuffers:
// decoded values must not alias the command bytes, which may live in a reused ring frame.
export const kvCodec = new Encoder({ useRecords: false, tagUint8Array: false, copyBuffers: true, mapsAsObjects: true });

/**
 * Encodes with kvCodec and returns a plain Uint8Array view (cbor-x returns a Buffer slice of
 * its working buffer), so every byte array this module hands out has the same type.
 */
export function kvEncode(value: unknown): Uint8Array {
  const buf = kvCodec.encode(value);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Thrown by the decoders on bytes that are not a well-formed command or result. */
export class KvDecodeError extends Error {}

const utf8 = new TextEncoder();
// With the u flag a valid surrogate pair is one code point, so \p{Cs} matches only lone halves.
const loneSurrogate = /\p{Cs}/u;

export function utf8ByteLength(s: string): number {
  // Buffer.byteLength is exact and avoids allocating; counts lone surrogates as 3 bytes like the encoder.
  return Buffer.byteLength(s, 'utf8');
}

/** Returns why `key` is not acceptable, or null if it is. */
export function keyProblem(key: unknown, limits: KvLimits = kvLimitsDefault): string | null {
  if (typeof key !== 'string') return 'the key must be a string';
  if (key.length === 0) return 'the key must not be empty';
  const bytes = utf8ByteLength(key);
  if (bytes > limits.keyBytesMax) return `the key is ${bytes} bytes of UTF-8; the limit is ${limits.keyBytesMax}`;
  // CBOR text is UTF-8: a lone surrogate would be replaced by U+FFFD and two keys would collide.
  if (loneSurrogate.test(key)) return 'the key contains an unpaired UTF-16 surrogate';
  return null;
}

/** Returns why `value` is not acceptable, or null if it is. */
export function valueProblem(value: unknown, limits: KvLimits = kvLimitsDefault): string | null {
  if (!(value instanceof Uint8Array)) return 'the value must be bytes';
  if (value.byteLength > limits.valueBytesMax) return `the value is ${value.byteLength} bytes; the limit is ${limits.valueBytesMax}`;
  return null;
}

/** Returns why a (clientId, seq) pair is not acceptable, or null if it is. */
export function sessionProblem(clientId: unknown, seq: unknown, limits: KvLimits = kvLimitsDefault): string | null {
  if (typeof clientId !== 'string' || clientId.length === 0) return 'the client id must be a non-empty string';
  if (utf8ByteLength(clientId) > limits.clientIdBytesMax) return `the client id is longer than ${limits.clientIdBytesMax} bytes`;
  if (loneSurrogate.test(clientId)) return 'the client id contains an unpaired UTF-16 surrogate';
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return `the sequence number must be a positive integer, got ${String(seq)}`;
  return null;
}

/**
 * The most key and value bytes one multi-key command (mput, mdelete) may carry: what a single
 * put may, so every command fits wherever one put does (a log entry, a ring frame).
 */
export function batchBytesMax(limits: KvLimits): number {
  return limits.keyBytesMax + limits.valueBytesMax;
}

function batchProblem(what: string, count: number, bytes: number, limits: KvLimits): string | null {
  if (count === 0) return `${what} must name at least one key`;
  const max = batchBytesMax(limits);
  if (bytes > max) return `${what} carries ${bytes} bytes of keys and values; the limit is ${max} (keyBytesMax + valueBytesMax, what one put may carry)`;
  return null;
}

/** Returns why `cmd` is not acceptable under `limits`, or null if it is. */
export function commandProblem(cmd: KvCommand, limits: KvLimits = kvLimitsDefault): string | null {
  const session = sessionProblem(cmd.clientId, cmd.seq, limits);
  if (session) return session;
  if (cmd.op === 'mput') {
    if (!Array.isArray(cmd.entries)) return 'the entries must be an array';
    let bytes = 0;
    for (const [key, value] of cmd.entries) {
      const problem = keyProblem(key, limits) ?? valueProblem(value, limits);
      if (problem) return problem;
      bytes += utf8ByteLength(key) + value.byteLength;
    }
    return batchProblem('an mput', cmd.entries.length, bytes, limits);
  }
  if (cmd.op === 'mdelete') {
    if (!Array.isArray(cmd.keys)) return 'the keys must be an array';
    let bytes = 0;
    for (const key of cmd.keys) {
      const problem = keyProblem(key, limits);
      if (problem) return problem;
      bytes += utf8ByteLength(key);
    }
    return batchProblem('an mdelete', cmd.keys.length, bytes, limits);
  }
  const key = keyProblem(cmd.key, limits);
  if (key) return key;
  switch (cmd.op) {
    case 'put':
    case 'put-if':
      return valueProblem(cmd.value, limits);
    case 'cas':
      return (cmd.expect === null ? null : valueProblem(cmd.expect, limits)) ?? valueProblem(cmd.value, limits);
    case 'incr-by':
      if (typeof cmd.delta !== 'bigint' || cmd.delta < int64Min || cmd.delta > int64Max) return 'the increment must be a signed 64-bit integer';
      return null;
    case 'get':
    case 'delete':
      return null;
  }
}

/** The keys a command may change (none for a get). */
export function keysWritten(cmd: KvCommand): readonly string[] {
  switch (cmd.op) {
    case 'get':
      return [];
    case 'mput':
      return cmd.entries.map(([key]) => key);
    case 'mdelete':
      return cmd.keys;
    default:
      return [cmd.key];
  }
}

/** Encodes a command for the log. Throws RangeError if it breaks `limits`: bad input never reaches the log. */
export function encodeCommand(cmd: KvCommand, limits: KvLimits = kvLimitsDefault): Uint8Array {
  const problem = commandProblem(cmd, limits);
  if (problem) throw new RangeError(`invalid ${cmd.op} command: ${problem}`);
  switch (cmd.op) {
    case 'put':
      return kvEncode([OP_PUT, cmd.clientId, cmd.seq, cmd.key, cmd.value]);
    case 'get':
      return kvEncode([OP_GET, cmd.clientId, cmd.seq, cmd.key]);
    case 'delete':
      return kvEncode([OP_DELETE, cmd.clientId, cmd.seq, cmd.key]);
    case 'cas':
      return kvEncode([OP_CAS, cmd.clientId, cmd.seq, cmd.key, cmd.expect, cmd.value]);
    // The delta as decimal text: CBOR integers past 2^53 decode differently across decoders.
    case 'incr-by':
      return kvEncode([OP_INCR_BY, cmd.clientId, cmd.seq, cmd.key, cmd.delta.toString()]);
    case 'put-if':
      return kvEncode([OP_PUT_IF, cmd.clientId, cmd.seq, cmd.key, cmd.value, conditionTags.indexOf(cmd.condition), cmd.returnPrevious]);
    case 'mput':
      return kvEncode([OP_MPUT, cmd.clientId, cmd.seq, cmd.entries.flat()]);
    case 'mdelete':
      return kvEncode([OP_MDELETE, cmd.clientId, cmd.seq, cmd.keys]);
  }
}

// cbor-x hands back Buffers; callers get plain Uint8Array views so deep equality and
// structured clone behave the same everywhere. No copy: the view shares the decoded memory.
function asBytes(x: unknown, what: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw new KvDecodeError(`${what} must be a byte string`);
  return x.constructor === Uint8Array ? x : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

function asString(x: unknown, what: string): string {
  if (typeof x !== 'string') throw new KvDecodeError(`${what} must be a text string`);
  return x;
}

function asSafeInt(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new KvDecodeError(`${what} must be an integer`);
  return x;
}

function asArray(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) throw new KvDecodeError(`${what} must be an array`);
  return x;
}

function asInt64Text(x: unknown, what: string): bigint {
  if (typeof x !== 'string' || !int64Text.test(x)) throw new KvDecodeError(`${what} must be a base-10 integer`);
  const n = BigInt(x);
  if (n < int64Min || n > int64Max) throw new KvDecodeError(`${what} is outside the signed 64-bit range`);
  return n;
}

function decodeTuple(bytes: Uint8Array, what: string): unknown[] {
  let tuple: unknown;
  try {
    tuple = kvCodec.decode(bytes);
  } catch (err) {
    throw new KvDecodeError(`${what} is not valid CBOR: ${(err as Error).message}`);
  }
  if (!Array.isArray(tuple) || tuple.length === 0) throw new KvDecodeError(`${what} must be a CBOR array`);
  return tuple;
}

function expectLength(t: unknown[], n: number, what: string): void {
  if (t.length !== n) throw new KvDecodeError(`${what} must have ${n} fields, got ${t.length}`);
}

/**
 * Decodes a command's structure. Throws KvDecodeError on malformed bytes; it does not check
 * limits (see commandProblem), so the state machine can answer "invalid" deterministically.
 */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  const t = decodeTuple(bytes, 'a KV command');
  const op = t[0];
  // Literals, no spreads or closures: every replica decodes every command, and an object spread
  // costs more than the CBOR decoding.
  switch (op) {
    case OP_PUT:
      expectLength(t, 5, 'put');
      return { op: 'put', clientId: clientIdOf(t), seq: seqOf(t), key: keyOf(t), value: asBytes(t[4], 'value') };
    case OP_GET:
      expectLength(t, 4, 'get');
      return { op: 'get', clientId: clientIdOf(t), seq: seqOf(t), key: keyOf(t) };
    case OP_DELETE:
      expectLength(t, 4, 'delete');
      return { op: 'delete', clientId: clientIdOf(t), seq: seqOf(t), key: keyOf(t) };
    case OP_CAS:
      expectLength(t, 6, 'cas');
      return { op: 'cas', clientId: clientIdOf(t), seq: seqOf(t), key: keyOf(t), expect: t[4] === null ? null : asBytes(t[4], 'expect'), value: asBytes(t[5], 'value') };
    case OP_INCR_BY:
      expectLength(t, 5, 'incr-by');
      return { op: 'incr-by', clientId: clientIdOf(t), seq: seqOf(t), key: keyOf(t), delta: asInt64Text(t[4], 'delta') };
    case OP_PUT_IF: {
      expectLength(t, 7, 'put-if');
      const clientId = clientIdOf(t);
      const seq = seqOf(t);
      const key = keyOf(t);
      const value = asBytes(t[4], 'value');
      const condition = typeof t[5] === 'number' ? conditionTags[t[5]] : undefined;
      if (condition === undefined) throw new KvDecodeError(`put-if condition must be 0, 1 or 2, got ${String(t[5])}`);
      if (typeof t[6] !== 'boolean') throw new KvDecodeError('put-if returnPrevious must be a boolean');
      return { op: 'put-if', clientId, seq, key, value, condition, returnPrevious: t[6] };
    }
    case OP_MPUT: {
      expectLength(t, 4, 'mput');
      const clientId = clientIdOf(t);
      const seq = seqOf(t);
      const flat = asArray(t[3], 'mput entries');
      if (flat.length % 2 !== 0) throw new KvDecodeError('mput entries must alternate key and value');
      const entries: Array<readonly [string, Uint8Array]> = [];
      for (let i = 0; i < flat.length; i += 2) entries.push([asString(flat[i], 'key'), asBytes(flat[i + 1], 'value')]);
      return { op: 'mput', clientId, seq, entries };
    }
    case OP_MDELETE: {
      expectLength(t, 4, 'mdelete');
      const clientId = clientIdOf(t);
      const seq = seqOf(t);
      return { op: 'mdelete', clientId, seq, keys: asArray(t[3], 'mdelete keys').map((k) => asString(k, 'key')) };
    }
    default:
      throw new KvDecodeError(`unknown KV command tag ${String(op)}`);
  }
}

function clientIdOf(t: unknown[]): string {
  return asString(t[1], 'clientId');
}

function seqOf(t: unknown[]): number {
  return asSafeInt(t[2], 'seq');
}

function keyOf(t: unknown[]): string {
  return asString(t[3], 'key');
}

export function encodeResult(r: KvResult): Uint8Array {
  switch (r.type) {
    case 'written':
      return kvEncode([RESULT_WRITTEN, r.index]);
    case 'value':
      return kvEncode([RESULT_VALUE, r.value]);
    case 'not-found':
      return kvEncode([RESULT_NOT_FOUND]);
    case 'deleted':
      return kvEncode([RESULT_DELETED, r.index, r.existed]);
    case 'cas-failed':
      return kvEncode([RESULT_CAS_FAILED, r.current]);
    case 'error':
      return kvEncode([RESULT_ERROR, r.code, r.message]);
    case 'integer':
      return kvEncode([RESULT_INTEGER, r.index, r.value.toString()]);
    case 'swapped':
      return kvEncode([RESULT_SWAPPED, r.index, r.previous]);
    case 'condition-failed':
      return kvEncode([RESULT_CONDITION_FAILED, r.previous]);
    case 'deleted-count':
      return kvEncode([RESULT_DELETED_COUNT, r.index, r.count]);
  }
}

const errorCodes: ReadonlySet<string> = new Set<KvErrorCode>(['stale-request', 'invalid-command', 'not-integer']);

/**
 * The index of a `written` result ([RESULT_WRITTEN, index] as kvCodec writes it: an array of 2,
 * then 0, then the index as the shortest unsigned integer up to 32 bits), or -1 for any other
 * bytes. Every write's answer is one: read here without the CBOR decoder, which costs more than
 * the rest of a front door's work on the answer.
 */
function writtenIndex(b: Uint8Array): number {
  if (b.length < 3 || b[0] !== 0x82 || b[1] !== RESULT_WRITTEN) return -1;
  const head = b[2]!;
  if (head < 24) return b.length === 3 ? head : -1;
  if (head === 24) return b.length === 4 ? b[3]! : -1;
  if (head === 25) return b.length === 5 ? (b[3]! << 8) | b[4]! : -1;
  if (head === 26) return b.length === 7 ? ((b[3]! << 24) >>> 0) + ((b[4]! << 16) | (b[5]! << 8) | b[6]!) : -1;
  return -1;
}

/** Decodes a result. Throws KvDecodeError on malformed bytes (a bug: results come from our own apply). */
export function decodeResult(bytes: Uint8Array): KvResult {
  const written = writtenIndex(bytes);
  if (written !== -1) return { type: 'written', index: written };
  const t = decodeTuple(bytes, 'a KV result');
  switch (t[0]) {
    case RESULT_WRITTEN:
      expectLength(t, 2, 'written');
      return { type: 'written', index: asSafeInt(t[1], 'index') };
    case RESULT_VALUE:
      expectLength(t, 2, 'value');
      return { type: 'value', value: asBytes(t[1], 'value') };
    case RESULT_NOT_FOUND:
      expectLength(t, 1, 'not-found');
      return { type: 'not-found' };
    case RESULT_DELETED:
      expectLength(t, 3, 'deleted');
      if (typeof t[2] !== 'boolean') throw new KvDecodeError('existed must be a boolean');
      return { type: 'deleted', index: asSafeInt(t[1], 'index'), existed: t[2] };
    case RESULT_CAS_FAILED:
      expectLength(t, 2, 'cas-failed');
      return { type: 'cas-failed', current: t[1] === null ? null : asBytes(t[1], 'current') };
    case RESULT_ERROR: {
      expectLength(t, 3, 'error');
      const code = asString(t[1], 'code');
      if (!errorCodes.has(code)) throw new KvDecodeError(`unknown KV error code ${code}`);
      return { type: 'error', code: code as KvErrorCode, message: asString(t[2], 'message') };
    }
    case RESULT_INTEGER:
      expectLength(t, 3, 'integer');
      return { type: 'integer', index: asSafeInt(t[1], 'index'), value: asInt64Text(t[2], 'value') };
    case RESULT_SWAPPED:
      expectLength(t, 3, 'swapped');
      return { type: 'swapped', index: asSafeInt(t[1], 'index'), previous: t[2] === null ? null : asBytes(t[2], 'previous') };
    case RESULT_CONDITION_FAILED:
      expectLength(t, 2, 'condition-failed');
      return { type: 'condition-failed', previous: t[1] === null ? null : asBytes(t[1], 'previous') };
    case RESULT_DELETED_COUNT:
      expectLength(t, 3, 'deleted-count');
      return { type: 'deleted-count', index: asSafeInt(t[1], 'index'), count: asSafeInt(t[2], 'count') };
    default:
      throw new KvDecodeError(`unknown KV result tag ${String(t[0])}`);
  }
}

/** UTF-8 bytes of a string: convenience for callers and tests that store text. */
export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}
