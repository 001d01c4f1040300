// Basic Paxos and Multi-Paxos under the simulator: every fault the engine injects, agreement,
// validity, monotonic promises, stable learned values and linearizable reads checked after every
// step, liveness after healing; each mutation caught; a seed replays exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { paxosSimProtocol, runSeed, runSeeds } from '../../protocols/sim/index.ts';

const basic = paxosSimProtocol('basic');
const multi = paxosSimProtocol('multi');

for (const [name, protocol, seeds] of [['paxos', basic, 300], ['multipaxos', multi, 300]] as const) {
  test(`${name}, 5 nodes: ${seeds} seeds without a violation, and liveness after healing`, () => {
    const s = runSeeds(protocol, { seeds, nodes: 5 });
    assert.is(s.failed?.violation ?? null, null, s.failed ? `seed ${s.failed.seed}: ${JSON.stringify(s.failed.violation)}` : '');
    assert.ok(s.commands > seeds * 50, `clients got work done (${s.commands} commands)`);
    assert.ok(s.crashes > seeds && s.partitions > seeds, 'faults were actually injected');
    assert.ok((s.stats as Record<string, number>).readsServed! > seeds * 20, 'reads were served');
  });
}

test('multipaxos, 3 and 7 nodes: 60 seeds each without a violation', () => {
  for (const nodes of [3, 7]) {
    const s = runSeeds(multi, { seeds: 60, nodes });
    assert.is(s.failed?.violation ?? null, null, s.failed ? `${nodes} nodes, seed ${s.failed.seed}: ${JSON.stringify(s.failed.violation)}` : '');
  }
});

test('a new Multi-Paxos leader fills gaps with no-ops (they are chosen across the seeds)', () => {
  const s = runSeeds(multi, { seeds: 40, nodes: 5 });
  assert.ok((s.stats as Record<string, number>).noopsChosen! > 0, 'no-ops were chosen');
});

test('a paxos seed replays exactly', () => {
  const a = runSeed(basic, { seed: 9, nodes: 5, tracing: true, traceLinesMax: 0 });
  const b = runSeed(basic, { seed: 9, nodes: 5, tracing: true, traceLinesMax: 0 });
  assert.ok(a.ok);
  assert.equal(a.trace, b.trace);
  assert.ok(a.trace.some((l) => /deliver nack/.test(l)), 'proposers duelled (a nack was delivered)');
});

const mutations: [string, typeof basic, number, number, RegExp][] = [
  ['accept-below-promise', basic, 3, 10, /agreement/],
  ['ignore-accepted-in-promise', basic, 3, 10, /agreement/],
  ['accept-below-promise', multi, 5, 60, /agreement|learned-stable/],
  ['ignore-accepted-in-promise', multi, 5, 20, /agreement|learned-stable/],
  // Empty slots left empty: nothing after them ever applies.
  ['skip-gap-fill', multi, 5, 60, /liveness/],
];

for (const [mutation, protocol, nodes, seedsMax, invariant] of mutations) {
  test(`${protocol.name} mutation "${mutation}" is caught within ${seedsMax} seeds (${nodes} nodes)`, () => {
    const s = runSeeds(protocol, { seeds: seedsMax, nodes, mutation });
    assert.ok(s.failed !== null, `${mutation} survived ${seedsMax} seeds`);
    assert.match(s.failed!.violation!.invariant, invariant);
  });
}

test('a mutation a protocol does not have is refused by name', () => {
  assert.throws(() => runSeed(multi, { seed: 1, nodes: 3, mutation: 'nope' }), /unknown paxos mutation "nope"/);
});

test.run();
