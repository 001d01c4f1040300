// A replicated chat room as an app on concur's log: POST /chat/:room {from, text} goes through
// the log (every replica numbers it the same), GET /chat/:room?after=N reads the history
// linearizably, and GET /chat/:room/stream serves server-sent events — `curl -N` and a browser's
// EventSource both work — by polling linearizable queries for messages after the last one sent.
// The stream survives a leader crash: a failed poll is retried until a new leader answers.
// Its events: `ready` {room, after} once, then `message` (id: the message's number) for each
// message in order, and `gap` when messages were dropped from the kept history before this
// stream saw them; comments say when it waits for the cluster.
//
//   concur start --app apps/demos/chat/app.ts         (or: node --import tsx apps/demos/chat/run.ts)
import { ApiClientError } from '../../cli/http-client.ts';
import { AppHttpError, type App, type AppEventStream, type AppHttpContext, type AppRoute } from '../../platform/app.ts';
import { cborDecode } from '../../platform/envelope.ts';
import { objectBody, queryInt, sleep } from '../shared/http.ts';
import { chatKeepDefault, chatLimits, chatPostProblem, chatQuery, decodeChatResult, encodeChatPost, roomProblem, type ChatPage, type ChatPost } from './commands.ts';
import { ChatStateMachine } from './state-machine.ts';

export interface ChatAppOptions {
  /** Messages kept per room (default 200). */
  keep?: number;
  /** How often a stream polls for new messages (default 100 ms). */
  pollMs?: number;
  /** How long one poll may wait for an answer before it is retried (default 2 s). */
  pollTimeoutMs?: number;
}

function roomOf(params: Record<string, string>): string {
  const room = params.room!;
  const problem = roomProblem(room);
  if (problem !== null) throw new AppHttpError(400, problem);
  return room;
}

async function page(ctx: AppHttpContext, room: string, after: number, limit: number, timeoutMs: number): Promise<ChatPage> {
  const { value } = await ctx.query(chatQuery({ q: 'page', room, after, limit }), timeoutMs);
  if (value === null) throw new Error('the chat app answered no page');
  return cborDecode(value) as ChatPage;
}

/** The number in a Last-Event-ID header (a reconnecting EventSource sends the last id it got), or null. */
function lastSeen(lastEventId: string | null): number | null {
  return lastEventId !== null && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : null;
}

/** The stream's loop: poll for messages after the last one sent, until the client leaves. */
async function follow(stream: AppEventStream, ctx: AppHttpContext, room: string, start: number, o: Required<Omit<ChatAppOptions, 'keep'>>): Promise<void> {
  let after = start;
  let failing: string | null = null;
  stream.send({ room, after }, { event: 'ready' });
  while (!stream.signal.aborted) {
    let p: ChatPage;
    try {
      p = await page(ctx, room, after, chatLimits.pageMax, o.pollTimeoutMs);
    } catch (err) {
      // No leader for a moment (it crashed, an election runs): say so once, keep trying.
      const why = (err as { code?: string }).code ?? (err as Error).message;
      if (failing !== why) stream.comment(`waiting for the cluster (${why})`);
      failing = why;
      await sleep(o.pollMs, stream.signal);
      continue;
    }
    if (failing !== null) stream.comment('the cluster answers again');
    failing = null;
    if (stream.signal.aborted) return;
    // Messages dropped from the kept history before this client saw them.
    if (p.first > after + 1) {
      stream.send({ room, from: after + 1, to: p.first - 1, why: `the room keeps its last messages only; ${p.first - 1 - after} were dropped before this stream saw them` }, { event: 'gap' });
      after = p.first - 1;
    }
    for (const m of p.messages) {
      stream.send({ room, ...m }, { event: 'message', id: m.n });
      after = m.n;
    }
    // A full page: there may be more right away.
    if (p.messages.length < chatLimits.pageMax) await sleep(o.pollMs, stream.signal);
  }
}

export function createChatApp(options: ChatAppOptions = {}): App {
  const keep = options.keep ?? chatKeepDefault;
  const poll = { pollMs: options.pollMs ?? 100, pollTimeoutMs: options.pollTimeoutMs ?? 2_000 };

  const post: AppRoute = {
    method: 'POST',
    path: '/chat/:room',
    async handle(req, ctx) {
      const room = roomOf(req.params);
      const b = objectBody(req.body, ['from', 'text'], '{ "from": "ada", "text": "hello" }');
      const c: ChatPost = { room, from: b.from as string, text: b.text as string };
      const problem = chatPostProblem(c);
      if (problem !== null) throw new AppHttpError(400, problem);
      const { result } = await ctx.submit(encodeChatPost(c), 5_000);
      const r = decodeChatResult(result);
      if (r.r === 'invalid') throw new AppHttpError(400, r.message);
      if (r.r === 'full') return { status: 409, body: { error: r.message, code: 'rooms-full' } };
      return { status: 200, body: { room, n: r.n, index: r.index } };
    },
  };

  const history: AppRoute = {
    method: 'GET',
    path: '/chat/:room',
    async handle(req, ctx) {
      const room = roomOf(req.params);
      const after = queryInt(req.query, 'after', 0, Number.MAX_SAFE_INTEGER, 0);
      const limit = queryInt(req.query, 'limit', 1, chatLimits.pageMax, 100);
      return { status: 200, body: await page(ctx, room, after, limit, 5_000) };
    },
  };

  const stream: AppRoute = {
    method: 'GET',
    path: '/chat/:room/stream',
    async handle(req, ctx) {
      const room = roomOf(req.params);
      // Checked before the stream opens, so a bad ?after is a plain 400. A reconnecting
      // EventSource resumes after the last message it got; otherwise ?after=N, else the whole
      // kept history.
      const after = queryInt(req.query, 'after', 0, Number.MAX_SAFE_INTEGER, 0);
      return { events: (s) => follow(s, ctx, room, lastSeen(s.lastEventId) ?? after, poll) };
    },
  };

  const rooms: AppRoute = {
    method: 'GET',
    path: '/chat',
    async handle(_req, ctx) {
      const { value } = await ctx.query(chatQuery({ q: 'rooms' }), 5_000);
      return { status: 200, body: value === null ? { rooms: [] } : cborDecode(value) };
    },
  };

  return {
    name: 'chat',
    description: 'a replicated chat room: POST /chat/:room, GET /chat/:room?after=N, GET /chat/:room/stream (server-sent events)',
    createStateMachine: () => new ChatStateMachine(keep),
    routes: [post, stream, history, rooms],
    // `concur app apps/demos/chat/app.ts post ROOM --from NAME TEXT` and `... read ROOM`.
    cli(cmd, api) {
      const fail = (r: { status: number; body: unknown }) => new ApiClientError(`the server answered ${r.status}: ${(r.body as { error?: string })?.error ?? JSON.stringify(r.body)}`);
      cmd
        .command('post <room> <text...>')
        .description('post a message to a room')
        .requiredOption('--from <name>', 'who is writing')
        .action(async (room: string, text: string[], flags: { from: string }) => {
          const r = await api.request('POST', `/chat/${encodeURIComponent(room)}`, { from: flags.from, text: text.join(' ') });
          if (r.status !== 200) throw fail(r);
          process.stdout.write(`posted #${(r.body as { n: number }).n}\n`);
        });
      cmd
        .command('read <room>')
        .description("print a room's messages (oldest first)")
        .option('--after <n>', 'only messages after number n', '0')
        .action(async (room: string, flags: { after: string }) => {
          const r = await api.request('GET', `/chat/${encodeURIComponent(room)}?after=${encodeURIComponent(flags.after)}`);
          if (r.status !== 200) throw fail(r);
          for (const m of (r.body as { messages: { n: number; from: string; text: string }[] }).messages) process.stdout.write(`#${m.n} ${m.from}: ${m.text}\n`);
        });
    },
  };
}

export const chatApp = createChatApp();
export default chatApp;
