// The `concur` command line: one module per command under ./commands, wired here.
// Parsing and validation live at this edge; a bad flag is named with the fix, never a stack.
import { Command, CommanderError } from 'commander';
import { exitUsage, UsageError } from './options.ts';

type Register = (program: Command) => void;

/**
 * Every command by name, in --help order. A command's module (and all it imports) is loaded only
 * when that command runs, or when all are listed (--help, an unknown command): `concur --version`
 * or `concur kv get` load no cluster, runtime or protocol code, which is most of a start's time.
 */
const commands: Record<string, () => Promise<Register>> = {
  start: async () => (await import('./commands/start.ts')).registerStart,
  chaos: async () => (await import('./commands/chaos.ts')).registerChaos,
  check: async () => (await import('./commands/check.ts')).registerCheck,
  bench: async () => (await import('./commands/bench.ts')).registerBench,
  sim: async () => (await import('./commands/sim.ts')).registerSim,
  kv: async () => (await import('./commands/kv.ts')).registerKv,
  lock: async () => (await import('./commands/lock.ts')).registerLock,
  member: async () => (await import('./commands/member.ts')).registerMember,
  cluster: async () => (await import('./commands/cluster.ts')).registerCluster,
  app: async () => (await import('./commands/app.ts')).registerApp,
};

/** The commands `argv` needs registered: the one it runs, none for --version, else all. */
function commandsFor(argv: readonly string[]): string[] {
  const first = argv[2];
  if (first !== undefined && Object.hasOwn(commands, first)) return [first];
  if (first === '--version' || first === '-V') return [];
  return Object.keys(commands);
}

/** The program with the commands `argv` (process.argv: node, script, args) needs; all by default. */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('concur')
    .description('An actor-model cluster runtime on worker threads that runs Raft and Paxos for real')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // `concur app MODULE ...` hands everything after MODULE to the app's own commands.
    .enablePositionalOptions();
  const registers = await Promise.all(commandsFor(argv).map((name) => commands[name]!()));
  for (const register of registers) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message (or the help/version text). Every one of its
      // errors (unknown option, missing or excess argument, a value a parser refused, a command
      // run without its subcommand) is bad usage: exit 2, as documented, never 1 ("not found").
      process.exitCode = err.exitCode === 0 ? 0 : exitUsage;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`concur: ${err.message}\n`);
      process.exitCode = exitUsage;
      return;
    }
    throw err;
  }
}
