// The behaviour every Storage must show, written once and run against the WAL and the memory
// store (see wal-behaviour.test.ts, memory-behaviour.test.ts). Not a test file by itself.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { FsyncPolicy, Storage } from '../../runtime/storage/types.ts';
import { cleanupTmp, makeEntries, plain, throwsCode } from './helpers.ts';

export type Crashable = Storage & { crash(): void };

/** A place a store lives (a directory, a memory disk) that can be opened again and again. */
export interface Place {
  open(options?: { fsync?: FsyncPolicy }): Crashable;
  /** Opens with options the store must refuse. */
  openRaw(options: Record<string, unknown>): Crashable;
}

export function behaviourSuite(name: string, newPlace: () => Place): ReturnType<typeof suite> {
  const t = suite(`${name} behaviour`);
  t.after.each(() => cleanupTmp());

  t('a new store is empty and clean', () => {
    const s = newPlace().open();
    const r = s.load();
    assert.equal(r.entries, []);
    assert.equal(r.hardState, { term: 0, vote: 0, commit: 0 });
    assert.is(r.report.dropped, null);
    assert.match(r.report.summary, /clean/);
    assert.is(s.lastIndex, 0);
    assert.is(s.firstIndex, 1);
    s.close();
  });

  t('hard state and entries round-trip across close and reopen', () => {
    const place = newPlace();
    const s = place.open();
    s.load();
    const sizes = [0, 1, 7, 64, 1000, 5000];
    const written = [];
    for (let i = 0; i < 60; i++) {
      const e = makeEntries(i + 1, 1, 1 + Math.floor(i / 20), sizes[i % sizes.length], i % 3)[0]!;
      written.push(e);
    }
    s.append(written.slice(0, 25));
    s.append(written.slice(25));
    const extra = new Uint8Array([0, 255, 1, 254]);
    s.setHardState({ term: 3, vote: 2, commit: 57, extra });
    extra[0] = 99; // the store keeps its own copy
    s.sync();
    assert.is(s.lastIndex, 60);
    s.close();

    const again = place.open();
    const r = again.load();
    assert.equal(plain(r.entries), plain(written));
    assert.equal({ ...r.hardState, extra: Array.from(r.hardState.extra!) }, { term: 3, vote: 2, commit: 57, extra: [0, 255, 1, 254] });
    assert.is(again.lastIndex, 60);
    assert.is(r.report.dropped, null);
    assert.is(r.report.entriesRecovered, 60);
    // and it keeps going after a reopen
    again.append(makeEntries(61, 3, 3));
    again.close();
    const third = place.open();
    assert.is(third.load().entries.length, 63);
    third.close();
  });

  t('an append at or below the last index truncates the conflicting suffix, durably', () => {
    const place = newPlace();
    const s = place.open();
    s.load();
    s.append(makeEntries(1, 10, 1));
    s.sync();
    s.append(makeEntries(6, 3, 2));
    assert.is(s.lastIndex, 8);
    s.sync();
    s.close();
    const r = place.open().load();
    assert.equal(plain(r.entries), plain([...makeEntries(1, 5, 1), ...makeEntries(6, 3, 2)]));
  });

  t('a truncation down to the first entry empties the log and the log goes on from there', () => {
    const place = newPlace();
    const s = place.open();
    s.load();
    s.append(makeEntries(1, 4, 1));
    s.append(makeEntries(1, 2, 5));
    s.close();
    const s2 = place.open();
    assert.equal(plain(s2.load().entries), plain(makeEntries(1, 2, 5)));
    assert.is(s2.lastIndex, 2);
    s2.close();
  });

  t('a gap is refused with the indices named, and nothing changes', () => {
    const place = newPlace();
    const s = place.open();
    s.load();
    throwsCode(() => s.append(makeEntries(2, 1, 1)), 'GAP', /ends at index 0.*index 2/);
    s.append(makeEntries(1, 10, 1));
    throwsCode(() => s.append(makeEntries(12, 2, 1)), 'GAP', /ends at index 10 .*first new entry has index 12.*from index 11/);
    throwsCode(() => s.append([...makeEntries(11, 1, 1), ...makeEntries(13, 1, 1)]), 'GAP', /contiguous/);
    assert.is(s.lastIndex, 10);
    s.close();
    assert.is(place.open().load().entries.length, 10);
  });

  t('malformed entries and hard states are refused before anything is written', () => {
    const s = newPlace().open();
    s.load();
    const good = makeEntries(1, 1, 1)[0]!;
    throwsCode(() => s.append([{ ...good, index: 0 }]), 'BAD_ENTRY', /index must be/);
    throwsCode(() => s.append([{ ...good, term: -1 }]), 'BAD_ENTRY', /term must be/);
    throwsCode(() => s.append([{ ...good, kind: 1.5 }]), 'BAD_ENTRY', /kind must be/);
    throwsCode(() => s.append([{ ...good, data: 'abc' as unknown as Uint8Array }]), 'BAD_ENTRY', /data must be a Uint8Array/);
    throwsCode(() => s.setHardState({ term: 1, vote: -2, commit: 0 }), 'BAD_HARD_STATE', /vote/);
    throwsCode(() => s.setHardState({ term: 2 ** 60, vote: 0, commit: 0 }), 'BAD_HARD_STATE', /term/);
    assert.is(s.lastIndex, 0);
    assert.equal(s.hardState, { term: 0, vote: 0, commit: 0 });
    s.close();
  });

  t('batch policy: a crash loses only what was not synced', () => {
    const place = newPlace();
    const s = place.open({ fsync: 'batch' });
    s.load();
    s.append(makeEntries(1, 5, 1));
    s.setHardState({ term: 1, vote: 1, commit: 3 });
    s.sync();
    s.append(makeEntries(6, 2, 1));
    s.setHardState({ term: 2, vote: 0, commit: 5 });
    s.crash();
    const r = place.open().load();
    assert.is(r.entries.length, 5);
    assert.equal(r.hardState, { term: 1, vote: 1, commit: 3 });
  });

  t('always policy: every call is durable without sync()', () => {
    const place = newPlace();
    const s = place.open({ fsync: 'always' });
    s.load();
    s.append(makeEntries(1, 3, 1));
    s.setHardState({ term: 4, vote: 2, commit: 1 });
    s.crash();
    const r = place.open().load();
    assert.is(r.entries.length, 3);
    assert.equal(r.hardState, { term: 4, vote: 2, commit: 1 });
  });

  t('fsync counts follow the policy: always per call, batch per sync, never none', () => {
    const counts: Record<string, number> = {};
    for (const fsync of ['always', 'batch', 'never'] as const) {
      const s = newPlace().open({ fsync });
      s.load();
      const before = s.stats().fsyncs;
      for (let b = 0; b < 5; b++) {
        s.append(makeEntries(b * 10 + 1, 10, 1));
        s.setHardState({ term: 1, vote: 1, commit: b * 10 + 10 });
        s.sync();
      }
      s.sync(); // nothing new: no fsync
      counts[fsync] = s.stats().fsyncs - before;
      s.close();
    }
    assert.equal(counts, { always: 10, batch: 5, never: 0 });
  });

  t('a bad fsync policy or an unknown option is refused, naming the choices', () => {
    const place = newPlace();
    throwsCode(() => place.openRaw({ fsync: 'sometimes' }), 'BAD_OPTION', /fsync must be one of always, batch, never, got "sometimes"/);
    throwsCode(() => place.openRaw({ fsnyc: 'batch' }), 'BAD_OPTION', /unknown .*option fsnyc/);
    for (const fsync of ['always', 'batch', 'never'] as const) {
      const s = place.open({ fsync });
      assert.is(s.policy, fsync);
      s.close();
    }
  });

  t('compaction moves the first index, refuses rewrites below it, and survives reopen', () => {
    const place = newPlace();
    const s = place.open();
    s.load();
    s.append(makeEntries(1, 10, 1));
    s.setHardState({ term: 1, vote: 3, commit: 10 });
    s.compact(4, 1);
    assert.is(s.firstIndex, 5);
    throwsCode(() => s.append(makeEntries(3, 1, 2)), 'COMPACTED', /compacted up to index 4/);
    throwsCode(() => s.compact(11, 1), 'BAD_ENTRY', /past the last index 10/);
    s.append(makeEntries(9, 1, 2)); // above the compaction point a conflict still truncates
    s.close();
    const again = place.open();
    const r = again.load();
    assert.equal(plain(r.entries), plain([...makeEntries(5, 4, 1), ...makeEntries(9, 1, 2)]));
    assert.is(again.firstIndex, 5);
    assert.is(again.lastIndex, 9);
    assert.equal(r.hardState, { term: 1, vote: 3, commit: 10 });
    again.close();
  });

  t('compaction records the term at its point, and reopen hands both back', () => {
    const place = newPlace();
    const s = place.open();
    const fresh = s.load();
    assert.is(fresh.compactedIndex, 0);
    assert.is(fresh.compactedTerm, 0);
    assert.is(s.compactedTerm, 0);
    s.append([...makeEntries(1, 5, 1), ...makeEntries(6, 5, 2)]);
    s.compact(7, 2);
    assert.is(s.compactedTerm, 2);
    s.compact(3, 1); // below the point: nothing to do
    assert.is(s.firstIndex, 8);
    assert.is(s.compactedTerm, 2);
    s.close();
    const again = place.open();
    const r = again.load();
    assert.is(r.compactedIndex, 7);
    assert.is(r.compactedTerm, 2);
    assert.is(again.compactedTerm, 2);
    assert.equal(plain(r.entries), plain(makeEntries(8, 3, 2)));
    again.close();
  });

  t('a compaction term that is malformed or not the entry\'s term is refused, and nothing changes', () => {
    const s = newPlace().open();
    s.load();
    s.append([...makeEntries(1, 5, 1), ...makeEntries(6, 5, 2)]);
    throwsCode(() => s.compact(7, 1), 'BAD_ENTRY', /compact\(7, 1\): the entry at index 7 has term 2, not 1; pass the term of the entry/);
    throwsCode(() => s.compact(3, -1), 'BAD_ENTRY', /compact\(3\): term must be a non-negative safe integer, got -1/);
    throwsCode(() => s.compact(3, 1.5), 'BAD_ENTRY', /term must be/);
    throwsCode(() => s.compact(0, 4), 'BAD_ENTRY', /index 0 has term 0, not 4/);
    assert.is(s.firstIndex, 1);
    assert.is(s.compactedTerm, 0);
    s.compact(5, 1);
    throwsCode(() => s.compact(5, 2), 'BAD_ENTRY', /index 5 has term 1, not 2/);
    s.append(makeEntries(8, 2, 3)); // a truncated suffix takes its terms with it
    throwsCode(() => s.compact(8, 2), 'BAD_ENTRY', /index 8 has term 3, not 2/);
    s.compact(8, 3);
    assert.is(s.compactedTerm, 3);
    s.close();
  });

  t('resetTo above, at and below the last index empties the log at that point; appends go on after it', () => {
    for (const [point, term] of [[20, 3], [10, 1], [6, 4]] as const) {
      const place = newPlace();
      const s = place.open();
      s.load();
      s.append(makeEntries(1, 10, 1));
      s.setHardState({ term: 2, vote: 1, commit: 4 });
      s.compact(2, 1);
      s.resetTo(point, term);
      const where = `resetTo(${point}, ${term})`;
      assert.is(s.lastIndex, point, where);
      assert.is(s.firstIndex, point + 1, where);
      assert.is(s.compactedTerm, term, where);
      assert.equal(s.hardState, { term: 2, vote: 1, commit: 4 }, `${where}: hard state is unchanged`);
      throwsCode(() => s.append(makeEntries(point, 1, term)), 'COMPACTED', new RegExp(`compacted up to index ${point}`));
      throwsCode(() => s.append(makeEntries(point + 2, 1, term)), 'GAP', new RegExp(`ends at index ${point} `));
      s.append(makeEntries(point + 1, 3, 5));
      assert.is(s.lastIndex, point + 3, where);
      s.close();
      const again = place.open();
      const r = again.load();
      assert.equal(plain(r.entries), plain(makeEntries(point + 1, 3, 5)), where);
      assert.is(r.compactedIndex, point, where);
      assert.is(r.compactedTerm, term, where);
      assert.equal(r.hardState, { term: 2, vote: 1, commit: 4 }, where);
      assert.is(again.firstIndex, point + 1, where);
      again.close();
    }
  });

  t('resetTo is durable only once synced: a crash before sync recovers the old log', () => {
    const place = newPlace();
    const s = place.open({ fsync: 'batch' });
    s.load();
    s.append(makeEntries(1, 5, 1));
    s.setHardState({ term: 1, vote: 2, commit: 3 });
    s.sync();
    s.resetTo(40, 3);
    s.crash();
    const old = place.open({ fsync: 'batch' });
    const r = old.load();
    assert.equal(plain(r.entries), plain(makeEntries(1, 5, 1)));
    assert.is(r.compactedIndex, 0);
    old.resetTo(40, 3);
    old.sync();
    old.crash();
    const reset = place.open();
    const r2 = reset.load();
    assert.equal(r2.entries, []);
    assert.is(r2.compactedIndex, 40);
    assert.is(r2.compactedTerm, 3);
    assert.is(reset.lastIndex, 40);
    assert.is(reset.firstIndex, 41);
    assert.equal(r2.hardState, { term: 1, vote: 2, commit: 3 });
    reset.close();
  });

  t('always policy: resetTo is durable at once', () => {
    const place = newPlace();
    const s = place.open({ fsync: 'always' });
    s.load();
    s.append(makeEntries(1, 5, 1));
    s.resetTo(3, 1);
    s.crash();
    const again = place.open();
    const r = again.load();
    assert.equal(r.entries, []);
    assert.is(again.lastIndex, 3);
    assert.is(r.compactedTerm, 1);
    again.close();
  });

  t('resetTo below the compaction point is refused as stale; a malformed point is refused', () => {
    const s = newPlace().open();
    s.load();
    s.append(makeEntries(1, 10, 2));
    s.compact(6, 2);
    throwsCode(() => s.resetTo(5, 2), 'COMPACTED', /resetTo\(5\) goes below the compaction point 6.*stale/);
    throwsCode(() => s.resetTo(6, 3), 'BAD_ENTRY', /compaction point 6 has term 2, not 3/);
    throwsCode(() => s.resetTo(-1, 0), 'BAD_ENTRY', /resetTo expects an index ≥ 0/);
    throwsCode(() => s.resetTo(8, -2), 'BAD_ENTRY', /resetTo\(8\): term must be/);
    assert.is(s.lastIndex, 10);
    assert.is(s.firstIndex, 7);
    s.resetTo(6, 2); // at the compaction point: drops the entries after it
    assert.is(s.lastIndex, 6);
    s.close();
  });

  t('load hands the log over once; a closed store refuses work', () => {
    const s = newPlace().open();
    s.load();
    throwsCode(() => s.load(), 'ALREADY_LOADED', /already called/);
    s.close();
    s.close(); // idempotent
    throwsCode(() => s.append(makeEntries(1, 1, 1)), 'CLOSED', /closed/);
    throwsCode(() => s.sync(), 'CLOSED');
  });

  t('the hardState getter reflects writes before they are synced', () => {
    const s = newPlace().open();
    s.load();
    s.setHardState({ term: 7, vote: 1, commit: 0 });
    assert.equal(s.hardState, { term: 7, vote: 1, commit: 0 });
    s.close();
  });

  return t;
}
