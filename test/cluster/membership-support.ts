// Shared by the live membership tests: a steady write load that remembers what was acknowledged,
// and the checks that nothing acknowledged was lost and that the full replicas agree.
import * as assert from 'uvu/assert';
import type { Cluster } from '../../apps/cluster/cluster.ts';
import { eventually } from '../support/cluster.ts';
import { KvTestClient } from '../support/kv-client.ts';

/**
 * `writers` clients, each putting fresh keys one after another until stopped. Every key is
 * written once, so an acknowledged put must read back with exactly its value. A put that fails
 * (an election, a removed leader, a deadline) is not acknowledged: its key is never checked.
 */
export class WriteLoad {
  readonly acked = new Map<string, string>();
  failed = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(readonly cluster: Cluster, writers = 4, readonly prefix = 'load') {
    this.done = Promise.all(Array.from({ length: writers }, (_, w) => this.writer(w))).then(() => undefined);
  }

  private async writer(w: number): Promise<void> {
    const kv = new KvTestClient(this.cluster);
    for (let i = 0; this.running; i++) {
      const key = `${this.prefix}-${w}-${i}`;
      const value = `${key}=${'v'.repeat(i % 40)}`;
      try {
        await kv.put(key, value, { timeoutMs: 4_000 });
        this.acked.set(key, value);
      } catch {
        this.failed++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Waits until `n` more writes were acknowledged (the load is really running). */
  async progress(n: number, what: string): Promise<void> {
    const target = this.acked.size + n;
    await eventually(() => (this.acked.size >= target ? true : undefined), `${n} acknowledged writes ${what}`, 20_000);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Every acknowledged write reads back (ReadIndex, on the leader) with its value. */
export async function checkAcked(c: Cluster, acked: ReadonlyMap<string, string>): Promise<void> {
  const keys = [...acked.keys()];
  const batch = 32;
  for (let i = 0; i < keys.length; i += batch) {
    await Promise.all(
      keys.slice(i, i + batch).map(async (key) => {
        const r = await c.read(key, 'index', 10_000);
        assert.is(r.value === null ? null : new TextDecoder().decode(r.value), acked.get(key)!, `acknowledged write ${key}`);
      }),
    );
  }
}

/** The full replicas among `ids` reach the same applied index and state. */
export async function converged(c: Cluster, ids: readonly number[]): Promise<{ applied: number; digest: string }> {
  return eventually(
    async () => {
      const ds = await Promise.all(ids.map((id) => c.supervisor.call<{ applied: number; digest: string }>(id, 'digest')));
      const first = ds[0]!;
      return ds.every((d) => d.applied === first.applied && d.digest === first.digest) ? first : undefined;
    },
    `nodes ${ids.join(', ')} to converge`,
    20_000,
    50,
  );
}

export const memberIds = (c: Cluster): string =>
  c
    .members()
    .map((m) => `${m.id}${m.role === 'voter' ? '' : `:${m.role}`}`)
    .join(',');
