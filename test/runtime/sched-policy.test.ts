// The threads' scheduling policy (runtime/sched-policy.ts, `concur start --sched`): set on every
// thread of a real process, inherited by workers started after it, read back from /proc, and a
// failure named rather than thrown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { applySchedPolicy, setSchedPolicy, threadPolicies } from '../../runtime/sched-policy.ts';
import { runCli, startCli, waitForLeader } from '../support/cli-process.ts';

/** A Node process that starts a worker thread when told to (a line on stdin) and says so. */
function childWithLateWorker(): ChildProcess {
  const script = `
    const { Worker } = require('node:worker_threads');
    process.stdin.once('data', () => {
      new Worker('setInterval(() => {}, 1000)', { eval: true }).on('online', () => console.log('worker online'));
    });
    console.log('ready');`;
  return spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
}

/** Waits for `text` on the child's stdout; fails if the child exits first or 10 s pass. */
function line(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      out += String(d);
      if (out.includes(text)) done();
    };
    const onExit = (code: number | null) => done(new Error(`the child exited (${String(code)}) before printing "${text}"; it printed: ${out}`));
    const timer = setTimeout(() => done(new Error(`no "${text}" from the child within 10 s; it printed: ${out}`)), 10_000);
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
}

function policiesOf(pid: number): string[] {
  return [...threadPolicies(pid).values()];
}

test('batch reaches every thread of the process, and the threads of a worker started after it; normal undoes it', async () => {
  const child = childWithLateWorker();
  try {
    await line(child, 'ready');
    const pid = child.pid!;
    assert.ok(policiesOf(pid).every((p) => p === 'other'), `a new process runs SCHED_OTHER: ${policiesOf(pid).join(', ')}`);
    assert.is(setSchedPolicy('batch', pid), null);
    const before = policiesOf(pid);
    assert.ok(before.length > 1 && before.every((p) => p === 'batch'), `every thread batch: ${before.join(', ')}`);
    child.stdin!.write('go\n');
    await line(child, 'worker online');
    const after = policiesOf(pid);
    assert.ok(after.length > before.length, `the worker added threads (${before.length} → ${after.length})`);
    assert.ok(after.every((p) => p === 'batch'), `the worker's threads inherited batch: ${after.join(', ')}`);
    assert.is(setSchedPolicy('normal', pid), null);
    assert.ok(policiesOf(pid).every((p) => p === 'other'), `normal gives SCHED_OTHER back: ${policiesOf(pid).join(', ')}`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a process that is not there: the reason is returned, nothing thrown', () => {
  const why = setSchedPolicy('batch', 2 ** 22 + 12345); // above Linux's largest pid
  assert.ok(why !== null);
  assert.match(why!, /^chrt failed: /);
});

test('without chrt: batch is not claimed, and the warning says why and what to do; normal says nothing', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent'; // chrt cannot be found; this process keeps its policy
  try {
    assert.equal(applySchedPolicy('batch'), { batch: false, warning: 'the threads keep the default scheduling policy (--sched batch: chrt is not installed (it is in util-linux)); --sched normal runs without it' });
    assert.equal(applySchedPolicy('normal'), { batch: false, warning: null });
  } finally {
    process.env.PATH = path;
  }
  assert.ok([...threadPolicies().values()].every((p) => p === 'other'), 'the test process was left as it was');
});

test('concur start runs its threads SCHED_BATCH by default and says so; --sched normal leaves them SCHED_OTHER; a bad value is refused', async () => {
  for (const [args, want] of [[[], 'batch'], [['--sched', 'normal'], 'other']] as const) {
    const started = await startCli(['--nodes', '3', '--storage', 'memory', ...args]);
    try {
      await waitForLeader(started.url);
      const ps = policiesOf(started.child.pid!);
      assert.ok(ps.length > 10, `the workers' threads are there (${ps.length})`);
      assert.ok(ps.every((p) => p === want), `every thread ${want} with ${args.join(' ') || 'no --sched'}: ${ps.join(', ')}`);
      assert.is(/threads SCHED_BATCH/.test(started.output()), want === 'batch', started.output());
      started.child.kill('SIGINT');
      assert.is((await started.exited).code, 0, started.output());
    } finally {
      started.child.kill('SIGKILL');
    }
  }
  const bad = await runCli(['start', '--port', '0', '--sched', 'fifo']);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--sched <policy>.*expected one of batch, normal, got "fifo"/);
});

test('concur bench runs SCHED_BATCH too, as start does, and takes --sched after the benchmark\'s name', async () => {
  const small = ['--count', '1000', '--port-count', '1000'];
  const batch = await runCli(['bench', 'transport', ...small]);
  assert.is(batch.code, 0, batch.stderr);
  assert.match(batch.stderr, /^bench: threads SCHED_BATCH, as concur start runs them/m);
  const normal = await runCli(['bench', 'transport', '--sched', 'normal', ...small]);
  assert.is(normal.code, 0, normal.stderr);
  assert.not.match(normal.stderr, /SCHED_BATCH/);
  const bad = await runCli(['bench', 'raft', '--sched', 'idle']);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--sched <policy>.*expected one of batch, normal, got "idle"/);
});

test.run();
