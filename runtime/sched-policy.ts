// The Linux scheduling policy of a process's threads (`concur start --sched`).
//
// concur's threads hand work to each other all the time: the main thread's door wakes the leader,
// the leader wakes its followers and then the door, each with an Atomics.notify. Under the default
// policy (SCHED_OTHER) a woken thread that slept a while usually preempts the thread that woke it,
// when the cores are busy: a leader is switched out between waking one follower and the next, or
// before it has written its round's results, and each switch costs both threads. Under SCHED_BATCH
// the kernel does not let a woken thread preempt a running one (its wake-up preemption skips batch
// tasks), so the waker finishes its turn first; a thread's share of the CPU is unchanged. Measured
// on `redis-benchmark -c 50` against `concur start --nodes 3 --storage memory --resp-port`, four
// alternated pairs: up to 19 % less CPU a request and up to 18 % more SETs a second without
// pipelining (one pair even), 17–30 % more GETs (README, `concur start`).
//
// Node has no call for sched_setscheduler; util-linux's `chrt` (in every Debian) makes it. A
// thread started later inherits the policy of the thread that starts it, so setting the process
// before its workers start covers them, and a worker restarted later too.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const schedPolicies = ['batch', 'normal'] as const;
export type SchedPolicy = (typeof schedPolicies)[number];

/** Linux's numbers for the policies, as /proc shows them (sched.h). */
const policyNames: Record<number, string> = { 0: 'other', 1: 'fifo', 2: 'rr', 3: 'batch', 5: 'idle', 6: 'deadline' };

/**
 * Gives every thread of process `pid` `policy` ('normal' is SCHED_OTHER, the default). Returns
 * null when done, else why it could not be (the process runs on under the policy it had).
 */
export function setSchedPolicy(policy: SchedPolicy, pid = process.pid): string | null {
  if (process.platform !== 'linux') return `scheduling policies are set on Linux only (this is ${process.platform})`;
  try {
    execFileSync('chrt', ['--all-tasks', policy === 'batch' ? '--batch' : '--other', '--pid', '0', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') return 'chrt is not installed (it is in util-linux)';
    const said = err.stderr?.toString().trim();
    return `chrt failed: ${said !== undefined && said !== '' ? said : err.message}`;
  }
}

/**
 * `--sched` for this process, before its workers start (`concur start`, `concur bench`): whether
 * its threads now run SCHED_BATCH, and what to tell the user when batch was asked for and could
 * not be had (the process runs on under the default).
 */
export function applySchedPolicy(policy: SchedPolicy): { batch: boolean; warning: string | null } {
  const why = setSchedPolicy(policy);
  if (why === null) return { batch: policy === 'batch', warning: null };
  return { batch: false, warning: policy === 'batch' ? `the threads keep the default scheduling policy (--sched batch: ${why}); --sched normal runs without it` : null };
}

/** The policy of each thread of process `pid` now ('other', 'batch', ...), by thread id, from /proc. */
export function threadPolicies(pid = process.pid): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // Field 41 is the policy; the fields are counted after the command name's closing parenthesis
    // (the name may hold spaces), which ends field 2.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const n = Number(fields[41 - 3]);
    out.set(Number(tid), policyNames[n] ?? `policy ${n}`);
  }
  return out;
}
