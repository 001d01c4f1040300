// `concur sim`: runs the deterministic simulator over many seeds and checks the protocol's
// invariants after every step. Exits non-zero on the first violation with the seed and a trace
// replayed from it. Parsing and output only; the engine lives in protocols/sim.
import type { Command } from 'commander';
import type { SeedResult, SimSummary } from '../../../protocols/sim/index.ts';
import type { AnySimProtocol } from '../../../protocols/sim/protocol.ts';
import { choiceOption, intOption, UsageError } from '../options.ts';

interface SimFlags {
  protocol: string;
  replica?: boolean;
  seeds?: number;
  seed?: number;
  nodes: number;
  mutation?: string;
  membership?: boolean;
  trace?: boolean;
  json?: boolean;
}

const nodeChoices = ['1', '3', '5', '7', '9'] as const;

/** The simulator, imported when a run starts, so `concur --help` and `sim --help` load none of it. */
type SimEngine = typeof import('../../../protocols/sim/index.ts');
/** Protocol names of protocols/sim simProtocols (not imported here, so --help stays fast). */
export const simProtocolNames = ['raft', 'paxos', 'multipaxos'] as const;

/**
 * The mutations of `--replica` (apps/sim replicaMutations; not imported here, so every command
 * starts without loading the replica simulator; test/cli/help.test.ts keeps the two lists equal).
 */
export const replicaMutationNames = [
  'ack-before-sync', 'serve-before-apply', 'release-all-read-rounds', 'vote-amnesia', 'lease-survives-transfer', 'heartbeat-reply-before-persist',
  'vote-twice', 'no-election-restriction', 'read-without-quorum', 'lease-ignores-acks', 'lease-too-long', 'commit-previous-term',
  'commit-previous-term-no-noop', 'no-noop',
] as const;

/**
 * The mutations of each core simulator (protocols/sim simProtocols[name]().mutations; kept here for
 * the same reason; test/cli/help.test.ts keeps them equal).
 */
export const coreMutationNames: Record<(typeof simProtocolNames)[number], readonly string[]> = {
  raft: [
    'commit-previous-term', 'commit-previous-term-no-noop', 'no-noop', 'vote-twice', 'no-election-restriction', 'read-without-quorum', 'lease-ignores-acks',
    'lease-too-long', 'heartbeat-reply-before-persist', 'vote-amnesia', 'lease-survives-transfer', 'skip-joint-step', 'witness-serves-reads',
    'snapshot-misses-last-apply', 'compact-past-snapshot',
  ],
  paxos: ['accept-below-promise', 'ignore-accepted-in-promise'],
  multipaxos: ['accept-below-promise', 'ignore-accepted-in-promise', 'skip-gap-fill'],
};

/** The --mutation names of every protocol, for --help: what each simulator can be broken with. */
export function mutationsHelp(): string {
  const groups: [string, readonly string[]][] = simProtocolNames.map((name) => [`--protocol ${name}`, coreMutationNames[name]]);
  groups.push(['--protocol raft --replica', replicaMutationNames]);
  const lines: string[] = [];
  for (const [what, names] of groups) {
    lines.push(`  ${what}:`);
    let line = '   ';
    for (const n of names) {
      if (line.length + n.length + 2 > 80) {
        lines.push(line.trimEnd());
        line = '   ';
      }
      line += ` ${n},`;
    }
    lines.push(line.replace(/,$/, ''));
  }
  return `\nMutations (--mutation NAME: a deliberately broken variant; the run must report a violation):\n${lines.join('\n')}`;
}

export function registerSim(program: Command): void {
  const protocols = [...simProtocolNames];
  program
    .command('sim')
    .description('run the deterministic simulator: seeded faults, invariants checked after every step')
    .option('--protocol <name>', `protocol to simulate (${protocols.join(', ')})`, choiceOption(protocols), 'raft')
    .option('--seeds <n>', 'how many seeds to run (default 100; 1 with --seed)', intOption(1, 10_000_000))
    .option('--seed <s>', 'replay exactly this seed (with --seeds N: run seeds S..S+N-1)', intOption(0, 4_294_967_295))
    .option('--nodes <n>', 'cluster size', (v: string) => Number(choiceOption(nodeChoices)(v)), 3)
    .option('--replica', 'raft only: simulate whole replicas (node host, WAL and snapshots on a simulated disk, KV app, clients in every read mode) instead of the bare core')
    .option('--membership', 'raft core only: random membership changes (add/remove voters, learners and witnesses, joint consensus, removing the leader) during the faults')
    .option('--mutation <name>', 'run a deliberately broken variant, to check that the checkers catch it (names below)')
    .option('--trace', 'print the full step trace of every seed (use with --seed)')
    .option('--json', 'print one JSON object as the last line of stdout')
    .addHelpText('after', () => mutationsHelp())
    .action(async (flags: SimFlags) => {
      const engine = await import('../../../protocols/sim/index.ts');
      process.exitCode = runSim(flags, await loadProtocol(flags, engine), engine);
    });
}

async function loadProtocol(flags: SimFlags, { simProtocols, raftSimProtocol }: SimEngine): Promise<AnySimProtocol> {
  if (flags.membership === true) {
    if (flags.protocol !== 'raft' || flags.replica === true) throw new UsageError('--membership runs with the bare Raft core: use --protocol raft without --replica');
    return raftSimProtocol({}, { membership: true }) as unknown as AnySimProtocol;
  }
  if (flags.replica !== true) return simProtocols[flags.protocol]!();
  if (flags.protocol !== 'raft') throw new UsageError(`--replica simulates Raft replicas; drop it or use --protocol raft (got ${flags.protocol})`);
  const { replicaSimProtocol } = await import('../../sim/index.ts');
  return replicaSimProtocol() as unknown as AnySimProtocol;
}

function runSim(flags: SimFlags, protocol: AnySimProtocol, { runSeed, runSeeds }: SimEngine): number {
  if (flags.mutation !== undefined && !protocol.mutations.includes(flags.mutation)) {
    throw new UsageError(`--mutation: unknown mutation "${flags.mutation}" for ${protocol.name}; expected one of ${protocol.mutations.join(', ')}.`);
  }
  const seeds = flags.seeds ?? (flags.seed !== undefined ? 1 : 100);
  const firstSeed = flags.seed ?? 1;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  // In --json mode stdout carries only the final object; everything for people goes to stderr.
  const say = flags.json === true ? err : out;

  if (flags.trace === true) {
    let failed = 0;
    for (let s = firstSeed; s < firstSeed + seeds; s++) {
      const r = runSeed(protocol, { seed: s, nodes: flags.nodes, mutation: flags.mutation, tracing: true, traceLinesMax: 0 });
      say(`=== seed ${s}`);
      for (const line of r.trace) say(line);
      say(describeResult(r));
      if (!r.ok) failed++;
    }
    if (flags.json === true) out(JSON.stringify({ protocol: protocol.name, nodes: flags.nodes, seeds, firstSeed, violations: failed }));
    return failed === 0 ? 0 : 1;
  }

  const started = performance.now();
  const every = Math.max(1, Math.floor(seeds / 10));
  let steps = 0;
  const summary: SimSummary = runSeeds(
    protocol,
    {
      seeds,
      firstSeed,
      nodes: flags.nodes,
      mutation: flags.mutation,
      onSeed: (r, done) => {
        steps += r.steps;
        if (done % every === 0 || done === seeds || !r.ok) {
          const secs = ((performance.now() - started) / 1000).toFixed(1);
          err(`sim ${protocol.name} nodes=${flags.nodes}${flags.mutation ? ` mutation=${flags.mutation}` : ''}: ${done}/${seeds} seeds, ${r.ok ? 0 : 1} violations, ${steps} steps, ${secs} s`);
        }
      },
    },
    () => performance.now(),
  );

  const failed = summary.failed;
  if (failed !== null) {
    const v = failed.violation!;
    say(`VIOLATION of ${v.invariant} at seed ${failed.seed} (step ${v.step}, t=${v.timeMs} ms virtual):`);
    say(`  ${v.message}`);
    // Replaying the seed with tracing on reproduces the run exactly and shows how it got there.
    const replay = runSeed(protocol, { seed: failed.seed, nodes: flags.nodes, mutation: flags.mutation, tracing: true, traceLinesMax: 120 });
    say(`trace (last ${replay.trace.length} lines of the replay):`);
    for (const line of replay.trace) say(`  ${line}`);
    if (replay.violation?.invariant !== v.invariant || replay.violation.step !== v.step) {
      say(`warning: the replay ended differently (${replay.violation?.invariant ?? 'no violation'} at step ${replay.violation?.step}) — determinism is broken`);
    }
    say(`replay with: concur sim --protocol ${flags.protocol}${flags.replica ? ' --replica' : ''}${flags.membership ? ' --membership' : ''} --nodes ${flags.nodes} --seed ${failed.seed}${flags.mutation ? ` --mutation ${flags.mutation}` : ''} --trace`);
  } else {
    say(
      `ok: ${summary.seeds} seeds (${firstSeed}..${firstSeed + summary.seeds - 1}), ${summary.nodes} nodes, 0 violations of ${protocol.invariants.join(', ')}, liveness after heal; ` +
        `${summary.steps} steps, ${summary.commits} committed entries, ${summary.commands} client commands, ` +
        // A protocol whose clients read for themselves counts its reads in its own stats.
        ('reads' in summary.stats ? '' : `${summary.reads} reads, `) +
        `${summary.crashes} crashes, ${summary.partitions} partitions in ${(summary.wallMs / 1000).toFixed(1)} s` +
        (Object.keys(summary.stats).length > 0 ? `; ${Object.entries(summary.stats).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''),
    );
  }
  if (flags.json === true) {
    out(
      JSON.stringify({
        protocol: summary.protocol,
        nodes: summary.nodes,
        mutation: flags.mutation ?? null,
        seeds: summary.seeds,
        firstSeed: summary.firstSeed,
        violations: summary.violations,
        steps: summary.steps,
        commits: summary.commits,
        commands: summary.commands,
        reads: summary.reads,
        crashes: summary.crashes,
        partitions: summary.partitions,
        stats: summary.stats,
        wallMs: Math.round(summary.wallMs),
        failedSeed: failed?.seed ?? null,
        violation: failed?.violation ?? null,
      }),
    );
  }
  return failed === null ? 0 : 1;
}

function describeResult(r: SeedResult): string {
  if (r.ok) return `seed ${r.seed}: ok — ${r.steps} steps, ${r.commits} committed entries, ${r.commands} commands, max term ${r.maxTerm}`;
  return `seed ${r.seed}: VIOLATION of ${r.violation!.invariant} at step ${r.violation!.step}: ${r.violation!.message}`;
}
