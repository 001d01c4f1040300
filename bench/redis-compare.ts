// `node --import tsx bench/redis-compare.ts`: Debian's redis-server (no persistence) and concur's
// Redis protocol door (3 nodes, memory storage; optionally the WAL too) loaded in turn by the same
// redis-benchmark, without pipelining and with it, in one run. Not part of `npm test`. It must
// never reach beyond 127.0.0.1, and it stops every process it starts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { intOption } from '../apps/cli/options.ts';
import { schedPolicies, setSchedPolicy, type SchedPolicy } from '../runtime/sched-policy.ts';
import { startSocketFloor } from './socket-floor-process.ts';
import { cpuPerRequest, reapedChildrenTimes, threadTimes, type CpuPerRequest } from './thread-cpu.ts';

interface Options {
  requests: number;
  clients: number;
  pipeline: number;
  valueBytes: number;
  wal: boolean;
  warmup: number;
  floor: boolean;
  rounds: number;
  /** Where concur's load goes: its leader node's own RESP port, or the supervisor's (--resp-port, on the main thread). */
  target: 'leader' | 'api';
  /** Who serves --resp-port with --target api: the supervisor (main thread) or the leader's thread (concur start --resp-door). */
  respDoor: 'supervisor' | 'leader';
  /** concur's RESP client ports with --target leader. */
  concurPortBase: number;
  /** concur start --sched: its threads' scheduling policy. */
  sched: SchedPolicy;
  /** redis-server's scheduling policy (normal: as Debian runs it; batch: to see what it buys redis). */
  redisSched: SchedPolicy;
}

/** One redis-benchmark test (SET or GET) at one pipeline depth. */
interface Rate {
  test: string;
  pipeline: number;
  rps: number;
  p50Ms: number;
  /** CPU the server spent per request, by thread kind (Linux /proc). */
  cpu?: CpuPerRequest;
  /** CPU redis-benchmark itself spent per request, µs: it shares the machine's cores with the server. */
  loadCpuUs?: number;
}

/** How long redis-server and concur may take to come up, and one load to finish. */
const startTimeoutMs = 30_000;
const loadTimeoutMs = 600_000;
const host = '127.0.0.1';

const program = new Command('redis-compare')
  .description('redis-server vs concur --resp-port: the same redis-benchmark -t set,get load, without pipelining and with -P')
  // 100,000 pipelined SETs took redis under 0.1 s on a fast machine: too short a run to time.
  .option('--requests <n>', 'requests per test (redis-benchmark -n)', intOption(1_000, 100_000_000), 1_000_000)
  .option('--clients <n>', 'connections (redis-benchmark -c)', intOption(1, 1_000), 50)
  .option('--pipeline <n>', 'the pipelined run\'s depth (redis-benchmark -P)', intOption(2, 1_000), 16)
  .option('--value-bytes <n>', 'bytes per SET value (redis-benchmark -d)', intOption(1, 1_048_576), 3)
  .option('--rounds <n>', 'redis then concur, this many times in turn: each test\'s ratio is the median of the rounds\' (a shared machine\'s speed drifts between one server\'s run and the other\'s)', intOption(1, 20), 3)
  .option('--wal', 'also run concur with --storage wal --fsync batch', false)
  .option('--no-floor', 'skip the socket floor (bench/socket-floor.mjs: a Node server that answers fixed replies, what Node\'s sockets alone cost per request)')
  .addOption(new Option('--target <where>', "where concur's load goes: leader (the leader node's own RESP port, concur start --resp-client-ports) or api (--resp-port, on the main thread)").choices(['leader', 'api']).default('api'))
  .addOption(new Option('--resp-door <who>', "with --target api: who serves concur's --resp-port (concur start --resp-door): supervisor (the main thread) or leader (the port follows the leader, its thread serves it)").choices(['supervisor', 'leader']).default('supervisor'))
  .addOption(new Option('--sched <policy>', "concur's threads' scheduling policy (concur start --sched): batch (its default) or normal").choices(schedPolicies).default('batch'))
  .addOption(new Option('--redis-sched <policy>', "redis-server's scheduling policy: normal (as it is run by default) or batch (to see what SCHED_BATCH does for redis)").choices(schedPolicies).default('normal'))
  .option('--concur-port-base <port>', "concur's RESP client ports with --target leader (node N on BASE+N-1)", intOption(1_024, 65_000), 23_990)
  .option('--warmup <s>', 'seconds of SET and GET load, without pipelining and with it in turn, each server gets before the measured runs, so a JIT has compiled its hot paths (0: none)', intOption(0, 600), 15);

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a program to its end and returns its standard output (rejects past `timeoutMs` or on a non-zero exit). */
function run(cmd: string, args: string[], timeoutMs: number, onStderr: (text: string) => void = () => {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      onStderr(err);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${err}${out}`));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${startTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** redis-benchmark's --csv lines: "SET","41981.53","0.716","0.152","0.607",... */
function parseCsv(out: string, pipeline: number): Rate[] {
  const rates: Rate[] = [];
  for (const line of out.split('\n')) {
    const m = /^"([A-Z]+)","([0-9.]+)","[0-9.]+","[0-9.]+","([0-9.]+)"/.exec(line.trim());
    if (m) rates.push({ test: m[1]!, pipeline, rps: Number(m[2]), p50Ms: Number(m[3]) });
  }
  return rates;
}

/** Requests of SET and of GET per warm-up run: short, so the warm-up ends near its time. */
const warmupRound = 10_000;

/**
 * SET then GET (each its own redis-benchmark run, so the server's CPU can be read per test), without
 * pipelining and with it. `pid` is the server's; `workers` its worker threads to tell apart.
 */
async function load(system: string, port: number, o: Options, pid: number, workers: number): Promise<Rate[]> {
  // At both depths: the paths a load without pipelining takes (a few commands per round of the
  // log) are compiled apart from the pipelined ones. Measured on concur under a steady load, V8's
  // compiler threads spend ~20 % of the CPU in the first 4 s, ~8 % up to 8 s and ~2 % after 12 s:
  // a warm-up counted in seconds, not requests, so it lasts as long on a slow machine.
  if (o.warmup > 0) {
    say(`  ${system}: warming up for ${o.warmup} s (redis-benchmark -t set,get -n ${warmupRound} at -P 1 and -P ${o.pipeline} in turn, not measured) …`);
    const until = Date.now() + o.warmup * 1000;
    while (Date.now() < until) {
      for (const pipeline of [1, o.pipeline]) {
        await run('redis-benchmark', ['-h', host, '-p', String(port), '-t', 'set,get', '-c', String(o.clients), '-n', String(warmupRound), '-d', String(o.valueBytes), '-P', String(pipeline), '--csv'], loadTimeoutMs);
      }
    }
  }
  const rates: Rate[] = [];
  for (const pipeline of [1, o.pipeline]) {
    for (const test of ['set', 'get']) {
      say(`  ${system}: redis-benchmark -t ${test} -c ${o.clients} -n ${o.requests} -d ${o.valueBytes}${pipeline > 1 ? ` -P ${pipeline}` : ''} …`);
      const before = threadTimes(pid);
      const loadBefore = reapedChildrenTimes();
      // redis-benchmark reports error answers on stderr ("Error from server: ..."): shown, not hidden.
      const out = await run('redis-benchmark', ['-h', host, '-p', String(port), '-t', test, '-c', String(o.clients), '-n', String(o.requests), '-d', String(o.valueBytes), '-P', String(pipeline), '--csv'], loadTimeoutMs, (err) => {
        for (const line of err.split('\n')) if (line.includes('Error from server')) say(`    ${system}: ${line.trim()}`);
      });
      const got = parseCsv(out, pipeline);
      if (got.length !== 1) throw new Error(`redis-benchmark printed no ${test.toUpperCase()} rate:\n${out}`);
      got[0]!.cpu = cpuPerRequest(pid, before, threadTimes(pid), o.requests, workers);
      got[0]!.loadCpuUs = Math.round(((reapedChildrenTimes() - loadBefore) * 1e6) / o.requests * 10) / 10;
      rates.push(got[0]!);
    }
  }
  return rates;
}

async function redisServer(o: Options): Promise<Rate[]> {
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', host, '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitFor('redis-server', async () => (await run('redis-cli', ['-h', host, '-p', String(port), 'PING'], 5_000)).trim() === 'PONG');
    const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (o.redisSched === 'batch') {
      const why = setSchedPolicy('batch', child.pid!);
      if (why !== null) throw new Error(`cannot run redis-server SCHED_BATCH: ${why}`);
    }
    say(`redis-server on ${host}:${port}, no persistence${o.redisSched === 'batch' ? ', SCHED_BATCH' : ''} (${version})`);
    return await load('redis', port, o, child.pid!, 0);
  } finally {
    await stop(child, 'SIGTERM');
  }
}

/** bench/socket-floor.mjs under the same load: what Node's own sockets cost per request. */
async function socketFloor(o: Options): Promise<Rate[]> {
  const floor = await startSocketFloor('resp', startTimeoutMs);
  try {
    say(`socket floor (bench/socket-floor.mjs: fixed replies, nothing stored) on ${host}:${floor.port}`);
    return await load('socket floor', floor.port, o, floor.child.pid!, 0);
  } finally {
    await floor.stop();
  }
}

async function concur(o: Options, storage: 'memory' | 'wal'): Promise<Rate[]> {
  const bin = fileURLToPath(new URL('../bin/concur.mjs', import.meta.url));
  const doors = o.target === 'leader' ? ['--resp-client-ports', String(o.concurPortBase)] : ['--resp-door', o.respDoor];
  const args = [bin, 'start', '--nodes', '3', '--storage', storage, ...(storage === 'wal' ? ['--fsync', 'batch'] : []), '--host', host, '--port', '0', '--resp-port', '0', '--sched', o.sched, ...doors];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const { url, port } = await new Promise<{ url: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`concur start printed no addresses within ${startTimeoutMs} ms:\n${out}`)), startTimeoutMs);
      const onData = (d: Buffer) => {
        out += d;
        const http = /HTTP API on (http:\/\/[^\s]+)/.exec(out);
        const resp = /Redis protocol on redis:\/\/[^\s:]+:(\d+)/.exec(out);
        if (http && resp) {
          clearTimeout(timer);
          resolve({ url: http[1]!.replace(/\/$/, ''), port: Number(resp[1]) });
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`concur start exited with ${code}:\n${out}`)));
    });
    let leader: number | null = null;
    await waitFor('a concur leader', async () => (leader = ((await (await fetch(`${url}/cluster`)).json()) as { leader: number | null }).leader) !== null);
    const target = o.target === 'leader' ? o.concurPortBase + leader! - 1 : port;
    say(`concur: 3 nodes, ${storage === 'wal' ? 'WAL storage (fsync batch)' : 'memory storage'}, threads ${o.sched === 'batch' ? 'SCHED_BATCH' : 'SCHED_OTHER'}, RESP on ${host}:${target}${o.target === 'leader' ? ` (node ${leader}'s own port: the leader)` : o.respDoor === 'leader' ? ' (--resp-door leader: the port follows the leader)' : ''}`);
    const rates = await load(`concur (${storage})`, target, o, child.pid!, 3);
    const now = ((await (await fetch(`${url}/cluster`)).json()) as { leader: number | null }).leader;
    if (now !== leader) say(`  concur's leader is now ${now ?? 'none'}; it was ${leader} when the load began`);
    return rates;
  } finally {
    await stop(child, 'SIGINT');
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Options>();
  for (const tool of ['redis-server', 'redis-benchmark', 'redis-cli']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
      say(`${tool} is not installed: \`apt-get install -y redis-server redis-tools\` (Debian), then run this again.`);
      process.exitCode = 2;
      return;
    }
  }
  const rounds: Array<{ redis: Rate[]; memory: Rate[] }> = [];
  for (let round = 1; round <= o.rounds; round++) {
    if (o.rounds > 1) say(`round ${round} of ${o.rounds}`);
    rounds.push({ redis: await redisServer(o), memory: await concur(o, 'memory') });
  }
  const wal = o.wal ? await concur(o, 'wal') : null;
  const floor = o.floor ? await socketFloor(o) : null;
  const target = (pipeline: number) => (pipeline === 1 ? 0.5 : 0.25);
  const same = (a: Rate) => (b: Rate) => b.test === a.test && b.pipeline === a.pipeline;
  // Per test, the round whose ratio is the median stands for the run (its own rates and CPU).
  const redis: Rate[] = [];
  const memory: Rate[] = [];
  const roundRatios: number[][] = [];
  for (const r0 of rounds[0]!.redis) {
    const each = rounds.map((r) => {
      const red = r.redis.find(same(r0))!;
      const con = r.memory.find(same(r0))!;
      return { red, con, ratio: ratio(con.rps, red.rps) };
    });
    const median = [...each].sort((a, b) => a.ratio - b.ratio)[(each.length - 1) >> 1]!;
    redis.push(median.red);
    memory.push(median.con);
    roundRatios.push(each.map((e) => e.ratio));
  }
  say('');
  say(`test  -P   redis/s    concur/s  ratio  target${wal ? '   wal/s  ratio' : ''}${o.rounds > 1 ? '   ratio in each round' : ''}`);
  const rows = redis.map((r, i) => {
    const m = memory.find(same(r))!;
    const w = wal?.find(same(r)) ?? null;
    say(`${r.test.padEnd(4)}${String(r.pipeline).padStart(4)}${fmt(r.rps).padStart(10)}${fmt(m.rps).padStart(12)}${String(ratio(m.rps, r.rps)).padStart(7)}${`${target(r.pipeline)}×`.padStart(8)}${w ? `${fmt(w.rps).padStart(8)}${String(ratio(w.rps, r.rps)).padStart(7)}` : ''}${o.rounds > 1 ? `   ${roundRatios[i]!.join(', ')}` : ''}`);
    return { test: r.test, pipeline: r.pipeline, redis: r, concur: m, ratio: ratio(m.rps, r.rps), target: target(r.pipeline), roundRatios: roundRatios[i], ...(w ? { wal: w, walRatio: ratio(w.rps, r.rps) } : {}) };
  });
  if (o.rounds > 1) say(`(each test's row is its median round of ${o.rounds}, redis then concur in turn; the WAL ratio is against that round's redis)`);
  say(`(${o.clients} connections, ${o.requests} requests per test, ${o.valueBytes}-byte values, after ${o.warmup} s of warm-up each; concur: 3 nodes, linearizable reads by ReadIndex)`);
  say('');
  say('CPU per request, µs (Linux /proc; concur: main thread + its 3 node threads + the rest, V8 compiler/GC threads;');
  say('load: what redis-benchmark itself spent per request against each server, on the same cores;');
  say('floor: bench/socket-floor.mjs, a Node server answering fixed replies: what Node\'s sockets alone cost per request)');
  say(`test  -P   redis   concur   main  nodes  other${wal ? '     wal' : ''}   load→redis  load→concur${floor ? '  floor    floor/s' : ''}`);
  for (const r of redis) {
    const m = memory.find(same(r))!;
    const w = wal?.find(same(r)) ?? null;
    const c = m.cpu!;
    const f = floor?.find(same(r)) ?? null;
    say(`${r.test.padEnd(4)}${String(r.pipeline).padStart(4)}${r.cpu!.total.toFixed(1).padStart(8)}${c.total.toFixed(1).padStart(9)}${c.main.toFixed(1).padStart(7)}${c.workers.toFixed(1).padStart(7)}${c.other.toFixed(1).padStart(7)}${w ? w.cpu!.total.toFixed(1).padStart(8) : ''}${r.loadCpuUs!.toFixed(1).padStart(13)}${m.loadCpuUs!.toFixed(1).padStart(13)}${f ? `${f.cpu!.total.toFixed(1).padStart(7)}${fmt(f.rps).padStart(11)}` : ''}`);
  }
  say('Both cores are busy in every run, so a rate is bounded by about 2 cores / (server + load) µs per request.');
  process.stdout.write(`${JSON.stringify({ target: o.target, ...(o.target === 'api' ? { respDoor: o.respDoor } : {}), sched: o.sched, redisSched: o.redisSched, clients: o.clients, requests: o.requests, valueBytes: o.valueBytes, pipeline: o.pipeline, rounds: o.rounds, rows, ...(floor ? { floor } : {}) })}\n`);
}

await main();
