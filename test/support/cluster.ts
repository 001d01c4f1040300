// Helpers for tests that run real supervisors: start a cluster of test actors and wait for
// events, always with a deadline so a broken runtime fails the test instead of hanging it.
import { filter, firstValueFrom, timeout } from 'rxjs';
import { Supervisor, type SupervisorOptions } from '../../runtime/supervisor.ts';
import type { RuntimeEvent } from '../../runtime/events.ts';

export const probeModule = new URL('./actors/probe.ts', import.meta.url);

export function probeCluster(n: number, extra: Partial<SupervisorOptions> = {}): Promise<Supervisor> {
  return Supervisor.start({
    actors: Array.from({ length: n }, (_, i) => ({ id: i + 1, module: probeModule })),
    metricsIntervalMs: 0,
    ...extra,
  });
}

export function nextEvent<T extends RuntimeEvent['type']>(
  s: Supervisor,
  type: T,
  match: (e: Extract<RuntimeEvent, { type: T }>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Extract<RuntimeEvent, { type: T }>> {
  return firstValueFrom(
    s.events$.pipe(
      filter((e): e is Extract<RuntimeEvent, { type: T }> => e.type === type && match(e as Extract<RuntimeEvent, { type: T }>)),
      timeout({ first: timeoutMs, with: () => { throw new Error(`no ${type} event within ${timeoutMs} ms`); } }),
    ),
  );
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
