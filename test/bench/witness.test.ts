// `concur bench witness`: a witness keeps no state machine and no snapshot images, so after the
// same writes it holds less than a full replica (the control: the two full voters agree).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchWitness } from '../../bench/witness.ts';

test('after 3,000 writes a witness holds no state-machine image and less on disk and in its heap than a full voter', async () => {
  const r = await benchWitness({ writes: 3_000, valueBytes: 200, concurrency: 32, snapshotEntries: 500 });
  const [a, b, w] = r.nodes;
  assert.is(w!.role, 'witness');
  assert.ok(a!.snapshotDataBytes > 2_000 * 200, `a full voter's image holds the data (${a!.snapshotDataBytes} bytes)`);
  assert.ok(Math.abs(a!.snapshotDataBytes - b!.snapshotDataBytes) < a!.snapshotDataBytes * 0.2, 'the two full voters hold about the same');
  assert.is(w!.snapshotDataBytes, 0, 'the witness keeps no image');
  assert.ok(r.ratios.disk < 1, `the witness uses less disk (ratio ${r.ratios.disk})`);
  assert.ok(r.ratios.heap < 1, `and less heap (ratio ${r.ratios.heap})`);
});

test.run();
