// A scheduler worker as its own process, for a cluster started with
//   npx concur start --app apps/demos/scheduler/app.ts
// then, in other terminals (kill one mid-job with Ctrl-C or kill -9: its job is re-run by another):
//   node --import tsx apps/demos/scheduler/worker.ts --name w1 [--url http://127.0.0.1:7070] [--lease-ms 1000]
import { parseArgs } from 'node:util';
import { JobWorker } from './job-worker.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:7070' },
    name: { type: 'string', default: `worker-${process.pid}` },
    'lease-ms': { type: 'string', default: '1000' },
  },
});
const leaseMs = Number(values['lease-ms']);
if (!Number.isSafeInteger(leaseMs) || leaseMs < 100) {
  process.stderr.write(`--lease-ms must be a whole number ≥ 100, got ${values['lease-ms']}\n`);
  process.exit(2);
}
const worker = new JobWorker({
  url: values.url!.replace(/\/$/, ''),
  name: values.name!,
  leaseMs,
  onEvent: (e) => {
    const what = e.type === 'retrying' ? `${e.what}: ${e.why} (retrying)` : e.type === 'claimed' ? `claimed ${e.id} (attempt ${e.attempt}, token ${e.token})` : e.type === 'completed' ? `completed ${e.id} in ${e.tookMs} ms` : e.type === 'failed' ? `failed ${e.id}: ${e.error}` : `lost ${e.id}: its lease expired, another worker runs it`;
    process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${e.worker} ${what}\n`);
  },
});
process.stdout.write(`${values.name} works for ${values.url} (lease ${leaseMs} ms); Ctrl-C to stop\n`);
worker.start();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stdout.write('stopping after the job in hand\n');
    void worker.stop().then(() => process.exit(0));
  });
}
