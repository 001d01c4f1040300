import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HistoryRecorder, formatHistory, parseHistory, readHistory, writeHistory } from '../../apps/chaos/history.ts';
import { checkHistory } from '../../apps/chaos/checker.ts';

function fakeClock(): () => number {
  let t = 0;
  return () => (t += 1.5);
}

test('the recorder records invocations, completions and their times', () => {
  const rec = new HistoryRecorder({ nowMs: fakeClock() });
  const p = rec.invoke(1, 'put', 'k', { value: 'a' });
  const g = rec.invoke('c2', 'get', 'k');
  const c = rec.invoke(3, 'cas', 'k', { expect: null, value: 'b' });
  const d = rec.invoke(1, 'delete', 'k');
  p.ok(null);
  g.ok('a');
  c.fail();
  d.unknown();
  const still = rec.invoke(4, 'put', 'k', { value: 'z' });
  assert.is(rec.pendingCount, 1);
  assert.equal(rec.ops(), [
    { client: 1, op: 'put', key: 'k', value: 'a', invoke: 1.5, complete: 7.5, status: 'ok', result: null },
    { client: 'c2', op: 'get', key: 'k', value: null, invoke: 3, complete: 9, status: 'ok', result: 'a' },
    { client: 3, op: 'cas', key: 'k', value: 'b', expect: null, invoke: 4.5, complete: 10.5, status: 'fail', result: null },
    { client: 1, op: 'delete', key: 'k', value: null, invoke: 6, complete: null, status: 'unknown', result: null },
    { client: 4, op: 'put', key: 'k', value: 'z', invoke: 12, complete: null, status: 'unknown', result: null },
  ]);
  still.ok(null);
  assert.is(rec.pendingCount, 0);
  assert.throws(() => p.fail(), /completed twice/);
});

test('the recorder refuses bad calls where they are made', () => {
  const rec = new HistoryRecorder();
  assert.throws(() => rec.invoke(1, 'put', 'k', {} as { value: string }), /field "value" must be the string written by put/);
  assert.throws(() => rec.invoke(1, 'cas', 'k', { value: 'a' } as { value: string; expect: null }), /field "expect"/);
  const c = rec.invoke(1, 'cas', 'k', { value: 'a', expect: 'b' });
  assert.throws(() => c.ok('yes' as unknown as boolean), /"result" must be true or false/);
  const g = rec.invoke(1, 'get', 'k');
  assert.throws(() => g.ok(7 as unknown as string), /"result" must be the value read/);
  assert.ok(performance.now() >= rec.ops()[0]!.invoke, 'default clock is performance.now()');
});

test('JSON lines round trip through a file, and a recorded history checks', async () => {
  const rec = new HistoryRecorder();
  const w = rec.invoke(1, 'put', 'k', { value: 'a' });
  w.ok(null);
  const r = rec.invoke(2, 'get', 'k');
  r.ok('a');
  rec.invoke(3, 'cas', 'j', { value: 'x', expect: null }).ok(true);
  const ops = rec.ops();
  const text = formatHistory(ops);
  assert.is(text.split('\n').length, 4, 'one line per op, newline-terminated');
  assert.match(text.split('\n')[2]!, /^\{"client":3,"op":"cas","key":"j","value":"x","expect":null,"invoke":[\d.]+,"complete":[\d.]+,"status":"ok","result":true\}$/);
  const dir = await mkdtemp(join(tmpdir(), 'concur-history-'));
  try {
    const path = join(dir, 'h.jsonl');
    await writeHistory(path, ops);
    assert.equal(await readHistory(path), ops);
    assert.is((await checkHistory(await readHistory(path))).linearizable, true);
    await writeFile(path, `${text}{"client":1}\n`);
    try {
      await readHistory(path);
      assert.unreachable('a malformed line must be refused');
    } catch (e) {
      assert.match((e as Error).message, new RegExp(`${path} line 4: field "op"`));
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('malformed lines are refused with the line number and the field', () => {
  const good = '{"client":1,"op":"put","key":"k","value":"a","invoke":1,"complete":2,"status":"ok","result":null}';
  const bad = (line: string, pattern: RegExp) => assert.throws(() => parseHistory(`${good}\n\n${line}\n`), (e: Error) => /^history line 3: /.test(e.message) && pattern.test(e.message));
  assert.equal(parseHistory(`${good}\n\n`).length, 1, 'blank lines are skipped');
  bad('{"client":1,', /not valid JSON/);
  bad('[1,2]', /must be a JSON object/);
  bad(good.replace('"client":1', '"client":true'), /field "client" must be a string or a number/);
  bad(good.replace('"put"', '"inc"'), /field "op" must be one of put, get, delete, cas, got "inc"/);
  bad(good.replace('"key":"k"', '"key":5'), /field "key"/);
  bad(good.replace('"value":"a"', '"value":null'), /field "value" must be the string written by put/);
  bad(good.replace('"op":"put"', '"op":"get"'), /field "value" must be null for get/);
  bad(good.replace('"value":"a"', '"value":"a","expect":"b"'), /field "expect" is only for cas/);
  bad(good.replace('"op":"put"', '"op":"cas"'), /field "expect" must be a string or null/);
  bad(good.replace('"invoke":1', '"invoke":"1"'), /field "invoke" must be a finite number/);
  bad(good.replace('"complete":2', '"complete":0.5'), /field "complete" \(0.5\) is before "invoke" \(1\)/);
  bad(good.replace('"complete":2', '"complete":null'), /field "complete" must be a finite number of ms when status is ok/);
  bad(good.replace('"status":"ok"', '"status":"unknown"'), /field "complete" must be null when status is unknown/);
  bad(good.replace('"status":"ok"', '"status":"maybe"'), /field "status" must be one of ok, fail, unknown/);
  bad(good.replace('"result":null', '"result":"a"'), /field "result" must be null for put/);
  bad(good.replace('"op":"put","key":"k","value":"a"', '"op":"cas","key":"k","value":"a","expect":null').replace('"result":null', '"result":"yes"'), /field "result" must be true or false for cas/);
  bad(good.replace('"result":null', '"result":null,"extra":1'), /field "extra" is not part of the format/);
  bad(good.replace('"client":1,', ''), /field "client" must be a string or a number, got nothing/);
});

test.run();
