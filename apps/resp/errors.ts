// The door's error answers: a RespError carries the text after the '-' (its first word is the
// code a client acts on: ERR, TRYAGAIN, TIMEOUT, NOPROTO...), and backend and KV failures are
// mapped to one. Must never leak a stack to a client.
import type { KvResult } from '../kv/commands.ts';
import { BackendError, BusyError, ConflictError, DeadlineError, NoLeaderError, NoQuorumError } from '../http/backend.ts';

export class RespError extends Error {
  override name = 'RespError';
  /** `message` begins with the code, e.g. `ERR syntax error`. */
  constructor(message: string) {
    super(message);
  }
}

export const syntaxError = () => new RespError('ERR syntax error');
export const notInteger = () => new RespError('ERR value is not an integer or out of range');

export function wrongArity(name: string): RespError {
  return new RespError(`ERR wrong number of arguments for '${name}' command`);
}

/** What a failed command answers; `kind` words the deadline (a read takes no effect, a write may). */
export function fromBackendError(err: unknown, kind: 'read' | 'write', onInternalError: (err: unknown) => void): RespError {
  if (err instanceof RespError) return err;
  if (err instanceof NoLeaderError || err instanceof NoQuorumError || err instanceof BusyError) return new RespError(`TRYAGAIN ${err.message}`);
  if (err instanceof DeadlineError) {
    return new RespError(kind === 'write' ? `TIMEOUT ${err.message}` : 'TIMEOUT the read was not served before its deadline; retry');
  }
  if (err instanceof ConflictError) return new RespError(`ERR ${err.message}`);
  onInternalError(err);
  if (err instanceof BackendError) return new RespError(`ERR ${err.code}: ${err.message}`);
  return new RespError(`ERR internal error: ${(err as Error)?.message ?? String(err)}`);
}

/** The answer for a KV result that is not the one the command expects. */
export function fromKvResult(result: KvResult, command: string): RespError {
  if (result.type === 'error') {
    switch (result.code) {
      case 'not-integer':
        return new RespError('ERR value is not an integer or out of range');
      case 'stale-request':
        // Only when its session lane's next write reached the log first (it was given up at
        // its deadline): the session table refused it, so it was not applied.
        return new RespError(`TRYAGAIN the ${command} was overtaken by a later write under its session and was not applied; retry`);
      case 'invalid-command':
        return new RespError(`ERR ${result.message}`);
    }
  }
  return new RespError(`ERR internal error: unexpected ${result.type} result for ${command}`);
}
