import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryKind, Role, type Entry, type RaftNode, type Ready } from '../../protocols/raft/index.ts';
import { ElectionSafety, LeaderCompleteness, LogMatching, ReadIndexLinearizable, StateMachineSafety } from '../../protocols/sim/raft-invariants.ts';

// The checkers only read a node through these members; a stub is enough to feed them.
function stub(role: number, term: number, log: Entry[], commit = 0): RaftNode {
  return {
    currentRole: role,
    currentTerm: term,
    commitIndex: commit,
    lastIndex: log.length,
    firstIndex: 1,
    entryAt: (i: number) => log[i - 1],
    entries: (lo: number, hi: number) => log.slice(lo - 1, hi - 1),
  } as unknown as RaftNode;
}
const e = (index: number, term: number): Entry => ({ index, term, kind: EntryKind.normal, data: new Uint8Array([index, term]) });
const ready = (entries: Entry[]): Ready => ({ entries, snapshot: null }) as unknown as Ready;

test('election safety: a second leader in a term is a violation', () => {
  const c = new ElectionSafety();
  assert.is(c.observe({ kind: 'step', node: 1, raft: stub(Role.leader, 3, []) }), null);
  assert.is(c.observe({ kind: 'step', node: 1, raft: stub(Role.leader, 3, []) }), null);
  assert.is(c.observe({ kind: 'step', node: 2, raft: stub(Role.leader, 4, []) }), null);
  assert.match(c.observe({ kind: 'step', node: 3, raft: stub(Role.leader, 3, []) })!, /term 3 has two leaders: n1 and n3/);
});

test('log matching: same (index, term) with a different prefix is a violation', () => {
  const c = new LogMatching();
  const [a1, a2] = [e(1, 1), e(2, 2)];
  assert.is(c.observe({ kind: 'ready', node: 1, raft: stub(0, 2, []), ready: ready([a1, a2]) }), null);
  assert.is(c.observe({ kind: 'ready', node: 2, raft: stub(0, 2, []), ready: ready([a1, a2]) }), null, 'the same entries are fine');
  // Node 3 holds the very same entry 2 of term 2, but after a different entry 1.
  assert.match(
    c.observe({ kind: 'ready', node: 3, raft: stub(0, 2, []), ready: ready([e(1, 2), a2]) })!,
    /index 2 with term 2, but their logs differ/,
  );
  // Two distinct entries for one (index, term) are caught at that index.
  assert.match(c.observe({ kind: 'ready', node: 4, raft: stub(0, 2, []), ready: ready([e(1, 1)]) })!, /index 1 with term 1/);
});

test('leader completeness: a new leader missing a committed entry of an earlier term is a violation', () => {
  const c = new LeaderCompleteness();
  const log = [e(1, 1), e(2, 1)];
  assert.is(c.observe({ kind: 'step', node: 1, raft: stub(Role.leader, 1, log, 2) }), null);
  assert.is(c.observe({ kind: 'step', node: 2, raft: stub(Role.leader, 2, log, 2) }), null, 'has both entries');
  assert.match(c.observe({ kind: 'step', node: 3, raft: stub(Role.leader, 3, [log[0]!], 1) })!, /without index 2/);
});

test('state machine safety: different entries applied at one index, or out of order, are violations', () => {
  const c = new StateMachineSafety();
  const x = e(1, 1);
  assert.is(c.observe({ kind: 'apply', node: 1, entry: x }), null);
  assert.is(c.observe({ kind: 'apply', node: 2, entry: x }), null);
  assert.match(c.observe({ kind: 'apply', node: 3, entry: e(1, 2) })!, /applied an entry of term 2 at index 1, but n1 applied/);
  assert.match(c.observe({ kind: 'apply', node: 1, entry: e(3, 1) })!, /next index to apply was 2/);
});

test('read index: a read served below what was committed when it was asked is a violation', () => {
  const c = new ReadIndexLinearizable();
  c.observe({ kind: 'step', node: 1, raft: stub(Role.leader, 1, [], 7) });
  c.observe({ kind: 'read-request', node: 2, requestId: 1 });
  c.observe({ kind: 'read-request', node: 2, requestId: 2 });
  assert.is(c.observe({ kind: 'read-state', node: 2, requestId: 1, index: 7 }), null);
  assert.match(c.observe({ kind: 'read-state', node: 2, requestId: 2, index: 6 })!, /index 7 was already committed/);
});

test.run();
