// A small real HTTP server standing in for the concur API in CLI tests: it records every request
// (method, path, query, headers, body) and answers with what the test's handler returns, so a
// test sees exactly what the CLI sends and how it takes each answer.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface StubAnswer {
  status?: number;
  /** An object is sent as JSON; a string or bytes as they are. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface StubApi {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startStubApi(answer: (req: SeenRequest) => StubAnswer): Promise<StubApi> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://stub');
      const r: SeenRequest = { method: req.method ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(r);
      const a = answer(r);
      const raw = a.body === undefined ? '' : typeof a.body === 'string' || a.body instanceof Uint8Array ? a.body : JSON.stringify(a.body);
      const type = typeof a.body === 'object' && !(a.body instanceof Uint8Array) ? 'application/json' : 'application/octet-stream';
      res.writeHead(a.status ?? 200, { 'content-type': type, ...(a.headers ?? {}) });
      res.end(raw);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
