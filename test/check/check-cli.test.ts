import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../support/cli-process.ts';

// The real `concur` process, end to end: a history `concur chaos` records, the same history with
// one read doctored, Jepsen logs with known verdicts, and every kind of bad usage.
const dir = mkdtempSync(join(tmpdir(), 'concur-check-'));
const testdata = (name: string) => fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
const recorded = join(dir, 'chaos.jsonl');
const doctored = join(dir, 'doctored.jsonl');
let doctoredId = -1;

test.before(async () => {
  const r = await runCli(['chaos', '--nodes', '3', '--duration', '2', '--clients', '4', '--keys', '3', '--faults', 'partition', '--seed', '7', '--history', recorded]);
  assert.is(r.code, 0, `chaos run: ${r.stderr}`);
  // Doctor one ok read in the middle to return a value nobody wrote: nothing can explain it.
  const lines = readFileSync(recorded, 'utf8').trimEnd().split('\n');
  for (let i = Math.floor(lines.length / 2); i < lines.length; i++) {
    const op = JSON.parse(lines[i]!);
    if (op.op === 'get' && op.status === 'ok') {
      op.result = 'never-written';
      lines[i] = JSON.stringify(op);
      doctoredId = i;
      break;
    }
  }
  assert.ok(doctoredId >= 0, 'the run has an ok read to doctor');
  writeFileSync(doctored, `${lines.join('\n')}\n`);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a history concur chaos wrote checks linearizable: exit 0', async () => {
  const r = await runCli(['check', recorded]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /chaos\.jsonl \(concur, detected\): \d+ ops on 3 keys: linearizable/);
});

test('the same history with one read doctored: exit 1, and --json names the read as the op that cannot be placed', async () => {
  const r = await runCli(['check', '--json', doctored]);
  assert.is(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { linearizable: unknown; files: Array<Record<string, any>> };
  assert.is(out.linearizable, false);
  const [file] = out.files;
  assert.equal([file!.file, file!.format, file!.formatDetected, file!.timeUnit, file!.linearizable], [doctored, 'concur', true, 'ms', false]);
  const bad = file!.keys.filter((k: any) => k.linearizable === false);
  assert.is(bad.length, 1, 'only the doctored key fails');
  assert.is(bad[0].failure.stuck.id, doctoredId);
  assert.is(bad[0].failure.stuck.result, 'never-written');
  assert.ok(bad[0].failure.prefix.length <= 8, 'the JSON keeps the tail of the prefix, as the chaos summary does');
  assert.ok(file!.keys.every((k: any) => typeof k.opsChecked === 'number' && typeof k.steps === 'number'));
});

test('--html writes a self-contained page that marks the op that cannot be placed', async () => {
  const page = join(dir, 'doctored.html');
  const r = await runCli(['check', '--html', page, doctored]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stdout, /is not linearizable/);
  assert.match(r.stdout, new RegExp(`page written to ${page.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const html = readFileSync(page, 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.not.match(html, /(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, 'nothing is fetched from the network');
  assert.not.match(html, /<link\b|<img\b|@import|url\(/i, 'no external style sheets, images or fonts');
  assert.match(html, new RegExp(`<g class="op ok stuck" data-op="${doctoredId}"><title>#${doctoredId} `), 'the stuck op is drawn and marked');
  assert.match(html, /read &quot;never-written&quot;/, 'its details say what it read');
  assert.match(html, /class="op [a-z]+ prefix"/, 'the linearizable prefix is drawn');
  assert.match(html, /Longest linearizable prefix found: \d+ ops/);
});

test('Jepsen logs: 0 for a linearizable one, 1 if any is not; several files get a total line', async () => {
  const ok = await runCli(['check', testdata('etcd_005.log'), testdata('etcd_067.log')]);
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /2 histories: 2 linearizable, 0 not, 0 undecided/);
  const bad = await runCli(['check', '--format', 'jepsen', testdata('etcd_005.log'), testdata('etcd_000.log')]);
  assert.is(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /etcd_000\.log \(jepsen\): 85 ops on key "register": NOT linearizable/);
  assert.match(bad.stdout, /\[line \d+ → \d+\]/, 'Jepsen ops are placed by log line, not ms');
});

test('a search budget too small to decide: exit 3, and the message says which flag to raise', async () => {
  const r = await runCli(['check', '--steps-max', '100', testdata('etcd_097.log')]);
  assert.is(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /undecided/);
  assert.match(r.stdout, /raise --steps-max/);
});

test('bad usage exits 2 with one line saying what is wrong, before checking anything', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['check'], /name at least one history file/],
    [['check', join(dir, 'missing.jsonl')], /cannot read .*missing\.jsonl: no such file/],
    [['check', dir], /is a directory/],
    [['check', '--format', 'xml', recorded], /expected one of concur, jepsen, got "xml"/],
    [['check', '--steps-max', '0', recorded], /expected an integer from 1/],
    [['check', '--html', join(dir, 'no', 'such', 'dir', 'x.html'), recorded], /cannot write the page to .*: its directory does not exist/],
  ];
  const broken = join(dir, 'broken.log');
  writeFileSync(broken, '0\t:invoke\t:read\tnil\n0\t:ok\t:read\t[1\n');
  cases.push([['check', recorded, broken], /broken\.log line 2: cannot read the value "\[1"/]);
  const garbage = join(dir, 'garbage.txt');
  writeFileSync(garbage, 'hello\n');
  cases.push([['check', garbage], /cannot tell the format of .*garbage\.txt: line 1 \("hello"\).*pass --format concur or --format jepsen/]);
  cases.push([['check', '--format', 'concur', testdata('etcd_005.log')], /etcd_005\.log line 1: not valid JSON/]);
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.not.match(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
    assert.is(r.stdout, '', `${args.join(' ')}: no verdict printed`);
  }
  assert.not.ok(existsSync(join(dir, 'no')), 'nothing was created for the bad --html path');
});

test.run();
