// A job scheduler as an app on concur's log: jobs go into a replicated queue (POST /jobs), workers
// claim them under a lease on the log's time (POST /jobs/claim), renew it (heartbeat) and end the
// run (complete or fail), each with the fencing token of their claim. Who runs a job is decided
// on the log: the holder of the claim. If it crashes, its lease runs out (decided in onTime, the
// same on every replica), the job returns to the queue, and another worker runs it.
//
//   concur start --app apps/demos/scheduler/app.ts     (workers: apps/demos/scheduler/worker.ts)
//   node --import tsx apps/demos/scheduler/run.ts      (cluster, workers and a crash, in one go)
import { AppHttpError, type App, type AppHttpContext, type AppRoute } from '../../platform/app.ts';
import { cborDecode } from '../../platform/envelope.ts';
import { bodyInt, objectBody, queryInt } from '../shared/http.ts';
import {
  decodeJobResult,
  encodeJobCommand,
  jobCommandProblem,
  jobDefaults,
  jobLimits,
  jobQuery,
  jobStates,
  nameProblem,
  type JobCommand,
  type JobList,
  type JobResult,
  type JobState,
  type JobView,
} from './commands.ts';
import { SchedulerStateMachine } from './state-machine.ts';

/** A job as HTTP shows it: payload and result as JSON values, not text. */
export type JobJson = Omit<JobView, 'payload' | 'result'> & { payload: unknown; result: unknown };

function parseJsonText(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text; // a raw log command may carry any text
  }
}

export const jobJson = (j: JobView): JobJson => ({ ...j, payload: parseJsonText(j.payload), result: parseJsonText(j.result) });

function check(c: JobCommand): JobCommand {
  const problem = jobCommandProblem(c);
  if (problem !== null) throw new AppHttpError(400, problem);
  return c;
}

async function run(ctx: AppHttpContext, c: JobCommand): Promise<JobResult> {
  const { result } = await ctx.submit(encodeJobCommand(c), 5_000);
  const r = decodeJobResult(result);
  if (r.r === 'invalid') throw new AppHttpError(400, r.message);
  return r;
}

function idOf(params: Record<string, string>): string {
  const problem = nameProblem('a job id', params.id);
  if (problem !== null) throw new AppHttpError(400, problem);
  return params.id!;
}

/** JSON text of a body field (any JSON value), within `max` bytes. */
function jsonText(value: unknown, field: string, max: number): string {
  const text = JSON.stringify(value ?? null);
  if (Buffer.byteLength(text) > max) throw new AppHttpError(400, `"${field}" is ${Buffer.byteLength(text)} bytes as JSON; the limit is ${max}`);
  return text;
}

function workerAndToken(body: unknown, extra: string[], shape: string): { worker: string; token: number; b: Record<string, unknown> } {
  const b = objectBody(body, ['worker', 'token', ...extra], shape);
  return { worker: b.worker as string, token: b.token as number, b };
}

const lost = (r: Extract<JobResult, { r: 'lost' }>, id: string, worker: string, token: number) => ({
  status: 409,
  body: {
    code: 'lease-lost',
    error: r.job === null ? `there is no job ${id}` : `worker ${worker} with token ${token} does not hold job ${id} (it is ${r.job.state}${r.job.worker !== null ? `, held by ${r.job.worker}` : ''}); its lease expired or it was never claimed so`,
    job: r.job === null ? null : jobJson(r.job),
  },
});

const submit: AppRoute = {
  method: 'POST',
  path: '/jobs',
  async handle(req, ctx) {
    const shape = '{ "id"?: "report-1", "payload": any JSON, "delayMs"?: 0, "runAtMs"?: 0, "maxAttempts"?: 5 }';
    const b = objectBody(req.body, ['id', 'payload', 'delayMs', 'runAtMs', 'maxAttempts'], shape);
    if (!('payload' in b)) throw new AppHttpError(400, `"payload" is required (any JSON: what the worker should do); expected ${shape}`);
    if (b.id !== undefined && typeof b.id !== 'string') throw new AppHttpError(400, `"id" must be a string, got ${JSON.stringify(b.id)}`);
    const c = check({
      op: 'submit',
      id: (b.id as string | undefined) ?? '',
      payload: jsonText(b.payload, 'payload', jobLimits.payloadBytesMax),
      runAtMs: bodyInt(b, 'runAtMs', 0, Number.MAX_SAFE_INTEGER, 0),
      delayMs: bodyInt(b, 'delayMs', 0, jobLimits.delayMsMax, 0),
      maxAttempts: bodyInt(b, 'maxAttempts', 1, jobLimits.attemptsMax, jobDefaults.maxAttempts),
    });
    const r = await run(ctx, c);
    if (r.r === 'submitted') return { status: 201, body: jobJson(r.job) };
    if (r.r === 'exists') {
      if (r.samePayload) return { status: 200, body: jobJson(r.job) };
      return { status: 409, body: { code: 'job-exists', error: `job ${r.job.id} exists with another payload; pick another id`, job: jobJson(r.job) } };
    }
    if (r.r === 'full') return { status: 503, body: { code: 'queue-full', error: r.message } };
    throw new Error(`unexpected ${r.r} for submit`);
  },
};

const claim: AppRoute = {
  method: 'POST',
  path: '/jobs/claim',
  async handle(req, ctx) {
    const b = objectBody(req.body, ['worker', 'leaseMs'], '{ "worker": "w1", "leaseMs"?: 5000 }');
    const c = check({ op: 'claim', worker: b.worker as string, leaseMs: bodyInt(b, 'leaseMs', jobLimits.leaseMsMin, jobLimits.leaseMsMax, jobDefaults.leaseMs) });
    const r = await run(ctx, c);
    if (r.r === 'claimed') return { status: 200, body: { claimed: true, token: r.token, leaseMs: r.leaseMs, job: jobJson(r.job) } };
    if (r.r === 'none') return { status: 200, body: { claimed: false, queued: r.queued, nextReadyInMs: r.nextReadyInMs } };
    throw new Error(`unexpected ${r.r} for claim`);
  },
};

const heartbeat: AppRoute = {
  method: 'POST',
  path: '/jobs/:id/heartbeat',
  async handle(req, ctx) {
    const id = idOf(req.params);
    const { worker, token } = workerAndToken(req.body, [], '{ "worker": "w1", "token": N }');
    const r = await run(ctx, check({ op: 'heartbeat', id, worker, token }));
    if (r.r === 'renewed') return { status: 200, body: { id, token: r.token, leaseMs: r.leaseMs } };
    if (r.r === 'lost') return lost(r, id, worker, token);
    throw new Error(`unexpected ${r.r} for heartbeat`);
  },
};

const complete: AppRoute = {
  method: 'POST',
  path: '/jobs/:id/complete',
  async handle(req, ctx) {
    const id = idOf(req.params);
    const { worker, token, b } = workerAndToken(req.body, ['result'], '{ "worker": "w1", "token": N, "result"?: any JSON }');
    const r = await run(ctx, check({ op: 'complete', id, worker, token, result: jsonText(b.result, 'result', jobLimits.resultBytesMax) }));
    if (r.r === 'completed') return { status: 200, body: jobJson(r.job) };
    if (r.r === 'lost') return lost(r, id, worker, token);
    throw new Error(`unexpected ${r.r} for complete`);
  },
};

const fail: AppRoute = {
  method: 'POST',
  path: '/jobs/:id/fail',
  async handle(req, ctx) {
    const id = idOf(req.params);
    const { worker, token, b } = workerAndToken(req.body, ['error'], '{ "worker": "w1", "token": N, "error"?: "why" }');
    if (b.error !== undefined && typeof b.error !== 'string') throw new AppHttpError(400, `"error" must be a string, got ${JSON.stringify(b.error)}`);
    const r = await run(ctx, check({ op: 'fail', id, worker, token, error: (b.error as string | undefined) ?? 'failed' }));
    if (r.r === 'failed') return { status: 200, body: jobJson(r.job) };
    if (r.r === 'lost') return lost(r, id, worker, token);
    throw new Error(`unexpected ${r.r} for fail`);
  },
};

const one: AppRoute = {
  method: 'GET',
  path: '/jobs/:id',
  async handle(req, ctx) {
    const id = idOf(req.params);
    const { value } = await ctx.query(jobQuery({ q: 'job', id }), 5_000);
    const job = value === null ? null : (cborDecode(value) as { job: JobView | null }).job;
    if (job === null) return { status: 404, body: { code: 'job-not-found', error: `there is no job ${id} (finished jobs are kept ${jobLimits.finishedKeep} at most)` } };
    return { status: 200, body: jobJson(job) };
  },
};

const list: AppRoute = {
  method: 'GET',
  path: '/jobs',
  async handle(req, ctx) {
    const state = req.query.get('state');
    if (state !== null && !(jobStates as readonly string[]).includes(state)) throw new AppHttpError(400, `?state must be one of ${jobStates.join(', ')}, got ${JSON.stringify(state)}`);
    const limit = queryInt(req.query, 'limit', 1, jobLimits.activeMax + jobLimits.finishedKeep, 100);
    const { value } = await ctx.query(jobQuery({ q: 'list', state: state as JobState | null, limit }), 5_000);
    if (value === null) throw new Error('the scheduler answered no list');
    const l = cborDecode(value) as JobList;
    return { status: 200, body: { ...l, jobs: l.jobs.map(jobJson) } };
  },
};

export const schedulerApp: App = {
  name: 'scheduler',
  description: 'a job scheduler: a replicated queue, claims under a lease on the log\'s time, re-runs when a worker crashes (/jobs)',
  createStateMachine: () => new SchedulerStateMachine(),
  routes: [claim, submit, list, heartbeat, complete, fail, one],
};

export default schedulerApp;
