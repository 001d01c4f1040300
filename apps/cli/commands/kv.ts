// `concur kv put|get|list|del|cas`: a client of the HTTP API of a running `concur start`.
// Must never talk to the cluster any other way than over HTTP, and never print a stack for an
// unreachable server or an error answer: it says what happened and what to try.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { choiceOption, intOption, UsageError } from '../options.ts';
import { readModes, type ReadMode } from '../../http/backend.ts';
import {
  ApiClientError,
  apiBase,
  apiTimeoutMsDefault,
  apiUrlDefault,
  exitFailed,
  exitNegative,
  failure,
  jsonBody,
  request,
  runClient,
  withApiFlags,
  type ApiRequest,
  type ApiResponse,
} from '../http-client.ts';

export { exitFailed, exitNegative };
export const kvUrlDefault = apiUrlDefault;
export const kvTimeoutMsDefault = apiTimeoutMsDefault;

export interface KvClientOptions {
  url: string;
  timeoutMs: number;
  tokenFile?: string;
  /** Optional identity for exactly-once retries (sent as X-Client-Id / X-Request-Seq). */
  clientId?: string;
  seq?: number;
}

/** A request that did not succeed (the API client's error, under the name `concur kv` always had). */
export const KvClientError = ApiClientError;
export type KvClientError = ApiClientError;

function endpoint(opts: KvClientOptions, key: string, suffix = ''): URL {
  const base = apiBase(opts.url);
  if (key === '') throw new UsageError('the key must not be empty.');
  return new URL(`kv/${encodeURIComponent(key)}${suffix}`, base);
}

async function send(opts: KvClientOptions, url: URL, init: ApiRequest): Promise<ApiResponse> {
  const headers = { ...(init.headers ?? {}) };
  if (opts.clientId !== undefined || opts.seq !== undefined) {
    if (opts.clientId === undefined || opts.seq === undefined) throw new UsageError('--client-id and --seq go together.');
    headers['x-client-id'] = opts.clientId;
    headers['x-request-seq'] = String(opts.seq);
  }
  return request(opts, url, { ...init, headers });
}

export async function kvPut(opts: KvClientOptions, key: string, value: Uint8Array): Promise<{ index: number }> {
  const res = await send(opts, endpoint(opts, key), { method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } });
  if (!res.ok) throw await failure(res);
  return jsonBody(res);
}

/** The read modes a client picks the serving node of; the others are served by the leader. */
export const nodeReadModes: readonly ReadMode[] = ['follower', 'stale'];

function nodeReadProblem(read: ReadMode, node: number | undefined): string | null {
  if (node === undefined || nodeReadModes.includes(read)) return null;
  return `--node picks the node that serves a follower or stale read; add --read follower or --read stale (a ${read} read is the leader's), or drop --node`;
}

/** The value, or null when the key has none. `node`: the node that serves a follower or stale read. */
export async function kvGet(opts: KvClientOptions, key: string, read: ReadMode = 'index', node?: number): Promise<Uint8Array | null> {
  const problem = nodeReadProblem(read, node);
  if (problem !== null) throw new UsageError(problem);
  const url = endpoint(opts, key);
  url.searchParams.set('read', read);
  if (node !== undefined) url.searchParams.set('node', String(node));
  const res = await send(opts, url, { method: 'GET' });
  if (res.status === 404) {
    const err = await failure(res, exitNegative);
    if (err.code === 'key-not-found') return null;
    throw err;
  }
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
}

/** What `GET /kv` takes: every field optional, as the server's own defaults. */
export interface KvListQuery {
  prefix?: string;
  after?: string;
  /** Keys in this page, 1 to kvListPageMax. */
  limit?: number;
  read?: ReadMode;
  node?: number;
}

export interface KvItem {
  key: Uint8Array;
  value: Uint8Array;
}

/** One page: the items, and the key to pass as `after` for the next one (null: no more). */
export interface KvPage {
  items: KvItem[];
  next: string | null;
}

/** The largest page `GET /kv` serves. */
export const kvListPageMax = 1000;

/**
 * One page of `GET /kv`, sorted by key. The page is asked for as UTF-8 text and, when a key or
 * value in it is not (422 not-utf8), again as base64: bytes come back exact either way.
 */
export async function kvListPage(opts: KvClientOptions, q: KvListQuery): Promise<KvPage> {
  const problem = nodeReadProblem(q.read ?? 'index', q.node);
  if (problem !== null) throw new UsageError(problem);
  const url = new URL('kv', apiBase(opts.url));
  for (const [name, value] of Object.entries(q)) if (value !== undefined) url.searchParams.set(name, String(value));
  for (const encoding of ['utf8', 'base64'] as const) {
    url.searchParams.set('encoding', encoding);
    const res = await send(opts, url, { method: 'GET' });
    if (res.status === 422 && encoding === 'utf8') {
      const err = await failure(res);
      if (err.code === 'not-utf8') continue;
      throw err;
    }
    if (!res.ok) throw await failure(res);
    const page = await jsonBody<{ items?: unknown; encoding?: unknown; next?: unknown }>(res);
    if (!Array.isArray(page.items) || (page.next !== null && typeof page.next !== 'string')) {
      throw new ApiClientError(`the server at ${opts.url} answered GET /kv with something other than { items, next }; is it a concur API with key listing?`);
    }
    const enc = page.encoding === 'base64' ? 'base64' : 'utf8';
    const bytes = (text: unknown) => new Uint8Array(Buffer.from(String(text), enc));
    return { items: (page.items as { key: unknown; value: unknown }[]).map((i) => ({ key: bytes(i.key), value: bytes(i.value) })), next: page.next as string | null };
  }
  throw new Error('unreachable: a base64 page is never refused as not UTF-8');
}

/**
 * Every key from `q.after` on (with `q.prefix`), page by page following `next`, up to `total`
 * keys in all. `onPage` sees each page as it arrives, so a long listing prints as it goes.
 * Resolves with the `next` of the last page: null when the listing reached the end.
 */
export async function kvListAll(opts: KvClientOptions, q: Omit<KvListQuery, 'limit'>, total: number, onPage: (items: KvItem[]) => void): Promise<string | null> {
  let after = q.after;
  let left = total;
  for (;;) {
    const page = await kvListPage(opts, { ...q, ...(after !== undefined ? { after } : {}), limit: Math.min(kvListPageMax, left) });
    const items = page.items.slice(0, left);
    onPage(items);
    left -= items.length;
    if (page.next === null) return null;
    if (left <= 0) return page.next;
    after = page.next;
  }
}

export async function kvDel(opts: KvClientOptions, key: string): Promise<{ index: number; existed: boolean }> {
  const res = await send(opts, endpoint(opts, key), { method: 'DELETE' });
  if (!res.ok) throw await failure(res);
  return jsonBody(res);
}

export type CasOutcome = { ok: true; index: number } | { ok: false; current: Uint8Array | null };

/** Compare-and-set; `expect: null` means "only if absent". Bytes travel base64 so any value works. */
export async function kvCas(opts: KvClientOptions, key: string, expect: Uint8Array | null, value: Uint8Array): Promise<CasOutcome> {
  const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
  const body = JSON.stringify({ expect: expect === null ? null : b64(expect), value: b64(value), encoding: 'base64' });
  const res = await send(opts, endpoint(opts, key, '/cas'), { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  if (res.status === 409) {
    const text = await res.clone().text();
    const answer = JSON.parse(text) as { code?: string; current?: string | null; encoding?: 'utf8' | 'base64' };
    if (answer.code === 'cas-failed') {
      const current = answer.current == null ? null : new Uint8Array(Buffer.from(answer.current, answer.encoding ?? 'base64'));
      return { ok: false, current };
    }
    throw await failure(res);
  }
  if (!res.ok) throw await failure(res);
  const { index } = await jsonBody<{ index: number }>(res);
  return { ok: true, index };
}

interface CommonFlags {
  url: string;
  timeoutMs: number;
  tokenFile?: string;
  clientId?: string;
  seq?: number;
}

function withCommon(cmd: Command): Command {
  return withApiFlags(cmd)
    .option('--client-id <id>', 'client id for a safe retry (with --seq; the server applies a repeated id+seq once)')
    .option('--seq <n>', 'request sequence number for --client-id (increase it for every new request)', intOption(1, Number.MAX_SAFE_INTEGER));
}

function withReadFlags(cmd: Command): Command {
  return cmd
    .option('--read <mode>', `read path: ${readModes.join(' | ')} (see README, "Read paths")`, choiceOption(readModes), 'index' as ReadMode)
    .option('--node <id>', 'with --read follower or stale: the node that serves the read', intOption(1, 999_999_999));
}

function options(flags: CommonFlags): KvClientOptions {
  return { url: flags.url, timeoutMs: flags.timeoutMs, tokenFile: flags.tokenFile, clientId: flags.clientId, seq: flags.seq };
}

/**
 * What `kv get` writes after the value: a newline for a person at a terminal (so the prompt
 * does not run on after it), nothing for a pipe or a file, which get the exact bytes.
 */
export function valueEnding(value: Uint8Array, stdoutIsTTY: boolean | undefined): string {
  return stdoutIsTTY === true && value[value.byteLength - 1] !== 0x0a ? '\n' : '';
}

/** A key as a person reads it: as is when it is plain printable text, else quoted or base64. */
function showKey(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  return /^[\x21-\x7e\u00a0-\u{10ffff}]+$/u.test(text) && !text.startsWith('"') && !text.startsWith('base64:') && Buffer.from(text, 'utf8').equals(Buffer.from(bytes)) ? text : show(bytes);
}

function isUtf8(bytes: Uint8Array): boolean {
  return Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8').equals(Buffer.from(bytes));
}

function show(bytes: Uint8Array | null): string {
  if (bytes === null) return '(absent)';
  return isUtf8(bytes) ? JSON.stringify(Buffer.from(bytes).toString('utf8')) : `base64:${Buffer.from(bytes).toString('base64')}`;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function valueArg(value: string | undefined, file: string | undefined, what: string): Promise<Uint8Array> {
  if (value !== undefined && file !== undefined) throw new UsageError(`give the ${what} as an argument or with --file, not both.`);
  if (file !== undefined) {
    try {
      return new Uint8Array(file === '-' ? await readStdin() : await readFile(file));
    } catch (err) {
      throw new KvClientError(`cannot read --file ${file}: ${(err as Error).message}`);
    }
  }
  if (value === undefined) throw new UsageError(`give the ${what} as an argument, or --file PATH ("-" for stdin).`);
  return new Uint8Array(Buffer.from(value, 'utf8'));
}

const run = runClient;

export function registerKv(program: Command): void {
  const kv = program
    .command('kv')
    .description('read and write the replicated key-value store through the HTTP API of `concur start`')
    .addHelpText('after', '\nExit codes: 0 ok, 1 not found / cas conflict, 2 bad usage, 3 request failed (unreachable, no leader, deadline, token refused).');

  withCommon(kv.command('put <key> [value]'))
    .description('set a key (the value is UTF-8 text, or bytes from --file)')
    .option('--file <path>', 'read the value from a file ("-" for stdin)')
    .action(
      run(async (key: string, value: string | undefined, flags: CommonFlags & { file?: string }) => {
        const { index } = await kvPut(options(flags), key, await valueArg(value, flags.file, 'value'));
        process.stdout.write(`ok index=${index}\n`);
      }),
    );

  withReadFlags(withCommon(kv.command('get <key>')))
    .description('print the value of a key (the exact bytes; a newline is added only on a terminal); every read path but stale is linearizable')
    .action(
      run(async (key: string, flags: CommonFlags & { read: ReadMode; node?: number }) => {
        const value = await kvGet(options(flags), key, flags.read, flags.node);
        if (value === null) throw new KvClientError(`key ${JSON.stringify(key)} not found`, exitNegative);
        process.stdout.write(value);
        process.stdout.write(valueEnding(value, process.stdout.isTTY));
      }),
    );

  withReadFlags(withApiFlags(kv.command('list')))
    .description('list keys and values in key order, page by page (GET /kv)')
    .option('--prefix <text>', 'only keys that start with this')
    .option('--after <key>', 'start after this key (the last key of an earlier listing)')
    .option('--limit <n>', 'print at most this many keys (default: all)', intOption(1, Number.MAX_SAFE_INTEGER))
    .option('--json', 'print one JSON object { items: [{ key, value }], encoding, next } (base64 when any key or value is not UTF-8)')
    .addHelpText('after', '\nOutput: one line per key, the key then its value; a value (or key) that is not plain text is shown\nquoted, or as base64:... when it is not UTF-8. The read is linearizable unless --read stale.')
    .action(
      run(async (flags: CommonFlags & { read: ReadMode; node?: number; prefix?: string; after?: string; limit?: number; json?: boolean }) => {
        const all: KvItem[] = [];
        const q = { read: flags.read, ...(flags.node !== undefined ? { node: flags.node } : {}), ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}), ...(flags.after !== undefined ? { after: flags.after } : {}) };
        const next = await kvListAll(options(flags), q, flags.limit ?? Number.POSITIVE_INFINITY, (items) => {
          if (flags.json) all.push(...items);
          else if (items.length > 0) process.stdout.write(items.map((i) => `${showKey(i.key)} ${show(i.value)}\n`).join(''));
        });
        if (flags.json) {
          const utf8 = all.every((i) => isUtf8(i.key) && isUtf8(i.value));
          const enc = (b: Uint8Array) => Buffer.from(b).toString(utf8 ? 'utf8' : 'base64');
          process.stdout.write(`${JSON.stringify({ items: all.map((i) => ({ key: enc(i.key), value: enc(i.value) })), encoding: utf8 ? 'utf8' : 'base64', next })}\n`);
        }
      }),
    );

  withCommon(kv.command('del <key>'))
    .description('delete a key')
    .action(
      run(async (key: string, flags: CommonFlags) => {
        const { index, existed } = await kvDel(options(flags), key);
        process.stdout.write(`${existed ? 'deleted' : 'was absent'} index=${index}\n`);
      }),
    );

  withCommon(kv.command('cas <key> [value]'))
    .description('set a key only if its current value is --expect (or it is --absent)')
    .option('--expect <value>', 'the value the key must hold now (UTF-8 text)')
    .option('--absent', 'succeed only if the key has no value')
    .option('--file <path>', 'read the new value from a file ("-" for stdin)')
    .action(
      run(async (key: string, value: string | undefined, flags: CommonFlags & { expect?: string; absent?: boolean; file?: string }) => {
        if ((flags.expect === undefined) === (flags.absent === undefined)) throw new UsageError('cas needs exactly one of --expect VALUE or --absent.');
        const expect = flags.absent ? null : new Uint8Array(Buffer.from(flags.expect!, 'utf8'));
        const outcome = await kvCas(options(flags), key, expect, await valueArg(value, flags.file, 'new value'));
        if (!outcome.ok) throw new KvClientError(`cas failed: the current value is ${show(outcome.current)}`, exitNegative);
        process.stdout.write(`ok index=${outcome.index}\n`);
      }),
    );
}
