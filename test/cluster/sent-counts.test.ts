// SentCounts: what a node reports it sent, per peer and type, reset at each report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SentCounts } from '../../apps/cluster/sent-counts.ts';

const triples = (flat: number[]) => {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += 3) out.push(flat.slice(i, i + 3));
  return out.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
};

test('counts per peer and type, each slot once, and starts afresh after a take', () => {
  const c = new SentCounts(64);
  for (let i = 0; i < 5; i++) c.count(2, 1);
  c.count(3, 1);
  c.count(2, 7);
  c.count(64, 12);
  assert.equal(triples(c.take()), [[2, 1, 5], [2, 7, 1], [3, 1, 1], [64, 12, 1]]);
  assert.equal(c.take(), []);
  c.count(2, 1);
  assert.equal(c.take(), [2, 1, 1]);
});

test('ids above idMax and types past the slots are not counted', () => {
  const c = new SentCounts(4);
  c.count(5, 1);
  c.count(1, 16);
  assert.equal(c.take(), []);
});

test.run();
