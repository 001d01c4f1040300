// The lock service's wire format: commands (the payload of an app command, apps/platform/
// envelope.ts) and results, both plain CBOR, plus the limits checked at the edge and again in
// apply (a replica must answer bad bytes the same way everywhere, never throw).
import { cborDecode, cborEncode } from '../platform/envelope.ts';

export const lockLimits = Object.freeze({
  nameBytesMax: 256,
  clientBytesMax: 128,
  ttlMsMax: 24 * 3600_000,
  waitMsMax: 3600_000,
  /** Clients queued on one lock, at most; more are refused (`full`), so the state stays bounded. */
  waitersMax: 10_000,
  /** Locks held or waited for at once, at most. */
  locksMax: 100_000,
});

export type LockCommand =
  | { op: 'acquire'; lock: string; client: string; ttlMs: number; waitMs: number }
  | { op: 'renew'; lock: string; client: string; token: number }
  | { op: 'release'; lock: string; client: string; token: number }
  /** A waiter gives up: it leaves the queue (nothing happens if it is not waiting). */
  | { op: 'cancel'; lock: string; client: string };

export interface Holder {
  client: string;
  /** The fencing token: the log index of the grant (strictly increasing per lock). */
  token: number;
  /** Log-time milliseconds until the grant expires unless renewed. */
  expiresInMs: number;
}

export type LockResult =
  /** `again`: the client held it already (same token; counted as a renewal). */
  | { r: 'granted'; token: number; expiresInMs: number; again?: boolean }
  | { r: 'cancelled'; waited: boolean }
  | { r: 'queued'; position: number; holder: Holder }
  | { r: 'held'; holder: Holder }
  | { r: 'renewed'; token: number; expiresInMs: number }
  | { r: 'released' }
  | { r: 'not-holder'; holder: Holder | null }
  | { r: 'invalid'; message: string }
  /** The lock's queue (or the number of locks in use) is at its limit: nothing changed; retry later. */
  | { r: 'full'; message: string };

/** What GET /locks/:name shows. */
export interface LockState {
  lock: string;
  holder: Holder | null;
  waiters: { client: string; waitsMs: number }[];
  /** The log's time (ms) when this was read. */
  logTimeMs: number;
}

const utf8 = new TextEncoder();

/** Why a command is not acceptable, or null. The same rules at the edge and in apply. */
export function lockCommandProblem(c: LockCommand): string | null {
  if (typeof c.lock !== 'string' || c.lock.length === 0 || utf8.encode(c.lock).length > lockLimits.nameBytesMax) return `a lock name is 1 to ${lockLimits.nameBytesMax} bytes of text`;
  if (typeof c.client !== 'string' || c.client.length === 0 || utf8.encode(c.client).length > lockLimits.clientBytesMax) return `"client" is 1 to ${lockLimits.clientBytesMax} bytes of text`;
  if (c.op === 'acquire') {
    if (!Number.isSafeInteger(c.ttlMs) || c.ttlMs < 1 || c.ttlMs > lockLimits.ttlMsMax) return `"ttlMs" must be a whole number from 1 to ${lockLimits.ttlMsMax}`;
    if (!Number.isSafeInteger(c.waitMs) || c.waitMs < 0 || c.waitMs > lockLimits.waitMsMax) return `"waitMs" must be a whole number from 0 to ${lockLimits.waitMsMax} (0: do not wait)`;
  } else if (c.op === 'cancel') {
    // nothing more
  } else if (c.op === 'renew' || c.op === 'release') {
    if (!Number.isSafeInteger(c.token) || c.token < 1) return '"token" must be the whole number ≥ 1 that acquire returned';
  } else {
    return `unknown lock operation ${JSON.stringify((c as { op: unknown }).op)}`;
  }
  return null;
}

export function encodeLockCommand(c: LockCommand): Uint8Array {
  const problem = lockCommandProblem(c);
  if (problem !== null) throw new RangeError(problem);
  if (c.op === 'acquire') return cborEncode([1, c.lock, c.client, c.ttlMs, c.waitMs]);
  if (c.op === 'cancel') return cborEncode([4, c.lock, c.client]);
  return cborEncode([c.op === 'renew' ? 2 : 3, c.lock, c.client, c.token]);
}

/** Decodes a command; throws RangeError with a reason on anything else. */
export function decodeLockCommand(bytes: Uint8Array): LockCommand {
  let t: unknown;
  try {
    t = cborDecode(bytes);
  } catch (err) {
    throw new RangeError(`not CBOR: ${(err as Error).message}`);
  }
  if (!Array.isArray(t)) throw new RangeError('a lock command is a CBOR tuple');
  const [op, lock, client, a, b] = t as [unknown, string, string, number, number];
  let c: LockCommand;
  if (op === 1 && t.length === 5) c = { op: 'acquire', lock, client, ttlMs: a, waitMs: b };
  else if ((op === 2 || op === 3) && t.length === 4) c = { op: op === 2 ? 'renew' : 'release', lock, client, token: a };
  else if (op === 4 && t.length === 3) c = { op: 'cancel', lock, client };
  else throw new RangeError(`unknown lock command tag ${String(op)} (or wrong length)`);
  const problem = lockCommandProblem(c);
  if (problem !== null) throw new RangeError(problem);
  return c;
}

export const encodeLockResult = (r: LockResult): Uint8Array => cborEncode(r);
export const decodeLockResult = (b: Uint8Array): LockResult => cborDecode(b) as LockResult;
