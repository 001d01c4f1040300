// The deterministic simulation engine: one thread, virtual time, a seeded network and fault
// schedule, a client that proposes, retries and reads, and the protocol's checkers run on every
// observation. A seed fully determines a run, so any failure replays exactly. No real clock here.
import { createRng, mixSeed, type Rng } from '../../runtime/rng.ts';
import { EventQueue } from './event-queue.ts';
import { calmNetwork, Network, type NetworkProfile } from './network.ts';
import type { Checker, SimCluster, SimEnv, SimMessage, SimProtocol } from './protocol.ts';

export interface SimOptions {
  seed: number;
  nodes: number;
  mutation?: string;
  /** Record a trace of every step (slower; used to replay a failing seed). */
  tracing?: boolean;
  /** Trace lines kept (the last ones); 0 keeps all. */
  traceLinesMax?: number;
  /** Virtual time with faults before everything heals. */
  faultPhaseMs?: number;
  /** After healing, a leader must exist and all pending commands commit everywhere within this. */
  livenessMs?: number;
  tickMs?: number;
  /** Hard bound on steps per seed, so a livelock cannot hang the run. */
  stepsMax?: number;
}

export interface SimViolation {
  invariant: string;
  message: string;
  step: number;
  timeMs: number;
}

export interface SeedResult {
  seed: number;
  ok: boolean;
  violation: SimViolation | null;
  steps: number;
  /** Highest committed index reached (entries, no-ops included). */
  commits: number;
  /** Distinct client commands that committed. */
  commands: number;
  reads: number;
  crashes: number;
  partitions: number;
  maxTerm: number;
  /** The protocol's own counters (SimCluster.stats), e.g. reads per read path. */
  stats: Record<string, number>;
  virtualMs: number;
  /** Last trace lines (when tracing) ending at the violation. */
  trace: string[];
}

interface PendingCommand {
  readonly bytes: Uint8Array;
  lastProposedMs: number;
  proposedTo: number;
}

const defaults = { faultPhaseMs: 6000, livenessMs: 4000, tickMs: 10, stepsMax: 2_000_000, traceLinesMax: 400 };
/** A client re-sends a command at once to a new leader, and to the same one only after this long. */
const retrySameLeaderMs = 1000;
const submitPerCallMax = 64;
/** Commands a client keeps outstanding; a blocked client issues no new ones (bounded load). */
const clientPendingMax = 64;

export function runSeed<M extends SimMessage, O>(protocol: SimProtocol<M, O>, options: SimOptions): SeedResult {
  return new Run(protocol, options).execute();
}

class Run<M extends SimMessage, O> {
  private readonly o: Required<Omit<SimOptions, 'mutation'>> & { mutation?: string };
  private readonly queue = new EventQueue();
  private readonly faultRng: Rng;
  private readonly clientRng: Rng;
  private readonly diskRng: Rng;
  private readonly network: Network;
  private readonly cluster: SimCluster<M>;
  private readonly checkers: Checker<O>[];
  private readonly nodeIds: number[];
  private time = 0;
  private steps = 0;
  private violation: SimViolation | null = null;
  private trace: string[] = [];
  private healed = false;
  private healedAt = 0;
  private done = false;
  private readonly pending = new Map<number, PendingCommand>();
  private nextCommand = 1;
  private commands = 0;
  private reads = 0;
  private crashes = 0;
  private partitions = 0;
  private readonly crashEpoch = new Map<number, number>();
  private diskMsMax = 3;
  /** Leader traps armed: each strikes the next new leader soon after it is elected. */
  private traps = 0;
  private lastLeader = 0;
  /** Churn seeds: every new leader is trapped with this probability (0 in calm seeds). */
  private readonly trapChance: number;

  constructor(
    private readonly protocol: SimProtocol<M, O>,
    options: SimOptions,
  ) {
    // Explicit options win over the protocol's own defaults, which win over the engine's.
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SimOptions;
    this.o = { ...defaults, ...protocol.defaults, tracing: false, ...given };
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 64) throw new RangeError(`nodes must be 1..64, got ${options.nodes}`);
    const seed = options.seed;
    this.faultRng = createRng(mixSeed(seed, 1));
    this.clientRng = createRng(mixSeed(seed, 2));
    this.diskRng = createRng(mixSeed(seed, 3));
    this.network = new Network(createRng(mixSeed(seed, 4)), this.randomProfile());
    this.diskMsMax = this.faultRng.int(0, 6);
    this.trapChance = this.faultRng.chance(0.3) ? 0.4 : 0;
    this.nodeIds = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const run = this;
    const env: SimEnv<M, O> = {
      now: () => run.time,
      nodeSeed: (node, incarnation) => mixSeed(seed, 100 + node, incarnation),
      send: (msg) => run.send(msg),
      after: (delayMs, label, action) => run.queue.push(run.time + delayMs, label, action),
      observe: (obs) => run.observe(obs),
      applied: (_node, _index, command) => run.onApplied(command),
      diskDelayMs: () => (run.diskMsMax === 0 ? 0 : run.diskRng.int(0, run.diskMsMax + 1)),
      links: {
        cut: (from, to) => run.network.cutLink(from, to),
        mend: (from, to) => run.network.mendLink(from, to),
        slow: (from, to, extraMs) => run.network.slowLink(from, to, extraMs),
      },
      tracing: this.o.tracing,
      trace: (line) => run.addTrace(line),
    };
    this.checkers = protocol.createCheckers(this.nodeIds);
    this.cluster = protocol.createCluster(this.nodeIds, env, { mutation: options.mutation, faultPhaseMs: this.o.faultPhaseMs });
  }

  private randomProfile(): NetworkProfile {
    const r = this.faultRng;
    return {
      loss: [0, 0.01, 0.05, 0.1, 0.2][r.int(0, 5)]!,
      duplicate: [0, 0.01, 0.05][r.int(0, 3)]!,
      delayMsMin: r.int(0, 3),
      delayMsMax: r.int(3, 15),
      spike: [0, 0.01, 0.05][r.int(0, 3)]!,
      spikeMsMax: r.int(20, 300),
    };
  }

  execute(): SeedResult {
    const { tickMs, faultPhaseMs } = this.o;
    for (const id of this.nodeIds) this.scheduleTick(id, this.faultRng.int(0, tickMs));
    this.queue.push(this.clientRng.int(1, 20), 'client', () => this.clientPropose());
    this.queue.push(this.clientRng.int(1, 40), 'client', () => this.clientRead());
    this.queue.push(this.faultRng.int(50, 300), 'fault', () => this.fault());
    this.queue.push(faultPhaseMs, 'heal', () => this.heal());
    const deadline = faultPhaseMs + this.o.livenessMs;
    while (this.violation === null && !this.done) {
      const ev = this.queue.pop();
      if (ev === undefined) break;
      this.time = ev.at;
      if (this.time > deadline) {
        this.fail('liveness', this.livenessReport());
        break;
      }
      this.steps++;
      if (this.steps > this.o.stepsMax) {
        this.fail('liveness', `more than ${this.o.stepsMax} steps (a livelock?)`);
        break;
      }
      // Labels starting with '~' (ticks, client timers) are traced only if the event did something.
      const quiet = ev.label.startsWith('~');
      const mark = this.trace.length;
      if (this.o.tracing && ev.label !== '') this.addTrace(quiet ? ev.label.slice(1) : ev.label);
      try {
        ev.run();
      } catch (err) {
        this.fail('assertion', err instanceof Error ? (err.stack ?? err.message) : String(err));
      }
      if (quiet && this.o.tracing && this.trace.length === mark + 1) this.trace.pop();
    }
    if (this.violation === null && !this.done) this.fail('liveness', 'the event queue ran dry');
    if (this.violation !== null && this.o.tracing) {
      this.addTrace(`-- state at the violation (t=${this.time}ms, step ${this.steps}):`);
      for (const line of this.cluster.describeNodes()) this.addTrace(`   ${line}`);
    }
    return {
      seed: this.o.seed,
      ok: this.violation === null,
      violation: this.violation,
      steps: this.steps,
      commits: this.cluster.committedIndex(),
      commands: this.commands,
      reads: this.reads,
      crashes: this.crashes,
      partitions: this.partitions,
      maxTerm: this.cluster.maxTerm(),
      stats: this.cluster.stats?.() ?? {},
      virtualMs: this.time,
      trace: this.trace,
    };
  }

  // ------------------------------------------------------------------ plumbing

  private addTrace(line: string): void {
    this.trace.push(`t=${String(this.time).padStart(5)} #${String(this.steps).padEnd(6)} ${line}`);
    const max = this.o.traceLinesMax;
    if (max > 0 && this.trace.length > 2 * max) this.trace = this.trace.slice(-max);
  }

  private fail(invariant: string, message: string): void {
    if (this.violation !== null) return;
    this.violation = { invariant, message, step: this.steps, timeMs: this.time };
    if (this.o.tracing) this.addTrace(`!! ${invariant} violated: ${message.split('\n')[0]}`);
    if (this.o.traceLinesMax > 0 && this.trace.length > this.o.traceLinesMax) this.trace = this.trace.slice(-this.o.traceLinesMax);
  }

  private observe(obs: O): void {
    for (const c of this.checkers) {
      const msg = c.observe(obs);
      if (msg !== null) {
        this.fail(c.name, msg);
        return;
      }
    }
  }

  private send(msg: M): void {
    const delays = this.network.fate(msg.from, msg.to);
    if (delays.length === 0) {
      if (this.o.tracing) this.addTrace(`   drop ${this.cluster.describeMessage(msg)}`);
      return;
    }
    for (const d of delays) {
      const label = this.o.tracing ? `deliver ${this.cluster.describeMessage(msg)}` : '';
      this.queue.push(this.time + d, label, () => {
        // A partition formed or the receiver died while the message was in flight.
        if (!this.cluster.isUp(msg.to) || this.network.isCut(msg.from, msg.to)) return;
        this.cluster.deliver(msg);
      });
    }
  }

  private scheduleTick(id: number, at: number): void {
    this.queue.push(at, this.o.tracing ? `~tick n${id}` : '', () => {
      if (this.cluster.isUp(id)) this.cluster.tick(id);
      this.scheduleTick(id, this.time + this.o.tickMs);
      if (id === this.nodeIds[0]) {
        // One node's tick doubles as the leader watch and, after healing, the liveness probe.
        if (this.healed) this.checkLiveness();
        else this.watchLeader();
      }
    });
  }

  // ------------------------------------------------------------------ client

  private onApplied(command: Uint8Array): void {
    const id = new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(0);
    if (this.pending.delete(id)) this.commands++;
  }

  private clientPropose(): void {
    if (!this.healed) {
      if (this.pending.size < clientPendingMax) this.newCommand();
      // Bursty load: idle spells leave new leaders with nothing of their own term to send.
      const gap = this.clientRng.chance(0.03) ? this.clientRng.int(100, 600) : this.clientRng.int(1, 25);
      this.queue.push(this.time + gap, this.o.tracing ? '~client propose' : '', () => this.clientPropose());
    }
    this.submitPending();
  }

  private newCommand(): void {
    const bytes = new Uint8Array(8);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, this.nextCommand);
    view.setUint32(4, this.clientRng.uint32());
    this.pending.set(this.nextCommand++, { bytes, lastProposedMs: -Infinity, proposedTo: 0 });
  }

  /** Like a real client: send to whoever leads now, retry what has not committed after a while. */
  private submitPending(): void {
    const leader = this.cluster.leader();
    if (leader === 0) return;
    let n = 0;
    for (const [id, p] of this.pending) {
      if (p.proposedTo === leader && this.time - p.lastProposedMs < retrySameLeaderMs) continue;
      if (!this.cluster.propose(leader, p.bytes)) break;
      if (this.o.tracing) this.addTrace(`   client: command ${id} → n${leader}`);
      p.lastProposedMs = this.time;
      p.proposedTo = leader;
      if (++n >= submitPerCallMax) break;
    }
  }

  private clientRead(): void {
    if (this.cluster.read !== undefined) {
      const up = this.nodeIds.filter((id) => this.cluster.isUp(id));
      if (up.length > 0) {
        const node = up[this.clientRng.int(0, up.length)]!;
        const id = ++this.reads;
        if (this.o.tracing) this.addTrace(`   client: read ${id} → n${node}`);
        this.cluster.read(node, id);
      }
    }
    this.queue.push(this.time + this.clientRng.int(5, 60), this.o.tracing ? '~client read' : '', () => this.clientRead());
  }

  // ------------------------------------------------------------------ faults

  private fault(): void {
    if (this.healed) return;
    if (this.cluster.faultsPaused?.() === true) {
      // A directed scenario of the cluster's own is running: random faults would only undo it.
      this.queue.push(this.time + 20, this.o.tracing ? '~fault' : '', () => this.fault());
      return;
    }
    const r = this.faultRng;
    const ids = this.nodeIds;
    const leader = this.cluster.leader();
    const roll = r.next();
    if (roll < 0.25) {
      const up = ids.filter((id) => this.cluster.isUp(id));
      if (up.length > 0) {
        const victim = leader !== 0 && r.chance(0.5) ? leader : up[r.int(0, up.length)]!;
        this.crash(victim, r.int(20, 800));
      }
    } else if (roll < 0.5) {
      this.partitions++;
      const kind = r.int(0, 4);
      if (kind === 0) {
        const shuffled = shuffle(r, ids);
        const cut = r.int(1, ids.length);
        this.network.split(shuffled.slice(0, cut), shuffled.slice(cut));
        this.note(`partition ${fmt(shuffled.slice(0, cut))} | ${fmt(shuffled.slice(cut))}`);
      } else if (kind === 1 && leader !== 0) {
        this.network.split([leader], ids.filter((id) => id !== leader));
        this.note(`partition: leader n${leader} cut off from everyone`);
      } else if (kind === 2) {
        const a = leader !== 0 && r.chance(0.5) ? leader : ids[r.int(0, ids.length)]!;
        const outbound = r.chance(0.5);
        for (const b of ids) if (b !== a) (outbound ? this.network.cutLink(a, b) : this.network.cutLink(b, a));
        this.note(`asymmetric partition: n${a} ${outbound ? 'cannot send to' : 'cannot hear from'} anyone`);
      } else {
        const a = ids[r.int(0, ids.length)]!;
        const b = ids[r.int(0, ids.length)]!;
        this.network.cutLink(a, b);
        this.network.cutLink(b, a);
        this.note(`link n${a} — n${b} cut`);
      }
    } else if (roll < 0.72) {
      if (this.network.cutCount > 0) this.note('partitions healed');
      this.network.heal();
    } else if (roll < 0.8) {
      if (leader !== 0 && this.cluster.transfer !== undefined) {
        const others = ids.filter((id) => id !== leader);
        if (others.length > 0) {
          const to = others[r.int(0, others.length)]!;
          this.note(`transfer leadership n${leader} → n${to}`);
          this.cluster.transfer(leader, to);
        }
      }
    } else if (roll < 0.85) {
      this.traps += r.int(1, 4);
      this.note(`${this.traps} leader trap(s) armed: the next new leaders will be cut off or crashed at once`);
    } else if (roll < 0.93) {
      this.network.profile = this.randomProfile();
      const p = this.network.profile;
      this.note(`network: loss ${p.loss}, dup ${p.duplicate}, delay ${p.delayMsMin}-${p.delayMsMax}ms, spikes ${p.spike} up to ${p.spikeMsMax}ms`);
    }
    this.queue.push(this.time + r.int(20, 300), this.o.tracing ? '~fault' : '', () => this.fault());
  }

  /**
   * Short-lived leaderships that replicate to a minority are where commit-rule bugs (Raft's
   * Figure 8) live; random faults rarely hit a leader in its first milliseconds, a trap does.
   */
  private watchLeader(): void {
    const leader = this.cluster.leader();
    if (leader === this.lastLeader) return;
    this.lastLeader = leader;
    if (leader === 0 || this.cluster.faultsPaused?.() === true) return;
    const r = this.faultRng;
    if (this.traps > 0) this.traps--;
    else if (!r.chance(this.trapChance)) return;
    const delay = r.int(0, 15);
    const isolate = r.chance(0.5);
    this.queue.push(this.time + delay, this.o.tracing ? `trap springs on n${leader}` : '', () => {
      if (this.healed || !this.cluster.isUp(leader) || this.cluster.faultsPaused?.() === true) return;
      if (isolate) {
        this.partitions++;
        this.network.split([leader], this.nodeIds.filter((id) => id !== leader));
        this.note(`partition: new leader n${leader} cut off from everyone`);
      } else {
        this.crash(leader, r.int(20, 400));
      }
    });
  }

  private note(line: string): void {
    if (this.o.tracing) this.addTrace(`   ${line}`);
  }

  private crash(node: number, restartAfterMs: number): void {
    this.crashes++;
    const epoch = (this.crashEpoch.get(node) ?? 0) + 1;
    this.crashEpoch.set(node, epoch);
    this.note(`crash n${node} (restart in ${restartAfterMs}ms)`);
    this.cluster.crash(node);
    this.queue.push(this.time + restartAfterMs, this.o.tracing ? `~restart n${node}` : '', () => {
      if (this.crashEpoch.get(node) === epoch && !this.cluster.isUp(node)) this.cluster.restart(node);
    });
  }

  private heal(): void {
    this.healed = true;
    this.healedAt = this.time;
    this.network.heal();
    this.network.profile = calmNetwork;
    this.cluster.onHeal?.();
    this.note('heal: partitions removed, network calm, every node restarted; liveness clock starts');
    for (const id of this.nodeIds) if (!this.cluster.isUp(id)) this.cluster.restart(id);
  }

  private checkLiveness(): void {
    this.submitPending();
    if (this.pending.size === 0 && this.cluster.leader() !== 0 && this.cluster.converged()) this.done = true;
  }

  private livenessReport(): string {
    const why =
      this.cluster.leader() === 0
        ? 'no leader'
        : this.pending.size > 0
          ? `${this.pending.size} client commands still not committed (e.g. #${this.pending.keys().next().value})`
          : 'nodes have not converged on one applied index';
    return `${this.o.livenessMs}ms after healing at t=${this.healedAt}ms: ${why}; nodes: ${this.cluster.describeNodes().join(' | ')}`;
  }
}

function shuffle(r: Rng, xs: readonly number[]): number[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.int(0, i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function fmt(ids: readonly number[]): string {
  return `{${ids.map((i) => `n${i}`).join(',')}}`;
}

export interface SimSummary {
  protocol: string;
  nodes: number;
  seeds: number;
  firstSeed: number;
  violations: number;
  steps: number;
  commits: number;
  commands: number;
  reads: number;
  crashes: number;
  partitions: number;
  /** SeedResult.stats summed over the seeds. */
  stats: Record<string, number>;
  failed: SeedResult | null;
  wallMs: number;
}

/** Runs seeds firstSeed.. in order and stops at the first violation. */
export function runSeeds<M extends SimMessage, O>(
  protocol: SimProtocol<M, O>,
  options: Omit<SimOptions, 'seed' | 'tracing'> & { seeds: number; firstSeed?: number; onSeed?: (r: SeedResult, done: number) => void },
  clock: () => number = () => 0,
): SimSummary {
  const firstSeed = options.firstSeed ?? 1;
  const started = clock();
  const sum: SimSummary = {
    protocol: protocol.name,
    nodes: options.nodes,
    seeds: 0,
    firstSeed,
    violations: 0,
    steps: 0,
    commits: 0,
    commands: 0,
    reads: 0,
    crashes: 0,
    partitions: 0,
    stats: {},
    failed: null,
    wallMs: 0,
  };
  for (let i = 0; i < options.seeds; i++) {
    const r = runSeed(protocol, { ...options, seed: firstSeed + i });
    sum.seeds++;
    sum.steps += r.steps;
    sum.commits += r.commits;
    sum.commands += r.commands;
    sum.reads += r.reads;
    sum.crashes += r.crashes;
    sum.partitions += r.partitions;
    for (const [k, v] of Object.entries(r.stats)) sum.stats[k] = (sum.stats[k] ?? 0) + v;
    options.onSeed?.(r, i + 1);
    if (!r.ok) {
      sum.violations++;
      sum.failed = r;
      break;
    }
  }
  sum.wallMs = clock() - started;
  return sum;
}
