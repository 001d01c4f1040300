// How commands of several apps share one log. An app command is a CBOR tuple
//   [app name, client id, seq, payload bytes]
// and a clock entry, proposed by leaders so that time reaches apps through the log, is
//   ["@clock", milliseconds elapsed on the leader's monotonic clock since its previous clock entry]
// A KV command ([op number, ...], apps/kv/commands.ts) is not wrapped: it goes to the `kv` app as
// it always did, so logs and clients from before apps shared the log read the same. The router
// tells them apart by the first element's CBOR major type (an integer for KV, a text string here).
import { Encoder } from 'cbor-x';

/** Plain CBOR, no records: any decoder can read a log; decoded byte strings are copies. */
const codec = new Encoder({ useRecords: false, tagUint8Array: false, copyBuffers: true, mapsAsObjects: true });

export const clockAppName = '@clock';
/** The most one clock entry may advance the log's time (a longer gap is counted as this much). */
export const clockStepMsMax = 60_000;

export function cborEncode(value: unknown): Uint8Array {
  const b = codec.encode(value);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function cborDecode(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}

/** Wraps one app command. `seq` > 0 makes a retry apply at most once (per app and client id); 0 opts out. */
export function encodeAppCommand(app: string, clientId: string, seq: number, payload: Uint8Array): Uint8Array {
  return cborEncode([app, clientId, seq, payload]);
}

export function encodeClock(elapsedMs: number): Uint8Array {
  return cborEncode([clockAppName, Math.max(0, Math.round(elapsedMs))]);
}

export type Envelope =
  | { kind: 'kv' }
  | { kind: 'clock'; elapsedMs: number }
  | { kind: 'app'; app: string; clientId: string; seq: number; payload: Uint8Array }
  | { kind: 'malformed'; why: string };

/** Nearly every entry's envelope: one object, not one per entry. */
const kvEnvelope: Envelope = Object.freeze({ kind: 'kv' });

/** Reads the envelope of a log entry (bytes[start, end)). Never throws: bad bytes are `malformed`. */
export function readEnvelope(bytes: Uint8Array, start: number, end: number): Envelope {
  if (end - start < 2) return { kind: 'malformed', why: 'a command of fewer than 2 bytes' };
  const head = bytes[start]!;
  // A CBOR array (major type 4) whose first element is an unsigned integer is a KV command.
  if (head >> 5 === 4 && bytes[start + 1]! >> 5 === 0) return kvEnvelope;
  if (head >> 5 !== 4 || bytes[start + 1]! >> 5 !== 3) return { kind: 'malformed', why: 'neither a KV command nor an app command' };
  let t: unknown;
  try {
    t = codec.decode(bytes.subarray(start, end));
  } catch (err) {
    return { kind: 'malformed', why: `bad CBOR: ${(err as Error).message}` };
  }
  if (!Array.isArray(t) || typeof t[0] !== 'string') return { kind: 'malformed', why: 'an app command must be a tuple that starts with the app name' };
  if (t[0] === clockAppName) {
    const ms = t[1];
    if (t.length !== 2 || typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) return { kind: 'malformed', why: 'a clock entry must be ["@clock", whole milliseconds ≥ 0]' };
    return { kind: 'clock', elapsedMs: Math.min(ms, clockStepMsMax) };
  }
  const [app, clientId, seq, payload] = t as unknown[];
  if (t.length !== 4 || typeof clientId !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || !(payload instanceof Uint8Array)) {
    return { kind: 'malformed', why: 'an app command must be [app, client id, seq ≥ 0, payload bytes]' };
  }
  const p = payload.constructor === Uint8Array ? payload : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  return { kind: 'app', app: app as string, clientId, seq, payload: p };
}

/** What the router answers instead of an app's result: the command never reached the app (or was a retry too old to answer). */
export interface RouterError {
  error: 'unknown-app' | 'malformed' | 'stale-request';
  message: string;
}

export function encodeRouterError(e: RouterError): Uint8Array {
  return cborEncode({ '@error': e.error, message: e.message });
}

/** The router's error in a result, or null when the result is the app's own. */
export function routerErrorOf(result: Uint8Array): RouterError | null {
  // App results are the app's format; a router error is a CBOR map whose first key is "@error".
  if (result.length < 8 || result[0]! >> 5 !== 5) return null;
  try {
    const v = codec.decode(result) as Record<string, unknown>;
    if (v !== null && typeof v === 'object' && typeof v['@error'] === 'string') return { error: v['@error'] as RouterError['error'], message: String(v.message) };
  } catch {
    // not ours
  }
  return null;
}
