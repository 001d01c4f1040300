// The job scheduler's deterministic state machine. Jobs wait in a replicated queue (submission
// order); a worker claims the first ready one and holds it under a lease on the log's time, with
// a fencing token (the log index of the claim). Heartbeats renew the lease; complete and fail end
// the run. A lease that is not renewed expires in onTime — on the log's time, at the same index
// on every replica — and the job goes back to the queue for another worker: whoever runs a job
// can crash and the job still runs to the end. No clock, no randomness, no I/O.
//
// Like the lock service's TTL, a lease (and a delay) starts counting at the first clock entry
// after the claim (or renewal): the clock entry before it may predate the worker's request, and
// counting from there could end the lease before the worker's own deadline. Late, never early.
import type { AppContext, AppStateMachine } from '../../platform/app.ts';
import { cborEncode } from '../../platform/envelope.ts';
import type { SnapshotImage, SnapshotRestore } from '../../state-machine.ts';
import { framedDigest, framedImage, framedRestore } from '../shared/image.ts';
import { decodeJobCommand, encodeJobResult, jobLimits, jobStates, type JobCommand, type JobList, type JobQuery, type JobResult, type JobRun, type JobState, type JobView } from './commands.ts';

interface Job {
  id: string;
  payload: string;
  submittedIndex: number;
  runAtMs: number;
  delayMs: number;
  /** Log time from which it may be claimed; null until the next clock entry starts its delay. */
  readyAt: number | null;
  maxAttempts: number;
  state: JobState;
  attempts: number;
  /** The current claim (running only). */
  worker: string | null;
  token: number;
  leaseMs: number;
  /** Log time the lease lapses unless renewed; null until the next clock entry starts it. */
  leaseUntil: number | null;
  result: string | null;
  error: string | null;
  runs: JobRun[];
}

const imageMagic = 'concur-jobs';
const imageVersion = 1;
/** Jobs per image part. */
const jobsPerPart = 256;

type JobTuple = [string, string, number, number, number, number | null, number, JobState, number, string | null, number, number, number | null, string | null, string | null, [string, number, JobRun['outcome'], number, number | null][]];

const toTuple = (j: Job): JobTuple => [j.id, j.payload, j.submittedIndex, j.runAtMs, j.delayMs, j.readyAt, j.maxAttempts, j.state, j.attempts, j.worker, j.token, j.leaseMs, j.leaseUntil, j.result, j.error, j.runs.map((r) => [r.worker, r.token, r.outcome, r.claimedAtMs, r.endedAtMs])];

function fromTuple(t: JobTuple): Job {
  const [id, payload, submittedIndex, runAtMs, delayMs, readyAt, maxAttempts, state, attempts, worker, token, leaseMs, leaseUntil, result, error, runs] = t;
  return { id, payload, submittedIndex, runAtMs, delayMs, readyAt, maxAttempts, state, attempts, worker, token, leaseMs, leaseUntil, result, error, runs: runs.map(([w, tk, outcome, claimedAtMs, endedAtMs]) => ({ worker: w, token: tk, outcome, claimedAtMs, endedAtMs })) };
}

export class SchedulerStateMachine implements AppStateMachine {
  /** Every job known, in submission order. */
  private jobs = new Map<string, Job>();
  /** Finished jobs (done or failed), in the order they finished: the oldest is forgotten first. */
  private finished: string[] = [];
  private active = 0;
  private timeMs = 0;
  /** Leases that expired (part of the state: every replica counts the same). */
  expiries = 0;
  claims = 0;
  /** wantsTime()'s answer, recomputed after a change (the leader asks every tick). */
  private wants: boolean | null = null;

  apply(command: Uint8Array, ctx: AppContext): Uint8Array {
    this.timeMs = ctx.timeMs;
    this.wants = null;
    let c: JobCommand;
    try {
      c = decodeJobCommand(command);
    } catch (err) {
      return encodeJobResult({ r: 'invalid', message: (err as Error).message });
    }
    return encodeJobResult(this.run(c, ctx));
  }

  private run(c: JobCommand, ctx: AppContext): JobResult {
    const now = ctx.timeMs;
    switch (c.op) {
      case 'submit': {
        const id = c.id === '' ? `job-${ctx.index}` : c.id;
        const existing = this.jobs.get(id);
        if (existing !== undefined) return { r: 'exists', job: this.view(existing), samePayload: existing.payload === c.payload };
        if (this.active >= jobLimits.activeMax) return { r: 'full', message: `${jobLimits.activeMax} jobs are queued or running already; retry when some finished` };
        const j: Job = {
          id,
          payload: c.payload,
          submittedIndex: ctx.index,
          runAtMs: c.runAtMs,
          delayMs: c.delayMs,
          readyAt: c.delayMs > 0 ? null : c.runAtMs,
          maxAttempts: c.maxAttempts,
          state: 'queued',
          attempts: 0,
          worker: null,
          token: 0,
          leaseMs: 0,
          leaseUntil: null,
          result: null,
          error: null,
          runs: [],
        };
        this.jobs.set(id, j);
        this.active++;
        return { r: 'submitted', job: this.view(j) };
      }
      case 'claim': {
        let next: number | null = null;
        let queued = 0;
        for (const j of this.jobs.values()) {
          if (j.state !== 'queued') continue;
          queued++;
          if (j.readyAt === null) continue;
          if (j.readyAt <= now) {
            j.state = 'running';
            j.attempts++;
            j.worker = c.worker;
            j.token = ctx.index;
            j.leaseMs = c.leaseMs;
            j.leaseUntil = null;
            j.runs.push({ worker: c.worker, token: ctx.index, outcome: 'running', claimedAtMs: now, endedAtMs: null });
            this.claims++;
            return { r: 'claimed', job: this.view(j), token: ctx.index, leaseMs: c.leaseMs };
          }
          next = next === null ? j.readyAt - now : Math.min(next, j.readyAt - now);
        }
        return { r: 'none', queued, nextReadyInMs: next };
      }
      case 'heartbeat': {
        const j = this.holding(c);
        if (j === null) return { r: 'lost', job: this.viewOf(c.id) };
        j.leaseUntil = null; // the renewed lease starts at the next clock entry
        return { r: 'renewed', token: j.token, leaseMs: j.leaseMs };
      }
      case 'complete': {
        const j = this.holding(c);
        if (j === null) {
          // A retry of a complete that took effect: answer it again.
          const done = this.jobs.get(c.id);
          const last = done?.runs.at(-1);
          if (done?.state === 'done' && last?.token === c.token && last.worker === c.worker) return { r: 'completed', job: this.view(done) };
          return { r: 'lost', job: this.viewOf(c.id) };
        }
        j.result = c.result;
        this.endRun(j, 'done', now);
        this.finish(j, 'done');
        return { r: 'completed', job: this.view(j) };
      }
      case 'fail': {
        const j = this.holding(c);
        if (j === null) {
          const last = this.jobs.get(c.id)?.runs.at(-1);
          if (last?.outcome === 'failed' && last.token === c.token && last.worker === c.worker) return { r: 'failed', job: this.view(this.jobs.get(c.id)!) };
          return { r: 'lost', job: this.viewOf(c.id) };
        }
        j.error = c.error;
        this.endRun(j, 'failed', now);
        if (j.attempts >= j.maxAttempts) this.finish(j, 'failed');
        else this.requeue(j, now);
        return { r: 'failed', job: this.view(j) };
      }
    }
  }

  /** The job if `c` names its current claim (worker and token), else null. */
  private holding(c: { id: string; worker: string; token: number }): Job | null {
    const j = this.jobs.get(c.id);
    return j !== undefined && j.state === 'running' && j.worker === c.worker && j.token === c.token ? j : null;
  }

  private endRun(j: Job, outcome: JobRun['outcome'], now: number): void {
    const run = j.runs.at(-1)!;
    run.outcome = outcome;
    run.endedAtMs = now;
    j.worker = null;
    j.leaseUntil = null;
  }

  private requeue(j: Job, now: number): void {
    j.state = 'queued';
    j.readyAt = now;
  }

  private finish(j: Job, state: 'done' | 'failed'): void {
    j.state = state;
    this.active--;
    this.finished.push(j.id);
    // Bounded: the oldest finished jobs are forgotten (in log order, the same on every replica).
    while (this.finished.length > jobLimits.finishedKeep) this.jobs.delete(this.finished.shift()!);
  }

  onTime(ctx: AppContext): void {
    const now = ctx.timeMs;
    this.timeMs = now;
    this.wants = null;
    for (const j of this.jobs.values()) {
      if (j.state === 'running') {
        if (j.leaseUntil === null) j.leaseUntil = now + j.leaseMs;
        else if (j.leaseUntil <= now) {
          // Its worker stopped renewing (it crashed, or lost the cluster): another may run it.
          this.expiries++;
          this.endRun(j, 'expired', now);
          if (j.attempts >= j.maxAttempts) {
            j.error = `its lease expired on attempt ${j.attempts} of ${j.maxAttempts}`;
            this.finish(j, 'failed');
          } else this.requeue(j, now);
        }
      } else if (j.state === 'queued' && j.readyAt === null) {
        j.readyAt = Math.max(j.runAtMs, now + j.delayMs);
      }
    }
  }

  wantsTime(): boolean {
    // Time matters while a lease runs or a job waits for its start.
    if (this.wants === null) {
      this.wants = false;
      for (const j of this.jobs.values()) {
        if (j.state === 'running' || (j.state === 'queued' && (j.readyAt === null || j.readyAt > this.timeMs))) {
          this.wants = true;
          break;
        }
      }
    }
    return this.wants;
  }

  view(j: Job): JobView {
    const running = j.state === 'running';
    return {
      id: j.id,
      state: j.state,
      payload: j.payload,
      attempts: j.attempts,
      maxAttempts: j.maxAttempts,
      worker: running ? j.worker : null,
      token: running ? j.token : null,
      leaseExpiresInMs: running ? (j.leaseUntil === null ? j.leaseMs : Math.max(0, j.leaseUntil - this.timeMs)) : null,
      readyInMs: j.state === 'queued' ? (j.readyAt === null ? null : Math.max(0, j.readyAt - this.timeMs)) : null,
      result: j.result,
      error: j.error,
      submittedIndex: j.submittedIndex,
      runs: j.runs.map((r) => ({ ...r })),
    };
  }

  private viewOf(id: string): JobView | null {
    const j = this.jobs.get(id);
    return j === undefined ? null : this.view(j);
  }

  list(state: JobState | null, limit: number): JobList {
    const counts = Object.fromEntries(jobStates.map((s) => [s, 0])) as Record<JobState, number>;
    const matching: Job[] = [];
    for (const j of this.jobs.values()) {
      counts[j.state]++;
      if (state === null || j.state === state) matching.push(j);
    }
    return { logTimeMs: this.timeMs, counts, expiries: this.expiries, jobs: matching.slice(Math.max(0, matching.length - limit)).map((j) => this.view(j)) };
  }

  query(q: string): Uint8Array | undefined {
    let parsed: JobQuery;
    try {
      parsed = JSON.parse(q) as JobQuery;
    } catch {
      return undefined;
    }
    if (parsed?.q === 'job' && typeof parsed.id === 'string') return cborEncode({ job: this.viewOf(parsed.id), logTimeMs: this.timeMs });
    if (parsed?.q === 'list' && Number.isSafeInteger(parsed.limit) && (parsed.state === null || jobStates.includes(parsed.state))) return cborEncode(this.list(parsed.state, Math.max(0, parsed.limit)));
    return undefined;
  }

  /** The state as image parts: a header, then the jobs in submission order, a few hundred per part. */
  private parts(): Iterator<unknown> & Iterable<unknown> {
    // Captured now (jobs change in place later); encoded lazily, one part per next().
    const header = [imageMagic, imageVersion, this.timeMs, this.expiries, this.claims, this.finished.slice(), this.jobs.size];
    const tuples = [...this.jobs.values()].map(toTuple);
    return (function* () {
      yield header;
      for (let i = 0; i < tuples.length; i += jobsPerPart) yield tuples.slice(i, i + jobsPerPart);
    })();
  }

  snapshot(): SnapshotImage {
    return framedImage(this.parts());
  }

  restore(): SnapshotRestore {
    return framedRestore('scheduler', (parts) => {
      const jobs = new Map<string, Job>();
      let header: unknown[] = [imageMagic, imageVersion, 0, 0, 0, [], 0];
      if (parts.length > 0) {
        header = parts[0] as unknown[];
        if (!Array.isArray(header) || header[0] !== imageMagic || header[1] !== imageVersion) throw new Error('not a scheduler image (version 1)');
        for (const p of parts.slice(1)) for (const t of p as JobTuple[]) jobs.set(t[0], fromTuple(t));
        if (jobs.size !== header[6]) throw new Error(`scheduler image: the header names ${String(header[6])} jobs, the image holds ${jobs.size}`);
      }
      this.jobs = jobs;
      this.timeMs = header[2] as number;
      this.expiries = header[3] as number;
      this.claims = header[4] as number;
      this.finished = header[5] as string[];
      this.active = 0;
      for (const j of jobs.values()) if (j.state === 'queued' || j.state === 'running') this.active++;
      this.wants = null;
    });
  }

  digest(): string {
    return framedDigest(this.parts());
  }
}
