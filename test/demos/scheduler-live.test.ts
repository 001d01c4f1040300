// The scheduler demo on a live 3-node Raft cluster behind the HTTP API, with three workers as
// actors on concur's runtime (one Worker thread each, under their own Supervisor). A long job is
// claimed; the worker running it is crashed (its thread terminated) and so is the cluster's
// leader: the claim's lease runs out on the log's time, the job goes back to the queue, another
// worker re-runs it to the end, and the crashed worker's run is recorded as expired. Every other
// job completes exactly once. Also: bad input is a 400 that says what is wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { filter, type Subscription } from 'rxjs';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startHttpApi, type HttpApi } from '../../apps/http/server.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import type { JobJson } from '../../apps/demos/scheduler/app.ts';
import { eventually } from '../support/cluster.ts';

const appPath = fileURLToPath(new URL('../../apps/demos/scheduler/app.ts', import.meta.url));
const workerModule = new URL('../../apps/demos/scheduler/worker-actor.ts', import.meta.url);
let cluster: Cluster;
let api: HttpApi;
let workers: Supervisor;
let sub: Subscription;
const events: { actor: number; type: string; worker: string; id: string; token: number }[] = [];

async function json(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const postJson = (path: string, body: unknown) => json(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

test.before(async () => {
  cluster = await Cluster.start({ nodes: 3, apps: ['kv', 'lock', appPath], electionMsMin: 100, electionMsMax: 200, heartbeatMs: 20, metricsIntervalMs: 0 });
  api = await startHttpApi(cluster, { port: 0 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader', 10_000);
});

test.after(async () => {
  sub?.unsubscribe();
  await workers?.stop();
  await api?.close();
  await cluster?.stop();
});

test('bad input is a 400 that says what is wrong', async () => {
  const cases: [Promise<{ status: number; body: Record<string, unknown> }>, RegExp][] = [
    [postJson('/jobs', {}), /"payload" is required/],
    [postJson('/jobs', { payload: 1, id: 'job-7' }), /has the form of the ids the scheduler gives/],
    [postJson('/jobs', { payload: 1, id: 'no spaces' }), /"id" is 1 to 64 letters/],
    [postJson('/jobs', { payload: 'x'.repeat(5000) }), /"payload" is \d+ bytes as JSON; the limit is 4096/],
    [postJson('/jobs', { payload: 1, delayMs: -5 }), /"delayMs" must be a whole number/],
    [postJson('/jobs', { payload: 1, maxAttempts: 0 }), /"maxAttempts" must be a whole number from 1 to 20/],
    [postJson('/jobs', { payload: 1, colour: 'red' }), /unknown field "colour"/],
    [postJson('/jobs/claim', { worker: 'w 1' }), /"worker" is 1 to 64 letters/],
    [postJson('/jobs/claim', { worker: 'w1', leaseMs: 5 }), /"leaseMs" must be a whole number from 100/],
    [postJson('/jobs/some-job/heartbeat', { worker: 'w1' }), /"token" must be the whole number/],
    [postJson('/jobs/some-job/complete', { worker: 'w1', token: 1, result: 'x'.repeat(5000) }), /"result" is \d+ bytes as JSON/],
    [json('/jobs?state=sleeping'), /\?state must be one of queued, running, done, failed/],
    [json('/jobs?limit=0'), /\?limit must be a whole number/],
  ];
  for (const [req, message] of cases) {
    const r = await req;
    assert.is(r.status, 400, JSON.stringify(r.body));
    assert.match(String(r.body.error), message);
  }
  const nobody = await postJson('/jobs/nobody/heartbeat', { worker: 'w1', token: 3 });
  assert.is(nobody.status, 409);
  assert.is(nobody.body.code, 'lease-lost');
  assert.is((await json('/jobs/nobody')).status, 404);
});

test('the job whose worker crashed is re-run by another and completes; the leader crashes too; every job completes once', async () => {
  workers = await Supervisor.start({
    actors: [1, 2, 3].map((id) => ({ id, module: workerModule, config: { url: api.url, name: `w${id}`, leaseMs: 600, pollMs: 50 } })),
    metricsIntervalMs: 0,
    ringBytes: 1 << 16,
    restart: { auto: false },
  });
  sub = workers.events$.pipe(filter((e) => e.type === 'actor')).subscribe((e) => {
    if (e.type === 'actor' && e.event.type.startsWith('job-')) events.push({ actor: e.id, ...(e.event as unknown as { type: string; worker: string; id: string; token: number }) });
  });

  const long = await postJson('/jobs', { id: 'long', payload: { ms: 2_500 } });
  assert.is(long.status, 201, JSON.stringify(long.body));
  assert.is((await postJson('/jobs', { id: 'long', payload: { ms: 2_500 } })).status, 200, 'a resubmit of the same job is answered with it');
  const claim = await eventually(() => events.find((e) => e.type === 'job-claimed' && e.id === 'long'), 'the long job to be claimed');
  const shorts: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await postJson('/jobs', { payload: { ms: 150, n: i } });
    assert.is(r.status, 201);
    shorts.push(r.body.id as string);
  }
  assert.match(shorts[0]!, /^job-\d+$/);
  await new Promise((r) => setTimeout(r, 300));

  // The crash of whoever runs it: its Worker thread is terminated mid-job.
  const running = (await json('/jobs/long')).body as unknown as JobJson;
  assert.is(running.state, 'running');
  assert.is(running.worker, claim.worker);
  await workers.crash(claim.actor);
  // And the cluster's leader.
  const leader = cluster.leader()!;
  await cluster.crash(leader);

  const done = await eventually(
    async () => {
      const r = await json('/jobs/long').catch(() => null);
      return r?.status === 200 && (r.body as unknown as JobJson).state === 'done' ? (r.body as unknown as JobJson) : undefined;
    },
    'the long job to be re-run and done',
    30_000,
    100,
  );
  assert.ok(done.runs.length >= 2);
  assert.equal([done.runs[0]!.worker, done.runs[0]!.outcome], [claim.worker, 'expired'], 'the crashed worker\'s run expired');
  const last = done.runs.at(-1)!;
  assert.is(last.outcome, 'done');
  assert.is.not(last.worker, claim.worker, 'another worker ran it');
  assert.is((done.result as { ranBy: string }).ranBy, last.worker);
  assert.ok(last.token > done.runs[0]!.token, 'a newer claim');
  assert.not.ok(events.some((e) => e.type === 'job-completed' && e.id === 'long' && e.worker === claim.worker), 'the crashed worker never completed it');

  await eventually(
    async () => {
      const l = (await json('/jobs?limit=100')).body as { counts: Record<string, number> };
      return l.counts.done === 7 ? true : undefined;
    },
    'every job to be done',
    15_000,
    100,
  );
  const list = (await json('/jobs?state=done')).body as { jobs: JobJson[]; expiries: number };
  assert.equal(list.jobs.map((j) => j.id).sort(), ['long', ...shorts].sort());
  for (const j of list.jobs) assert.is(j.runs.filter((r) => r.outcome === 'done').length, 1, `${j.id} done once`);
  assert.ok(list.expiries >= 1);
  await cluster.restart(leader);
});

test.run();
