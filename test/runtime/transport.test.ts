import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runTransport } from '../../bench/transport.ts';

test('two real workers exchange two million 64-byte frames through a small ring; count and checksum match', async () => {
  // A 64 KiB ring forces thousands of full-ring waits and wrap-arounds on the way.
  const r = await runTransport('ring', 'opaque', 64, 2_000_000, 1 << 16);
  assert.ok(r.checksumOk, 'checksum or count mismatch');
  assert.is(r.count, 2_000_000);
});

test('1-KiB frames and cbor records cross real workers intact', async () => {
  const big = await runTransport('ring', 'opaque', 1024, 200_000, 1 << 14);
  assert.ok(big.checksumOk, '1 KiB frames: checksum or count mismatch');
  const cbor = await runTransport('ring', 'cbor', 64, 300_000, 1 << 16);
  assert.ok(cbor.checksumOk, 'cbor: checksum or count mismatch');
});

test('the postMessage baseline delivers the same checksum', async () => {
  const r = await runTransport('port', 'opaque', 64, 50_000);
  assert.ok(r.checksumOk);
});

test.run();
