#!/usr/bin/env node
// Measures how fast the `concur` CLI answers, as a user waits for it: `concur --version`,
// `concur kv get` against a running cluster, and `concur start` until it prints the first
// leader. Prints the median (and every run) of each; never part of the tests (performance is
// reported, not asserted).
// Usage: node scripts/measure-cli.mjs [--runs N] [--bin PATH] [--nodes N]   (start: its defaults,
// 5 nodes with a WAL each, unless --nodes)
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    bin: { type: 'string', default: fileURLToPath(new URL('../bin/concur.mjs', import.meta.url)) },
    nodes: { type: 'string' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`--runs takes a whole number of runs ≥ 1, got ${values.runs}`);
const bin = values.bin;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const report = (what, ms) => process.stdout.write(`${what.padEnd(34)} median ${String(Math.round(median(ms))).padStart(5)} ms   runs: ${ms.map(Math.round).join(', ')}\n`);

/** Wall time of one CLI run to its exit. */
function timeRun(args) {
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.error) throw r.error;
  return { ms, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `concur start`; resolves at the first status line naming a leader, with the time taken. */
function startToLeader() {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'start', '--port', '0', ...(values.nodes ? ['--nodes', values.nodes] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no leader within 60 s:\n${out}`)), 60_000);
    const onData = (d) => {
      out += d;
      const url = /HTTP API on (http:\/\/\S+)/.exec(out);
      if (url && /^leader \d+/m.test(out)) {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        child.stdout.off('data', onData);
        resolve({ ms: performance.now() - started, url: url[1], child });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`concur start exited with ${code}:\n${out}`)));
  });
}

const stop = (child) => new Promise((resolve) => {
  child.removeAllListeners('exit');
  child.on('exit', resolve);
  child.kill('SIGINT');
});

process.stdout.write(`concur CLI: ${bin}  (${runs} runs each, load average ${(await import('node:os')).loadavg()[0].toFixed(2)})\n`);
// Node's own start-up, the floor under every command on this machine at this load.
const bare = [];
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  bare.push(performance.now() - started);
}
report('node -e 0 (Node alone)', bare);

const version = [];
for (let i = 0; i < runs; i++) {
  const r = timeRun(['--version']);
  if (r.status !== 0) throw new Error(`concur --version exited with ${r.status}: ${r.stderr}`);
  version.push(r.ms);
}
report('concur --version', version);

const start = [];
const kvGet = [];
for (let i = 0; i < runs; i++) {
  const { ms, url, child } = await startToLeader();
  start.push(ms);
  try {
    if (i === 0) {
      const put = timeRun(['kv', 'put', 'k', 'v', '--url', url]);
      if (put.status !== 0) throw new Error(`concur kv put exited with ${put.status}: ${put.stderr}`);
      for (let j = 0; j < runs; j++) {
        const r = timeRun(['kv', 'get', 'k', '--url', url]);
        if (r.status !== 0 || r.stdout.trim() !== 'v') throw new Error(`concur kv get exited with ${r.status}: ${r.stdout}${r.stderr}`);
        kvGet.push(r.ms);
      }
    }
  } finally {
    await stop(child);
  }
}
report('concur kv get k (running cluster)', kvGet);
report(`concur start${values.nodes ? ` --nodes ${values.nodes}` : ''} to a leader`, start);
