// `node bench/socket-floor.mjs resp|http [port]`: a Node server that answers every request with a
// fixed reply and does nothing else — no parsing beyond finding where requests end, no storage,
// no replication. Loaded like a real server (bench/redis-compare.ts, bench/etcd-compare.ts), its
// CPU per request is what Node's own socket layer costs at that load: the floor under any Node
// front door's main thread, concur's included. Plain JavaScript, so it starts without tsx.
// Prints "listening <port>" once it listens on 127.0.0.1; stops on SIGTERM or SIGINT.
import net from 'node:net';

const [kind, portArg = '0'] = process.argv.slice(2);

// RESP: redis-benchmark's SET and GET are arrays ("*3\r\n$3\r\nSET..."), one '*' each (its keys
// and values hold none); SET is answered +OK, GET a 3-byte value.
const ok = Buffer.from('+OK\r\n');
const value = Buffer.from('$3\r\nxxx\r\n');
// HTTP: a request ends its head with a blank line; autocannon's PUT bodies are short and hold none.
const headEnd = Buffer.from('\r\n\r\n');
const empty = Buffer.alloc(0);
const httpReply = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"index":123}');

/**
 * The replies due for one chunk. `tail`: the previous chunk's last bytes, searched again so a
 * request split between chunks is still seen, once. Returns the replies and the tail to keep.
 */
function respAnswers(tail, chunk) {
  const bytes = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
  const parts = [];
  // A '*' in the last byte waits for the next chunk: the byte after it tells GET from SET.
  let i = bytes.indexOf(42);
  for (; i !== -1 && i < bytes.length - 1; i = bytes.indexOf(42, i + 1)) {
    // "*2" is GET's arity (key only), "*3" SET's (key and value).
    parts.push(bytes[i + 1] === 50 ? value : ok);
  }
  return { parts, tail: i === bytes.length - 1 ? bytes.subarray(i) : empty };
}

function httpAnswers(tail, chunk) {
  const bytes = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
  const parts = [];
  let after = 0;
  for (let i = bytes.indexOf(headEnd); i !== -1; i = bytes.indexOf(headEnd, after)) {
    parts.push(httpReply);
    after = i + 4;
  }
  // At most 3 bytes, none of a blank line already counted: a split one is found once, whole.
  return { parts, tail: bytes.subarray(Math.max(after, bytes.length - 3)) };
}

if (kind !== 'resp' && kind !== 'http') {
  process.stderr.write('usage: node bench/socket-floor.mjs resp|http [port]\n');
  process.exit(2);
}
const answers = kind === 'resp' ? respAnswers : httpAnswers;
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let tail = empty;
  socket.on('data', (chunk) => {
    const got = answers(tail, chunk);
    tail = got.tail;
    const parts = got.parts;
    if (parts.length === 1) socket.write(parts[0]);
    else if (parts.length > 1) socket.write(Buffer.concat(parts));
  });
});
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
