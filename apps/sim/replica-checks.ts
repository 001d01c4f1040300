// What the replica simulator checks besides the five Raft properties: every write answered to a
// client is the committed entry at its index with the result the log's replay gives; every read
// returns the value the model held at a point it may linearize at (stale reads: the value at the
// index they report, never past the commit); every snapshot — taken, installed or restored at
// start — is the replay of the log it covers. The model (kv-model.ts) is built from commits alone.
import type { Checker } from '../../protocols/sim/protocol.ts';
import type { RaftObservation } from '../../protocols/sim/raft-invariants.ts';
import type { LocalReadMode } from '../http/backend.ts';
import { decodeResult } from '../kv/commands.ts';
import { KvModel, sameBytes, show } from './kv-model.ts';

export type KvObservation =
  /** A client started an operation (`id` ties the rest to it). */
  | { kind: 'kv-invoke'; id: number; client: number; op: 'put' | 'get' | 'cas' | 'delete'; mode: LocalReadMode | 'log'; key: string }
  /** A command (write, or a get through the log) was applied at `index` and answered `result`. */
  | { kind: 'kv-applied'; id: number; node: number; index: number; result: Uint8Array; command: Uint8Array }
  /** A read served by a node's state: `value` as of its `applied` index (`index`: the read index it waited for). */
  | { kind: 'kv-read'; id: number; node: number; mode: LocalReadMode; key: string; value: Uint8Array | null; index: number; applied: number; commit: number }
  /** The client gave up: the outcome is unknown. */
  | { kind: 'kv-timeout'; id: number }
  /** A node's state machine digest at `index`: a snapshot it took, installed, or restored at start. */
  | { kind: 'kv-digest'; node: number; index: number; digest: string; how: 'taken' | 'installed' | 'restored' };

export type ReplicaObservation = RaftObservation | KvObservation;

export const replicaInvariants = ['acked-writes', 'read-values', 'stale-reads', 'snapshot-replay'] as const;
type Property = (typeof replicaInvariants)[number];

interface Invocation {
  op: string;
  mode: string;
  key: string;
  /** The highest index committed anywhere when the operation was invoked. */
  committedAtInvoke: number;
}

/**
 * One checker for the four properties, sharing the model; `name` says which property the last
 * violation broke (the engine reports it).
 */
export class ReplicaKvChecker implements Checker<ReplicaObservation> {
  name: Property | 'kv-model' = 'kv-model';
  private readonly model = new KvModel();
  private topCommit = 0;
  /** Per node, the commit index whose entries the model has been offered. */
  private readonly seen = new Map<number, number>();
  private readonly invocations = new Map<number, Invocation>();

  observe(o: ReplicaObservation): string | null {
    switch (o.kind) {
      case 'step': {
        const raft = o.raft;
        const c = raft.commitIndex;
        if (c > this.topCommit) this.topCommit = c;
        const prev = this.seen.get(o.node) ?? 0;
        if (c <= prev) return null;
        this.seen.set(o.node, c);
        for (const e of raft.entries(Math.max(prev + 1, this.model.applied + 1), c + 1)) {
          const err = this.model.learn(e);
          if (err !== null) return err;
        }
        return null;
      }
      case 'crash':
      case 'restart':
        this.seen.delete(o.node);
        return null;
      case 'snapshot-installed':
        this.seen.set(o.node, o.index);
        return null;
      case 'kv-invoke':
        this.invocations.set(o.id, { op: o.op, mode: o.mode, key: o.key, committedAtInvoke: this.topCommit });
        return null;
      case 'kv-timeout':
        this.invocations.delete(o.id);
        return null;
      case 'kv-applied':
        return this.applied(o);
      case 'kv-read':
        return this.read(o);
      case 'kv-digest':
        return this.fail('snapshot-replay', this.model.when(o.index, () => {
          const want = this.model.digestAt(o.index);
          return want === o.digest ? null : `n${o.node}'s state ${o.how === 'taken' ? 'in the snapshot it took' : o.how === 'installed' ? 'after installing a snapshot' : 'restored at start'} at index ${o.index} differs from replaying entries 1..${o.index}`;
        }));
      default:
        return null;
    }
  }

  private fail(property: Property, message: string | null): string | null {
    if (message !== null) this.name = property;
    return message;
  }

  /** A write acked (or a log read answered): it is the committed entry there, with the replay's answer. */
  private applied(o: Extract<KvObservation, { kind: 'kv-applied' }>): string | null {
    const inv = this.invocations.get(o.id);
    this.invocations.delete(o.id);
    if (inv === undefined) return null;
    const property: Property = inv.op === 'get' ? 'read-values' : 'acked-writes';
    return this.fail(property, this.model.when(o.index, () => {
      const entry = this.model.entryAt(o.index);
      if (entry === undefined || !sameBytes(entry, o.command)) {
        return `client op ${o.id} (${inv.op} ${inv.key}) was answered as applied at index ${o.index} by n${o.node}, but the committed entry there is ${entry === undefined ? 'a no-op' : 'another command'}`;
      }
      const want = this.model.resultAt(o.index);
      if (!sameBytes(want, o.result)) {
        return `client op ${o.id} (${inv.op} ${inv.key}) at index ${o.index} was answered ${describeResult(o.result)}, but replaying the log gives ${describeResult(want)}`;
      }
      if (inv.op === 'get' && o.index <= inv.committedAtInvoke) {
        return `log read ${o.id} of ${inv.key} was applied at index ${o.index}, not after index ${inv.committedAtInvoke}, committed when it was asked`;
      }
      return null;
    }));
  }

  private read(o: Extract<KvObservation, { kind: 'kv-read' }>): string | null {
    const inv = this.invocations.get(o.id);
    this.invocations.delete(o.id);
    if (inv === undefined) return null;
    const upTo = Math.max(this.topCommit, o.commit);
    if (o.mode === 'stale') {
      return this.fail('stale-reads', this.model.when(o.applied, () => {
        if (o.applied > upTo) return `stale read ${o.id} of ${o.key} at n${o.node} reflects index ${o.applied}, past everything committed (${upTo})`;
        if (o.commit < o.applied) return `stale read ${o.id} at n${o.node} reports commit ${o.commit} below the applied index ${o.applied} it reflects`;
        const want = this.model.valueAt(o.key, o.applied);
        if (!sameBytes(want, o.value)) return `stale read ${o.id} of ${o.key} at n${o.node} returned ${show(o.value)} as of index ${o.applied}, where the key held ${show(want)}`;
        return null;
      }));
    }
    return this.fail('read-values', this.model.when(Math.max(o.applied, upTo), () => {
      const lo = inv.committedAtInvoke;
      if (o.applied < lo) {
        return `${o.mode} read ${o.id} of ${o.key} at n${o.node} was served from index ${o.applied} (read index ${o.index}), but index ${lo} was committed when it was asked`;
      }
      const allowed = this.model.valuesBetween(o.key, lo, upTo);
      if (!allowed.some((v) => sameBytes(v, o.value))) {
        return `${o.mode} read ${o.id} of ${o.key} at n${o.node} returned ${show(o.value)}, a value the key never held between index ${lo} (invoked) and ${upTo} (answered): it held ${allowed.map(show).join(', ')}`;
      }
      return null;
    }));
  }
}

function describeResult(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return 'nothing';
  try {
    const r = decodeResult(bytes);
    return JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? show(v) : v));
  } catch {
    return `<${bytes.length} bytes>`;
  }
}
