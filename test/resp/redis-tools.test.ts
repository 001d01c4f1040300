// The Redis door on a real 3-node Raft cluster, driven by Debian's own redis-cli and
// redis-benchmark (spawned, never run in-process): commands, --pipe, --scan, RESP3, INFO, and
// benchmark loads with and without pipelining. The tools must be installed (CI installs them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { startRespServer, type RespServer } from '../../apps/resp/server.ts';
import { eventually } from '../support/cluster.ts';
import { encodeRequest, requireTool } from './support.ts';

let cluster: Cluster;
let door: RespServer;

test.before(async () => {
  requireTool('redis-cli');
  requireTool('redis-benchmark');
  cluster = await Cluster.start({ nodes: 3, storage: 'memory' });
  door = await startRespServer(cluster, { port: 0 });
  await eventually(() => cluster.leader() ?? undefined, 'a leader');
});

test.after(async () => {
  await door?.close();
  await cluster?.stop();
});

/** Runs a tool to completion (asynchronously: the door answering it runs in this process). */
function run(tool: string, args: string[], input?: string | Buffer, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${tool} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

const cli = async (...args: string[]) => (await run('redis-cli', ['-p', String(door.port), ...args])).stdout.trimEnd();

test('redis-cli runs commands and prints their answers, errors included', async () => {
  assert.is(await cli('PING'), 'PONG');
  assert.is(await cli('SET', 'greeting', 'hello world'), 'OK');
  assert.is(await cli('GET', 'greeting'), 'hello world');
  assert.is(await cli('INCR', 'visits'), '1');
  assert.is(await cli('INCRBY', 'visits', '9'), '10');
  assert.is(await cli('MSET', 'x', '1', 'y', '2'), 'OK');
  assert.is(await cli('MGET', 'x', 'nope', 'y'), '1\n\n2');
  assert.is(await cli('DEL', 'x', 'y', 'nope'), '2');
  assert.is(await cli('EXISTS', 'x'), '0');
  assert.is(await cli('INCR', 'greeting'), 'ERR value is not an integer or out of range');
  assert.is(await cli('GET'), "ERR wrong number of arguments for 'get' command");
  assert.is(await cli('LPUSH', 'l', 'a'), "ERR unknown command 'LPUSH', with args beginning with: 'l' 'a'");
  // RESP3 through redis-cli's own HELLO 3.
  assert.is(await cli('-3', 'GET', 'greeting'), 'hello world');
  assert.match(await cli('-3', 'HELLO', '3'), /^proto 3$/m);
});

test('redis-cli --pipe sends a pipelined stream and counts the answers', async () => {
  const stream = Buffer.concat(Array.from({ length: 500 }, (_, i) => encodeRequest(['SET', `pipe:${i}`, String(i)])));
  const r = await run('redis-cli', ['-p', String(door.port), '--pipe'], stream);
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout + r.stderr, /errors: 0, replies: 500/);
  assert.is(await cli('GET', 'pipe:499'), '499');
});

test('redis-cli --scan lists the keys, with --pattern', async () => {
  await cli('MSET', ...Array.from({ length: 30 }, (_, i) => [`scan:${i}`, 'v']).flat());
  // 30 keys take several pages of SCAN's default COUNT (10): redis-cli follows the cursor.
  const keys = (await run('redis-cli', ['-p', String(door.port), '--scan', '--pattern', 'scan:*'])).stdout.trim().split('\n');
  assert.equal([...keys].sort(), Array.from({ length: 30 }, (_, i) => `scan:${i}`).sort());
});

test('redis-cli INFO shows the cluster: leader, term, commit index, the nodes', async () => {
  const info = await cli('INFO');
  const s = cluster.status();
  assert.match(info, /# Server/);
  assert.match(info, new RegExp(`leader:${s.leader}`));
  assert.match(info, /term:\d+/);
  assert.match(info, /commit_index:[1-9]\d*/);
  assert.match(info, /nodes:3/);
  assert.match(info, /node1:role=(leader|follower),up=1/);
  assert.match(info, /db0:keys=\d+/);
});

/** Rates per test from redis-benchmark --csv. */
function csvRates(out: string): Map<string, number> {
  const rates = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^"([A-Z]+)","([0-9.]+)"/.exec(line.trim());
    if (m) rates.set(m[1]!, Number(m[2]));
  }
  return rates;
}

for (const pipeline of [1, 16]) {
  test(`redis-benchmark -t set,get -n 2000 -c 10${pipeline > 1 ? ` -P ${pipeline}` : ''} finishes with nonzero rates`, async () => {
    const r = await run('redis-benchmark', ['-p', String(door.port), '-t', 'set,get', '-n', '2000', '-c', '10', '-P', String(pipeline), '--csv'], undefined, 120_000);
    assert.is(r.code, 0, r.stderr);
    const rates = csvRates(r.stdout);
    assert.ok((rates.get('SET') ?? 0) > 0, `SET rate in:\n${r.stdout}\n${r.stderr}`);
    assert.ok((rates.get('GET') ?? 0) > 0, `GET rate in:\n${r.stdout}\n${r.stderr}`);
    assert.not.match(r.stderr, /WARNING: Could not fetch server CONFIG/);
  });
}

test.run();
