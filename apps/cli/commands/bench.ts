// `concur bench <what>`: one subcommand per benchmark; the measuring code lives in bench/.
import type { Command } from 'commander';
import { choiceOption, intOption } from '../options.ts';
import { fsyncPolicies, type FsyncPolicy } from '../../../runtime/storage/index.ts';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('run a benchmark (see `concur bench --help` for the list)');

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
}
