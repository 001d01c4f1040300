import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from 'commander';
import { choiceOption, intListOption, intOption, numberOption } from '../../apps/cli/options.ts';

test('intOption accepts integers in range and names the range when refusing', () => {
  const nodes = intOption(1, 9);
  assert.is(nodes('5'), 5);
  assert.throws(() => nodes('0'), (e: Error) => e instanceof InvalidArgumentError && /from 1 to 9, got 0/.test(e.message));
  assert.throws(() => nodes('3.5'), /integer/);
  assert.throws(() => nodes('abc'), /got "abc"/);
  assert.throws(() => nodes(''), /integer/);
});

test('numberOption refuses NaN and out-of-range', () => {
  const rate = numberOption(0, 1);
  assert.is(rate('0.25'), 0.25);
  assert.throws(() => rate('1.5'), /from 0 to 1/);
  assert.throws(() => rate('x'), /got "x"/);
});

test('intListOption parses comma lists and refuses holes', () => {
  const batch = intListOption(1, 4096);
  assert.equal(batch('1,8,64'), [1, 8, 64]);
  assert.throws(() => batch('1,,8'), /comma-separated/);
  assert.throws(() => batch('1,9999'), /got 9999/);
});

test('choiceOption lists the choices', () => {
  const fsync = choiceOption(['always', 'batch', 'never'] as const);
  assert.is(fsync('batch'), 'batch');
  assert.throws(() => fsync('sometimes'), /one of always, batch, never/);
});

test.run();
