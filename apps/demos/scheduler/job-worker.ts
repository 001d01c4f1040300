// A scheduler worker: claims jobs from the cluster over HTTP, runs each while renewing its lease
// (a heartbeat every third of it), and completes or fails it with the token of its claim. A 409
// on a heartbeat means the lease was lost (it expired and the job went to another worker): the
// run is abandoned, its result never reported. Network errors and 503s while the cluster elects
// a leader are retried. Used in-process, by the actor (worker-actor.ts) and by the CLI (worker.ts).
import { sleep } from '../shared/http.ts';
import type { JobJson } from './app.ts';

export interface JobWorkerOptions {
  /** The cluster's HTTP API, e.g. http://127.0.0.1:7070 */
  url: string;
  /** This worker's name (letters, digits, ".", "_", "-"), as claims record it. */
  name: string;
  /** The lease each claim asks for (default 1000 ms of log time). */
  leaseMs?: number;
  /** How often to ask for a job while none is ready (default 100 ms). */
  pollMs?: number;
  /** Runs one job; the default "works" for payload.ms milliseconds (and fails when payload.fail is set). */
  run?: (job: JobJson, signal: AbortSignal) => Promise<unknown>;
  onEvent?: (e: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'claimed'; worker: string; id: string; token: number; attempt: number }
  | { type: 'completed'; worker: string; id: string; token: number; tookMs: number }
  | { type: 'failed'; worker: string; id: string; token: number; error: string }
  | { type: 'lost'; worker: string; id: string; token: number }
  | { type: 'retrying'; worker: string; what: string; why: string };

/** The demo's work: wait payload.ms (default 500, at most 60 s), then answer who did it. */
export async function demoRun(job: JobJson, signal: AbortSignal, worker: string): Promise<unknown> {
  const p = (job.payload ?? {}) as { ms?: unknown; fail?: unknown };
  const ms = typeof p.ms === 'number' && p.ms >= 0 ? Math.min(p.ms, 60_000) : 500;
  const started = Date.now();
  await sleep(ms, signal);
  if (p.fail !== undefined && p.fail !== false) throw new Error(typeof p.fail === 'string' ? p.fail : 'the payload asked to fail');
  return { ranBy: worker, attempt: job.attempts, tookMs: Date.now() - started };
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export class JobWorker {
  private stopped = false;
  private loopDone: Promise<void> | null = null;
  private readonly stopSignal = new AbortController();
  readonly leaseMs: number;
  readonly pollMs: number;
  /** The job running now, if any. */
  current: { id: string; token: number } | null = null;
  completed = 0;

  constructor(private readonly o: JobWorkerOptions) {
    this.leaseMs = o.leaseMs ?? 1_000;
    this.pollMs = o.pollMs ?? 100;
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Stops after the job in hand (its lease lapses if it does not finish in time). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    await this.loopDone;
  }

  private event(e: WorkerEvent): void {
    this.o.onEvent?.(e);
  }

  private async post(path: string, body: unknown): Promise<Answer> {
    const res = await fetch(`${this.o.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { error: text };
    }
    return { status: res.status, body: parsed };
  }

  private async loop(): Promise<void> {
    const name = this.o.name;
    while (!this.stopped) {
      let a: Answer;
      try {
        a = await this.post('/jobs/claim', { worker: name, leaseMs: this.leaseMs });
      } catch (err) {
        this.event({ type: 'retrying', worker: name, what: 'claim', why: (err as Error).message });
        await sleep(this.pollMs, this.stopSignal.signal);
        continue;
      }
      if (a.status !== 200 || a.body.claimed !== true) {
        if (a.status !== 200) this.event({ type: 'retrying', worker: name, what: 'claim', why: `${a.status} ${String(a.body.code ?? a.body.error)}` });
        await sleep(this.pollMs, this.stopSignal.signal);
        continue;
      }
      await this.runOne(a.body.job as JobJson, a.body.token as number);
    }
  }

  private async runOne(job: JobJson, token: number): Promise<void> {
    const name = this.o.name;
    const id = job.id;
    this.current = { id, token };
    this.event({ type: 'claimed', worker: name, id, token, attempt: job.attempts });
    const lost = new AbortController();
    let beating = false;
    const beat = setInterval(() => {
      if (beating) return;
      beating = true;
      this.post(`/jobs/${encodeURIComponent(id)}/heartbeat`, { worker: name, token })
        .then((a) => {
          if (a.status === 409) lost.abort();
        })
        .catch(() => undefined) // the next beat tries again; the lease covers a few misses
        .finally(() => (beating = false));
    }, Math.max(20, Math.floor(this.leaseMs / 3)));
    const started = Date.now();
    let outcome: { ok: true; result: unknown } | { ok: false; error: string };
    try {
      const work = this.o.run ?? ((j: JobJson, s: AbortSignal) => demoRun(j, s, name));
      outcome = { ok: true, result: await work(job, lost.signal) };
    } catch (err) {
      outcome = { ok: false, error: (err as Error).message };
    } finally {
      clearInterval(beat);
    }
    try {
      if (lost.signal.aborted) {
        this.event({ type: 'lost', worker: name, id, token });
        return;
      }
      // Report with retries: a leader may be changing. A 409 means the lease was lost meanwhile.
      const path = `/jobs/${encodeURIComponent(id)}/${outcome.ok ? 'complete' : 'fail'}`;
      const body = outcome.ok ? { worker: name, token, result: outcome.result ?? null } : { worker: name, token, error: outcome.error };
      for (;;) {
        let a: Answer | null = null;
        try {
          a = await this.post(path, body);
        } catch (err) {
          this.event({ type: 'retrying', worker: name, what: outcome.ok ? 'complete' : 'fail', why: (err as Error).message });
        }
        if (a !== null && a.status === 200) {
          if (outcome.ok) {
            this.completed++;
            this.event({ type: 'completed', worker: name, id, token, tookMs: Date.now() - started });
          } else this.event({ type: 'failed', worker: name, id, token, error: outcome.error });
          return;
        }
        if (a !== null && a.status === 409) {
          this.event({ type: 'lost', worker: name, id, token });
          return;
        }
        if (a !== null && a.status === 400) {
          // Not retryable (e.g. a result over the size limit): the lease lapses and the job is re-run.
          this.event({ type: 'failed', worker: name, id, token, error: `the cluster refused ${path}: ${String(a.body.error)}` });
          return;
        }
        if (a !== null) this.event({ type: 'retrying', worker: name, what: outcome.ok ? 'complete' : 'fail', why: `${a.status} ${String(a.body.code ?? a.body.error)}` });
        if (this.stopped) return;
        await sleep(this.pollMs);
      }
    } finally {
      this.current = null;
    }
  }
}
