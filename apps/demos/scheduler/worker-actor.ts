// A scheduler worker as an actor on concur's runtime: one Worker thread per worker, under a
// Supervisor (runtime/supervisor.ts), talking to the cluster over its HTTP API. Crashing it with
// the Supervisor's crash() terminates its thread mid-job — the "crash of whoever runs it": its
// lease is no longer renewed, and the job goes to another worker. It reports what it does as
// actor events (job-claimed, job-completed, job-lost, ...) on the Supervisor's events$.
// Config: { url: string; name?: string; leaseMs?: number; pollMs?: number }.
import type { ActorContext, ActorFactory } from '../../../runtime/actor.ts';
import { JobWorker } from './job-worker.ts';

const workerActor: ActorFactory = (ctx: ActorContext) => {
  const url = ctx.config.url;
  if (typeof url !== 'string') throw new Error(`scheduler worker ${ctx.self}: config.url (the cluster's HTTP API) is required`);
  const name = typeof ctx.config.name === 'string' ? ctx.config.name : `worker-${ctx.self}`;
  const worker = new JobWorker({
    url,
    name,
    ...(typeof ctx.config.leaseMs === 'number' ? { leaseMs: ctx.config.leaseMs } : {}),
    ...(typeof ctx.config.pollMs === 'number' ? { pollMs: ctx.config.pollMs } : {}),
    onEvent: (e) => {
      if (e.type !== 'retrying') ctx.emit({ ...e, type: `job-${e.type}` });
    },
  });
  worker.start();
  ctx.emit({ type: 'worker-started', worker: name, incarnation: ctx.incarnation });
  return {
    receive() {
      // Workers take their work from the cluster, not from messages.
    },
    control: {
      current: () => worker.current,
      completed: () => worker.completed,
    },
    stop: () => worker.stop(),
  };
};

export default workerActor;
