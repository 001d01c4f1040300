// Answers for requests node:http refuses before any route sees them (its parser limits, malformed
// requests, header and request timeouts), in the API's JSON error shape rather than node:http's
// empty body. Must never echo the request's bytes.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HttpError } from './errors.ts';

export interface ClientErrorLimits {
  /** node:http's limit on the request line and headers together (its maxHeaderSize). */
  headerBytesMax: number;
  keyBytesMax: number;
}

export function clientErrorOf(err: NodeJS.ErrnoException, limits: ClientErrorLimits): HttpError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError(431, 'headers-too-large', `the request line and headers are over ${limits.headerBytesMax} bytes; a key is at most ${limits.keyBytesMax} bytes of UTF-8, so shorten the key (or the headers)`);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError(408, 'request-timeout', 'the request did not arrive in time; send it whole, promptly');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new HttpError(413, 'body-too-large', 'the chunk extensions of the request body are too large');
    default:
      return new HttpError(400, 'bad-request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'}${err.message ? `: ${err.message.replace(/[\r\n]/g, ' ').slice(0, 120)}` : ''})`);
  }
}

/** node:http's 'clientError' listener: one JSON answer, then the connection closes. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, limits: ClientErrorLimits): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const e = clientErrorOf(err, limits);
  const body = JSON.stringify({ error: e.message, code: e.code });
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
  );
}
