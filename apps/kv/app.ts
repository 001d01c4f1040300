// The KV store as an app on the replicated log: adapts KvStateMachine to the StateMachine
// interface the cluster node drives. Holds no state or logic of its own.
import type { SnapshotImage, SnapshotRestore, StateMachine } from '../state-machine.ts';
import { KvStateMachine } from './state-machine.ts';

export class KvApp implements StateMachine {
  constructor(readonly kv: KvStateMachine = new KvStateMachine()) {}

  // The KV store decodes the command anyway, so a view costs nothing extra; decoding copies the
  // byte strings it keeps, so nothing aliases the log memory after the call.
  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array {
    return this.kv.apply(index, bytes.subarray(start, end));
  }

  readLocal(key: string): Uint8Array | undefined {
    return this.kv.readLocal(key);
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
