// Settings of the Redis protocol door: every limit and deadline it enforces, with defaults and
// an up-front check that names the wrong one. Must never hold behaviour: the server reads these.
import { batchBytesMax, type KvLimits, kvLimitsDefault } from '../kv/commands.ts';
import { type ReadMode, readModes } from '../http/backend.ts';

export interface RespSettings extends KvLimits {
  /** Interface to listen on; 127.0.0.1 by default, like the HTTP API. */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Every command is answered within this many milliseconds (a TIMEOUT error past it). */
  requestDeadlineMs: number;
  /** The read path of a new connection (CLIENT READMODE changes it per connection). */
  readModeDefault: ReadMode;
  /** Connections at once; one more is told so (`-ERR max number of clients reached`) and closed. */
  connectionsMax: number;
  /** Commands of one connection waiting for their answers; past it the connection is not read until some are answered. */
  pendingCommandsMax: number;
  /** Bytes of answers queued to one slow reader's socket; past it the connection is not read until it drains. */
  outputBytesMax: number;
  /**
   * The largest request (a command with its arguments, framing included). A larger one is read
   * and dropped without being buffered, and answered with an error; the connection stays.
   */
  requestBytesMax: number;
  /** Arguments in one request; more is a protocol error that closes the connection (as Redis's 1M). */
  requestArgsMax: number;
  /** SCAN cursors remembered by the server (least recently used forgotten: `-ERR invalid cursor`). */
  scanCursorsMax: number;
  /** On close, connections with commands still running are cut after this long. */
  shutdownGraceMs: number;
}

export function respSettings(overrides: Partial<RespSettings> = {}): Readonly<RespSettings> {
  const limits: KvLimits = { ...kvLimitsDefault, ...overrides };
  const s: RespSettings = {
    ...kvLimitsDefault,
    host: '127.0.0.1',
    port: 6380,
    requestDeadlineMs: 5_000,
    readModeDefault: 'index',
    connectionsMax: 1024,
    pendingCommandsMax: 1024,
    outputBytesMax: 16 * 1024 * 1024,
    // Room for the largest MSET (what one put may carry) with RESP framing around many small keys.
    requestBytesMax: 2 * batchBytesMax(limits) + 64 * 1024,
    requestArgsMax: 1024 * 1024,
    scanCursorsMax: 10_000,
    shutdownGraceMs: 2_000,
    ...overrides,
  };
  if (typeof s.host !== 'string' || s.host === '') throw new RangeError('RESP setting host must be a non-empty string');
  if (!Number.isSafeInteger(s.port) || s.port < 0 || s.port > 65535) throw new RangeError(`RESP setting port must be an integer from 0 to 65535, got ${String(s.port)}`);
  if (!(readModes as readonly string[]).includes(s.readModeDefault)) throw new RangeError(`RESP setting readModeDefault must be one of ${readModes.join(', ')}, got ${String(s.readModeDefault)}`);
  const positive = [
    'keyBytesMax', 'valueBytesMax', 'clientIdBytesMax', 'requestDeadlineMs', 'connectionsMax', 'pendingCommandsMax',
    'outputBytesMax', 'requestBytesMax', 'requestArgsMax', 'scanCursorsMax',
  ] as const;
  for (const name of positive) {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`RESP setting ${name} must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isSafeInteger(s.shutdownGraceMs) || s.shutdownGraceMs < 0) throw new RangeError(`RESP setting shutdownGraceMs must be a non-negative integer, got ${String(s.shutdownGraceMs)}`);
  return Object.freeze(s);
}
