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

export type KvCommand =
  | (Session & { op: 'put'; key: string; value: Uint8Array })
  | (Session & { op: 'get'; key: string })
  | (Session & { op: 'delete'; key: string })
  // `expect: null` means "only if the key is absent".
  | (Session & { op: 'cas'; key: string; expect: Uint8Array | null; value: Uint8Array });

export type KvErrorCode = 'stale-request' | 'invalid-command';

export type KvResult =
  /** put, or cas that matched; `index` is the log index at which the write took effect. */
  | { type: 'written'; index: number }
  | { type: 'deleted'; index: number; existed: boolean }
  | { type: 'value'; value: Uint8Array }
  | { type: 'not-found' }
  | { type: 'cas-failed'; current: Uint8Array | null }
  | { type: 'error'; code: KvErrorCode; message: string };

// Numeric tags keep the log compact and the format independent of JS property order.
// Append new tags; never renumber (old logs and snapshots must still decode).
const OP_PUT = 1;
const OP_GET = 2;
const OP_DELETE = 3;
const OP_CAS = 4;

const RESULT_WRITTEN = 0;
const RESULT_VALUE = 1;
const RESULT_NOT_FOUND = 2;
const RESULT_DELETED = 3;
const RESULT_CAS_FAILED = 4;
const RESULT_ERROR = 5;

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

/** Returns why `cmd` is not acceptable under `limits`, or null if it is. */
export function commandProblem(cmd: KvCommand, limits: KvLimits = kvLimitsDefault): string | null {
  const problem = sessionProblem(cmd.clientId, cmd.seq, limits) ?? keyProblem(cmd.key, limits);
  if (problem) return problem;
  switch (cmd.op) {
    case 'put':
      return valueProblem(cmd.value, limits);
    case 'cas':
      return (cmd.expect === null ? null : valueProblem(cmd.expect, limits)) ?? valueProblem(cmd.value, limits);
    case 'get':
    case 'delete':
      return null;
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
  const head = () => ({ clientId: asString(t[1], 'clientId'), seq: asSafeInt(t[2], 'seq'), key: asString(t[3], 'key') });
  switch (op) {
    case OP_PUT:
      expectLength(t, 5, 'put');
      return { op: 'put', ...head(), value: asBytes(t[4], 'value') };
    case OP_GET:
      expectLength(t, 4, 'get');
      return { op: 'get', ...head() };
    case OP_DELETE:
      expectLength(t, 4, 'delete');
      return { op: 'delete', ...head() };
    case OP_CAS:
      expectLength(t, 6, 'cas');
      return { op: 'cas', ...head(), expect: t[4] === null ? null : asBytes(t[4], 'expect'), value: asBytes(t[5], 'value') };
    default:
      throw new KvDecodeError(`unknown KV command tag ${String(op)}`);
  }
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
  }
}

const errorCodes: ReadonlySet<string> = new Set<KvErrorCode>(['stale-request', 'invalid-command']);

/** Decodes a result. Throws KvDecodeError on malformed bytes (a bug: results come from our own apply). */
export function decodeResult(bytes: Uint8Array): KvResult {
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
    default:
      throw new KvDecodeError(`unknown KV result tag ${String(t[0])}`);
  }
}

/** UTF-8 bytes of a string: convenience for callers and tests that store text. */
export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}
