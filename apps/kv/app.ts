// The KV store as an app on the replicated log: adapts KvStateMachine to the app interface
// (kvApp, which the platform's router drives) and, alone, to the StateMachine interface a node
// drives (KvApp, for tests and tools that run the KV store by itself). Holds no logic of its own.
import type { App, AppContext, AppStateMachine } from '../platform/app.ts';
import type { SnapshotImage, SnapshotRestore, StateMachine } from '../state-machine.ts';
import { runKvQuery } from './queries.ts';
import { KvStateMachine } from './state-machine.ts';

export class KvApp implements StateMachine {
  constructor(readonly kv: KvStateMachine = new KvStateMachine()) {}

  // Decoding copies the byte strings it keeps, so nothing aliases the log memory after the call.
  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array {
    return this.kv.applyAt(index, bytes, start, end);
  }

  readLocal(key: string): Uint8Array | undefined {
    return this.kv.readLocal(key);
  }

  query(app: string, q: string): Uint8Array | undefined {
    return app === 'kv' ? runKvQuery(this.kv, q) : undefined;
  }

  snapshot(): SnapshotImage {
    return this.kv.snapshotImage();
  }

  restore(): SnapshotRestore {
    return this.kv.restoreImage();
  }

  digest(): string {
    return this.kv.digest();
  }
}

/** The KV store on the app platform: its commands are the KV commands (unwrapped, see apps/platform/envelope.ts). */
export class KvAppMachine implements AppStateMachine {
  constructor(readonly kv: KvStateMachine = new KvStateMachine()) {}

  apply(command: Uint8Array, ctx: AppContext): Uint8Array {
    return this.kv.apply(ctx.index, command);
  }

  applyAt(bytes: Uint8Array, start: number, end: number, ctx: AppContext): Uint8Array {
    return this.kv.applyAt(ctx.index, bytes, start, end);
  }

  /** A key's value: what the KV API's read paths ask (AppRouter.readLocal). */
  readKey(key: string): Uint8Array | undefined {
    return this.kv.readLocal(key);
  }

  /** A scan, mget or dbsize (apps/kv/queries.ts): what a read with `app: 'kv'` asks. */
  query(q: string): Uint8Array | undefined {
    return runKvQuery(this.kv, q);
  }

  snapshot(): SnapshotImage {
    return this.kv.snapshotImage();
  }

  restore(): SnapshotRestore {
    return this.kv.restoreImage();
  }

  digest(): string {
    return this.kv.digest();
  }
}

export const kvApp: App = {
  name: 'kv',
  description: 'the key-value store (PUT/GET/DELETE /kv/:key, cas), with every read path',
  createStateMachine: () => new KvAppMachine(),
};
