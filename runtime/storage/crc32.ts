// CRC-32 (IEEE 802.3, the zlib/gzip polynomial) over byte ranges, for WAL record checksums.
// Uses zlib.crc32 (native, Node ≥ 20.15) when present, else a slicing-by-8 table; both must give
// identical results, and nothing here may allocate per call.
import * as zlib from 'node:zlib';

const tables: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const out = [t0];
  for (let s = 1; s < 8; s++) {
    const prev = out[s - 1]!;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
    out.push(t);
  }
  return out;
})();

/** Portable CRC-32; exported so tests can check it against the native one. */
export function crc32Table(data: Uint8Array, value = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~value >>> 0;
  let i = 0;
  const n = data.length;
  // Slicing-by-8 folds 8 bytes per step: ~4x the byte-at-a-time loop in V8.
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const native = typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? zlib.crc32 : undefined;

export const crc32Native: boolean = native !== undefined;

export const crc32: (data: Uint8Array, value?: number) => number = native
  ? (data, value = 0) => native(data, value) >>> 0
  : crc32Table;
