// The chat demo on a live 3-node Raft cluster behind the HTTP API, under a crash: messages are
// posted one after another while a stream follows the room; the leader is crashed midway. Every
// acknowledged message is in the history and on the stream, in order, each once; the stream (one
// connection all along) goes on past the crash. Also: Last-Event-ID resumes a stream, `curl -N`
// shows the events, and bad input is a 400 that says what is wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { followSse, type SseEvent } from '../../apps/demos/shared/sse-client.ts';
import type { ChatMessage, ChatPage } from '../../apps/demos/chat/commands.ts';
import { eventually } from '../support/cluster.ts';

const chatAppPath = fileURLToPath(new URL('../../apps/demos/chat/app.ts', import.meta.url));
let cluster: Cluster;
let api: HttpApi;

async function json(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const postJson = (path: string, body: unknown) => json(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, apps: ['kv', 'lock', chatAppPath], electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 });
  api = await startHttpApi(cluster, { port: 0 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader', 10_000);
});

test.after(async () => {
  await api?.close();
  await cluster?.stop();
});

test('every acknowledged message is kept in order and streamed once, across a crash of the leader', async () => {
  const seen: SseEvent[] = [];
  const comments: string[] = [];
  const stop = new AbortController();
  let streamEnded = false;
  const following = followSse(`${api.url}/chat/lobby/stream`, { onEvent: (e) => seen.push(e), onComment: (c) => comments.push(c) }, stop.signal).finally(() => (streamEnded = true));
  await eventually(() => (seen.some((e) => e.event === 'ready') ? true : undefined), 'the stream to open');

  const acked: { n: number; text: string }[] = [];
  let crashedAt = -1;
  let crashed = 0;
  for (let k = 1; acked.length < 40; k++) {
    if (acked.length === 15 && crashedAt < 0) {
      crashed = cluster.leader()!;
      crashedAt = acked.at(-1)!.n;
      await cluster.crash(crashed);
    }
    const text = `message ${k}`;
    const r = await postJson('/chat/lobby', { from: 'tester', text });
    if (r.status === 200) acked.push({ n: r.body.n as number, text });
    else await new Promise((res) => setTimeout(res, 50)); // not acknowledged (no leader for a moment): the next one
    assert.ok(k < 400, 'posts keep failing');
  }
  assert.ok(crashed > 0);
  assert.ok(acked.every((a, i) => i === 0 || a.n > acked[i - 1]!.n), 'acknowledged in increasing order');

  const last = acked.at(-1)!.n;
  const messages = () => seen.filter((e) => e.event === 'message').map((e) => e.data as ChatMessage & { room: string });
  await eventually(() => (messages().some((m) => m.n === last) ? true : undefined), `the stream to show message ${last}`, 15_000);
  assert.not.ok(streamEnded, 'one connection all along');
  const streamed = messages();
  assert.equal(streamed.map((m) => m.n), Array.from({ length: last }, (_, i) => i + 1), 'every number once, in order');
  assert.equal(seen.filter((e) => e.event === 'message').map((e) => e.id), streamed.map((m) => String(m.n)), 'event ids are the numbers');
  for (const a of acked) assert.is(streamed[a.n - 1]!.text, a.text, `message ${a.n} as acknowledged`);
  assert.ok(streamed.filter((m) => m.n > crashedAt).length >= 25, 'the stream went on after the crash');

  const history = await json('/chat/lobby?after=0&limit=500');
  assert.is(history.status, 200);
  const h = history.body as unknown as ChatPage;
  assert.equal(h.messages.map((m) => [m.n, m.text]), streamed.map((m) => [m.n, m.text]), 'the history is what was streamed');
  assert.is(h.last, last);
  stop.abort();
  await following;
  await cluster.restart(crashed);
});

test('a reconnecting EventSource resumes after Last-Event-ID; ?after=N starts after N; curl -N shows the events', async () => {
  const read = async (path: string, until: (e: SseEvent[]) => boolean) => {
    const got: SseEvent[] = [];
    const stop = new AbortController();
    const done = followSse(`${api.url}${path}`, { onEvent: (e) => got.push(e) }, stop.signal);
    await eventually(() => (until(got) ? true : undefined), `events on ${path}`);
    stop.abort();
    await done;
    return got.filter((e) => e.event === 'message').map((e) => (e.data as ChatMessage).n);
  };
  for (let i = 0; i < 3; i++) assert.is((await postJson('/chat/resume', { from: 'a', text: `t${i}` })).status, 200);
  assert.equal(await read('/chat/resume/stream?after=1', (e) => e.filter((x) => x.event === 'message').length >= 2), [2, 3]);

  // Last-Event-ID (what a browser's EventSource sends when it reconnects) wins over ?after.
  const res = await fetch(`${api.url}/chat/resume/stream?after=0`, { headers: { 'last-event-id': '2' }, signal: AbortSignal.timeout(5_000) });
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('id: 3')) text += new TextDecoder().decode((await reader.read()).value);
  assert.not.match(text, /id: [12]\n/);
  await reader.cancel();

  const curl = spawnSync('curl', ['--version']);
  if (curl.status === 0) {
    const out = await new Promise<string>((resolve) => {
      const child = spawn('curl', ['-sN', '--max-time', '2', `${api.url}/chat/resume/stream`]);
      let s = '';
      child.stdout.on('data', (d) => (s += d));
      child.on('exit', () => resolve(s));
    });
    assert.match(out, /event: message\ndata: \{"room":"resume","n":1,/);
    assert.match(out, /id: 3\nevent: message/);
  }
});

test('bad input is a 400 that says what is wrong', async () => {
  const cases: [Promise<{ status: number; body: Record<string, unknown> }>, RegExp][] = [
    [postJson('/chat/lobby', { from: 'a' }), /"text" is 1 to 2000 bytes/],
    [postJson('/chat/lobby', { from: '', text: 'x' }), /"from" is 1 to 64 bytes/],
    [postJson('/chat/lobby', { from: 'a', text: 'x', extra: 1 }), /unknown field "extra"/],
    [postJson('/chat/lobby', '[1,2]'), /expected a JSON object/],
    [postJson('/chat/lobby', 'not json'), /not valid JSON/],
    [postJson('/chat/bad%20room', { from: 'a', text: 'x' }), /a room name is 1 to 64 letters/],
    [json('/chat/lobby?after=-1'), /\?after must be a whole number/],
    [json('/chat/lobby?limit=100000'), /\?limit must be a whole number from 1 to 500/],
    [json('/chat/lobby/stream?after=x'), /\?after must be a whole number/],
  ];
  for (const [req, message] of cases) {
    const r = await req;
    assert.is(r.status, 400, JSON.stringify(r.body));
    assert.match(String(r.body.error), message);
  }
  const rooms = await json('/chat');
  assert.is(rooms.status, 200);
  assert.ok((rooms.body.rooms as { room: string }[]).some((r) => r.room === 'lobby'));
});

test.run();
