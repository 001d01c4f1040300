// apply's fast path (put, get and delete read by hand, limits checked from the reader's sizes, the
// session table updated in place) against what the general path did: the same invalid-command
// verdicts and messages, the same answers for odd but valid encodings, and the session table's
// LRU order, byte count and evictions exactly those of the Map it replaced.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { type KvCommand, type KvLimits, commandProblem, decodeCommandGeneral, decodeResult, encodeCommand, encodeResult, kvCodec } from '../../apps/kv/commands.ts';
import { KvStateMachine } from '../../apps/kv/state-machine.ts';
import type { SnapshotImage } from '../../apps/state-machine.ts';

const tags = { put: 1, get: 2, delete: 3 } as const;

function head(major: number, n: number, wide: boolean): number[] {
  if (n < 24 && !wide) return [major | n];
  if (n < 0x100) return [major | 24, n];
  if (n < 0x10000) return [major | 25, n >> 8, n & 0xff];
  return [major | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

// Text bytes of a string, or raw bytes that may not be UTF-8 at all (replaced by U+FFFD when
// decoded, which changes their UTF-8 size: a limit must be judged on the decoded string).
const textBytes: fc.Arbitrary<number[]> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 7 }).map((s) => [...Buffer.from(s, 'utf8')]),
  fc.string({ unit: 'binary-ascii', maxLength: 7 }).map((s) => [...Buffer.from(s, 'utf8')]),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 7 }),
  fc.constantFrom<number[]>([0xff], [0xff, 0xff], [0x61, 0x80], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0xef, 0xbb, 0xbf, 0x61]),
);

interface RawCommand {
  op: 'put' | 'get' | 'delete';
  id: number[];
  seq: number;
  key: number[];
  value: number;
  /** Non-shortest heads (a one-byte argument where the head could hold the number). */
  wide: boolean;
}

const rawCommand: fc.Arbitrary<RawCommand> = fc.record({
  op: fc.constantFrom('put' as const, 'get' as const, 'delete' as const),
  id: textBytes,
  seq: fc.constantFrom(0, 1, 2, 23, 24, 2 ** 32 - 1),
  key: textBytes,
  value: fc.integer({ min: 0, max: 7 }),
  wide: fc.boolean(),
});

function rawBytes(c: RawCommand): Uint8Array {
  const parts = [c.op === 'put' ? 0x85 : 0x84, tags[c.op], ...head(0x60, c.id.length, c.wide), ...c.id, ...head(0x00, c.seq, c.wide), ...head(0x60, c.key.length, c.wide), ...c.key];
  if (c.op === 'put') parts.push(...head(0x40, c.value, c.wide), ...new Array<number>(c.value).fill(0x76));
  return new Uint8Array(parts);
}

test('apply answers invalid-command exactly when the general path does, with its message; otherwise as for the canonical bytes', () => {
  const limits: KvLimits = { keyBytesMax: 5, valueBytesMax: 4, clientIdBytesMax: 4 };
  fc.assert(
    fc.property(fc.array(rawCommand, { minLength: 1, maxLength: 30 }), (cmds) => {
      const a = new KvStateMachine(limits);
      const b = new KvStateMachine(limits);
      // c reads each command in place, inside a buffer with other bytes on both sides (applyAt).
      const c = new KvStateMachine(limits);
      cmds.forEach((raw, i) => {
        const bytes = rawBytes(raw);
        let expected: Uint8Array | null = null;
        let cmd: KvCommand | null = null;
        try {
          cmd = decodeCommandGeneral(bytes);
        } catch (err) {
          expected = encodeResult({ type: 'error', code: 'invalid-command', message: (err as Error).message });
        }
        const problem = cmd === null ? null : commandProblem(cmd, limits);
        if (problem) expected = encodeResult({ type: 'error', code: 'invalid-command', message: `invalid ${cmd!.op} command: ${problem}` });
        const got = a.apply(i + 1, bytes);
        // b sees a valid command as encodeCommand writes it: shortest heads, valid UTF-8.
        const theirs = b.apply(i + 1, expected === null ? encodeCommand(cmd!, limits) : bytes);
        if (expected !== null) assert.equal([...got], [...expected], `command ${i}`);
        assert.equal([...got], [...theirs], `command ${i}`);
        const around = new Uint8Array([0x85, 0x01, 0x63, ...bytes, 0x61, 0x85]);
        assert.equal([...c.applyAt(i + 1, around, 3, 3 + bytes.length)], [...got], `command ${i} read in place`);
      });
      assert.is(a.digest(), b.digest());
      assert.is(c.digest(), a.digest());
    }),
    { numRuns: 1000 },
  );
});

/** The session table as the general path kept it before: a Map re-inserted on every use. */
class MapSessions {
  map = new Map<string, { seq: number; result: Uint8Array }>();
  bytes = 0;

  constructor(
    private readonly sessionsMax: number,
    private readonly sessionBytesMax: number,
  ) {}

  static entryBytes(clientId: string, result: Uint8Array): number {
    return Buffer.byteLength(clientId, 'utf8') + result.byteLength + 64;
  }

  /** What apply did to the table for `c`, given the result it answered. */
  apply(c: KvCommand, result: Uint8Array): void {
    if (c.op === 'get') return;
    const s = this.map.get(c.clientId);
    if (s && c.seq === s.seq) {
      assert.equal([...result], [...s.result], 'a retry answers the cached result');
      this.map.delete(c.clientId);
      this.map.set(c.clientId, s);
      return;
    }
    if (s && c.seq < s.seq) return;
    if (s) {
      this.bytes -= MapSessions.entryBytes(c.clientId, s.result);
      this.map.delete(c.clientId);
    }
    this.map.set(c.clientId, { seq: c.seq, result });
    this.bytes += MapSessions.entryBytes(c.clientId, result);
    this.evict();
  }

  evict(): void {
    for (const [clientId, e] of this.map) {
      if (this.map.size <= 1) break;
      if (this.map.size <= this.sessionsMax && this.bytes <= this.sessionBytesMax) break;
      this.map.delete(clientId);
      this.bytes -= MapSessions.entryBytes(clientId, e.result);
    }
  }

  /** The table as restore left it: the image's order, then evicted to this table's bounds. */
  static restored(records: Array<[string, number, Uint8Array]>, sessionsMax: number, sessionBytesMax: number): MapSessions {
    const t = new MapSessions(sessionsMax, sessionBytesMax);
    for (const [clientId, seq, result] of records) {
      t.map.set(clientId, { seq, result });
      t.bytes += MapSessions.entryBytes(clientId, result);
    }
    t.evict();
    return t;
  }

  records(): Array<[string, number, number[]]> {
    return [...this.map].map(([clientId, e]) => [clientId, e.seq, [...e.result]]);
  }
}

/** The session records of an image ([clientId, seq, result] in LRU order), parsed by its documented format. */
function imageSessions(image: SnapshotImage): Array<[string, number, Uint8Array]> {
  const pieces: Uint8Array[] = [];
  for (let p = image.next(); p; p = image.next()) pieces.push(p);
  const bytes = Buffer.concat(pieces);
  const records: unknown[][] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = bytes.readUInt32LE(at);
    records.push(kvCodec.decode(bytes.subarray(at + 4, at + 4 + n)) as unknown[]);
    at += 4 + n;
  }
  const keyCount = records[0]![2] as number;
  return records.slice(1 + keyCount).map((r) => [r[0] as string, r[1] as number, new Uint8Array(r[2] as Uint8Array)]);
}

const asRecords = (rs: Array<[string, number, Uint8Array]>) => rs.map(([c, s, r]): [string, number, number[]] => [c, s, [...r]]);

test('the session table keeps the LRU order, byte count and evictions of a Map re-inserted on use, through restores', () => {
  // Ids of different UTF-8 sizes; values of different sizes, so results and the byte bound vary.
  const clients = ['a', 'bb', 'ключ', '🔑', 'client-with-a-longer-id'];
  const step = fc.record({
    client: fc.integer({ min: 0, max: clients.length - 1 }),
    op: fc.constantFrom('put' as const, 'get' as const, 'delete' as const, 'cas' as const),
    // next seq, a retry, a stale one, or a jump
    seqMove: fc.constantFrom('next', 'retry', 'stale', 'jump'),
    key: fc.constantFrom('k1', 'k2', 'k3'),
    valueBytes: fc.integer({ min: 0, max: 40 }),
  });
  const bounds = fc.record({ sessionsMax: fc.integer({ min: 1, max: 6 }), sessionBytesMax: fc.integer({ min: 60, max: 400 }) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), bounds, bounds, (steps, first, second) => {
      const sm = new KvStateMachine(first);
      const model = new MapSessions(first.sessionsMax, first.sessionBytesMax);
      const last = new Map<string, number>();
      steps.forEach((s, i) => {
        const clientId = clients[s.client]!;
        const prev = last.get(clientId) ?? 0;
        const seq = s.seqMove === 'next' ? prev + 1 : s.seqMove === 'jump' ? prev + 2 ** 32 : s.seqMove === 'retry' ? Math.max(1, prev) : Math.max(1, prev - 1);
        last.set(clientId, Math.max(prev, seq));
        const value = new Uint8Array(s.valueBytes).fill(7);
        const c: KvCommand =
          s.op === 'put'
            ? { op: 'put', clientId, seq, key: s.key, value }
            : s.op === 'cas'
              ? { op: 'cas', clientId, seq, key: s.key, expect: null, value }
              : { op: s.op, clientId, seq, key: s.key };
        const result = sm.apply(i + 1, encodeCommand(c));
        model.apply(c, result);
        assert.is(sm.sessionCount, model.map.size, `step ${i}`);
        assert.is(sm.sessionBytesUsed, model.bytes, `step ${i}`);
        for (const id of clients) assert.is(sm.sessionSeq(id), model.map.get(id)?.seq, `step ${i}: ${id}`);
      });
      const records = imageSessions(sm.snapshotImage());
      assert.equal(asRecords(records), model.records());
      // Restored under other bounds: the image's order, then evictions from its oldest end.
      const other = new KvStateMachine(second);
      const r = other.restoreImage();
      for (let image = sm.snapshotImage(), p = image.next(); p; p = image.next()) r.write(p);
      r.finish();
      const restoredModel = MapSessions.restored(records, second.sessionsMax, second.sessionBytesMax);
      assert.equal(asRecords(imageSessions(other.snapshotImage())), restoredModel.records());
      assert.is(other.sessionBytesUsed, restoredModel.bytes);
    }),
    { numRuns: 1000 },
  );
});

// The reader keeps recent texts by their length and a few end bytes: texts that agree there but
// differ inside share a slot, and each must still read as itself (a wrong hit would store one
// key's value under another, or answer one client with another's session).
test('texts that share a slot of the recent-text cache each read as themselves', () => {
  const sm = new KvStateMachine();
  const keys = Array.from({ length: 40 }, (_, i) => `k${String.fromCharCode(0x41 + (i % 26))}${i}-same-end`.slice(0, 14).padEnd(14, '.') + 'end');
  const ids = ['client-A-x1', 'client-B-x1', 'client-é-x1', 'clientAAAx1'];
  let index = 0;
  const seqs = new Map<string, number>();
  const next = (id: string) => {
    const s = (seqs.get(id) ?? 0) + 1;
    seqs.set(id, s);
    return s;
  };
  for (let round = 0; round < 3; round++) {
    keys.forEach((key, i) => {
      const clientId = ids[i % ids.length]!;
      const r = decodeResult(sm.apply(++index, encodeCommand({ op: 'put', clientId, seq: next(clientId), key, value: new TextEncoder().encode(`${key}#${round}`) })));
      assert.is(r.type, 'written');
    });
    keys.forEach((key) => {
      const r = decodeResult(sm.apply(++index, encodeCommand({ op: 'get', clientId: 'reader', seq: next('reader'), key })));
      assert.equal(r, { type: 'value', value: new TextEncoder().encode(`${key}#${round}`) }, key);
    });
  }
  assert.is(sm.keyCount, keys.length);
  for (const id of ids) assert.is(sm.sessionSeq(id), seqs.get(id), id);
});

test.run();
