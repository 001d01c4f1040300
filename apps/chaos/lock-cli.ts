// `concur chaos --workload lock`: the lock workload's half of the chaos command (the flags are
// parsed in apps/cli/commands/chaos.ts). Exit 1 when mutual exclusion was violated; 3 when the
// cluster did not recover or a node died of an error of its own; 2 for bad usage.
import type { Command } from 'commander';
import { UsageError } from '../cli/options.ts';
import type { ChaosFlags } from '../cli/commands/chaos.ts';

export async function chaosLockCommand(f: ChaosFlags, cmd: Command): Promise<void> {
  const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
  const kvOnly = (['keys', 'read', 'compactEntries'] as const).filter(given);
  if (kvOnly.length > 0) throw new UsageError(`${kvOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} appl${kvOnly.length > 1 ? 'y' : 'ies'} to --workload kv`);
  if (f.snapshotEntries !== undefined && f.storage !== 'wal') throw new UsageError('--snapshot-entries applies to --storage wal only (memory nodes never snapshot)');
  if (f.protocol === 'multipaxos' && f.break === 'read-without-quorum') throw new UsageError('--break read-without-quorum breaks the Raft core; it needs --protocol raft');
  // With memory storage the default fault set leaves out crash; asking for it is an error.
  if (f.storage === 'memory' && !given('faults')) f.faults = f.faults.filter((k) => k !== 'crash');
  const { runLockChaos, lockChaosConfigProblem } = await import('./lock-run.ts');
  const o = {
    ...(f.protocol === 'multipaxos' ? { protocol: f.protocol } : {}),
    nodes: f.nodes,
    durationSec: f.duration,
    clients: f.clients,
    locks: f.locks,
    seed: f.seed,
    faults: f.faults,
    opTimeoutMs: f.opTimeoutMs,
    recoveryMsMax: 20_000,
    storage: f.storage,
    ...(f.snapshotEntries !== undefined ? { snapshotEntries: f.snapshotEntries } : {}),
    ...(f.history ? { historyFile: f.history } : {}),
    ...(f.break === 'grant-while-held' ? { unsafeLock: { grantWhileHeld: true } } : {}),
    ...(f.break === 'read-without-quorum' ? { unsafe: { readWithoutQuorum: true }, raft: { checkQuorum: false } } : {}),
  };
  const problem = lockChaosConfigProblem(o);
  if (problem !== null) throw new UsageError(problem);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`chaos: lock workload, ${f.nodes} ${f.protocol === 'multipaxos' ? 'Multi-Paxos ' : ''}nodes (${f.storage}), ${f.clients} clients on ${f.locks} lock${f.locks > 1 ? 's' : ''}, faults ${f.faults.join(',') || 'none'}, ${f.duration} s, seed ${f.seed}${f.break ? `, BROKEN: ${f.break}` : ''}`);
  const { report: r } = await runLockChaos(o, log);
  log('');
  log(`operations  ${r.ops} (ok ${r.ok}, failed ${r.failed}, unknown ${r.unknown}); ${Object.entries(r.byOp).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  log(`acquires    granted ${r.acquires.granted} at once, ${r.acquires.grantedAfterWait} after waiting; held ${r.acquires.held}; gave up waiting ${r.acquires.gaveUp}`);
  log(`renew       ${r.renews.renewed} renewed, ${r.renews.lost} found the lock gone; release ${r.releases.released} released, ${r.releases.notHolder} not the holder`);
  log(`service     ${r.grants ?? '?'} grants, ${r.expiries ?? '?'} expiries (counted by the state machine); ${r.grantsSeen} grants named in answers`);
  log(`faults      ${r.faults} (${Object.entries(r.faultsByKind).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`);
  log(`leaders     ${r.leaderChanges} elected; recovery after heal ${r.recovered ? `${r.recoveryMs} ms` : 'NOT reached'}`);
  log(`beliefs     ${r.beliefs} owners believed they held a lock, ${(r.believedMs / 1000).toFixed(1)} s in all; at most ${r.maxConcurrentHolders} at once on one lock (margin ${r.marginMs} ms)`);
  log(`closest     ${r.closestGapMs ?? '-'} ms from one owner's window to the next's; ${r.closestExpiryGapMs ?? '-'} ms after a window that ended by its ttl`);
  log(`verdict     ${r.exclusive ? 'mutually exclusive' : `NOT mutually exclusive: ${r.violations} violation${r.violations === 1 ? '' : 's'}`} (${r.facts} log-order facts; checked in ${r.checkMs} ms)`);
  for (const e of r.nodeErrors) log(`NODE ERROR  ${e}`);
  if (r.failure) log(`\n${r.failure}`);
  if (f.history) log(`history     ${f.history}`);
  if (f.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  if (!r.exclusive) process.exitCode = 1;
  else if (!r.recovered || r.nodeErrors.length > 0) process.exitCode = 3;
}
