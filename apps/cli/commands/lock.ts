// `concur lock acquire|renew|release|status|run`: a client of the lock service's HTTP routes
// (apps/lock/app.ts) on a running `concur start`. Like `concur kv`, it talks to the cluster only
// over HTTP and never prints a stack for an unreachable server or an error answer.
//
// `lock run` holds a lock around a command, as `etcdctl lock` and `flock` do: it acquires
// (waiting), runs the command while renewing every ttl/3, releases when the command exits and
// passes on its exit code; if the lock is lost (a renewal answered "not the holder", or no
// renewal succeeded before the lease's own deadline) it stops the command (SIGTERM, then SIGKILL)
// and exits with exitLockLost. The command gets its fencing token in CONCUR_LOCK_TOKEN.
//
// Requests go through node:http rather than fetch: a waiting acquire may last up to an hour, and
// fetch gives up on any answer that takes more than five minutes to start.
import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { constants as osConstants, hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CommanderError, type Command } from 'commander';
import { lockCommandProblem, lockLimits, type Holder, type LockState } from '../../lock/commands.ts';
import { ApiClientError, apiBase, authHeaders, errorAnswer, errorHint, exitFailed, exitNegative, runClient, withApiFlags, type ApiClientOptions } from '../http-client.ts';
import { intOption, UsageError } from '../options.ts';

export { exitFailed, exitNegative };
/** `lock run`: the lock was lost while the command ran, and the command was stopped. */
export const exitLockLost = 4;
/** `lock run`: the command could not be started (as in a shell: 126 not executable, 127 not found). */
export const exitCannotRun = 126;
export const exitNotFound = 127;

/** The TTL `acquire` and `run` ask for unless told (the service's own default). */
export const lockTtlMsDefault = 10_000;
/** How long `lock run` waits for the lock unless told: the longest wait the service takes. */
export const runWaitMsDefault = lockLimits.waitMsMax;
/** How long a command may take to stop after SIGTERM before it gets SIGKILL. */
export const killGraceMsDefault = 5_000;
/**
 * The margin a holder keeps for clock drift, as a fraction of the TTL: it counts the lock as held
 * until its request's send time + ttl − ceil(ttl × this). The service's clocks and this client's
 * may each run a little fast or slow; 1 % is far above what a quartz clock drifts.
 */
export const driftFraction = 0.01;
export const driftMarginMs = (ttlMs: number): number => Math.ceil(ttlMs * driftFraction);

/** A unique client id for this process: `${hostname}-${pid}`. */
export function defaultClientId(): string {
  return `${hostname().slice(0, 100)}-${process.pid}`;
}

export type LockClientOptions = ApiClientOptions;

/** The caller gave up (a signal arrived while a request was waiting). */
export class LockRequestAborted extends Error {
  constructor() {
    super('the request was abandoned');
    this.name = 'LockRequestAborted';
  }
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** Lock names may hold any text; dots are escaped too, so "." and ".." stay names, not path steps. */
const pathOf = (name: string, suffix = ''): string => `locks/${encodeURIComponent(name).replace(/\./g, '%2E')}${suffix}`;

function checkName(name: string): void {
  const problem = lockCommandProblem({ op: 'release', lock: name, client: 'x', token: 1 });
  if (problem !== null) throw new UsageError(`${problem}; got ${JSON.stringify(name)}.`);
}

function checkClient(client: string): void {
  const problem = lockCommandProblem({ op: 'release', lock: 'x', client, token: 1 });
  if (problem !== null) throw new UsageError(`--client: ${problem.replace(/^"client" is/, 'a client id is')}; got ${JSON.stringify(client)}.`);
}

/** One JSON request to the API with a deadline; an unreachable or silent server becomes an ApiClientError. */
function call(opts: LockClientOptions, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = opts.timeoutMs, signal?: AbortSignal): Promise<Answer> {
  const base = apiBase(opts.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const auth = authHeaders(opts);
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err !== null) reject(err);
      else resolve(answer!);
    };
    const unreachable = (e: Error & { code?: string }) => {
      const why = e.code === 'ECONNREFUSED' ? 'connection refused' : (e.code ?? e.message);
      return new ApiClientError(`cannot reach the concur API at ${opts.url}: ${why}. Is \`concur start\` running there? (set --url to point elsewhere)`);
    };
    const req = send(
      {
        protocol: base.protocol,
        hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: base.port,
        path: `${base.pathname}${path}`,
        method,
        headers: payload === undefined ? auth : { ...auth, 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(unreachable(e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (parsed === null || typeof parsed !== 'object') {
            finish(new ApiClientError(`the server at ${opts.url} answered ${res.statusCode} with something other than JSON (${JSON.stringify(text.slice(0, 200))}); is it a concur API with the lock service?`));
            return;
          }
          finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: parsed as Record<string, unknown> });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(new ApiClientError(`no answer from the concur API at ${opts.url} within ${timeoutMs} ms (raise --timeout-ms, or check the cluster with \`curl ${opts.url}/cluster\`).`));
    }, timeoutMs);
    const onAbort = () => {
      req.destroy();
      finish(new LockRequestAborted());
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => finish(unreachable(e)));
    req.end(payload);
  });
}

/** An error answer in the server's own words. */
function failure(a: Answer, exitCode = exitFailed): ApiClientError {
  const { message: error, code } = errorAnswer(JSON.stringify(a.body));
  const retry = a.headers['retry-after'];
  const hint = a.status === 503 && retry ? ` (retry in ${String(retry)} s)` : errorHint(a.status, code);
  if (a.status === 404 && code === 'not-found') {
    return new ApiClientError(`the server answered 404: ${error}; does that cluster run the lock service? (concur start runs it unless --apps leaves it out)`, exitCode, a.status, code);
  }
  return new ApiClientError(`the server answered ${a.status}${code ? ` ${code}` : ''}: ${error}${hint}`, exitCode, a.status, code);
}

const now = () => performance.now();

export type AcquireOutcome =
  /** `sentAt`: when the request was sent, on this process's monotonic clock (performance.now()). */
  | { ok: true; token: number; expiresInMs: number; waitedMs?: number; sentAt: number }
  | { ok: false; holder: Holder | null };

/** POST /locks/:name/acquire; waits up to `waitMs` in the lock's FIFO queue. `held`: ok false. */
export async function lockAcquire(opts: LockClientOptions, name: string, a: { client: string; ttlMs: number; waitMs: number }, signal?: AbortSignal): Promise<AcquireOutcome> {
  checkName(name);
  checkClient(a.client);
  const sentAt = now();
  // The route waits up to waitMs for a grant, plus the time to hear of it.
  const r = await call(opts, 'POST', pathOf(name, '/acquire'), { client: a.client, ttlMs: a.ttlMs, waitMs: a.waitMs }, opts.timeoutMs + a.waitMs, signal);
  if (r.status === 200) {
    const out: AcquireOutcome = { ok: true, token: Number(r.body.token), expiresInMs: Number(r.body.expiresInMs), sentAt };
    if (typeof r.body.waitedMs === 'number') out.waitedMs = r.body.waitedMs;
    return out;
  }
  if (r.status === 409 && r.body.code === 'held') return { ok: false, holder: (r.body.holder ?? null) as Holder | null };
  throw failure(r);
}

export type TokenOutcome = { ok: true; expiresInMs?: number; sentAt: number } | { ok: false; holder: Holder | null };

async function tokenOp(op: 'renew' | 'release', opts: LockClientOptions, name: string, client: string, token: number, timeoutMs = opts.timeoutMs): Promise<TokenOutcome> {
  checkName(name);
  checkClient(client);
  if (!Number.isSafeInteger(token) || token < 1) throw new UsageError(`--token must be the whole number ≥ 1 that acquire printed; got ${token}.`);
  const sentAt = now();
  const r = await call(opts, 'POST', pathOf(name, `/${op}`), { client, token }, timeoutMs);
  if (r.status === 200) return typeof r.body.expiresInMs === 'number' ? { ok: true, expiresInMs: r.body.expiresInMs, sentAt } : { ok: true, sentAt };
  if (r.status === 409 && r.body.code === 'not-holder') return { ok: false, holder: (r.body.holder ?? null) as Holder | null };
  throw failure(r);
}

/** POST /locks/:name/renew: the TTL starts again (at the service's next clock entry). */
export const lockRenew = (opts: LockClientOptions, name: string, client: string, token: number, timeoutMs?: number) => tokenOp('renew', opts, name, client, token, timeoutMs);
/** POST /locks/:name/release. */
export const lockRelease = (opts: LockClientOptions, name: string, client: string, token: number, timeoutMs?: number) => tokenOp('release', opts, name, client, token, timeoutMs);

/** GET /locks/:name (a linearizable read). */
export async function lockStatus(opts: LockClientOptions, name: string): Promise<LockState> {
  checkName(name);
  const r = await call(opts, 'GET', pathOf(name));
  if (r.status !== 200) throw failure(r);
  return r.body as unknown as LockState;
}

export interface LockList {
  locks: LockState[];
  logTimeMs?: number;
  grants?: number;
  expiries?: number;
}

/** GET /locks: every lock held or waited for. */
export async function lockList(opts: LockClientOptions): Promise<LockList> {
  const r = await call(opts, 'GET', 'locks');
  if (r.status !== 200) throw failure(r);
  return r.body as unknown as LockList;
}

// ---- lock run ------------------------------------------------------------------------------

export interface RunSettings {
  client: string;
  ttlMs: number;
  waitMs: number;
  killGraceMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const holderText = (h: Holder) => `${h.client} (token ${h.token}, expires in ${h.expiresInMs} ms)`;
/** "held by X (token, expiry)", or "free" (a 409 may name no holder when the lock was freed meanwhile). */
const heldBy = (h: Holder | null) => (h === null ? 'free' : `held by ${holderText(h)}`);
const say = (line: string) => process.stderr.write(`concur: ${line}\n`);
const forwardedSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalExit = (s: NodeJS.Signals) => 128 + (osConstants.signals[s] ?? 0);

/**
 * Acquires `name` (waiting up to settings.waitMs), runs `command` with the lock held and renewed,
 * releases it, and resolves with the exit code `lock run` should exit with.
 */
export async function runWithLock(opts: LockClientOptions, name: string, command: string, args: string[], s: RunSettings): Promise<number> {
  checkName(name);
  checkClient(s.client);
  let onSignal: (sig: NodeJS.Signals) => void = () => {};
  const handler = (sig: NodeJS.Signals) => onSignal(sig);
  for (const sig of forwardedSignals) process.on(sig, handler);
  try {
    const held = await acquireForRun(opts, name, s, (f) => (onSignal = f));
    if (typeof held === 'number') return held;
    return await runHolding(opts, name, command, args, s, held, (f) => (onSignal = f));
  } finally {
    for (const sig of forwardedSignals) process.off(sig, handler);
  }
}

interface Held {
  token: number;
  /** Monotonic time until which the lock is surely held: last confirmed send time + ttl − margin. */
  deadline: number;
  /** When the renewal that set the deadline was sent. */
  renewedAt: number;
}

/** Phase one: the lock, with a deadline this client can trust; or an exit code. */
async function acquireForRun(opts: LockClientOptions, name: string, s: RunSettings, setSignal: (f: (sig: NodeJS.Signals) => void) => void): Promise<Held | number> {
  const abort = new AbortController();
  let interrupted: NodeJS.Signals | null = null;
  setSignal((sig) => {
    interrupted = sig;
    abort.abort();
  });
  const margin = driftMarginMs(s.ttlMs);
  const waitUntil = now() + s.waitMs;
  let failingSince: number | null = null;
  let lastHolder: Holder | null = null;
  // A failed request (no leader for a moment, a server restarting) is retried for up to
  // --timeout-ms in a row; the same client id asking again keeps its place in the queue, or gets
  // the grant it was given meanwhile.
  const failed = async (err: unknown): Promise<void> => {
    if (!(err instanceof ApiClientError) || err.exitCode !== exitFailed) throw err;
    if (err.status !== undefined && err.status < 500) throw err; // a refusal, not a hiccup
    failingSince ??= now();
    if (now() - failingSince >= opts.timeoutMs) throw err;
    await sleep(200);
  };
  try {
    for (;;) {
      if (interrupted !== null) return await leaveQueue(opts, name, s.client, interrupted);
      const waitMs = Math.max(0, Math.round(waitUntil - now()));
      let got: AcquireOutcome;
      try {
        got = await lockAcquire(opts, name, { client: s.client, ttlMs: s.ttlMs, waitMs }, abort.signal);
      } catch (err) {
        if (err instanceof LockRequestAborted) continue;
        await failed(err);
        continue;
      }
      failingSince = null;
      if (!got.ok) {
        lastHolder = got.holder;
        if (now() >= waitUntil) {
          say(`lock ${name} is still ${heldBy(lastHolder)}${s.waitMs > 0 ? ` after waiting ${s.waitMs} ms` : ''}`);
          return exitNegative;
        }
        await sleep(50); // the service dropped our place before our own deadline (clocks differ a little): queue again
        continue;
      }
      // Granted. Renew at once: a renewal's send time + ttl is a deadline the service keeps, whatever
      // came before (a grant after waiting, whose TTL may have started long before the answer, or a
      // re-grant of a lock this client id already held, whose TTL is partly spent).
      let renewed: TokenOutcome;
      try {
        renewed = await lockRenew(opts, name, s.client, got.token);
      } catch (err) {
        await failed(err);
        continue;
      }
      if (!renewed.ok) continue; // it lapsed between the grant and the renewal: ask again
      return { token: got.token, deadline: renewed.sentAt + s.ttlMs - margin, renewedAt: renewed.sentAt };
    }
  } catch (err) {
    if (err instanceof ApiClientError && interrupted === null) {
      say(err.message);
      return err.exitCode;
    }
    throw err;
  }
}

/** Interrupted while waiting: give back the lock if it was granted meanwhile. */
async function leaveQueue(opts: LockClientOptions, name: string, client: string, sig: NodeJS.Signals): Promise<number> {
  const quick = { ...opts, timeoutMs: Math.min(opts.timeoutMs, 2_000) };
  try {
    const st = await lockStatus(quick, name);
    if (st.holder?.client === client) await lockRelease(quick, name, client, st.holder.token);
    else if (st.waiters.some((w) => w.client === client)) {
      say(`interrupted while waiting for lock ${name}; the server takes the request out of the queue as this connection closes`);
    }
  } catch {
    // Best effort: the cluster may be unreachable, which is perhaps why we were interrupted.
  }
  return signalExit(sig);
}

/** Phase two: the command runs while the lock is renewed; the exit code. */
async function runHolding(opts: LockClientOptions, name: string, command: string, args: string[], s: RunSettings, held: Held, setSignal: (f: (sig: NodeJS.Signals) => void) => void): Promise<number> {
  const margin = driftMarginMs(s.ttlMs);
  const every = s.ttlMs / 3;
  const retryEvery = Math.max(10, Math.min(s.ttlMs / 10, 1_000));
  const child = spawn(command, args, {
    stdio: 'inherit',
    env: { ...process.env, CONCUR_LOCK_NAME: name, CONCUR_LOCK_TOKEN: String(held.token), CONCUR_LOCK_CLIENT: s.client, CONCUR_URL: opts.url },
  });
  const started = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  if (started !== null) {
    const code = (started as NodeJS.ErrnoException).code;
    say(`cannot run ${JSON.stringify(command)}: ${started.message}`);
    await lockRelease(opts, name, s.client, held.token).catch(() => undefined);
    return code === 'ENOENT' ? exitNotFound : exitCannotRun;
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  setSignal((sig) => void child.kill(sig));

  let deadline = held.deadline;
  let stopped = false;
  let lost: { why: string; takenAway: boolean } | null = null;
  let lastFailure = '';
  let renewTimer: ReturnType<typeof setTimeout> | undefined;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stopTimers = () => {
    clearTimeout(renewTimer);
    clearTimeout(watchdog);
  };
  const lose = (why: string, takenAway: boolean) => {
    if (lost !== null || stopped) return;
    lost = { why, takenAway };
    stopTimers();
    say(`lost lock ${name}: ${why}; stopping the command (SIGTERM, then SIGKILL after ${s.killGraceMs} ms)`);
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), s.killGraceMs);
  };
  // The lease's own deadline: if no renewal has moved it by then, the lock may be someone else's.
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      if (now() >= deadline) lose(`no renewal succeeded before the lease's deadline (the last successful renewal's send time + ${s.ttlMs} ms ttl − ${margin} ms for clock drift)${lastFailure ? `; the last attempt: ${lastFailure}` : ''}`, false);
      else arm();
    }, Math.max(0, Math.ceil(deadline - now())));
  };
  const schedule = (at: number) => {
    clearTimeout(renewTimer);
    renewTimer = setTimeout(() => void renew(), Math.max(0, at - now()));
  };
  const renew = async (): Promise<void> => {
    if (stopped || lost !== null) return;
    const budget = Math.floor(deadline - now());
    if (budget <= 0) return; // the watchdog decides
    let r: TokenOutcome;
    try {
      r = await lockRenew(opts, name, s.client, held.token, Math.max(1, Math.min(opts.timeoutMs, budget)));
    } catch (err) {
      if (!(err instanceof ApiClientError)) throw err;
      if (stopped || lost !== null) return;
      lastFailure = err.message;
      schedule(now() + retryEvery);
      return;
    }
    if (stopped || lost !== null) return;
    if (!r.ok) {
      lose(`a renewal was answered "not the holder" (the lock is ${heldBy(r.holder)})`, true);
      return;
    }
    lastFailure = '';
    deadline = Math.max(deadline, r.sentAt + s.ttlMs - margin);
    arm();
    schedule(r.sentAt + every);
  };
  arm();
  schedule(held.renewedAt + every);

  const end = await exited;
  stopped = true;
  stopTimers();
  clearTimeout(killTimer);
  const lostNow = lost as { why: string; takenAway: boolean } | null;
  if (lostNow !== null) {
    // Renewals failed: the lock may still be ours on the service; hand it back if we can.
    if (!lostNow.takenAway) await lockRelease({ ...opts, timeoutMs: Math.min(opts.timeoutMs, 2_000) }, name, s.client, held.token).catch(() => undefined);
    return exitLockLost;
  }
  try {
    const r = await lockRelease(opts, name, s.client, held.token);
    if (!r.ok) say(`when the command ended, lock ${name} was no longer held with token ${held.token} (it is ${heldBy(r.holder)})`);
  } catch (err) {
    if (!(err instanceof ApiClientError)) throw err;
    say(`could not release lock ${name}: ${err.message}; it expires ${s.ttlMs} ms after its last renewal`);
  }
  return end.code ?? signalExit(end.signal ?? 'SIGKILL');
}

// ---- the commands -----------------------------------------------------------------------------

type ApiFlags = ApiClientOptions;

const tokenOption = intOption(1, Number.MAX_SAFE_INTEGER);
const ttlOption = intOption(1, lockLimits.ttlMsMax);
const waitOption = intOption(0, lockLimits.waitMsMax);

const exitCodesHelp = `
Exit codes: 0 ok; 1 a negative answer: the lock is held (acquire, also after --wait-ms) or this
client is not its holder (renew, release); 2 bad usage; 3 the request failed (unreachable, no
leader, deadline).
\`lock run\` exits with the command's own exit code (128+N when signal N ended it), or: 1 the lock
was still held after --wait-ms; 2 bad usage; 3 a request failed before the command ran;
${exitLockLost} the lock was lost while the command ran, and the command was stopped; ${exitCannotRun} the command
cannot be run; ${exitNotFound} the command was not found.`;

const runHelp = `
The command runs with stdin, stdout and stderr inherited and these in its environment:
  CONCUR_LOCK_TOKEN   the fencing token (send it with every write the lock protects, and have
                      the storage refuse a token lower than one it has seen: see README,
                      "The lock service")
  CONCUR_LOCK_NAME, CONCUR_LOCK_CLIENT, CONCUR_URL
The lock is renewed every ttl/3. It is lost when a renewal is answered "not the holder", or when
no renewal has succeeded by the send time of the last successful one + ttl − ttl/100 (a margin
for clock drift); then the command gets SIGTERM, SIGKILL after --kill-grace-ms, and \`lock run\`
exits with ${exitLockLost}. A command may run on for up to that grace after the lock is lost: fence
its writes. SIGINT, SIGTERM and SIGHUP sent to \`lock run\` are passed on to the command.
Put -- before the command when it has options of its own.

Example:
  concur lock run nightly-report --ttl-ms 15000 -- ./report.sh --since yesterday
${exitCodesHelp}`;

/** commander's own usage errors (a bad flag, a missing argument) exit 2 here, as UsageError does. */
export function usageExit2(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    throw new CommanderError(2, err.code, err.message);
  });
}

export function registerLock(program: Command): void {
  const lock = usageExit2(
    program
      .command('lock')
      .description('take, renew and release locks of the lock service (leases with fencing tokens) through the HTTP API of `concur start`; run a command holding one')
      .addHelpText('after', exitCodesHelp),
  );

  withApiFlags(lock.command('acquire <name>'))
    .description('take a lock: prints its fencing token and how long the grant lasts unless renewed')
    .requiredOption('--client <id>', 'who holds it (renew and release must name the same id)')
    .option('--ttl-ms <ms>', 'the lease: the lock is freed this long after the grant or last renewal', ttlOption, lockTtlMsDefault)
    .option('--wait-ms <ms>', 'wait this long in the lock\'s queue if it is held (0: answer at once)', waitOption, 0)
    .addHelpText('after', `\nOutput: token=N expires-in-ms=M. Count the lock as yours until the send time of the request + ttl\n− a margin for clock drift, and renew well before then; after waiting (waited-ms=...), renew at\nonce, since the TTL may have started before the answer (concur lock run does all this for you).\n${exitCodesHelp}`)
    .action(
      runClient(async (name: string, f: ApiFlags & { client: string; ttlMs: number; waitMs: number }) => {
        const r = await lockAcquire(f, name, { client: f.client, ttlMs: f.ttlMs, waitMs: f.waitMs });
        if (!r.ok) throw new ApiClientError(`lock ${name} is ${f.waitMs > 0 ? 'still ' : ''}${heldBy(r.holder)}${f.waitMs > 0 ? ` after waiting ${f.waitMs} ms` : ''}`, exitNegative);
        process.stdout.write(`token=${r.token} expires-in-ms=${r.expiresInMs}${r.waitedMs !== undefined ? ` waited-ms=${r.waitedMs}` : ''}\n`);
      }),
    );

  for (const op of ['renew', 'release'] as const) {
    withApiFlags(lock.command(`${op} <name>`))
      .description(op === 'renew' ? 'extend a lock you hold: its TTL starts again' : 'give back a lock you hold')
      .requiredOption('--client <id>', 'the id that acquired it')
      .requiredOption('--token <n>', 'the fencing token acquire printed', tokenOption)
      .addHelpText('after', exitCodesHelp)
      .action(
        runClient(async (name: string, f: ApiFlags & { client: string; token: number }) => {
          const r = await (op === 'renew' ? lockRenew : lockRelease)(f, name, f.client, f.token);
          if (!r.ok) throw new ApiClientError(`${f.client} with token ${f.token} is not the holder of lock ${name}; it is ${heldBy(r.holder)}`, exitNegative);
          process.stdout.write(op === 'renew' ? `token=${f.token} expires-in-ms=${r.expiresInMs}\n` : 'released\n');
        }),
      );
  }

  withApiFlags(lock.command('status [name]'))
    .description('show one lock (holder, token, expiry, waiters) or, without a name, every lock in use')
    .option('--json', 'print the service\'s JSON answer')
    .addHelpText('after', exitCodesHelp)
    .action(
      runClient(async (name: string | undefined, f: ApiFlags & { json?: boolean }) => {
        if (name !== undefined) {
          const st = await lockStatus(f, name);
          process.stdout.write(f.json ? `${JSON.stringify(st)}\n` : showState(st));
          return;
        }
        const all = await lockList(f);
        if (f.json) {
          process.stdout.write(`${JSON.stringify(all)}\n`);
          return;
        }
        process.stdout.write(all.locks.length === 0 ? 'no locks in use\n' : all.locks.map(showState).join(''));
        if (all.logTimeMs !== undefined) process.stdout.write(`log time ${all.logTimeMs} ms, ${all.grants ?? 0} grants, ${all.expiries ?? 0} expiries\n`);
      }),
    );

  withApiFlags(lock.command('run <name> [command...]'))
    .description('run a command while holding a lock: acquire (waiting), renew every ttl/3, release when it exits; stop it if the lock is lost')
    .option('--client <id>', 'who holds it (default: this host\'s name and this process\'s id)')
    .option('--ttl-ms <ms>', 'the lease; a renewal is sent every ttl/3', ttlOption, lockTtlMsDefault)
    .option('--wait-ms <ms>', 'wait this long for the lock (0: fail at once if held); the default is the longest wait the service takes', waitOption, runWaitMsDefault)
    .option('--kill-grace-ms <ms>', 'after SIGTERM, wait this long for the command to stop before SIGKILL', intOption(0, 3_600_000), killGraceMsDefault)
    .addHelpText('after', runHelp)
    .action(
      runClient(async (name: string, command: string[], f: ApiFlags & { client?: string; ttlMs: number; waitMs: number; killGraceMs: number }) => {
        if (command.length === 0) throw new UsageError('lock run needs a command to run: concur lock run NAME [flags] -- COMMAND [ARGS...]');
        process.exitCode = await runWithLock(f, name, command[0]!, command.slice(1), { client: f.client ?? defaultClientId(), ttlMs: f.ttlMs, waitMs: f.waitMs, killGraceMs: f.killGraceMs });
      }),
    );
}

function showState(st: LockState): string {
  const lines = [`lock ${st.lock}: ${heldBy(st.holder)}\n`];
  for (const w of st.waiters) lines.push(`  waiting: ${w.client} (gives up in ${w.waitsMs} ms)\n`);
  return lines.join('');
}
