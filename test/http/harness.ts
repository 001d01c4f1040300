// Test harness: a real HTTP API on 127.0.0.1:0 over a LocalBackend, and small request helpers.
// Must never listen beyond loopback or leave a server open after `use` returns.
import { connect } from 'node:net';
import type { HttpApiOptions } from '../../apps/http/settings.ts';
import { type HttpApi, type HttpApiHooks, startHttpApi } from '../../apps/http/server.ts';
import { LocalBackend, type LocalBackendOptions } from '../support/local-backend.ts';

export interface Harness {
  api: HttpApi;
  backend: LocalBackend;
  url: string;
}

export async function use(
  fn: (h: Harness) => Promise<void>,
  settings: HttpApiOptions = {},
  backendOptions: LocalBackendOptions = {},
  hooks: HttpApiHooks = {},
): Promise<void> {
  const backend = new LocalBackend(backendOptions);
  const api = await startHttpApi(backend, { host: '127.0.0.1', port: 0, ...settings }, hooks);
  try {
    await fn({ api, backend, url: api.url });
  } finally {
    await api.close();
  }
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function json(url: string, init: RequestInit = {}): Promise<JsonAnswer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`expected JSON from ${init.method ?? 'GET'} ${url}, got ${res.status}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body };
}

export function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonAnswer> {
  return json(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

/** Sends raw bytes and collects the answer until the server closes or `ms` pass. */
export function raw(port: number, text: string | Buffer, ms = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(got));
    socket.write(text);
    setTimeout(() => socket.destroy(), ms);
  });
}
