// `concur bench <what>`: one subcommand per benchmark; each lives in bench/ and is wired here.
import type { Command } from 'commander';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run a benchmark (see `concur bench --help` for the list)');
}
