// The chat demo's state machine: posts numbered per room in log order, bad commands answered
// (never thrown), a bounded history (the last `keep` messages per room, dropped in apply),
// pages after a message number, and determinism: replicas fed the same log — one of them
// restored from a snapshot midway, fed in pieces split anywhere — end with equal digests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createChatApp } from '../../apps/demos/chat/app.ts';
import { chatLimits, chatQuery, decodeChatResult, encodeChatPost, type ChatPage, type ChatResult } from '../../apps/demos/chat/commands.ts';
import { ChatStateMachine } from '../../apps/demos/chat/state-machine.ts';
import { builtinAppsNamed } from '../../apps/platform/registry.ts';
import { AppRouter } from '../../apps/platform/router.ts';
import { cborDecode, cborEncode, encodeAppCommand, encodeClock, routerErrorOf } from '../../apps/platform/envelope.ts';
import { encodeCommand } from '../../apps/kv/commands.ts';
import type { AppStateMachine } from '../../apps/platform/app.ts';

let index = 0;
const ctx = () => ({ index: ++index, timeMs: index * 10 });

function post(m: AppStateMachine, room: string, from: string, text: string): ChatResult {
  return decodeChatResult(m.apply(encodeChatPost({ room, from, text }), ctx()));
}
const page = (m: AppStateMachine, room: string, after = 0, limit = 100) => cborDecode(m.query(chatQuery({ q: 'page', room, after, limit }))!) as ChatPage;

/** Copies a state machine through its snapshot, fed to the restore in pieces of `chunk` bytes. */
function copy<T extends AppStateMachine>(from: AppStateMachine, to: T, chunk = 7): T {
  const img = from.snapshot();
  const bytes: number[] = [];
  for (let p = img.next(); p !== null; p = img.next()) bytes.push(...p);
  const r = to.restore();
  for (let i = 0; i < bytes.length; i += chunk) r.write(Uint8Array.from(bytes.slice(i, i + chunk)));
  r.finish();
  return to;
}

test('posts are numbered per room in log order; pages after a number; rooms are listed', () => {
  const m = new ChatStateMachine();
  assert.equal(post(m, 'lobby', 'ada', 'hi'), { r: 'posted', room: 'lobby', n: 1, index });
  assert.is((post(m, 'lobby', 'bob', 'hello') as { n: number }).n, 2);
  assert.is((post(m, 'other', 'bob', 'elsewhere') as { n: number }).n, 1, 'numbers are per room');
  const p = page(m, 'lobby');
  assert.equal(p.messages.map((x) => [x.n, x.from, x.text]), [[1, 'ada', 'hi'], [2, 'bob', 'hello']]);
  assert.is(p.first, 1);
  assert.is(p.last, 2);
  assert.equal(page(m, 'lobby', 1).messages.map((x) => x.n), [2]);
  assert.equal(page(m, 'lobby', 2).messages, []);
  assert.equal(page(m, 'nobody-here'), { room: 'nobody-here', first: 1, last: 0, messages: [] });
  const rooms = cborDecode(m.query(chatQuery({ q: 'rooms' }))!) as { rooms: { room: string; last: number }[] };
  assert.equal(rooms.rooms.map((r) => [r.room, r.last]), [['lobby', 2], ['other', 1]]);
  assert.is(m.query('not json'), undefined);
  assert.is(m.query(JSON.stringify({ q: 'nope' })), undefined);
});

test('bad commands are answered, not thrown, and change nothing', () => {
  const m = new ChatStateMachine();
  const before = m.digest();
  const bad = [new Uint8Array([0xff, 0x00]), cborEncode([1, 'lobby', 'ada']), cborEncode([1, 'bad room!', 'ada', 'x']), cborEncode([1, 'lobby', '', 'x']), cborEncode([1, 'lobby', 'ada', '']), cborEncode([1, 'lobby', 'ada', 'x'.repeat(chatLimits.textBytesMax + 1)]), cborEncode([2, 'lobby', 'ada', 'x'])];
  for (const b of bad) {
    const r = decodeChatResult(m.apply(b, ctx()));
    assert.is(r.r, 'invalid', JSON.stringify(r));
    assert.ok((r as { message: string }).message.length > 10, 'with a reason');
  }
  assert.is(m.digest(), before);
  assert.throws(() => encodeChatPost({ room: 'a/b', from: 'x', text: 'y' }), /room name/);
});

test('bounded history: a room keeps its last `keep` messages; numbers keep counting; a page says where the kept window starts', () => {
  const m = new ChatStateMachine(5);
  for (let i = 1; i <= 12; i++) post(m, 'r', 'a', `m${i}`);
  const p = page(m, 'r');
  assert.is(p.first, 8);
  assert.is(p.last, 12);
  assert.equal(p.messages.map((x) => x.text), ['m8', 'm9', 'm10', 'm11', 'm12']);
  assert.equal(page(m, 'r', 10).messages.map((x) => x.n), [11, 12]);
  assert.equal(page(m, 'r', 3).messages.map((x) => x.n), [8, 9, 10, 11, 12], 'after a dropped number: from the oldest kept');
  assert.equal(page(m, 'r', 0, 2).messages.map((x) => x.n), [8, 9], 'limit');
  // The snapshot holds the bounded history only; a restored copy goes on numbering.
  const c = copy(m, new ChatStateMachine(5));
  assert.is(c.digest(), m.digest());
  assert.equal(page(c, 'r'), p);
  assert.is((post(c, 'r', 'a', 'm13') as { n: number }).n, 13);
  assert.equal(page(c, 'r').messages.map((x) => x.n), [9, 10, 11, 12, 13]);
});

test('the number of rooms is bounded: a post to one more room is refused as full', () => {
  const m = new ChatStateMachine(1);
  for (let i = 0; i < chatLimits.roomsMax; i++) assert.is(post(m, `room-${i}`, 'a', 'x').r, 'posted');
  assert.is(post(m, 'one-more', 'a', 'x').r, 'full');
  assert.is(post(m, 'room-0', 'a', 'still fine').r, 'posted', 'existing rooms still take posts');
});

test('restore: an empty image is an empty state; a damaged one throws and changes nothing', () => {
  const m = new ChatStateMachine();
  post(m, 'r', 'a', 'kept');
  const before = m.digest();
  const r = m.restore();
  r.write(new Uint8Array([9, 0, 0, 0, 1, 2]));
  assert.throws(() => r.finish(), /cut short/);
  assert.is(m.digest(), before);
  const wrong = m.restore();
  const img = new ChatStateMachine().snapshot();
  const header = img.next()!;
  header[6] ^= 0xff; // corrupt the magic
  wrong.write(header);
  assert.throws(() => wrong.finish());
  assert.is(m.digest(), before);
  const empty = m.restore();
  empty.finish();
  assert.is(m.digest(), new ChatStateMachine().digest());
});

type Op = { kind: 'post'; room: string; from: string; text: string } | { kind: 'clock'; ms: number } | { kind: 'put'; key: string } | { kind: 'garbage' };
const ops = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('post' as const), room: fc.constantFrom('a', 'b', 'c'), from: fc.constantFrom('ada', 'bob'), text: fc.string({ minLength: 1, maxLength: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clock' as const), ms: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom('x', 'y') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'garbage' as const }) },
);

test('property: replicas fed the same log end equal, one restored from a snapshot midway (through the app router, beside kv and lock)', () => {
  const apps = () => [...builtinAppsNamed(['kv', 'lock']), createChatApp({ keep: 4 })];
  fc.assert(
    fc.property(fc.array(ops, { maxLength: 80 }), fc.nat(80), fc.integer({ min: 1, max: 50 }), (list: Op[], cut, chunk) => {
      const a = new AppRouter(apps());
      let b = new AppRouter(apps());
      let i = 0;
      const feed = (r: AppRouter, bytes: Uint8Array) => r.apply(i, bytes, 0, bytes.length);
      let seq = 0;
      list.forEach((op, k) => {
        if (k === cut) {
          const img = b.snapshot();
          const fresh = new AppRouter(apps());
          const r = fresh.restore();
          for (let p = img.next(); p !== null; p = img.next()) for (let o = 0; o < p.length; o += chunk) r.write(p.subarray(o, o + chunk));
          r.finish();
          assert.is(fresh.digest(), b.digest(), 'a restored replica digests like its source');
          b = fresh;
        }
        i++;
        let bytes: Uint8Array;
        if (op.kind === 'post') bytes = encodeAppCommand('chat', 'c1', ++seq, encodeChatPost(op));
        else if (op.kind === 'clock') bytes = encodeClock(op.ms);
        else if (op.kind === 'put') bytes = encodeCommand({ op: 'put', key: op.key, value: new Uint8Array([i & 255]), clientId: 'k', seq: i });
        else bytes = encodeAppCommand('chat', '', 0, new Uint8Array([0xff, 0xfe, 0x01]));
        const ra = feed(a, bytes);
        const rb = feed(b, bytes);
        assert.equal(rb, ra, 'the same result on both');
        if (op.kind === 'post') assert.is(routerErrorOf(ra), null);
      });
      assert.is(b.digest(), a.digest());
      // Bounded on both: at most 4 messages per room, numbered consecutively up to the room's last.
      for (const room of ['a', 'b', 'c']) {
        const p = cborDecode(a.query('chat', chatQuery({ q: 'page', room, after: 0, limit: 100 }))!) as ChatPage;
        assert.ok(p.messages.length <= 4);
        p.messages.forEach((m, k) => assert.is(m.n, p.first + k));
        assert.is(p.messages.at(-1)?.n ?? p.last, p.last);
        assert.equal(cborDecode(b.query('chat', chatQuery({ q: 'page', room, after: 0, limit: 100 }))!), p);
      }
    }),
    { numRuns: 150 },
  );
});

test.run();
