// The network's fault model as a table in shared memory: one row per directed link between
// actors, written by the supervisor and read by every sender on every send (no round trip).
// It only describes faults; the decision per frame is made by `LinkFaults` with a seeded RNG.
import { createRng, mixSeed, type Rng } from './rng.ts';

/** Per-link fault settings. Rates are probabilities in [0, 1]; times are milliseconds. */
export interface LinkPolicy {
  /** The link is cut (partition): every frame is dropped. */
  cut: boolean;
  loss: number;
  delayMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per frame. */
  jitterMs: number;
  duplicate: number;
  /** Probability that a frame is held back and overtaken by the next frame on its link. */
  reorder: number;
}

export const noFaults: LinkPolicy = Object.freeze({ cut: false, loss: 0, delayMs: 0, jitterMs: 0, duplicate: 0, reorder: 0 });

export const delayMsMax = 60_000;

const CUT = 0;
const LOSS = 1;
const DELAY = 2;
const JITTER = 3;
const DUPLICATE = 4;
const REORDER = 5;
// Set by the supervisor while the receiving actor is down, so senders drop instead of filling a
// ring nobody reads. Not a user setting: `isClean` treats it like any fault.
const DOWN = 6;
const FIELDS = 8;

export function validatePolicy(p: Partial<LinkPolicy>): void {
  for (const key of ['loss', 'duplicate', 'reorder'] as const) {
    const v = p[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new RangeError(`${key} must be a probability from 0 to 1, got ${String(v)}`);
  }
  for (const key of ['delayMs', 'jitterMs'] as const) {
    const v = p[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= delayMsMax)) throw new RangeError(`${key} must be from 0 to ${delayMsMax} ms, got ${String(v)}`);
  }
  if (p.cut !== undefined && typeof p.cut !== 'boolean') throw new TypeError(`cut must be true or false, got ${String(p.cut)}`);
}

/**
 * Rows for ids 0..idMax (0 is the supervisor). Float64 cells are written by one thread (the
 * supervisor) and read by others; a reader may see a change one frame late, never a torn value.
 */
export class FaultTable {
  private readonly cells: Float64Array;
  readonly idMax: number;

  static allocate(idMax: number): SharedArrayBuffer {
    return new SharedArrayBuffer((idMax + 1) * (idMax + 1) * FIELDS * 8);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.cells = new Float64Array(buffer);
    this.idMax = Math.round(Math.sqrt(this.cells.length / FIELDS)) - 1;
  }

  private base(from: number, to: number): number {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < 0 || from > this.idMax || to > this.idMax) {
      throw new RangeError(`no link ${from}→${to} in a table for ids 0..${this.idMax}`);
    }
    return (from * (this.idMax + 1) + to) * FIELDS;
  }

  get(from: number, to: number): LinkPolicy {
    const b = this.base(from, to);
    const c = this.cells;
    return { cut: c[b + CUT] === 1, loss: c[b + LOSS]!, delayMs: c[b + DELAY]!, jitterMs: c[b + JITTER]!, duplicate: c[b + DUPLICATE]!, reorder: c[b + REORDER]! };
  }

  set(from: number, to: number, policy: Partial<LinkPolicy>): void {
    validatePolicy(policy);
    const b = this.base(from, to);
    const c = this.cells;
    if (policy.cut !== undefined) c[b + CUT] = policy.cut ? 1 : 0;
    if (policy.loss !== undefined) c[b + LOSS] = policy.loss;
    if (policy.delayMs !== undefined) c[b + DELAY] = policy.delayMs;
    if (policy.jitterMs !== undefined) c[b + JITTER] = policy.jitterMs;
    if (policy.duplicate !== undefined) c[b + DUPLICATE] = policy.duplicate;
    if (policy.reorder !== undefined) c[b + REORDER] = policy.reorder;
  }

  /** Marks every link into `to` as leading to a dead actor (or alive again). */
  setDown(to: number, down: boolean): void {
    for (let from = 0; from <= this.idMax; from++) this.cells[this.base(from, to) + DOWN] = down ? 1 : 0;
  }

  isDown(from: number, to: number): boolean {
    return this.cells[this.base(from, to) + DOWN] === 1;
  }

  /** True when every field of the link is at its no-fault value: the sender's fast path. */
  isClean(from: number, to: number): boolean {
    const b = this.base(from, to);
    const c = this.cells;
    for (let i = 0; i < FIELDS; i++) if (c[b + i] !== 0) return false;
    return true;
  }
}

/** What to do with one frame. */
export interface FrameFate {
  copies: number; // 0 = dropped, 2 = duplicated
  delayMs: number;
  holdForReorder: boolean;
  dropReason?: 'cut' | 'loss' | 'down';
}

/**
 * The sender's view of one outgoing link: reads the shared row and decides each frame's fate
 * with a generator seeded by (run seed, from, to, incarnation), so a run repeats exactly for the
 * same sequence of sends.
 */
export class LinkFaults {
  private readonly rng: Rng;

  constructor(private readonly table: FaultTable, readonly from: number, readonly to: number, seed: number, incarnation = 0) {
    this.rng = createRng(mixSeed(seed, from, to, incarnation));
  }

  isClean(): boolean {
    return this.table.isClean(this.from, this.to);
  }

  fate(): FrameFate {
    if (this.table.isDown(this.from, this.to)) return { copies: 0, delayMs: 0, holdForReorder: false, dropReason: 'down' };
    const p = this.table.get(this.from, this.to);
    if (p.cut) return { copies: 0, delayMs: 0, holdForReorder: false, dropReason: 'cut' };
    // Every draw is made whatever the outcome, so one setting does not shift the others' draws.
    const lost = this.rng.chance(p.loss);
    const duplicated = this.rng.chance(p.duplicate);
    const held = this.rng.chance(p.reorder);
    const jitter = p.jitterMs > 0 ? this.rng.next() * p.jitterMs : 0;
    if (lost) return { copies: 0, delayMs: 0, holdForReorder: false, dropReason: 'loss' };
    return { copies: duplicated ? 2 : 1, delayMs: p.delayMs + jitter, holdForReorder: held };
  }
}
