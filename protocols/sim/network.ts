// The simulated network: per-seed loss, duplication, delay with rare long spikes (which reorder
// messages), and a matrix of cut directed links for partitions (symmetric, asymmetric, a node
// isolated). Decides fates only; the engine schedules deliveries. All randomness from one Rng.
import type { Rng } from '../../runtime/rng.ts';

export interface NetworkProfile {
  loss: number;
  duplicate: number;
  delayMsMin: number;
  delayMsMax: number;
  /** Probability a message is held back for a long time (and so overtaken by later ones). */
  spike: number;
  spikeMsMax: number;
}

export const calmNetwork: NetworkProfile = { loss: 0, duplicate: 0, delayMsMin: 1, delayMsMax: 5, spike: 0, spikeMsMax: 0 };

export class Network {
  private readonly cut = new Set<number>();
  /** Extra delay on some links (a directed slow path), in ms. */
  private readonly slow = new Map<number, number>();
  profile: NetworkProfile;

  constructor(
    private readonly rng: Rng,
    profile: NetworkProfile,
  ) {
    this.profile = profile;
  }

  private static key(from: number, to: number): number {
    return from * 1024 + to;
  }

  isCut(from: number, to: number): boolean {
    return this.cut.size > 0 && this.cut.has(Network.key(from, to));
  }

  cutLink(from: number, to: number): void {
    if (from !== to) this.cut.add(Network.key(from, to));
  }

  /** Restores one directed link (the others stay as they are). */
  mendLink(from: number, to: number): void {
    this.cut.delete(Network.key(from, to));
  }

  /** Messages on this directed link take `extraMs` longer (0: back to normal). */
  slowLink(from: number, to: number, extraMs: number): void {
    if (extraMs > 0) this.slow.set(Network.key(from, to), extraMs);
    else this.slow.delete(Network.key(from, to));
  }

  /** Cuts every link between the two groups, both ways. */
  split(a: readonly number[], b: readonly number[]): void {
    for (const x of a) for (const y of b) {
      this.cutLink(x, y);
      this.cutLink(y, x);
    }
  }

  heal(): void {
    this.cut.clear();
    this.slow.clear();
  }

  get cutCount(): number {
    return this.cut.size;
  }

  /** Delivery delays for one send: [] when lost, two entries when duplicated. */
  fate(from: number, to: number): number[] {
    if (this.isCut(from, to)) return [];
    const p = this.profile;
    if (p.loss > 0 && this.rng.chance(p.loss)) return [];
    const extra = this.slow.size > 0 ? (this.slow.get(Network.key(from, to)) ?? 0) : 0;
    const first = this.delay() + extra;
    if (p.duplicate > 0 && this.rng.chance(p.duplicate)) return [first, this.delay() + extra];
    return [first];
  }

  private delay(): number {
    const p = this.profile;
    let d = this.rng.int(p.delayMsMin, p.delayMsMax + 1);
    if (p.spike > 0 && this.rng.chance(p.spike)) d += this.rng.int(0, p.spikeMsMax + 1);
    return d;
  }
}
