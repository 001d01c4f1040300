// The Multi-Paxos node's durable record log (runtime/storage/paxos-log.ts): replay keeps the last
// record per slot (a re-acceptance of an early slot with a higher ballot never drops later
// slots' acceptances, as the Raft WAL's "an entry replaces the suffix" would), a torn tail is cut
// and reported, damage followed by valid records refuses to open and changes nothing; fsync per
// policy; files that are not ours are refused. Also over a SimFs: a crash keeps only what was synced.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PaxosLog, paxosLogFileName, type DurableAccepted, type DurableLearned, type PaxosLogRecovered } from '../../runtime/storage/paxos-log.ts';
import { StorageError } from '../../runtime/storage/rules.ts';
import { SimFs } from '../../runtime/storage/sim-fs.ts';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(tmpdir(), 'concur-paxoslog-'));
  dirs.push(d);
  return d;
}
test.after.each(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const acc = (slot: number, ballot: number, v: string, kind = 0): DurableAccepted => ({ slot, ballot, value: { kind, data: bytes(v) } });
const lrn = (slot: number, v: string, kind = 0): DurableLearned => ({ slot, value: { kind, data: bytes(v) } });

function view(r: PaxosLogRecovered): { promised: number; commit: number; accepted: Record<number, string>; learned: Record<number, string> } {
  const accepted: Record<number, string> = {};
  for (const a of r.accepted()) accepted[a.slot] = `${a.ballot}:${a.value.kind}:${text(a.value.data)}`;
  const learned: Record<number, string> = {};
  for (const c of r.learned()) learned[c.slot] = `${c.value.kind}:${text(c.value.data)}`;
  const hs = r.initialState();
  return { promised: hs.promised, commit: hs.commit, accepted, learned };
}

function throwsCode(f: () => unknown, code: string, match?: RegExp): StorageError {
  try {
    f();
  } catch (e) {
    assert.instance(e, StorageError);
    assert.is((e as StorageError).code, code, (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return e as StorageError;
  }
  throw new assert.Assertion({ message: `expected StorageError ${code}`, operator: 'throws' } as never);
}

/** Three synced batches; returns the file's size after each. */
function writeThree(dir: string): number[] {
  const log = PaxosLog.open({ dir });
  log.load();
  const file = path.join(dir, paxosLogFileName);
  const ends: number[] = [];
  log.append({ promised: 129, commit: 0 }, [acc(1, 129, 'a'), acc(2, 129, 'b'), acc(3, 129, 'c')], []);
  log.sync();
  ends.push(fs.statSync(file).size);
  // A new leader re-accepts slot 1 with a higher ballot while slots 2 and 3 stay accepted.
  log.append({ promised: 258, commit: 0 }, [acc(1, 258, 'A')], []);
  log.sync();
  ends.push(fs.statSync(file).size);
  log.append({ promised: 258, commit: 2 }, [], [lrn(1, 'A'), lrn(2, 'b'), lrn(4, '', 1)]);
  log.sync();
  ends.push(fs.statSync(file).size);
  log.close();
  return ends;
}

test('replay: the last record per slot wins, later slots survive an earlier slot re-accepted, promise and commit come back', () => {
  const dir = tmpDir();
  writeThree(dir);
  const log = PaxosLog.open({ dir });
  const r = log.load();
  assert.equal(view(r), {
    promised: 258,
    commit: 2,
    accepted: { 1: '258:0:A', 2: '129:0:b', 3: '129:0:c' },
    learned: { 1: '0:A', 2: '0:b', 4: '1:' },
  });
  assert.is(r.report.dropped, null);
  assert.is(r.report.recordsReplayed, 10);
  assert.match(r.report.summary, /promised ballot 258, 3 slots accepted, 3 learned/);
  // Appending goes on where replay ended.
  log.append(null, [acc(5, 258, 'e')], []);
  log.sync();
  log.close();
  const again = PaxosLog.open({ dir }).load();
  assert.is(view(again).accepted[5], '258:0:e');
  throwsCode(() => log.append(null, [], []), 'CLOSED');
});

test('a new directory gets an empty log; load hands the state over once', () => {
  const dir = path.join(tmpDir(), 'node-1');
  const log = PaxosLog.open({ dir });
  const r = log.load();
  assert.equal(view(r), { promised: 0, commit: 0, accepted: {}, learned: {} });
  throwsCode(() => log.load(), 'ALREADY_LOADED');
  log.close();
  assert.is(fs.statSync(path.join(dir, paxosLogFileName)).size, 16, 'just the header');
});

test('a torn tail (a record cut short, or zeros) is cut, reported, and the log appends after it', () => {
  for (const shape of ['cut', 'zeros', 'garbage-last'] as const) {
    const dir = tmpDir();
    const ends = writeThree(dir);
    const file = path.join(dir, paxosLogFileName);
    const full = fs.readFileSync(file);
    if (shape === 'cut') fs.writeFileSync(file, full.subarray(0, ends[2]! - 5));
    else if (shape === 'zeros') fs.writeFileSync(file, Buffer.concat([full, Buffer.alloc(37)]));
    else {
      // The very last record damaged, nothing valid after it: a write that went wrong as it was cut.
      const b = Buffer.from(full);
      b[ends[2]! - 2] ^= 0xff;
      fs.writeFileSync(file, b);
    }
    const log = PaxosLog.open({ dir });
    const r = log.load();
    assert.ok(r.report.dropped !== null, `${shape}: a tail was dropped`);
    const v = view(r);
    if (shape === 'zeros') {
      assert.is(r.report.dropped!.reason, 'torn');
      assert.is(r.report.dropped!.offset, ends[2]);
      assert.is(v.commit, 2, 'nothing valid was lost');
    } else {
      // The third batch lost its last record (learned slot 4): the records before it stand.
      assert.is(v.accepted[1], '258:0:A');
      assert.is(v.learned[4], undefined);
      assert.is(v.learned[2], '0:b');
    }
    assert.match(r.report.summary, /cut a (torn|damaged) tail/);
    assert.is(fs.statSync(file).size, r.report.dropped!.offset, 'the file was cut at the tear');
    log.append(null, [acc(9, 258, 'z')], []);
    log.sync();
    log.close();
    const again = PaxosLog.open({ dir }).load();
    assert.is(again.report.dropped, null, `${shape}: clean after the cut`);
    assert.is(view(again).accepted[9], '258:0:z');
  }
});

test('damage followed by valid records refuses to start, names file and offset, and changes nothing', () => {
  for (const where of ['body', 'length'] as const) {
    const dir = tmpDir();
    const ends = writeThree(dir);
    const file = path.join(dir, paxosLogFileName);
    const b = Buffer.from(fs.readFileSync(file));
    // A byte in the second batch's first record (its body, or its length field).
    const at = where === 'body' ? ends[0]! + 14 : ends[0]! + 5;
    b[at] ^= 0x5a;
    fs.writeFileSync(file, b);
    const err = throwsCode(() => PaxosLog.open({ dir }), 'CORRUPT');
    assert.match(err.message, new RegExp(`${paxosLogFileName.replace('.', '\\.')} is damaged at byte offset ${ends[0]}`));
    assert.match(err.message, /not a torn write/);
    assert.match(err.message, /move .* aside/);
    assert.equal(fs.readFileSync(file), b, `${where}: the file is untouched`);
  }
});

test('a record that passes its checksum but makes no sense is refused; so are files that are not ours', () => {
  // A promise that goes back: hand-built, as the writer never makes one.
  const dir = tmpDir();
  const log = PaxosLog.open({ dir });
  log.load();
  log.append({ promised: 300, commit: 0 }, [], []);
  log.append({ promised: 200, commit: 0 }, [], []);
  log.sync();
  log.close();
  throwsCode(() => PaxosLog.open({ dir }), 'CORRUPT', /promises never go back/);

  const other = tmpDir();
  fs.writeFileSync(path.join(other, paxosLogFileName), 'hello, this is not a log at all');
  throwsCode(() => PaxosLog.open({ dir: other }), 'BAD_FORMAT', /not a concur Paxos log/);

  const header = tmpDir();
  writeThree(header);
  const file = path.join(header, paxosLogFileName);
  const b = Buffer.from(fs.readFileSync(file));
  b[9] ^= 1;
  fs.writeFileSync(file, b);
  throwsCode(() => PaxosLog.open({ dir: header }), 'CORRUPT', /damaged header/);
  throwsCode(() => PaxosLog.open({ dir: tmpDir(), fsync: 'sometimes' as never }), 'BAD_OPTION');
});

test('fsync policy: batch syncs per sync(), always per append, never not at all; flush writes without a sync', () => {
  for (const [policy, fsyncs] of [['batch', 2], ['always', 3], ['never', 0]] as const) {
    const dir = tmpDir();
    const log = PaxosLog.open({ dir, fsync: policy });
    log.load();
    log.append({ promised: 1, commit: 0 }, [acc(1, 1, 'x')], []);
    log.sync();
    log.append(null, [], [lrn(1, 'x')]);
    log.flush();
    log.append(null, [acc(2, 1, 'y')], []);
    log.sync();
    assert.is(log.stats().fsyncs, fsyncs, policy);
    assert.is(log.stats().records, 4);
    log.close();
  }
});

test('on a simulated disk a crash keeps exactly what was synced; a write cut short by the crash is cut at restart', () => {
  let t = 0;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const simfs = new SimFs({ clock, syncDelayMs: () => 1 });
  const dir = '/node-1';
  const first = PaxosLog.open({ dir, fs: simfs });
  first.load();
  first.append({ promised: 129, commit: 0 }, [acc(1, 129, 'kept')], []);
  first.sync();
  t += 1;
  first.append(null, [acc(2, 129, 'not synced')], []);
  first.flush(); // written, never synced
  t += 1;
  simfs.crash(t);
  let r = PaxosLog.open({ dir, fs: simfs }).load();
  assert.is(view(r).accepted[1], '129:0:kept');
  assert.is(view(r).accepted[2], undefined, 'an unsynced acceptance did not survive the crash');
  assert.is(view(r).promised, 129);
  assert.is(r.report.dropped, null);

  // Again, and this time the crash keeps half of the unsynced write: a torn record, cut at restart.
  const dir2 = '/node-2';
  const log = PaxosLog.open({ dir: dir2, fs: simfs });
  log.load();
  log.append({ promised: 129, commit: 0 }, [acc(1, 129, 'kept')], []);
  log.sync();
  t += 1;
  log.append(null, [acc(2, 129, 'a long value that will be torn in half')], []);
  log.flush();
  t += 1;
  const { tornFiles } = simfs.crash(t, { rng: { next: () => 0, int: (lo: number, hi: number) => Math.floor((lo + hi) / 2) }, chance: 1 });
  assert.equal(tornFiles, [`${dir2}/${paxosLogFileName}`]);
  r = PaxosLog.open({ dir: dir2, fs: simfs }).load();
  assert.is(r.report.dropped?.reason, 'torn');
  assert.is(view(r).accepted[1], '129:0:kept');
  assert.is(view(r).accepted[2], undefined);
});

test('compaction rewrites the file past a snapshot: a BASE record, the promise, later slots; appends go on; older records below it are ignored', () => {
  const dir = tmpDir();
  writeThree(dir);
  const log = PaxosLog.open({ dir });
  const before = log.load();
  assert.is(before.compactedThrough, 0);
  const file = path.join(dir, paxosLogFileName);
  const sizeBefore = fs.statSync(file).size;
  // Slots 1 and 2 live in a snapshot now; the caller hands over its whole state (slots at or
  // below the point are left out by the log itself).
  log.compact(2, { promised: 258, commit: 2 }, [acc(1, 258, 'A'), acc(2, 129, 'b'), acc(3, 129, 'c')], [lrn(1, 'A'), lrn(2, 'b'), lrn(4, '', 1)]);
  assert.is(log.compactedThrough, 2);
  assert.ok(fs.statSync(file).size < sizeBefore, 'the file shrank');
  assert.is(log.stats().compactions, 1);
  log.append(null, [acc(5, 258, 'e')], [lrn(3, 'c')]);
  log.sync();
  throwsCode(() => log.compact(1, { promised: 258, commit: 2 }, [], []), 'BAD_ENTRY', /goes back past slot 2/);
  log.close();
  assert.not.ok(fs.existsSync(`${file}.tmp`), 'no temporary file left behind');
  const r = PaxosLog.open({ dir }).load();
  assert.is(r.compactedThrough, 2);
  assert.is(r.report.compactedThrough, 2);
  assert.match(r.report.summary, /compacted through slot 2/);
  assert.equal(view(r), { promised: 258, commit: 2, accepted: { 3: '129:0:c', 5: '258:0:e' }, learned: { 3: '0:c', 4: '1:' } });

  // A record of a compacted slot written after the BASE (a late acceptance) is ignored at replay.
  const again = PaxosLog.open({ dir });
  again.load();
  again.append(null, [acc(1, 999, 'late')], [lrn(2, 'late')]);
  again.close();
  assert.equal(view(PaxosLog.open({ dir }).load()).accepted[1], undefined);
});

test('a crash right after compaction keeps the compacted file whole (written aside, synced, renamed, directory synced)', () => {
  let t = 0;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const simfs = new SimFs({ clock, syncDelayMs: () => 1 });
  const dir = '/node-1';
  const log = PaxosLog.open({ dir, fs: simfs });
  log.load();
  log.append({ promised: 129, commit: 3 }, [acc(1, 129, 'a'), acc(2, 129, 'b'), acc(3, 129, 'c')], [lrn(1, 'a'), lrn(2, 'b'), lrn(3, 'c')]);
  log.sync();
  t += 1;
  log.compact(2, { promised: 129, commit: 3 }, [acc(3, 129, 'c')], [lrn(3, 'c')]);
  t += 1;
  simfs.crash(t);
  const r = PaxosLog.open({ dir, fs: simfs }).load();
  // The rename and the directory were synced: the compacted file survives the crash whole.
  assert.is(r.compactedThrough, 2);
  assert.equal(view(r), { promised: 129, commit: 3, accepted: { 3: '129:0:c' }, learned: { 3: '0:c' } });
});

test.run();
