import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftLog } from '../../protocols/raft/log.ts';
import { MemoryStorage } from '../../protocols/raft/storage.ts';
import { EntryKind, type Entry } from '../../protocols/raft/types.ts';

const ent = (index: number, term: number): Entry => ({ index, term, kind: EntryKind.normal, data: new Uint8Array([index]) });
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, i) => ent(from + i, t));
const terms = (log: RaftLog): number[] => log.slice(1, log.lastIndex() + 1).map((e) => e.term);

test('findConflictByTerm stops at the last known term of a compacted store and never reads below it', () => {
  const storage = new MemoryStorage({ term: 4, vote: 0, commit: 0 }, ents(1, [1, 1, 2, 2, 3, 4, 4]));
  // A store that dropped entries 1..4: term(4) is still known, anything before it throws.
  const compacted = Object.assign(Object.create(storage) as MemoryStorage, {
    firstIndex: () => 5,
    term: (i: number) => {
      if (i < 4 && i > 0) throw new Error(`entry ${i} was compacted`);
      return storage.term(i);
    },
  });
  const log = new RaftLog(compacted, 7, 7);
  assert.equal(log.findConflictByTerm(7, 3), [5, 3]);
  assert.equal(log.findConflictByTerm(7, 1), [4, 2], 'a (stale) hint below the compaction point: stop at the last known term');
  assert.equal(log.findConflictByTerm(2, 1), [4, 2], 'a scan that would start below it starts at the last known term');
  const plain = new RaftLog(storage, 7, 7);
  assert.equal(plain.findConflictByTerm(7, 1), [2, 1], 'without compaction the scan goes on down');
});

test('stable and unstable parts read as one log; persistedIndex is the durable prefix', () => {
  const storage = new MemoryStorage({ term: 2, vote: 0, commit: 0 }, ents(1, [1, 1, 2]));
  const log = new RaftLog(storage, 0, 0);
  assert.is(log.lastIndex(), 3);
  assert.is(log.persistedIndex(), 3);
  log.append(ents(4, [3, 3]));
  assert.equal(terms(log), [1, 1, 2, 3, 3]);
  assert.is(log.persistedIndex(), 3);
  const taken = log.takeUnstable();
  assert.equal(taken.map((e) => e.index), [4, 5]);
  assert.equal(log.takeUnstable(), [], 'entries in progress are not handed out twice');
  storage.append(taken);
  log.stableTo(5, 3);
  assert.is(log.persistedIndex(), 5);
  assert.is(log.term(5), 3);
  assert.is(log.term(6), -1);
  assert.is(log.term(0), 0);
});

test('a truncation of entries being written re-sends from the truncation point; stale stableTo is ignored', () => {
  const storage = new MemoryStorage();
  const log = new RaftLog(storage, 0, 0);
  log.append(ents(1, [1, 1, 1]));
  const first = log.takeUnstable();
  log.append(ents(2, [2])); // a new leader replaces 2..3 while 1..3 are being written
  storage.append(first);
  log.stableTo(3, 1);
  assert.is(log.persistedIndex(), 0, 'entry 3 of term 1 is gone from the log: nothing newly stable');
  const second = log.takeUnstable();
  assert.equal(second.map((e) => [e.index, e.term]), [[2, 2]]);
  storage.append(second);
  log.stableTo(2, 2);
  assert.is(log.persistedIndex(), 2);
  assert.equal(terms(log), [1, 2]);
  assert.is(storage.lastIndex(), 2, 'storage dropped the replaced suffix');
});

test('maybeAppend: mismatch, append, duplicate (no truncation), conflict truncation', () => {
  const log = new RaftLog(new MemoryStorage(), 0, 0);
  assert.is(log.maybeAppend(0, 0, 0, ents(1, [1, 1, 1])), 3);
  assert.is(log.maybeAppend(5, 1, 0, []), -1, 'prev index beyond our log');
  assert.is(log.maybeAppend(2, 2, 0, []), -1, 'prev term mismatch');
  assert.is(log.maybeAppend(0, 0, 2, ents(1, [1])), 1, 'a stale, shorter append');
  assert.equal(terms(log), [1, 1, 1], 'did not truncate the matching tail');
  assert.is(log.committed, 1, 'commit capped at the last index the message vouches for');
  assert.is(log.maybeAppend(1, 1, 3, ents(2, [2, 2, 2])), 4);
  assert.equal(terms(log), [1, 2, 2, 2]);
  assert.is(log.committed, 3);
  assert.throws(() => log.maybeAppend(0, 0, 0, ents(1, [5])), /committed/);
});

test('findConflictByTerm walks back to the last index with a term at most the given one', () => {
  const log = new RaftLog(new MemoryStorage(), 0, 0);
  log.append(ents(1, [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]));
  assert.equal(log.findConflictByTerm(10, 5), [7, 5]);
  assert.equal(log.findConflictByTerm(10, 3), [3, 1]);
  assert.equal(log.findConflictByTerm(10, 0), [0, 0]);
  assert.equal(log.findConflictByTerm(20, 6), [10, 6], 'clamped to the last index');
});

test('isUpToDate compares last term, then length', () => {
  const log = new RaftLog(new MemoryStorage(), 0, 0);
  log.append(ents(1, [1, 2, 2]));
  assert.ok(log.isUpToDate(1, 3));
  assert.ok(log.isUpToDate(3, 2));
  assert.not.ok(log.isUpToDate(2, 2));
  assert.not.ok(log.isUpToDate(9, 1));
});

test('entriesFrom honours the entry and byte limits but always returns one entry', () => {
  const log = new RaftLog(new MemoryStorage(), 0, 0);
  const big = (i: number, n: number): Entry => ({ index: i, term: 1, kind: EntryKind.normal, data: new Uint8Array(n) });
  log.append([big(1, 4), big(2, 4), big(3, 4), big(4, 100), big(5, 1)]);
  assert.equal(log.entriesFrom(1, 10, 10).map((e) => e.index), [1, 2]);
  assert.equal(log.entriesFrom(1, 2, 1000).map((e) => e.index), [1, 2]);
  assert.equal(log.entriesFrom(4, 10, 10).map((e) => e.index), [4], 'an oversized entry goes alone');
  assert.equal(log.entriesFrom(6, 10, 10), []);
  const e = log.entriesFrom(1, 1, 100)[0]!;
  assert.is(e, log.slice(1, 2)[0], 'the same entry object: no copy');
});

test('commit never passes the last index; committed entries are handed out once', () => {
  const log = new RaftLog(new MemoryStorage(), 0, 0);
  log.append(ents(1, [1, 1]));
  assert.throws(() => log.commitTo(3), /beyond/);
  log.commitTo(2);
  assert.equal(log.takeCommitted(), { from: 1, to: 2 });
  assert.equal(log.takeCommitted(), { from: 3, to: 2 }, 'nothing more until the commit moves');
  log.append(ents(3, [1]));
  log.commitTo(3);
  assert.equal(log.takeCommitted(), { from: 3, to: 3 });
});

test.run();
