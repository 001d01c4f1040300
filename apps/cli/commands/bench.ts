// `concur bench <what>`: one subcommand per benchmark; the measuring code lives in bench/.
import type { Command } from 'commander';
import { intOption } from '../options.ts';

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
}
