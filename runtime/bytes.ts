// Copying short byte strings on hot paths (per command, per entry, per result).

/** Bytes up to this many are copied by a loop: below it TypedArray.prototype.set's call costs more than the copy. */
const loopCopyBytesMax = 32;

/** Copies src[start, end) into out at `at` and returns the position after it. */
export function copyBytes(src: Uint8Array, start: number, end: number, out: Uint8Array, at: number): number {
  const n = end - start;
  if (n <= loopCopyBytesMax) {
    for (let i = 0; i < n; i++) out[at + i] = src[start + i]!;
  } else out.set(start === 0 && end === src.length ? src : src.subarray(start, end), at);
  return at + n;
}
