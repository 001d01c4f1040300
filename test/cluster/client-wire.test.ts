// The client frames' reads: what encodeReads writes, decodeReads gives back, for any keys and app
// names (non-ASCII, empty keys, long ones) — the encoder writes strings straight into the frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeReads, encodeReads, readModeCodes, type ReadItem } from '../../apps/cluster/client-wire.ts';

const item = fc.record({
  key: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ minLength: 200, maxLength: 600 })),
  app: fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), { nil: undefined }),
});

test('reads round-trip through a frame, in order, with their app names', () => {
  fc.assert(
    fc.property(fc.array(item, { maxLength: 40 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.constantFrom(...readModeCodes), (reads: ReadItem[], batch, mode) => {
      const frame = encodeReads(batch, mode, reads);
      // Decoded from inside a larger buffer, as from ring memory.
      const host = new Uint8Array(frame.length + 7);
      host.set(frame, 3);
      const got = decodeReads(host, 3, 3 + frame.length);
      assert.is(got.batch, batch);
      assert.is(got.mode, mode);
      assert.equal(got.reads.map((r) => ({ key: r.key, app: r.app })), reads.map((r) => ({ key: r.key, app: r.app })));
    }),
    { numRuns: 300 },
  );
});

test('an app name over 255 bytes of UTF-8 is refused', () => {
  assert.throws(() => encodeReads(1, 'index', [{ key: 'k', app: 'é'.repeat(128) }]), /1 to 255 bytes/);
});

test.run();
