// `concur start`: a live Raft (or Multi-Paxos) cluster on worker threads with the HTTP API (and,
// with --resp-port, the Redis protocol) in front of it, a one-line live status, and a clean
// shutdown on Ctrl-C. What `npm start` runs.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { choiceOption, intListOption, intOption, listOption, UsageError } from '../options.ts';
import { accessProblem, checkListen, hostAddresses, isLoopback, listenRefusal, prepareDataDir } from '../start-checks.ts';
import { readTokenFile, tokenFileEnv } from '../token-file.ts';
// Defaults and choices from modules that import nothing else, so `concur start --help` and
// `concur --help` load no storage or protocol code; what runs a cluster is imported in runStart.
import { fsyncPolicies, type FsyncPolicy } from '../../../runtime/storage/types.ts';
import { defaultRaftSettings } from '../../../protocols/raft/config.ts';
import { snapshotSettingsDefault } from '../../cluster/snapshot-keeper.ts';
import { applySchedPolicy, schedPolicies, type SchedPolicy } from '../../../runtime/sched-policy.ts';

export function electionRangeOption(value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected MIN-MAX in milliseconds, e.g. 150-300, got "${value}".`);
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 10 || max !== min * 2) throw new InvalidArgumentError(`expected MIN-MAX with MIN ≥ 10 and MAX = 2×MIN (timeouts are drawn from [MIN, 2·MIN)), got "${value}"; try ${Math.max(10, min)}-${Math.max(10, min) * 2}.`);
  return [min, max];
}

/** The protocols `--protocol` takes (apps/cluster/cluster.ts clusterProtocols; not imported here, so --help stays fast). */
const protocols = ['raft', 'multipaxos'] as const;
/** Flags that set what only Raft nodes have: a Multi-Paxos start refuses them when given. */
/** A Multi-Paxos node compacts exactly at its snapshot (no catch-up margin) and has no byte limits. */
const raftOnlyFlags = ['witnesses', 'snapshotCatchUp', 'inflightBytesMax', 'uncommittedBytesMax'] as const;
/** Where --resp-port's connections are served (apps/cluster/leader-port.ts for `leader`). */
const respDoors = ['supervisor', 'leader'] as const;
const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

interface StartOptions {
  protocol: (typeof protocols)[number];
  nodes: number;
  witnesses?: number[];
  port: number;
  respPort?: number;
  respDoor: (typeof respDoors)[number];
  clientPorts?: number;
  respClientPorts?: number;
  host: string;
  dataDir?: string;
  fsync: FsyncPolicy;
  storage: 'wal' | 'memory';
  electionMs: [number, number];
  heartbeatMs: number;
  seed: number;
  requestTimeoutMs: number;
  valueBytesMax: number;
  snapshotEntries: number;
  snapshotBytes: number;
  snapshotCatchUp: number;
  inflightBytesMax?: number;
  uncommittedBytesMax?: number;
  apps: string[];
  app?: string[];
  tokenFile?: string;
  insecure?: boolean;
  faultApi: boolean;
  sched: SchedPolicy;
}

/** The built-in apps (apps/platform/registry.ts; not imported here, so --help stays fast). */
const builtinAppNames = ['kv', 'lock'];

function appListOption(value: string): string[] {
  const names = value.split(',').map((n) => n.trim());
  for (const n of names) {
    if (!builtinAppNames.includes(n)) throw new InvalidArgumentError(`${JSON.stringify(n)} is not a built-in app (built in: ${builtinAppNames.join(', ')}); load your own with --app ./path/to/app.ts`);
  }
  if (new Set(names).size !== names.length) throw new InvalidArgumentError(`an app is named twice in "${value}"`);
  return names;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start a live Raft cluster on worker threads and its HTTP API (or Multi-Paxos: --protocol multipaxos)')
    .option('--protocol <name>', `consensus protocol: ${protocols.join(' | ')} (the same KV store and HTTP API on either)`, choiceOption(protocols), 'raft' as const)
    .option('--nodes <n>', 'number of nodes, one worker each', intOption(1, 15), 5)
    .option('--witnesses <ids>', 'node ids (comma-separated) that are witnesses: they vote and hold the log but keep no state machine, e.g. --nodes 3 --witnesses 3', intListOption(1, 15))
    .option('--port <port>', 'HTTP port (0 picks a free one)', intOption(0, 65535), 7070)
    .option('--resp-port <port>', 'also speak the Redis protocol (RESP) to the KV store on this port, e.g. 6380 (0 picks a free one; off unless given)', intOption(0, 65535))
    .option('--resp-door <where>', "who serves --resp-port: supervisor (the main thread; a connection survives any node's crash) or leader (the port follows the leader: its own thread serves the connections it accepts, no thread hop for a write; a connection stays on its node after leadership moves, forwarding, and closes if that node crashes)", choiceOption(respDoors), 'supervisor' as const)
    .option('--client-ports <base>', 'every node also serves the HTTP KV and app API itself, as each etcd member does: node N on port BASE+N-1 (writes sent to a follower go to the leader over the rings); off unless given', intOption(1, 65535))
    .option('--resp-client-ports <base>', 'every node also speaks the Redis protocol itself: node N on port BASE+N-1; off unless given', intOption(1, 65535))
    .option('--host <host>', 'address to listen on (HTTP and RESP); one other machines can reach needs --token-file (or --insecure)', '127.0.0.1')
    .addOption(new Option('--token-file <file>', `require "Authorization: Bearer <token>" on every request, the token read from FILE`).env(tokenFileEnv))
    .option('--insecure', 'allow a --host other machines can reach without --token-file (anyone who reaches it can crash nodes and change data)')
    .option('--no-fault-api', 'switch off crash, restart, pause, resume, partition, isolate, cut, faults and heal (they answer 403): for a cluster that serves real clients')
    .addOption(listOption('--apps <names>', `built-in apps on the log, comma-separated: ${builtinAppNames.join(', ')} (the KV store and the lock service)`, appListOption, [...builtinAppNames]))
    .option('--app <path>', 'also run your own app from a module (default export: { name, createStateMachine, routes? }; see apps/README.md); repeatable', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--data-dir <dir>', 'keep each node\'s write-ahead log under DIR/node-<id> (default: a temporary directory removed at exit)')
    .option('--fsync <policy>', `when the WAL is fsynced: ${fsyncPolicies.join(' | ')}`, choiceOption(fsyncPolicies), 'batch' as FsyncPolicy)
    .option('--storage <kind>', 'wal (files) or memory (nothing survives a restart)', choiceOption(['wal', 'memory'] as const), 'wal' as const)
    .addOption(
      new Option('--election-ms <min-max>', 'election timeout range in ms, MIN ≥ 10: MAX must be 2×MIN, since each node draws its timeout from [MIN, 2×MIN) (only MIN is a setting of the core)')
        .argParser(electionRangeOption)
        .default([150, 300] as [number, number], '150-300'),
    )
    .option('--heartbeat-ms <ms>', 'leader heartbeat interval in ms', intOption(1, 10_000), 50)
    .option('--seed <n>', 'seed for election timeouts and fault decisions', intOption(0, 2 ** 31), 1)
    .option('--request-timeout-ms <ms>', 'deadline of every HTTP request', intOption(10, 600_000), 5_000)
    .option('--value-bytes-max <n>', 'largest value a PUT accepts', intOption(1, 64 << 20), 1 << 20)
    .option('--snapshot-entries <n>', 'WAL: each node snapshots its state every N applied entries and drops the log behind it (0: never)', intOption(0, 1e12), snapshotSettingsDefault.entries)
    .option('--snapshot-bytes <n>', 'WAL: ...or once the commands applied since the last snapshot reach N bytes (0: no byte trigger)', intOption(0, 1e15), snapshotSettingsDefault.bytes)
    .option('--snapshot-catch-up <n>', 'WAL: log entries every node keeps behind its snapshot, so a follower that lags a little catches up from the log', intOption(0, 1e12), snapshotSettingsDefault.catchUpEntries)
    .option('--inflight-bytes-max <n>', `Raft: command bytes in flight to one follower (default ${defaultRaftSettings.inflightBytesMax})`, intOption(1, 2 ** 40))
    .option('--uncommitted-bytes-max <n>', `Raft: command bytes the leader holds uncommitted before answering 503 busy (default ${defaultRaftSettings.uncommittedBytesMax})`, intOption(1, 2 ** 40))
    .option('--sched <policy>', "Linux scheduling policy of the cluster's threads: batch (a thread woken by another does not preempt it, so a leader finishes its round first: more requests a second on busy cores) or normal (the OS default)", choiceOption(schedPolicies), 'batch' as SchedPolicy)
    .action(async (opts: StartOptions, cmd: Command) => {
      if (opts.protocol === 'multipaxos') {
        const given = raftOnlyFlags.filter((k) => cmd.getOptionValueSource(k) === 'cli');
        if (given.length > 0) throw new UsageError(`${given.map(flagName).join(', ')} ${given.length > 1 ? 'are' : 'is'} Raft-only: a Multi-Paxos cluster has no witnesses, no catch-up margin behind its snapshots and no byte limits; drop ${given.length > 1 ? 'them' : 'it'} or use --protocol raft`);
      }
      if (opts.heartbeatMs >= opts.electionMs[0]) throw new UsageError(`--heartbeat-ms (${opts.heartbeatMs}) must be below the minimum election timeout (${opts.electionMs[0]} ms)`);
      if (opts.dataDir !== undefined && opts.storage === 'memory') throw new UsageError('--data-dir keeps a write-ahead log; it cannot be used with --storage memory');
      for (const [flag, v] of [['--client-ports', opts.clientPorts], ['--resp-client-ports', opts.respClientPorts]] as const) {
        if (v !== undefined && opts.protocol === 'multipaxos') throw new UsageError(`${flag} is served by Raft nodes only; drop it or use --protocol raft`);
      }
      if (opts.respDoor === 'leader') {
        if (opts.respPort === undefined) throw new UsageError('--resp-door leader says who serves --resp-port; give --resp-port too');
        if (opts.protocol === 'multipaxos') throw new UsageError('--resp-door leader is served by Raft nodes only; drop it (the supervisor serves --resp-port) or use --protocol raft');
      }
      const w = opts.witnesses ?? [];
      if (w.some((id) => id > opts.nodes)) throw new UsageError(`--witnesses names node ids from 1 to --nodes (${opts.nodes}), got ${w.join(',')}`);
      if (new Set(w).size >= opts.nodes) throw new UsageError(`--witnesses ${w.join(',')} leaves no full voter among ${opts.nodes} nodes; at least one node must keep the state machine`);
      await runStart(opts, await preflight(opts));
    });
}

/** The nodes' client ports: in range, clear of the other ports, and free now. */
async function checkClientPorts(opts: StartOptions): Promise<void> {
  const ranges: [string, number][] = [];
  if (opts.clientPorts !== undefined) ranges.push(['--client-ports', opts.clientPorts]);
  if (opts.respClientPorts !== undefined) ranges.push(['--resp-client-ports', opts.respClientPorts]);
  for (const [flag, base] of ranges) {
    const last = base + opts.nodes - 1;
    if (last > 65535) throw new UsageError(`${flag} ${base} gives node ${opts.nodes} port ${last}, past 65535; pick a base of at most ${65536 - opts.nodes}`);
    const others: (readonly [string, number | undefined])[] = [['--port', opts.port], ['--resp-port', opts.respPort], ...ranges.filter((r) => r[0] !== flag).flatMap(([f, b]) => Array.from({ length: opts.nodes }, (_, i) => [f, b + i] as const))];
    for (const [other, port] of others) {
      if (port !== undefined && port !== 0 && port >= base && port <= last) throw new UsageError(`${other} ${port} is one of the nodes' ${flag} ports (${base}-${last}); move one of them`);
    }
    for (let p = base; p <= last; p++) await checkListen(opts.host, p, `${flag} (node ${p - base + 1}'s port)`);
  }
}

/** Everything that can be refused before a worker starts; what runStart needs from it. */
async function preflight(opts: StartOptions): Promise<{ token?: string; loopback: boolean; dataDir?: string }> {
  const token = opts.tokenFile === undefined ? undefined : readTokenFile(opts.tokenFile);
  const loopback = isLoopback(await hostAddresses(opts.host));
  if (opts.respPort !== undefined && opts.respPort === opts.port && opts.port !== 0) throw new UsageError(`--port and --resp-port are both ${opts.port}; give the Redis protocol a port of its own`);
  // An address this machine does not have is the first thing to hear about, token or not.
  await checkListen(opts.host, opts.port, '--port');
  if (opts.respPort !== undefined) await checkListen(opts.host, opts.respPort, '--resp-port');
  await checkClientPorts(opts);
  const problem = accessProblem({ host: opts.host, loopback, token: token !== undefined, insecure: opts.insecure === true, respPort: opts.respPort !== undefined ? '--resp-port' : opts.respClientPorts !== undefined ? '--resp-client-ports' : null });
  if (problem !== null) throw new UsageError(problem);
  const dataDir = opts.dataDir === undefined ? undefined : prepareDataDir(opts.dataDir);
  return { ...(token !== undefined ? { token } : {}), loopback, ...(dataDir !== undefined ? { dataDir } : {}) };
}

async function runStart(opts: StartOptions, checked: { token?: string; loopback: boolean; dataDir?: string }): Promise<void> {
  const { Cluster, ClusterStartError, ClusterConfigError } = await import('../../cluster/cluster.ts');
  const { startHttpApi } = await import('../../http/server.ts');
  const { startRespServer, RespConfigError } = await import('../../resp/server.ts');
  const { LeaderPort, LeaderPortError } = await import('../../cluster/leader-port.ts');
  const { DirLockedError } = await import('../../../runtime/storage/dir-lock.ts');
  const err = (s: string) => process.stderr.write(s);
  // Before the workers start: each inherits the policy of the thread that starts it.
  const sched = applySchedPolicy(opts.sched);
  if (sched.warning !== null) err(`concur: warning: ${sched.warning}\n`);
  let cluster: Awaited<ReturnType<typeof Cluster.start>>;
  try {
    cluster = await Cluster.start({
      ...(opts.protocol === 'multipaxos' ? { protocol: opts.protocol } : {}),
      nodes: opts.nodes,
      apps: [...opts.apps, ...(opts.app ?? []).map((p) => resolve(p))],
      ...(opts.witnesses !== undefined ? { witnesses: [...new Set(opts.witnesses)] } : {}),
      dataDir: checked.dataDir ?? null,
      storage: opts.storage,
      fsync: opts.fsync,
      electionMsMin: opts.electionMs[0],
      electionMsMax: opts.electionMs[1],
      heartbeatMs: opts.heartbeatMs,
      seed: opts.seed,
      snapshot: { entries: opts.snapshotEntries, bytes: opts.snapshotBytes, catchUpEntries: opts.snapshotCatchUp, retainEntriesMax: Math.max(snapshotSettingsDefault.retainEntriesMax, opts.snapshotCatchUp) },
      ...(opts.clientPorts !== undefined || opts.respClientPorts !== undefined
        ? {
            clientPorts: {
              ...(opts.clientPorts !== undefined ? { base: opts.clientPorts, api: { host: opts.host, requestDeadlineMs: opts.requestTimeoutMs, valueBytesMax: opts.valueBytesMax, faultApi: opts.faultApi, ...(checked.token !== undefined ? { token: checked.token } : {}) } } : {}),
              ...(opts.respClientPorts !== undefined ? { respBase: opts.respClientPorts, resp: { host: opts.host, requestDeadlineMs: opts.requestTimeoutMs, valueBytesMax: opts.valueBytesMax } } : {}),
            },
          }
        : {}),
      raft: {
        ...(opts.inflightBytesMax !== undefined ? { inflightBytesMax: opts.inflightBytesMax } : {}),
        ...(opts.uncommittedBytesMax !== undefined ? { uncommittedBytesMax: opts.uncommittedBytesMax } : {}),
      },
    });
  } catch (e) {
    // A held data directory, or a node that cannot start from what is on disk: one line, exit code 2.
    if (e instanceof DirLockedError || e instanceof ClusterStartError || e instanceof ClusterConfigError) throw new UsageError(e.message);
    // What the checks before the start cannot foresee (a disk filling up, a file changed meanwhile).
    const fsErr = e as NodeJS.ErrnoException;
    if (typeof fsErr.code === 'string' && typeof fsErr.path === 'string') throw new UsageError(`cannot start the nodes: ${fsErr.code} (${fsErr.syscall ?? 'file system'}) on ${fsErr.path}; check --data-dir`);
    throw e;
  }
  for (const [id, r] of cluster.recoveries) if (r.dropped || r.entries > 0 || r.snapshotIndex > 0) err(`node ${id}: ${r.summary} (${r.ms} ms)\n`);
  for (const w of cluster.warnings) err(`${w}\n`);
  const events = cluster.events().subscribe((e) => {
    if (e.type === 'recovered' && e.dropped) err(`\nnode ${String(e.node)}: ${String(e.summary)}\n`);
    if (e.type === 'warning') err(`\n${String(e.message)}\n`);
    if (e.type === 'crashed' || e.type === 'gave-up') err(`\nnode ${String(e.id)} ${e.type === 'crashed' ? `crashed (${String(e.reason)}${e.error ? `: ${String(e.error)}` : ''})` : `stays down: ${String(e.why)}`}\n`);
  });
  let api: Awaited<ReturnType<typeof startHttpApi>>;
  // token and faultApi are the HTTP API's access settings (apps/http/settings.ts).
  const apiSettings: Parameters<typeof startHttpApi>[1] & { token?: string; faultApi: boolean } = {
    host: opts.host,
    port: opts.port,
    requestDeadlineMs: opts.requestTimeoutMs,
    valueBytesMax: opts.valueBytesMax,
    ...(checked.token !== undefined ? { token: checked.token } : {}),
    faultApi: opts.faultApi,
  };
  try {
    api = await startHttpApi(cluster, apiSettings);
  } catch (e) {
    await cluster.stop();
    const code = (e as NodeJS.ErrnoException).code;
    // Checked before the workers started; something may have taken the port since.
    if (code !== undefined) throw new UsageError(listenRefusal(opts.host, opts.port, '--port', code));
    throw e;
  }
  let resp: { url: string; port: number; close(): Promise<void> } | null = null;
  let respOnLeader = false;
  if (opts.respPort !== undefined) {
    const respSettings = { host: opts.host, port: opts.respPort, requestDeadlineMs: opts.requestTimeoutMs, valueBytesMax: opts.valueBytesMax };
    try {
      if (opts.respDoor === 'leader') {
        // The kv app must run, as for the supervisor's door (the nodes' doors do not check it).
        if (!cluster.apps.some((a) => a.name === 'kv')) throw new RespConfigError(`the Redis protocol serves the kv app, which does not run on this cluster (it runs ${cluster.apps.map((a) => a.name).join(', ')}); start it with --apps kv,...`);
        const lp = await LeaderPort.start(cluster, { resp: respSettings, warn: (line) => err(`\nconcur: warning: ${line}\n`) });
        const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
        resp = { url: `redis://${urlHost}:${lp.portNumber}`, port: lp.portNumber, close: () => lp.stop() };
        respOnLeader = true;
      } else {
        resp = await startRespServer(cluster, respSettings);
      }
    } catch (e) {
      await api.close();
      await cluster.stop();
      if (e instanceof RespConfigError || e instanceof LeaderPortError) throw new UsageError(e.message);
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== undefined) throw new UsageError(listenRefusal(opts.host, opts.respPort, '--resp-port', code));
      throw e;
    }
  }
  const paxos = opts.protocol === 'multipaxos';
  const where = cluster.dataDir ? `${opts.storage === 'wal' ? (paxos ? 'Paxos logs' : 'WAL') : 'storage'} in ${cluster.dataDir}${opts.dataDir === undefined ? ' (temporary)' : ''}` : 'in-memory storage';
  const witnesses = cluster.members().filter((m) => m.role === 'witness').map((m) => m.id);
  const formatBallot = paxos ? (await import('../../../protocols/paxos/index.ts')).formatBallot : String;
  process.stdout.write(`concur: ${cluster.supervisor.ids.length}-node ${paxos ? 'Multi-Paxos' : 'Raft'} cluster${witnesses.length > 0 ? ` (witness${witnesses.length > 1 ? 'es' : ''}: ${witnesses.join(', ')})` : ''}, ${where}, fsync ${opts.fsync}${sched.batch ? ', threads SCHED_BATCH' : ''}\n`);
  // The token itself is never printed: the banner names the file it came from.
  const curl = opts.tokenFile === undefined ? `curl ${api.url}/cluster` : `curl -H "Authorization: Bearer $(cat ${opts.tokenFile})" ${api.url}/cluster`;
  process.stdout.write(`concur: HTTP API on ${api.url}  (try: ${curl})\n`);
  if (checked.token === undefined) process.stdout.write(`concur: dashboard on ${api.url}/  (open it in a browser)\n`);
  if (checked.token !== undefined) process.stdout.write(`concur: every request needs "Authorization: Bearer <the token in ${opts.tokenFile}>" (concur commands: --token-file ${opts.tokenFile}, or ${tokenFileEnv})\n`);
  else if (!checked.loopback) err(`concur: warning: the API on ${opts.host} is open to anyone who can reach it (--insecure)\n`);
  if (!opts.faultApi) process.stdout.write('concur: fault API off (--no-fault-api): crash, restart, pause, resume, partition, isolate, cut, faults and heal answer 403\n');
  if (opts.clientPorts !== undefined) {
    const urls = cluster.status().nodes.map((n) => `${n.id} ${n.clientUrl}`);
    process.stdout.write(`concur: nodes serve HTTP clients too: ${urls.join(', ')}  (try: curl -X PUT --data v ${cluster.clientUrl(1).clientUrl}/kv/k)\n`);
  }
  if (opts.respClientPorts !== undefined) {
    const urls = cluster.status().nodes.map((n) => `${n.id} ${n.respUrl}`);
    process.stdout.write(`concur: nodes speak the Redis protocol too: ${urls.join(', ')}  (try: redis-cli -p ${opts.respClientPorts} set k v)\n`);
  }
  if (resp) process.stdout.write(`concur: Redis protocol on ${resp.url}${respOnLeader ? ", served by the leader's thread (--resp-door leader)" : ''}  (try: redis-cli -p ${resp.port} ping)\n`);
  process.stdout.write(`concur: apps on the log: ${cluster.apps.map((a) => a.name).join(', ')}\n`);

  const tty = process.stderr.isTTY === true;
  let lastLine = '';
  const statusTimer = setInterval(() => {
    const s = cluster.status();
    const up = s.nodes.filter((n) => n.up).length;
    const commit = Math.max(0, ...s.nodes.map((n) => n.commitIndex));
    // A Paxos node's "term" is its ballot (round and node in one number): shown as round.node.
    const line = `leader ${s.leader ?? 'none'}  ${paxos ? `ballot ${formatBallot(s.term)}` : `term ${s.term}`}  commit ${commit}  nodes up ${up}/${s.nodes.length}`;
    if (tty) err(`\r\x1b[2K${line}`);
    else if (line !== lastLine) err(`${line}\n`);
    lastLine = line;
  }, 250);

  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      err(`\nconcur: ${signal}, shutting down\n`);
      clearInterval(statusTimer);
      void (async () => {
        await Promise.all([api.close(), resp?.close()]);
        events.unsubscribe();
        await cluster.stop();
        resolveStop();
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
