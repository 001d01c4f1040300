// The HTTP API on node:http: routes, input validation at the edge, KV requests turned into log
// commands, backend errors turned into status codes, and a deadline on every request.
// Must never reach past the ClusterBackend interface, and never leave a request unanswered.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { FastKvFront } from './fast-kv.ts';
import {
  type KvCommand,
  type KvResult,
  decodeResult,
  encodeCommand,
  keyProblem,
  sessionProblem,
  valueProblem,
} from '../kv/commands.ts';
import {
  BackendError,
  BusyError,
  type ClusterBackend,
  ConflictError,
  DeadlineError,
  type MemberRole,
  memberRoles,
  NoLeaderError,
  NoQuorumError,
  NodeStateError,
  type ReadMode,
  readModes,
  UnknownNodeError,
} from './backend.ts';
import { mountAppRoutes } from './app-routes.ts';
import { createDashboard, ownsDashboardPath, type Dashboard } from '../dashboard/serve.ts';
import { discardRestAfterAnswer, readBodyBytes } from './body.ts';
import { HttpError, sendError, sendJson } from './errors.ts';
import { type SessionLane, SessionLanes } from './sessions.ts';
import { type HttpApiSettings, httpApiSettings } from './settings.ts';
import { streamEvents } from './sse.ts';

/** The read path a GET takes when the request names none. */
export const readModeDefault: ReadMode = 'index';

/** Headers an external client sets to make its retries safe (see README of this folder). */
export const clientIdHeader = 'x-client-id';
export const requestSeqHeader = 'x-request-seq';
/** On a GET /kv/:key answer: the log index at which the read was served. */
export const indexHeader = 'x-concur-index';
/** On a local read: the node that served it, what it had applied, and the commit index it knew. */
export const nodeHeader = 'x-concur-node';
export const appliedHeader = 'x-concur-applied-index';
export const commitHeader = 'x-concur-commit-index';

export interface HttpApiHooks {
  /** Called with unexpected errors (answered 500); defaults to printing to stderr. */
  onInternalError?: (err: unknown) => void;
}

/** An answer to a KV request, whichever transport writes it. */
export interface KvReply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/**
 * The KV requests as operations on a key, for the fast path (fast-kv.ts): what PUT, GET (read
 * by the default path) and DELETE on /kv/:key answer, errors included, under a session lane.
 */
export interface KvOps {
  put(key: string, value: Uint8Array, deadlineAtMs: number): Promise<KvReply>;
  get(key: string, deadlineAtMs: number): Promise<KvReply>;
  delete(key: string, deadlineAtMs: number): Promise<KvReply>;
}

export interface HttpApiHandler {
  /** The node:http request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  readonly kv: KvOps;
  /** Ends every event stream (so a server can close). */
  closeStreams(): void;
  readonly settings: Readonly<HttpApiSettings>;
  readonly sseClientCount: number;
  readonly inflightRequests: number;
}

export interface HttpApi {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
  /** e.g. http://127.0.0.1:7070 */
  readonly url: string;
  readonly handler: HttpApiHandler;
  /** Stops accepting, ends event streams, waits up to shutdownGraceMs for requests, then cuts. */
  close(): Promise<void>;
}

/** Starts the API on settings.host:settings.port (default 127.0.0.1:7070) and resolves once listening. */
export async function startHttpApi(backend: ClusterBackend, settings: Partial<HttpApiSettings> = {}, hooks: HttpApiHooks = {}): Promise<HttpApi> {
  const handler = createHttpApiHandler(backend, settings, hooks);
  const s = handler.settings;
  // node:http serves every route; it does not listen itself: connections are accepted by the KV
  // fast path, which hands each to node:http at its first request it does not take (fast-kv.ts).
  const server = createServer(handler.handle);
  // Node's own guards against slow clients, aligned with ours: headers must arrive in time too.
  server.headersTimeout = s.requestDeadlineMs;
  server.requestTimeout = s.requestDeadlineMs + 1_000;
  const front = new FastKvFront(handler.kv, { headerBytesMax: 8 * 1024, valueBytesMax: s.valueBytesMax, requestDeadlineMs: s.requestDeadlineMs, keepAliveMs: server.keepAliveTimeout, pipelinedMax: 64 }, server);
  const listener = createNetServer(front.accept);
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(s.port, s.host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  // Requests in progress per connection node:http serves, so close() can cut idle connections at
  // once (including ones that never sent a request, which closeIdleConnections misses) and busy
  // ones when done.
  const requestsBySocket = new Map<Socket, number>();
  let closing: Promise<void> | null = null;
  server.on('connection', (socket: Socket) => {
    requestsBySocket.set(socket, 0);
    socket.once('close', () => requestsBySocket.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    requestsBySocket.set(socket, (requestsBySocket.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (requestsBySocket.get(socket) ?? 1) - 1;
      requestsBySocket.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });

  const address = listener.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}`,
    handler,
    close() {
      closing ??= new Promise<void>((resolve) => {
        handler.closeStreams();
        const cut = setTimeout(() => {
          server.closeAllConnections();
          front.closeAll();
        }, s.shutdownGraceMs);
        // Resolves once every connection it accepted (fast or handed on) has closed.
        listener.close(() => {
          clearTimeout(cut);
          resolve();
        });
        front.closeIdle();
        for (const [socket, requests] of requestsBySocket) if (requests === 0) socket.destroy();
      });
      return closing;
    },
  };
}

interface Route {
  methods: Readonly<Record<string, (ctx: RequestContext) => Promise<void> | void>>;
}

interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
  /** Date.now() by which the request must be answered. */
  deadlineAtMs: number;
}

type ExternalIdentity = { clientId: string; seq: number };
// Omit applied to each member of the union, so `op` still narrows the rest.
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type CommandBody = DistributiveOmit<KvCommand, 'clientId' | 'seq'>;

function remainingMs(ctx: RequestContext): number {
  return Math.max(1, ctx.deadlineAtMs - Date.now());
}

function methodNotAllowed(route: Route, method: string, path: string): HttpError {
  const allowed = Object.keys(route.methods).join(', ');
  return new HttpError(405, 'method-not-allowed', `${method} is not supported on ${path}; use ${allowed}`, { allow: allowed });
}

function decodeSegment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'bad-path', `the ${what} in the path is not valid percent-encoding: "${raw}"`);
  }
}

function parseNodeId(raw: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw new HttpError(400, 'bad-node-id', `node ids are positive integers, got "${raw}"`);
  return Number(raw);
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad-json', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type BytesEncoding = 'utf8' | 'base64';

function bytesFromJson(value: unknown, field: string, encoding: BytesEncoding): Uint8Array {
  if (typeof value !== 'string') throw new HttpError(400, 'bad-body', `"${field}" must be a string (${encoding}-encoded bytes)`);
  if (encoding === 'base64' && !base64Pattern.test(value)) throw new HttpError(400, 'bad-body', `"${field}" is not valid base64`);
  const buf = Buffer.from(value, encoding);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Bytes for a JSON answer: UTF-8 text when asked and possible, base64 otherwise (said in `encoding`). */
function bytesToJson(bytes: Uint8Array, preferred: BytesEncoding): { current: string; encoding: BytesEncoding } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (preferred === 'utf8') {
    const text = buf.toString('utf8');
    // A lossy decode (invalid UTF-8) would not round-trip: fall back to base64.
    if (Buffer.byteLength(text) === buf.byteLength && Buffer.from(text, 'utf8').equals(buf)) return { current: text, encoding: 'utf8' };
  }
  return { current: buf.toString('base64'), encoding: 'base64' };
}

export function createHttpApiHandler(backend: ClusterBackend, overrides: Partial<HttpApiSettings> = {}, hooks: HttpApiHooks = {}): HttpApiHandler {
  const settings = httpApiSettings(overrides);
  const lanes = new SessionLanes(settings.inflightRequestsMax);
  const onInternalError = hooks.onInternalError ?? ((err: unknown) => process.stderr.write(`concur http: internal error: ${(err as Error)?.stack ?? String(err)}\n`));
  const streams = new Set<() => void>();
  // Made on the first dashboard request: a server nobody views holds no feed and no subscription.
  let dashboard: Dashboard | null = null;
  let inflight = 0;

  const valueTooLarge = (detail: string) =>
    new HttpError(413, 'value-too-large', `the value is too large (${detail}); the limit is ${settings.valueBytesMax} bytes`);
  const bodyTooLarge = (limit: number) => (detail: string) =>
    new HttpError(413, 'body-too-large', `the request body is too large (${detail}); the limit is ${limit} bytes`);

  function retryAfter(err: { retryAfterMs?: number }): string {
    const seconds = err.retryAfterMs !== undefined ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : settings.retryAfterSeconds;
    return String(seconds);
  }

  function fromBackendError(err: unknown): HttpError {
    if (err instanceof HttpError) return err;
    if (err instanceof NoLeaderError || err instanceof NoQuorumError || err instanceof BusyError) return new HttpError(503, err.code, err.message, { 'retry-after': retryAfter(err) });
    if (err instanceof DeadlineError) return new HttpError(504, err.code, err.message);
    if (err instanceof UnknownNodeError) return new HttpError(404, err.code, err.message);
    if (err instanceof NodeStateError || err instanceof ConflictError) return new HttpError(409, err.code, err.message);
    onInternalError(err);
    if (err instanceof BackendError) return new HttpError(500, err.code, err.message);
    return new HttpError(500, 'internal', `internal error: ${(err as Error)?.message ?? String(err)}`);
  }

  /** Races `work` against the request's deadline; the server's own guarantee that nothing hangs. */
  async function withDeadline<T>(ctx: RequestContext, work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError(504, 'deadline-exceeded', `${what} did not finish within the ${settings.requestDeadlineMs} ms deadline; it may still take effect`)),
        remainingMs(ctx),
      );
      // The listening server keeps the process alive; a closed one must not be held open by this.
      timer.unref();
    });
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** (clientId, seq) from the headers, if the client sent them. */
  function externalIdentity(req: IncomingMessage): ExternalIdentity | null {
    const clientId = req.headers[clientIdHeader];
    const seqText = req.headers[requestSeqHeader];
    if (clientId === undefined && seqText === undefined) return null;
    if (typeof clientId !== 'string' || typeof seqText !== 'string') {
      throw new HttpError(400, 'bad-client-identity', 'send X-Client-Id and X-Request-Seq together (once each), or neither');
    }
    const seq = /^\d{1,16}$/.test(seqText) ? Number(seqText) : NaN;
    const problem = sessionProblem(clientId, seq, settings);
    if (problem) throw new HttpError(400, 'bad-client-identity', problem);
    if (clientId.startsWith('http-')) throw new HttpError(400, 'bad-client-identity', 'client ids starting with "http-" are reserved for the server');
    return { clientId, seq };
  }

  /** Proposes a KV command through the backend under the client's own identity or a session lane. */
  async function submitKv(
    ctx: RequestContext,
    external: ExternalIdentity | null,
    body: CommandBody,
  ): Promise<{ index: number; result: KvResult }> {
    if (inflight >= settings.inflightRequestsMax) {
      throw new HttpError(503, 'overloaded', `${settings.inflightRequestsMax} requests are already in flight; retry shortly`, {
        'retry-after': String(settings.retryAfterSeconds),
      });
    }
    let lane: SessionLane | null = null;
    if (!external) {
      lane = lanes.acquire();
      // inflightRequestsMax lanes exist, and inflight < inflightRequestsMax, so one is free.
      if (!lane) throw new Error('invariant: no free session lane below inflightRequestsMax');
    }
    const identity = external ?? lane!;
    inflight += 1;
    try {
      const command = encodeCommand({ ...body, clientId: identity.clientId, seq: identity.seq } as KvCommand, settings);
      const { index, result } = await withDeadline(ctx, backend.submit(command, remainingMs(ctx)), `the ${body.op} request`);
      return { index, result: decodeResult(result) };
    } finally {
      inflight -= 1;
      if (lane) lanes.release(lane);
    }
  }

  function kvResultError(result: KvResult, op: string): HttpError {
    if (result.type === 'error') {
      if (result.code === 'stale-request') return new HttpError(409, 'stale-request', result.message);
      return new HttpError(400, result.code, result.message);
    }
    return new HttpError(500, 'internal', `unexpected ${result.type} result for ${op}`);
  }

  function putAnswer(result: KvResult): { index: number } {
    if (result.type !== 'written') throw kvResultError(result, 'put');
    return { index: result.index };
  }

  function deleteAnswer(result: KvResult): { index: number; existed: boolean } {
    if (result.type !== 'deleted') throw kvResultError(result, 'delete');
    return { index: result.index, existed: result.existed };
  }

  /** A GET's answer once read: the value, or 404; `headers` say where it was read. */
  function valueReply(key: string, value: Uint8Array | null, headers: Record<string, string>): KvReply {
    if (value === null) throw new HttpError(404, 'key-not-found', `no value for key "${key}"`, headers);
    return { status: 200, headers: { ...headers, 'content-type': 'application/octet-stream' }, body: value };
  }

  function jsonReply(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): KvReply {
    return { status, headers: { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: JSON.stringify(body) };
  }

  function errorReply(err: unknown): KvReply {
    const e = fromBackendError(err);
    return jsonReply(e.status, { error: e.message, code: e.code, ...e.details }, e.headers);
  }

  /** The fast path's KV operations: the same checks, commands and answers as the routes below. */
  async function kvOp(key: string, deadlineAtMs: number, run: (ctx: RequestContext) => Promise<KvReply>): Promise<KvReply> {
    try {
      const problem = keyProblem(key, settings);
      if (problem) throw new HttpError(400, 'bad-key', problem);
      return await run({ deadlineAtMs } as RequestContext);
    } catch (err) {
      return errorReply(err);
    }
  }

  const kv: KvOps = {
    put: (key, value, deadlineAtMs) =>
      kvOp(key, deadlineAtMs, async (ctx) => {
        if (value.byteLength > settings.valueBytesMax) throw valueTooLarge(`${value.byteLength} bytes sent`);
        return jsonReply(200, putAnswer((await submitKv(ctx, null, { op: 'put', key, value })).result));
      }),
    delete: (key, deadlineAtMs) => kvOp(key, deadlineAtMs, async (ctx) => jsonReply(200, deleteAnswer((await submitKv(ctx, null, { op: 'delete', key })).result))),
    get: (key, deadlineAtMs) =>
      kvOp(key, deadlineAtMs, async (ctx) => {
        const r = await withDeadline(ctx, backend.read(key, readModeDefault as Exclude<ReadMode, 'log'>, remainingMs(ctx)), `the ${readModeDefault} read`);
        return valueReply(key, r.value, { 'cache-control': 'no-store', ...localReadHeaders(r) });
      }),
  };

  function localReadHeaders(r: { index: number; node: number; applied: number; commit: number }): Record<string, string> {
    return { [indexHeader]: String(r.index), [nodeHeader]: String(r.node), [appliedHeader]: String(r.applied), [commitHeader]: String(r.commit) };
  }

  function keyFrom(ctx: RequestContext): string {
    const key = decodeSegment(ctx.params[0]!, 'key');
    const problem = keyProblem(key, settings);
    if (problem) throw new HttpError(400, 'bad-key', problem);
    return key;
  }

  async function nodeAction(ctx: RequestContext, action: 'crash' | 'restart'): Promise<void> {
    const id = parseNodeId(ctx.params[0]!);
    if (!backend.hasNode(id)) throw new HttpError(404, 'unknown-node', `there is no node ${id}`);
    await withDeadline(ctx, backend[action](id), `${action} of node ${id}`);
    sendJson(ctx.res, 200, { ok: true, node: id, action });
  }

  function validatePartition(body: unknown): number[][] {
    const bad = (msg: string) => new HttpError(400, 'bad-partition', msg);
    if (typeof body !== 'object' || body === null || !('groups' in body)) throw bad('expected a JSON object { "groups": [[1,2,3],[4,5]] }');
    const groups = (body as { groups: unknown }).groups;
    if (!Array.isArray(groups) || groups.length === 0) throw bad('"groups" must be a non-empty array of node-id arrays');
    const seen = new Set<number>();
    const out: number[][] = [];
    for (const group of groups) {
      if (!Array.isArray(group) || group.length === 0) throw bad('every group must be a non-empty array of node ids');
      const ids: number[] = [];
      for (const id of group) {
        if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw bad(`node ids are non-negative integers, got ${JSON.stringify(id)}`);
        if (!backend.hasNode(id)) throw bad(`there is no node ${id}`);
        if (seen.has(id)) throw bad(`node ${id} appears in more than one group (or twice in one)`);
        seen.add(id);
        ids.push(id);
      }
      out.push(ids);
    }
    // Nodes a user left out stay together on their own side, so [[1]] isolates node 1.
    const rest = backend.status().nodes.map((n) => n.id).filter((id) => !seen.has(id));
    if (rest.length > 0) out.push(rest);
    return out;
  }

  /** A membership method of the backend, or 501 when it has none. */
  function membershipCall<K extends 'addMember' | 'removeMember' | 'promote' | 'transfer'>(name: K): NonNullable<ClusterBackend[K]> {
    const f = backend[name];
    if (typeof f !== 'function') throw new HttpError(501, 'not-supported', 'this cluster cannot change its membership');
    return f.bind(backend) as NonNullable<ClusterBackend[K]>;
  }

  async function controlBody(ctx: RequestContext, shape: string): Promise<Record<string, unknown>> {
    const bytes = await readBodyBytes(ctx.req, settings.controlBodyBytesMax, remainingMs(ctx), bodyTooLarge(settings.controlBodyBytesMax));
    if (bytes.byteLength === 0) return {};
    const body = parseJson(bytes);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'bad-body', `expected a JSON object ${shape}`);
    return body as Record<string, unknown>;
  }

  /** The id in the path, known to the backend (404 otherwise). */
  function memberFrom(ctx: RequestContext): number {
    const id = parseNodeId(ctx.params[0]!);
    if (!backend.hasNode(id)) throw new HttpError(404, 'unknown-node', `there is no node ${id}; GET /cluster lists the members`);
    return id;
  }

  async function addMember(ctx: RequestContext): Promise<void> {
    const body = await controlBody(ctx, '{ "role": "voter" | "learner" | "witness" }');
    const role = body.role ?? 'voter';
    if (typeof role !== 'string' || !(memberRoles as readonly string[]).includes(role)) {
      throw new HttpError(400, 'bad-body', `"role" must be one of ${memberRoles.join(', ')}, got ${JSON.stringify(role)}`);
    }
    const add = membershipCall('addMember');
    const answer = await withDeadline(ctx, add(role as MemberRole, remainingMs(ctx)), `adding a ${role}`);
    sendJson(ctx.res, 200, answer);
  }

  async function memberAction(ctx: RequestContext, action: 'removeMember' | 'promote'): Promise<void> {
    const id = memberFrom(ctx);
    const f = membershipCall(action);
    sendJson(ctx.res, 200, await withDeadline(ctx, f(id, remainingMs(ctx)), `${action === 'promote' ? 'promoting' : 'removing'} node ${id}`));
  }

  async function transfer(ctx: RequestContext): Promise<void> {
    const body = await controlBody(ctx, '{ "to": <node id> }');
    const to = body.to;
    if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1) throw new HttpError(400, 'bad-body', `"to" must be a node id (a positive integer), got ${JSON.stringify(to)}`);
    if (!backend.hasNode(to)) throw new HttpError(404, 'unknown-node', `there is no node ${to}; GET /cluster lists the members`);
    const f = membershipCall('transfer');
    sendJson(ctx.res, 200, await withDeadline(ctx, f(to, remainingMs(ctx)), `moving leadership to node ${to}`));
  }

  const routes: Array<{ pattern: RegExp; route: Route }> = [
    {
      pattern: /^\/cluster$/,
      route: { methods: { GET: (ctx) => sendJson(ctx.res, 200, backend.status()) } },
    },
    {
      pattern: /^\/cluster\/members$/,
      route: { methods: { POST: addMember } },
    },
    {
      pattern: /^\/cluster\/members\/([^/]+)$/,
      route: { methods: { DELETE: (ctx) => memberAction(ctx, 'removeMember') } },
    },
    {
      pattern: /^\/cluster\/members\/([^/]+)\/promote$/,
      route: { methods: { POST: (ctx) => memberAction(ctx, 'promote') } },
    },
    {
      pattern: /^\/cluster\/transfer$/,
      route: { methods: { POST: transfer } },
    },
    {
      pattern: /^\/cluster\/nodes\/([^/]+)\/crash$/,
      route: { methods: { POST: (ctx) => nodeAction(ctx, 'crash') } },
    },
    {
      pattern: /^\/cluster\/nodes\/([^/]+)\/restart$/,
      route: { methods: { POST: (ctx) => nodeAction(ctx, 'restart') } },
    },
    {
      pattern: /^\/cluster\/partition$/,
      route: {
        methods: {
          POST: async (ctx) => {
            const body = parseJson(await readBodyBytes(ctx.req, settings.controlBodyBytesMax, remainingMs(ctx), bodyTooLarge(settings.controlBodyBytesMax)));
            const groups = validatePartition(body);
            backend.partition(groups);
            sendJson(ctx.res, 200, { ok: true, groups });
          },
        },
      },
    },
    {
      pattern: /^\/cluster\/heal$/,
      route: {
        methods: {
          POST: (ctx) => {
            backend.heal();
            sendJson(ctx.res, 200, { ok: true });
          },
        },
      },
    },
    {
      pattern: /^\/kv\/([^/]*)$/,
      route: {
        methods: {
          GET: async (ctx) => {
            const key = keyFrom(ctx);
            const identity = externalIdentity(ctx.req);
            const mode = ctx.query.get('read') ?? readModeDefault;
            if (!(readModes as readonly string[]).includes(mode)) {
              throw new HttpError(400, 'bad-read-mode', `read=${mode} is not supported; use one of ${readModes.join(', ')}`);
            }
            const nodeText = ctx.query.get('node');
            const via = nodeText === null ? undefined : parseNodeId(nodeText);
            if (via !== undefined && !backend.hasNode(via)) throw new HttpError(404, 'unknown-node', `there is no node ${via}`);
            let value: Uint8Array | null;
            const headers: Record<string, string> = { 'cache-control': 'no-store' };
            if (mode === 'log') {
              const { index, result } = await submitKv(ctx, identity, { op: 'get', key });
              headers[indexHeader] = String(index);
              if (result.type === 'not-found') value = null;
              else if (result.type === 'value') value = result.value;
              else throw kvResultError(result, 'get');
            } else {
              const r = await withDeadline(ctx, backend.read(key, mode as Exclude<ReadMode, 'log'>, remainingMs(ctx), via === undefined ? {} : { via }), `the ${mode} read`);
              value = r.value;
              Object.assign(headers, localReadHeaders(r));
            }
            const reply = valueReply(key, value, headers);
            ctx.res.writeHead(200, { ...reply.headers, 'content-length': String(value!.byteLength) });
            ctx.res.end(value);
          },
          PUT: async (ctx) => {
            const key = keyFrom(ctx);
            const identity = externalIdentity(ctx.req);
            const value = await readBodyBytes(ctx.req, settings.valueBytesMax, remainingMs(ctx), valueTooLarge);
            sendJson(ctx.res, 200, putAnswer((await submitKv(ctx, identity, { op: 'put', key, value })).result));
          },
          DELETE: async (ctx) => {
            const key = keyFrom(ctx);
            sendJson(ctx.res, 200, deleteAnswer((await submitKv(ctx, externalIdentity(ctx.req), { op: 'delete', key })).result));
          },
        },
      },
    },
    {
      pattern: /^\/kv\/([^/]*)\/cas$/,
      route: {
        methods: {
          POST: async (ctx) => {
            const key = keyFrom(ctx);
            const identity = externalIdentity(ctx.req);
            const body = parseJson(await readBodyBytes(ctx.req, settings.casBodyBytesMax, remainingMs(ctx), bodyTooLarge(settings.casBodyBytesMax)));
            if (typeof body !== 'object' || body === null || Array.isArray(body)) {
              throw new HttpError(400, 'bad-body', 'expected a JSON object { "expect": string | null, "value": string, "encoding"?: "utf8" | "base64" }');
            }
            const b = body as Record<string, unknown>;
            const encoding = b.encoding ?? 'utf8';
            if (encoding !== 'utf8' && encoding !== 'base64') throw new HttpError(400, 'bad-body', `"encoding" must be "utf8" or "base64", got ${JSON.stringify(encoding)}`);
            if (!('expect' in b)) throw new HttpError(400, 'bad-body', '"expect" is required: the current value, or null for "only if absent"');
            const expect = b.expect === null ? null : bytesFromJson(b.expect, 'expect', encoding);
            const value = bytesFromJson(b.value, 'value', encoding);
            for (const [field, bytes] of [['expect', expect], ['value', value]] as const) {
              if (bytes !== null && valueProblem(bytes, settings)) throw valueTooLarge(`"${field}" is ${bytes.byteLength} bytes`);
            }
            const { result } = await submitKv(ctx, identity, { op: 'cas', key, expect, value });
            if (result.type === 'written') return sendJson(ctx.res, 200, { index: result.index });
            if (result.type === 'cas-failed') {
              const current = result.current === null ? { current: null, encoding } : bytesToJson(result.current, encoding);
              throw new HttpError(409, 'cas-failed', `the current value of "${key}" does not match "expect"`, {}, current);
            }
            throw kvResultError(result, 'cas');
          },
        },
      },
    },
    {
      pattern: /^\/events$/,
      route: {
        methods: {
          GET: (ctx) => {
            if (streams.size >= settings.sseClientsMax) {
              throw new HttpError(503, 'too-many-subscribers', `${settings.sseClientsMax} event subscribers are connected already`, {
                'retry-after': String(settings.retryAfterSeconds),
              });
            }
            const stop = streamEvents(ctx.res, backend.events(), settings, () => streams.delete(stop));
            if (!ctx.res.writableEnded) streams.add(stop);
          },
        },
      },
    },
  ];

  const appRoutes = mountAppRoutes({ backend, lanes, bodyBytesMax: settings.controlBodyBytesMax, requestDeadlineMs: settings.requestDeadlineMs, fromBackendError, sse: settings });

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
    const method = req.method ?? 'GET';
    try {
      if (ownsDashboardPath(path)) {
        dashboard ??= createDashboard(backend);
        dashboard.serve(req, res, path);
        return;
      }
      let appPathFound = false;
      for (const r of appRoutes) {
        const m = r.pattern.exec(path);
        if (!m) continue;
        appPathFound = true;
        if (r.method !== method) continue;
        inflight += 1;
        try {
          await r.run(req, res, m, query);
        } finally {
          inflight -= 1;
        }
        return;
      }
      if (/^\/kv(\/|$)/.test(path) && backend.apps !== undefined && !backend.apps.some((a) => a.name === 'kv')) {
        throw new HttpError(404, 'app-not-running', `the kv app does not run on this cluster (it runs ${backend.apps.map((a) => a.name).join(', ')}); start it with --apps kv,...`);
      }
      if (appPathFound) {
        const allow = appRoutes.filter((r) => r.pattern.test(path)).map((r) => r.method).join(', ');
        throw new HttpError(405, 'method-not-allowed', `${method} is not supported on ${path}; use ${allow}`, { allow });
      }
      for (const { pattern, route } of routes) {
        const m = pattern.exec(path);
        if (!m) continue;
        const run = route.methods[method];
        if (!run) throw methodNotAllowed(route, method, path);
        await run({ req, res, params: m.slice(1), query, deadlineAtMs: started + settings.requestDeadlineMs });
        return;
      }
      throw new HttpError(404, 'not-found', `no such endpoint: ${method} ${path}`);
    } catch (err) {
      const httpErr = fromBackendError(err);
      // The body may not have been read to the end (413, 408): drop the rest after answering.
      discardRestAfterAnswer(req, res, settings.discardLingerMs, settings.discardBytesMax);
      sendError(res, httpErr);
    }
  }

  return {
    settings,
    kv,
    handle(req, res) {
      void dispatch(req, res).catch((err: unknown) => {
        onInternalError(err);
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
    closeStreams() {
      for (const stop of [...streams]) stop();
      appRoutes.closeStreams();
      dashboard?.close();
    },
    get sseClientCount() {
      return streams.size;
    },
    get inflightRequests() {
      return inflight;
    },
  };
}
