// Reads a request body into memory with a byte limit and a deadline, refusing early: a declared
// Content-Length over the limit is refused before any byte is read, and a streamed body is
// abandoned at the first chunk that crosses it. Must never buffer more than limit + one chunk.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.ts';

export async function readBodyBytes(
  req: IncomingMessage,
  limitBytes: number,
  timeoutMs: number,
  tooLarge: (detail: string) => HttpError,
): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(n)) throw new HttpError(400, 'bad-content-length', `Content-Length "${declared}" is not a byte count`);
    if (n > limitBytes) throw tooLarge(`${n} bytes declared`);
  }

  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => finish(new HttpError(408, 'body-timeout', `the request body did not arrive within ${timeoutMs} ms`)), timeoutMs);

    function finish(err: HttpError | null): void {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) {
        // Stop pulling bytes; discardRestAfterAnswer (called with the answer) counts and drops the rest.
        req.pause();
        reject(err);
      } else {
        const all = Buffer.concat(chunks, received);
        resolve(new Uint8Array(all.buffer, all.byteOffset, all.byteLength));
      }
    }
    function onData(chunk: Buffer): void {
      received += chunk.byteLength;
      if (received > limitBytes) {
        chunks.length = 0;
        finish(tooLarge(`more than ${limitBytes} bytes sent`));
        return;
      }
      chunks.push(chunk);
    }
    function onEnd(): void {
      finish(null);
    }
    function onError(e: Error): void {
      finish(new HttpError(400, 'bad-body', `the request body could not be read: ${e.message}`));
    }
    function onAborted(): void {
      finish(new HttpError(400, 'aborted', 'the client closed the request before sending the whole body'));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/**
 * Once an early answer is sent, reads and drops what the client still sends (a lingering close),
 * so the client can read the answer; cuts the connection past `lingerMs` or `bytesMax`.
 */
export function discardRestAfterAnswer(req: IncomingMessage, res: ServerResponse, lingerMs: number, bytesMax: number): void {
  if (req.complete) return;
  let dropped = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const cut = () => {
    if (timer !== null) clearTimeout(timer);
    req.socket.destroy();
  };
  // Counted from now, and read now: a request nobody reads when its answer finishes is dumped by
  // node:http, which then drops the rest of the body unread and without any limit.
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.byteLength;
    if (dropped > bytesMax) cut();
  });
  req.resume();
  res.once('finish', () => {
    if (req.complete) return;
    timer = setTimeout(cut, lingerMs);
    timer.unref();
    req.once('end', () => clearTimeout(timer!));
    req.once('close', () => clearTimeout(timer!));
  });
}
