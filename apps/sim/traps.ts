// Directed fault scenarios for the replica simulator. The sequences that expose lease and
// read-index bugs are too precise for random faults to hit often (a follower crashing inside the
// fsync of its first term, a leader cut off right after a transfer, acks that arrive after a new
// leader rose), so a seed may arm one, which plays it out: faults, then a write on the new leader
// and a read on the old one. It only arranges; whether anything breaks is for the checkers to see.
import type { Rng } from '../../runtime/rng.ts';

export interface TrapHost {
  readonly ids: readonly number[];
  readonly rng: Rng;
  now(): number;
  after(ms: number, run: () => void): void;
  readonly links: { cut(from: number, to: number): void; mend(from: number, to: number): void; slow(from: number, to: number, extraMs: number): void };
  /** The node that believes it leads in the highest term (0: none). */
  leader(): number;
  isLeader(id: number): boolean;
  commitOf(id: number): number;
  /** The last index of the node's log (0 when down). */
  lastOf(id: number): number;
  termOf(id: number): number;
  isUp(id: number): boolean;
  crash(id: number): void;
  restart(id: number): void;
  transfer(from: number, to: number): void;
  /** The node starts an election now (its own election timer, firing). */
  campaign(id: number): void;
  /** The node's next fsync takes this long (so a crash can land inside it). */
  slowNextSync(id: number, ms: number): void;
  /** Hold (or resume) the workload's own operations, so logs stay level. */
  quiet(on: boolean): void;
  /** One put sent to `node` (no retry); `done(ok)` when it is answered or given up. */
  write(node: number, key: string, done: (ok: boolean) => void): void;
  /** One read of `key` by `mode` sent to `node` (no retry). */
  read(node: number, mode: 'index' | 'lease', key: string): void;
  note(line: string): void;
}

export const trapNames = ['transfer-then-isolate', 'restart-inside-lease', 'crash-in-first-term', 'late-read-acks', 'figure-8'] as const;
export type TrapName = (typeof trapNames)[number];

const trapKey = 'a';
/** Figure 8's A: more entries than the largest append batch the simulator draws (64). */
const figure8Writes = 70;

/**
 * What each scenario needs of Raft's settings: lease traps need leases (CheckQuorum), a node kept
 * at term 0 needs PreVote, and a leader that waits for late acks (or a node that must win a vote
 * soon after another leader fell) must not be turned away by CheckQuorum or PreVote. A seed that arms a
 * scenario gets these settings instead of its drawn ones.
 */
export const trapNeeds: Record<TrapName, { preVote?: boolean; checkQuorum?: boolean }> = {
  'transfer-then-isolate': { checkQuorum: true },
  'restart-inside-lease': { checkQuorum: true },
  'crash-in-first-term': { checkQuorum: true, preVote: true },
  'late-read-acks': { checkQuorum: false },
  'figure-8': { checkQuorum: false, preVote: false },
};

/** Arms a scenario for about 60% of seeds of three nodes or more (figure-8: five or more). */
export function pickTrap(rng: Rng, nodes: number): TrapName | null {
  if (!rng.chance(0.6)) return null;
  const name = trapNames[rng.int(0, trapNames.length)]!;
  // Each plays a leader against a majority that can elect another: three nodes at least.
  if (nodes < 3 || (name === 'figure-8' && nodes < 5)) return null;
  return name;
}

/** The scenario, if the settings in force (a caller may pin some) still meet its needs. */
export function trapFits(name: TrapName | null, raft: { preVote?: boolean; checkQuorum?: boolean }): TrapName | null {
  if (name === null) return null;
  const needs = trapNeeds[name];
  if (needs.checkQuorum !== undefined && (raft.checkQuorum === true) !== needs.checkQuorum) return null;
  if (needs.preVote !== undefined && (raft.preVote === true) !== needs.preVote) return null;
  return name;
}

export class Traps {
  /** A scenario is running: the engine holds its random faults. */
  active: TrapName | null = null;
  fired = 0;
  /** crash-in-first-term: the node to crash when it takes its first term, and what comes next. */
  private firstTerm: { node: number; then: () => void } | null = null;

  constructor(
    private readonly h: TrapHost,
    private readonly armed: TrapName | null,
    private readonly faultPhaseMs: number,
  ) {
    if (armed === 'crash-in-first-term') this.crashInFirstTerm();
    else if (armed !== null) this.h.after(h.rng.int(300, Math.max(301, faultPhaseMs / 2)), () => this.whenSteady());
  }

  private both(a: number, b: number, cut: boolean): void {
    if (cut) {
      this.h.links.cut(a, b);
      this.h.links.cut(b, a);
    } else {
      this.h.links.mend(a, b);
      this.h.links.mend(b, a);
    }
  }

  private mendAll(): void {
    for (const x of this.h.ids) for (const y of this.h.ids) if (x !== y) this.h.links.mend(x, y);
    for (const x of this.h.ids) for (const y of this.h.ids) if (x !== y) this.h.links.slow(x, y, 0);
  }

  private finish(afterMs: number): void {
    this.h.after(afterMs, () => {
      this.mendAll();
      this.h.quiet(false);
      this.active = null;
    });
  }

  /** Waits for a leader with every node up, quiets the workload, then plays the armed scenario. */
  private whenSteady(): void {
    if (this.h.now() > this.faultPhaseMs) return;
    const l = this.h.leader();
    if (l === 0 || !this.h.ids.every((id) => this.h.isUp(id))) {
      this.h.after(20, () => this.whenSteady());
      return;
    }
    this.fired++;
    this.active = this.armed;
    this.h.quiet(true);
    // Start from a whole network (random faults are held from now on), and let what is in
    // flight settle, so the followers' logs are level with the leader's.
    this.mendAll();
    this.h.after(60, () => {
      const lead = this.h.leader();
      if (lead === 0) {
        this.finish(0);
        return;
      }
      if (this.armed === 'restart-inside-lease') this.restartInsideLease(lead);
      else if (this.armed === 'transfer-then-isolate') this.transferThenIsolate(lead);
      else if (this.armed === 'figure-8') this.figure8(lead);
      else this.lateReadAcks(lead);
    });
  }

  /** Once `m` leads, write there; once that is answered, read the key on the old leader `l`. */
  private writeThenRead(m: number, l: number, mode: 'index' | 'lease', deadlineMs: number): void {
    const until = this.h.now() + deadlineMs;
    const poll = (): void => {
      if (this.h.now() > until) return;
      if (!this.h.isLeader(m)) {
        this.h.after(2, poll);
        return;
      }
      this.h.note(`trap: n${m} leads; a write there, then a ${mode} read on n${l}`);
      this.h.write(m, trapKey, (ok) => {
        if (ok) this.h.read(l, mode, trapKey);
      });
    };
    poll();
  }

  /**
   * Leader L is cut from m (m will time out); n backs L's lease. Just before m's election timer
   * runs out, n crashes and returns at once, cut from L. A node that forgets on restart that it
   * backed L's lease votes for m while L still serves lease reads.
   */
  private restartInsideLease(l: number): void {
    const others = this.h.ids.filter((id) => id !== l);
    const m = others[this.h.rng.int(0, others.length)]!;
    const rest = others.filter((id) => id !== m);
    this.h.note(`trap restart-inside-lease: leader n${l} cut from n${m}; n${rest.join(', n')} will crash and return cut from n${l}`);
    this.both(l, m, true);
    this.h.after(this.h.rng.int(70, 95), () => {
      for (const n of rest) {
        if (!this.h.isUp(n)) continue;
        this.h.crash(n);
        this.both(l, n, true);
        this.h.after(this.h.rng.int(2, 6), () => this.h.restart(n));
      }
      this.writeThenRead(m, l, 'lease', 250);
    });
    this.finish(600);
  }

  /**
   * Leader L hands leadership to m over a slow link: its TimeoutNow arrives after L has given the
   * transfer up and gone on leading, its lease renewed by n. When m campaigns (voters obey a
   * transfer's campaign whatever lease they back), L hears nobody. A leader that kept its lease
   * after sending TimeoutNow serves lease reads while m leads.
   */
  private transferThenIsolate(l: number): void {
    const others = this.h.ids.filter((id) => id !== l);
    const m = others[this.h.rng.int(0, others.length)]!;
    const slowMs = this.h.rng.int(150, 260);
    this.h.note(`trap transfer-then-isolate: n${l} hands over to n${m} over a link ${slowMs} ms slow; once n${m} campaigns, n${l} hears nobody`);
    this.h.links.slow(l, m, slowMs);
    const term = this.h.termOf(l);
    this.h.transfer(l, m);
    const until = this.h.now() + slowMs + 150;
    const poll = (): void => {
      if (this.h.now() > until) return;
      if (this.h.termOf(m) <= term) {
        this.h.after(1, poll);
        return;
      }
      // m got TimeoutNow and campaigns: L must not hear of it (nor, soon, say anything).
      for (const x of others) this.h.links.cut(x, l);
      this.h.after(20, () => {
        for (const x of others) this.h.links.cut(l, x);
      });
      this.writeThenRead(m, l, 'lease', 250);
    };
    poll();
    this.finish(slowMs + 500);
  }

  /**
   * Acks to leader L take long; L then cannot send. The others elect m, which commits a write;
   * only then do L's old read-round acks arrive. A leader that lets an old round's quorum release
   * newer rounds serves a read asked after the write from its old state.
   */
  private lateReadAcks(l: number): void {
    const others = this.h.ids.filter((id) => id !== l);
    const extra = this.h.rng.int(320, 420);
    this.h.note(`trap late-read-acks: acks to n${l} take ${extra} ms more; then n${l} cannot send`);
    for (const x of others) this.h.links.slow(x, l, extra);
    // A read now opens a round whose acks will be the late ones.
    this.h.read(l, 'index', trapKey);
    this.h.after(this.h.rng.int(12, 25), () => {
      for (const x of others) this.h.links.cut(l, x);
      // Whoever wins: write on the new leader, read on L.
      const until = this.h.now() + 300;
      const poll = (): void => {
        if (this.h.now() > until) return;
        const lead = others.find((id) => this.h.isLeader(id));
        if (lead === undefined) {
          this.h.after(2, poll);
          return;
        }
        this.writeThenRead(lead, l, 'index', 100);
      };
      poll();
    });
    this.finish(900);
  }

  /**
   * Node n misses the first election (its disk says term 0). Leader L is then cut from m. Just
   * before m's timer runs out, n hears L, acks, and crashes inside the fsync of its first term; it
   * returns at term 0, cut from L but not from m. A node that acked before its term was durable
   * now votes for m at once, while L counts the ack toward its lease.
   */
  private crashInFirstTerm(): void {
    if (this.h.ids.length < 3) return;
    this.active = 'crash-in-first-term';
    const n = this.h.ids[this.h.rng.int(0, this.h.ids.length)]!;
    for (const x of this.h.ids) if (x !== n) this.both(n, x, true);
    this.h.note(`trap crash-in-first-term: n${n} cut off until a leader has committed`);
    const wait = (): void => {
      if (this.h.now() > this.faultPhaseMs) {
        this.finish(0);
        return;
      }
      const l = this.h.leader();
      if (l === 0 || l === n || this.h.commitOf(l) === 0) {
        this.h.after(10, wait);
        return;
      }
      this.fired++;
      // L's lease majority: L, n, and enough others to make a majority with them; the rest
      // (with n, once it forgets) make a majority for a new leader.
      const quorum = Math.floor(this.h.ids.length / 2) + 1;
      const others = this.h.ids.filter((id) => id !== n && id !== l);
      const backers = others.slice(0, quorum - 2);
      const rest = others.slice(quorum - 2);
      for (const m of rest) this.both(l, m, true);
      this.h.note(`trap crash-in-first-term: leader n${l} (backed by n${[n, ...backers].join(', n')}) cut from n${rest.join(', n')}; n${n} hears n${l} soon`);
      this.h.after(this.h.rng.int(80, 92), () => {
        this.h.slowNextSync(n, 6);
        this.both(n, l, false);
        this.firstTerm = {
          node: n,
          then: () => {
            this.both(n, l, true);
            this.h.after(this.h.rng.int(2, 6), () => {
              this.h.restart(n);
              for (const m of rest) this.both(n, m, false);
            });
            // m has not heard L for an election timeout: its timer fires about now.
            const m = rest[0]!;
            this.h.after(this.h.rng.int(8, 14), () => this.h.campaign(m));
            this.writeThenRead(m, l, 'lease', 250);
          },
        };
      });
      this.finish(700);
    };
    this.h.after(10, wait);
  }

  /** Polls `ready` every 2 ms for up to `withinMs`, then runs `then` (or gives up silently). */
  private once(ready: () => boolean, withinMs: number, then: () => void): void {
    const until = this.h.now() + withinMs;
    const poll = (): void => {
      if (ready()) then();
      else if (this.h.now() < until) this.h.after(2, poll);
    };
    poll();
  }

  /**
   * Raft's Figure 8 (five nodes or more). L writes A (more entries than one append carries)
   * reaching only a, and crashes. d is elected without A, writes B at A's first index, is cut off
   * before anyone gets it, and crashes. L returns; L or a (only they can win) leads and copies A
   * to the others in batches, whose acks come back before any for its no-op. It must not commit A
   * by counting copies until an entry of its own term is on a majority too. That leader crashes
   * the moment it has committed more; d returns and, its last term newer than A's, campaigns
   * until elected, overwriting A everywhere. A leader that committed A has lost a committed
   * entry; a correct one had its no-op on a majority, so d cannot win.
   */
  private figure8(l: number): void {
    const others = this.h.ids.filter((id) => id !== l);
    if (others.length < 4) {
      this.finish(0);
      return;
    }
    // Level logs first: A must be the one entry a has beyond the rest.
    const level = () => this.h.isLeader(l) && this.h.ids.every((x) => this.h.lastOf(x) === this.h.lastOf(l) && this.h.commitOf(x) === this.h.commitOf(l));
    const ok = () => {
      // Levelling may outlast the fault phase: a scenario that starts after the heal would crash
      // nodes the heal already brought back.
      this.once(level, 300, () => (this.h.now() > this.faultPhaseMs ? this.finish(0) : this.figure8Level(l, others)));
    };
    ok();
    this.finish(1_500);
  }

  private figure8Level(l: number, others: number[]): void {
    const [a, , , d] = others as [number, number, number, number];
    const cutOff = (x: number) => {
      for (const y of this.h.ids) if (y !== x) this.both(x, y, true);
    };
    const join = (x: number) => {
      for (const y of this.h.ids) if (y !== x) this.both(x, y, false);
    };
    const base = this.h.lastOf(l);
    this.h.note(`trap figure-8: n${l} writes A reaching only n${a}, then crashes`);
    for (const x of others) if (x !== a) this.both(l, x, true);
    // Many entries, more than one append carries: acks for the first of them come back before
    // any for the new leader's no-op, which is when counting copies goes wrong.
    for (let i = 0; i < figure8Writes; i++) this.h.write(l, trapKey, () => {});
    const t0 = this.h.now();
    const enough = () => this.h.lastOf(a) >= base + figure8Writes || (this.h.now() >= t0 + 60 && this.h.lastOf(a) > base);
    this.once(enough, 150, () => {
      this.h.after(8, () => {
        this.h.crash(l);
        this.both(d, a, true);
        this.h.campaign(d);
        this.once(() => this.h.isLeader(d), 150, () => {
          this.h.note(`trap figure-8: n${d} leads in term ${this.h.termOf(d)}; it writes B at index ${base + 1} and is cut off`);
          cutOff(d);
          const dBase = this.h.lastOf(d);
          this.h.write(d, trapKey, () => {});
          this.once(() => this.h.lastOf(d) > dBase, 40, () => {
            this.h.after(10, () => {
              this.h.crash(d);
              join(l);
              this.both(l, d, true);
              this.h.restart(l);
              this.h.campaign(l);
              const next = () => [l, a].find((x) => this.h.isLeader(x) && this.h.commitOf(x) > base);
              this.once(() => next() !== undefined, 300, () => {
                const x = next()!;
                this.h.note(`trap figure-8: n${x} leads again and has committed through ${this.h.commitOf(x)}; it crashes, n${d} returns`);
                this.h.crash(x);
                join(d);
                this.h.restart(d);
                // x returns once d had its chance: every node is up again for the liveness check.
                this.h.after(400, () => this.h.restart(x));
                const until = this.h.now() + 300;
                const push = (): void => {
                  if (this.h.now() > until || !this.h.isUp(d) || this.h.isLeader(d)) return;
                  this.h.campaign(d);
                  this.h.after(25, push);
                };
                this.h.after(3, push);
              });
            });
          });
        });
      });
    });
  }

  /** A node's term changed (after a step of `stepMs`): the first-term trap springs inside its fsync. */
  onTerm(node: number, before: number, after: number, stepMs: number): void {
    const t = this.firstTerm;
    if (t === null || t.node !== node || before !== 0 || after === 0) return;
    this.firstTerm = null;
    this.h.after(Math.max(1, Math.floor(stepMs / 2)), () => {
      if (!this.h.isUp(node)) return;
      this.h.note(`trap crash-in-first-term: n${node} crashes inside the fsync of term ${after}`);
      this.h.crash(node);
      t.then();
    });
  }
}
