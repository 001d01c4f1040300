// Server-sent events: streams a backend's rxjs event stream to one HTTP response, with heartbeat
// comments, a bound on how far a slow subscriber may fall behind, and cleanup on disconnect;
// and an app route's own event stream (streamAppEvents) the same way.
// Must never keep a subscription or timer alive after its response has closed.
import type { ServerResponse } from 'node:http';
import type { Observable, Subscription } from 'rxjs';
import type { AppEventStream } from '../platform/app.ts';
import type { ClusterEvent } from './backend.ts';

export interface SseLimits {
  sseHeartbeatMs: number;
  sseBufferedBytesMax: number;
}

// Bytes travel as base64 and bigints as decimal strings: JSON has neither.
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return value;
}

/** Formats one event as an SSE frame. JSON.stringify escapes newlines, so one data line suffices. */
export function sseFrame(event: ClusterEvent): string {
  return `data: ${JSON.stringify(event, jsonReplacer)}\n\n`;
}

/** Starts streaming; returns a function that ends the stream (idempotent). */
export function streamEvents(res: ServerResponse, events: Observable<ClusterEvent>, limits: SseLimits, onClosed: () => void): () => void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // Reverse proxies (nginx) would otherwise hold events back to fill a buffer.
    'x-accel-buffering': 'no',
  });
  // An immediate comment flushes the headers, so the client knows it is subscribed.
  res.write(': subscribed\n\n');

  let closed = false;
  const write = (text: string): void => {
    if (closed) return;
    res.write(text);
    // The socket is not draining: rather than queue without bound, drop this subscriber.
    if (res.writableLength > limits.sseBufferedBytesMax) stop();
  };
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), limits.sseHeartbeatMs);
  // Assigned after subscribe returns; a stream that completes synchronously stops before that.
  let subscription: Subscription | undefined;
  subscription = events.subscribe({
    next: (event) => write(sseFrame(event)),
    error: (err: unknown) => {
      write(`event: error\ndata: ${JSON.stringify({ error: String((err as Error)?.message ?? err), code: 'event-stream-failed' })}\n\n`);
      stop();
    },
    complete: () => stop(),
  });

  function cleanup(): void {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    subscription?.unsubscribe();
    onClosed();
  }
  function stop(): void {
    const wasOpen = !closed;
    cleanup();
    if (wasOpen) res.end();
  }
  // 'close' fires when the client disconnects as well as after our own end().
  res.on('close', cleanup);
  if (closed) subscription.unsubscribe();
  return stop;
}

/** One SSE frame of an app's event: optional id and name, then the data as JSON (one line). */
export function appSseFrame(data: unknown, opts: { event?: string; id?: string | number } = {}): string {
  // A field may not hold a line break: it would end the field (and could forge another).
  const clean = (v: string | number) => String(v).replace(/[\r\n]/g, ' ');
  const id = opts.id === undefined ? '' : `id: ${clean(opts.id)}\n`;
  const event = opts.event === undefined ? '' : `event: ${clean(opts.event)}\n`;
  return `${id}${event}data: ${JSON.stringify(data ?? null, jsonReplacer)}\n\n`;
}

/**
 * Streams an app route's events (AppEventsAnswer, apps/platform/app.ts) to one HTTP response:
 * the headers at once, heartbeat comments, a bound on a slow client's backlog, and an abort
 * signal for the app's loop when the client leaves. Returns a function that ends the stream.
 */
export function streamAppEvents(
  res: ServerResponse,
  events: (stream: AppEventStream) => Promise<void>,
  limits: SseLimits,
  lastEventId: string | null,
  onClosed: () => void,
): () => void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': subscribed\n\n');
  const abort = new AbortController();
  let closed = false;
  const write = (text: string): void => {
    if (closed) return;
    res.write(text);
    if (res.writableLength > limits.sseBufferedBytesMax) stop();
  };
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), limits.sseHeartbeatMs);
  function cleanup(): void {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    abort.abort();
    onClosed();
  }
  function stop(): void {
    const wasOpen = !closed;
    cleanup();
    if (wasOpen) res.end();
  }
  res.on('close', cleanup);
  const stream = {
    send: (data: unknown, opts?: { event?: string; id?: string | number }) => write(appSseFrame(data, opts)),
    comment: (text: string) => write(`: ${text.replace(/[\r\n]/g, ' ')}\n\n`),
    signal: abort.signal,
    lastEventId,
  };
  // Through a promise, so a throw before the app's first await ends the stream the same way.
  Promise.resolve()
    .then(() => events(stream))
    .then(
      () => stop(),
      (err: unknown) => {
        write(`event: error\ndata: ${JSON.stringify({ error: String((err as Error)?.message ?? err), code: 'event-stream-failed' })}\n\n`);
        stop();
      },
    );
  return stop;
}
