// The scheduler demo in one command: a 3-node Raft cluster running kv, lock and the scheduler,
// its HTTP API, and three workers as actors on concur's runtime (one Worker thread each). It
// submits a few jobs, crashes the worker that runs the long one (and then the cluster's leader),
// and shows the job re-run by another worker and completed. Then it keeps serving (Ctrl-C stops).
//
//   node --import tsx apps/demos/scheduler/run.ts [--port 7070] [--workers 3] [--exit]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../../cluster/cluster.ts';
import { startHttpApi } from '../../http/server.ts';
import { Supervisor } from '../../../runtime/supervisor.ts';
import type { JobJson } from './app.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7070' },
    workers: { type: 'string', default: '3' },
    'lease-ms': { type: 'string', default: '1000' },
    exit: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const workerCount = Number(values.workers);
const leaseMs = Number(values['lease-ms']);
if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(workerCount) || workerCount < 2 || workerCount > 16 || !Number.isInteger(leaseMs) || leaseMs < 100) {
  process.stderr.write('usage: node --import tsx apps/demos/scheduler/run.ts [--port 7070] [--workers 2..16] [--lease-ms ≥100] [--exit]\n');
  process.exit(2);
}

const t0 = Date.now();
const say = (line: string) => process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = await Cluster.start({ nodes: 3, apps: ['kv', 'lock', fileURLToPath(new URL('./app.ts', import.meta.url))], metricsIntervalMs: 0 });
let api: Awaited<ReturnType<typeof startHttpApi>>;
try {
  api = await startHttpApi(cluster, { port });
} catch (err) {
  await cluster.stop();
  process.stderr.write(`cannot serve on port ${port}: ${(err as Error).message}; pick another with --port (0: any free one)\n`);
  process.exit(2);
}
const url = api.url;
while (cluster.leader() === null) await sleep(20);
say(`3-node Raft cluster up (leader: node ${cluster.leader()}), HTTP API on ${url}; apps: ${cluster.apps.map((a) => a.name).join(', ')}`);

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  for (;;) {
    const res = await fetch(`${url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    const parsed = (await res.json()) as Record<string, unknown>;
    if (res.status !== 503 && res.status !== 504) return { status: res.status, body: parsed };
    await sleep(100); // no leader for a moment: ask again
  }
}

// The workers: actors on concur's runtime, one Worker thread each, talking to the cluster over HTTP.
const workers = await Supervisor.start({
  actors: Array.from({ length: workerCount }, (_, i) => ({ id: i + 1, module: new URL('./worker-actor.ts', import.meta.url), config: { url, name: `worker-${i + 1}`, leaseMs } })),
  metricsIntervalMs: 0,
  ringBytes: 1 << 16,
  restart: { auto: false },
});
const claims: { actor: number; worker: string; id: string }[] = [];
workers.events$.subscribe((e) => {
  if (e.type !== 'actor') return;
  const ev = e.event as { type: string; worker?: string; id?: string; token?: number; attempt?: number; tookMs?: number };
  if (ev.type === 'job-claimed') {
    claims.push({ actor: e.id, worker: ev.worker!, id: ev.id! });
    say(`${ev.worker} claimed ${ev.id} (attempt ${ev.attempt}, fencing token ${ev.token})`);
  } else if (ev.type === 'job-completed') say(`${ev.worker} completed ${ev.id} in ${ev.tookMs} ms`);
  else if (ev.type === 'job-lost') say(`${ev.worker} lost ${ev.id}: its lease had expired`);
  else if (ev.type === 'job-failed') say(`${ev.worker} failed ${ev.id}`);
});
say(`${workerCount} workers started (actors on Worker threads), lease ${leaseMs} ms on the log's time`);

await call('POST', '/jobs', { id: 'nightly-report', payload: { ms: 4_000, what: 'a long job' } });
say('submitted nightly-report (4 s of work)');
for (let i = 1; i <= 5; i++) await call('POST', '/jobs', { id: `thumbnail-${i}`, payload: { ms: 300 + 100 * i } });
say('submitted thumbnail-1..5 (0.4-0.8 s each)');

while (!claims.some((c) => c.id === 'nightly-report')) await sleep(20);
await sleep(1_000);
const victim = claims.find((c) => c.id === 'nightly-report')!;
say(`crashing ${victim.worker} while it runs nightly-report (its Worker thread is terminated: no more heartbeats)`);
await workers.crash(victim.actor);
await sleep(300);
const leader = cluster.leader();
if (leader !== null) {
  say(`crashing the cluster's leader too (node ${leader})`);
  await cluster.crash(leader);
}

let report: JobJson;
for (;;) {
  report = (await call('GET', '/jobs/nightly-report')).body as unknown as JobJson;
  if (report.state === 'done' || report.state === 'failed') break;
  await sleep(100);
}
say(`nightly-report is ${report.state}: ${report.runs.map((r) => `${r.worker} (token ${r.token}) ${r.outcome}`).join(' → ')}`);
say(`result: ${JSON.stringify(report.result)}`);
for (;;) {
  const l = (await call('GET', '/jobs')).body as { counts: Record<string, number> };
  if (l.counts.queued === 0 && l.counts.running === 0) break;
  await sleep(100);
}
const list = (await call('GET', '/jobs')).body as { jobs: JobJson[]; expiries: number };
say(`all ${list.jobs.length} jobs finished; leases expired: ${list.expiries}`);
for (const j of list.jobs) say(`  ${j.id.padEnd(15)} ${j.state.padEnd(7)} runs: ${j.runs.map((r) => `${r.worker} ${r.outcome}`).join(', ')}`);
if (leader !== null) {
  await cluster.restart(leader);
  say(`node ${leader} restarted from its write-ahead log`);
}
await workers.restart(victim.actor);
say(`${victim.worker} restarted`);

async function shutdown(): Promise<void> {
  await workers.stop();
  await api.close();
  await cluster.stop();
}
if (values.exit) {
  await shutdown();
  process.exit(report.state === 'done' ? 0 : 1);
}
process.stdout.write(`
The cluster and the workers keep running. Try, in another terminal:
  curl -s -X POST -H 'content-type: application/json' -d '{"payload":{"ms":2000}}' ${url}/jobs
  curl -s ${url}/jobs
  curl -s -X POST ${url}/cluster/nodes/$(curl -s ${url}/cluster | node -pe 'JSON.parse(require("fs").readFileSync(0)).leader')/crash
Ctrl-C stops everything.
`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown().then(() => process.exit(0)));
