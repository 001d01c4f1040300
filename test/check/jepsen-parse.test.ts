import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HistoryError } from '../../apps/chaos/history.ts';
import { jepsenRegisterKey, parseEdnValue, parseJepsenHistory } from '../../apps/check/jepsen.ts';
import { detectFormat, parseRecordedHistory } from '../../apps/check/load.ts';

const log = (...lines: string[]) => lines.map((l) => `INFO  jepsen.util - ${l.replace(/ /g, '\t')}`).join('\n');

function throwsHistory(fn: () => unknown, pattern: RegExp, why: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, HistoryError, why);
    assert.match((e as Error).message, pattern, why);
    return;
  }
  assert.unreachable(`${why}: no error`);
}

test('EDN values: nil, scalars kept as text, vectors, strings', () => {
  assert.equal(parseEdnValue('nil'), null);
  assert.equal(parseEdnValue('3'), '3');
  assert.equal(parseEdnValue('[1 2]'), ['1', '2']);
  assert.equal(parseEdnValue('[0 [nil 4]]'), ['0', [null, '4']]);
  assert.equal(parseEdnValue('"a b"'), 'a b');
  assert.equal(parseEdnValue(':timed-out'), ':timed-out');
  assert.throws(() => parseEdnValue('[1 2'), /not closed/);
  assert.throws(() => parseEdnValue('1 2'), /after the value/);
  assert.throws(() => parseEdnValue('{:a 1}'), /maps/);
});

test('ok, fail and info map to ok, fail and unknown; line numbers are the times', () => {
  const ops = parseJepsenHistory(
    log(
      '0 :invoke :read nil',
      '1 :invoke :write 3',
      '0 :ok :read nil',
      '1 :ok :write 3',
      '2 :invoke :cas [3 4]',
      '3 :invoke :cas [1 2]',
      '2 :ok :cas [3 4]',
      '3 :fail :cas [1 2]',
      '4 :invoke :write 5',
      '4 :info :write :timed-out',
      '0 :invoke :read nil',
      '0 :ok :read 4',
    ),
  );
  assert.equal(ops, [
    { client: 0, key: jepsenRegisterKey, invoke: 1, complete: 3, status: 'ok', result: null, op: 'get', value: null },
    { client: 1, key: jepsenRegisterKey, invoke: 2, complete: 4, status: 'ok', result: null, op: 'put', value: '3' },
    { client: 2, key: jepsenRegisterKey, invoke: 5, complete: 7, status: 'ok', result: true, op: 'cas', value: '4', expect: '3' },
    { client: 3, key: jepsenRegisterKey, invoke: 6, complete: 8, status: 'fail', result: null, op: 'cas', value: '2', expect: '1' },
    { client: 4, key: jepsenRegisterKey, invoke: 9, complete: null, status: 'unknown', result: null, op: 'put', value: '5' },
    { client: 0, key: jepsenRegisterKey, invoke: 11, complete: 12, status: 'ok', result: '4', op: 'get', value: null },
  ]);
});

test('an op never completed is unknown; a timed-out read fails; nemesis and other loggers are skipped', () => {
  const text = [
    'INFO  jepsen.core - Running test jepsen.etcd',
    'INFO  jepsen.util - :nemesis\t:info\t:start\tnil',
    'INFO  jepsen.util - 0\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 0\t:fail\t:read\t:timed-out',
    'INFO  jepsen.util - 1\t:invoke\t:write\t1',
    '',
  ].join('\n');
  const ops = parseJepsenHistory(text);
  assert.is(ops.length, 2);
  assert.is(ops[0]!.status, 'fail');
  assert.is(ops[0]!.complete, 4);
  assert.equal([ops[1]!.status, ops[1]!.complete, ops[1]!.invoke], ['unknown', null, 5]);
});

test('history.txt lines (no log prefix) and independent [key value] ops, one key per tuple key', () => {
  const ops = parseJepsenHistory(['0\t:invoke\t:write\t[a 1]', '1\t:invoke\t:read\t[b nil]', '0\t:ok\t:write\t[a 1]', '1\t:ok\t:read\t[b nil]', '2\t:invoke\t:cas\t[a [1 2]]', '2\t:ok\t:cas\t[a [1 2]]'].join('\n'));
  assert.equal(
    ops.map((o) => [o.key, o.op, o.value, o.expect, o.result]),
    [
      ['a', 'put', '1', undefined, null],
      ['b', 'get', null, undefined, null],
      ['a', 'cas', '2', '1', true],
    ],
  );
});

test('malformed input: each error names the line and what is wrong', () => {
  throwsHistory(() => parseJepsenHistory(log('0 :invoke :read nil', '0 :ok :read [1'), 'h.log'), /^h\.log line 2: cannot read the value "\[1": a vector "\[" is not closed/, 'unclosed vector');
  throwsHistory(() => parseJepsenHistory('0 :invoke :read nil\nhello there\n', 'h.log'), /^h\.log line 2: not a Jepsen op line/, 'a stray line');
  throwsHistory(() => parseJepsenHistory('0 :invoke :read\n', 'h.log'), /line 1: cannot read the value "": a value is missing/, 'a value missing');
  throwsHistory(() => parseJepsenHistory('0 :invoke :append [1 2]\n', 'h.log'), /line 1: :append is not a cas-register op/, 'another workload');
  throwsHistory(() => parseJepsenHistory('0 :ok :read 3\n', 'h.log'), /line 1: process 0 completes :read \(:ok\) but has no open invocation/, 'completion without invocation');
  throwsHistory(() => parseJepsenHistory('0 :invoke :read nil\n0 :invoke :write 1\n', 'h.log'), /line 2: process 0 invokes :write while its :read from line 1 has not completed/, 'two ops at once');
  throwsHistory(() => parseJepsenHistory('0 :invoke :read nil\n0 :ok :write 1\n', 'h.log'), /line 2: process 0 completes :write but invoked :read on line 1/, 'completion of another op');
  throwsHistory(() => parseJepsenHistory('0 :invoke :write 4\n0 :ok :write 3\n', 'h.log'), /line 2: :ok :write 3 does not match its invocation :write 4 on line 1/, 'echo mismatch');
  throwsHistory(() => parseJepsenHistory('0 :invoke :cas [1]\n', 'h.log'), /line 1: a cas is invoked with \[expected new\], got \[1\]/, 'cas arity');
  throwsHistory(() => parseJepsenHistory('0 :invoke :read 3\n', 'h.log'), /line 1: a read is invoked with nil, got 3/, 'read with a value');
  throwsHistory(() => parseJepsenHistory('0 :invoke :write 1\n1 :invoke :write [a 1]\n', 'h.log'), /line 2: this independent \[key value\] op follows single-register ops \(line 1\)/, 'mixed forms');
});

test('format detection: JSON object → concur, op line → jepsen (after log set-up lines), else an error that says what to pass', () => {
  assert.is(detectFormat('\n{"client":1}\n', 'f'), 'concur');
  assert.is(detectFormat('INFO  jepsen.core - starting\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n', 'f'), 'jepsen');
  assert.is(detectFormat('3 :ok :cas [1 2]', 'f'), 'jepsen');
  throwsHistory(() => detectFormat('read x = 1\n', 'f.txt'), /cannot tell the format of f\.txt: line 1 \("read x = 1"\) is neither .* pass --format concur or --format jepsen/, 'unknown format');
  throwsHistory(() => detectFormat('\n  \n', 'f.txt'), /f\.txt is empty/, 'empty file');
});

test('a detected format is named when its parse fails; a given one is trusted', () => {
  throwsHistory(() => parseRecordedHistory('{"client":1}\n', 'h.jsonl'), /h\.jsonl line 1: field "op" must be one of .*\(read as concur, the format detected; pass --format to choose\)/, 'detected concur, bad line');
  throwsHistory(() => parseRecordedHistory('0 :invoke :read nil\n', 'h.jsonl', 'concur'), /h\.jsonl line 1: not valid JSON/, 'forced concur on a Jepsen line');
  throwsHistory(() => parseRecordedHistory('INFO  jepsen.core - nothing ran\n', 'h.log', 'jepsen'), /h\.log holds no operations to check \(read as jepsen\)/, 'no ops');
  const lockLine = JSON.stringify({ owner: 'c1', op: 'acquire', lock: 'l0', ttlMs: 500, waitMs: 0, token: null, invoke: 1, complete: 2, status: 'ok', result: null, index: 3 });
  throwsHistory(() => parseRecordedHistory(`${lockLine}\n`, 'locks.jsonl'), /locks\.jsonl is a lock history \(concur chaos --workload lock\); concur check reads KV histories/, 'a lock history');
  const h = parseRecordedHistory('0 :invoke :read nil\n0 :ok :read nil\n', 'h.log');
  assert.equal([h.format, h.detected, h.timeUnit, h.ops.length], ['jepsen', true, 'line', 1]);
});

test.run();
