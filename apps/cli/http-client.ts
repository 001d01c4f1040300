// What every CLI client of the HTTP API of `concur start` shares (`concur kv`, `concur member`,
// `concur transfer`): the flags that say where the API is, one request with a deadline, error
// answers turned into one line a person can act on, and exit codes a script can test.
// Must never print a stack for an unreachable server or an error answer.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Option, type Command } from 'commander';
import { intOption, UsageError } from './options.ts';
import { readTokenFile, tokenFileEnv, tokenFileHelp } from './token-file.ts';

export const apiUrlDefault = 'http://127.0.0.1:7070';
export const apiTimeoutMsDefault = 10_000;

/** Exit codes: 1 = a negative answer (not found, a conflict, a refused change), 3 = the request did not succeed. */
export const exitNegative = 1;
export const exitFailed = 3;

export interface ApiClientOptions {
  url: string;
  timeoutMs: number;
  /** File holding the API token (`--token-file`, or the CONCUR_TOKEN_FILE environment variable). */
  tokenFile?: string;
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

const tokens = new Map<string, string>();

/** The Authorization header for the options' token file, if any (the file is read once). */
export function authHeaders(opts: Pick<ApiClientOptions, 'tokenFile'>): Record<string, string> {
  if (opts.tokenFile === undefined) return {};
  let token = tokens.get(opts.tokenFile);
  if (token === undefined) {
    token = readTokenFile(opts.tokenFile);
    tokens.set(opts.tokenFile, token);
  }
  return { authorization: `Bearer ${token}` };
}

/** A request as the CLI's commands make it. */
export interface ApiRequest {
  method: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/**
 * An answer, read whole: the part of fetch's Response the CLI uses. node:http, not fetch: loading
 * fetch (undici) took ~80 ms of every client command's start, and its idle keep-alive socket
 * held the process open after the answer.
 */
export class ApiResponse {
  constructor(
    readonly status: number,
    readonly url: string,
    private readonly head: IncomingHttpHeaders,
    private readonly bytes: Buffer,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get headers(): { get(name: string): string | null } {
    return {
      get: (name) => {
        const v = this.head[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v);
      },
    };
  }

  async text(): Promise<string> {
    return this.bytes.toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.bytes.toString('utf8')) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer;
  }

  /** The body is held whole, so it can be read more than once. */
  clone(): ApiResponse {
    return this;
  }
}

/** One request with the options' deadline; an unreachable or silent server becomes an ApiClientError. */
export async function request(opts: ApiClientOptions, url: URL, init: ApiRequest): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...(init.headers ?? {}), ...authHeaders(opts) };
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
  if (body !== undefined) headers['content-length'] = String(body.byteLength);
  const send = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return new Promise<ApiResponse>((resolve, reject) => {
    let timedOut = false;
    // No keep-alive: one command, one connection, closed with the answer.
    const req = send(url, { method: init.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve(new ApiResponse(res.statusCode ?? 0, url.href, res.headers, Buffer.concat(chunks)));
      });
      res.on('error', (err) => req.destroy(err));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new ApiClientError(`no answer from the concur API at ${opts.url} within ${opts.timeoutMs} ms (raise --timeout-ms, or check the cluster with \`curl ${opts.url}/cluster\`).`));
        return;
      }
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
      reject(new ApiClientError(`cannot reach the concur API at ${opts.url}: ${why}. Is \`concur start\` running there? (set --url to point elsewhere)`));
    });
    req.end(body);
  });
}

/**
 * What a person can do about an error answer the server gives for this whole door, not for the
 * request: a token missing or refused, the fault endpoints switched off.
 */
export function errorHint(status: number, code: string | undefined): string {
  if (status === 401) return `; give the cluster's token with --token-file FILE (or ${tokenFileEnv}=FILE)`;
  if (code === 'fault-api-disabled') return '; this cluster was started with --no-fault-api';
  return '';
}

/**
 * An error answer's text and code. The API answers `{ "error": message, "code": code }`; an
 * answer of the form `{ "error": code, "message": message }` is read as well.
 */
export function errorAnswer(text: string): { message: string; code?: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    if (typeof body.message === 'string') return { message: body.message, ...(typeof body.error === 'string' ? { code: body.error } : {}) };
    if (typeof body.error === 'string') return { message: body.error, ...(typeof body.code === 'string' ? { code: body.code } : {}) };
  } catch {
    // Not our JSON (a proxy's page?): show the start of it as is.
  }
  return { message: text.slice(0, 500) };
}

/** Turns an error answer into an ApiClientError with the server's own words. */
export async function failure(res: ApiResponse, exitCode = exitFailed): Promise<ApiClientError> {
  const { message, code } = errorAnswer(await res.text());
  const retry = res.headers.get('retry-after');
  const hint = res.status === 503 && retry ? ` (retry in ${retry} s)` : errorHint(res.status, code);
  return new ApiClientError(`the server answered ${res.status}${code ? ` ${code}` : ''}: ${message}${hint}`, exitCode, res.status, code);
}

export async function jsonBody<T>(res: ApiResponse): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiClientError(`the server at ${res.url} answered ${res.status} with something other than JSON; is it a concur API?`);
  }
}

/** A refused change, an unknown node or a node already in that state is a negative answer (exit 1); anything else failed (exit 3). */
const negativeStatuses = new Set([404, 409]);

/** One JSON request to `path` under the API's base URL, answered with JSON. */
export async function callJson<T>(opts: ApiClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  const url = new URL(path, apiBase(opts.url));
  const init: ApiRequest = body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
  const res = await request(opts, url, init);
  if (!res.ok) throw await failure(res, negativeStatuses.has(res.status) ? exitNegative : exitFailed);
  return jsonBody<T>(res);
}

/** The flags every API client has. */
export function withApiFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the HTTP API of a running `concur start`', apiUrlDefault)
    .option('--timeout-ms <ms>', 'give up after this many milliseconds', intOption(1, 3_600_000), apiTimeoutMsDefault)
    .addOption(new Option('--token-file <file>', tokenFileHelp).env(tokenFileEnv));
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
