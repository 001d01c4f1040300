// The KV fast path in front of node:http: connections are accepted here, and plain KV requests
// (PUT, GET, DELETE on /kv/<key>, a literal key, no query, a Content-Length body) are parsed and
// answered on the socket directly, in order, several per read when a client pipelines. Anything
// else — another route, a query, percent-encoding, chunked bodies, Expect, client identity
// headers, HEAD, oversized headers or bodies, a missing or wrong token when the API has one —
// hands the connection to node:http as it stands, which then serves it (and any errors) as before.
// The main thread is what bounds a front door: on the 2-core development machine node:http costs
// ~66 µs of its CPU per request, a bare socket that answers a fixed string unread ~36, and this
// path ~44 over a backend that answers at once (parse, command, answer from reply-bytes.ts, all
// of a turn's writes after its I/O). Must never answer out of order, nor swallow a byte node:http
// should see.
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { KvAnswerSink, KvOps, KvReply } from './server.ts';
import { encodeIndexReply, encodeReply, encodeValueReply, type ReadPosition } from './reply-bytes.ts';

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

interface Parsed {
  method: 'GET' | 'PUT' | 'DELETE';
  key: string;
  /** Where the body starts in the buffer, and its length (0 without one). */
  bodyAt: number;
  bodyBytes: number;
  /** Where the request ends in the buffer (the next one starts). */
  end: number;
}

/** Why a request cannot take the fast path (node:http gets the connection). */
export const handOff = Symbol('hand off');
/** Not all of the request has arrived. */
export const incomplete = Symbol('incomplete');

const crlfcrlf = Buffer.from('\r\n\r\n');
const keyChar = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;
const httpVersion = ' HTTP/1.1';

/** Whether head[at, end) is `lower` (lower-case ASCII), ignoring the case of letters. */
function nameIs(head: string, at: number, end: number, lower: string): boolean {
  if (end - at !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = head.charCodeAt(at + i);
    if ((c >= 65 && c <= 90 ? c | 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** A Content-Length value in head[at, end): 1 to 12 digits between spaces or tabs, else -1. */
function lengthValue(head: string, at: number, end: number): number {
  let c = head.charCodeAt(at);
  while (at < end && (c === 32 || c === 9)) c = head.charCodeAt(++at);
  c = head.charCodeAt(end - 1);
  while (end > at && (c === 32 || c === 9)) c = head.charCodeAt(--end - 1);
  if (end === at || end - at > 12) return -1;
  let n = 0;
  for (let i = at; i < end; i++) {
    const d = head.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Parses one request at `at` in `buf`, if it is a fast-path request. Only what the fast path
 * needs is read: the request line, and the few headers that decide or change it (others are
 * skipped by length, without a string made for their name).
 */
export function parseRequest(buf: Buffer, s: FastKvSettings, at = 0): Parsed | typeof handOff | typeof incomplete {
  const headEnd = buf.indexOf(crlfcrlf, at);
  if (headEnd < 0) return buf.byteLength - at > s.headerBytesMax ? handOff : incomplete;
  if (headEnd - at > s.headerBytesMax) return handOff;
  const head = buf.toString('latin1', at, headEnd);
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  let method: Parsed['method'];
  let keyAt: number;
  if (head.startsWith('PUT /kv/')) {
    method = 'PUT';
    keyAt = 8;
  } else if (head.startsWith('GET /kv/')) {
    method = 'GET';
    keyAt = 8;
  } else if (head.startsWith('DELETE /kv/')) {
    method = 'DELETE';
    keyAt = 11;
  } else return handOff;
  const keyEnd = lineEnd - httpVersion.length;
  if (keyEnd <= keyAt || !head.startsWith(httpVersion, keyEnd)) return handOff;
  const key = head.slice(keyAt, keyEnd);
  // Percent-encoding, a query, a deeper path, a space: node:http's routes decide.
  if (!keyChar.test(key)) return handOff;
  let contentLength = -1;
  let authorization: string | undefined;
  let line = lineEnd + 2;
  while (line < head.length) {
    let next = head.indexOf('\r\n', line);
    if (next < 0) next = head.length;
    const colon = head.indexOf(':', line);
    if (colon < 0 || colon > next) return handOff;
    switch (colon - line) {
      case 14:
        if (nameIs(head, line, colon, 'content-length')) {
          if (contentLength >= 0) return handOff;
          contentLength = lengthValue(head, colon + 1, next);
          if (contentLength < 0) return handOff;
        }
        break;
      case 6:
      case 7:
      case 11:
      case 17:
        if (nameIs(head, line, colon, 'expect') || nameIs(head, line, colon, 'upgrade') || nameIs(head, line, colon, 'x-client-id') || nameIs(head, line, colon, 'transfer-encoding')) return handOff;
        break;
      case 10:
        if (nameIs(head, line, colon, 'connection') && /close|upgrade/i.test(head.slice(colon + 1, next))) return handOff;
        break;
      case 13:
        if (nameIs(head, line, colon, 'x-request-seq')) return handOff;
        if (nameIs(head, line, colon, 'authorization')) {
          if (authorization !== undefined) return handOff;
          authorization = head.slice(colon + 1, next).trim();
        }
        break;
    }
    line = next + 2;
  }
  if (s.authorized !== undefined && !s.authorized(authorization)) return handOff;
  const bodyAt = headEnd + 4;
  if (method === 'PUT') {
    if (contentLength < 0 || contentLength > s.valueBytesMax) return handOff;
  } else if (contentLength > 0) return handOff;
  const bodyBytes = method === 'PUT' ? contentLength : 0;
  // A body still arriving: node:http reads it, with its deadline (408) and its limits.
  if (buf.byteLength < bodyAt + bodyBytes) return handOff;
  return { method, key, bodyAt, bodyBytes, end: bodyAt + bodyBytes };
}

/**
 * Idle connections are found by sweeps, keepAliveMs / idleSweepsMax apart: a connection is closed
 * at the first sweep that finds it idle for more than idleSweepsMax of them, so between
 * keepAliveMs and (1 + 1 / idleSweepsMax) keepAliveMs after its last read or write, never sooner.
 * (A socket timeout per connection did the same, at the cost of a timer refresh per read and
 * per write.)
 */
const idleSweepsMax = 5;

/** An answer ready to write: latin1 text (all ASCII) or bytes. */
type Answer = string | Buffer;

/** One connection on the fast path until (if ever) it is handed to node:http. */
class FastConnection implements KvAnswerSink {
  /** Bytes read and not yet parsed start at `at`; null: none. */
  private buf: Buffer | null = null;
  private at = 0;
  /** Answers in request order (the request's tag is its slot); null while the request runs. */
  private readonly pending: (Answer | null)[] = [];
  private head = 0;
  private handingOff = false;
  private closing = false;
  private paused = false;
  /** In the front's list of connections to flush this turn. */
  flushQueued = false;
  /** The front's idle sweeps since this connection last read or wrote. */
  idleSweeps = 0;
  private out: Answer[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly kv: KvOps,
    private readonly s: FastKvSettings,
    private readonly http: HttpServer,
    private readonly front: FastKvFront,
  ) {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.once('close', this.onClose);
    socket.on('error', () => socket.destroy());
  }

  get busy(): boolean {
    return this.head < this.pending.length;
  }

  private readonly onClose = (): void => this.front.gone(this);

  private readonly onData = (chunk: Buffer): void => {
    this.idleSweeps = 0;
    if (this.buf === null) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.at), chunk]);
    this.at = 0;
    this.parse();
  };

  private parse(): void {
    while (this.buf !== null && !this.handingOff && !this.closing) {
      if (this.pending.length - this.head >= this.s.pipelinedMax) {
        this.pause();
        return;
      }
      const p = parseRequest(this.buf, this.s, this.at);
      if (p === incomplete) return;
      if (p === handOff) {
        this.handingOff = true;
        this.maybeHandOff();
        return;
      }
      // The value is copied out of the read buffer: a small value must not hold a large read alive.
      const body = p.method === 'PUT' ? Uint8Array.prototype.slice.call(this.buf, p.bodyAt, p.end) : null;
      if (p.end === this.buf.byteLength) {
        this.buf = null;
        this.at = 0;
      } else this.at = p.end;
      this.run(p.method, p.key, body);
    }
  }

  private run(method: Parsed['method'], key: string, body: Uint8Array | null): void {
    const slot = this.pending.length;
    this.pending.push(null);
    const deadlineAtMs = Date.now() + this.s.requestDeadlineMs;
    if (method === 'PUT') this.kv.put(key, body!, deadlineAtMs, this, slot);
    else if (method === 'GET') this.kv.get(key, deadlineAtMs, this, slot);
    else this.kv.delete(key, deadlineAtMs, this, slot);
  }

  putApplied(slot: number, index: number): void {
    this.answered(slot, encodeIndexReply(index));
  }

  valueFound(slot: number, value: Uint8Array, at: ReadPosition): void {
    this.answered(slot, encodeValueReply(value, at));
  }

  replied(slot: number, r: KvReply): void {
    this.answered(slot, encodeReply(r));
  }

  private answered(slot: number, answer: Answer): void {
    this.pending[slot] = answer;
    if (slot !== this.head) return;
    while (this.head < this.pending.length && this.pending[this.head] !== null) {
      this.out.push(this.pending[this.head]!);
      this.pending[this.head++] = null;
    }
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    }
    // Answers that complete in the same turn go out in one write.
    if (!this.flushQueued) this.front.queueFlush(this);
  }

  /** Writes what is ready (the front calls this once per turn at most). */
  flush(): void {
    this.flushQueued = false;
    if (this.out.length > 0 && !this.socket.destroyed) {
      write(this.socket, this.out);
      this.idleSweeps = 0;
    }
    this.out.length = 0;
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
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /** Once every fast answer is out: node:http takes the connection, with the bytes not parsed here. */
  private maybeHandOff(): void {
    if (!this.handingOff || this.busy || this.out.length > 0 || this.flushQueued) return;
    const rest = this.buf === null ? null : this.buf.subarray(this.at);
    this.buf = null;
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.front.gone(this);
    this.http.emit('connection', new HandedOff(this.socket, rest));
  }

  /** Called every keepAliveMs / idleSweepsMax: closes the connection once idle for longer than keepAliveMs. */
  sweep(): void {
    if (++this.idleSweeps > idleSweepsMax && !this.busy) this.socket.destroy();
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

/** Answers in one write: one string when all are text, else corked writes (one writev). */
function write(socket: Socket, out: Answer[]): void {
  if (out.length === 1) {
    const a = out[0]!;
    if (typeof a === 'string') socket.write(a, 'latin1');
    else socket.write(a);
    return;
  }
  let text = '';
  for (const a of out) {
    if (typeof a !== 'string') {
      socket.cork();
      for (const b of out) {
        if (typeof b === 'string') socket.write(b, 'latin1');
        else socket.write(b);
      }
      socket.uncork();
      return;
    }
    text += a;
  }
  socket.write(text, 'latin1');
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

/** The fast path's connections (so a server can close them), and their writes, once per turn. */
export class FastKvFront {
  private readonly connections = new Set<FastConnection>();
  /** Connections with answers to write this turn. */
  private toFlush: FastConnection[] = [];
  /** Runs while there are connections (and keepAliveMs > 0, as node:http's 0 means no limit). */
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly kv: KvOps,
    private readonly s: FastKvSettings,
    private readonly http: HttpServer,
  ) {}

  /** The net server's connection listener. */
  readonly accept = (socket: Socket): void => {
    this.connections.add(new FastConnection(socket, this.kv, this.s, this.http, this));
    if (this.sweeper === null && this.s.keepAliveMs > 0) {
      this.sweeper = setInterval(this.sweep, Math.max(1, Math.ceil(this.s.keepAliveMs / idleSweepsMax)));
      this.sweeper.unref();
    }
  };

  /** Closed, or handed to node:http. */
  gone(c: FastConnection): void {
    this.connections.delete(c);
    if (this.connections.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  private readonly sweep = (): void => {
    for (const c of this.connections) c.sweep();
  };

  /** Writes `c`'s answers after this turn's I/O callbacks, with every other connection's. */
  queueFlush(c: FastConnection): void {
    c.flushQueued = true;
    if (this.toFlush.push(c) === 1) setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    const list = this.toFlush;
    this.toFlush = [];
    for (const c of list) c.flush();
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
