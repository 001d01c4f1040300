// Serves the dashboard on the API's port: the page at `/`, its script and style, the browser
// libraries from the package's own node_modules (nothing is fetched from the internet), and the
// live feed as server-sent events at `/dashboard/feed`.
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError, sendError } from '../http/errors.ts';
import { DashboardFeed, feedDefaults, type FeedBackend, type FeedSettings, type FeedUpdate, type SecondSample, type TimelineItem } from './feed.ts';
import { isLiveSource } from './source.ts';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
/** A package's directory, found from its entry point (some packages do not export package.json). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, 'package.json')) || basename(dir) !== name) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${name} package's directory; run npm ci`);
    dir = up;
  }
  return dir;
}

interface Asset {
  file: string;
  type: string;
  /** Vendor files never change within a version: the browser may keep them. */
  immutable: boolean;
}

const js = 'text/javascript; charset=utf-8';
const assets: Record<string, () => Asset> = {
  '/': () => ({ file: join(here, 'assets/index.html'), type: 'text/html; charset=utf-8', immutable: false }),
  '/dashboard/app.js': () => ({ file: join(here, 'assets/app.js'), type: js, immutable: false }),
  '/dashboard/scenarios.js': () => ({ file: join(here, 'assets/scenarios.js'), type: js, immutable: false }),
  '/dashboard/style.css': () => ({ file: join(here, 'assets/style.css'), type: 'text/css; charset=utf-8', immutable: false }),
  '/dashboard/vendor/preact.js': () => ({ file: join(packageDir('preact'), 'dist/preact.module.js'), type: js, immutable: true }),
  '/dashboard/vendor/hooks.js': () => ({ file: join(packageDir('preact'), 'hooks/dist/hooks.module.js'), type: js, immutable: true }),
  '/dashboard/vendor/htm.js': () => ({ file: join(packageDir('htm'), 'dist/htm.module.js'), type: js, immutable: true }),
  '/dashboard/vendor/htm-preact.js': () => ({ file: join(packageDir('htm'), 'preact/index.module.js'), type: js, immutable: true }),
  '/dashboard/vendor/uplot.js': () => ({ file: join(packageDir('uplot'), 'dist/uPlot.esm.js'), type: js, immutable: true }),
  '/dashboard/vendor/uplot.css': () => ({ file: join(packageDir('uplot'), 'dist/uPlot.min.css'), type: 'text/css; charset=utf-8', immutable: true }),
};

export interface DashboardOptions {
  feed?: Partial<FeedSettings>;
  /** A subscriber whose socket holds more than this many unsent bytes skips updates until it drains. */
  bufferedBytesMax?: number;
  heartbeatMs?: number;
  /** Browsers watching at once, at most (more answer 503). */
  watchersMax?: number;
}

/** Whether `path` is the dashboard's (then a dashboard's `serve` answers it). */
export function ownsDashboardPath(path: string): boolean {
  return path === '/' || path.startsWith('/dashboard/');
}

export interface Dashboard {
  serve(req: IncomingMessage, res: ServerResponse, path: string): void;
  readonly watchers: number;
  close(): void;
}

export function createDashboard(backend: FeedBackend, opts: DashboardOptions = {}): Dashboard {
  const source = isLiveSource(backend) ? backend : null;
  const feed = new DashboardFeed(backend, source, source?.protocol ?? 'unknown', opts.feed);
  const bufferedBytesMax = opts.bufferedBytesMax ?? 256 * 1024;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const watchersMax = opts.watchersMax ?? 64;
  // What a browser that stopped reading is owed stays bounded: the history's own lengths.
  const owedMax = Math.max(feedDefaults.secondsKept, feedDefaults.timelineKept);
  const cache = new Map<string, Buffer>();
  const streams = new Set<() => void>();

  function sendAsset(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = assets[path]!();
    let body = cache.get(path);
    if (body === undefined) {
      body = readFileSync(asset.file);
      cache.set(path, body);
    }
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': String(body.byteLength),
      'cache-control': asset.immutable ? 'public, max-age=86400' : 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function sendFeed(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // Updates a slow browser skipped still owe it their new seconds and timeline items.
    let owedSeconds: SecondSample[] = [];
    let owedTimeline: TimelineItem[] = [];
    const { hello, stop: unsubscribe } = feed.subscribe((u: FeedUpdate) => {
      if (res.writableLength > bufferedBytesMax) {
        owedSeconds = [...owedSeconds, ...u.seconds].slice(-owedMax);
        owedTimeline = [...owedTimeline, ...u.timeline].slice(-owedMax);
        return;
      }
      const out = owedSeconds.length + owedTimeline.length === 0 ? u : { ...u, seconds: [...owedSeconds, ...u.seconds], timeline: [...owedTimeline, ...u.timeline] };
      owedSeconds = [];
      owedTimeline = [];
      res.write(`data: ${JSON.stringify(out)}\n\n`);
    });
    res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    let closed = false;
    const stop = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(stop);
      if (!res.writableEnded) res.end();
    };
    streams.add(stop);
    res.on('close', stop);
  }

  return {
    serve(req, res, path) {
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD') {
        sendError(res, new HttpError(405, 'method-not-allowed', `${method} is not supported on ${path}; use GET`, { allow: 'GET, HEAD' }));
        return;
      }
      if (path === '/dashboard/feed') {
        if (method === 'GET' && feed.watchers >= watchersMax) {
          sendError(res, new HttpError(503, 'too-many-watchers', `${watchersMax} browsers are watching already; close one`, { 'retry-after': '5' }));
          return;
        }
        if (method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' }).end();
          return;
        }
        sendFeed(res);
        return;
      }
      if (!(path in assets)) {
        sendError(res, new HttpError(404, 'not-found', `no such dashboard file: ${path}`));
        return;
      }
      sendAsset(req, res, path);
    },
    get watchers() {
      return feed.watchers;
    },
    close() {
      for (const stop of [...streams]) stop();
      feed.close();
    },
  };
}

