// The HTTP API on node:http: routes, input validation at the edge, KV requests turned into log
// commands, backend errors turned into status codes, and a deadline on every request.
// Must never reach past the ClusterBackend interface, and never leave a request unanswered.
import { type IncomingMessage, maxHeaderSize, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { map } from 'rxjs';
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
  type ClusterStatus,
  ConflictError,
  DeadlineError,
  type LinkFaultSettings,
  type LocalReadResult,
  linkDelayMsMax,
  linkFaultFields,
  type MemberRole,
  memberRoles,
  NoLeaderError,
  NoQuorumError,
  NodeDownError,
  type NodeState,
  type NodeStatus,
  NodeStateError,
  type ReadMode,
  type ReadWaiter,
  readModes,
  UnknownNodeError,
  type WriteWaiter,
} from './backend.ts';
import { mountAppRoutes } from './app-routes.ts';
import { TokenGate } from './auth.ts';
import { createDashboard, ownsDashboardPath, type Dashboard } from '../dashboard/serve.ts';
import { discardRestAfterAnswer, readBodyBytes } from './body.ts';
import { DeadlineQueue, type Expiring } from './deadline-queue.ts';
import { answerClientError } from './client-errors.ts';
import { HttpError, sendError, sendJson } from './errors.ts';
import { publicEvent } from './event-shape.ts';
import { badParameter, checkParams, shown } from './params.ts';
import { appliedHeader, commitHeader, indexHeader, jsonContentType, nodeHeader, valueContentType } from './reply-bytes.ts';
import { type SessionLane, SessionLanes } from './sessions.ts';
import { type HttpApiOptions, type HttpApiSettings, httpApiSettings } from './settings.ts';
import { streamEvents } from './sse.ts';
import { decodeListAnswer, encodeKvQuery, queryProblem, scanCountMax } from '../kv/queries.ts';

/** The read path a GET takes when the request names none. */
export const readModeDefault: ReadMode = 'index';

/** Headers an external client sets to make its retries safe (see README of this folder). */
export const clientIdHeader = 'x-client-id';
export const requestSeqHeader = 'x-request-seq';
// The read headers (x-concur-index and the local read's node, applied and commit index) are
// defined beside the fast path's answers that carry them.
export { appliedHeader, commitHeader, indexHeader, nodeHeader } from './reply-bytes.ts';

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
 * Hears the answer to a fast-path KV request, once (maybe before the call that asked returns);
 * `tag` is the number the request was made with. The two answers nearly every request gets come
 * as their fields, so the transport can write them from text made once (reply-bytes.ts).
 */
export interface KvAnswerSink {
  /** A PUT applied at `index`: 200 `{"index":index}`. */
  putApplied(tag: number, index: number): void;
  /** A GET found `value`: 200 with it, and headers saying where it was read. */
  valueFound(tag: number, value: Uint8Array, at: LocalReadResult): void;
  /** Any other answer. */
  replied(tag: number, r: KvReply): void;
}

/**
 * The KV requests as operations on a key, for the fast path (fast-kv.ts): what PUT, GET (read
 * by the default path) and DELETE on /kv/:key answer, errors included, under a session lane.
 */
export interface KvOps {
  put(key: string, value: Uint8Array, deadlineAtMs: number, sink: KvAnswerSink, tag: number): void;
  get(key: string, deadlineAtMs: number, sink: KvAnswerSink, tag: number): void;
  delete(key: string, deadlineAtMs: number, sink: KvAnswerSink, tag: number): void;
}

/** A JSON answer to a KV request (the fast path writes a PUT's `{ index }` from reply-bytes.ts, to match). */
export function jsonReply(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): KvReply {
  return { status, headers: { ...headers, 'content-type': jsonContentType, 'cache-control': 'no-store' }, body: JSON.stringify(body) };
}

export interface HttpApiHandler {
  /** The node:http request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  readonly kv: KvOps;
  /** Ends every event stream (so a server can close). */
  closeStreams(): void;
  readonly settings: Readonly<HttpApiSettings>;
  /** With a token: whether an Authorization header value carries it (the fast path asks). */
  readonly authorized: ((header: string | undefined) => boolean) | null;
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
export async function startHttpApi(backend: ClusterBackend, settings: HttpApiOptions = {}, hooks: HttpApiHooks = {}): Promise<HttpApi> {
  const handler = createHttpApiHandler(backend, settings, hooks);
  const s = handler.settings;
  // node:http serves every route; it does not listen itself: connections are accepted by the KV
  // fast path, which hands each to node:http at its first request it does not take (fast-kv.ts).
  const server = createServer(handler.handle);
  // Node's own guards against slow clients, aligned with ours: headers must arrive in time too.
  server.headersTimeout = s.requestDeadlineMs;
  server.requestTimeout = s.requestDeadlineMs + 1_000;
  // What node:http refuses itself (431, 400, 408) gets the API's JSON error shape too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, { headerBytesMax: maxHeaderSize, keyBytesMax: s.keyBytesMax }));
  const front = new FastKvFront(
    handler.kv,
    {
      headerBytesMax: 8 * 1024,
      valueBytesMax: s.valueBytesMax,
      requestDeadlineMs: s.requestDeadlineMs,
      keepAliveMs: server.keepAliveTimeout,
      pipelinedMax: 64,
      ...(handler.authorized === null ? {} : { authorized: handler.authorized }),
    },
    server,
  );
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
  /** HEAD is served by GET (without the body) wherever GET is. */
  methods: Readonly<Record<string, (ctx: RequestContext) => Promise<void> | void>>;
  /** The query parameters each method takes (none when absent); others are refused with 400. */
  params?: Readonly<Record<string, readonly string[]>>;
  /** A fault endpoint: refused with 403 when the API runs with faultApi false. */
  fault?: boolean;
  /** The path as a person writes it, for messages (e.g. "/kv/:key"). */
  name: string;
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

/**
 * The backend is given a little less than the request has left, so that when it gives up it says
 * why (no quorum, which nodes are down) before the server's own deadline answers a bare 504.
 */
const backendMarginMs = 25;
function backendMs(ctx: RequestContext): number {
  return Math.max(1, ctx.deadlineAtMs - Date.now() - backendMarginMs);
}

function allowedMethods(route: Route): string[] {
  const methods = Object.keys(route.methods);
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

function methodNotAllowed(route: Route, method: string, path: string): HttpError {
  const allowed = allowedMethods(route).join(', ');
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

/** The read path a request asks for (default `index`), and the node it names, checked together. */
function readModeFrom(query: URLSearchParams, where: string): { mode: ReadMode; nodeText: string | null } {
  const mode = query.get('read') ?? readModeDefault;
  if (!(readModes as readonly string[]).includes(mode)) {
    throw new HttpError(400, 'bad-read-mode', `read=${mode} is not supported; use one of ${readModes.join(', ')}`);
  }
  const nodeText = query.get('node');
  if (nodeText !== null && mode !== 'follower' && mode !== 'stale') {
    throw badParameter(`node=${shown(nodeText, 16).slice(1, -1)} picks the node that serves a follower or stale read; ${mode === 'index' ? 'an' : 'a'} ${mode} read is served by the leader (${where}: drop node=, or add read=follower or read=stale)`);
  }
  return { mode: mode as ReadMode, nodeText };
}

/**
 * GET /cluster as the API promises it whatever the backend gives: every node with its `status`,
 * and a node that does not run shown as "down" (or "paused"), what it last reported under `last`.
 */
function publicStatus(st: ClusterStatus): ClusterStatus {
  const nodes = st.nodes.map((n): NodeStatus => {
    const status = n.status ?? (n.up ? 'up' : 'down');
    if (status === 'up' || n.last !== undefined) return { ...n, status };
    const last: NodeState = { role: n.role as NodeState['role'], term: n.term, commitIndex: n.commitIndex, lastIndex: n.lastIndex };
    for (const k of ['appliedIndex', 'firstIndex', 'snapshotIndex'] as const) if (n[k] !== undefined) last[k] = n[k];
    return { ...n, status, role: status, up: false, last };
  });
  return { ...st, nodes };
}

export function createHttpApiHandler(backend: ClusterBackend, options: HttpApiOptions = {}, hooks: HttpApiHooks = {}): HttpApiHandler {
  const settings = httpApiSettings(options);
  const gate = options.token === undefined ? null : new TokenGate(options.token);
  const lanes = new SessionLanes(settings.inflightRequestsMax);
  const onInternalError = hooks.onInternalError ?? ((err: unknown) => process.stderr.write(`concur http: internal error: ${(err as Error)?.stack ?? String(err)}\n`));
  const streams = new Set<() => void>();
  // Made on the first dashboard request: a server nobody views holds no feed and no subscription.
  let dashboard: Dashboard | null = null;
  let inflight = 0;

  const valueTooLarge = (detail: string) =>
    new HttpError(413, 'value-too-large', `the value is too large (${detail}); the limit is ${settings.valueBytesMax} bytes`);
  // Built apart from the per-request paths: on this V8 a template literal in a hot function's
  // never-taken throw still converted its numbers to strings on every call.
  const valueBytesTooLarge = (bytes: number) => valueTooLarge(`${bytes} bytes sent`);
  const overloaded = () =>
    new HttpError(503, 'overloaded', `${settings.inflightRequestsMax} requests are already in flight; retry shortly`, { 'retry-after': String(settings.retryAfterSeconds) });
  const bodyTooLarge = (limit: number) => (detail: string) =>
    new HttpError(413, 'body-too-large', `the request body is too large (${detail}); the limit is ${limit} bytes`);

  function retryAfter(err: { retryAfterMs?: number }): string {
    const seconds = err.retryAfterMs !== undefined ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : settings.retryAfterSeconds;
    return String(seconds);
  }

  function fromBackendError(err: unknown): HttpError {
    if (err instanceof HttpError) return err;
    // Retrying will not help until someone restarts or resumes it: no Retry-After.
    if (err instanceof NodeDownError) return new HttpError(503, err.code, err.message);
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
      throw overloaded();
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
      const { index, result } = await withDeadline(ctx, backend.submit(command, backendMs(ctx)), `the ${body.op} request`);
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
    return { status: 200, headers: { ...headers, 'content-type': valueContentType }, body: value };
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

  /**
   * The lean requests waiting in the backend: the backend settles each by the deadline it is
   * given, which is before the request's; this answers one it never settles (504, as the routes'
   * withDeadline does), and frees its lane.
   */
  const leanDeadlines = new DeadlineQueue(Math.min(100, Math.max(5, Math.ceil(settings.requestDeadlineMs / 10))));

  function deadlineReply(what: string): KvReply {
    return errorReply(new HttpError(504, 'deadline-exceeded', `${what} did not finish within the ${settings.requestDeadlineMs} ms deadline; it may still take effect`));
  }

  /** A lean PUT in the client pipeline: frees its lane when answered (or at its deadline) and tells the sink. */
  class PutWaiter implements WriteWaiter, Expiring {
    settled = false;

    constructor(
      private readonly lane: SessionLane,
      private readonly sink: KvAnswerSink,
      private readonly tag: number,
      readonly deadlineAtMs: number,
    ) {}

    writeDone(err: Error | null, _index: number, result: Uint8Array | null): void {
      if (!leanDeadlines.settle(this)) return;
      this.release();
      let index: number;
      try {
        if (err !== null) throw err;
        index = putAnswer(decodeResult(result!)).index;
      } catch (e) {
        this.sink.replied(this.tag, errorReply(e));
        return;
      }
      this.sink.putApplied(this.tag, index);
    }

    expire(): void {
      this.release();
      this.sink.replied(this.tag, deadlineReply('the put request'));
    }

    private release(): void {
      inflight -= 1;
      lanes.release(this.lane);
    }
  }

  /**
   * A plain PUT the fast path read, when the backend takes waiters: the same checks, command and
   * answers as the route, with no promise and no timer of its own.
   */
  function leanPut(key: string, value: Uint8Array, deadlineAtMs: number, sink: KvAnswerSink, tag: number): void {
    let waiter: PutWaiter;
    let command: Uint8Array;
    try {
      const problem = keyProblem(key, settings);
      if (problem) throw new HttpError(400, 'bad-key', problem);
      if (value.length > settings.valueBytesMax) throw valueBytesTooLarge(value.length);
      if (inflight >= settings.inflightRequestsMax) {
        throw overloaded();
      }
      const lane = lanes.acquire();
      if (!lane) throw new Error('invariant: no free session lane below inflightRequestsMax');
      try {
        command = encodeCommand({ op: 'put', key, value, clientId: lane.clientId, seq: lane.seq }, settings);
      } catch (err) {
        lanes.release(lane);
        throw err;
      }
      waiter = new PutWaiter(lane, sink, tag, deadlineAtMs);
    } catch (err) {
      sink.replied(tag, errorReply(err));
      return;
    }
    inflight += 1;
    leanDeadlines.add(waiter);
    backend.submitTo!(command, backendMs({ deadlineAtMs } as RequestContext), waiter);
  }

  /** A lean GET in the client pipeline: tells the sink the value, or the answer without one. */
  class GetWaiter implements ReadWaiter, Expiring {
    settled = false;

    constructor(
      private readonly key: string,
      private readonly sink: KvAnswerSink,
      private readonly tag: number,
      readonly deadlineAtMs: number,
    ) {}

    readDone(err: Error | null, r: LocalReadResult | null): void {
      if (!leanDeadlines.settle(this)) return;
      if (err === null && r!.value !== null) {
        this.sink.valueFound(this.tag, r!.value, r!);
        return;
      }
      let reply: KvReply;
      try {
        if (err !== null) throw err;
        reply = valueReply(this.key, null, { 'cache-control': 'no-store', ...localReadHeaders(r!) });
      } catch (e) {
        reply = errorReply(e);
      }
      this.sink.replied(this.tag, reply);
    }

    expire(): void {
      this.sink.replied(this.tag, deadlineReply(`the ${readModeDefault} read`));
    }
  }

  /** A GET by the default read path (not `log`) the fast path read, when the backend takes waiters. */
  function leanGet(key: string, deadlineAtMs: number, sink: KvAnswerSink, tag: number): void {
    const problem = keyProblem(key, settings);
    if (problem) {
      sink.replied(tag, errorReply(new HttpError(400, 'bad-key', problem)));
      return;
    }
    const waiter = new GetWaiter(key, sink, tag, deadlineAtMs);
    leanDeadlines.add(waiter);
    backend.readTo!(key, readModeDefault as Exclude<ReadMode, 'log'>, backendMs({ deadlineAtMs } as RequestContext), waiter);
  }

  /** The answer of a fast-path request that took the promise path, told to its sink. */
  function answerLater(answer: Promise<KvReply>, sink: KvAnswerSink, tag: number): void {
    void answer.then((r) => sink.replied(tag, r));
  }

  const kv: KvOps = {
    put: (key, value, deadlineAtMs, sink, tag) => {
      if (backend.submitTo !== undefined) {
        leanPut(key, value, deadlineAtMs, sink, tag);
        return;
      }
      answerLater(
        kvOp(key, deadlineAtMs, async (ctx) => {
          if (value.length > settings.valueBytesMax) throw valueBytesTooLarge(value.length);
          return jsonReply(200, putAnswer((await submitKv(ctx, null, { op: 'put', key, value })).result));
        }),
        sink,
        tag,
      );
    },
    delete: (key, deadlineAtMs, sink, tag) =>
      answerLater(
        kvOp(key, deadlineAtMs, async (ctx) => jsonReply(200, deleteAnswer((await submitKv(ctx, null, { op: 'delete', key })).result))),
        sink,
        tag,
      ),
    get: (key, deadlineAtMs, sink, tag) => {
      if (backend.readTo !== undefined && readModeDefault !== 'log') {
        leanGet(key, deadlineAtMs, sink, tag);
        return;
      }
      answerLater(
        kvOp(key, deadlineAtMs, async (ctx) => {
          const r = await withDeadline(ctx, backend.read(key, readModeDefault as Exclude<ReadMode, 'log'>, backendMs(ctx)), `the ${readModeDefault} read`);
          return valueReply(key, r.value, { 'cache-control': 'no-store', ...localReadHeaders(r) });
        }),
        sink,
        tag,
      );
    },
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

  async function nodeAction(ctx: RequestContext, action: 'crash' | 'restart' | 'pause' | 'resume' | 'isolate'): Promise<void> {
    const id = parseNodeId(ctx.params[0]!);
    if (!backend.hasNode(id)) throw new HttpError(404, 'unknown-node', `there is no node ${id}`);
    const f = backend[action];
    if (typeof f !== 'function') throw new HttpError(501, 'not-supported', `this cluster cannot ${action} a node`);
    await withDeadline(ctx, Promise.resolve((f as (id: number) => Promise<void> | void).call(backend, id)), `${action} of node ${id}`);
    sendJson(ctx.res, 200, action === 'isolate' ? { ok: true, node: id, action, network: backend.status().network ?? null } : { ok: true, node: id, action });
  }

  /** A fault method of the backend, or 501 when it has none. */
  function faultCall<K extends 'cut' | 'setFaults' | 'clearFaults'>(name: K): NonNullable<ClusterBackend[K]> {
    const f = backend[name];
    if (typeof f !== 'function') throw new HttpError(501, 'not-supported', 'this cluster does not model link faults');
    return f.bind(backend) as NonNullable<ClusterBackend[K]>;
  }

  /** A non-empty list of known node ids in a JSON body field. */
  function nodeIdsField(value: unknown, field: string): number[] {
    if (!Array.isArray(value) || value.length === 0) throw new HttpError(400, 'bad-body', `"${field}" must be a non-empty array of node ids, got ${shown(JSON.stringify(value) ?? 'nothing')}`);
    const ids: number[] = [];
    for (const id of value) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new HttpError(400, 'bad-body', `"${field}" holds node ids (positive integers), got ${shown(JSON.stringify(id))}`);
      if (!backend.hasNode(id)) throw new HttpError(400, 'bad-body', `"${field}" names node ${id}, and there is no node ${id}; GET /cluster lists the nodes`);
      if (!ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  /** Refuses fields a body shape does not have. */
  function onlyFields(body: Record<string, unknown>, fields: readonly string[]): void {
    for (const k of Object.keys(body)) {
      if (!fields.includes(k)) throw new HttpError(400, 'bad-body', `unknown field ${shown(k)}; the fields are ${fields.join(', ')}`);
    }
  }

  async function cutLinks(ctx: RequestContext): Promise<void> {
    const body = await controlBody(ctx, '{ "from": [1], "to": [2, 3] }');
    onlyFields(body, ['from', 'to']);
    const from = nodeIdsField(body.from, 'from');
    const to = nodeIdsField(body.to, 'to');
    if (from.length === 1 && to.length === 1 && from[0] === to[0]) throw new HttpError(400, 'bad-body', `a node has no link to itself: "from" and "to" are both [${from[0]}]`);
    faultCall('cut')(from, to);
    sendJson(ctx.res, 200, { ok: true, from, to, network: backend.status().network ?? null });
  }

  async function setLinkFaults(ctx: RequestContext): Promise<void> {
    const shape = '{ "loss": 0.1, "delayMs": 20, "jitterMs": 10, "duplicate": 0.01, "reorder": 0.05, "from": [1], "to": [2] } (every field optional)';
    const body = await controlBody(ctx, shape);
    onlyFields(body, [...linkFaultFields, 'from', 'to']);
    const faults: Partial<LinkFaultSettings> = {};
    for (const k of linkFaultFields) {
      const v = body[k];
      if (v === undefined) continue;
      const probability = k === 'loss' || k === 'duplicate' || k === 'reorder';
      const ok = typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= (probability ? 1 : linkDelayMsMax);
      if (!ok) throw new HttpError(400, 'bad-body', probability ? `"${k}" is a probability from 0 to 1, got ${shown(JSON.stringify(v))}` : `"${k}" is milliseconds from 0 to ${linkDelayMsMax}, got ${shown(JSON.stringify(v))}`);
      faults[k] = v;
    }
    if (Object.keys(faults).length === 0) throw new HttpError(400, 'bad-body', `name at least one of ${linkFaultFields.join(', ')}: ${shape}`);
    const scope: { from?: number[]; to?: number[] } = {};
    if (body.from !== undefined) scope.from = nodeIdsField(body.from, 'from');
    if (body.to !== undefined) scope.to = nodeIdsField(body.to, 'to');
    faultCall('setFaults')(faults, scope);
    sendJson(ctx.res, 200, { ok: true, network: backend.status().network ?? null });
  }

  const listLimitDefault = 100;

  /** GET /kv: a page of keys (with their values) in key order, by a read path like GET /kv/:key. */
  async function listKeys(ctx: RequestContext): Promise<void> {
    const q = ctx.query;
    const { mode, nodeText } = readModeFrom(q, 'GET /kv');
    const via = nodeText === null ? undefined : parseNodeId(nodeText);
    if (via !== undefined && !backend.hasNode(via)) throw new HttpError(404, 'unknown-node', `there is no node ${via}`);
    const prefix = q.get('prefix') ?? '';
    const after = q.get('after');
    if (after !== null) {
      const problem = keyProblem(after, settings);
      if (problem) throw badParameter(`after= names the key to list after (the "next" of the page before): ${problem}`);
    }
    const limitText = q.get('limit');
    const limit = limitText === null ? listLimitDefault : /^\d{1,5}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= scanCountMax)) throw badParameter(`limit= is how many keys a page lists, from 1 to ${scanCountMax} (default ${listLimitDefault}), got ${shown(limitText ?? '')}`);
    const encoding = q.get('encoding') ?? 'utf8';
    if (encoding !== 'utf8' && encoding !== 'base64') throw badParameter(`encoding= is utf8 (the default) or base64, got ${shown(encoding)}`);
    const query = { q: 'list' as const, after, prefix, count: limit };
    const problem = queryProblem(query, settings);
    if (problem) throw badParameter(problem);
    // A listing is a query, not a command: read=log is served by the leader's read index, as linearizable.
    const path = mode === 'log' ? 'index' : mode;
    const r = await withDeadline(ctx, backend.read(encodeKvQuery(query), path, backendMs(ctx), { app: 'kv', ...(via === undefined ? {} : { via }) }), `the ${mode} listing`);
    const page = decodeListAnswer(r.value);
    const items: { key: string; value: string }[] = [];
    for (const { key, value } of page.items) {
      if (encoding === 'base64') {
        items.push({ key: Buffer.from(key, 'utf8').toString('base64'), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') });
        continue;
      }
      const v = bytesToJson(value, 'utf8');
      if (v.encoding !== 'utf8') throw new HttpError(422, 'not-utf8', `the value of key ${shown(key)} is not valid UTF-8, so this page cannot be shown as text; list with encoding=base64 (keys and values are then base64)`);
      items.push({ key, value: v.current });
    }
    const next = page.more && items.length > 0 ? page.items[page.items.length - 1]!.key : null;
    // `next` stays text in either encoding (keys are always valid Unicode): it goes back as after= as is.
    const body = JSON.stringify({ items, encoding, next });
    ctx.res.writeHead(200, { ...localReadHeaders(r), 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
    ctx.res.end(body);
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
    const answer = await withDeadline(ctx, add(role as MemberRole, backendMs(ctx)), `adding a ${role}`);
    sendJson(ctx.res, 200, answer);
  }

  async function memberAction(ctx: RequestContext, action: 'removeMember' | 'promote'): Promise<void> {
    const id = memberFrom(ctx);
    const f = membershipCall(action);
    sendJson(ctx.res, 200, await withDeadline(ctx, f(id, backendMs(ctx)), `${action === 'promote' ? 'promoting' : 'removing'} node ${id}`));
  }

  async function transfer(ctx: RequestContext): Promise<void> {
    const body = await controlBody(ctx, '{ "to": <node id> }');
    const to = body.to;
    if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1) throw new HttpError(400, 'bad-body', `"to" must be a node id (a positive integer), got ${JSON.stringify(to)}`);
    if (!backend.hasNode(to)) throw new HttpError(404, 'unknown-node', `there is no node ${to}; GET /cluster lists the members`);
    const f = membershipCall('transfer');
    sendJson(ctx.res, 200, await withDeadline(ctx, f(to, backendMs(ctx)), `moving leadership to node ${to}`));
  }

  const routes: Array<{ pattern: RegExp; route: Route }> = [
    {
      pattern: /^\/cluster$/,
      route: { name: '/cluster', methods: { GET: (ctx) => sendJson(ctx.res, 200, publicStatus(backend.status())) } },
    },
    {
      pattern: /^\/cluster\/members$/,
      route: { name: '/cluster/members', methods: { POST: addMember } },
    },
    {
      pattern: /^\/cluster\/members\/([^/]+)$/,
      route: { name: '/cluster/members/:id', methods: { DELETE: (ctx) => memberAction(ctx, 'removeMember') } },
    },
    {
      pattern: /^\/cluster\/members\/([^/]+)\/promote$/,
      route: { name: '/cluster/members/:id/promote', methods: { POST: (ctx) => memberAction(ctx, 'promote') } },
    },
    {
      pattern: /^\/cluster\/transfer$/,
      route: { name: '/cluster/transfer', methods: { POST: transfer } },
    },
    ...(['crash', 'restart', 'pause', 'resume', 'isolate'] as const).map((action) => ({
      pattern: new RegExp(`^\\/cluster\\/nodes\\/([^/]+)\\/${action}$`),
      route: { name: `/cluster/nodes/:id/${action}`, fault: true, methods: { POST: (ctx: RequestContext) => nodeAction(ctx, action) } },
    })),
    {
      pattern: /^\/cluster\/partition$/,
      route: {
        name: '/cluster/partition',
        fault: true,
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
      pattern: /^\/cluster\/cut$/,
      route: { name: '/cluster/cut', fault: true, methods: { POST: cutLinks } },
    },
    {
      pattern: /^\/cluster\/faults$/,
      route: {
        name: '/cluster/faults',
        fault: true,
        methods: {
          POST: setLinkFaults,
          DELETE: (ctx) => {
            faultCall('clearFaults')();
            sendJson(ctx.res, 200, { ok: true, network: backend.status().network ?? null });
          },
        },
      },
    },
    {
      pattern: /^\/cluster\/heal$/,
      route: {
        name: '/cluster/heal',
        fault: true,
        methods: {
          POST: (ctx) => {
            backend.heal();
            sendJson(ctx.res, 200, { ok: true });
          },
        },
      },
    },
    {
      pattern: /^\/kv$/,
      route: { name: '/kv', methods: { GET: listKeys }, params: { GET: ['prefix', 'after', 'limit', 'read', 'node', 'encoding'] } },
    },
    {
      pattern: /^\/kv\/([^/]*)$/,
      route: {
        name: '/kv/:key',
        params: { GET: ['read', 'node'] },
        methods: {
          GET: async (ctx) => {
            const key = keyFrom(ctx);
            const identity = externalIdentity(ctx.req);
            const { mode, nodeText } = readModeFrom(ctx.query, 'GET /kv/:key');
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
              const r = await withDeadline(ctx, backend.read(key, mode, backendMs(ctx), via === undefined ? {} : { via }), `the ${mode} read`);
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
        name: '/kv/:key/cas',
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
        name: '/events',
        methods: {
          GET: (ctx) => {
            if (ctx.req.method === 'HEAD') {
              ctx.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
              ctx.res.end();
              return;
            }
            if (streams.size >= settings.sseClientsMax) {
              throw new HttpError(503, 'too-many-subscribers', `${settings.sseClientsMax} event subscribers are connected already`, {
                'retry-after': String(settings.retryAfterSeconds),
              });
            }
            const stop = streamEvents(ctx.res, backend.events().pipe(map(publicEvent)), settings, () => streams.delete(stop));
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
      // Before anything else, on every path (unknown ones too: a 404 would tell a stranger what exists).
      if (gate !== null && !gate.allows(req.headers.authorization)) throw gate.refusal(req.headers.authorization);
      if (ownsDashboardPath(path)) {
        dashboard ??= createDashboard(backend, { watchersMax: settings.sseClientsMax });
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
        // HEAD answers as GET does; node:http leaves the body out.
        const as = method === 'HEAD' && route.methods.GET !== undefined ? 'GET' : method;
        const run = route.methods[as];
        if (!run) throw methodNotAllowed(route, method, path);
        if (route.fault === true && !settings.faultApi) {
          throw new HttpError(403, 'fault-api-disabled', `${method} ${route.name} injects a fault, and this API runs with the fault endpoints off (concur start --no-fault-api); restart it without that flag to use them`);
        }
        checkParams(query, route.params?.[as] ?? [], `${method} ${route.name}`);
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
    authorized: gate === null ? null : (header) => gate.allows(header),
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
