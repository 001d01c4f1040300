// A fenced resource: the storage side of fencing tokens. A lease-based lock cannot stop a holder
// that paused (a GC pause, a swapped-out process, a slow network) from waking after its lease
// ended and writing as if it still held the lock: by then another client holds it. The lock
// service's answer is the fencing token (the log index of the grant, strictly increasing per
// lock): the client sends it with every write, and the storage refuses a write whose token is
// lower than the highest it has accepted for that lock (M. Kleppmann, "How to do distributed
// locking", 2016). The check must be in the storage, not the client: the paused client cannot
// know it paused.
//
// `FencedStore` is the check itself (pure, no I/O). `FencedStoreClient.start()` runs it as an
// actor on concur's runtime (fenced-store-actor.ts, one worker under a Supervisor), reached over
// the same rings as any actor; with a data directory it keeps the highest tokens on disk, since a
// store that forgot them on restart would take a stale write again.
import { filter, firstValueFrom, timeout } from 'rxjs';
import { Supervisor } from '../../runtime/supervisor.ts';

export interface FencedWrite {
  /** The lock whose tokens guard this write (tokens of different locks are not comparable). */
  lock: string;
  token: number;
  key: string;
  value: string;
}

export type FencedWriteResult =
  | { ok: true; key: string; token: number }
  | { ok: false; code: 'stale-token'; token: number; highest: number; message: string }
  | { ok: false; code: 'invalid'; message: string };

export interface FencedValue {
  value: string;
  lock: string;
  /** The token of the write that stored it. */
  token: number;
}

export interface FencedStoreImage {
  highest: [string, number][];
  data: [string, FencedValue][];
}

export class FencedStore {
  private highest = new Map<string, number>();
  private data = new Map<string, FencedValue>();
  accepted = 0;
  rejected = 0;

  /** Accepts a write whose token is at least the highest seen for its lock; refuses an older one. */
  write(w: FencedWrite): FencedWriteResult {
    if (typeof w.lock !== 'string' || w.lock === '' || typeof w.key !== 'string' || typeof w.value !== 'string' || !Number.isSafeInteger(w.token) || w.token < 1) {
      return { ok: false, code: 'invalid', message: 'a fenced write is { lock, token ≥ 1, key, value } (strings, a whole number)' };
    }
    const highest = this.highest.get(w.lock) ?? 0;
    if (w.token < highest) {
      this.rejected++;
      return { ok: false, code: 'stale-token', token: w.token, highest, message: `token ${w.token} of lock ${w.lock} is older than ${highest}, which this store has already accepted: the writer's lock has passed to someone else` };
    }
    this.highest.set(w.lock, w.token);
    this.data.set(w.key, { value: w.value, lock: w.lock, token: w.token });
    this.accepted++;
    return { ok: true, key: w.key, token: w.token };
  }

  read(key: string): FencedValue | null {
    return this.data.get(key) ?? null;
  }

  highestToken(lock: string): number {
    return this.highest.get(lock) ?? 0;
  }

  image(): FencedStoreImage {
    return { highest: [...this.highest], data: [...this.data] };
  }

  static fromImage(image: FencedStoreImage): FencedStore {
    const s = new FencedStore();
    s.highest = new Map(image.highest);
    s.data = new Map(image.data);
    return s;
  }
}

// ---- as an actor on the runtime ----------------------------------------------------------------

/** Messages to the store actor; it answers the sender with `{ type: 'result', id, result }`. */
export type FencedStoreRequest = { type: 'write'; id: number; write: FencedWrite } | { type: 'read'; id: number; key: string };
export interface FencedStoreReply {
  type: 'result';
  id: number;
  result: FencedWriteResult | FencedValue | null;
}

const actorModule = new URL('./fenced-store-actor.ts', import.meta.url);
const storeId = 1;

export class FencedStoreClient {
  private nextId = 1;

  private constructor(readonly supervisor: Supervisor) {}

  /** Starts the store actor. With `dataDir`, its highest tokens and data survive a restart of the actor. */
  static async start(opts: { dataDir?: string | null } = {}): Promise<FencedStoreClient> {
    const s = await Supervisor.start({ actors: [{ id: storeId, module: actorModule }], dataDir: opts.dataDir ?? null, metricsIntervalMs: 0 });
    return new FencedStoreClient(s);
  }

  private ask(message: FencedStoreRequest, timeoutMs: number): Promise<FencedStoreReply['result']> {
    const answer = firstValueFrom(
      this.supervisor.messages$.pipe(
        filter((m) => m.from === storeId && (m.message as FencedStoreReply).id === message.id),
        timeout({ first: timeoutMs, with: () => { throw new Error(`the fenced store did not answer ${message.type} within ${timeoutMs} ms`); } }),
      ),
    );
    this.supervisor.send(storeId, message);
    return answer.then((m) => (m.message as FencedStoreReply).result);
  }

  write(w: FencedWrite, timeoutMs = 5_000): Promise<FencedWriteResult> {
    return this.ask({ type: 'write', id: this.nextId++, write: w }, timeoutMs) as Promise<FencedWriteResult>;
  }

  read(key: string, timeoutMs = 5_000): Promise<FencedValue | null> {
    return this.ask({ type: 'read', id: this.nextId++, key }, timeoutMs) as Promise<FencedValue | null>;
  }

  /** Counters and highest tokens, through the actor's control surface. */
  status(): Promise<{ accepted: number; rejected: number; highest: [string, number][]; incarnation: number }> {
    return this.supervisor.call(storeId, 'status');
  }

  /** Crashes and restarts the store actor (a new worker that reads its state back from disk). */
  async restart(): Promise<void> {
    await this.supervisor.crash(storeId);
    await this.supervisor.restart(storeId);
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }
}
