// The job scheduler's wire format: commands (submit, claim, heartbeat, complete, fail), results,
// what a job looks like from outside, and the limits — checked at the HTTP edge and again in
// apply, so a replica answers bad bytes the same way everywhere and never throws.
import { cborDecode, cborEncode } from '../../platform/envelope.ts';

export const jobLimits = Object.freeze({
  /** Job ids and worker names: URL-safe. */
  namePattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
  /** Ids the scheduler gives jobs submitted without one (`job-<log index>`): not for clients. */
  autoIdPattern: /^job-\d+$/,
  payloadBytesMax: 4_096,
  resultBytesMax: 4_096,
  errorBytesMax: 1_024,
  leaseMsMin: 100,
  leaseMsMax: 600_000,
  delayMsMax: 24 * 3600_000,
  attemptsMax: 20,
  /** Jobs queued or running at once; a submit beyond is refused. */
  activeMax: 10_000,
  /** Finished jobs (done or failed) kept for GET /jobs; the oldest are forgotten first. */
  finishedKeep: 1_000,
});

export const jobDefaults = Object.freeze({ leaseMs: 5_000, maxAttempts: 5 });

export type JobState = 'queued' | 'running' | 'done' | 'failed';
export const jobStates: readonly JobState[] = ['queued', 'running', 'done', 'failed'];

export type JobCommand =
  /** `id` '' asks the scheduler for one (job-<log index>). `payload` is JSON text. */
  | { op: 'submit'; id: string; payload: string; runAtMs: number; delayMs: number; maxAttempts: number }
  | { op: 'claim'; worker: string; leaseMs: number }
  | { op: 'heartbeat'; id: string; worker: string; token: number }
  /** `result` is JSON text. */
  | { op: 'complete'; id: string; worker: string; token: number; result: string }
  | { op: 'fail'; id: string; worker: string; token: number; error: string };

/** One claim of a job: who ran it, under which token, and how it ended. */
export interface JobRun {
  worker: string;
  /** The fencing token: the log index of the claim (strictly increasing per job). */
  token: number;
  outcome: 'running' | 'done' | 'failed' | 'expired';
  /** Log time of the claim and of its end (null while it runs). */
  claimedAtMs: number;
  endedAtMs: number | null;
}

/** A job as queries and results show it. */
export interface JobView {
  id: string;
  state: JobState;
  /** JSON text. */
  payload: string;
  attempts: number;
  maxAttempts: number;
  /** The worker holding the claim, its token, and how long its lease has left (running only). */
  worker: string | null;
  token: number | null;
  leaseExpiresInMs: number | null;
  /** Queued only: log-time ms until it may be claimed (0: now; null: its delay starts at the next clock entry). */
  readyInMs: number | null;
  /** JSON text of a done job's result; a failed job's error. */
  result: string | null;
  error: string | null;
  submittedIndex: number;
  runs: JobRun[];
}

export type JobResult =
  | { r: 'submitted'; job: JobView }
  | { r: 'exists'; job: JobView; samePayload: boolean }
  | { r: 'claimed'; job: JobView; token: number; leaseMs: number }
  | { r: 'none'; queued: number; nextReadyInMs: number | null }
  | { r: 'renewed'; token: number; leaseMs: number }
  | { r: 'completed'; job: JobView }
  | { r: 'failed'; job: JobView }
  | { r: 'lost'; job: JobView | null }
  | { r: 'full'; message: string }
  | { r: 'invalid'; message: string };

export type JobQuery = { q: 'job'; id: string } | { q: 'list'; state: JobState | null; limit: number };

export interface JobList {
  logTimeMs: number;
  counts: Record<JobState, number>;
  /** Expired leases so far (each one a job handed back to the queue or failed). */
  expiries: number;
  /** The newest `limit` jobs matching the filter, in submission order. */
  jobs: JobView[];
}

const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s).length;
const wholeIn = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

export function nameProblem(what: string, v: unknown): string | null {
  if (typeof v !== 'string' || !jobLimits.namePattern.test(v)) return `${what} is 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got ${JSON.stringify(v)}`;
  return null;
}

/** Why a command is not acceptable, or null. The same rules at the edge and in apply. */
export function jobCommandProblem(c: JobCommand): string | null {
  switch (c.op) {
    case 'submit':
      if (c.id !== '') {
        const p = nameProblem('"id"', c.id);
        if (p !== null) return p;
        if (jobLimits.autoIdPattern.test(c.id)) return `"id" ${JSON.stringify(c.id)} has the form of the ids the scheduler gives (job-<number>); leave "id" out to get one, or pick another`;
      }
      if (typeof c.payload !== 'string' || bytes(c.payload) > jobLimits.payloadBytesMax) return `"payload" is at most ${jobLimits.payloadBytesMax} bytes of JSON`;
      if (!wholeIn(c.runAtMs, 0, Number.MAX_SAFE_INTEGER)) return '"runAtMs" must be a whole number ≥ 0 (the log time before which the job does not run)';
      if (!wholeIn(c.delayMs, 0, jobLimits.delayMsMax)) return `"delayMs" must be a whole number from 0 to ${jobLimits.delayMsMax}`;
      if (!wholeIn(c.maxAttempts, 1, jobLimits.attemptsMax)) return `"maxAttempts" must be a whole number from 1 to ${jobLimits.attemptsMax}`;
      return null;
    case 'claim':
      return nameProblem('"worker"', c.worker) ?? (wholeIn(c.leaseMs, jobLimits.leaseMsMin, jobLimits.leaseMsMax) ? null : `"leaseMs" must be a whole number from ${jobLimits.leaseMsMin} to ${jobLimits.leaseMsMax}`);
    case 'heartbeat':
    case 'complete':
    case 'fail': {
      const p = nameProblem('a job id', c.id) ?? nameProblem('"worker"', c.worker);
      if (p !== null) return p;
      if (!wholeIn(c.token, 1, Number.MAX_SAFE_INTEGER)) return '"token" must be the whole number ≥ 1 that claim returned';
      if (c.op === 'complete' && (typeof c.result !== 'string' || bytes(c.result) > jobLimits.resultBytesMax)) return `"result" is at most ${jobLimits.resultBytesMax} bytes of JSON`;
      if (c.op === 'fail' && (typeof c.error !== 'string' || bytes(c.error) > jobLimits.errorBytesMax)) return `"error" is at most ${jobLimits.errorBytesMax} bytes of text`;
      return null;
    }
    default:
      return `unknown job operation ${JSON.stringify((c as { op: unknown }).op)}`;
  }
}

const tags = { submit: 1, claim: 2, heartbeat: 3, complete: 4, fail: 5 } as const;

export function encodeJobCommand(c: JobCommand): Uint8Array {
  const problem = jobCommandProblem(c);
  if (problem !== null) throw new RangeError(problem);
  switch (c.op) {
    case 'submit':
      return cborEncode([tags.submit, c.id, c.payload, c.runAtMs, c.delayMs, c.maxAttempts]);
    case 'claim':
      return cborEncode([tags.claim, c.worker, c.leaseMs]);
    case 'heartbeat':
      return cborEncode([tags.heartbeat, c.id, c.worker, c.token]);
    case 'complete':
      return cborEncode([tags.complete, c.id, c.worker, c.token, c.result]);
    case 'fail':
      return cborEncode([tags.fail, c.id, c.worker, c.token, c.error]);
  }
}

/** Decodes a command; throws RangeError with a reason on anything else. */
export function decodeJobCommand(b: Uint8Array): JobCommand {
  let t: unknown;
  try {
    t = cborDecode(b);
  } catch (err) {
    throw new RangeError(`not CBOR: ${(err as Error).message}`);
  }
  if (!Array.isArray(t)) throw new RangeError('a job command is a CBOR tuple');
  const a = t as unknown[];
  let c: JobCommand;
  if (a[0] === tags.submit && a.length === 6) c = { op: 'submit', id: a[1] as string, payload: a[2] as string, runAtMs: a[3] as number, delayMs: a[4] as number, maxAttempts: a[5] as number };
  else if (a[0] === tags.claim && a.length === 3) c = { op: 'claim', worker: a[1] as string, leaseMs: a[2] as number };
  else if (a[0] === tags.heartbeat && a.length === 4) c = { op: 'heartbeat', id: a[1] as string, worker: a[2] as string, token: a[3] as number };
  else if (a[0] === tags.complete && a.length === 5) c = { op: 'complete', id: a[1] as string, worker: a[2] as string, token: a[3] as number, result: a[4] as string };
  else if (a[0] === tags.fail && a.length === 5) c = { op: 'fail', id: a[1] as string, worker: a[2] as string, token: a[3] as number, error: a[4] as string };
  else throw new RangeError(`unknown job command tag ${String(a[0])} (or wrong length)`);
  const problem = jobCommandProblem(c);
  if (problem !== null) throw new RangeError(problem);
  return c;
}

export const encodeJobResult = (r: JobResult): Uint8Array => cborEncode(r);
export const decodeJobResult = (b: Uint8Array): JobResult => cborDecode(b) as JobResult;
export const jobQuery = (q: JobQuery): string => JSON.stringify(q);
