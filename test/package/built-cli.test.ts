// The `concur` CLI as `npm ci` leaves it: bin/concur.mjs running the compiled dist/ that
// scripts/build.mjs makes. Two scratch package roots, each with its own build (--out):
// - `compiled`: bin/ and dist/ only, and a node_modules without tsx, so any thread that reached
//   for a TypeScript loader would fail: --version, --help and kv get load no cluster, runtime or
//   protocol module; a live `concur start` (main thread and every worker) serves kv put/get.
// - `withSources`: the sources beside dist/ and tsx installed: a fresh build runs dist/, and a
//   source edited after the build makes the CLI run the sources through tsx, never stale code.
// Which modules a run loads is recorded by a resolve hook (node:module register) of the test's own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startCli, waitForLeader } from '../support/cli-process.ts';
import { buildInfoFile, sourceHash, whyNotFresh } from '../../bin/dist-freshness.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const sourceDirs = ['runtime', 'protocols', 'apps', 'bench'];
let work = '';
let compiled = '';
let withSources = '';
let traceHooks = '';

function build(root: string): void {
  execFileSync(process.execPath, [join(repo, 'scripts/build.mjs'), '--out', join(root, 'dist')], { cwd: repo, stdio: 'pipe' });
}

/** A package root holding bin/ and a package.json like the repo's. */
function packageRoot(name: string): string {
  const root = join(work, name);
  mkdirSync(root);
  cpSync(join(repo, 'bin'), join(root, 'bin'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(root, 'package.json'));
  return root;
}

test.before(() => {
  work = mkdtempSync(join(tmpdir(), 'concur-built-cli-'));
  compiled = packageRoot('compiled');
  mkdirSync(join(compiled, 'node_modules'));
  for (const entry of readdirSync(join(repo, 'node_modules'))) {
    if (entry !== 'tsx' && entry !== '.bin') symlinkSync(join(repo, 'node_modules', entry), join(compiled, 'node_modules', entry));
  }
  build(compiled);

  withSources = packageRoot('with-sources');
  for (const f of [...sourceDirs, 'tsconfig.json']) cpSync(join(repo, f), join(withSources, f), { recursive: true });
  symlinkSync(join(repo, 'node_modules'), join(withSources, 'node_modules'));
  build(withSources); // after the copies: the build is newer than every source

  // Appends every URL a resolve hook hands back, in any thread, to the file named by CONCUR_TRACE.
  traceHooks = join(work, 'trace-hooks.mjs');
  writeFileSync(
    traceHooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.CONCUR_TRACE, r.url + '\\n');
  return r;
}`,
  );
  writeFileSync(join(work, 'trace.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(traceHooks).href)});\n`);
});

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Files the run loaded, relative to its package root (node: built-ins and others left out). */
  loaded: string[];
}

let traces = 0;
/** Runs `root`'s bin with `args` to its end, recording what it loads. */
function runBin(root: string, args: string[]): Promise<Run> {
  const trace = join(work, `trace-${++traces}.txt`);
  writeFileSync(trace, '');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(join(work, 'trace.mjs')).href, join(root, 'bin/concur.mjs'), ...args],
      { cwd: root, timeout: 60_000, env: { ...process.env, FORCE_COLOR: '0', CONCUR_TRACE: trace } },
      (err, stdout, stderr) => {
        const rootUrl = pathToFileURL(root).href + '/';
        const loaded = [...new Set(readFileSync(trace, 'utf8').split('\n').filter((u) => u.startsWith(rootUrl)).map((u) => u.slice(rootUrl.length)))];
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, loaded });
      },
    );
  });
}

/** Modules of the cluster, the runtime and the protocols: none of them for a quick command. */
const engine = /^(dist\/)?(runtime|protocols|apps\/cluster)\//;

test('whyNotFresh: no build, a broken record, an edited source; not a newer mtime alone, nor a missing source', () => {
  const root = join(work, 'freshness');
  mkdirSync(join(root, 'dist'), { recursive: true });
  mkdirSync(join(root, 'apps'));
  assert.match(String(whyNotFresh(root)), /no complete build/);
  writeFileSync(join(root, 'dist', buildInfoFile), '{"sources": 3}');
  assert.match(String(whyNotFresh(root)), /is not a build record/);
  const startedAtMs = Date.now();
  const source = join(root, 'apps/a.ts');
  writeFileSync(source, 'export const a = 1;\n');
  const record = { path: 'apps/a.ts', bytes: 20, sha1: sourceHash(readFileSync(source)) };
  writeFileSync(join(root, 'dist', buildInfoFile), JSON.stringify({ startedAtMs, sources: [record, { path: 'apps/gone.ts', bytes: 1, sha1: '0' }] }));
  utimesSync(source, new Date(startedAtMs - 60_000), new Date(startedAtMs - 60_000));
  assert.is(whyNotFresh(root), null, 'an older source and a missing one leave the build fresh');
  // As npm install, a checkout or a copy leave it: a later mtime, the same bytes.
  utimesSync(source, new Date(startedAtMs + 1_000), new Date(startedAtMs + 1_000));
  assert.is(whyNotFresh(root), null, 'a newer mtime with the same content leaves the build fresh');
  writeFileSync(source, 'export const a = 2;\n'); // same size, other bytes
  assert.is(whyNotFresh(root), 'apps/a.ts changed since the build');
  writeFileSync(source, 'export const a = 10;\n');
  assert.is(whyNotFresh(root), 'apps/a.ts changed since the build');
});

test('--version and --help run compiled and load no cluster, runtime or protocol module', async () => {
  const version = await runBin(compiled, ['--version']);
  assert.is(version.code, 0, version.stderr);
  assert.is(version.stdout, '0.1.0\n');
  assert.equal(version.loaded.filter((f) => f.startsWith('dist/')).sort(), ['dist/apps/cli/main.js', 'dist/apps/cli/options.js']);

  const help = await runBin(compiled, ['--help']);
  assert.is(help.code, 0, help.stderr);
  for (const command of ['start', 'chaos', 'check', 'bench', 'sim', 'kv', 'lock', 'member', 'cluster', 'app']) assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'));
  assert.ok(help.loaded.includes('dist/apps/cli/commands/start.js'), 'help lists every command, so it loads each one');
  // Leaf modules of constants (fsync policies, Raft defaults, the PRNG behind chaos's fault list,
  // the fault model's limits), makeDirs (node:fs only, for start's checks) and the scheduling
  // policies (node built-ins only, for start's --sched) are fine; the code that runs a cluster, a
  // WAL, a protocol or the simulator is not.
  const heavy = help.loaded.filter((f) => engine.test(f) && !['dist/runtime/storage/types.js', 'dist/protocols/raft/config.js', 'dist/runtime/rng.js', 'dist/runtime/faults.js', 'dist/runtime/storage/make-dirs.js', 'dist/apps/cluster/snapshot-keeper.js', 'dist/runtime/sched-policy.js'].includes(f));
  assert.equal(heavy, [], `--help loaded ${heavy.join(', ')}`);
  assert.not.ok(help.loaded.some((f) => f.endsWith('.ts')), 'no TypeScript source');
});

test('a live cluster from the built CLI, without tsx in any thread: kv put and get from the built CLI', async () => {
  const cli = await startCli(['--nodes', '3', '--storage', 'memory', '--election-ms', '100-200', '--heartbeat-ms', '20'], 60_000, join(compiled, 'bin/concur.mjs'));
  try {
    await waitForLeader(cli.url, 30_000);
    const put = await runBin(compiled, ['kv', 'put', 'colour', 'blue', '--url', cli.url]);
    assert.is(put.code, 0, put.stderr);
    const get = await runBin(compiled, ['kv', 'get', 'colour', '--url', cli.url]);
    assert.is(get.code, 0, get.stderr);
    assert.is(get.stdout.trim(), 'blue');
    const loaded = get.loaded.filter((f) => f.startsWith('dist/'));
    assert.ok(loaded.includes('dist/apps/cli/commands/kv.js'), loaded.join(', '));
    assert.equal(loaded.filter((f) => engine.test(f)), [], 'kv get loads no cluster, runtime or protocol module');
    assert.match(cli.output(), /^leader \d+ {2}term \d+/m, 'start printed its leader');
  } finally {
    cli.child.kill('SIGINT');
    await cli.exited;
  }
});

test('a source newer than the build: the CLI runs the sources through tsx, or says what to do without tsx', async () => {
  const fresh = await runBin(withSources, ['--version']);
  assert.is(fresh.code, 0, fresh.stderr);
  assert.ok(fresh.loaded.includes('dist/apps/cli/main.js') && !fresh.loaded.includes('apps/cli/main.ts'), `fresh: runs dist/ (${fresh.loaded.join(', ')})`);

  // A checkout or copy of the same bytes leaves the build current; an edit does not.
  const later = new Date(Date.now() + 5_000);
  utimesSync(join(withSources, 'apps/kv/app.ts'), later, later);
  const touched = await runBin(withSources, ['--version']);
  assert.ok(touched.loaded.includes('dist/apps/cli/main.js'), `same content: still dist/ (${touched.loaded.join(', ')})`);
  writeFileSync(join(withSources, 'apps/kv/app.ts'), `${readFileSync(join(withSources, 'apps/kv/app.ts'), 'utf8')}// edited\n`);
  const stale = await runBin(withSources, ['--version']);
  assert.is(stale.code, 0, stale.stderr);
  assert.is(stale.stdout, '0.1.0\n');
  assert.ok(stale.loaded.includes('apps/cli/main.ts') && !stale.loaded.includes('dist/apps/cli/main.js'), `stale: runs the sources (${stale.loaded.join(', ')})`);
  assert.is(stale.stderr, '', 'no note when stderr is not a terminal');

  // Without tsx there is nothing to run the edited sources with: one line saying so, exit 2.
  const source = join(compiled, 'apps/kv');
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, 'app.ts'), '');
  const refused = await runBin(compiled, ['--version']);
  assert.is(refused.code, 2);
  assert.is(refused.stdout, '');
  assert.match(refused.stderr, /^concur: cannot run: apps\/kv\/app\.ts changed since the build, and tsx \(to run the sources\) is not installed; run `npm run build` in .+\n$/);
  rmSync(join(compiled, 'apps'), { recursive: true });
});

test.run();
