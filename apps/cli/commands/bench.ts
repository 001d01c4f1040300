// `concur bench <what>`: one subcommand per benchmark; the measuring code lives in bench/.
import { InvalidArgumentError, type Command } from 'commander';
import { choiceOption, intListOption, intOption, listOption, UsageError } from '../options.ts';
import { fsyncPolicies, type FsyncPolicy } from '../../../runtime/storage/types.ts';
import { applySchedPolicy, schedPolicies, type SchedPolicy } from '../../../runtime/sched-policy.ts';

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('run a benchmark: transport, kv, reads, locks, soak, restart, replication, witness, raft')
    .addHelpText('after', '\nEach has its own --help (concur bench raft --help). What they measure and figures from this machine: README, "Benchmarks".')
    // The threads' policy `concur start` gives its cluster, so that a benchmark measures what users get.
    .hook('preAction', (_bench, sub) => {
      const sched = applySchedPolicy((sub.opts() as { sched: SchedPolicy }).sched);
      if (sched.batch) process.stderr.write('bench: threads SCHED_BATCH, as concur start runs them (--sched normal: the OS default)\n');
      if (sched.warning !== null) process.stderr.write(`bench: warning: ${sched.warning}\n`);
    });

  bench
    .command('transport')
    .description('messages between two workers: SharedArrayBuffer ring vs postMessage, 64 B and 1 KiB, opaque and cbor')
    .option('--count <n>', 'messages per ring run', intOption(1_000, 100_000_000), 3_000_000)
    .option('--port-count <n>', 'messages per postMessage run (it is ~20x slower)', intOption(1_000, 100_000_000), 300_000)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { count: number; portCount: number; json?: boolean }) => {
      const { benchTransport } = await import('../../../bench/transport.ts');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`transport: ${opts.count} frames per ring run, ${opts.portCount} per postMessage run`);
      const report = await benchTransport({
        ringCount: opts.count,
        portCount: opts.portCount,
        onRun: (r) => log(`  ${r.via.padEnd(4)} ${r.encoding.padEnd(6)} ${String(r.payloadBytes).padStart(5)} B  ${(r.msgsPerSec / 1e6).toFixed(2).padStart(6)} M msg/s  ${String(r.mbPerSec).padStart(5)} MB/s  checksum ${r.checksumOk ? 'ok' : 'MISMATCH'}`),
      });
      log(`64-byte opaque frames: ring ${(report.ringMsgsPerSec / 1e6).toFixed(2)} M/s, postMessage ${(report.postMessageMsgsPerSec / 1e6).toFixed(2)} M/s, ratio ${report.ratio}`);
      log(`64-byte cbor records:  ring ${(report.cbor.ringMsgsPerSec / 1e6).toFixed(2)} M/s, postMessage ${(report.cbor.postMessageMsgsPerSec / 1e6).toFixed(2)} M/s, ratio ${report.cbor.ratio}`);
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    });

  bench
    .command('kv')
    .description('PUTs through the HTTP API of a live cluster: puts/s and p50/p99 latency with N keep-alive clients')
    .option('--nodes <n>', 'cluster size', intOption(1, 15), 3)
    .option('--clients <n>', 'concurrent keep-alive HTTP clients, one request in flight each', intOption(1, 4096), 64)
    .option('--duration <s>', 'seconds of load', intOption(1, 3600), 5)
    .option('--value-bytes <n>', 'bytes per value', intOption(0, 1 << 20), 64)
    .option('--keys <n>', 'distinct keys written', intOption(1, 10_000_000), 10_000)
    .option('--load-threads <n>', 'threads generating the HTTP load (a piscina pool)', intOption(1, 64), 1)
    .option('--storage <kind>', 'wal or memory', choiceOption(['wal', 'memory'] as const), 'wal' as const)
    .option('--fsync <policy>', `WAL fsync policy: ${fsyncPolicies.join(' | ')}`, choiceOption(fsyncPolicies), 'batch' as FsyncPolicy)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { nodes: number; clients: number; duration: number; valueBytes: number; keys: number; loadThreads: number; storage: 'wal' | 'memory'; fsync: FsyncPolicy; json?: boolean }) => {
      const { benchKv } = await import('../../../bench/kv.ts');
      const log = (line: string) => process.stderr.write(line);
      log(`kv: ${opts.nodes} nodes, ${opts.storage}${opts.storage === 'wal' ? ` (fsync ${opts.fsync})` : ''}, ${opts.clients} clients, ${opts.valueBytes}-byte values, ${opts.duration} s\n`);
      const r = await benchKv({ ...opts, durationSec: opts.duration }, (sec) => log(`\r  ${sec.toFixed(1)} / ${opts.duration} s`));
      const errs = r.errors > 0 ? ` (${Object.entries(r.errorStatuses).map(([s, n]) => `${n}× ${s === '0' ? 'connection error' : `HTTP ${s}`}`).join(', ')})` : '';
      log(`\n  ${r.putsPerSec} puts/s  p50 ${r.p50Ms} ms  p90 ${r.p90Ms} ms  p99 ${r.p99Ms} ms  max ${r.maxMs} ms  errors ${r.errors}${errs}\n`);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('reads')
    .description('every read path (log, index, lease, follower, stale) on one live cluster: reads/s and p50/p99')
    .option('--nodes <n>', 'cluster size', intOption(1, 15), 3)
    .option('--clients <n>', 'concurrent readers, one read in flight each', intOption(1, 4096), 32)
    .option('--duration <s>', 'seconds per read path', intOption(1, 600), 3)
    .option('--keys <n>', 'distinct keys read', intOption(1, 100_000), 100)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { nodes: number; clients: number; duration: number; keys: number; json?: boolean }) => {
      const { benchReads, readModes } = await import('../../../bench/reads.ts');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`reads: ${opts.nodes} nodes, ${opts.clients} readers, ${opts.duration} s per path`);
      const r = await benchReads({ ...opts, durationSec: opts.duration, modes: readModes }, (c) =>
        log(`  ${c.mode.padEnd(8)} ${String(c.readsPerSec).padStart(8)} reads/s  p50 ${c.p50Ms} ms  p99 ${c.p99Ms} ms  errors ${c.errors}`),
      );
      const log1 = r.cells.find((c) => c.mode === 'log')!.readsPerSec;
      log(`  vs log: ${r.cells.map((c) => `${c.mode} ${(c.readsPerSec / Math.max(1, log1)).toFixed(1)}x`).join(', ')}`);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('locks')
    .description('the lock service through Cluster.submit (the path its HTTP routes take): acquire+release pairs/s and p50/p99, each client on its own lock and all on one')
    .option('--nodes <n>', 'cluster size', intOption(1, 15), 3)
    .option('--clients <n>', 'concurrent clients, one pair in flight each', intOption(1, 1024), 32)
    .option('--duration <s>', 'seconds per cell (uncontended, contended)', intOption(1, 600), 5)
    .option('--storage <kind>', 'wal or memory', choiceOption(['wal', 'memory'] as const), 'wal' as const)
    .option('--protocol <name>', 'raft or multipaxos', choiceOption(['raft', 'multipaxos'] as const), 'raft' as const)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { nodes: number; clients: number; duration: number; storage: 'wal' | 'memory'; protocol: 'raft' | 'multipaxos'; json?: boolean }) => {
      const { benchLocks } = await import('../../../bench/locks.ts');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`locks: ${opts.nodes} ${opts.protocol === 'multipaxos' ? 'Multi-Paxos ' : ''}nodes, ${opts.storage}, ${opts.clients} clients, ${opts.duration} s per cell`);
      const r = await benchLocks({ nodes: opts.nodes, clients: opts.clients, durationSec: opts.duration, storage: opts.storage, ...(opts.protocol === 'multipaxos' ? { protocol: opts.protocol } : {}) }, (c) =>
        log(
          `  ${c.cell.padEnd(11)} ${String(c.locks).padStart(4)} lock${c.locks === 1 ? ' ' : 's'} ${String(c.pairsPerSec).padStart(7)} pairs/s  pair p50 ${c.p50Ms} ms p99 ${c.p99Ms} ms  (acquire p50 ${c.acquire.p50Ms} p99 ${c.acquire.p99Ms}; release p50 ${c.release.p50Ms} p99 ${c.release.p99Ms})  waited ${c.waited}  errors ${c.errors}`,
        ),
      );
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('soak')
    .description('a live cluster under full write load for minutes: RSS, disk, log in memory, throughput and p99 each second, and an SVG of them')
    .option('--duration <s>', 'seconds of load', intOption(10, 24 * 3600), 600)
    .option('--nodes <n>', 'cluster size', intOption(1, 15), 3)
    .option('--storage <kind>', 'wal or memory', choiceOption(['wal', 'memory'] as const), 'wal' as const)
    .option('--fsync <policy>', `WAL fsync policy: ${fsyncPolicies.join(' | ')}`, choiceOption(fsyncPolicies), 'batch' as FsyncPolicy)
    .option('--value-bytes <n>', 'bytes per value', intOption(0, 1 << 20), 1024)
    .option('--keys <n>', 'distinct keys written (the live data is keys × value bytes)', intOption(1, 10_000_000), 1000)
    .option('--clients <n>', 'concurrent keep-alive HTTP clients, one request in flight each', intOption(1, 4096), 32)
    .option('--load-threads <n>', 'threads generating the HTTP load (a piscina pool)', intOption(1, 64), 1)
    .option('--snapshot-entries <n>', 'snapshot every N applied entries (0: never — to see the growth without snapshots)', intOption(0, 1e9))
    .option('--data-dir <dir>', 'keep the cluster\'s files there (default: a temporary directory)')
    .option('--out <dir>', 'where soak.svg and soak.json go (default bench/results/<date>/)')
    .option('--json', 'print one JSON object (the summary, without the samples) as the last line')
    .action(async (opts: { duration: number; nodes: number; storage: 'wal' | 'memory'; fsync: FsyncPolicy; valueBytes: number; keys: number; clients: number; loadThreads: number; snapshotEntries?: number; dataDir?: string; out?: string; json?: boolean }) => {
      if (opts.storage === 'memory' && (opts.snapshotEntries !== undefined || opts.dataDir !== undefined)) throw new UsageError('--snapshot-entries and --data-dir apply to --storage wal only');
      const { benchSoak } = await import('../../../bench/soak.ts');
      const { formatSample, formatSummary, writeSoakReport } = await import('../../../bench/soak-report.ts');
      const { resolve } = await import('node:path');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`soak: ${opts.nodes} nodes, ${opts.storage}${opts.storage === 'wal' ? ` (fsync ${opts.fsync})` : ''}, ${opts.clients} clients, ${opts.valueBytes}-byte values over ${opts.keys} keys, ${opts.duration} s`);
      const r = await benchSoak(
        {
          nodes: opts.nodes,
          durationSec: opts.duration,
          storage: opts.storage,
          fsync: opts.fsync,
          valueBytes: opts.valueBytes,
          keys: opts.keys,
          clients: opts.clients,
          loadThreads: opts.loadThreads,
          dataDir: opts.dataDir === undefined ? null : resolve(opts.dataDir),
          ...(opts.snapshotEntries !== undefined ? { snapshot: { entries: opts.snapshotEntries } } : {}),
        },
        (s) => log(`  ${formatSample(s)}`),
      );
      log(formatSummary(r));
      const out = opts.out ?? `bench/results/${new Date().toISOString().slice(0, 10)}`;
      const files = writeSoakReport(r, out);
      log(`  wrote ${files.svg} and ${files.json}`);
      if (opts.json) {
        const { samples: _samples, ...summary } = r;
        process.stdout.write(`${JSON.stringify({ ...summary, samples: r.samples.length })}\n`);
      }
    });

  bench
    .command('restart')
    .description('how long a WAL node takes to restart after N entries: with snapshots (snapshot + log tail) and without (the whole history)')
    .option('--entries <n>', 'entries committed before the restart', intOption(1_000, 1e9), 1_000_000)
    .option('--payload <bytes>', 'bytes per command (opaque, count app)', intOption(1, 65_536), 64)
    .addOption(listOption('--snapshot-entries <list>', 'snapshot intervals to compare (0: off)', intListOption(0, 1e9), [10_000, 0]))
    .option('--steps <n>', "write the entries in this many steps, each followed by the follower's due snapshot", intOption(1, 1_000), 4)
    .option('--json', 'print one JSON array as the last line')
    .action(async (opts: { entries: number; payload: number; snapshotEntries: number[]; steps: number; json?: boolean }) => {
      const { benchRestart } = await import('../../../bench/restart.ts');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`restart: 3 nodes, WAL (fsync batch), ${opts.entries} entries of ${opts.payload} bytes in ${opts.steps} steps, then a follower restarts`);
      const r = await benchRestart({ entries: opts.entries, payloadBytes: opts.payload, snapshotEntries: opts.snapshotEntries, steps: opts.steps }, log);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('replication')
    .description("Raft and Multi-Paxos side by side: the batching × pipelining sweep of `concur bench raft` (client actors, packed frames) for each protocol, then one proposal outstanding for low-load latency of Basic Paxos, Multi-Paxos and Raft")
    .addOption(listOption('--protocol <list>', 'protocols to sweep (comma-separated): raft, multipaxos', protocolListOption, ['raft', 'multipaxos']))
    .option('--quick', 'the sweep of `concur bench raft --quick`: batch 1,512 × inflight 1,8, 2 s per cell')
    .option('--clients <n>', 'closed-loop clients', intOption(1, 4_096), 64)
    .option('--window <n>', 'proposals each client keeps outstanding', intOption(1, 4_096), 64)
    .option('--value-bytes <n>', 'bytes per command (opaque, count app)', intOption(1, 65_536), 64)
    .option('--storage <kind>', 'memory (as `concur bench raft`) or wal', choiceOption(['memory', 'wal'] as const), 'memory' as const)
    .option('--fsync <policy>', `WAL fsync policy (with --storage wal): ${fsyncPolicies.join(' | ')}`, choiceOption(fsyncPolicies), 'batch' as FsyncPolicy)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { protocol: ('raft' | 'multipaxos')[]; quick?: boolean; clients: number; window: number; valueBytes: number; storage: 'memory' | 'wal'; fsync: FsyncPolicy; json?: boolean }, cmd: Command) => {
      if (cmd.getOptionValueSource('fsync') === 'cli' && opts.storage !== 'wal') throw new UsageError(`--fsync applies to the WAL only; add --storage wal (got --storage ${opts.storage})`);
      const { benchReplication, formatReplication, replicationDefaults, replicationFull, replicationQuick, replicationSetup } = await import('../../../bench/replication.ts');
      const o = {
        ...replicationDefaults,
        ...(opts.quick ? replicationQuick : replicationFull),
        protocols: opts.protocol,
        // Basic Paxos beside every protocol swept (it is what Multi-Paxos saves a round trip against).
        lowLoadProtocols: ['paxos' as const, ...(['multipaxos', 'raft'] as const).filter((p) => opts.protocol.includes(p))],
        clients: opts.clients,
        window: opts.window,
        payloadBytes: opts.valueBytes,
        storage: opts.storage,
        fsync: opts.fsync,
      };
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`replication: ${opts.protocol.join(' vs ')}; ${replicationSetup(o)}`);
      const r = await benchReplication(o, log);
      for (const line of formatReplication(r)) log(line);
      log(`took ${r.durationSec} s`);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('witness')
    .description('what a witness costs against a full replica: disk, log in memory, state machine and heap after N writes (3 nodes, node 3 a witness)')
    .option('--writes <n>', 'puts of distinct keys', intOption(100, 1e8), 100_000)
    .option('--value-bytes <n>', 'bytes per value', intOption(1, 65_536), 100)
    .option('--concurrency <n>', 'puts in flight', intOption(1, 4096), 64)
    .option('--snapshot-entries <n>', 'each full node snapshots every n applied entries', intOption(1, 1e9), 10_000)
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: { writes: number; valueBytes: number; concurrency: number; snapshotEntries: number; json?: boolean }) => {
      const { benchWitness } = await import('../../../bench/witness.ts');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(`witness: 3 nodes (node 3 a witness), WAL, ${opts.writes} puts of distinct keys, ${opts.valueBytes}-byte values, ${opts.concurrency} in flight`);
      const r = await benchWitness({ writes: opts.writes, valueBytes: opts.valueBytes, concurrency: opts.concurrency, snapshotEntries: opts.snapshotEntries }, log);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('raft')
    .description('Raft throughput and latency over batch × inflight on real worker clusters, loaded by client actors; vs the raw ring limit')
    .addOption(listOption('--nodes <list>', 'cluster sizes, comma-separated', intListOption(1, 15), [3]))
    .addOption(listOption('--batch <list>', 'batchEntriesMax values (entries per AppendEntries)', intListOption(1, 65_536), [1, 8, 64, 512]))
    .addOption(listOption('--inflight <list>', 'inflightMax values (AppendEntries in flight per follower)', intListOption(1, 4_096), [1, 2, 8, 32]))
    .option('--payload <bytes>', 'bytes per command (opaque)', intOption(1, 65_536), 64)
    .option('--clients <n>', 'closed-loop clients', intOption(1, 4_096), 64)
    .option('--window <n>', 'proposals each client keeps outstanding', intOption(1, 4_096), 64)
    .option('--client-actors <n>', 'worker actors the clients run on', intOption(1, 16), 1)
    .option('--duration <s>', 'measured seconds per cell (after a warm-up)', intOption(1, 3_600), 5)
    .option('--storage <kind>', 'memory or wal', choiceOption(['memory', 'wal'] as const), 'memory' as const)
    .option('--fsync <policy>', `WAL fsync policy (with --storage wal): ${fsyncPolicies.join(' | ')}`, choiceOption(fsyncPolicies), 'batch' as FsyncPolicy)
    .option('--snapshot-entries <list>', 'with --storage wal: snapshot intervals to run every cell with (0: off); e.g. 10000,0 compares on and off in one run', intListOption(0, 1e9))
    .option('--no-curves', 'skip the open-loop latency curves')
    .option('--quick', 'under a minute: batch 1,512 × inflight 1,8 on 3 nodes, 2 s per cell')
    .option('--out <dir>', 'where the Markdown report and SVG charts go (default bench/results/<date>/)')
    .option('--json', 'print one JSON object as the last line')
    .action(async (opts: RaftCliOptions, cmd: Command) => {
      const { raftBenchDefaults, raftBenchQuick, raftBenchSteps, runRaftBench, jsonSummary } = await import('../../../bench/raft.ts');
      const { formatSnapshotRatios, formatTable, targetRatios, writeReport } = await import('../../../bench/raft-report.ts');
      const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      if (opts.quick) {
        const clash = ['nodes', 'batch', 'inflight', 'duration'].filter(given);
        if (clash.length > 0) throw new UsageError(`--quick sets its own sweep; drop ${clash.map((c) => `--${c}`).join(', ')} or drop --quick`);
      }
      if (given('fsync') && opts.storage !== 'wal') throw new UsageError(`--fsync applies to the WAL only; add --storage wal (got --storage ${opts.storage})`);
      if (opts.snapshotEntries !== undefined && opts.storage !== 'wal') throw new UsageError('--snapshot-entries applies to the WAL only (memory nodes never snapshot); add --storage wal');
      if (opts.batch.length * opts.inflight.length * opts.nodes.length > raftCellsMax) throw new UsageError(`a sweep of more than ${raftCellsMax} cells would take hours; got ${opts.nodes.length} × ${opts.batch.length} × ${opts.inflight.length}`);
      const o = {
        ...raftBenchDefaults,
        nodes: opts.nodes,
        batch: opts.batch,
        inflight: opts.inflight,
        payloadBytes: opts.payload,
        clients: opts.clients,
        window: opts.window,
        clientActors: opts.clientActors,
        durationMs: opts.duration * 1000,
        storage: opts.storage,
        fsync: opts.fsync,
        ...(opts.snapshotEntries !== undefined ? { snapshotEntries: opts.snapshotEntries } : {}),
        curves: opts.curves,
        ...(opts.quick ? raftBenchQuick : {}),
      };
      const { SingleBar, Presets } = await import('cli-progress');
      const bar = new SingleBar({ format: 'raft bench [{bar}] {value}/{total} {label}', stream: process.stderr, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000 }, Presets.shades_classic);
      bar.start(raftBenchSteps(o), 0, { label: 'measuring the ring limit' });
      let report;
      try {
        report = await runRaftBench(o, { total: raftBenchSteps(o), onStep: (done, label) => bar.update(done, { label }) });
      } finally {
        bar.stop();
      }
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(formatTable(report));
      const t = targetRatios(report);
      if (t.best) log(`best: batch ${t.best.batch} inflight ${t.best.inflight} ${t.best.opsPerSec} ops/s; vs batch 1/inflight 1: ${t.bestVsUnbatched ?? '-'}x; pipelining alone: ${t.pipelining ?? '-'}x`);
      for (const line of formatSnapshotRatios(report)) log(line);
      for (const c of report.curves) log(`open loop ${c.label}: ${c.points.map((p) => `${p.opsPerSec}/s p99 ${p.p99Ms} ms (${p.cpuCores} cores)`).join(', ')}`);
      const dir = opts.out ?? `bench/results/${report.startedAt.slice(0, 19).replace(/:/g, '-')}`;
      const written = writeReport(report, dir, `concur ${process.argv.slice(2).join(' ')}`);
      log(`report: ${written.markdown}  (took ${report.durationSec} s)`);
      if (opts.json) process.stdout.write(`${JSON.stringify(jsonSummary(report))}\n`);
    });
  // Every benchmark takes it after its name, as start does.
  for (const sub of bench.commands) {
    sub.option('--sched <policy>', "Linux scheduling policy of the benchmark's threads, as concur start --sched: batch or normal (the OS default)", choiceOption(schedPolicies), 'batch' as SchedPolicy);
  }
}

/** More cells than this is a typo, not a sweep (each takes seconds). */
const raftCellsMax = 256;

interface RaftCliOptions {
  nodes: number[];
  batch: number[];
  inflight: number[];
  payload: number;
  clients: number;
  window: number;
  clientActors: number;
  duration: number;
  storage: 'memory' | 'wal';
  fsync: FsyncPolicy;
  snapshotEntries?: number[];
  curves: boolean;
  quick?: boolean;
  out?: string;
  json?: boolean;
}

function protocolListOption(value: string): ('raft' | 'multipaxos')[] {
  const list = value.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const p of list) if (p !== 'raft' && p !== 'multipaxos') throw new InvalidArgumentError(`unknown protocol "${p}"; choose from raft, multipaxos (comma-separated)`);
  if (list.length === 0) throw new InvalidArgumentError('name at least one protocol: raft, multipaxos');
  return [...new Set(list)] as ('raft' | 'multipaxos')[];
}
