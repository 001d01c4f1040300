import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const concur = (...args: string[]) => spawnSync(process.execPath, ['bin/concur.mjs', ...args], { cwd: root, encoding: 'utf8' });

test('concur sim --json: progress on stderr, one JSON object as the last stdout line', () => {
  const r = concur('sim', '--protocol', 'raft', '--seeds', '6', '--nodes', '5', '--json');
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const summary = JSON.parse(lines[lines.length - 1]!);
  assert.is(summary.seeds, 6);
  assert.is(summary.violations, 0);
  assert.ok(summary.steps > 0 && summary.commits > 0);
  assert.match(r.stderr, /6\/6 seeds/);
});

test('a violation exits non-zero with the seed, a trace, and how to replay it', () => {
  const r = concur('sim', '--seeds', '40', '--nodes', '5', '--mutation', 'vote-twice');
  assert.is(r.status, 1);
  assert.match(r.stdout, /VIOLATION of election-safety at seed \d+/);
  assert.match(r.stdout, /trace \(last \d+ lines of the replay\)/);
  assert.match(r.stdout, /is now leader in term/);
  assert.match(r.stdout, /replay with: concur sim --protocol raft --nodes 5 --seed \d+ --mutation vote-twice --trace/);
  assert.not.match(r.stdout, /determinism is broken/);
});

test('--seed replays one seed; bad flags are named', () => {
  const r = concur('sim', '--seed', '7', '--json');
  assert.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.is(summary.seeds, 1);
  assert.is(summary.firstSeed, 7);
  const bad = concur('sim', '--nodes', '4');
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /--nodes.*expected one of 1, 3, 5, 7, 9, got "4"/);
  const badMutation = concur('sim', '--mutation', 'nope');
  assert.is(badMutation.status, 2);
  assert.match(badMutation.stderr, /--mutation: unknown mutation "nope"/);
});

test('concur sim --protocol paxos|multipaxos: the Paxos cores under the same engine; their mutations by name', () => {
  for (const protocol of ['paxos', 'multipaxos']) {
    const r = concur('sim', '--protocol', protocol, '--seeds', '5', '--nodes', '3', '--json');
    assert.is(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.is(summary.violations, 0);
    assert.ok(summary.commits > 0, `${protocol} chose values`);
  }
  const broken = concur('sim', '--protocol', 'multipaxos', '--seeds', '20', '--nodes', '5', '--mutation', 'ignore-accepted-in-promise');
  assert.is(broken.status, 1);
  assert.match(broken.stdout, /VIOLATION of (agreement|learned-stable) at seed \d+/);
  assert.match(broken.stdout, /replay with: concur sim --protocol multipaxos --nodes 5 --seed \d+ --mutation ignore-accepted-in-promise --trace/);
  const wrong = concur('sim', '--protocol', 'paxos', '--seeds', '1', '--mutation', 'skip-gap-fill');
  assert.is(wrong.status, 2);
  assert.match(wrong.stderr, /unknown mutation "skip-gap-fill" for paxos; expected one of accept-below-promise, ignore-accepted-in-promise/);
});

test('concur sim --replica: whole replicas, and a violation names how to replay it', () => {
  const ok = concur('sim', '--protocol', 'raft', '--replica', '--seeds', '3', '--nodes', '3', '--json');
  assert.is(ok.status, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout.trim().split('\n').pop()!);
  assert.is(summary.protocol, 'raft-replica');
  assert.is(summary.seeds, 3);
  assert.ok(summary.stats.reads > 0 && summary.stats.puts > 0);
  const bad = concur('sim', '--replica', '--seeds', '30', '--nodes', '3', '--mutation', 'serve-before-apply');
  assert.is(bad.status, 1);
  assert.match(bad.stdout, /VIOLATION of read-values/);
  assert.match(bad.stdout, /replay with: concur sim --protocol raft --replica --nodes 3 --seed \d+ --mutation serve-before-apply --trace/);
});

test.run();
