// The hand-written put/get/delete codec against cbor-x: every command and result it writes is
// byte for byte what kvCodec writes (the log and snapshot format), and every byte string it reads
// decodes, or is refused, exactly as the general cbor-x path decodes or refuses it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  type KvCommand,
  type KvLimits,
  type KvResult,
  clientIdText,
  commandProblem,
  decodeCommand,
  decodeCommandGeneral,
  decodeResult,
  encodeCommand,
  encodePutBytes,
  encodeResult,
  kvEncode,
} from '../../apps/kv/commands.ts';

type Simple = KvCommand & { op: 'put' | 'get' | 'delete' };
const tags = { put: 1, get: 2, delete: 3 } as const;

// Limits wide enough for every length boundary of CBOR heads (23/24, 255/256, 65535/65536).
const wide: KvLimits = { keyBytesMax: 70_000, valueBytesMax: 70_000, clientIdBytesMax: 128 };

/** What encodeCommand did before the hand-written writer: check, then kvCodec. */
function referenceEncode(c: Simple, limits: KvLimits): Uint8Array {
  const problem = commandProblem(c, limits);
  if (problem) throw new RangeError(`invalid ${c.op} command: ${problem}`);
  return kvEncode(c.op === 'put' ? [tags.put, c.clientId, c.seq, c.key, c.value] : [tags[c.op], c.clientId, c.seq, c.key]);
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Bytes (as hex) or the error's kind and message, so both outcomes compare with assert.equal. */
function outcome(f: () => Uint8Array): { bytes: string } | { error: string } {
  try {
    return { bytes: hex(f()) };
  } catch (err) {
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

function decodeOutcome(f: () => KvCommand): KvCommand | { error: string } {
  try {
    return f();
  } catch (err) {
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');
// Byte lengths on both sides of every head boundary, and small ones.
const boundaries = [0, 1, 22, 23, 24, 25, 254, 255, 256, 257, 65_534, 65_535, 65_536, 65_537];

/**
 * Well-formed strings of any code points (1- to 4-byte UTF-8, a BOM, noncharacters among them),
 * padded with ASCII to an exact UTF-8 length at a head boundary when `long`.
 */
function text(maxBoundary: number): fc.Arbitrary<string> {
  const prefix = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.constantFrom('', '\uFEFF', '\uFEFFk', '\uFFFF', 'é', '€', '😀', 'a\u0000b'),
  );
  const padded = fc.tuple(fc.constantFrom(...boundaries.filter((b) => b <= maxBoundary)), prefix).map(([n, p]) => p + 'a'.repeat(Math.max(0, n - utf8Bytes(p))));
  return fc.oneof(prefix, padded, fc.string({ unit: 'binary', maxLength: 40 }));
}

// UTF-16 code units of every kind, lone surrogates included: what commandProblem must refuse.
const anyUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength: 8 });

const seq = fc.oneof(
  fc.constantFrom(1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1),
  fc.integer({ min: 1, max: 2 ** 32 + 10 }),
  fc.maxSafeNat().map((n) => Math.max(1, n)),
);
const badSeq = fc.constantFrom(0, -1, 1.5, Number.NaN, 2 ** 53, Infinity);

/** Bytes of a boundary length (or small), as a plain array, a Buffer, or a view at an offset. */
const value = fc
  .tuple(fc.oneof(fc.constantFrom(...boundaries), fc.integer({ min: 0, max: 40 })), fc.integer({ min: 0, max: 255 }), fc.constantFrom('plain', 'buffer', 'view'))
  .map(([n, seed, kind]) => {
    const backing = new Uint8Array(n + 3);
    for (let i = 0; i < backing.length; i++) backing[i] = (seed + i * 31) & 0xff;
    if (kind === 'view') return backing.subarray(3);
    const plain = backing.slice(0, n);
    return kind === 'buffer' ? Buffer.from(plain) : plain;
  });

function simple(clientId: fc.Arbitrary<string>, key: fc.Arbitrary<string>, s: fc.Arbitrary<number>): fc.Arbitrary<Simple> {
  return fc.oneof(
    fc.record({ op: fc.constant('put' as const), clientId, seq: s, key, value }),
    fc.record({ op: fc.constant('get' as const), clientId, seq: s, key }),
    fc.record({ op: fc.constant('delete' as const), clientId, seq: s, key }),
  );
}

const clientId = text(128).filter((s) => s !== '' && utf8Bytes(s) <= 128);
const validCommand = simple(clientId, text(65_537).filter((s) => s !== ''), seq);

test('encodeCommand writes put, get and delete exactly as kvCodec does', () => {
  fc.assert(
    fc.property(validCommand, (c) => {
      assert.equal(outcome(() => encodeCommand(c, wide)), outcome(() => referenceEncode(c, wide)));
    }),
    { numRuns: 3000 },
  );
});

test('encodePutBytes writes a put from a buffer holding key and value exactly as encodeCommand does', () => {
  const put = fc.record({ clientId, seq, key: text(65_537).filter((k) => k !== '' && utf8Bytes(k) <= wide.keyBytesMax), value, pad: fc.nat(5), gap: fc.nat(3) });
  fc.assert(
    fc.property(put, ({ clientId: id, seq: n, key, value: v, pad, gap }) => {
      // Key and value somewhere inside a larger buffer, as RESP's parser leaves them.
      const keyBytes = Buffer.from(key, 'utf8');
      const src = Buffer.concat([Buffer.alloc(pad, 0x2a), keyBytes, Buffer.alloc(gap, 0x0d), Buffer.from(v), Buffer.alloc(2, 0x0a)]);
      const keyStart = pad;
      const valueStart = pad + keyBytes.length + gap;
      const idText = clientIdText(id, wide);
      assert.ok(idText !== null);
      const got = encodePutBytes(idText, n, src, keyStart, keyStart + keyBytes.length, valueStart, valueStart + v.byteLength);
      assert.is(hex(got), hex(encodeCommand({ op: 'put', clientId: id, seq: n, key, value: v }, wide)));
    }),
    { numRuns: 2000 },
  );
});

test('clientIdText refuses ids encodeCommand refuses: empty, too long, or not well-formed', () => {
  assert.is(clientIdText('', wide), null);
  assert.is(clientIdText('x'.repeat(129), wide), null);
  assert.is(clientIdText('a\uD800b', wide), null);
  assert.ok(clientIdText('x'.repeat(128), wide) !== null);
});

test('encodeCommand refuses what it refused, with the same RangeError, at the default limits and tight ones', () => {
  const limits = fc.constantFrom<KvLimits>(
    { keyBytesMax: 1024, valueBytesMax: 1024 * 1024, clientIdBytesMax: 128 },
    { keyBytesMax: 24, valueBytesMax: 256, clientIdBytesMax: 23 },
    { keyBytesMax: 1, valueBytesMax: 0, clientIdBytesMax: 1 },
  );
  const anyString = fc.oneof(anyUnits, text(300), fc.constant(''));
  const loose = simple(anyString, anyString, fc.oneof(seq, badSeq));
  fc.assert(
    fc.property(loose, limits, (c, l) => {
      assert.equal(outcome(() => encodeCommand(c, l)), outcome(() => referenceEncode(c, l)));
    }),
    { numRuns: 3000 },
  );
  // Not strings, not bytes: refused as before too.
  const odd = [
    { op: 'put', clientId: 'c', seq: 1, key: 7, value: new Uint8Array(1) },
    { op: 'get', clientId: 5, seq: 1, key: 'k' },
    { op: 'put', clientId: 'c', seq: 1, key: 'k', value: 'v' },
    { op: 'delete', clientId: 'c', seq: '1', key: 'k' },
  ] as unknown as Simple[];
  for (const c of odd) assert.equal(outcome(() => encodeCommand(c)), outcome(() => referenceEncode(c, { keyBytesMax: 1024, valueBytesMax: 1024, clientIdBytesMax: 128 })));
});

test('decodeCommand reads back what encodeCommand wrote, as the general cbor-x path does', () => {
  fc.assert(
    fc.property(validCommand, (c) => {
      const bytes = encodeCommand(c, wide);
      const fast = decodeCommand(bytes);
      assert.equal(fast, decodeCommandGeneral(bytes));
      // (A spread: fast-check may draw records with a null prototype.)
      const expected = c.op === 'put' ? { ...c, value: new Uint8Array(c.value) } : { ...c };
      assert.equal(fast, expected);
      // The decoded value is a copy: it does not alias the command bytes.
      if (fast.op === 'put') assert.ok(fast.value.buffer !== bytes.buffer);
    }),
    { numRuns: 2000 },
  );
});

/** CBOR head of `major` (0x00, 0x40, 0x60) for n with an argument of `size` bytes (0: inline), shortest or not. */
function head(major: number, n: number, size: 0 | 1 | 2 | 4 | 8): number[] {
  if (size === 0) return [major | n];
  const info = { 1: 24, 2: 25, 4: 26, 8: 27 }[size];
  const arg: number[] = [];
  for (let i = size - 1; i >= 0; i--) arg.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  return [major | info, ...arg];
}

function fits(n: number, size: 0 | 1 | 2 | 4 | 8): boolean {
  return size === 0 ? n < 24 : n < 2 ** (8 * size);
}

test('every definite-head encoding of a command decodes exactly as through cbor-x (shortest heads or not)', () => {
  const sizes = fc.constantFrom<0 | 1 | 2 | 4 | 8>(0, 1, 2, 4, 8);
  const small = simple(text(300).filter((s) => utf8Bytes(s) <= 300), text(300), fc.oneof(seq, fc.constant(0)));
  fc.assert(
    fc.property(small, fc.array(sizes, { minLength: 4, maxLength: 4 }), (c, [idSize, seqSize, keySize, valueSize]) => {
      const id = Buffer.from(c.clientId, 'utf8');
      const key = Buffer.from(c.key, 'utf8');
      if (!fits(id.length, idSize!) || !fits(c.seq, seqSize!) || !fits(key.length, keySize!) || !Number.isSafeInteger(c.seq)) return;
      const parts = [c.op === 'put' ? 0x85 : 0x84, tags[c.op], ...head(0x60, id.length, idSize!), ...id, ...head(0x00, c.seq, seqSize!), ...head(0x60, key.length, keySize!), ...key];
      if (c.op === 'put') {
        if (!fits(c.value.byteLength, valueSize!)) return;
        parts.push(...head(0x40, c.value.byteLength, valueSize!), ...c.value);
      }
      const bytes = new Uint8Array(parts);
      assert.equal(decodeOutcome(() => decodeCommand(bytes)), decodeOutcome(() => decodeCommandGeneral(bytes)));
    }),
    { numRuns: 2000 },
  );
});

test('damaged commands decode, or are refused with the same KvDecodeError, exactly as through cbor-x', () => {
  const damage = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    // Bytes that break UTF-8: a lone continuation, an encoded surrogate, an overlong NUL, a truncated sequence.
    fc.record({ kind: fc.constant('utf8' as const), at: fc.nat(), bytes: fc.constantFrom<number[]>([0x80], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0xe2, 0x82], [0xff]) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), byte: fc.integer({ min: 0, max: 255 }) }),
  );
  const small = simple(text(40).filter((s) => s !== '' && utf8Bytes(s) <= 128), text(300).filter((s) => s !== ''), seq);
  fc.assert(
    fc.property(small, fc.array(damage, { minLength: 1, maxLength: 3 }), (c, damages) => {
      let bytes = [...encodeCommand(c, wide)];
      for (const d of damages) {
        const at = bytes.length === 0 ? 0 : ('at' in d ? d.at : 0) % bytes.length;
        if (d.kind === 'set') bytes[at] = d.byte;
        else if (d.kind === 'utf8') bytes.splice(at, d.bytes.length, ...d.bytes);
        else if (d.kind === 'cut') bytes = bytes.slice(0, at);
        else bytes.push(d.byte);
      }
      const b = new Uint8Array(bytes);
      assert.equal(decodeOutcome(() => decodeCommand(b)), decodeOutcome(() => decodeCommandGeneral(b)));
    }),
    // Once (of some 200 runs) this property ran past the runner's 300 s and was killed with no
    // report; not reproduced since. Bounded in time (checked between runs and shrinking steps), it
    // fails with fast-check's seed and what it found instead.
    { numRuns: 5000, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
  );
});

test('put, get and delete are read from a Buffer, and from a view into a larger (shared) buffer, alike', () => {
  fc.assert(
    fc.property(validCommand, fc.integer({ min: 0, max: 9 }), (c, offset) => {
      const bytes = encodeCommand(c, wide);
      const expected = decodeCommandGeneral(bytes);
      assert.equal(decodeCommand(Buffer.from(bytes)), expected);
      const shared = new Uint8Array(new SharedArrayBuffer(bytes.byteLength + offset + 5));
      shared.set(bytes, offset);
      const view = shared.subarray(offset, offset + bytes.byteLength);
      const got = decodeCommand(view);
      assert.equal(got, expected);
      // The value is a copy of its own, not a view of the (reusable) frame.
      if (got.op === 'put') assert.ok(!(got.value.buffer instanceof SharedArrayBuffer));
    }),
    { numRuns: 500 },
  );
});

const index = fc.oneof(fc.constantFrom(0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1), fc.maxSafeNat());

test('the written, deleted, value and not-found results are kvCodec bytes, and decode back', () => {
  const result = fc.oneof(
    index.map((i): KvResult => ({ type: 'written', index: i })),
    fc.tuple(index, fc.boolean()).map(([i, existed]): KvResult => ({ type: 'deleted', index: i, existed })),
    value.map((v): KvResult => ({ type: 'value', value: v })),
    fc.constant<KvResult>({ type: 'not-found' }),
  );
  const reference = (r: KvResult): Uint8Array => {
    switch (r.type) {
      case 'written':
        return kvEncode([0, r.index]);
      case 'value':
        return kvEncode([1, r.value]);
      case 'not-found':
        return kvEncode([2]);
      case 'deleted':
        return kvEncode([3, r.index, r.existed]);
      default:
        throw new Error('not drawn');
    }
  };
  fc.assert(
    fc.property(result, (r) => {
      const bytes = encodeResult(r);
      assert.is(hex(bytes), hex(reference(r)));
      const back = decodeResult(bytes);
      assert.equal(back, r.type === 'value' ? { type: 'value', value: new Uint8Array(r.value) } : r);
    }),
    { numRuns: 2000 },
  );
});

test.run();
