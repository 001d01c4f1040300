import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MajorityConfig, VoteResult } from '../../protocols/raft/quorum.ts';

test('committedIndex is the highest index a majority has reached', () => {
  const q = new MajorityConfig([1, 2, 3, 4, 5]);
  const match = new Map([[1, 9], [2, 7], [3, 7], [4, 2], [5, 0]]);
  assert.is(q.committedIndex((id) => match.get(id)!), 7);
  match.set(3, 3);
  assert.is(q.committedIndex((id) => match.get(id)!), 3, 'only 1 and 2 reach 7 now; the third highest is 3');
});

test('committedIndex of an even cluster needs more than half', () => {
  const q = new MajorityConfig([1, 2, 3, 4]);
  assert.is(q.quorum(), 3);
  const match = new Map([[1, 10], [2, 10], [3, 4], [4, 4]]);
  assert.is(q.committedIndex((id) => match.get(id)!), 4);
});

test('a voter missing from the match table holds the commit back', () => {
  const q = new MajorityConfig([1, 2, 3]);
  assert.is(q.committedIndex((id) => (id === 1 ? 5 : 0)), 0);
});

test('single voter commits its own index', () => {
  assert.is(new MajorityConfig([7]).committedIndex(() => 3), 3);
});

test('voteResult: won at a majority of grants, lost once a majority is impossible, pending between', () => {
  const q = new MajorityConfig([1, 2, 3, 4, 5]);
  const v = new Map<number, boolean>([[1, true]]);
  assert.is(q.voteResult(v), VoteResult.pending);
  v.set(2, false).set(3, false);
  assert.is(q.voteResult(v), VoteResult.pending, '1 grant, 2 rejects: 4 and 5 could still make 3');
  v.set(4, false);
  assert.is(q.voteResult(v), VoteResult.lost);
  const w = new Map<number, boolean>([[1, true], [2, true], [5, true]]);
  assert.is(q.voteResult(w), VoteResult.won);
  assert.is(q.voteResult(new Map([[9, true], [8, true], [1, true]])), VoteResult.pending, 'votes from non-voters do not count');
});

test('hasQuorum counts the voters for which the predicate holds', () => {
  const q = new MajorityConfig([1, 2, 3]);
  assert.ok(q.hasQuorum((id) => id !== 3));
  assert.not.ok(q.hasQuorum((id) => id === 1));
});

test('configuration is validated', () => {
  assert.throws(() => new MajorityConfig([]), /at least one voter/);
  assert.throws(() => new MajorityConfig([1, 2, 2]), /unique/);
});

test.run();
