// The apps' own HTTP routes, mounted beside the KV API: each app route gets a context that
// proposes the app's commands (wrapped in the app's envelope under a session lane, so a retry
// inside the cluster applies once) and queries the app linearizably (a read-index read). Errors
// keep the API's JSON shape. Must never reach past the ClusterBackend interface.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppHttpError, type App, type AppHttpContext, type AppRoute } from '../platform/app.ts';
import { encodeAppCommand, routerErrorOf } from '../platform/envelope.ts';
import type { ClusterBackend } from './backend.ts';
import { readBodyBytes } from './body.ts';
import { HttpError, sendJson } from './errors.ts';
import type { SessionLanes } from './sessions.ts';
import { httpApiSettings } from './settings.ts';
import { type SseLimits, streamAppEvents } from './sse.ts';

export interface MountedRoute {
  pattern: RegExp;
  method: string;
  params: string[];
  run(req: IncomingMessage, res: ServerResponse, match: RegExpExecArray, query: URLSearchParams): Promise<void>;
}

interface Deps {
  backend: ClusterBackend;
  lanes: SessionLanes;
  bodyBytesMax: number;
  requestDeadlineMs: number;
  /** The API's mapping of backend errors to HTTP errors. */
  fromBackendError(err: unknown): HttpError;
  /** Limits of the apps' event streams (default: the API's defaults). */
  sse?: SseLimits & { sseClientsMax: number };
}

function compile(path: string): { pattern: RegExp; params: string[] } {
  const params: string[] = [];
  const re = path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        params.push(seg.slice(1));
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('\\/');
  return { pattern: new RegExp(`^${re}$`), params };
}

function contextFor(app: App, d: Deps): AppHttpContext {
  return {
    async submit(command, timeoutMs) {
      const lane = d.lanes.acquire();
      if (lane === null) throw new HttpError(503, 'overloaded', 'too many requests in flight; retry shortly', { 'retry-after': '1' });
      try {
        const r = await d.backend.submit(encodeAppCommand(app.name, lane.clientId, lane.seq, command), timeoutMs);
        const e = routerErrorOf(r.result);
        if (e !== null) throw new HttpError(e.error === 'stale-request' ? 409 : 500, e.error, e.message);
        return r;
      } finally {
        d.lanes.release(lane);
      }
    },
    async query(q, timeoutMs) {
      const r = await d.backend.read(q, 'index', timeoutMs, { app: app.name });
      return { value: r.value, index: r.index };
    },
  };
}

function mount(app: App, route: AppRoute, d: Deps, streams: Set<() => void>): MountedRoute {
  const { pattern, params } = compile(route.path);
  const ctx = contextFor(app, d);
  return {
    pattern,
    method: route.method,
    params,
    async run(req, res, match, query) {
      const values: Record<string, string> = {};
      params.forEach((name, i) => {
        try {
          values[name] = decodeURIComponent(match[i + 1]!);
        } catch {
          throw new HttpError(400, 'bad-path', `the ${name} in the path is not valid percent-encoding: "${match[i + 1]}"`);
        }
      });
      let body: unknown;
      if (route.method !== 'GET') {
        const bytes = await readBodyBytes(req, d.bodyBytesMax, d.requestDeadlineMs, (detail) => new HttpError(413, 'body-too-large', `the request body is too large (${detail}); the limit is ${d.bodyBytesMax} bytes`));
        if (bytes.length > 0) {
          try {
            body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
          } catch (err) {
            throw new HttpError(400, 'bad-json', `the body is not valid JSON: ${(err as Error).message}`);
          }
        }
      }
      try {
        // Aborts when the client goes away before the answer (a long wait need not go on for nobody).
        const gone = new AbortController();
        const onClose = () => {
          if (!res.writableEnded) gone.abort();
        };
        res.once('close', onClose);
        let out: Awaited<ReturnType<AppRoute['handle']>>;
        try {
          out = await route.handle({ params: values, query, body, signal: gone.signal }, ctx);
        } finally {
          if (!('events' in (out! ?? {}))) res.off('close', onClose);
        }
        if ('events' in out) {
          // A stream outlives the request's bookkeeping: it runs until the client leaves.
          const limits = d.sse ?? httpApiSettings();
          if (route.method !== 'GET') throw new Error(`app ${app.name}: ${route.method} ${route.path} answered an event stream; only GET routes may`);
          if (streams.size >= limits.sseClientsMax) {
            throw new HttpError(503, 'too-many-subscribers', `${limits.sseClientsMax} app event streams are open already`, { 'retry-after': '1' });
          }
          const lastId = req.headers['last-event-id'];
          const stop = streamAppEvents(res, (s) => out.events(s), limits, typeof lastId === 'string' ? lastId : null, () => streams.delete(stop));
          if (!res.writableEnded) streams.add(stop);
          return;
        }
        sendJson(res, out.status, out.body);
      } catch (err) {
        if (err instanceof AppHttpError) {
          const unavailable = err.status === 503;
          throw new HttpError(err.status, unavailable ? 'unavailable' : err.status === 409 ? 'conflict' : 'bad-request', err.message, unavailable ? { 'retry-after': '1' } : {}, err.extra);
        }
        throw d.fromBackendError(err);
      }
    },
  };
}

/** Every route of every app the backend runs. */
export function mountAppRoutes(d: Deps): MountedRoute[] & { closeStreams(): void } {
  const streams = new Set<() => void>();
  const out = Object.assign([] as MountedRoute[], {
    /** Ends every open app event stream (the server is closing). */
    closeStreams: () => {
      for (const stop of [...streams]) stop();
    },
  });
  for (const app of d.backend.apps ?? []) {
    for (const r of app.routes ?? []) {
      if (/^\/(kv|cluster|events)(\/|$)/.test(r.path)) throw new Error(`app ${app.name}: route ${r.path} is the KV or cluster API's; mount it elsewhere`);
      out.push(mount(app, r, d, streams));
    }
  }
  return out;
}
