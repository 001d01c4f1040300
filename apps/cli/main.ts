// The `concur` command line: one module per command under ./commands, wired here.
// Parsing and validation live at this edge; a bad flag is named with the fix, never a stack.
import { Command, CommanderError } from 'commander';
import { registerApp } from './commands/app.ts';
import { registerBench } from './commands/bench.ts';
import { registerChaos } from './commands/chaos.ts';
import { registerCheck } from './commands/check.ts';
import { registerSim } from './commands/sim.ts';
import { registerKv } from './commands/kv.ts';
import { registerLock } from './commands/lock.ts';
import { registerMember } from './commands/member.ts';
import { registerCluster } from './commands/cluster.ts';
import { registerStart } from './commands/start.ts';
import { exitUsage, UsageError } from './options.ts';

export function buildProgram(): Command {
  const program = new Command('concur')
    .description('An actor-model cluster runtime on worker threads that runs Raft and Paxos for real')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // `concur app MODULE ...` hands everything after MODULE to the app's own commands.
    .enablePositionalOptions();
  registerStart(program);
  registerChaos(program);
  registerCheck(program);
  registerBench(program);
  registerSim(program);
  registerKv(program);
  registerLock(program);
  registerMember(program);
  registerCluster(program);
  registerApp(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
