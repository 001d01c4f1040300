// The Paxos safety properties as checkers over what the simulator observes after every step.
// "Chosen" is judged from the acceptors' durable acceptances themselves (a value accepted by a
// majority with one ballot), never from what a node claims it learned.
import type { Value } from '../paxos/index.ts';
import { ValueKind } from '../paxos/index.ts';
import type { Checker } from './protocol.ts';

export type PaxosObservation =
  | { kind: 'step'; node: number; promised: number }
  /** An acceptor made an acceptance durable. */
  | { kind: 'accepted'; node: number; slot: number; ballot: number; value: Value }
  | { kind: 'apply'; node: number; slot: number; value: Value }
  | { kind: 'proposed'; data: Uint8Array }
  | { kind: 'crash'; node: number }
  /** A node started again; `promised` is its durable promise, `applied` where its state machine came back. */
  | { kind: 'restart'; node: number; promised: number; applied: number }
  /** A node took (or installed from another) a snapshot of its state machine through `slot`. */
  | { kind: 'snapshot'; node: number; slot: number; digest: number; installed: boolean }
  | { kind: 'read-request'; requestId: number }
  | { kind: 'read-state'; node: number; requestId: number; index: number; applied: number; digest: number };

export const paxosInvariants = ['agreement', 'validity', 'promises-monotonic', 'learned-stable', 'linearizable-reads'] as const;

function sameValue(a: Value, b: Value): boolean {
  if (a.kind !== b.kind || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

const show = (v: Value) => (v.kind === ValueKind.noop ? 'noop' : v.kind === ValueKind.read ? 'read' : `<${Array.from(v.data.slice(0, 4)).join('.')}>`);

/**
 * Agreement: at most one value is ever chosen per slot. Every durable acceptance is counted per
 * (slot, ballot); once a majority accepted one ballot's value, that value is chosen, and any
 * other value reaching a majority there later (a replaced acceptance counts for its new ballot
 * only) is a violation. One ballot never carries two values for a slot.
 */
export class Agreement implements Checker<PaxosObservation> {
  readonly name = 'agreement';
  private readonly byBallot = new Map<string, { value: Value; acceptors: Set<number> }>();
  private readonly chosen = new Map<number, { value: Value; ballot: number }>();
  constructor(private readonly majority: number) {}

  observe(o: PaxosObservation): string | null {
    if (o.kind !== 'accepted') return null;
    const key = `${o.slot}/${o.ballot}`;
    let rec = this.byBallot.get(key);
    if (rec === undefined) this.byBallot.set(key, (rec = { value: o.value, acceptors: new Set() }));
    else if (!sameValue(rec.value, o.value)) return `slot ${o.slot}: ballot ${o.ballot} carries two values (${show(rec.value)} and ${show(o.value)})`;
    rec.acceptors.add(o.node);
    if (rec.acceptors.size < this.majority) return null;
    const was = this.chosen.get(o.slot);
    if (was === undefined) {
      this.chosen.set(o.slot, { value: o.value, ballot: o.ballot });
      return null;
    }
    if (!sameValue(was.value, o.value)) {
      return `slot ${o.slot}: ${show(was.value)} was chosen with ballot ${was.ballot}, and now ${show(o.value)} is chosen with ballot ${o.ballot} (accepted by ${[...rec.acceptors].join(',')})`;
    }
    return null;
  }

  chosenAt(slot: number): Value | undefined {
    return this.chosen.get(slot)?.value;
  }
}

/** Validity: only proposed commands are chosen (no-ops and read markers are the protocol's own). */
export class Validity implements Checker<PaxosObservation> {
  readonly name = 'validity';
  private readonly proposed = new Set<string>();

  observe(o: PaxosObservation): string | null {
    if (o.kind === 'proposed') this.proposed.add(Buffer.from(o.data).toString('hex'));
    if (o.kind !== 'apply' || o.value.kind !== ValueKind.normal) return null;
    return this.proposed.has(Buffer.from(o.value.data).toString('hex')) ? null : `n${o.node} applied at slot ${o.slot} a command nobody proposed`;
  }
}

/** An acceptor's promise never goes back: not within a run, and not below what it made durable across a restart. */
export class PromisesMonotonic implements Checker<PaxosObservation> {
  readonly name = 'promises-monotonic';
  private readonly seen = new Map<number, number>();

  observe(o: PaxosObservation): string | null {
    if (o.kind === 'crash') return null;
    if (o.kind === 'restart') {
      // Only what was durable survives; a promise not yet durable never left the node.
      this.seen.set(o.node, o.promised);
      return null;
    }
    if (o.kind !== 'step') return null;
    const prev = this.seen.get(o.node) ?? 0;
    if (o.promised < prev) return `n${o.node}'s promise went back from ballot ${prev} to ${o.promised}`;
    this.seen.set(o.node, o.promised);
    return null;
  }
}

/**
 * Learned values are stable: each node applies slots in order, and the value it applies at a
 * slot is the one chosen there (by the acceptors' record) and the one every other node applied.
 */
export class LearnedStable implements Checker<PaxosObservation> {
  readonly name = 'learned-stable';
  private readonly applied = new Map<number, Value>();
  private readonly next = new Map<number, number>();
  constructor(private readonly agreement: Agreement) {}

  observe(o: PaxosObservation): string | null {
    if (o.kind === 'restart') {
      this.next.set(o.node, o.applied + 1);
      return null;
    }
    if (o.kind === 'snapshot') {
      // A snapshot must be exactly the replay of the chosen values it covers.
      const want = this.digestThrough(o.slot);
      if (want !== undefined && want !== o.digest) return `n${o.node} ${o.installed ? 'installed' : 'took'} a snapshot through slot ${o.slot} that is not the replay of slots 1..${o.slot}`;
      if (o.installed) this.next.set(o.node, o.slot + 1);
      return null;
    }
    if (o.kind !== 'apply') return null;
    const expected = this.next.get(o.node) ?? 1;
    if (o.slot !== expected) return `n${o.node} applied slot ${o.slot} but its next slot to apply was ${expected}`;
    this.next.set(o.node, o.slot + 1);
    const chosen = this.agreement.chosenAt(o.slot);
    if (chosen === undefined) return `n${o.node} applied slot ${o.slot}, which no majority of acceptors accepted`;
    if (!sameValue(chosen, o.value)) return `n${o.node} applied ${show(o.value)} at slot ${o.slot}, but ${show(chosen)} was chosen there`;
    const first = this.applied.get(o.slot);
    if (first === undefined) this.applied.set(o.slot, o.value);
    else if (!sameValue(first, o.value)) return `n${o.node} applied ${show(o.value)} at slot ${o.slot}, another node ${show(first)}`;
    return null;
  }

  /** The digest after applying slots 1..slot (every slot below known), or undefined. */
  prefix: number[] = [0];
  digestThrough(slot: number): number | undefined {
    const p = this.prefix;
    while (p.length <= slot && this.applied.has(p.length)) p.push(valueDigest(p[p.length - 1]!, p.length, this.applied.get(p.length)!));
    return p.length > slot ? p[slot] : undefined;
  }
}

/**
 * Reads are linearizable: a read's index covers every slot chosen (contiguously, anywhere)
 * before it was asked for, and the state it was served from is exactly the replay through the
 * slot the node had applied.
 */
export class LinearizableReads implements Checker<PaxosObservation> {
  readonly name = 'linearizable-reads';
  private maxApplied = 0;
  private readonly asked = new Map<number, number>();
  constructor(private readonly learned: LearnedStable) {}

  observe(o: PaxosObservation): string | null {
    switch (o.kind) {
      case 'apply':
        if (o.slot > this.maxApplied) this.maxApplied = o.slot;
        return null;
      case 'read-request':
        this.asked.set(o.requestId, this.maxApplied);
        return null;
      case 'read-state': {
        const need = this.asked.get(o.requestId);
        this.asked.delete(o.requestId);
        if (need !== undefined && o.index < need) return `read ${o.requestId} served at n${o.node} with index ${o.index}, but slot ${need} was already applied when it was asked`;
        const want = this.learned.digestThrough(o.applied);
        if (want !== undefined && want !== o.digest) return `read ${o.requestId} at n${o.node} was served from a state that is not the replay of slots 1..${o.applied}`;
        return null;
      }
      default:
        return null;
    }
  }
}

export function createPaxosCheckers(nodes: number): Checker<PaxosObservation>[] {
  const agreement = new Agreement(Math.floor(nodes / 2) + 1);
  const learned = new LearnedStable(agreement);
  return [agreement, new Validity(), new PromisesMonotonic(), learned, new LinearizableReads(learned)];
}

/** The simulated state machine: a digest folded over (slot, kind, bytes) of every value applied. */
export function valueDigest(digest: number, slot: number, v: Value): number {
  let h = Math.imul((digest ^ slot) >>> 0, 0x9e3779b1) ^ v.kind;
  for (let i = 0; i < v.data.length; i++) h = Math.imul(h ^ v.data[i]!, 0x85ebca77);
  return h >>> 0;
}
