import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatHistory } from '../../apps/chaos/history.ts';
import { renderCheckPage } from '../../apps/check/html.ts';
import { parseRecordedHistory } from '../../apps/check/load.ts';
import { checkRecorded, exitCodeFor, fileJson, fileText } from '../../apps/check/verdict.ts';
import { generateHistory, get, put } from '../chaos/generate.ts';

// concur's own JSON lines through `concur check`'s pieces: the text `concur chaos --history`
// writes (formatHistory), read back, judged, reported and drawn.

test('a linearizable history written as concur writes it reads back whole and checks linearizable', async () => {
  const ops = generateHistory({ seed: 11, clients: 6, opsPerClient: 60, keys: 3 });
  const h = parseRecordedHistory(formatHistory(ops), 'gen.jsonl');
  assert.equal(h.ops, ops, 'every field survives the round trip');
  assert.equal([h.format, h.detected, h.timeUnit], ['concur', true, 'ms']);
  const c = await checkRecorded(h);
  assert.is(c.result.linearizable, true);
  assert.is(exitCodeFor([c.result.linearizable]), 0);
  const json = fileJson(c);
  assert.is(json.ops, ops.length);
  assert.is((json.keys as unknown[]).length, 3);
});

test('doctoring one read makes it not linearizable; text, JSON and page all point at that read', async () => {
  const ops = generateHistory({ seed: 12, clients: 6, opsPerClient: 60, keys: 2, failRate: 0, unknownRate: 0 });
  const victim = ops.findIndex((o, i) => i > ops.length / 2 && o.op === 'get' && o.status === 'ok');
  ops[victim] = { ...ops[victim]!, result: 'forged' };
  const c = await checkRecorded(parseRecordedHistory(formatHistory(ops), 'doctored.jsonl'));
  assert.is(c.result.linearizable, false);
  assert.is(exitCodeFor([true, c.result.linearizable, 'unknown']), 1);
  assert.is(c.result.failure!.stuck.id, victim);
  const text = fileText(c);
  assert.match(text, /doctored\.jsonl \(concur, detected\): \d+ ops on 2 keys: NOT linearizable/);
  assert.match(text, new RegExp(`This op completed next, so it must take effect next, but cannot be placed:\\n  #${victim} .* ok, read "forged"`));
  const page = renderCheckPage([c]);
  assert.match(page, new RegExp(`<g class="op ok stuck" data-op="${victim}">`));
  assert.is((page.match(/class="op ok stuck"/g) ?? []).length, 1, 'exactly one op is marked stuck');
  // Every op of the history is drawn once: the prefix in green and the rest as recorded.
  assert.is((page.match(/<g class="op /g) ?? []).length, ops.length);
});

test('the page escapes what the history holds and never fetches anything', async () => {
  const key = '</svg><script>alert(1)</script>';
  const ops = [put(1, key, '<b>"x"</b>', 0, 2), get(2, key, 'y', 3, 4)];
  const c = await checkRecorded(parseRecordedHistory(formatHistory(ops), 'evil.jsonl'));
  assert.is(c.result.linearizable, false);
  const page = renderCheckPage([c]);
  assert.not.ok(page.includes(key), 'the key is escaped');
  assert.not.ok(page.includes('<b>'), 'the value is escaped');
  assert.is((page.match(/<script>/g) ?? []).length, 1, 'only the page\'s own script');
  assert.not.match(page, /(src|href)\s*=/i);
});

test('many linearizable keys: the failing ones are drawn first and the rest are capped', async () => {
  const ops = generateHistory({ seed: 3, clients: 4, opsPerClient: 200, keys: 80, failRate: 0, unknownRate: 0 });
  const c = await checkRecorded(parseRecordedHistory(formatHistory(ops), 'wide.jsonl'));
  assert.is(c.result.linearizable, true);
  const page = renderCheckPage([c]);
  assert.is((page.match(/<h3>/g) ?? []).length, 50);
  assert.match(page, /(\d+) more keys, all linearizable, not drawn/);
});

test.run();
