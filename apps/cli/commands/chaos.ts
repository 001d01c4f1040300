// `concur chaos`: break a live cluster on a seeded schedule while clients record a history, then
// check that history for linearizability. Exit 1 when it is not linearizable; 3 when the verdict is
// unknown, the cluster did not recover, or a node died of an error of its own.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { choiceOption, intOption, listOption, UsageError } from '../options.ts';
import { readModes, type ReadMode } from '../../http/backend.ts';
import { faultKinds, type FaultKind } from '../../chaos/nemesis.ts';
import { checkOutputFile } from '../output-file.ts';

function faultListOption(value: string): FaultKind[] {
  if (value.trim() === '' || value === 'none') return [];
  const list = value.split(',').map((s) => s.trim());
  for (const f of list) if (!(faultKinds as readonly string[]).includes(f)) throw new InvalidArgumentError(`unknown fault "${f}"; choose from ${faultKinds.join(', ')} (comma-separated), or none.`);
  return [...new Set(list)] as FaultKind[];
}

/** What a run injects unless told (membership changes only when asked). */
const defaultFaults: FaultKind[] = ['partition', 'crash', 'loss', 'delay', 'pause'];

/** Deliberately broken variants, for showing the checker has teeth. Never for real runs. */
const breakages = ['read-without-quorum', 'grant-while-held'] as const;
/** What the clients do: KV operations checked for linearizability, or locks checked for mutual exclusion (apps/chaos/lock-*.ts). */
const workloads = ['kv', 'lock'] as const;

/** `--protocol` choices (apps/cluster/cluster.ts clusterProtocols; not imported here, so --help stays fast). */
const protocols = ['raft', 'multipaxos'] as const;

export interface ChaosFlags {
  workload: (typeof workloads)[number];
  locks: number;
  protocol: (typeof protocols)[number];
  nodes: number;
  duration: number;
  clients: number;
  keys: number;
  seed: number;
  read: ReadMode;
  faults: FaultKind[];
  history?: string;
  json?: boolean;
  opTimeoutMs: number;
  break?: (typeof breakages)[number];
  storage: 'wal' | 'memory';
  compactEntries?: number;
  snapshotEntries?: number;
  doors?: boolean;
}

export function registerChaos(program: Command): void {
  program
    .command('chaos')
    .description('inject faults into a live cluster while clients run, then check the history for linearizability (--workload lock: for mutual exclusion)')
    .option('--workload <kind>', 'kv (puts, gets, cas, deletes; checked for linearizability) or lock (acquire, renew, release; checked for mutual exclusion)', choiceOption(workloads), 'kv' as const)
    .option('--locks <n>', 'with --workload lock: distinct locks the clients contend for', intOption(1, 1_000), 2)
    .option('--protocol <name>', `consensus protocol: ${protocols.join(' | ')}`, choiceOption(protocols), 'raft' as const)
    .option('--nodes <n>', 'cluster size', intOption(1, 15), 5)
    .option('--duration <s>', 'seconds of load and faults', intOption(1, 3600), 30)
    .option('--clients <n>', 'concurrent clients', intOption(1, 256), 8)
    .option('--keys <n>', 'distinct keys', intOption(1, 10_000), 10)
    .option('--seed <n>', 'seeds the schedule, the clients and the cluster', intOption(0, 2 ** 31), 1)
    .option('--read <mode>', `read path for gets: ${readModes.join(' | ')}`, choiceOption(readModes), 'index' as ReadMode)
    .addOption(listOption('--faults <list>', `faults to inject, comma-separated: ${faultKinds.join(',')} (or none)`, faultListOption, defaultFaults))
    .option('--history <file>', 'write the history as JSON lines (format in README)')
    .option('--op-timeout-ms <ms>', 'deadline of each operation; past it the outcome is unknown', intOption(50, 60_000), 1_000)
    .option('--break <what>', `test only: run a deliberately broken variant (${breakages.join(', ')})`, choiceOption(breakages))
    .option('--storage <kind>', 'wal, or memory (nodes drop compacted entries; no crash faults: a memory node cannot restart)', choiceOption(['wal', 'memory'] as const), 'wal' as const)
    .option('--compact-entries <n>', 'with --storage memory: drop applied entries every voter holds in steps of n (0: never; default 65536)', intOption(0, 2 ** 30))
    .option('--snapshot-entries <n>', 'with --storage wal: each node snapshots every n applied entries and cuts its log (small n: many snapshots and InstallSnapshots per run; default 10000)', intOption(1, 2 ** 30))
    .option('--doors', "clients speak HTTP to their node's own client port (concur start --client-ports) instead of going through the supervisor (Raft only)")
    .option('--json', 'print one JSON object as the last line')
    .action(async (f: ChaosFlags, cmd: Command) => {
      if (f.history !== undefined) checkOutputFile(f.history, '--history');
      if (f.compactEntries !== undefined && f.storage !== 'memory') throw new UsageError(`--compact-entries applies to memory storage only (a WAL node compacts behind its snapshots: see --snapshot-entries); add --storage memory`);
      if (f.snapshotEntries !== undefined && f.storage !== 'wal') throw new UsageError('--snapshot-entries applies to --storage wal only (memory nodes never snapshot)');
      if (f.workload === 'lock') {
        const { chaosLockCommand } = await import('../../chaos/lock-cli.ts');
        return chaosLockCommand(f, cmd);
      }
      if (cmd.getOptionValueSource('locks') === 'cli') throw new UsageError('--locks applies to --workload lock');
      if (f.break === 'grant-while-held') throw new UsageError('--break grant-while-held breaks the lock service; it needs --workload lock');
      const { runChaos, chaosConfigProblem } = await import('../../chaos/run.ts');
      // With memory storage the default fault set leaves out crash; asking for it is an error.
      if (f.storage === 'memory' && cmd.getOptionValueSource('faults') !== 'cli') f.faults = f.faults.filter((k) => k !== 'crash');
      if (f.protocol === 'multipaxos' && f.break !== undefined) throw new UsageError(`--break ${f.break} breaks the Raft core; it needs --protocol raft`);
      const problem = chaosConfigProblem(f);
      if (problem !== null) throw new UsageError(problem);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`chaos: ${f.nodes} ${f.protocol === 'multipaxos' ? 'Multi-Paxos ' : ''}nodes (${f.storage}), ${f.clients} clients${f.doors ? " on the nodes' client ports" : ''}, ${f.keys} keys, read=${f.read}, faults ${f.faults.join(',') || 'none'}, ${f.duration} s, seed ${f.seed}${f.break ? `, BROKEN: ${f.break}` : ''}`);
      const { report } = await runChaos(
        {
          ...(f.protocol === 'multipaxos' ? { protocol: f.protocol } : {}),
          nodes: f.nodes,
          durationSec: f.duration,
          clients: f.clients,
          keys: f.keys,
          seed: f.seed,
          read: f.read,
          faults: f.faults,
          opTimeoutMs: f.opTimeoutMs,
          recoveryMsMax: 20_000,
          storage: f.storage,
          ...(f.compactEntries !== undefined ? { compactEntries: f.compactEntries } : {}),
          ...(f.snapshotEntries !== undefined ? { snapshotEntries: f.snapshotEntries } : {}),
          ...(f.history ? { historyFile: f.history } : {}),
          ...(f.doors ? { doors: true } : {}),
          // Without CheckQuorum a cut-off leader stays leader, so the broken read path is exposed
          // for as long as the partition lasts, not just for the moment before it steps down.
          ...(f.break === 'read-without-quorum' ? { unsafe: { readWithoutQuorum: true }, raft: { checkQuorum: false } } : {}),
        },
        log,
      );
      log('');
      log(`operations  ${report.ops} (ok ${report.ok}, failed ${report.failed}, unknown ${report.unknown}); ${Object.entries(report.byOp).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      log(`faults      ${report.faults} (${Object.entries(report.faultsByKind).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`);
      log(`leaders     ${report.leaderChanges} elected; recovery after heal ${report.recovered ? `${report.recoveryMs} ms` : 'NOT reached'}`);
      log(`verdict     ${report.linearizable === true ? 'linearizable' : report.linearizable === false ? 'NOT linearizable' : 'unknown (the checker ran out of its search budget)'} (checked in ${report.checkMs} ms)`);
      log(`compacted   through ${report.compactedThrough.map((c, i) => `n${report.nodeIds[i]} ${c}`).join(', ')}${report.storage === 'wal' ? `; snapshots taken ${report.snapshotsTaken}, installed from another node ${report.snapshotsInstalled}` : ''}`);
      for (const e of report.nodeErrors) log(`NODE ERROR  ${e}`);
      if (report.failure) log(`\n${report.failure}`);
      if (f.history) log(`history     ${f.history}`);
      if (f.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      if (report.linearizable === false) process.exitCode = 1;
      else if (report.linearizable !== true || !report.recovered || report.nodeErrors.length > 0) process.exitCode = 3;
    });
}
