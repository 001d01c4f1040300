// A supervised pipeline, source → transform → sink, one Worker each. Mid-stream the transform
// is crashed and restarted; the pipeline goes on. Exits 0 only if results arrive after the restart.
import { setTimeout as sleep } from 'node:timers/promises';
import { Supervisor } from 'concur/runtime';

const stage = (file: string) => new URL(file, import.meta.url);
const supervisor = Supervisor.create({
  actors: [
    { id: 1, module: stage('./source.ts'), config: { next: 2 } },
    { id: 2, module: stage('./transform.ts'), config: { next: 3 } },
    { id: 3, module: stage('./sink.ts') },
  ],
  metricsIntervalMs: 0,
});
supervisor.events$.subscribe((e) => {
  if (e.type === 'crashed' || e.type === 'restarted') console.log(`event: actor ${e.id} ${e.type} (incarnation ${e.incarnation})`);
});
const results: { n: number; square: number; by: number }[] = [];
supervisor.messages$.subscribe(({ message }) => results.push(message as (typeof results)[number]));
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('the pipeline stalled');
    await sleep(10);
  }
}

const show = (rs: typeof results) => `${rs.length} results, ${rs[0]!.n}²=${rs[0]!.square} … ${rs.at(-1)!.n}²=${rs.at(-1)!.square}`;

await supervisor.startAll();
await until(() => results.length >= 5);
console.log(`before the crash: ${show(results)}`);
await supervisor.crash(2); // terminates the transform's Worker; what is sent to it meanwhile is lost
await sleep(50);
await supervisor.restart(2); // a fresh incarnation, wired to the same rings
await until(() => results.filter((r) => r.by === 1).length >= 5);
const before = results.filter((r) => r.by === 0);
const after = results.filter((r) => r.by === 1);
console.log(`after the restart: ${show(after)}`);
console.log(`lost while the transform was down: ${after[0]!.n - before.at(-1)!.n - 1} numbers (no retries here)`);
await supervisor.stop();
process.exitCode = after.length > 0 ? 0 : 1;
