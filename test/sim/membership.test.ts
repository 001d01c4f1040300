// Membership changes under the simulator: random single and joint changes, learners, witnesses
// and removal of the leader, under every fault the engine injects, with every invariant checked
// after every step; and the two membership mutations must be caught.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { raftSimProtocol, runSeed, runSeeds } from '../../protocols/sim/index.ts';

const raft = raftSimProtocol({}, { membership: true });

test('raft with membership changes, 5 nodes: 300 seeds without a violation, and liveness after healing', () => {
  const s = runSeeds(raft, { seeds: 300, nodes: 5 });
  assert.is(s.failed?.violation ?? null, null, s.failed ? `seed ${s.failed.seed}: ${JSON.stringify(s.failed.violation)}` : '');
  const st = s.stats as Record<string, number>;
  assert.ok(st.changesProposed! > 300 * 2, `changes were made (${st.changesProposed} proposed, ${st.changesRefused} refused)`);
  assert.ok(st.transfersAsked! > 100, 'leadership transfers were asked for');
  assert.ok(s.crashes > 300 && s.partitions > 300, 'faults were actually injected');
});

test('a membership seed replays exactly', () => {
  const a = runSeed(raft, { seed: 7, nodes: 5, tracing: true, traceLinesMax: 0 });
  const b = runSeed(raft, { seed: 7, nodes: 5, tracing: true, traceLinesMax: 0 });
  assert.ok(a.ok);
  assert.equal(a.trace, b.trace);
  assert.ok(a.trace.some((l) => /: (add-|remove)/.test(l)), 'the trace shows membership changes');
});

test('seeds that once failed stay clean: a witness leader that must hand over before it can commit, a removed witness leader with no image to send', () => {
  for (const [nodes, seed] of [[3, 426], [5, 420], [3, 53]] as const) {
    const r = runSeed(raft, { seed, nodes });
    assert.ok(r.ok, `${nodes} nodes, seed ${seed}: ${JSON.stringify(r.violation)}`);
  }
});

const mutations: [string, number, number, RegExp][] = [
  // Two voters changed in one step: the leader commits without a majority of the old voters.
  ['skip-joint-step', 5, 20, /commit-quorum/],
  // A witness keeps no state machine: what it answers is not the data.
  ['witness-serves-reads', 5, 20, /state-machine-safety/],
];

for (const [mutation, nodes, seedsMax, invariant] of mutations) {
  test(`mutation "${mutation}" is caught within ${seedsMax} seeds (${nodes} nodes)`, () => {
    const s = runSeeds(raft, { seeds: seedsMax, nodes, mutation });
    assert.ok(s.failed !== null, `${mutation} survived ${seedsMax} seeds`);
    assert.match(s.failed!.violation!.invariant, invariant);
  });
}

test.run();
