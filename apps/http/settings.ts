// Settings of the HTTP API: every limit and deadline it enforces, with defaults and an up-front
// check that names the wrong one. Must never hold behaviour: the server reads these, nothing else.
import { type KvLimits, kvLimitsDefault } from '../kv/commands.ts';

export interface HttpApiSettings extends KvLimits {
  /** Interface to listen on; 127.0.0.1 by default so a demo cluster is not exposed. */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Every request is answered within this many milliseconds (SSE streams excepted). */
  requestDeadlineMs: number;
  /** Largest JSON body for /kv/:key/cas; values inside are still held to valueBytesMax. */
  casBodyBytesMax: number;
  /** Largest JSON body for the control endpoints (/cluster/partition). */
  controlBodyBytesMax: number;
  /** KV requests in flight at once; beyond it the API answers 503 "overloaded". */
  inflightRequestsMax: number;
  /** Retry-After seconds on a 503 when the backend gives no better hint. */
  retryAfterSeconds: number;
  /** Concurrent /events subscribers. */
  sseClientsMax: number;
  /** A comment line is sent this often so proxies and clients see the stream is alive. */
  sseHeartbeatMs: number;
  /** A subscriber that falls this far behind (bytes queued to its socket) is disconnected. */
  sseBufferedBytesMax: number;
  /**
   * After answering before the whole body arrived (413, 408), the rest is read and dropped for
   * up to this long / this many bytes before the connection is cut. Closing at once would make
   * the kernel reset the connection, and the client could lose the answer.
   */
  discardLingerMs: number;
  discardBytesMax: number;
  /** On close, requests still running after this long have their connections cut. */
  shutdownGraceMs: number;
  /** false: the fault endpoints (crash, restart, pause, resume, partition, isolate, cut, faults, heal) answer 403. */
  faultApi: boolean;
}

/**
 * What startHttpApi takes: the settings, and the token every request must then carry
 * (`Authorization: Bearer <token>`). The token is kept only as a digest (auth.ts), never in the
 * settings, so it cannot surface in a log or an answer.
 */
export type HttpApiOptions = Partial<HttpApiSettings> & { token?: string };

function base64LengthBytes(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

export function httpApiSettings(overrides: Partial<HttpApiSettings> = {}): Readonly<HttpApiSettings> {
  const valueBytesMax = overrides.valueBytesMax ?? kvLimitsDefault.valueBytesMax;
  const s: HttpApiSettings = {
    ...kvLimitsDefault,
    host: '127.0.0.1',
    port: 7070,
    requestDeadlineMs: 5_000,
    // expect and value, both base64 at worst, plus room for the JSON around them.
    casBodyBytesMax: 2 * base64LengthBytes(valueBytesMax) + 64 * 1024,
    controlBodyBytesMax: 64 * 1024,
    inflightRequestsMax: 1024,
    retryAfterSeconds: 1,
    sseClientsMax: 64,
    sseHeartbeatMs: 15_000,
    sseBufferedBytesMax: 1024 * 1024,
    shutdownGraceMs: 2_000,
    discardLingerMs: 2_000,
    discardBytesMax: 4 * 1024 * 1024,
    faultApi: true,
    ...overrides,
  };
  // Dropped here even if a caller passed HttpApiOptions: the token never lives in the settings.
  delete (s as HttpApiSettings & { token?: string }).token;
  if (typeof s.faultApi !== 'boolean') throw new RangeError(`HTTP API setting faultApi must be true or false, got ${String(s.faultApi)}`);
  if (typeof s.host !== 'string' || s.host === '') throw new RangeError('HTTP API setting host must be a non-empty string');
  const positive = [
    'keyBytesMax', 'valueBytesMax', 'clientIdBytesMax', 'requestDeadlineMs', 'casBodyBytesMax', 'controlBodyBytesMax',
    'inflightRequestsMax', 'retryAfterSeconds', 'sseClientsMax', 'sseHeartbeatMs', 'sseBufferedBytesMax',
    'discardLingerMs', 'discardBytesMax',
  ] as const;
  for (const name of positive) {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`HTTP API setting ${name} must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isSafeInteger(s.shutdownGraceMs) || s.shutdownGraceMs < 0) throw new RangeError(`HTTP API setting shutdownGraceMs must be a non-negative integer, got ${String(s.shutdownGraceMs)}`);
  if (!Number.isSafeInteger(s.port) || s.port < 0 || s.port > 65535) throw new RangeError(`HTTP API setting port must be an integer from 0 to 65535, got ${String(s.port)}`);
  return Object.freeze(s);
}
