// A ClusterBackend for tests: one real KvStateMachine applied in-process in submission order,
// with switches to simulate no leader, no quorum, slow commits and a backend that never answers.
// Must never pretend to replicate: it is a fake of the interface, not of Raft.
import { Observable, Subject } from 'rxjs';
import {
  type ClusterBackend,
  type ClusterEvent,
  type ClusterStatus,
  type LocalReadMode,
  type LocalReadResult,
  DeadlineError,
  NoLeaderError,
  NoQuorumError,
  NodeStateError,
  UnknownNodeError,
} from '../../apps/http/backend.ts';
import { KvStateMachine, type KvStateMachineSettings } from '../../apps/kv/state-machine.ts';
import { runKvQuery } from '../../apps/kv/queries.ts';

export interface LocalBackendOptions {
  nodeIds?: number[];
  stateMachine?: Partial<KvStateMachineSettings>;
  /** Offer submitTo/readTo (default true), as the real cluster does; false: promises only, as a minimal backend. */
  waiters?: boolean;
}

export class LocalBackend implements ClusterBackend {
  readonly sm: KvStateMachine;
  readonly nodeIds: number[];
  readonly up = new Map<number, boolean>();
  term = 1;
  lastIndex = 0;
  groups: number[][] | null = null;
  /** Every command submitted, in order: tests check what reached the log. */
  readonly submitted: Uint8Array[] = [];

  // Switches.
  /** submit rejects with NoLeaderError (retryAfterMs if set). */
  noLeader = false;
  noLeaderRetryAfterMs: number | undefined = undefined;
  /** Each submit waits this long before applying; if that exceeds its timeout it rejects with DeadlineError. */
  commitDelayMs = 0;
  /** submit never settles and ignores its timeout: the server's own deadline must answer. */
  hang = false;
  /** submit rejects with this error (for mapping tests). */
  failWith: Error | null = null;

  private readonly events$ = new Subject<ClusterEvent>();
  private subscribers = 0;

  submitTo?: ClusterBackend['submitTo'] = (command, timeoutMs, waiter) => {
    this.submit(command, timeoutMs).then(
      (r) => waiter.writeDone(null, r.index, r.result),
      (err: Error) => waiter.writeDone(err, 0, null),
    );
  };

  readTo?: ClusterBackend['readTo'] = (key, mode, timeoutMs, waiter) => {
    this.read(key, mode, timeoutMs).then(
      (r) => waiter.readDone(null, r),
      (err: Error) => waiter.readDone(err, null),
    );
  };

  constructor(options: LocalBackendOptions = {}) {
    if (options.waiters === false) {
      this.submitTo = undefined;
      this.readTo = undefined;
    }
    this.nodeIds = options.nodeIds ?? [1, 2, 3];
    for (const id of this.nodeIds) this.up.set(id, true);
    this.sm = new KvStateMachine(options.stateMachine);
  }

  /** Subscribers to events() right now: SSE cleanup tests watch this drop to zero. */
  get subscriberCount(): number {
    return this.subscribers;
  }

  emit(event: ClusterEvent): void {
    this.events$.next(event);
  }

  private upCount(): number {
    return [...this.up.values()].filter(Boolean).length;
  }

  private hasQuorum(): boolean {
    // With a partition, only a group holding the leader and a majority can commit.
    const majority = Math.floor(this.nodeIds.length / 2) + 1;
    const leader = this.leader();
    if (leader === null) return false;
    const reachable = this.groups ? this.groups.find((g) => g.includes(leader))! : this.nodeIds;
    return reachable.filter((id) => this.up.get(id)).length >= majority;
  }

  private leader(): number | null {
    if (this.noLeader) return null;
    return this.nodeIds.find((id) => this.up.get(id)) ?? null;
  }

  status(): ClusterStatus {
    const leader = this.leader();
    return {
      leader,
      term: this.term,
      nodes: this.nodeIds.map((id) => ({
        id,
        role: id === leader ? 'leader' : 'follower',
        term: this.term,
        commitIndex: this.lastIndex,
        lastIndex: this.lastIndex,
        up: this.up.get(id)!,
      })),
    };
  }

  hasNode(id: number): boolean {
    return this.up.has(id);
  }

  async crash(id: number): Promise<void> {
    if (!this.up.has(id)) throw new UnknownNodeError(id);
    if (!this.up.get(id)) throw new NodeStateError(`node ${id} is already down`);
    this.up.set(id, false);
    this.emit({ type: 'crash', node: id });
  }

  async restart(id: number): Promise<void> {
    if (!this.up.has(id)) throw new UnknownNodeError(id);
    if (this.up.get(id)) throw new NodeStateError(`node ${id} is up; crash it first`);
    this.up.set(id, true);
    this.emit({ type: 'restart', node: id });
  }

  partition(groups: number[][]): void {
    this.groups = groups.map((g) => [...g]);
    this.emit({ type: 'partition', groups });
  }

  heal(): void {
    this.groups = null;
    this.emit({ type: 'heal' });
  }

  async submit(command: Uint8Array, timeoutMs: number): Promise<{ index: number; result: Uint8Array }> {
    if (this.failWith) throw this.failWith;
    if (this.hang) return new Promise(() => {});
    if (this.leader() === null) throw new NoLeaderError(undefined, this.noLeaderRetryAfterMs);
    if (!this.hasQuorum()) throw new NoQuorumError();
    if (this.commitDelayMs > 0) {
      // Like a real log: a proposal that misses its deadline is reported unknown and not applied here.
      if (this.commitDelayMs >= timeoutMs) {
        await this.sleep(timeoutMs);
        throw new DeadlineError();
      }
      await this.sleep(this.commitDelayMs);
    }
    this.submitted.push(command);
    this.lastIndex += 1;
    const index = this.lastIndex;
    const result = this.sm.apply(index, command);
    this.emit({ type: 'commit', index });
    return { index, result };
  }

  /** Local reads see the single state machine at once; `via` only names the serving node; `app: 'kv'` runs a KV query. */
  async read(key: string, _mode: LocalReadMode, _timeoutMs: number, opts: { via?: number; app?: string } = {}): Promise<LocalReadResult> {
    if (this.failWith) throw this.failWith;
    if (this.hang) return new Promise(() => {});
    if (this.leader() === null) throw new NoLeaderError(undefined, this.noLeaderRetryAfterMs);
    const value = opts.app === undefined ? this.sm.readLocal(key) : opts.app === 'kv' ? runKvQuery(this.sm, key) : undefined;
    return { value: value ?? null, index: this.lastIndex, node: opts.via ?? this.leader()!, applied: this.lastIndex, commit: this.lastIndex };
  }

  events(): Observable<ClusterEvent> {
    return new Observable<ClusterEvent>((subscriber) => {
      this.subscribers += 1;
      const inner = this.events$.subscribe(subscriber);
      return () => {
        this.subscribers -= 1;
        inner.unsubscribe();
      };
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
