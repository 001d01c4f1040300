// `concur kv put|get|del|cas`: a client of the HTTP API of a running `concur start`.
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
} from '../http-client.ts';

export { exitFailed, exitNegative };
export const kvUrlDefault = apiUrlDefault;
export const kvTimeoutMsDefault = apiTimeoutMsDefault;

export interface KvClientOptions {
  url: string;
  timeoutMs: number;
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

async function send(opts: KvClientOptions, url: URL, init: RequestInit): Promise<Response> {
  const headers = new Headers(init.headers);
  if (opts.clientId !== undefined || opts.seq !== undefined) {
    if (opts.clientId === undefined || opts.seq === undefined) throw new UsageError('--client-id and --seq go together.');
    headers.set('x-client-id', opts.clientId);
    headers.set('x-request-seq', String(opts.seq));
  }
  return request(opts, url, { ...init, headers });
}

export async function kvPut(opts: KvClientOptions, key: string, value: Uint8Array): Promise<{ index: number }> {
  const res = await send(opts, endpoint(opts, key), { method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } });
  if (!res.ok) throw await failure(res);
  return jsonBody(res);
}

/** The value, or null when the key has none. */
export async function kvGet(opts: KvClientOptions, key: string, read: ReadMode = 'index'): Promise<Uint8Array | null> {
  const url = endpoint(opts, key);
  url.searchParams.set('read', read);
  const res = await send(opts, url, { method: 'GET' });
  if (res.status === 404) {
    const err = await failure(res, exitNegative);
    if (err.code === 'key-not-found') return null;
    throw err;
  }
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
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
  clientId?: string;
  seq?: number;
}

function withCommon(cmd: Command): Command {
  return withApiFlags(cmd)
    .option('--client-id <id>', 'client id for a safe retry (with --seq; the server applies a repeated id+seq once)')
    .option('--seq <n>', 'request sequence number for --client-id (increase it for every new request)', intOption(1, Number.MAX_SAFE_INTEGER));
}

function options(flags: CommonFlags): KvClientOptions {
  return { url: flags.url, timeoutMs: flags.timeoutMs, clientId: flags.clientId, seq: flags.seq };
}

function show(bytes: Uint8Array | null): string {
  if (bytes === null) return '(absent)';
  const text = Buffer.from(bytes).toString('utf8');
  return Buffer.from(text, 'utf8').equals(Buffer.from(bytes)) ? JSON.stringify(text) : `base64:${Buffer.from(bytes).toString('base64')}`;
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
    .addHelpText('after', '\nExit codes: 0 ok, 1 not found / cas conflict, 2 bad usage, 3 request failed (unreachable, no leader, deadline).');

  withCommon(kv.command('put <key> [value]'))
    .description('set a key (the value is UTF-8 text, or bytes from --file)')
    .option('--file <path>', 'read the value from a file ("-" for stdin)')
    .action(
      run(async (key: string, value: string | undefined, flags: CommonFlags & { file?: string }) => {
        const { index } = await kvPut(options(flags), key, await valueArg(value, flags.file, 'value'));
        process.stdout.write(`ok index=${index}\n`);
      }),
    );

  withCommon(kv.command('get <key>'))
    .description('print the value of a key (raw bytes); every read path but stale is linearizable')
    .option('--read <mode>', `read path: ${readModes.join(' | ')} (see README, "Read paths")`, choiceOption(readModes), 'index' as ReadMode)
    .action(
      run(async (key: string, flags: CommonFlags & { read: ReadMode }) => {
        const value = await kvGet(options(flags), key, flags.read);
        if (value === null) throw new KvClientError(`key ${JSON.stringify(key)} not found`, exitNegative);
        process.stdout.write(value);
        // A trailing newline only for a person at a terminal; pipes get the exact bytes.
        if (process.stdout.isTTY) process.stdout.write('\n');
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
