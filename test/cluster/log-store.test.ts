// DurableLog: the node's in-memory log in front of its store, and its compaction contract.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DurableLog } from '../../apps/cluster/log-store.ts';
import { openMemory } from '../../runtime/storage/memory.ts';
import type { Entry } from '../../protocols/raft/index.ts';

function entries(from: number, count: number, term: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: from + i, term, kind: 0, data: new Uint8Array([from + i]) }) as Entry);
}

function openLog(compactable: boolean): DurableLog {
  const store = openMemory({ keepEntries: false });
  const log = new DurableLog(store, store.load(), compactable);
  log.write([...entries(1, 10, 1), ...entries(11, 10, 2)], { term: 2, vote: 1, commit: 15 });
  log.sync();
  return log;
}

test('compactThrough keeps the term of the last dropped entry and refuses anything before it, loudly', () => {
  const log = openLog(true);
  log.compactThrough(12);
  assert.is(log.firstIndex(), 13);
  assert.is(log.term(12), 2, 'the consistency check of the next append still works');
  assert.is(log.term(13), 2);
  assert.is(log.term(0), 0);
  assert.throws(() => log.term(11), /entry 11 was compacted away \(the log in memory starts at 13\)/);
  assert.throws(() => log.entries(12, 14), /entry 12 was compacted away/);
  assert.equal(log.entries(13, 15).map((e) => [e.index, e.term, e.data[0]]), [[13, 2, 13], [14, 2, 14]]);
  assert.throws(() => log.write(entries(12, 1, 3), null), /compacted away/, 'nothing may rewrite a compacted entry');
  log.compactThrough(5); // behind the point: nothing happens
  assert.is(log.firstIndex(), 13);
  assert.throws(() => log.compactThrough(21), /the log ends at 20/);
  log.write(entries(21, 2, 3), null);
  assert.is(log.lastIndex(), 22);
});

test('a log that is not compactable refuses to drop entries', () => {
  const log = openLog(false);
  assert.throws(() => log.compactThrough(5), /not compactable/);
  assert.is(log.firstIndex(), 1);
});

test.run();
