// `node --import tsx bench/etcd-compare.ts`: etcd (3 members on loopback, data on tmpfs) and
// concur (3 nodes, memory storage) side by side under the same autocannon load, in one run.
// Not part of `npm test`. It must never reach beyond 127.0.0.1, and it stops every process it starts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import autocannon from 'autocannon';
import { intOption } from '../apps/cli/options.ts';
import { schedPolicies, setSchedPolicy, type SchedPolicy } from '../runtime/sched-policy.ts';
import { startSocketFloor } from './socket-floor-process.ts';
import { cpuPerRequest, threadTimes, type CpuPerRequest } from './thread-cpu.ts';

interface Options {
  connections: number;
  duration: number;
  warmup: number;
  floor: boolean;
  rounds: number;
  valueBytes: number;
  /** etcd's client ports are base..base+2, its peer ports base+10..base+12. */
  etcdPortBase: number;
  /** Where the load goes: each system's leader (etcd's leader member, concur's leader's client port), or concur's cluster API and etcd's first member. */
  target: 'leader' | 'api';
  /** concur's client ports (--client-ports), with --target leader. */
  concurPortBase: number;
  /** concur start --sched: its threads' scheduling policy. */
  sched: SchedPolicy;
  /** etcd's scheduling policy (normal: as it is run by default; batch: to see what it buys etcd). */
  etcdSched: SchedPolicy;
}

interface LoadResult {
  system: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  non2xx: number;
  /** The server's CPU per request (etcd: its three processes together; concur: main thread, nodes, the rest). */
  cpu: CpuPerRequest;
  /** This process's CPU per request: what the load generator (autocannon) itself spends. */
  loadCpuUs: number;
}

/** How long etcd and concur may take to come up. */
const startTimeoutMs = 20_000;
const host = '127.0.0.1';

const program = new Command('etcd-compare')
  .description('etcd vs concur: the same autocannon PUT load on a 3-member etcd (tmpfs) and a 3-node concur (memory)')
  .option('--connections <n>', 'HTTP connections (keep-alive, one request in flight each)', intOption(1, 4_096), 64)
  .option('--duration <s>', 'seconds of load per system', intOption(1, 600), 10)
  .option('--warmup <s>', 'seconds of the same load each system gets first, not measured, so a JIT has compiled its hot paths (0: none)', intOption(0, 600), 15)
  .option('--rounds <n>', 'etcd then concur, this many times in turn: the ratio is the median of the rounds\' (a shared machine\'s speed drifts between one system\'s run and the other\'s)', intOption(1, 20), 3)
  .option('--no-floor', 'skip the socket floor (bench/socket-floor.mjs: a Node server that answers a fixed reply, what Node\'s sockets alone cost per request)')
  .option('--value-bytes <n>', 'bytes per value', intOption(1, 65_536), 64)
  .option('--etcd-port-base <port>', 'first of etcd\'s loopback ports', intOption(1_024, 65_000), 23_790)
  .addOption(new Option('--target <where>', 'leader: each system\'s leader (etcd\'s leader member; the client port of concur\'s leader node, concur start --client-ports); api: concur\'s cluster HTTP API (the main thread) and etcd\'s first member').choices(['leader', 'api']).default('leader'))
  .option('--concur-port-base <port>', 'concur\'s client ports with --target leader (node N on BASE+N-1)', intOption(1_024, 65_000), 23_890)
  .addOption(new Option('--sched <policy>', "concur's threads' scheduling policy (concur start --sched): batch (its default) or normal").choices(schedPolicies).default('batch'))
  .addOption(new Option('--etcd-sched <policy>', "etcd's scheduling policy: normal (as it is run by default) or batch (to see what SCHED_BATCH does for etcd)").choices(schedPolicies).default('normal'));

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${startTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopEtcd(members: ChildProcess[]): Promise<void> {
  for (const p of members) if (p.exitCode === null) p.kill('SIGTERM');
  await Promise.all(members.map((p) => (p.exitCode !== null ? null : new Promise((r) => p.once('exit', r)))));
}

function startEtcd(o: Options, dataDir: string): ChildProcess[] {
  const names = ['e1', 'e2', 'e3'];
  const peer = (i: number) => `http://${host}:${o.etcdPortBase + 10 + i}`;
  const client = (i: number) => `http://${host}:${o.etcdPortBase + i}`;
  const cluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  return names.map((name, i) =>
    spawn('etcd', [
      '--name', name,
      '--data-dir', join(dataDir, name),
      '--listen-client-urls', client(i),
      '--advertise-client-urls', client(i),
      '--listen-peer-urls', peer(i),
      '--initial-advertise-peer-urls', peer(i),
      '--initial-cluster', cluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'concur-compare',
      '--log-level', 'error',
    ], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
}

/** The client URL of etcd's leader member. */
async function etcdLeaderUrl(o: Options): Promise<string> {
  for (let i = 0; i < 3; i++) {
    const url = `http://${host}:${o.etcdPortBase + i}`;
    const st = (await (await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}' })).json()) as { header?: { member_id?: string }; leader?: string };
    if (st.leader !== undefined && st.header?.member_id === st.leader) return url;
  }
  throw new Error('no etcd member says it leads');
}

function startConcur(o: Options): Promise<{ child: ChildProcess; url: string }> {
  const bin = fileURLToPath(new URL('../bin/concur.mjs', import.meta.url));
  const doors = o.target === 'leader' ? ['--client-ports', String(o.concurPortBase)] : [];
  const child = spawn(process.execPath, [bin, 'start', '--nodes', '3', '--storage', 'memory', '--host', host, '--port', '0', '--sched', o.sched, ...doors], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`concur start printed no URL within ${startTimeoutMs} ms:\n${out}`)), startTimeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const m = /HTTP API on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!.replace(/\/$/, '') });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`concur start exited with ${code}:\n${out}`)));
  });
}

/** `pids`: the server's processes; `workers`: worker threads to tell apart in the first one (concur's nodes). */
async function load(system: string, o: Options, request: { url: string; method: 'PUT' | 'POST'; body: string; headers: Record<string, string> }, pids: number[], workers: number): Promise<LoadResult> {
  if (o.warmup > 0) {
    say(`  warming up ${system}: ${o.connections} connections, ${o.warmup} s (not measured) …`);
    await autocannon({ url: request.url, method: request.method, body: request.body, headers: request.headers, connections: o.connections, duration: o.warmup });
  }
  say(`  loading ${system}: ${o.connections} connections, ${o.duration} s …`);
  const before = pids.map(threadTimes);
  const ownBefore = process.cpuUsage();
  const r = await autocannon({ url: request.url, method: request.method, body: request.body, headers: request.headers, connections: o.connections, duration: o.duration });
  const own = process.cpuUsage(ownBefore);
  const n = Math.max(1, r.requests.total);
  const parts = pids.map((pid, i) => cpuPerRequest(pid, before[i]!, threadTimes(pid), n, i === 0 ? workers : 0));
  const cpu = parts.reduce((a, b) => ({ main: a.main + b.main, workers: a.workers + b.workers, other: a.other + b.other, total: a.total + b.total }));
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    system,
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    cpu: { main: round(cpu.main), workers: round(cpu.workers), other: round(cpu.other), total: round(cpu.total) },
    loadCpuUs: round((own.user + own.system) / n),
  };
}

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Options>();
  if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0) {
    say('etcd is not installed: `apt-get install -y etcd-server` (Debian), then run this again.');
    process.exitCode = 2;
    return;
  }
  const value = 'v'.repeat(o.valueBytes);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // tmpfs: etcd fsyncs every commit; on /dev/shm that costs what concur's memory storage does.
  const dataDir = mkdtempSync('/dev/shm/concur-etcd-');
  let etcd: ChildProcess[] = [];
  let concur: ChildProcess | null = null;
  try {
    const etcdUrl = `http://${host}:${o.etcdPortBase}`;
    const rounds: Array<{ etcd: LoadResult; concur: LoadResult; ratio: number }> = [];
    for (let round = 1; round <= o.rounds; round++) {
      if (o.rounds > 1) say(`round ${round} of ${o.rounds}`);
      // A fresh etcd each round: one restarted on the last round's data would replay its log first.
      const roundDir = join(dataDir, `round-${round}`);
      etcd = startEtcd(o, roundDir);
      if (o.etcdSched === 'batch') {
        for (const m of etcd) {
          const why = setSchedPolicy('batch', m.pid!);
          if (why !== null) throw new Error(`cannot run etcd SCHED_BATCH: ${why}`);
        }
      }
      await waitFor('etcd', async () => {
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      });
      const etcdTarget = o.target === 'leader' ? await etcdLeaderUrl(o) : etcdUrl;
      say(`etcd: 3 members on ${host}:${o.etcdPortBase}-${o.etcdPortBase + 2}, data on ${dataDir}${o.etcdSched === 'batch' ? ', SCHED_BATCH' : ''}; load on ${etcdTarget}${o.target === 'leader' ? ' (the leader)' : ''}`);
      const e = await load('etcd', o, { url: `${etcdTarget}/v3/kv/put`, method: 'POST', body: JSON.stringify({ key: b64('bench'), value: b64(value) }), headers: { 'content-type': 'application/json' } }, etcd.map((p) => p.pid!), 0);
      // Each system runs alone: an idle concur still ticks (its nodes take a few % of a core), and
      // that would be taken from etcd's cores during etcd's run, as an idle etcd's from concur's.
      await stopEtcd(etcd);
      etcd = [];
      rmSync(roundDir, { recursive: true, force: true });
      const started = await startConcur(o);
      concur = started.child;
      let leader: number | null = null;
      let term = 0;
      await waitFor('a concur leader', async () => {
        const st0 = (await (await fetch(`${started.url}/cluster`)).json()) as { leader: number | null; term: number };
        leader = st0.leader;
        term = st0.term;
        return leader !== null;
      });
      const concurTarget = o.target === 'leader' ? `http://${host}:${o.concurPortBase + leader! - 1}` : started.url;
      say(`concur: 3 nodes, memory storage, API on ${started.url}; load on ${concurTarget}${o.target === 'leader' ? ` (node ${leader}'s client port: the leader)` : ''}`);
      const c = await load('concur', o, { url: `${concurTarget}/kv/bench`, method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } }, [concur.pid!], 3);
      const st = (await (await fetch(`${started.url}/cluster`)).json()) as { leader: number | null; term: number };
      // A leader that changed during the run sent the load through a follower's port for a while.
      if (st.leader !== leader || st.term !== term) say(`  concur's leader is now ${st.leader ?? 'none'} (term ${st.term}); it was ${leader} (term ${term}) when the load began`);
      concur.kill('SIGINT');
      await new Promise((r) => concur!.once('exit', r));
      concur = null;
      rounds.push({ etcd: e, concur: c, ratio: Math.round((c.requestsPerSec / Math.max(1, e.requestsPerSec)) * 100) / 100 });
    }
    say('');
    say('round  system   puts/s   p50 ms   p99 ms   max ms   errors   non-2xx   CPU per put, µs (server; load)');
    rounds.forEach((r, i) => {
      for (const x of [r.etcd, r.concur]) {
        const cpu = x === r.concur ? `${x.cpu.total.toFixed(1)} (main ${x.cpu.main.toFixed(1)}, nodes ${x.cpu.workers.toFixed(1)}, other ${x.cpu.other.toFixed(1)})` : `${x.cpu.total.toFixed(1)} (3 processes)`;
        say(`${String(i + 1).padStart(5)}  ${x.system.padEnd(7)}${String(x.requestsPerSec).padStart(8)}${String(x.p50Ms).padStart(9)}${String(x.p99Ms).padStart(9)}${String(x.maxMs).padStart(9)}${String(x.errors).padStart(9)}${String(x.non2xx).padStart(10)}   ${cpu}; ${x.loadCpuUs.toFixed(1)}`);
      }
      say(`${' '.repeat(7)}concur / etcd ${r.ratio}×`);
    });
    // The median round (by ratio) stands for the run, with its own rates and latencies.
    const sorted = [...rounds].sort((a, b) => a.ratio - b.ratio);
    const median = sorted[(sorted.length - 1) >> 1]!;
    const e = median.etcd;
    const c = median.concur;
    const ratio = median.ratio;
    say(`concur / etcd throughput: ${ratio}×${rounds.length > 1 ? ` (the median of ${rounds.length} rounds: ${rounds.map((r) => `${r.ratio}×`).join(', ')})` : ''}  (${o.connections} connections, ${o.duration} s each after ${o.warmup} s of warm-up, ${o.valueBytes}-byte values)`);
    say(`p99: concur ${c.p99Ms} ms, etcd ${e.p99Ms} ms in that round`);
    say('(CPU per put, µs, from Linux /proc: the server\'s, and after the semicolon the load generator\'s, autocannon in this process)');
    let f: LoadResult | null = null;
    if (o.floor) {
      const floor = await startSocketFloor('http', startTimeoutMs);
      try {
        f = await load('floor', o, { url: `http://${host}:${floor.port}/kv/bench`, method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } }, [floor.child.pid!], 0);
      } finally {
        await floor.stop();
      }
      say(`floor: ${f.cpu.total.toFixed(1)} µs a put (bench/socket-floor.mjs: a fixed reply, nothing stored; ${f.requestsPerSec} puts/s); autocannon ${f.loadCpuUs.toFixed(1)}`);
      say('         what Node\'s sockets alone cost per request at this load: the least concur\'s main thread could spend');
    }
    say('Both cores are busy in every run, so a rate is bounded by about 2 cores / (server + autocannon) µs per put.');
    process.stdout.write(`${JSON.stringify({ connections: o.connections, sched: o.sched, etcdSched: o.etcdSched, durationSec: o.duration, valueBytes: o.valueBytes, etcd: e, concur: c, ratio, rounds, ...(f ? { floor: f } : {}) })}\n`);
  } finally {
    if (concur) {
      concur.kill('SIGINT');
      await new Promise((r) => concur!.once('exit', r));
    }
    await stopEtcd(etcd);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
