// The lock service as an app: its state machine, and its HTTP routes (mounted by `concur start`
// beside the KV API). A waiting acquire is queued in the log (FIFO, with a deadline in log time)
// and the route watches the lock by linearizable queries until the grant or the deadline.
import { AppHttpError, type App, type AppHttpContext, type AppRoute } from '../platform/app.ts';
import { cborDecode } from '../platform/envelope.ts';
import { decodeLockResult, encodeLockCommand, lockCommandProblem, type LockCommand, type LockResult, type LockState } from './commands.ts';
import { lockListQuery, lockQueryPrefix, LockStateMachine } from './state-machine.ts';

/** How often a waiting acquire looks whether it was granted. */
const waitPollMs = 10;

function field(body: unknown, name: string): unknown {
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

function parse(op: LockCommand['op'], lock: string, body: unknown): LockCommand {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppHttpError(400, op === 'acquire' ? 'expected a JSON object { "client": "...", "ttlMs": 10000, "waitMs": 0 }' : 'expected a JSON object { "client": "...", "token": N }');
  }
  const known = op === 'acquire' ? ['client', 'ttlMs', 'waitMs'] : ['client', 'token'];
  const extra = Object.keys(body).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new AppHttpError(400, `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => JSON.stringify(k)).join(', ')}; ${op} takes ${known.join(', ')}`);
  const c: LockCommand =
    op === 'acquire'
      ? { op, lock, client: field(body, 'client') as string, ttlMs: (field(body, 'ttlMs') ?? 10_000) as number, waitMs: (field(body, 'waitMs') ?? 0) as number }
      : { op, lock, client: field(body, 'client') as string, token: field(body, 'token') as number };
  const problem = lockCommandProblem(c);
  if (problem !== null) throw new AppHttpError(400, problem);
  return c;
}

async function run(ctx: AppHttpContext, c: LockCommand, timeoutMs: number): Promise<LockResult> {
  const { result } = await ctx.submit(encodeLockCommand(c), timeoutMs);
  const r = decodeLockResult(result);
  if (r.r === 'invalid') throw new AppHttpError(400, r.message);
  if (r.r === 'full') throw new AppHttpError(503, r.message);
  return r;
}

async function state(ctx: AppHttpContext, lock: string, timeoutMs: number): Promise<LockState> {
  const { value } = await ctx.query(lockQueryPrefix + lock, timeoutMs);
  if (value === null) throw new Error('the lock service answered no state');
  return cborDecode(value) as LockState;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const acquire: AppRoute = {
  method: 'POST',
  path: '/locks/:name/acquire',
  async handle(req, ctx) {
    const c = parse('acquire', req.params.name!, req.body) as Extract<LockCommand, { op: 'acquire' }>;
    const started = Date.now();
    // The request may wait for the lock up to waitMs, plus time to hear of the grant.
    const budget = () => Math.max(1, c.waitMs + 5_000 - (Date.now() - started));
    const r = await run(ctx, c, budget());
    if (r.r === 'granted') return { status: 200, body: { lock: c.lock, client: c.client, token: r.token, expiresInMs: r.expiresInMs, ...(r.again ? { again: true } : {}) } };
    if (r.r === 'held') return { status: 409, body: { error: `lock ${c.lock} is held by ${r.holder.client}`, code: 'held', holder: r.holder } };
    if (r.r !== 'queued') throw new Error(`unexpected ${r.r} for acquire`);
    // Queued in the log: the grant (or the waiter's deadline) happens at a later index.
    try {
      for (;;) {
        if (req.signal.aborted) throw new Error('the client went away');
        const s = await state(ctx, c.lock, budget());
        if (s.holder?.client === c.client) {
          // Granted while we waited: renew at once, so the TTL runs from (after) a request the
          // client can time from — its own acquire's send time is then a safe lower bound.
          const renewed = await run(ctx, { op: 'renew', lock: c.lock, client: c.client, token: s.holder.token }, budget());
          if (renewed.r !== 'renewed') return { status: 409, body: { error: `lock ${c.lock} was granted to ${c.client} and lost again before it could be renewed`, code: 'held', holder: s.holder } };
          return { status: 200, body: { lock: c.lock, client: c.client, token: renewed.token, expiresInMs: renewed.expiresInMs, waitedMs: Date.now() - started } };
        }
        if (!s.waiters.some((w) => w.client === c.client)) {
          return { status: 409, body: { error: `lock ${c.lock} was still held after waiting ${c.waitMs} ms`, code: 'held', holder: s.holder } };
        }
        await sleep(waitPollMs);
      }
    } catch (err) {
      // Gone, or out of time: leave the queue, so the lock never goes to a client no one waits for.
      await run(ctx, { op: 'cancel', lock: c.lock, client: c.client }, 5_000).catch(() => undefined);
      throw err;
    }
  },
};

function tokenRoute(op: 'renew' | 'release'): AppRoute {
  return {
    method: 'POST',
    path: `/locks/:name/${op}`,
    async handle(req, ctx) {
      const c = parse(op, req.params.name!, req.body);
      const r = await run(ctx, c, 5_000);
      if (r.r === 'not-holder') {
        return { status: 409, body: { code: 'not-holder', error: `token ${(c as { token: number }).token} of ${c.client} is not the current holder's of lock ${c.lock}${r.holder === null ? ' (it is free)' : ''}`, holder: r.holder } };
      }
      if (r.r === 'renewed') return { status: 200, body: { lock: c.lock, token: r.token, expiresInMs: r.expiresInMs } };
      if (r.r === 'released') return { status: 200, body: { lock: c.lock, released: true } };
      throw new Error(`unexpected ${r.r} for ${op}`);
    },
  };
}

const status: AppRoute = {
  method: 'GET',
  path: '/locks/:name',
  async handle(req, ctx) {
    const lock = req.params.name!;
    const problem = lockCommandProblem({ op: 'release', lock, client: 'x', token: 1 });
    if (problem !== null) throw new AppHttpError(400, problem);
    return { status: 200, body: await state(ctx, lock, 5_000) };
  },
};

const list: AppRoute = {
  method: 'GET',
  path: '/locks',
  async handle(_req, ctx) {
    const { value } = await ctx.query(lockListQuery, 5_000);
    return { status: 200, body: value === null ? { locks: [] } : cborDecode(value) };
  },
};

export const lockApp: App = {
  name: 'lock',
  description: 'a lock service: leases with fencing tokens, FIFO waiters, expiry on the log\'s time (/locks)',
  createStateMachine: () => new LockStateMachine(),
  routes: [acquire, tokenRoute('renew'), tokenRoute('release'), status, list],
};
