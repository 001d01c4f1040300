// A tiny KV client over Cluster.submit for tests: one client id, increasing sequence numbers,
// and decoded results — so cluster tests read like the operations they perform.
import type { Cluster } from '../../apps/cluster/cluster.ts';
import { decodeResult, encodeCommand, textBytes, type KvResult } from '../../apps/kv/commands.ts';

let clients = 0;

export class KvTestClient {
  private seq = 0;
  constructor(readonly cluster: Cluster, readonly clientId = `test-${process.pid}-${++clients}`) {}

  async put(key: string, value: string, opts: { timeoutMs?: number; via?: number } = {}): Promise<number> {
    const r = await this.run({ op: 'put', key, value: textBytes(value) }, opts);
    if (r.result.type !== 'written') throw new Error(`put ${key}: ${JSON.stringify(r.result)}`);
    return r.index;
  }

  async get(key: string, opts: { timeoutMs?: number; via?: number } = {}): Promise<string | null> {
    const r = await this.run({ op: 'get', key }, opts);
    if (r.result.type === 'not-found') return null;
    if (r.result.type !== 'value') throw new Error(`get ${key}: ${JSON.stringify(r.result)}`);
    return new TextDecoder().decode(r.result.value);
  }

  async run(cmd: { op: 'put'; key: string; value: Uint8Array } | { op: 'get'; key: string } | { op: 'delete'; key: string }, opts: { timeoutMs?: number; via?: number; seq?: number } = {}): Promise<{ index: number; result: KvResult }> {
    const seq = opts.seq ?? ++this.seq;
    const bytes = encodeCommand({ ...cmd, clientId: this.clientId, seq } as never);
    const r = await this.cluster.submit(bytes, opts.timeoutMs ?? 5_000, opts.via === undefined ? {} : { via: opts.via });
    return { index: r.index, result: decodeResult(r.result) };
  }
}
