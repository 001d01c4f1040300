// The chat demo in one command: a 3-node Raft cluster running kv, lock and the chat app, its HTTP
// API plus a chat page at / (an EventSource on /chat/lobby/stream). A short demo first: a bot
// posts to #lobby while this script follows the room's stream; the leader is crashed midway and
// restarted; the stream goes on and shows every message once, in order. Then it keeps serving
// (open the page in a browser; Ctrl-C stops).
//
//   node --import tsx apps/demos/chat/run.ts [--port 7070] [--exit]
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../../cluster/cluster.ts';
import { createHttpApiHandler } from '../../http/server.ts';
import { followSse } from '../shared/sse-client.ts';
import type { ChatMessage } from './commands.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '7070' }, exit: { type: 'boolean', default: false } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: node --import tsx apps/demos/chat/run.ts [--port 7070] [--exit]\n');
  process.exit(2);
}
const t0 = Date.now();
const say = (line: string) => process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = await Cluster.start({ nodes: 3, apps: ['kv', 'lock', fileURLToPath(new URL('./app.ts', import.meta.url))], metricsIntervalMs: 0 });
// The API's handler, plus the page at / on the same origin (so the browser's EventSource needs no CORS).
const handler = createHttpApiHandler(cluster);
const page = readFileSync(new URL('./page.html', import.meta.url));
const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && (path === '/' || path === '/chat.html')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(page.length) });
    res.end(page);
    return;
  }
  handler.handle(req, res);
});
try {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
} catch (err) {
  await cluster.stop();
  process.stderr.write(`cannot serve on port ${port}: ${(err as Error).message}; pick another with --port (0: any free one)\n`);
  process.exit(2);
}
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
while (cluster.leader() === null) await sleep(20);
say(`3-node Raft cluster up (leader: node ${cluster.leader()}), HTTP API and chat page on ${url}; apps: ${cluster.apps.map((a) => a.name).join(', ')}`);

// Follow #lobby as a browser would.
const follow = new AbortController();
const streamed: number[] = [];
const following = followSse(
  `${url}/chat/lobby/stream`,
  {
    onEvent: (e) => {
      if (e.event !== 'message') return;
      const m = e.data as ChatMessage;
      streamed.push(m.n);
      say(`  stream  #${m.n} ${m.from}: ${m.text}`);
    },
    onComment: (c) => {
      if (c.startsWith('waiting') || c.startsWith('the cluster')) say(`  stream  (${c})`);
    },
  },
  follow.signal,
).catch((err: unknown) => say(`the stream ended: ${(err as Error).message}`));

const acked: number[] = [];
let crashed: number | null = null;
for (let k = 1; k <= 16; k++) {
  if (k === 7) {
    crashed = cluster.leader();
    if (crashed !== null) {
      say(`crashing the leader (node ${crashed}); the bot keeps posting, the stream keeps following`);
      await cluster.crash(crashed);
    }
  }
  if (k === 12 && crashed !== null) {
    await cluster.restart(crashed);
    say(`node ${crashed} restarted from its write-ahead log (leader now: node ${cluster.leader() ?? 'being elected'})`);
  }
  const started = Date.now();
  const res = await fetch(`${url}/chat/lobby`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'bot', text: `hello ${k}` }) });
  const body = (await res.json()) as { n?: number; error?: string };
  if (res.ok) {
    acked.push(body.n!);
    say(`posted  #${body.n} (acknowledged in ${Date.now() - started} ms)`);
  } else say(`post ${k} not acknowledged: ${res.status} ${body.error}`);
  await sleep(250);
}
const last = acked.at(-1) ?? 0;
for (let i = 0; i < 100 && !streamed.includes(last); i++) await sleep(50);
const inOrder = streamed.every((n, i) => n === i + 1);
const missing = acked.filter((n) => !streamed.includes(n));
say(`the stream showed ${streamed.length} messages, ${inOrder ? 'each once and in order' : 'NOT in order'}; acknowledged but not streamed: ${missing.length === 0 ? 'none' : missing.join(', ')}`);

async function shutdown(): Promise<void> {
  follow.abort();
  await following;
  handler.closeStreams();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await cluster.stop();
}
if (values.exit) {
  await shutdown();
  process.exit(inOrder && missing.length === 0 ? 0 : 1);
}
process.stdout.write(`
The cluster keeps running. Open ${url}/ in a browser (two tabs: chat between them), or in a terminal:
  curl -sN ${url}/chat/lobby/stream
  curl -s -X POST -H 'content-type: application/json' -d '{"from":"ada","text":"hi"}' ${url}/chat/lobby
  curl -s '${url}/chat/lobby?after=10'
Ctrl-C stops everything.
`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown().then(() => process.exit(0)));
