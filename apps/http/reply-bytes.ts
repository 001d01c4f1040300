// The fast path's answers as HTTP/1.1 bytes: any KvReply, and the two answers nearly every request
// gets (a PUT's 200 {"index":N}, a GET's 200 with the value) from text built once, not per reply.
// Must send what node:http sends for the same answer: the same status line and header values.

/** On a GET /kv/:key answer: the log index at which the read was served. */
export const indexHeader = 'x-concur-index';
/** On a local read: the node that served it, what it had applied, and the commit index it knew. */
export const nodeHeader = 'x-concur-node';
export const appliedHeader = 'x-concur-applied-index';
export const commitHeader = 'x-concur-commit-index';

/** How a JSON answer is labelled, on every route. */
export const jsonContentType = 'application/json; charset=utf-8';
/** How a GET's value is labelled. */
export const valueContentType = 'application/octet-stream';

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

/** An answer as the fast path writes it (the transport half of server.ts's KvReply). */
export interface ReplyShape {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

let dateAtMs = 0;
/** What ends every head: the Date header (as node:http sends it), the connection, the blank line. */
let headEnd = '';

/** The end of a head, from the Date header on, recomputed once a second. */
function headTail(): string {
  const now = Date.now();
  if (now - dateAtMs >= 1000) {
    dateAtMs = now - (now % 1000);
    headEnd = `\r\ndate: ${new Date(dateAtMs).toUTCString()}\r\nconnection: keep-alive\r\n\r\n`;
  }
  return headEnd;
}

/** Any answer: status line, its headers in order, then content-length, date and connection. */
export function encodeReply(r: ReplyShape): Buffer {
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  let head = `HTTP/1.1 ${r.status} ${statusText[r.status] ?? 'Unknown'}\r\n`;
  for (const name in r.headers) head += `${name}: ${r.headers[name]}\r\n`;
  head += `content-length: ${body.byteLength}${headTail()}`;
  const h = Buffer.from(head, 'latin1');
  return body.byteLength === 0 ? h : Buffer.concat([h, body], h.byteLength + body.byteLength);
}

// The heads below are encodeReply's for the same answers (test/http/reply-bytes.test.ts holds
// them to it): a change to the headers jsonReply or valueReply in server.ts sets goes here too.
const indexHead = `HTTP/1.1 200 OK\r\ncontent-type: ${jsonContentType}\r\ncache-control: no-store\r\ncontent-length: `;
const valueHead = `HTTP/1.1 200 OK\r\ncache-control: no-store\r\n${indexHeader}: `;

/**
 * A write's answer, 200 `{"index":N}`, as latin1 text (all ASCII): the socket writes a string
 * without a Buffer made for it.
 */
export function encodeIndexReply(index: number): string {
  const body = `{"index":${index}}`;
  return `${indexHead}${body.length}${headTail()}${body}`;
}

/** Where a local read was served, as its answer's headers say. */
export interface ReadPosition {
  index: number;
  node: number;
  applied: number;
  commit: number;
}

/** A GET's answer, 200 with the value: head and value in one allocation. */
export function encodeValueReply(value: Uint8Array, at: ReadPosition): Buffer {
  const head = `${valueHead}${at.index}\r\n${nodeHeader}: ${at.node}\r\n${appliedHeader}: ${at.applied}\r\n${commitHeader}: ${at.commit}\r\ncontent-type: ${valueContentType}\r\ncontent-length: ${value.byteLength}${headTail()}`;
  // head is ASCII: one byte per character.
  const out = Buffer.allocUnsafe(head.length + value.byteLength);
  out.write(head, 0, 'latin1');
  out.set(value, head.length);
  return out;
}
