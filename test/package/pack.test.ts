// concur as a library, as a consumer gets it: `npm pack` (which builds dist/ through prepack),
// `npm install` of the tarball into a scratch project (its dependencies from the registry, as for
// any consumer; the npm cache makes this quick after `npm ci`), then the README's pipeline example
// (examples/pipeline) run and type-checked from there against the package's `exports`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const example = join(repo, 'examples/pipeline');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

let work = '';
let app = '';

/** Runs a command to its end; fails the test with its output if it exits non-zero. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): { stdout: string; ms: number } {
  const started = Date.now();
  // Without the npm_* variables of an enclosing `npm test`: they are config to a child npm
  // (local prefix, lifecycle event) and would point it at the repo instead of `cwd`.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  const r = spawnSync(cmd, args, { cwd, env: { ...env, FORCE_COLOR: '0' }, encoding: 'utf8', timeout: timeoutMs });
  const ms = Date.now() - started;
  const what = `${cmd} ${args.join(' ')} (in ${cwd}, ${ms} ms)`;
  if (r.error) throw new Error(`${what}: ${r.error.message}\n${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return { stdout: r.stdout, ms };
}

test.before(() => {
  work = mkdtempSync(join(tmpdir(), 'concur-pack-'));
  const pack = run('npm', ['pack', '--pack-destination', work], repo, 120_000);
  const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  assert.equal(tarballs.length, 1, `npm pack made one tarball: ${tarballs.join(', ')}`);
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pipeline-app', private: true, type: 'module' }, null, 2));
  const install = run('npm', ['install', join(work, tarballs[0]!), '--prefer-offline', '--no-audit', '--no-fund'], app, 180_000);
  for (const f of readdirSync(example)) if (f.endsWith('.ts')) copyFileSync(join(example, f), join(app, f));
  console.log(`  npm pack (with build) ${(pack.ms / 1000).toFixed(1)} s, npm install ${(install.ms / 1000).toFixed(1)} s`);
});

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the package resolves to compiled JavaScript that loads in plain Node (no TypeScript loader)', () => {
  const installed = join(app, 'node_modules/concur');
  for (const f of ['dist/runtime/index.js', 'dist/runtime/index.d.ts', 'dist/runtime/actor-host.js', 'dist/runtime/worker-boot.mjs', 'dist/apps/index.d.ts', 'bin/concur.mjs']) {
    assert.ok(existsSync(join(installed, f)), `the tarball holds ${f}`);
  }
  assert.not.ok(existsSync(join(installed, 'test')), 'tests are not packed');
  const script = `
    const runtime = await import('concur/runtime');
    const apps = await import('concur/apps');
    console.log(JSON.stringify({ resolved: import.meta.resolve('concur/runtime'), runtime: Object.keys(runtime), apps: Object.keys(apps) }));`;
  const out = JSON.parse(run(process.execPath, ['--input-type=module', '-e', script], app, 30_000).stdout) as { resolved: string; runtime: string[]; apps: string[] };
  assert.match(out.resolved, /\/node_modules\/concur\/dist\/runtime\/index\.js$/);
  for (const name of ['Supervisor', 'ActorDownError', 'supervisorId', 'noFaults', 'defaultRestartPolicy']) assert.ok(out.runtime.includes(name), `concur/runtime exports ${name}`);
});

test('the pipeline example runs from the installed package and goes on after its transform is crashed and restarted', () => {
  const { stdout } = run(process.execPath, ['--import', 'tsx', 'main.ts'], app, 60_000);
  const before = /^before the crash: (\d+) results, 1²=1 … (\d+)²=\d+$/m.exec(stdout);
  assert.ok(before && Number(before[1]) >= 5, `results before the crash:\n${stdout}`);
  assert.match(stdout, /^event: actor 2 crashed \(incarnation 0\)$/m);
  assert.match(stdout, /^event: actor 2 restarted \(incarnation 1\)$/m);
  const after = /^after the restart: (\d+) results, (\d+)²=(\d+) … \d+²=\d+$/m.exec(stdout);
  assert.ok(after && Number(after[1]) >= 5, `results after the restart:\n${stdout}`);
  assert.ok(Number(after[2]) > Number(before[2]), 'the stream went on past where it was crashed');
  assert.is(Number(after[3]), Number(after[2]) ** 2, 'the restarted transform squares');
  assert.ok(stdout.indexOf('crashed') < stdout.indexOf('restarted') && stdout.indexOf('restarted') < stdout.indexOf('after the restart'));
});

test("the example type-checks against the package's declared types, and they are not `any`", () => {
  // Each probe below is marked as an expected type error: were the declarations unresolved (every
  // type any), the markers would be unused and tsc would fail.
  writeFileSync(
    join(app, 'types-probe.ts'),
    `import { Supervisor, type ActorFactory, type LinkPolicy, type RuntimeEvent } from 'concur/runtime';
import type { App, StateMachine } from 'concur/apps';
// @ts-expect-error actors is a list of { id, module }
Supervisor.create({ actors: 5 });
// @ts-expect-error an actor factory returns an actor
export const factory: ActorFactory = () => 42;
// @ts-expect-error not a runtime event type
export const event: RuntimeEvent = { type: 'no-such-event', at: 0 };
// @ts-expect-error loss is a number
export const policy: Partial<LinkPolicy> = { loss: 'high' };
// @ts-expect-error an app needs a name and a state machine factory
export const app: App = {};
// @ts-expect-error apply takes an index and bytes
export const sm: Pick<StateMachine, 'apply'> = { apply: (x: string) => x };
`,
  );
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2023'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      // The scratch project has no @types/node of its own; the repo's serves.
      types: ['node'],
      typeRoots: [join(repo, 'node_modules/@types')],
    },
    include: ['*.ts'],
  };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  run(process.execPath, [tsc, '-p', app], app, 120_000);
});

test('the concur CLI runs from the installed package, compiled: its dist/ is current for the sources it ships', () => {
  const installed = join(app, 'node_modules/concur');
  const { stdout } = run(process.execPath, [join(installed, 'bin/concur.mjs'), '--help'], app, 30_000);
  assert.match(stdout, /Usage: concur/);
  // What bin/concur.mjs checks before it runs dist/ rather than the sources through tsx.
  const script = `const { whyNotFresh } = await import(${JSON.stringify(pathToFileURL(join(installed, 'bin/dist-freshness.mjs')).href)}); console.log(String(whyNotFresh(${JSON.stringify(installed)})));`;
  assert.is(run(process.execPath, ['--input-type=module', '-e', script], app, 30_000).stdout, 'null\n');
});

test.run();
