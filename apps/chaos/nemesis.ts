// The nemesis of `concur chaos`: on a seeded schedule it injects one fault at a time into a live
// cluster (partitions of several shapes, crashes, loss, delay, pauses, membership changes), holds
// it, and undoes it. It never leaves a fault behind: `healAll` restores every link and restarts
// every node. A membership change runs in the background, so later partitions and crashes land
// in the middle of it (a new member catching up, a joint step, a leader removing itself).
import type { Cluster } from '../cluster/cluster.ts';
import { createRng, type Rng } from '../../runtime/rng.ts';

export const faultKinds = ['partition', 'crash', 'loss', 'delay', 'pause', 'membership'] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface NemesisSettings {
  faults: readonly FaultKind[];
  seed: number;
  /** A fault is held for a time drawn from [faultMsMin, faultMsMax). */
  faultMsMin: number;
  faultMsMax: number;
  /** Calm between faults, drawn from [calmMsMin, calmMsMax). */
  calmMsMin: number;
  calmMsMax: number;
}

export const nemesisDefaults: Omit<NemesisSettings, 'faults' | 'seed'> = { faultMsMin: 1_000, faultMsMax: 3_000, calmMsMin: 300, calmMsMax: 1_500 };

export interface FaultRecord {
  kind: FaultKind;
  /** What exactly was done, for the summary. */
  what: string;
  atMs: number;
}

export class Nemesis {
  readonly injected: FaultRecord[] = [];
  private readonly rng: Rng;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private readonly crashed = new Set<number>();
  private readonly startedAt = performance.now();
  /** The membership change under way (at most one: the cluster allows one pending change). */
  private membershipOp: Promise<void> | null = null;
  /** The cluster's size when the nemesis started: it grows one past it, then shrinks back. */
  private baseSize = 0;

  constructor(private readonly cluster: Cluster, private readonly settings: NemesisSettings, private readonly log: (line: string) => void = () => {}) {
    this.rng = createRng(settings.seed);
  }

  start(): void {
    if (this.settings.faults.length === 0) return;
    this.baseSize = this.cluster.members().length || this.cluster.supervisor.ids.length;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops injecting, undoes every fault, restarts crashed nodes. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.membershipOp;
    await this.healAll();
  }

  counts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const f of this.injected) c[f.kind] = (c[f.kind] ?? 0) + 1;
    return c;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(0, xs.length)]!;
  }

  private round: FaultKind[] = [];

  private shuffled<T>(xs: readonly T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  private async run(): Promise<void> {
    const s = this.settings;
    while (this.running) {
      await this.sleep(this.rng.int(s.calmMsMin, s.calmMsMax));
      if (!this.running) break;
      // Rounds over the enabled kinds in a shuffled order, so every kind is injected as often
      // as the others, not merely with equal chance.
      if (this.round.length === 0) this.round = this.shuffled(s.faults);
      const kind = this.round.pop()!;
      const holdMs = this.rng.int(s.faultMsMin, s.faultMsMax);
      // With membership changes, a node picked a moment ago may have been removed since.
      const undo = await this.inject(kind, holdMs).catch((err: Error) => {
        this.log(`nemesis: ${kind} not injected: ${err.message}`);
        return async () => {};
      });
      await this.sleep(holdMs);
      await undo().catch((err: Error) => this.log(`nemesis: undoing ${kind} failed: ${err.message}`));
    }
  }

  private record(kind: FaultKind, what: string): void {
    this.injected.push({ kind, what, atMs: Math.round(performance.now() - this.startedAt) });
    this.log(`nemesis: ${what}`);
  }

  /** Injects one fault and returns how to undo it. */
  private async inject(kind: FaultKind, holdMs: number): Promise<() => Promise<void>> {
    const c = this.cluster;
    const ids = c.supervisor.ids;
    const leader = c.leader();
    switch (kind) {
      case 'partition': {
        const shape = this.pick(['leader-isolated', 'majority-minority', 'bridge'] as const);
        if (shape === 'leader-isolated' && leader !== null) {
          c.supervisor.isolate(leader);
          this.record(kind, `isolate leader ${leader}`);
        } else if (shape === 'bridge' && ids.length >= 3) {
          // Two sides that only one node hears both of: {a.., bridge} and {bridge, ..b}.
          const order = this.shuffled(ids);
          const bridge = order[0]!;
          const rest = order.slice(1);
          const left = rest.slice(0, Math.ceil(rest.length / 2));
          const right = rest.slice(left.length);
          c.supervisor.cut(left, right);
          c.supervisor.cut(right, left);
          this.record(kind, `bridge partition [${left}] | ${bridge} | [${right}]`);
        } else {
          const order = this.shuffled(ids);
          const minority = order.slice(0, Math.floor((ids.length - 1) / 2) || 1);
          const majority = order.slice(minority.length);
          c.supervisor.partition([minority, majority]);
          this.record(kind, `partition [${minority}] | [${majority}]`);
        }
        return async () => c.supervisor.heal();
      }
      case 'crash': {
        const up = ids.filter((id) => c.supervisor.isUp(id));
        // Never take down a majority: the point is to see recovery, not a dead cluster.
        if (this.crashed.size + 1 > Math.floor((ids.length - 1) / 2) || up.length === 0) return async () => {};
        const target = leader !== null && this.rng.chance(0.5) ? leader : this.pick(up);
        await c.supervisor.crash(target);
        this.crashed.add(target);
        this.record(kind, `crash node ${target}${target === leader ? ' (leader)' : ''}`);
        return async () => {
          await c.restart(target);
          this.crashed.delete(target);
        };
      }
      case 'loss': {
        const loss = Math.round(this.rng.int(10, 40)) / 100;
        c.supervisor.setFaults({ loss });
        this.record(kind, `${Math.round(loss * 100)}% message loss on every link`);
        return async () => c.supervisor.setFaults({ loss: 0 });
      }
      case 'delay': {
        const delayMs = this.rng.int(10, 80);
        const jitterMs = this.rng.int(0, 60);
        c.supervisor.setFaults({ delayMs, jitterMs });
        this.record(kind, `delay ${delayMs} ms + up to ${jitterMs} ms jitter on every link`);
        return async () => c.supervisor.setFaults({ delayMs: 0, jitterMs: 0 });
      }
      case 'membership':
        if (this.membershipOp === null) this.membershipOp = this.changeMembership().finally(() => (this.membershipOp = null));
        return async () => {};
      case 'pause': {
        const target = leader !== null && this.rng.chance(0.5) ? leader : this.pick(ids);
        const ms = Math.min(holdMs, 1_500);
        this.record(kind, `pause node ${target}${target === leader ? ' (leader)' : ''} for ${ms} ms`);
        // The call returns when the pause ends; it must not hold up the nemesis' schedule.
        void c.supervisor.call(target, 'pause', [ms], ms + 5_000).catch(() => {});
        return async () => {};
      }
    }
  }

  /**
   * One change, chosen so the cluster hovers around its starting size: promote a learner; shrink
   * back (removing the leader as often as any member) once it has grown; else add a voter,
   * learner or witness, or move leadership. Refusals (a change still pending, a lagging learner)
   * are part of the game and only logged.
   */
  private async changeMembership(): Promise<void> {
    const c = this.cluster;
    const members = c.members();
    const leader = c.leader();
    const learners = members.filter((m) => m.role === 'learner').map((m) => m.id);
    const fullVoters = members.filter((m) => m.role === 'voter').map((m) => m.id);
    const hasWitness = members.some((m) => m.role === 'witness');
    const timeoutMs = 10_000;
    let what: string;
    let op: () => Promise<unknown>;
    if (learners.length > 0) {
      const id = this.pick(learners);
      [what, op] = [`promote learner ${id}`, () => c.promote(id, timeoutMs)];
    } else if (members.length > this.baseSize) {
      const id = leader !== null && this.rng.chance(0.35) ? leader : this.pick(members.map((m) => m.id));
      [what, op] = [`remove node ${id}${id === leader ? ' (leader)' : ''}`, () => c.removeMember(id, timeoutMs)];
    } else {
      const r = this.rng.int(0, 100);
      const others = fullVoters.filter((id) => id !== leader);
      if (r < 20 && others.length > 0) {
        const to = this.pick(others);
        [what, op] = [`transfer leadership ${leader ?? 'none'} → ${to}`, () => c.transfer(to, timeoutMs)];
      } else {
        const role = r < 35 && !hasWitness ? 'witness' : r < 55 ? 'learner' : 'voter';
        [what, op] = [`add a ${role}`, () => c.addMember(role, timeoutMs)];
      }
    }
    this.record('membership', what);
    try {
      const res = await op();
      this.log(`nemesis: ${what}: done ${JSON.stringify(res)}`);
    } catch (err) {
      this.log(`nemesis: ${what}: ${(err as Error).message}`);
    }
  }

  /** Every link whole again and every node running. */
  async healAll(): Promise<void> {
    const c = this.cluster;
    c.supervisor.clearFaults();
    for (const id of c.supervisor.ids) {
      if (!c.supervisor.isUp(id)) {
        try {
          // Through the cluster, which refuses what would be unsafe (a memory node has lost its log).
          await c.restart(id);
        } catch (err) {
          this.log(`nemesis: restarting node ${id} failed: ${(err as Error).message}`);
        }
      }
    }
    this.crashed.clear();
  }
}
