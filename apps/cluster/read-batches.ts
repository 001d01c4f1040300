// A node's reads in flight, a batch at a time (client-wire.ts): each batch waits for one read
// index (ReadIndex, a lease, or the leader's answer to a follower), then for the state machine to
// apply that far, and is answered in one frame. Shared by the Raft and Multi-Paxos hosts, which
// differ only in how they learn a read index. It must never answer a read from state older than
// its read index.
import type { ActorId } from '../../runtime/actor.ts';
import type { LocalReadMode } from '../http/backend.ts';
import { readValue, type StateMachine } from '../state-machine.ts';
import { encodeReadAnswers, ReadStatus, refusal, type ReadItem } from './client-wire.ts';

export interface ReadBatch {
  /** The host's handle for the batch (a read context for the core). */
  readonly ctx: number;
  readonly from: ActorId;
  readonly batch: number;
  readonly mode: LocalReadMode;
  readonly reads: readonly ReadItem[];
  /** The read index once known; -1 until then. */
  index: number;
  /** A follower read: when this node asked the leader for an index (-1: not asked). */
  askedAt: number;
}

/** Answers are cut into frames of about this many value bytes. */
const answerFrameBytes = 256 * 1024;

export interface ReadBatchesIO {
  sendFrame(to: ActorId, frame: Uint8Array): void;
}

export class ReadBatches {
  private nextCtx = 1;
  /** Batches whose read index is not known yet, by ctx. */
  readonly unconfirmed = new Map<number, ReadBatch>();
  /** Batches whose index is known, waiting until the state machine has applied that far. */
  private waiting: ReadBatch[] = [];

  constructor(private readonly io: ReadBatchesIO) {}

  get size(): number {
    return this.unconfirmed.size + this.waiting.length;
  }

  /** A new batch, not yet waiting on anything. */
  create(from: ActorId, batch: number, mode: LocalReadMode, reads: readonly ReadItem[]): ReadBatch {
    return { ctx: this.nextCtx++, from, batch, mode, reads, index: -1, askedAt: -1 };
  }

  /** Waits for its read index. */
  await(b: ReadBatch): void {
    this.unconfirmed.set(b.ctx, b);
  }

  /** The read index of batch `ctx` is known (ignored if the batch was let go). */
  confirmed(ctx: number, index: number): void {
    const b = this.unconfirmed.get(ctx);
    if (b === undefined) return;
    this.unconfirmed.delete(ctx);
    b.index = index;
    this.waiting.push(b);
  }

  /** Answers every waiting batch whose index is applied (all of them with `early`: a test's unsafe mutation). */
  serve(app: StateMachine, applied: number, commit: number, early = false): void {
    if (this.waiting.length === 0) return;
    const still: ReadBatch[] = [];
    for (const b of this.waiting) {
      if (b.index <= applied || early) this.answer(b, app, b.index, applied, commit);
      else still.push(b);
    }
    this.waiting = still;
  }

  /** Answers a batch now, from the state machine as it is (a stale read: `index` is what is applied). */
  answer(b: ReadBatch, app: StateMachine, index: number, applied: number, commit: number): void {
    // In frames of bounded size: a ring frame must fit its ring, and values may be large.
    let first = 0;
    let values: (Uint8Array | null)[] = [];
    let bytes = 0;
    for (const r of b.reads) {
      const v = readValue(app, r.key, r.app) ?? null;
      if (values.length > 0 && bytes + (v?.length ?? 0) > answerFrameBytes) {
        this.io.sendFrame(b.from, encodeReadAnswers({ batch: b.batch, status: ReadStatus.ok, index, applied, commit, leader: 0, first, values }));
        first += values.length;
        values = [];
        bytes = 0;
      }
      values.push(v);
      bytes += v?.length ?? 0;
    }
    this.io.sendFrame(b.from, encodeReadAnswers({ batch: b.batch, status: ReadStatus.ok, index, applied, commit, leader: 0, first, values }));
  }

  /** The batch goes to another node (`leader`, 0: unknown). */
  redirect(b: ReadBatch, leader: number): void {
    this.unconfirmed.delete(b.ctx);
    this.io.sendFrame(b.from, encodeReadAnswers({ batch: b.batch, status: ReadStatus.redirect, index: 0, applied: 0, commit: 0, leader, first: 0, values: [] }));
  }

  refuse(b: ReadBatch, why: string): void {
    this.unconfirmed.delete(b.ctx);
    this.io.sendFrame(b.from, refusal(b.batch, why));
  }

  /** Batches not yet confirmed, for a role change to send back (`filter` picks which). */
  redirectUnconfirmed(leader: number, filter: (b: ReadBatch) => boolean = () => true): void {
    for (const b of [...this.unconfirmed.values()]) if (filter(b)) this.redirect(b, leader);
  }

  /** Forgets unconfirmed batches (the client resends what goes unanswered). */
  forget(filter: (b: ReadBatch) => boolean): void {
    for (const [ctx, b] of this.unconfirmed) if (filter(b)) this.unconfirmed.delete(ctx);
  }
}
