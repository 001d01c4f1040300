// One `concur chaos` run: a live cluster on workers, concurrent clients doing random KV
// operations and recording a history, a nemesis injecting faults; then heal, wait for recovery,
// and judge the history with the linearizability checker. Never reports a verdict it did not check.
import { Cluster, type ClusterOptions, type ClusterProtocol } from '../cluster/cluster.ts';
import { BackendError, type ReadMode } from '../http/backend.ts';
import { decodeResult, encodeCommand, textBytes, type KvCommand } from '../kv/commands.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import type { RaftMutations, RaftSettings } from '../../protocols/raft/index.ts';
import { checkHistory, formatFailure, type CheckResult } from './checker.ts';
import { HistoryRecorder, writeHistory, type HistoryOp } from './history.ts';
import { Nemesis, type FaultKind } from './nemesis.ts';
import { freePortBase } from '../cluster/free-ports.ts';

export interface ChaosOptions {
  nodes: number;
  /** The consensus protocol the cluster runs (default raft). */
  protocol?: ClusterProtocol;
  durationSec: number;
  clients: number;
  keys: number;
  seed: number;
  read: ReadMode;
  faults: readonly FaultKind[];
  historyFile?: string;
  /** Per-operation deadline; past it the outcome is unknown. */
  opTimeoutMs: number;
  /** Deliberate bugs (tests only): shows the checker catches what they break. */
  unsafe?: RaftMutations;
  /** Raft settings for every node (e.g. checkQuorum off for a broken variant). */
  raft?: Partial<RaftSettings>;
  /** How long the healed cluster gets to elect a leader and catch up before the check. */
  recoveryMsMax: number;
  electionMsMin?: number;
  heartbeatMs?: number;
  /** `memory` cannot be combined with crash faults (a memory node cannot restart). Default wal. */
  storage?: 'wal' | 'memory';
  /** Memory storage: compaction step in entries (ClusterOptions.compactEntries). */
  compactEntries?: number;
  /** WAL storage: nodes snapshot every this many applied entries (small values: many snapshots and InstallSnapshots per run). */
  snapshotEntries?: number;
  /** Clients speak HTTP to their node's own client port (ClusterOptions.clientPorts) instead of the supervisor's pipeline. Raft only. */
  doors?: boolean;
}

export interface ChaosReport {
  seed: number;
  protocol: ClusterProtocol;
  nodes: number;
  read: ReadMode;
  durationSec: number;
  ops: number;
  ok: number;
  failed: number;
  unknown: number;
  byOp: Record<string, number>;
  faults: number;
  faultsByKind: Record<string, number>;
  faultLog: string[];
  leaderChanges: number;
  recovered: boolean;
  recoveryMs: number;
  linearizable: boolean | 'unknown';
  checkMs: number;
  storage: 'wal' | 'memory';
  /** Nodes that died of an error of their own (not an injected crash): always a bug. */
  nodeErrors: string[];
  /** Per node at the end, the last index dropped from its in-memory log (0: none). */
  compactedThrough: number[];
  /** The node each compactedThrough entry is of: the nodes at the end (membership faults change them). */
  nodeIds: number[];
  /** WAL storage: snapshots taken, and installed from another node, over all nodes. */
  snapshotsTaken: number;
  snapshotsInstalled: number;
  failure?: string;
}

/** Why a chaos configuration cannot run, for the CLI to print. */
export function chaosConfigProblem(o: Pick<ChaosOptions, 'storage' | 'faults'> & Partial<Pick<ChaosOptions, 'protocol' | 'read' | 'snapshotEntries' | 'unsafe' | 'raft' | 'doors'>>): string | null {
  if (o.storage === 'memory' && o.faults.includes('crash')) {
    return 'crash faults need --storage wal: a node with memory storage cannot restart (it would come back without its log); drop crash from --faults or use wal';
  }
  if (o.protocol === 'multipaxos') {
    if (o.doors) return 'client ports (--doors) are served by Raft nodes only; drop --doors or use --protocol raft';
    if (o.faults.includes('membership')) return 'membership faults need --protocol raft: a Multi-Paxos cluster keeps the nodes it started with; drop membership from --faults';
    if (o.read === 'lease') return 'read=lease is not available on multipaxos (its leader holds no lease); use --read index, follower, log or stale';
    if (o.unsafe !== undefined || o.raft !== undefined) return 'Raft settings and mutations (--break) need --protocol raft';
  }
  return null;
}

const textDecoder = new TextDecoder();

/** A chaos run's cluster: the run's protocol, storage, seed and timing, and `extra` options. */
export function startChaosCluster(o: Pick<ChaosOptions, 'nodes' | 'protocol' | 'storage' | 'snapshotEntries' | 'seed' | 'electionMsMin' | 'heartbeatMs' | 'unsafe' | 'raft'>, extra: Partial<ClusterOptions> = {}): Promise<Cluster> {
  return Cluster.start({
    nodes: o.nodes,
    ...(o.protocol !== undefined ? { protocol: o.protocol } : {}),
    storage: o.storage ?? 'wal',
    // A small interval with a margin to match, so a follower back from a crash or a partition
    // is as likely to catch up by InstallSnapshot as from the log.
    ...(o.snapshotEntries !== undefined ? { snapshot: { entries: o.snapshotEntries, catchUpEntries: Math.ceil(o.snapshotEntries / 2), retainEntriesMax: 4 * o.snapshotEntries } } : {}),
    fsync: 'batch',
    seed: o.seed,
    metricsIntervalMs: 0,
    ...(o.electionMsMin ? { electionMsMin: o.electionMsMin, electionMsMax: o.electionMsMin * 2 } : {}),
    ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.unsafe ? { unsafe: o.unsafe } : {}),
    ...(o.raft ? { raft: o.raft } : {}),
    ...extra,
  });
}

/** What a chaos run counts from the cluster's events: leader changes, nodes dying of their own errors, snapshots. */
export function watchCluster(cluster: Cluster): { leaderChanges: number; nodeErrors: string[]; snapshotsTaken: number; snapshotsInstalled: number; firstLeader(): Promise<void>; stop(): void } {
  let lastLeaderTerm = 0;
  const w = {
    leaderChanges: 0,
    nodeErrors: [] as string[],
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    /** Waits for a leader; the first may have been elected before the subscription saw it. */
    async firstLeader(): Promise<void> {
      await waitFor(() => cluster.leader() !== null, 10_000);
      if (lastLeaderTerm === 0 && cluster.leader() !== null) {
        lastLeaderTerm = cluster.status().term;
        w.leaderChanges = 1;
      }
    },
    stop: () => sub.unsubscribe(),
  };
  const sub = cluster.events().subscribe((e) => {
    if (e.type === 'crashed' && e.reason === 'error') w.nodeErrors.push(`node ${String(e.id)}: ${String(e.error)}`);
    if (e.type === 'snapshot') w.snapshotsTaken++;
    if (e.type === 'snapshot-installed') w.snapshotsInstalled++;
    if (e.type === 'role' && e.role === 'leader' && Number(e.term) > lastLeaderTerm) {
      lastLeaderTerm = Number(e.term);
      w.leaderChanges++;
    }
  });
  return w;
}

/** Runs the whole experiment; `log` gets progress lines. */
export async function runChaos(o: ChaosOptions, log: (line: string) => void = () => {}): Promise<{ report: ChaosReport; history: HistoryOp[]; check: CheckResult }> {
  const problem = chaosConfigProblem(o);
  if (problem !== null) throw new RangeError(problem);
  const storage = o.storage ?? 'wal';
  // Room for the members membership faults add (each takes the next id, and its port).
  const doors = o.doors ? { clientPorts: { base: await freePortBase(o.nodes + doorIdsSpare), api: { requestDeadlineMs: o.opTimeoutMs } } } : {};
  const cluster = await startChaosCluster(o, { ...(o.compactEntries !== undefined ? { compactEntries: o.compactEntries } : {}), ...doors });
  const recorder = new HistoryRecorder();
  const nemesis = new Nemesis(cluster, { faults: o.faults, seed: mixSeed(o.seed, 0x6e656d), faultMsMin: 1_000, faultMsMax: 3_000, calmMsMin: 300, calmMsMax: 1_500 }, log);
  const watch = watchCluster(cluster);
  try {
    await watch.firstLeader();
    const endAt = performance.now() + o.durationSec * 1000;
    let running = true;
    const counts = { ok: 0, fail: 0, unknown: 0 };
    const progress = setInterval(() => {
      const left = Math.max(0, (endAt - performance.now()) / 1000);
      log(`chaos: ${left.toFixed(0)} s left  ops ok ${counts.ok} failed ${counts.fail} unknown ${counts.unknown}  faults ${nemesis.injected.length}  leader ${cluster.leader() ?? 'none'}`);
    }, 1_000);
    nemesis.start();
    const clients = Array.from({ length: o.clients }, (_, c) => runClient(cluster, recorder, o, c, () => running && performance.now() < endAt, counts));
    await Promise.all(clients);
    running = false;
    clearInterval(progress);
    await nemesis.stop();
    log('chaos: healed; waiting for the cluster to recover');
    const recoveryStarted = performance.now();
    const recovered = await waitFor(() => isRecovered(cluster), o.recoveryMsMax);
    const recoveryMs = Math.round(performance.now() - recoveryStarted);
    // A final linearizable read of every key, after recovery: it must see every write that took effect.
    if (recovered) {
      for (let k = 0; k < o.keys; k++) await readOnce(cluster, recorder, o, 'final', `k${k}`);
    }
    const nodeIds = [...cluster.supervisor.ids];
    const compactedThrough = await Promise.all(
      nodeIds.map((id) =>
        cluster.supervisor.isUp(id) ? cluster.supervisor.call<{ firstIndex: number }>(id, 'status').then((st) => st.firstIndex - 1, () => 0) : 0,
      ),
    );
    const history = recorder.ops();
    log(`chaos: checking ${history.length} operations for linearizability`);
    const checkStarted = performance.now();
    const check = await checkHistory(history, { threads: 2 });
    const checkMs = Math.round(performance.now() - checkStarted);
    if (o.historyFile) await writeHistory(o.historyFile, history);
    const byOp: Record<string, number> = {};
    for (const h of history) byOp[h.op] = (byOp[h.op] ?? 0) + 1;
    const report: ChaosReport = {
      seed: o.seed,
      protocol: o.protocol ?? 'raft',
      nodes: o.nodes,
      read: o.read,
      durationSec: o.durationSec,
      ops: history.length,
      ok: history.filter((h) => h.status === 'ok').length,
      failed: history.filter((h) => h.status === 'fail').length,
      unknown: history.filter((h) => h.status === 'unknown').length,
      byOp,
      faults: nemesis.injected.length,
      faultsByKind: nemesis.counts(),
      faultLog: nemesis.injected.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.what}`),
      leaderChanges: watch.leaderChanges,
      recovered,
      recoveryMs,
      linearizable: check.linearizable,
      checkMs,
      storage,
      nodeErrors: watch.nodeErrors,
      compactedThrough,
      nodeIds,
      snapshotsTaken: watch.snapshotsTaken,
      snapshotsInstalled: watch.snapshotsInstalled,
      ...(check.failure ? { failure: formatFailure(check.failure) } : {}),
    };
    return { report, history, check };
  } finally {
    watch.stop();
    await nemesis.stop().catch(() => {});
    await cluster.stop();
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

/** A leader, every node up, and every node's commit index equal to the leader's. */
export function isRecovered(c: Cluster): boolean {
  const s = c.status();
  if (s.leader === null || s.nodes.some((n) => !n.up)) return false;
  const lead = s.nodes.find((n) => n.id === s.leader)!;
  return s.nodes.every((n) => n.commitIndex === lead.commitIndex && n.term === lead.term);
}

/** Errors that prove the request was refused before any node could have applied it. */
export function definitelyNotApplied(err: unknown): boolean {
  return err instanceof BackendError && err.definitelyNotApplied;
}

/** One read, recorded; returns how it ended. */
async function readOnce(cluster: Cluster, recorder: HistoryRecorder, o: ChaosOptions, client: string | number, key: string, seq?: () => number, via?: number): Promise<'ok' | 'fail'> {
  const h = recorder.invoke(client, 'get', key);
  const opts = via === undefined ? {} : { via };
  try {
    if (o.doors) {
      const r = await doorRequest(cluster, via ?? cluster.leader() ?? 1, 'GET', `/kv/${key}?read=${o.read}`, o);
      if (r.status === 200) h.ok(r.text);
      else if (r.status === 404 && r.code === 'key-not-found') h.ok(null);
      else {
        h.fail();
        return 'fail';
      }
    } else if (o.read === 'log') {
      const r = await cluster.submit(encodeCommand({ op: 'get', key, clientId: `chaos-${o.seed}-${client}`, seq: seq ? seq() : 1 }), o.opTimeoutMs, opts);
      const res = decodeResult(r.result);
      if (res.type === 'value') h.ok(textDecoder.decode(res.value));
      else if (res.type === 'not-found') h.ok(null);
      else {
        h.fail();
        return 'fail';
      }
    } else {
      const r = await cluster.read(key, o.read, o.opTimeoutMs, opts);
      h.ok(r.value === null ? null : textDecoder.decode(r.value));
    }
    return 'ok';
  } catch {
    // A read that did not answer changed nothing: it constrains nothing.
    h.fail();
    return 'fail';
  }
}

async function runClient(
  cluster: Cluster,
  recorder: HistoryRecorder,
  o: ChaosOptions,
  client: number,
  keepGoing: () => boolean,
  counts: { ok: number; fail: number; unknown: number },
): Promise<void> {
  const rng = createRng(mixSeed(o.seed, client, 0x636c));
  const clientId = `chaos-${o.seed}-${client}`;
  let seq = 0;
  let n = 0;
  // Each client talks to one node, as a real client holds one connection, and moves to the next
  // node when a request fails. So clients on a minority side meet a deposed leader, as they would.
  // The node list is read afresh: membership faults add and remove nodes as the run goes.
  let via = (client % o.nodes) + 1;
  const moveOn = () => {
    const ids = cluster.supervisor.ids;
    via = ids.find((id) => id > via) ?? ids[0] ?? via;
  };
  while (keepGoing()) {
    const key = `k${rng.int(0, o.keys)}`;
    const roll = rng.next();
    if (roll < 0.5) {
      const status = await readOnce(cluster, recorder, o, client, key, () => ++seq, via);
      counts[status]++;
      if (status === 'fail') moveOn();
      continue;
    }
    const value = `c${client}-${++n}`;
    let cmd: KvCommand;
    let h: { ok(r: never): void; fail(): void; unknown(): void };
    if (roll < 0.8) {
      cmd = { op: 'put', key, value: textBytes(value), clientId, seq: ++seq };
      h = recorder.invoke(client, 'put', key, { value }) as never;
    } else if (roll < 0.95) {
      // Expect what this key most likely holds: some earlier value of any client, or absent.
      const expect = rng.chance(0.3) ? null : `c${rng.int(0, o.clients)}-${Math.max(1, n - rng.int(0, 3))}`;
      cmd = { op: 'cas', key, expect: expect === null ? null : textBytes(expect), value: textBytes(value), clientId, seq: ++seq };
      h = recorder.invoke(client, 'cas', key, { value, expect }) as never;
    } else {
      cmd = { op: 'delete', key, clientId, seq: ++seq };
      h = recorder.invoke(client, 'delete', key) as never;
    }
    if (o.doors) {
      const outcome = await doorWrite(cluster, via, cmd, o);
      if (outcome === 'unknown') {
        h.unknown();
        counts.unknown++;
        moveOn();
      } else {
        h.ok((cmd.op === 'cas' ? outcome === 'written' : null) as never);
        counts.ok++;
      }
      continue;
    }
    try {
      const r = await cluster.submit(encodeCommand(cmd), o.opTimeoutMs, { via });
      const res = decodeResult(r.result);
      if (cmd.op === 'cas') {
        if (res.type === 'written') h.ok(true as never);
        else if (res.type === 'cas-failed') h.ok(false as never);
        else h.unknown();
      } else if (res.type === 'written' || res.type === 'deleted') h.ok(null as never);
      else h.unknown();
      counts[res.type === 'error' ? 'unknown' : 'ok']++;
    } catch (err) {
      moveOn();
      if (definitelyNotApplied(err)) {
        h.fail();
        counts.fail++;
      } else {
        h.unknown();
        counts.unknown++;
      }
    }
  }
}

/** Node ids past the first nodes whose client ports a door run keeps free for members added by membership faults. */
const doorIdsSpare = 64;

/** One request to node `via`'s client port; a request that got no answer is status 0. */
async function doorRequest(cluster: Cluster, via: number, method: string, path: string, o: ChaosOptions, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; code: string | null }> {
  const url = cluster.clientUrl(via).clientUrl;
  if (url === undefined) return { status: 0, text: '', code: null };
  try {
    // The port answers by its deadline (opTimeoutMs); the margin covers a node that died mid-request.
    const r = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(o.opTimeoutMs + 2_000) });
    const text = await r.text();
    let code: string | null = null;
    if (r.headers.get('content-type')?.startsWith('application/json')) {
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? null;
      } catch {
        // a value that happens to be JSON-typed: no code
      }
    }
    return { status: r.status, text, code };
  } catch {
    return { status: 0, text: '', code: null };
  }
}

/**
 * A put, cas or delete through node `via`'s client port, under the client's own identity (so a
 * retry inside the node's pipeline applies once). Anything but a definite answer is unknown: the
 * HTTP API does not say whether a failed write certainly did not apply.
 */
async function doorWrite(cluster: Cluster, via: number, cmd: KvCommand, o: ChaosOptions): Promise<'written' | 'cas-failed' | 'deleted' | 'unknown'> {
  const c = cmd as KvCommand & { clientId: string; seq: number; key: string };
  const identity = { 'x-client-id': c.clientId, 'x-request-seq': String(c.seq) };
  if (cmd.op === 'put') {
    const r = await doorRequest(cluster, via, 'PUT', `/kv/${cmd.key}`, o, textDecoder.decode(cmd.value), identity);
    return r.status === 200 ? 'written' : 'unknown';
  }
  if (cmd.op === 'delete') {
    const r = await doorRequest(cluster, via, 'DELETE', `/kv/${cmd.key}`, o, undefined, identity);
    return r.status === 200 ? 'deleted' : 'unknown';
  }
  if (cmd.op === 'cas') {
    const body = JSON.stringify({ expect: cmd.expect === null ? null : textDecoder.decode(cmd.expect), value: textDecoder.decode(cmd.value) });
    const r = await doorRequest(cluster, via, 'POST', `/kv/${cmd.key}/cas`, o, body, { ...identity, 'content-type': 'application/json' });
    if (r.status === 200) return 'written';
    return r.status === 409 && r.code === 'cas-failed' ? 'cas-failed' : 'unknown';
  }
  throw new Error(`chaos clients do not send ${cmd.op} through client ports`);
}
