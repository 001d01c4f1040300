// What every CLI client of the HTTP API of `concur start` shares (`concur kv`, `concur member`,
// `concur transfer`): the flags that say where the API is, one request with a deadline, error
// answers turned into one line a person can act on, and exit codes a script can test.
// Must never print a stack for an unreachable server or an error answer.
import type { Command } from 'commander';
import { intOption, UsageError } from './options.ts';

export const apiUrlDefault = 'http://127.0.0.1:7070';
export const apiTimeoutMsDefault = 10_000;

/** Exit codes: 1 = a negative answer (not found, a conflict, a refused change), 3 = the request did not succeed. */
export const exitNegative = 1;
export const exitFailed = 3;

export interface ApiClientOptions {
  url: string;
  timeoutMs: number;
}

/** A request that did not succeed; `message` is for a person, `exitCode` for a script. */
export class ApiClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = exitFailed,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ApiClientError';
  }
}

/** The API's base URL, checked: `--url` must be http(s). */
export function apiBase(url: string): URL {
  let base: URL;
  try {
    base = new URL(url.endsWith('/') ? url : `${url}/`);
  } catch {
    throw new UsageError(`--url must be an http:// URL, got "${url}".`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--url must be an http:// URL, got "${url}".`);
  return base;
}

/** One request with the options' deadline; an unreachable or silent server becomes an ApiClientError. */
export async function request(opts: ApiClientOptions, url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      throw new ApiClientError(`no answer from the concur API at ${opts.url} within ${opts.timeoutMs} ms (raise --timeout-ms, or check the cluster with \`curl ${opts.url}/cluster\`).`);
    }
    const why = e.cause?.code === 'ECONNREFUSED' ? 'connection refused' : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new ApiClientError(`cannot reach the concur API at ${opts.url}: ${why}. Is \`concur start\` running there? (set --url to point elsewhere)`);
  }
}

/** Turns an error answer `{ error, code }` into an ApiClientError with the server's own words. */
export async function failure(res: Response, exitCode = exitFailed): Promise<ApiClientError> {
  const text = await res.text();
  let error = text.slice(0, 500);
  let code: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof body.error === 'string') error = body.error;
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // Not our JSON (a proxy's page?): show the start of it as is.
  }
  const retry = res.headers.get('retry-after');
  const hint = res.status === 503 && retry ? ` (retry in ${retry} s)` : '';
  return new ApiClientError(`the server answered ${res.status}${code ? ` ${code}` : ''}: ${error}${hint}`, exitCode, res.status, code);
}

export async function jsonBody<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiClientError(`the server at ${res.url} answered ${res.status} with something other than JSON; is it a concur API?`);
  }
}

/** The flags every API client has. */
export function withApiFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the HTTP API of a running `concur start`', apiUrlDefault)
    .option('--timeout-ms <ms>', 'give up after this many milliseconds', intOption(1, 3_600_000), apiTimeoutMsDefault);
}

/** Runs an action, printing an ApiClientError as one line and setting the exit code. */
export function runClient<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      if (!(err instanceof ApiClientError)) throw err;
      process.stderr.write(`concur: ${err.message}\n`);
      process.exitCode = err.exitCode;
    }
  };
}
