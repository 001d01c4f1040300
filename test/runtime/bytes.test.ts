// copyBytes: the same bytes whichever way it copies (a loop up to 32 bytes, TypedArray.set beyond).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyBytes } from '../../runtime/bytes.ts';

test('copies src[start, end) to out at `at` and returns the position after it, short and long, whole or a range', () => {
  for (const n of [0, 1, 31, 32, 33, 100]) {
    const src = Uint8Array.from({ length: n + 7 }, (_, i) => (i * 37 + 11) & 0xff);
    for (const [start, end] of [[0, src.length], [3, 3 + n]] as const) {
      const out = new Uint8Array(end - start + 10).fill(0xee);
      const after = copyBytes(src, start, end, out, 4);
      assert.is(after, 4 + end - start, `n=${n} start=${start}`);
      assert.equal([...out.subarray(4, after)], [...src.subarray(start, end)], `n=${n} start=${start}`);
      assert.ok(out.subarray(0, 4).every((b) => b === 0xee) && out.subarray(after).every((b) => b === 0xee), `n=${n}: nothing written outside`);
    }
  }
});

test.run();
