// Exit codes as documented: 2 for every kind of bad usage (commander's own errors included: an
// unknown option, a missing or an extra argument, a value a parser refused, a command without
// its subcommand), before anything is sent or started; 1 stays "a negative answer".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from '../support/cli-process.ts';
import { startStubApi, type StubApi } from './stub-api.ts';

let stub: StubApi;

test.before(async () => {
  stub = await startStubApi(() => ({ status: 500, body: { error: 'the stub takes no requests in this test', code: 'stub' } }));
});
test.after(() => stub.close());

/** Runs the CLI, a few at a time (two cores are shared), and checks exit 2 without a stack. */
async function usage(cases: { args: string[]; says: RegExp }[]): Promise<void> {
  const width = 4;
  for (let i = 0; i < cases.length; i += width) {
    await Promise.all(
      cases.slice(i, i + width).map(async ({ args, says }) => {
        const r = await runCli(args);
        const what = `concur ${args.join(' ')}`;
        assert.is(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
        assert.match(r.stderr, says, what);
        assert.not.match(r.stderr, /\n\s+at .*:\d+:\d+/, `${what}: no stack`);
      }),
    );
  }
  assert.is(stub.seen.length, 0, 'nothing was sent for a usage error');
}

test('kv: a bad --read, a bad --timeout-ms, extra arguments, --node without a node read mode', async () => {
  const url = ['--url', stub.url];
  await usage([
    { args: ['kv', 'get', 'colour', '--read', 'bogus', ...url], says: /expected one of log, index, lease, follower, stale, got "bogus"/ },
    { args: ['kv', 'get', 'colour', '--timeout-ms', 'abc', ...url], says: /--timeout-ms <ms>.*expected an integer/ },
    { args: ['kv', 'get', 'colour', 'extra', ...url], says: /too many arguments/ },
    { args: ['kv', 'put', 'a', 'b', 'c', ...url], says: /too many arguments/ },
    { args: ['kv', 'get', ...url], says: /missing required argument 'key'/ },
    { args: ['kv', 'get', 'colour', '--bogus', ...url], says: /unknown option '--bogus'/ },
    { args: ['kv', 'get', 'colour', '--node', '2', ...url], says: /--node picks the node that serves a follower or stale read; add --read follower or --read stale/ },
    { args: ['kv', 'list', '--node', '2', '--read', 'log', ...url], says: /--node picks the node/ },
    { args: ['kv', 'list', '--limit', '0', ...url], says: /--limit <n>.*from 1/ },
    { args: ['kv', 'cas', 'k', 'v', ...url], says: /cas needs exactly one of --expect VALUE or --absent/ },
    { args: ['kv'], says: /Usage: concur kv/ },
  ]);
});

test('chaos: --nodes 0, a history path that cannot be written (before the run, not after it)', async () => {
  const started = Date.now();
  await usage([
    { args: ['chaos', '--nodes', '0'], says: /--nodes <n>.*expected an integer from 1 to 15, got 0/ },
    { args: ['chaos', '--history', '/nonexistent/dir/h.jsonl', '--duration', '30'], says: /cannot write --history \/nonexistent\/dir\/h\.jsonl: the directory \/nonexistent\/dir does not exist/ },
    { args: ['chaos', '--faults', 'earthquake'], says: /unknown fault "earthquake"/ },
  ]);
  assert.ok(Date.now() - started < 20_000, 'refused before a 30-second run');
});

test('cluster: bad node ids, a cut with a node on both sides, --clear with settings, probabilities out of range', async () => {
  const url = ['--url', stub.url];
  await usage([
    { args: ['cluster', 'crash', 'abc', ...url], says: /node ids are positive integers, got "abc"/ },
    { args: ['cluster', 'crash', ...url], says: /missing required argument 'id'/ },
    { args: ['cluster', 'pause', '1', '2', ...url], says: /too many arguments/ },
    { args: ['cluster', 'partition', '1,,2', ...url], says: /expected node ids separated by commas/ },
    { args: ['cluster', 'partition', '1,1', '2', ...url], says: /named twice/ },
    { args: ['cluster', 'cut', '1,2', '2,3', ...url], says: /node 2 is on both sides of the cut/ },
    { args: ['cluster', 'faults', '--clear', '--loss', '0.1', ...url], says: /--clear removes every link fault; give it alone/ },
    { args: ['cluster', 'faults', '--loss', '1.5', ...url], says: /expected a number from 0 to 1, got 1\.5/ },
    { args: ['cluster', 'faults', '--from', '1', ...url], says: /--from and --to say which links; add a fault/ },
    { args: ['cluster', 'faults', '--delay-ms', '-1', ...url], says: /--delay-ms/ },
    { args: ['cluster', 'heal', '--what', ...url], says: /unknown option '--what'/ },
    { args: ['cluster'], says: /Usage: concur cluster/ },
  ]);
});

test('member, transfer, lock, sim, bench, start, app and the program itself', async () => {
  const url = ['--url', stub.url];
  await usage([
    { args: ['member', 'remove', ...url], says: /missing required argument 'id'/ },
    { args: ['member', 'promote', 'x', ...url], says: /node ids are positive integers/ },
    { args: ['transfer', '1', '2', ...url], says: /too many arguments/ },
    { args: ['lock', 'acquire', 'l', ...url], says: /required option '--client <id>' not specified/ },
    { args: ['lock', 'release', 'l', '--client', 'c', '--token', 'x', ...url], says: /--token <n>.*expected an integer/ },
    { args: ['sim', '--nodes', '4'], says: /expected one of 1, 3, 5, 7, 9/ },
    { args: ['sim', '--mutation', 'nope', '--seeds', '1'], says: /unknown mutation "nope"/ },
    { args: ['bench', 'raft', '--batch', '1,,2'], says: /comma-separated list/ },
    { args: ['bench'], says: /Usage: concur bench/ },
    { args: ['start', '--nodes', '99'], says: /expected an integer from 1 to 15, got 99/ },
    { args: ['start', '--election-ms', '100-150'], says: /MAX = 2×MIN/ },
    { args: ['start', 'extra'], says: /too many arguments/ },
    { args: ['frobnicate'], says: /unknown command 'frobnicate'/ },
    { args: ['--bogus'], says: /unknown option '--bogus'/ },
  ]);
});

test('help and version exit 0', async () => {
  const [help, version, sub] = await Promise.all([runCli(['--help']), runCli(['--version']), runCli(['cluster', 'faults', '--help'])]);
  assert.equal([help.code, version.code, sub.code], [0, 0, 0]);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test.run();
