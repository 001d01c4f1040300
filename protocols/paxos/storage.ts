// What a Paxos node keeps durable: the acceptor's promise and accepted proposals, and the chosen
// values it learned (a restarted node applies them again and serves them to nodes behind). The
// core only reads it at start; the host writes it from Ready batches. An in-memory store for the
// simulator and tests; it survives a simulated crash because the host keeps the object.
import type { Chosen, PaxosHardState, PaxosReady, Proposal } from './types.ts';

export interface PaxosStorage {
  initialState(): PaxosHardState;
  /** The newest durable snapshot's last slot (0: none): slots through it are not kept. */
  snapshotSlot(): number;
  /** Every proposal accepted, at most one per slot (the latest). */
  accepted(): Iterable<Proposal>;
  /** Every chosen value learned. */
  learned(): Iterable<Chosen>;
}

export class MemoryPaxosStorage implements PaxosStorage {
  private hard: PaxosHardState = { promised: 0, commit: 0 };
  private readonly acceptedBySlot = new Map<number, Proposal>();
  private readonly learnedBySlot = new Map<number, Chosen>();
  private snapSlot = 0;

  initialState(): PaxosHardState {
    return this.hard;
  }

  snapshotSlot(): number {
    return this.snapSlot;
  }

  /** A snapshot through `slot` is durable (taken here or installed): drop what it covers. */
  compact(slot: number): void {
    if (slot <= this.snapSlot) return;
    this.snapSlot = slot;
    for (const s of [...this.acceptedBySlot.keys()]) if (s <= slot) this.acceptedBySlot.delete(s);
    for (const s of [...this.learnedBySlot.keys()]) if (s <= slot) this.learnedBySlot.delete(s);
  }

  accepted(): Iterable<Proposal> {
    return this.acceptedBySlot.values();
  }

  learned(): Iterable<Chosen> {
    return this.learnedBySlot.values();
  }

  /** Makes a Ready's durable part durable (the host's step 2). */
  persist(rd: PaxosReady): void {
    if (rd.snapshotSlot > 0) this.compact(rd.snapshotSlot);
    if (rd.hardState !== null) this.hard = rd.hardState;
    for (const p of rd.accepted) this.acceptedBySlot.set(p.slot, p);
    for (const c of rd.learned) this.learnedBySlot.set(c.slot, c);
  }

  /** The ballot this acceptor accepted at `slot` (0: none), for checks. */
  acceptedAt(slot: number): Proposal | undefined {
    return this.acceptedBySlot.get(slot);
  }
}
