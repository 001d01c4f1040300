// One `concur chaos --workload lock` run: a live cluster running the lock service, chaos clients
// taking locks (acquire, sometimes waiting in the queue; hold for a while, renewing; release)
// through Cluster.submit and linearizable queries — the paths the HTTP routes use — while the
// nemesis of the KV workload breaks the cluster; then heal, recover, read every lock's final state,
// and judge the history with the mutual-exclusion checker (lock-checker.ts).
import { fileURLToPath } from 'node:url';
import { Cluster, type ClusterProtocol } from '../cluster/cluster.ts';
import { cborDecode, encodeAppCommand, routerErrorOf } from '../platform/envelope.ts';
import { decodeLockResult, encodeLockCommand, type Holder, type LockCommand, type LockResult, type LockState } from '../lock/commands.ts';
import { lockListQuery, lockQueryPrefix, type LockMutations } from '../lock/state-machine.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import type { RaftMutations, RaftSettings } from '../../protocols/raft/index.ts';
import { chaosConfigProblem, definitelyNotApplied, isRecovered, startChaosCluster, waitFor, watchCluster } from './run.ts';
import { checkLockHistory, formatLockViolations, type LockCheckResult } from './lock-checker.ts';
import { LockHistoryRecorder, writeLockHistory, type HolderSeen, type LockHistoryOp, type LockOpHandle } from './lock-history.ts';
import { Nemesis, type FaultKind } from './nemesis.ts';

export interface LockChaosOptions {
  nodes: number;
  protocol?: ClusterProtocol;
  durationSec: number;
  clients: number;
  /** Distinct locks the clients contend for (few: contention is the point). */
  locks: number;
  seed: number;
  faults: readonly FaultKind[];
  /** Per-request deadline; past it the outcome is unknown. */
  opTimeoutMs: number;
  recoveryMsMax: number;
  /** Each acquire's ttl is drawn from [ttlMsMin, ttlMsMax). */
  ttlMsMin?: number;
  ttlMsMax?: number;
  storage?: 'wal' | 'memory';
  snapshotEntries?: number;
  historyFile?: string;
  /** A deliberately broken lock service (tests only): see LockMutations. */
  unsafeLock?: LockMutations;
  /** Deliberate Raft bugs and settings, as for the KV workload (tests only). */
  unsafe?: RaftMutations;
  raft?: Partial<RaftSettings>;
  electionMsMin?: number;
  heartbeatMs?: number;
}

export interface LockChaosReport {
  workload: 'lock';
  seed: number;
  protocol: ClusterProtocol;
  nodes: number;
  durationSec: number;
  clients: number;
  locks: number;
  storage: 'wal' | 'memory';
  /** The broken variant this ran, if any. */
  broken: string | null;
  ops: number;
  ok: number;
  failed: number;
  unknown: number;
  byOp: Record<string, number>;
  /** Acquires answered: granted at once, granted after waiting, held (waitMs 0), gave up waiting. */
  acquires: { granted: number; grantedAfterWait: number; held: number; gaveUp: number };
  renews: { renewed: number; lost: number };
  releases: { released: number; notHolder: number };
  faults: number;
  faultsByKind: Record<string, number>;
  faultLog: string[];
  leaderChanges: number;
  recovered: boolean;
  recoveryMs: number;
  /** The verdict: no two clients held (in the log) or believed they held (in real time) a lock at once. */
  exclusive: boolean;
  violations: number;
  violationsByKind: Record<string, number>;
  /** Grants and expiries the lock service counted (every replica the same); null if it could not be read. */
  grants: number | null;
  expiries: number | null;
  /** Distinct grants the answers named, log-order facts checked, owners with a belief, believed ms in all. */
  grantsSeen: number;
  facts: number;
  beliefs: number;
  believedMs: number;
  maxConcurrentHolders: number;
  /** The least time between one owner's believed window ending and another's starting on one lock; after an expiry (the ttl's slack). */
  closestGapMs: number | null;
  closestExpiryGapMs: number | null;
  marginMs: number;
  checkMs: number;
  nodeErrors: string[];
  failure?: string;
}

export const lockChaosDefaults = { locks: 2, ttlMsMin: 300, ttlMsMax: 1_200 } as const;

/** How often a waiting acquire looks whether it was granted (as the HTTP route does). */
const waitPollMs = 10;
const unsafeLockAppPath = fileURLToPath(new URL('./lock-unsafe-app.ts', import.meta.url));

export function lockChaosConfigProblem(o: Pick<LockChaosOptions, 'storage' | 'faults'> & Partial<LockChaosOptions>): string | null {
  const p = chaosConfigProblem({ ...o, read: 'index' });
  if (p !== null) return p;
  if (o.ttlMsMin !== undefined && o.ttlMsMax !== undefined && !(o.ttlMsMin >= 1 && o.ttlMsMax > o.ttlMsMin)) return 'the ttl range must be 1 ≤ min < max';
  return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runLockChaos(o: LockChaosOptions, log: (line: string) => void = () => {}): Promise<{ report: LockChaosReport; history: LockHistoryOp[]; check: LockCheckResult }> {
  const problem = lockChaosConfigProblem(o);
  if (problem !== null) throw new RangeError(problem);
  const storage = o.storage ?? 'wal';
  const broken = o.unsafeLock?.grantWhileHeld ? 'grant-while-held' : o.unsafe?.readWithoutQuorum ? 'read-without-quorum' : null;
  // The broken lock service is an app module with the lock app's name (lock-unsafe-app.ts):
  // each worker loads it in place of the built-in one.
  const cluster = await startChaosCluster(o, { apps: o.unsafeLock?.grantWhileHeld ? [unsafeLockAppPath] : ['lock'] });
  const recorder = new LockHistoryRecorder();
  const nemesis = new Nemesis(cluster, { faults: o.faults, seed: mixSeed(o.seed, 0x6e656d), faultMsMin: 1_000, faultMsMax: 3_000, calmMsMin: 300, calmMsMax: 1_500 }, log);
  const watch = watchCluster(cluster);
  try {
    await watch.firstLeader();
    const endAt = performance.now() + o.durationSec * 1000;
    const counts = { ok: 0, fail: 0, unknown: 0 };
    const progress = setInterval(() => {
      const left = Math.max(0, (endAt - performance.now()) / 1000);
      log(`chaos: ${left.toFixed(0)} s left  lock ops ok ${counts.ok} failed ${counts.fail} unknown ${counts.unknown}  faults ${nemesis.injected.length}  leader ${cluster.leader() ?? 'none'}`);
    }, 1_000);
    nemesis.start();
    await Promise.all(Array.from({ length: o.clients }, (_, c) => runLockClient(cluster, recorder, o, c, () => performance.now() < endAt, counts)));
    clearInterval(progress);
    await nemesis.stop();
    log('chaos: healed; waiting for the cluster to recover');
    const recoveryStarted = performance.now();
    const recovered = await waitFor(() => isRecovered(cluster), o.recoveryMsMax);
    const recoveryMs = Math.round(performance.now() - recoveryStarted);
    let grants: number | null = null;
    let expiries: number | null = null;
    if (recovered) {
      // Every lock's state once more (more facts for the log-order check), and the service's counters.
      for (let l = 0; l < o.locks; l++) await queryOnce(cluster, recorder, o, 'final', `final.l${l}`, `l${l}`);
      try {
        const r = await cluster.read(lockListQuery, 'index', 5_000, { app: 'lock' });
        if (r.value !== null) ({ grants, expiries } = cborDecode(r.value) as { grants: number; expiries: number });
      } catch {
        // The counters are for the report only.
      }
    }
    const history = recorder.ops();
    log(`chaos: checking ${history.length} lock operations for mutual exclusion`);
    const checkStarted = performance.now();
    const check = checkLockHistory(history);
    const checkMs = Math.round(performance.now() - checkStarted);
    if (o.historyFile) await writeLockHistory(o.historyFile, history);
    const byOp: Record<string, number> = {};
    for (const h of history) byOp[h.op] = (byOp[h.op] ?? 0) + 1;
    const answered = (op: string, r: string, waited?: boolean) =>
      history.filter((h) => h.op === op && h.status === 'ok' && h.result?.r === r && (waited === undefined || (h.result as { waited?: boolean }).waited === waited)).length;
    const failure = formatLockViolations(check);
    const report: LockChaosReport = {
      workload: 'lock',
      seed: o.seed,
      protocol: o.protocol ?? 'raft',
      nodes: o.nodes,
      durationSec: o.durationSec,
      clients: o.clients,
      locks: o.locks,
      storage,
      broken,
      ops: history.length,
      ok: history.filter((h) => h.status === 'ok').length,
      failed: history.filter((h) => h.status === 'fail').length,
      unknown: history.filter((h) => h.status === 'unknown').length,
      byOp,
      acquires: { granted: answered('acquire', 'granted', false), grantedAfterWait: answered('acquire', 'granted', true), held: answered('acquire', 'held'), gaveUp: answered('acquire', 'gave-up') },
      renews: { renewed: answered('renew', 'renewed'), lost: answered('renew', 'not-holder') },
      releases: { released: answered('release', 'released'), notHolder: answered('release', 'not-holder') },
      faults: nemesis.injected.length,
      faultsByKind: nemesis.counts(),
      faultLog: nemesis.injected.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.what}`),
      leaderChanges: watch.leaderChanges,
      recovered,
      recoveryMs,
      exclusive: check.exclusive,
      violations: check.violationsTotal,
      violationsByKind: check.violationsByKind as Record<string, number>,
      grants,
      expiries,
      grantsSeen: check.grantsSeen,
      facts: check.facts,
      beliefs: check.beliefs,
      believedMs: check.believedMs,
      maxConcurrentHolders: check.maxConcurrentHolders,
      closestGapMs: check.closestGapMs,
      closestExpiryGapMs: check.closestExpiryGapMs,
      marginMs: check.marginMs,
      checkMs,
      nodeErrors: watch.nodeErrors,
      ...(failure !== '' ? { failure } : {}),
    };
    return { report, history, check };
  } finally {
    watch.stop();
    await nemesis.stop().catch(() => {});
    await cluster.stop();
  }
}

const seen = (h: Holder | null): HolderSeen | null => (h === null ? null : { client: h.client, token: h.token });

/** One linearizable query of a lock's state, recorded; null when it did not answer. */
async function queryOnce(cluster: Cluster, recorder: LockHistoryRecorder, o: LockChaosOptions, client: number | string, owner: string, lock: string, via?: number): Promise<LockState | null> {
  const q = recorder.invoke(client, owner, 'query', lock);
  try {
    const r = await cluster.read(lockQueryPrefix + lock, 'index', o.opTimeoutMs, { app: 'lock', ...(via !== undefined ? { via } : {}) });
    if (r.value === null) throw new Error('the lock service answered no state (does this cluster run the lock app?)');
    const s = cborDecode(r.value) as LockState;
    // The state read is the state after the applied index the node served it at.
    q.ok({ r: 'state', holder: seen(s.holder) }, r.applied);
    return s;
  } catch {
    // A query changes nothing: one that did not answer constrains nothing.
    q.fail();
    return null;
  }
}

async function runLockClient(
  cluster: Cluster,
  recorder: LockHistoryRecorder,
  o: LockChaosOptions,
  client: number,
  keepGoing: () => boolean,
  counts: { ok: number; fail: number; unknown: number },
): Promise<void> {
  const rng = createRng(mixSeed(o.seed, client, 0x6c6f636b));
  const session = `chaos-lock-${o.seed}-${client}`;
  const ttlMin = o.ttlMsMin ?? lockChaosDefaults.ttlMsMin;
  const ttlMax = o.ttlMsMax ?? lockChaosDefaults.ttlMsMax;
  let seq = 0;
  let n = 0;
  // As the KV clients: one node per client, the next one after a failure.
  let via = (client % o.nodes) + 1;
  const moveOn = () => {
    const ids = cluster.supervisor.ids;
    via = ids.find((id) => id > via) ?? ids[0] ?? via;
  };
  /** Submits one lock command through the log; settles `h` as fail/unknown itself when it did not answer. */
  const submit = async (h: LockOpHandle, c: LockCommand): Promise<{ r: LockResult; index: number } | null> => {
    try {
      const res = await cluster.submit(encodeAppCommand('lock', session, ++seq, encodeLockCommand(c)), o.opTimeoutMs, { via });
      const routerError = routerErrorOf(res.result);
      if (routerError !== null) {
        // Refused by the router before the lock app saw it (no such app, an old retry).
        h.ok({ r: 'invalid', message: `${routerError.error}: ${routerError.message}` }, res.index);
        counts.ok++;
        return null;
      }
      counts.ok++;
      return { r: decodeLockResult(res.result), index: res.index };
    } catch (err) {
      moveOn();
      if (definitelyNotApplied(err)) {
        h.fail();
        counts.fail++;
      } else {
        h.unknown();
        counts.unknown++;
      }
      return null;
    }
  };

  while (keepGoing()) {
    const lock = `l${rng.int(0, o.locks)}`;
    const owner = `c${client}.${++n}`;
    const ttlMs = rng.int(ttlMin, ttlMax);
    const waitMs = rng.chance(0.3) ? 0 : rng.int(200, 2_000);
    const h = recorder.invoke(client, owner, 'acquire', lock, { ttlMs, waitMs });
    const invokedAt = performance.now();
    const res = await submit(h, { op: 'acquire', lock, client: owner, ttlMs, waitMs });
    let token: number | null = null;
    if (res !== null) {
      const r = res.r;
      if (r.r === 'granted') {
        h.ok({ r: 'granted', token: r.token, waited: false }, res.index);
        token = r.token;
      } else if (r.r === 'held') {
        h.ok({ r: 'held', holder: seen(r.holder) }, res.index);
      } else if (r.r === 'queued') {
        // Queued in the log: watch the lock until this owner holds it, is dropped from the
        // waiters (its deadline passed), or the client's own deadline passes.
        const deadline = invokedAt + waitMs + o.opTimeoutMs;
        let last: HolderSeen | null = seen(r.holder);
        for (;;) {
          const s = await queryOnce(cluster, recorder, o, client, owner, lock, via);
          if (s === null) moveOn();
          else {
            last = seen(s.holder);
            if (s.holder?.client === owner) {
              h.ok({ r: 'granted', token: s.holder.token, waited: true }, res.index);
              token = s.holder.token;
              break;
            }
            if (!s.waiters.some((w) => w.client === owner)) {
              h.ok({ r: 'gave-up', holder: last }, res.index);
              break;
            }
          }
          if (performance.now() > deadline) {
            h.ok({ r: 'gave-up', holder: last }, res.index);
            break;
          }
          await sleep(waitPollMs);
        }
      } else {
        h.ok({ r: 'invalid', message: r.r === 'invalid' ? r.message : `acquire answered ${r.r}` }, res.index);
      }
    }
    if (token !== null) {
      // Mostly a short hold; else a long one, often past the ttl, so renewals matter. Renew every third of the ttl.
      const holdMs = rng.chance(0.6) ? rng.int(0, Math.round(ttlMs / 4)) : rng.int(Math.round(ttlMs / 2), Math.round(ttlMs * 1.8));
      const holdUntil = performance.now() + holdMs;
      let lastSend = invokedAt;
      let lost = false;
      for (;;) {
        const now = performance.now();
        if (now >= holdUntil) break;
        const next = Math.min(holdUntil, lastSend + ttlMs / 3);
        if (next > now) await sleep(next - now);
        if (performance.now() >= holdUntil) break;
        const rh = recorder.invoke(client, owner, 'renew', lock, { token });
        lastSend = performance.now();
        const rr = await submit(rh, { op: 'renew', lock, client: owner, token });
        if (rr === null) break; // unknown or failed: stop using it, release it
        if (rr.r.r === 'renewed') rh.ok({ r: 'renewed', token: rr.r.token }, rr.index);
        else if (rr.r.r === 'not-holder') {
          rh.ok({ r: 'not-holder', holder: seen(rr.r.holder) }, rr.index);
          lost = true;
          break;
        } else {
          rh.ok({ r: 'invalid', message: rr.r.r === 'invalid' ? rr.r.message : `renew answered ${rr.r.r}` }, rr.index);
          break;
        }
      }
      if (!lost) {
        const rel = recorder.invoke(client, owner, 'release', lock, { token });
        const rr = await submit(rel, { op: 'release', lock, client: owner, token });
        if (rr !== null) {
          if (rr.r.r === 'released') rel.ok({ r: 'released' }, rr.index);
          else if (rr.r.r === 'not-holder') rel.ok({ r: 'not-holder', holder: seen(rr.r.holder) }, rr.index);
          else rel.ok({ r: 'invalid', message: rr.r.r === 'invalid' ? rr.r.message : `release answered ${rr.r.r}` }, rr.index);
        }
      }
    }
    await sleep(rng.int(0, 20));
  }
}
