import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { raftSimProtocol, runSeed, runSeeds } from '../../protocols/sim/index.ts';
import { EventQueue } from '../../protocols/sim/event-queue.ts';

const raft = raftSimProtocol();

test('a seed replays exactly: same steps, same commits, same trace', () => {
  const a = runSeed(raft, { seed: 42, nodes: 5, tracing: true, traceLinesMax: 0 });
  const b = runSeed(raft, { seed: 42, nodes: 5, tracing: true, traceLinesMax: 0 });
  assert.ok(a.ok);
  assert.is(a.steps, b.steps);
  assert.is(a.commits, b.commits);
  assert.equal(a.trace, b.trace);
  const c = runSeed(raft, { seed: 43, nodes: 5 });
  assert.is.not(c.steps, a.steps, 'another seed is another run');
  const quiet = runSeed(raft, { seed: 42, nodes: 5 });
  assert.is(quiet.steps, a.steps, 'tracing does not change the run');
});

test('the event queue orders by time, then by insertion', () => {
  const q = new EventQueue();
  const out: string[] = [];
  q.push(5, '', () => out.push('b'));
  q.push(1, '', () => out.push('a'));
  q.push(5, '', () => out.push('c'));
  q.push(9, '', () => out.push('e'));
  q.push(5, '', () => out.push('d'));
  for (let e = q.pop(); e; e = q.pop()) e.run();
  assert.equal(out, ['a', 'b', 'c', 'd', 'e']);
});

// Mutation check: each deliberately broken variant must be caught. The seed at which it is
// caught today is noted in the report; the bound here leaves room for harmless drift.
const mutations: [string, number, number, RegExp][] = [
  ['vote-twice', 5, 50, /election-safety/],
  ['no-election-restriction', 5, 50, /leader-completeness|state-machine-safety|log-matching/],
  ['read-without-quorum', 5, 100, /read-index-linearizable/],
  // Caught today at seed 13 (5 nodes) for both.
  ['lease-ignores-acks', 5, 100, /read-index-linearizable/],
  ['lease-too-long', 5, 100, /read-index-linearizable/],
  // Caught at seed 971 today: since restarted nodes wait an election timeout before voting (lease
  // safety), the quick post-crash elections Figure 8 needs are rarer than they were.
  ['commit-previous-term', 3, 1200, /leader-completeness|state-machine-safety/],
  // Host bugs around snapshots, caught at seed 1 today.
  ['snapshot-misses-last-apply', 5, 20, /state-machine-safety/],
  ['compact-past-snapshot', 5, 20, /assertion|state-machine-safety|log-matching/],
];
for (const [mutation, nodes, seedsMax, invariant] of mutations) {
  test(`mutation "${mutation}" is caught within ${seedsMax} seeds (${nodes} nodes)`, () => {
    const s = runSeeds(raft, { seeds: seedsMax, nodes, mutation });
    assert.ok(s.failed !== null, `${mutation} survived ${seedsMax} seeds`);
    assert.match(s.failed!.violation!.invariant, invariant);
    // The failure replays exactly, and the trace ends at the violation.
    const replay = runSeed(raft, { seed: s.failed!.seed, nodes, mutation, tracing: true });
    assert.is(replay.violation?.step, s.failed!.violation!.step);
    assert.ok(replay.trace.some((l) => l.includes('violated')), 'the trace names the violation');
  });
}

test('clients use every read path: lease reads on leaders, ReadIndex on leaders and on followers', () => {
  const s = runSeeds(raft, { seeds: 20, nodes: 5 });
  assert.is(s.failed, null);
  assert.ok(s.stats.lease! > 0, `lease reads served (${JSON.stringify(s.stats)})`);
  assert.ok(s.stats.leaseRefused! > 0, 'some lease reads fell back to ReadIndex');
  assert.ok(s.stats.index! > 0 && s.stats.follower! > 0);
  // Without CheckQuorum the host never tries the lease.
  const off = runSeeds(raftSimProtocol({ checkQuorum: false }), { seeds: 5, nodes: 3 });
  assert.is(off.failed, null);
  assert.is(off.stats.lease, 0);
});

test('snapshots: nodes snapshot, cut their logs, ship snapshots to laggards and install them, under faults', () => {
  const s = runSeeds(raft, { seeds: 30, nodes: 5 });
  assert.is(s.failed, null);
  const { snapshotsTaken, snapshotsSent, snapshotsInstalled, snapshotTransfersFailed } = s.stats;
  assert.ok(snapshotsTaken! > 100, `snapshots taken (${JSON.stringify(s.stats)})`);
  assert.ok(snapshotsSent! > 10 && snapshotsInstalled! > 10, 'followers caught up by snapshot');
  assert.ok(snapshotTransfersFailed! > 0, 'some transfers were lost and given up (then retried)');
});

test('seeds that once failed stay clean: a lost snapshot the host had swapped for a newer one than the core asked for', () => {
  // Seed 778, 7 nodes: the core offered snapshot 227, the host sent its newer 241 and the network
  // dropped it; the transfer's deadline judged it by the core's pendingSnapshot (227), so it never
  // reported the failure and the follower stayed paused in the snapshot state past the heal.
  for (const [nodes, seed] of [[7, 778]] as const) {
    const r = runSeed(raft, { seed, nodes });
    assert.ok(r.ok, `${nodes} nodes, seed ${seed}: ${JSON.stringify(r.violation)}`);
  }
});

test('control: removing only the election no-op breaks no safety property (only liveness)', () => {
  // Without the no-op a new leader cannot commit its predecessors' entries until a client writes:
  // the simulator may report liveness, but never a safety invariant.
  for (let seed = 1; seed <= 60; seed++) {
    const r = runSeed(raft, { seed, nodes: 3, mutation: 'no-noop' });
    if (!r.ok) assert.is(r.violation!.invariant, 'liveness', `seed ${seed}: ${r.violation!.message}`);
  }
});

test('liveness is checked: a cluster that can never elect a leader fails after healing', () => {
  const stuck = raftSimProtocol({ electionTicks: 100_000 });
  const r = runSeed(stuck, { seed: 1, nodes: 3 });
  assert.is(r.violation?.invariant, 'liveness');
  assert.match(r.violation!.message, /no leader/);
});

test('an unknown mutation is refused by name', () => {
  assert.throws(() => runSeed(raft, { seed: 1, nodes: 3, mutation: 'nope' }), /unknown raft mutation "nope"/);
});

test.run();
