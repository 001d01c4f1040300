// The KV store's wire format: commands (what a client proposes to the log) and results (what
// `apply` hands back), both CBOR tuples, plus the key/value/client-id limits checked at the edge.
// Must never depend on a protocol or the runtime: the log carries these bytes opaquely.
import { isUtf8 } from 'node:buffer';
import { Encoder } from 'cbor-x';
import { copyBytes } from '../../runtime/bytes.ts';

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
  if (!key.isWellFormed()) return 'the key contains an unpaired UTF-16 surrogate';
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
  if (!clientId.isWellFormed()) return 'the client id contains an unpaired UTF-16 surrogate';
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
  if (cmd.op === 'put' || cmd.op === 'get' || cmd.op === 'delete') {
    const bytes = writeSimpleCommand(cmd, limits);
    if (bytes !== null) return bytes;
  }
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

/*
 * put, get and delete, and their results, by hand. They are nearly every command a node applies
 * (three times over: once per replica) and cbor-x's general encoder and decoder cost more than
 * the rest of apply. The writers produce exactly the bytes kvCodec produces (the log format:
 * test/kv/codec-bytes.property.test.ts holds them to it), so logs, snapshots and other CBOR
 * decoders read them as before. The reader takes only the shapes it fully understands —
 * definite heads, small unsigned integers, text that is valid UTF-8 — and says no to anything
 * else, which then goes through cbor-x as before: every encoding decodes to what it did, and
 * every malformed one is refused with the same KvDecodeError.
 *
 * kvCodec's shapes: shortest heads for lengths and for integers up to 2^32 - 1; a larger
 * integer (a seq or index up to 2^53 - 1) as a float64 (0xfb), since cbor-x writes numbers past
 * 32 bits so; text as standard UTF-8 (well-formed strings only: commandProblem refuses others).
 */

const uint32Max = 0xffffffff;
const float64Bytes = new Uint8Array(8);
const float64View = new DataView(float64Bytes.buffer);
// Native string slicing with no subarray: on any Uint8Array, not only a Buffer.
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice(this: Uint8Array, start: number, end: number): string }).utf8Slice;

/** Bytes of the head kvCodec writes for a length, or an unsigned integer, up to 2^32 - 1. */
function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** Writes a shortest head of major type `major` (0x00 uint, 0x40 bytes, 0x60 text) for n <= 2^32 - 1. */
function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = major | 26;
  out[at + 1] = n >>> 24;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
}

/** A seq or log index as kvCodec writes it: a non-negative safe integer. */
function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function uintBytes(n: number): number {
  return n <= uint32Max ? headBytes(n) : 9;
}

/** Writes a non-negative safe integer as kvCodec does (a float64 past 32 bits). */
function writeUint(out: Uint8Array, at: number, n: number): number {
  if (n <= uint32Max) return writeHead(out, at, 0x00, n);
  out[at] = 0xfb;
  float64View.setFloat64(0, n);
  out.set(float64Bytes, at + 1);
  return at + 9;
}

/**
 * The UTF-8 length of `s`, or -1 if it holds a lone surrogate. A loop for short strings (a call
 * into C++ costs more than the loop), natively for long ones.
 */
function wellFormedUtf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return s.isWellFormed() ? Buffer.byteLength(s, 'utf8') : -1;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if ((c & 0xf800) !== 0xd800) bytes += 2;
    else if (c < 0xdc00 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: two code units, four bytes
      i++;
    } else return -1;
  }
  return bytes;
}

/** Writes a well-formed string of `bytes` UTF-8 bytes as CBOR text. */
function writeText(out: Uint8Array, at: number, s: string, bytes: number): number {
  at = writeHead(out, at, 0x60, bytes);
  const n = s.length;
  if (n > 64) {
    utf8.encodeInto(s, out.subarray(at, at + bytes));
    return at + bytes;
  }
  if (bytes === n) {
    for (let i = 0; i < n; i++) out[at + i] = s.charCodeAt(i);
    return at + n;
  }
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) out[at++] = c;
    else if (c < 0x800) {
      out[at++] = (c >> 6) | 0xc0;
      out[at++] = (c & 0x3f) | 0x80;
    } else if ((c & 0xfc00) === 0xd800) {
      // Well-formed, so a low surrogate follows.
      c = 0x10000 + ((c & 0x3ff) << 10) + (s.charCodeAt(++i) & 0x3ff);
      out[at++] = (c >> 18) | 0xf0;
      out[at++] = ((c >> 12) & 0x3f) | 0x80;
      out[at++] = ((c >> 6) & 0x3f) | 0x80;
      out[at++] = (c & 0x3f) | 0x80;
    } else {
      out[at++] = (c >> 12) | 0xe0;
      out[at++] = ((c >> 6) & 0x3f) | 0x80;
      out[at++] = (c & 0x3f) | 0x80;
    }
  }
  return at;
}

function writeBytes(out: Uint8Array, at: number, v: Uint8Array): number {
  const n = v.length;
  at = writeHead(out, at, 0x40, n);
  return copyBytes(v, 0, n, out, at);
}

/**
 * A put, get or delete as kvCodec encodes it, or null if it breaks a limit (or is beyond what
 * the writer handles): encodeCommand then takes the general path, which says why. Checks what
 * commandProblem checks, with the UTF-8 lengths it needs anyway.
 */
function writeSimpleCommand(cmd: KvCommand & { op: 'put' | 'get' | 'delete' }, limits: KvLimits): Uint8Array | null {
  const { clientId, seq, key } = cmd;
  if (typeof clientId !== 'string' || typeof key !== 'string' || !Number.isSafeInteger(seq) || seq < 1) return null;
  const idBytes = wellFormedUtf8Length(clientId);
  if (idBytes < 1 || idBytes > limits.clientIdBytesMax) return null;
  const keyBytes = wellFormedUtf8Length(key);
  if (keyBytes < 1 || keyBytes > limits.keyBytesMax) return null;
  let value: Uint8Array | null = null;
  let size = 2 + headBytes(idBytes) + idBytes + uintBytes(seq) + headBytes(keyBytes) + keyBytes;
  if (cmd.op === 'put') {
    value = cmd.value;
    if (!(value instanceof Uint8Array) || value.length > limits.valueBytesMax || value.length > uint32Max) return null;
    size += headBytes(value.length) + value.length;
  }
  const out = new Uint8Array(size);
  out[0] = value === null ? 0x84 : 0x85;
  out[1] = cmd.op === 'put' ? OP_PUT : cmd.op === 'get' ? OP_GET : OP_DELETE;
  let at = writeText(out, 2, clientId, idBytes);
  at = writeUint(out, at, seq);
  at = writeText(out, at, key, keyBytes);
  if (value !== null) writeBytes(out, at, value);
  return out;
}

/**
 * A client id as the CBOR text item every command of that client starts its fields with, for a
 * front door to keep per session lane and hand to encodePutBytes; null if the id breaks `limits`.
 */
export function clientIdText(clientId: string, limits: KvLimits = kvLimitsDefault): Uint8Array | null {
  const bytes = wellFormedUtf8Length(clientId);
  if (bytes < 1 || bytes > limits.clientIdBytesMax) return null;
  const out = new Uint8Array(headBytes(bytes) + bytes);
  writeText(out, 0, clientId, bytes);
  return out;
}

/**
 * A put whose key and value are still bytes in a request buffer (`src`), as encodeCommand would
 * write it with the key decoded: a front door that has the key as UTF-8 need not make a string
 * of it only to encode it back. The caller has checked what encodeCommand checks: the key is
 * valid UTF-8 of 1..keyBytesMax bytes, the value at most valueBytesMax, `idText` came from
 * clientIdText, and seq is a safe integer >= 1.
 */
export function encodePutBytes(idText: Uint8Array, seq: number, src: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): Uint8Array {
  const keyBytes = keyEnd - keyStart;
  const valueBytes = valueEnd - valueStart;
  const out = new Uint8Array(2 + idText.length + uintBytes(seq) + headBytes(keyBytes) + keyBytes + headBytes(valueBytes) + valueBytes);
  out[0] = 0x85;
  out[1] = OP_PUT;
  let at = writeUint(out, copyBytes(idText, 0, idText.length, out, 2), seq);
  at = copyBytes(src, keyStart, keyEnd, out, writeHead(out, at, 0x60, keyBytes));
  copyBytes(src, valueStart, valueEnd, out, writeHead(out, at, 0x40, valueBytes));
  return out;
}

/** [RESULT_WRITTEN, index] as kvCodec encodes it; `index` a non-negative safe integer. */
export function writtenResult(index: number): Uint8Array {
  const out = new Uint8Array(2 + uintBytes(index));
  out[0] = 0x82;
  out[1] = RESULT_WRITTEN;
  writeUint(out, 2, index);
  return out;
}

/** [RESULT_DELETED, index, existed] as kvCodec encodes it. */
export function deletedResult(index: number, existed: boolean): Uint8Array {
  const out = new Uint8Array(3 + uintBytes(index));
  out[0] = 0x83;
  out[1] = RESULT_DELETED;
  out[writeUint(out, 2, index)] = existed ? 0xf5 : 0xf4;
  return out;
}

/** [RESULT_VALUE, value] as kvCodec encodes it (a copy: the result does not alias `value`). */
export function valueResult(value: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + headBytes(value.length) + value.length);
  out[0] = 0x82;
  out[1] = RESULT_VALUE;
  writeBytes(out, 2, value);
  return out;
}

/** [RESULT_NOT_FOUND] as kvCodec encodes it; a new array each time, since results are handed out. */
export function notFoundResult(): Uint8Array {
  const out = new Uint8Array(2);
  out[0] = 0x81;
  out[1] = RESULT_NOT_FOUND;
  return out;
}

/**
 * A put, get or delete as readSimpleCommand found it, with what it learned on the way: the UTF-8
 * sizes of the strings (their CBOR lengths, since it takes only valid UTF-8, which also holds no
 * lone surrogate). Filled in place, so a caller reuses one and copies out what it keeps.
 */
export interface SimpleCommand {
  op: 'put' | 'get' | 'delete';
  /** '' for a get read without its client id (see readSimpleCommand); clientIdBytes holds its size still. */
  clientId: string;
  clientIdBytes: number;
  seq: number;
  key: string;
  keyBytes: number;
  /** The put's value, a copy that does not alias the command bytes; null for get and delete. */
  value: Uint8Array | null;
  /** The value's size (0 without one): a number, so the limit check reads no property of the array. */
  valueBytes: number;
}

export function newSimpleCommand(): SimpleCommand {
  return { op: 'get', clientId: '', clientIdBytes: 0, seq: 0, key: '', keyBytes: 0, value: null, valueBytes: 0 };
}

const decodeScratch = newSimpleCommand();

// The reader's cursor and the UTF-8 length of the last text it read: module state rather than
// returned pairs, so reading allocates nothing but the strings and the value. Never re-entered.
let readAt = 0;
let textBytesRead = 0;

/** The argument of a definite head of major type `major` at readAt (advancing past it), or -1. */
function readHead(b: Uint8Array, end: number, major: number): number {
  if (readAt >= end) return -1;
  const h = b[readAt]!;
  if ((h & 0xe0) !== major) return -1;
  const info = h & 0x1f;
  const at = readAt + 1;
  if (info < 24) {
    readAt = at;
    return info;
  }
  if (info === 24) {
    if (at + 1 > end) return -1;
    readAt = at + 1;
    return b[at]!;
  }
  if (info === 25) {
    if (at + 2 > end) return -1;
    readAt = at + 2;
    return (b[at]! << 8) | b[at + 1]!;
  }
  if (info === 26) {
    if (at + 4 > end) return -1;
    readAt = at + 4;
    return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
  }
  // 64-bit arguments and indefinite lengths: the general path's.
  return -1;
}

/**
 * A text string at readAt if it is valid UTF-8 (its length in textBytesRead), else null. With
 * `keep` false it is checked and skipped, and '' stands for it: making a string costs more than
 * reading it.
 */
function readText(b: Uint8Array, end: number, keep: boolean): string | null {
  const n = readHead(b, end, 0x60);
  if (n < 0 || n > end - readAt) return null;
  const start = readAt;
  const stop = start + n;
  if (keep && n > 0 && n <= textCacheBytes) {
    const cached = recentText(b, start, n);
    if (cached !== null) {
      readAt = stop;
      textBytesRead = n;
      return cached;
    }
  }
  let ascii = true;
  for (let i = start; i < stop; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  // Invalid UTF-8 is left to cbor-x, which decodes it its own way (U+FFFD for bad sequences).
  if (!ascii && !isUtf8(new Uint8Array(b.buffer, b.byteOffset + start, n))) return null;
  readAt = stop;
  textBytesRead = n;
  if (!keep) return '';
  const text = utf8Slice.call(b, start, stop);
  if (n > 0 && n <= textCacheBytes) rememberText(b, start, n, text);
  return text;
}

// Texts read lately, by a hash of their UTF-8 bytes (direct-mapped, a later text replaces an
// earlier one in its slot). A client id repeats in every command of its session and a hot key in
// every command on it: the string made last time is taken again, which saves making it (a native
// call) and hashing it again in the session table's and the store's maps (V8 keeps a string's
// hash in the string). Only texts the reader validated get in, so a hit needs no check.
// 4,096 slots: a front door keeps a session lane per request in flight (800 under redis-benchmark
// -c 50 -P 16), and with 1,024 most of their ids shared a slot with another and missed.
const textCacheSlotBits = 12;
const textCacheSlots = 1 << textCacheSlotBits;
const textCacheBytes = 32;
const cachedBytes = new Uint8Array(textCacheSlots * textCacheBytes);
const cachedWords = new DataView(cachedBytes.buffer);
const cachedLengths = new Int32Array(textCacheSlots).fill(-1);
const cachedTexts: string[] = new Array<string>(textCacheSlots).fill('');

// From the length and a few bytes at the end, where ids and keys that share a prefix differ
// (resp-…-17, user:1042): cheaper than hashing every byte, and a collision only costs a miss.
function textSlot(b: Uint8Array, start: number, n: number): number {
  const last = start + n - 1;
  const h = Math.imul(n ^ (b[last]! << 8) ^ (b[last - (n > 1 ? 1 : 0)]! << 16) ^ (b[last - (n > 2 ? 2 : 0)]! << 24) ^ b[start]!, 0x9e3779b1);
  return h >>> (32 - textCacheSlotBits);
}

function recentText(b: Uint8Array, start: number, n: number): string | null {
  const slot = textSlot(b, start, n);
  if (cachedLengths[slot] !== n) return null;
  const at = slot * textCacheBytes;
  // Four bytes at a time (a DataView load is one unaligned load once optimized), then the rest.
  const v = viewOf(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) if (cachedWords.getUint32(at + i) !== v.getUint32(start + i)) return null;
  for (; i < n; i++) if (cachedBytes[at + i] !== b[start + i]) return null;
  return cachedTexts[slot]!;
}

// The DataView of the array the reader read last: commands arrive from a few large arrays (the
// log's chunks, a frame), so one is made per array, not per text. (It keeps that one array from
// being collected until the next read: a chunk of the log, at most.)
let viewedArray: Uint8Array | null = null;
let viewed: DataView = new DataView(new ArrayBuffer(0));

function viewOf(b: Uint8Array): DataView {
  if (b !== viewedArray) {
    viewed = new DataView(b.buffer, b.byteOffset, b.length);
    viewedArray = b;
  }
  return viewed;
}

function rememberText(b: Uint8Array, start: number, n: number, text: string): void {
  const slot = textSlot(b, start, n);
  const at = slot * textCacheBytes;
  for (let i = 0; i < n; i++) cachedBytes[at + i] = b[start + i]!;
  cachedLengths[slot] = n;
  cachedTexts[slot] = text;
}

/**
 * Reads b[start, end) if it is a put, get or delete in the shapes kvCodec writes (or any other definite
 * heads for the same values), filling `out`; false, with `out` unspecified, for anything else,
 * which decodeCommand's general path then decodes or refuses. Checks no limits. With
 * `getClientId` false, a get's client id is checked (and measured) but left '' in `out`: apply
 * has no use for it, since reads bypass the session table.
 */
export function readSimpleCommand(b: Uint8Array, out: SimpleCommand, getClientId = true, start = 0, end = b.length): boolean {
  if (end - start < 2) return false;
  const head = b[start];
  const tag = b[start + 1];
  let op: SimpleCommand['op'];
  if (head === 0x85 && tag === OP_PUT) op = 'put';
  else if (head === 0x84 && tag === OP_GET) op = 'get';
  else if (head === 0x84 && tag === OP_DELETE) op = 'delete';
  else return false;
  readAt = start + 2;
  const clientId = readText(b, end, getClientId || op !== 'get');
  if (clientId === null) return false;
  const clientIdBytes = textBytesRead;
  const seq = readHead(b, end, 0x00);
  if (seq < 0) return false;
  const key = readText(b, end, true);
  if (key === null) return false;
  const keyBytes = textBytesRead;
  let value: Uint8Array | null = null;
  let valueBytes = 0;
  if (op === 'put') {
    const n = readHead(b, end, 0x40);
    valueBytes = n;
    if (n < 0 || n !== end - readAt) return false;
    // A copy: the command bytes may live in a ring frame that is reused.
    value = new Uint8Array(n);
    copyBytes(b, readAt, readAt + n, value, 0);
  } else if (readAt !== end) return false;
  out.op = op;
  out.clientId = clientId;
  out.clientIdBytes = clientIdBytes;
  out.seq = seq;
  out.key = key;
  out.keyBytes = keyBytes;
  out.value = value;
  out.valueBytes = valueBytes;
  return true;
}

/**
 * Whether a command readSimpleCommand found keeps `limits`: exactly what commandProblem passes,
 * from the sizes the reader already knows (valid UTF-8 holds no lone surrogate, and a string's
 * UTF-8 size is its CBOR length). False: ask commandProblem why.
 */
export function simpleCommandFits(c: SimpleCommand, limits: KvLimits): boolean {
  return (
    c.clientIdBytes >= 1 &&
    c.clientIdBytes <= limits.clientIdBytesMax &&
    c.seq >= 1 &&
    c.keyBytes >= 1 &&
    c.keyBytes <= limits.keyBytesMax &&
    // valueBytes, not value.byteLength: that load site sees arrays of several kinds and went
    // generic (a LoadIC call per command, ~5 % of a follower's CPU under load).
    c.valueBytes <= limits.valueBytesMax
  );
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
  const c = decodeScratch;
  if (readSimpleCommand(bytes, c)) {
    if (c.op === 'put') return { op: 'put', clientId: c.clientId, seq: c.seq, key: c.key, value: c.value! };
    return c.op === 'get' ? { op: 'get', clientId: c.clientId, seq: c.seq, key: c.key } : { op: 'delete', clientId: c.clientId, seq: c.seq, key: c.key };
  }
  return decodeCommandGeneral(bytes);
}

/**
 * decodeCommand through cbor-x alone, for every command shape: what decodeCommand does with
 * whatever the fast reader does not take, and the reference the tests hold the reader to.
 */
export function decodeCommandGeneral(bytes: Uint8Array): KvCommand {
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
    // By hand when the fields are what the writers handle (kvCodec's bytes either way).
    case 'written':
      return isIndex(r.index) ? writtenResult(r.index) : kvEncode([RESULT_WRITTEN, r.index]);
    case 'value':
      return r.value instanceof Uint8Array && r.value.byteLength <= uint32Max ? valueResult(r.value) : kvEncode([RESULT_VALUE, r.value]);
    case 'not-found':
      return notFoundResult();
    case 'deleted':
      return isIndex(r.index) && typeof r.existed === 'boolean' ? deletedResult(r.index, r.existed) : kvEncode([RESULT_DELETED, r.index, r.existed]);
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
