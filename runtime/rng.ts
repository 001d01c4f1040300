// A small seeded pseudo-random generator (sfc32) shared by everything that must be repeatable:
// fault decisions, the simulator, election timeouts. Never Math.random where a run must replay.

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max) — max exclusive. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A uint32, for deriving child seeds. */
  uint32(): number;
}

/** Mixes any number of integers into one 32-bit seed (splitmix-style finaliser per part). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    let x = (part ^ h) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    h = (x ^ (x >>> 16)) >>> 0;
    h = (h + 0x9e3779b9) >>> 0;
  }
  return h;
}

export function createRng(seed: number): Rng {
  let a = mixSeed(seed, 1);
  let b = mixSeed(seed, 2);
  let c = mixSeed(seed, 3);
  let d = 1;
  const uint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // Warm up so nearby seeds diverge at once.
  for (let i = 0; i < 12; i++) uint32();
  const next = () => uint32() / 4294967296;
  return {
    next,
    uint32,
    int: (min, max) => min + Math.floor(next() * (max - min)),
    chance: (p) => p > 0 && next() < p,
  };
}
