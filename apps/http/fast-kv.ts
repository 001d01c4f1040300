// The KV fast path in front of node:http: connections are accepted here, and plain KV requests
// (PUT, GET, DELETE on /kv/<key>, a literal key, no query, a Content-Length body) are parsed and
// answered on the socket directly, in order, several per read when a client pipelines. Anything
// else — another route, a query, percent-encoding, chunked bodies, Expect, client identity
// headers, HEAD, oversized headers or bodies, a missing or wrong token when the API has one —
// hands the connection to node:http as it stands,
// which then serves it (and any errors) as before. node:http costs ~66 µs of main-thread CPU
// per request on the development machine, this ~30: the main thread is what bounds a front door.
// Must never answer out of order, nor swallow a byte node:http should see.
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { KvOps, KvReply } from './server.ts';

export interface FastKvSettings {
  /** Header block bytes at most on the fast path (beyond: node:http, which answers 431). */
  headerBytesMax: number;
  valueBytesMax: number;
  requestDeadlineMs: number;
  /** An idle keep-alive connection is closed after this long (as node:http's keepAliveTimeout). */
  keepAliveMs: number;
  /** Requests read ahead on one connection before it stops reading until answers go out. */
  pipelinedMax: number;
  /** With a token: whether an Authorization value carries it (else node:http answers the 401). */
  authorized?: (header: string | undefined) => boolean;
}

const statusText: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

let dateText = '';
let dateAt = 0;
/** The Date header, as node:http sends it (computed once a second). */
function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000) {
    dateAt = now - (now % 1000);
    dateText = new Date(dateAt).toUTCString();
  }
  return dateText;
}

const crlfcrlf = Buffer.from('\r\n\r\n');

export function encodeReply(r: KvReply): Buffer {
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  let head = `HTTP/1.1 ${r.status} ${statusText[r.status] ?? 'Unknown'}\r\n`;
  for (const name in r.headers) head += `${name}: ${r.headers[name]}\r\n`;
  head += `content-length: ${body.byteLength}\r\ndate: ${httpDate()}\r\nconnection: keep-alive\r\n\r\n`;
  const h = Buffer.from(head, 'latin1');
  return body.byteLength === 0 ? h : Buffer.concat([h, body], h.byteLength + body.byteLength);
}

interface Parsed {
  method: 'GET' | 'PUT' | 'DELETE';
  key: string;
  body: Uint8Array | null;
  /** Bytes the request took. */
  bytes: number;
}

/** Why a request cannot take the fast path (node:http gets the connection). */
export const handOff = Symbol('hand off');
/** Not all of the request has arrived. */
export const incomplete = Symbol('incomplete');

const keyChar = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;

/** Parses one request at the start of `buf`, if it is a fast-path request. */
export function parseRequest(buf: Buffer, s: FastKvSettings): Parsed | typeof handOff | typeof incomplete {
  const end = buf.indexOf(crlfcrlf);
  if (end < 0) return buf.byteLength > s.headerBytesMax ? handOff : incomplete;
  if (end > s.headerBytesMax) return handOff;
  const head = buf.toString('latin1', 0, end);
  const lineEnd = head.indexOf('\r\n');
  const line = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ');
  if (sp1 < 0 || sp2 <= sp1 || line.slice(sp2 + 1) !== 'HTTP/1.1') return handOff;
  const method = line.slice(0, sp1);
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') return handOff;
  const target = line.slice(sp1 + 1, sp2);
  if (!target.startsWith('/kv/')) return handOff;
  const key = target.slice(4);
  // Percent-encoding, a query, a deeper path or an empty key: node:http's routes decide.
  if (!keyChar.test(key)) return handOff;
  let contentLength = -1;
  let authorization: string | undefined;
  if (lineEnd >= 0) {
    let at = lineEnd + 2;
    while (at < head.length) {
      let next = head.indexOf('\r\n', at);
      if (next < 0) next = head.length;
      const colon = head.indexOf(':', at);
      if (colon < 0 || colon > next) return handOff;
      const name = head.slice(at, colon).toLowerCase();
      if (name === 'content-length') {
        if (contentLength >= 0) return handOff;
        const v = head.slice(colon + 1, next).trim();
        if (!/^\d{1,12}$/.test(v)) return handOff;
        contentLength = Number(v);
      } else if (name === 'transfer-encoding' || name === 'expect' || name === 'x-client-id' || name === 'x-request-seq' || name === 'upgrade') {
        return handOff;
      } else if (name === 'connection' && /close|upgrade/i.test(head.slice(colon + 1, next))) {
        return handOff;
      } else if (name === 'authorization') {
        if (authorization !== undefined) return handOff;
        authorization = head.slice(colon + 1, next).trim();
      }
      at = next + 2;
    }
  }
  if (s.authorized !== undefined && !s.authorized(authorization)) return handOff;
  const bodyStart = end + 4;
  if (method === 'PUT') {
    if (contentLength < 0 || contentLength > s.valueBytesMax) return handOff;
  } else if (contentLength > 0) return handOff;
  const length = Math.max(0, contentLength);
  // A body still arriving: node:http reads it, with its deadline (408) and its limits.
  if (buf.byteLength < bodyStart + length) return handOff;
  return { method, key, body: method === 'PUT' ? buf.subarray(bodyStart, bodyStart + length) : null, bytes: bodyStart + length };
}

/** One connection on the fast path until (if ever) it is handed to node:http. */
class FastConnection {
  private buf: Buffer | null = null;
  /** Answers in request order; null while the request runs. */
  private readonly pending: (Buffer | null)[] = [];
  private head = 0;
  private handingOff = false;
  private closing = false;
  private paused = false;
  private flushQueued = false;
  private out: Buffer[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly kv: KvOps,
    private readonly s: FastKvSettings,
    private readonly http: HttpServer,
    private readonly onGone: () => void,
  ) {
    socket.setNoDelay(true);
    socket.setTimeout(s.keepAliveMs, () => {
      if (this.head === this.pending.length) socket.destroy();
    });
    socket.on('data', this.onData);
    socket.once('close', onGone);
    socket.on('error', () => socket.destroy());
  }

  get busy(): boolean {
    return this.head < this.pending.length;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf === null || this.buf.byteLength === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.parse();
  };

  private parse(): void {
    while (this.buf !== null && this.buf.byteLength > 0 && !this.handingOff && !this.closing) {
      if (this.pending.length - this.head >= this.s.pipelinedMax) {
        this.pause();
        return;
      }
      const p = parseRequest(this.buf, this.s);
      if (p === incomplete) return;
      if (p === handOff) {
        this.handingOff = true;
        this.maybeHandOff();
        return;
      }
      // The body is a view of the read buffer: copy before the next read can reuse it.
      const body = p.body === null ? null : Uint8Array.prototype.slice.call(p.body);
      this.buf = this.buf.subarray(p.bytes);
      this.run(p.method, p.key, body);
    }
  }

  private run(method: Parsed['method'], key: string, body: Uint8Array | null): void {
    const slot = this.pending.length;
    this.pending.push(null);
    const deadlineAtMs = Date.now() + this.s.requestDeadlineMs;
    const answer = method === 'PUT' ? this.kv.put(key, body!, deadlineAtMs) : method === 'GET' ? this.kv.get(key, deadlineAtMs) : this.kv.delete(key, deadlineAtMs);
    void answer.then((r) => this.answered(slot, encodeReply(r)));
  }

  private answered(slot: number, bytes: Buffer): void {
    this.pending[slot] = bytes;
    while (this.head < this.pending.length && this.pending[this.head] !== null) {
      this.out.push(this.pending[this.head]!);
      this.pending[this.head++] = null;
    }
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Answers that complete in the same turn go out in one write.
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.out.length > 0 && !this.socket.destroyed) {
      this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out));
      this.out = [];
    }
    if (this.closing && !this.busy) {
      this.socket.end();
      return;
    }
    if (this.paused && this.pending.length - this.head < this.s.pipelinedMax / 2) {
      this.paused = false;
      this.socket.resume();
      this.parse();
    }
    this.maybeHandOff();
  };

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /** Once every fast answer is out: node:http takes the connection, with the bytes not parsed here. */
  private maybeHandOff(): void {
    if (!this.handingOff || this.busy || this.out.length > 0 || this.flushQueued) return;
    const rest = this.buf;
    this.buf = null;
    this.socket.off('data', this.onData);
    this.socket.setTimeout(0);
    this.socket.off('close', this.onGone);
    this.onGone();
    this.http.emit('connection', new HandedOff(this.socket, rest));
  }

  /** Shutting down: an idle connection ends now, a busy one once its answers are out. */
  end(): void {
    this.closing = true;
    if (!this.busy) this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A connection as node:http sees it after a hand-off: a stream that yields first what the fast
 * path read and did not parse, then what the socket reads. (Handing node:http the socket itself
 * lost bytes: it reads a plain socket's handle from C++, around the stream already read from.)
 */
class HandedOff extends Duplex {
  private timeoutListening = false;

  constructor(
    private readonly socket: Socket,
    rest: Buffer | null,
  ) {
    super({ allowHalfOpen: true });
    if (rest !== null && rest.byteLength > 0) this.push(rest);
    socket.on('data', (d: Buffer) => {
      if (!this.push(d)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }

  setTimeout(ms: number, onTimeout?: () => void): this {
    if (!this.timeoutListening) {
      this.timeoutListening = true;
      this.socket.on('timeout', () => this.emit('timeout'));
    }
    if (onTimeout) this.once('timeout', onTimeout);
    this.socket.setTimeout(ms);
    return this;
  }

  setNoDelay(on?: boolean): this {
    this.socket.setNoDelay(on);
    return this;
  }

  setKeepAlive(on?: boolean, delayMs?: number): this {
    this.socket.setKeepAlive(on, delayMs);
    return this;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  address(): ReturnType<Socket['address']> {
    return this.socket.address();
  }
}

/** The fast path's connections (so a server can close them). */
export class FastKvFront {
  private readonly connections = new Set<FastConnection>();

  constructor(
    private readonly kv: KvOps,
    private readonly s: FastKvSettings,
    private readonly http: HttpServer,
  ) {}

  /** The net server's connection listener. */
  readonly accept = (socket: Socket): void => {
    const c: FastConnection = new FastConnection(socket, this.kv, this.s, this.http, () => this.connections.delete(c));
    this.connections.add(c);
  };

  closeIdle(): void {
    for (const c of [...this.connections]) c.end();
  }

  closeAll(): void {
    for (const c of [...this.connections]) c.destroy();
  }

  get size(): number {
    return this.connections.size;
  }
}
