// Snapshot images for the demo apps: a sequence of CBOR values, each framed by its length, so an
// image can be produced lazily in pieces (next() encodes one part at a time) and restored from
// bytes split anywhere. The digest is a hash over the same frames, so replicas with equal state
// have equal digests and a restored replica digests like the one it was taken from.
import { createHash } from 'node:crypto';
import { cborDecode, cborEncode } from '../../platform/envelope.ts';
import type { SnapshotImage, SnapshotRestore } from '../../state-machine.ts';

function frame(value: unknown): Uint8Array {
  const body = cborEncode(value);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

/**
 * An image whose parts come from `parts` (captured by the caller at snapshot time: the iterator
 * must not see later changes), encoded one per next() call.
 */
export function framedImage(parts: Iterator<unknown>): SnapshotImage {
  let done = false;
  return {
    index: 0,
    next: () => {
      if (done) return null;
      const r = parts.next();
      if (r.done === true) {
        done = true;
        return null;
      }
      return frame(r.value);
    },
  };
}

/** Hex sha256 over the frames of `parts` (the digest of the image they make). */
export function framedDigest(parts: Iterable<unknown>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(frame(p));
  return h.digest('hex');
}

/**
 * Collects an image fed in pieces split anywhere; `finish` hands the decoded parts to `apply`
 * (which replaces the state) — or `[]` for no bytes at all (an app with no piece in the router's
 * image starts empty). A malformed image throws and leaves the state unchanged.
 */
export function framedRestore(what: string, apply: (parts: unknown[]) => void): SnapshotRestore {
  const chunks: Uint8Array[] = [];
  let spent = false;
  return {
    write(bytes) {
      if (spent) throw new Error(`${what} image: write after finish`);
      chunks.push(bytes.slice());
    },
    finish() {
      if (spent) throw new Error(`${what} image: finished twice`);
      spent = true;
      const all = Buffer.concat(chunks);
      const parts: unknown[] = [];
      let at = 0;
      while (at < all.length) {
        if (all.length - at < 4) throw new Error(`${what} image: a cut frame header at byte ${at}`);
        const len = all.readUInt32LE(at);
        if (all.length - at - 4 < len) throw new Error(`${what} image: a frame of ${len} bytes at byte ${at} is cut short`);
        parts.push(cborDecode(all.subarray(at + 4, at + 4 + len)));
        at += 4 + len;
      }
      apply(parts);
    },
  };
}
