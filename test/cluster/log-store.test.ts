// DurableLog: the node's in-memory log in front of its store, its compaction contract, and how it
// starts from a snapshot (keeping the log around it, or replacing it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableLog, LogStartError } from '../../apps/cluster/log-store.ts';
import { openMemory } from '../../runtime/storage/memory.ts';
import { openWal } from '../../runtime/storage/wal.ts';
import type { Entry } from '../../protocols/raft/index.ts';

function entries(from: number, count: number, term: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: from + i, term, kind: 0, data: new Uint8Array([from + i]) }) as Entry);
}

function openLog(compactable: boolean): DurableLog {
  const store = openMemory({ keepEntries: false });
  const log = new DurableLog(store, store.load(), null, compactable);
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
  assert.is(log.term(11), -1, 'a compacted term is unknown');
  assert.throws(() => log.entries(12, 14), /entry 12 was compacted away/);
  assert.equal(log.entries(13, 15).map((e) => [e.index, e.term, e.data[0]]), [[13, 2, 13], [14, 2, 14]]);
  assert.throws(() => log.write(entries(12, 1, 3), null), /compacted away/, 'nothing may rewrite a compacted entry');
  log.compactThrough(5); // behind the point: nothing happens
  assert.is(log.firstIndex(), 13);
  assert.throws(() => log.compactThrough(21), /the log ends at 20/);
  log.write(entries(21, 2, 3), null);
  assert.is(log.lastIndex(), 22);
});

test('a log without a snapshot (and not compactable) refuses to drop entries', () => {
  const log = openLog(false);
  assert.throws(() => log.compactThrough(5), /snapshot covers only through 0/);
  assert.is(log.firstIndex(), 1);
  log.setSnapshot({ index: 8, term: 1, voters: [1] });
  assert.throws(() => log.compactThrough(9), /covers only through 8/);
  log.compactThrough(8, 4);
  assert.is(log.firstIndex(), 9);
  assert.is(log.snapshot().index, 8);
  assert.throws(() => log.setSnapshot({ index: 12, term: 1, voters: [1] }), /does not match the log/, 'entry 12 is of term 2');
});

function walDir(): string {
  return mkdtempSync(join(tmpdir(), 'concur-log-'));
}

test('start from a snapshot the log holds: the entries around it stay; memory and disk cut separately', () => {
  const dir = walDir();
  try {
    let store = openWal({ dir });
    let log = new DurableLog(store, store.load());
    log.write([...entries(1, 10, 1), ...entries(11, 10, 2)], { term: 2, vote: 1, commit: 18 });
    log.sync();
    log.setSnapshot({ index: 15, term: 2, voters: [1, 2, 3] });
    log.compactThrough(12, { index: 5, term: 1 });
    assert.is(log.firstIndex(), 13);
    log.close();
    store = openWal({ dir });
    const recovered = store.load();
    assert.is(recovered.compactedIndex, 5, 'the store kept more than memory');
    log = new DurableLog(store, recovered, { index: 15, term: 2, voters: [1, 2, 3] });
    assert.is(log.firstIndex(), 6, 'everything the store kept is back in memory');
    assert.is(log.lastIndex(), 20);
    assert.is(log.snapshot().index, 15);
    assert.is(log.initialState().commit, 18);
    log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start from a snapshot the log does not hold (installed before a crash): the snapshot replaces the log', () => {
  const dir = walDir();
  try {
    let store = openWal({ dir });
    let log = new DurableLog(store, store.load());
    log.write(entries(1, 5, 1), { term: 3, vote: 1, commit: 3 });
    log.sync();
    log.close();
    store = openWal({ dir });
    log = new DurableLog(store, store.load(), { index: 40, term: 3, voters: [1] });
    assert.is(log.firstIndex(), 41);
    assert.is(log.lastIndex(), 40);
    assert.is(log.term(40), 3);
    assert.is(log.initialState().commit, 40, 'the snapshot is committed');
    log.write(entries(41, 1, 3), null);
    log.close();
    store = openWal({ dir });
    const r = store.load();
    assert.equal([r.compactedIndex, r.compactedTerm, r.entries.map((e) => e.index)], [40, 3, [41]], 'the reset was made durable');
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a log compacted past the snapshot it is given, or compacted with no snapshot, cannot start', () => {
  const dir = walDir();
  try {
    let store = openWal({ dir });
    let log = new DurableLog(store, store.load());
    log.write(entries(1, 20, 1), { term: 1, vote: 1, commit: 20 });
    log.setSnapshot({ index: 15, term: 1, voters: [1] });
    log.compactThrough(12);
    log.close();
    store = openWal({ dir });
    const recovered = store.load();
    assert.throws(() => new DurableLog(store, recovered, { index: 10, term: 1, voters: [1] }), (e: unknown) => e instanceof LogStartError && /entries 11..12 are gone/.test((e as Error).message));
    assert.throws(() => new DurableLog(store, recovered, null), /no snapshot covers it/);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('installSnapshot replaces memory and the store, durable at the next sync', () => {
  const log = openLog(false);
  log.installSnapshot({ index: 50, term: 4, voters: [1] });
  assert.is(log.firstIndex(), 51);
  assert.is(log.lastIndex(), 50);
  assert.is(log.term(50), 4);
  assert.is(log.term(20), -1);
  assert.is(log.initialState().commit, 50);
  assert.is(log.snapshot().index, 50);
});

test.run();
