// `concur check FILE...`: judges histories recorded elsewhere (concur's JSON lines, Jepsen
// cas-register logs) with the checker `concur chaos` uses, and optionally draws them as a page.
// Reads every file before checking any, so a bad file is a usage error, not a half-done run.
import { access, constants, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { choiceOption, intOption, UsageError } from '../options.ts';
import { usageExit2 } from './lock.ts';
import type { RecordedHistory } from '../../check/load.ts';
import type { FileCheck } from '../../check/verdict.ts';

const formats = ['concur', 'jepsen'] as const;

interface CheckFlags {
  format?: (typeof formats)[number];
  html?: string;
  json?: boolean;
  stepsMax?: number;
}

const help = `
Formats (detected from the first lines unless --format is given):
  concur   JSON lines, as \`concur chaos --history FILE\` writes them (fields in README)
  jepsen   Jepsen cas-register ops, one per line as in jepsen.log or history.txt:
           PROCESS :invoke|:ok|:fail|:info :read|:write|:cas VALUE, e.g. "3 :ok :cas [1 2]";
           [key value] tuples (jepsen.independent) are checked key by key. An :info op may or
           may not have taken effect; a :fail op did not; an op never completed counts as :info.

Exit codes:
  0  every history is linearizable
  1  some history is not linearizable
  2  bad usage: a missing or unreadable file, a line that cannot be read (the message says which)
  3  undecided: the search hit its budget (--steps-max) on some key, and none is known bad

Examples:
  concur chaos --duration 10 --history h.jsonl; concur check h.jsonl
  concur check --html report.html etcd_000.log
  concur check --json test_data/jepsen/*.log`;

/** Fails before any checking when the page could not be written, so a long check is not wasted. */
async function assertWritable(path: string): Promise<void> {
  const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
  if (isDir) throw new UsageError(`--html ${path} is a directory; name the page file to write, e.g. ${path.replace(/\/$/, '')}/check.html`);
  try {
    await access(dirname(path), constants.W_OK);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'its directory does not exist' : 'its directory is not writable';
    throw new UsageError(`cannot write the page to ${path}: ${why}`);
  }
}

export function registerCheck(program: Command): void {
  usageExit2(
    program
      .command('check')
      .description('check recorded histories (concur chaos JSON lines, Jepsen cas-register logs) for linearizability; draw them with --html')
      .argument('[files...]', 'history files to check')
      .option('--format <format>', `history format: ${formats.join(' | ')} (default: detected per file)`, choiceOption(formats))
      .option('--html <out>', 'write a self-contained page drawing each history, and why it is not linearizable')
      .option('--json', 'print one JSON object with the verdict per file and key, instead of the text summary')
      .option('--steps-max <n>', 'search steps per key before its verdict is undecided (exit 3; default 5000000)', intOption(1, 2 ** 31))
      .addHelpText('after', help),
  ).action(async (files: string[], f: CheckFlags) => {
    if (files.length === 0) throw new UsageError('name at least one history file, e.g. `concur check history.jsonl` (see concur check --help)');
    if (f.html !== undefined) await assertWritable(f.html);
    const { loadRecordedHistory } = await import('../../check/load.ts');
    const { HistoryError } = await import('../../chaos/history.ts');
    const { checkRecorded, exitCodeFor, fileJson, fileText } = await import('../../check/verdict.ts');
    const { renderCheckPage } = await import('../../check/html.ts');

    const histories: RecordedHistory[] = [];
    for (const file of files) {
      try {
        histories.push(await loadRecordedHistory(file, f.format));
      } catch (e) {
        if (e instanceof HistoryError) throw new UsageError(e.message);
        throw e;
      }
    }
    const checks: FileCheck[] = [];
    for (const h of histories) checks.push(await checkRecorded(h, f.stepsMax !== undefined ? { searchStepsMax: f.stepsMax } : {}));
    const code = exitCodeFor(checks.map((c) => c.result.linearizable));

    if (f.html !== undefined) {
      try {
        await writeFile(f.html, renderCheckPage(checks));
      } catch (e) {
        throw new UsageError(`cannot write the page to ${f.html}: ${(e as Error).message}`);
      }
    }
    if (f.json) process.stdout.write(`${JSON.stringify({ linearizable: code === 0 ? true : code === 1 ? false : 'unknown', files: checks.map(fileJson) })}\n`);
    else {
      process.stdout.write(`${checks.map(fileText).join('\n\n')}\n`);
      if (checks.length > 1) {
        const count = (v: boolean | 'unknown') => checks.filter((c) => c.result.linearizable === v).length;
        process.stdout.write(`\n${checks.length} histories: ${count(true)} linearizable, ${count(false)} not, ${count('unknown')} undecided\n`);
      }
      if (f.html !== undefined) process.stdout.write(`page written to ${f.html}\n`);
    }
    process.exitCode = code;
  });
}
