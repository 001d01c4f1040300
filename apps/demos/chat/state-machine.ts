// The chat room's deterministic state machine: posts applied in log order get the next number of
// their room; each room keeps its last `keep` messages (older ones dropped in apply, so every
// replica holds the same bounded history, and so does every snapshot). It reads no clock and no
// randomness; queries answer pages of a room's history after a message number.
import type { AppContext, AppStateMachine } from '../../platform/app.ts';
import { cborEncode } from '../../platform/envelope.ts';
import type { SnapshotImage, SnapshotRestore } from '../../state-machine.ts';
import { framedDigest, framedImage, framedRestore } from '../shared/image.ts';
import { chatKeepDefault, chatLimits, decodeChatPost, encodeChatResult, type ChatMessage, type ChatPage, type ChatQuery } from './commands.ts';

interface Room {
  /** The number of the newest message (0: none yet). */
  last: number;
  /** The kept messages, oldest first (at most `keep`). */
  messages: ChatMessage[];
}

type MessageTuple = [n: number, from: string, text: string, index: number, logTimeMs: number];
const imageMagic = 'concur-chat';
const imageVersion = 1;

export class ChatStateMachine implements AppStateMachine {
  private rooms = new Map<string, Room>();
  /** Posts applied (part of the state: every replica counts the same). */
  posts = 0;

  constructor(readonly keep: number = chatKeepDefault) {
    if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`a chat room keeps at least 1 message, got ${keep}`);
  }

  apply(command: Uint8Array, ctx: AppContext): Uint8Array {
    let c;
    try {
      c = decodeChatPost(command);
    } catch (err) {
      return encodeChatResult({ r: 'invalid', message: (err as Error).message });
    }
    let room = this.rooms.get(c.room);
    if (room === undefined) {
      if (this.rooms.size >= chatLimits.roomsMax) return encodeChatResult({ r: 'full', message: `${chatLimits.roomsMax} rooms exist already; post to one of them` });
      room = { last: 0, messages: [] };
      this.rooms.set(c.room, room);
    }
    const n = ++room.last;
    room.messages.push({ n, from: c.from, text: c.text, index: ctx.index, logTimeMs: ctx.timeMs });
    // Bounded history: drop the oldest beyond `keep` (in apply, so it is the same everywhere).
    if (room.messages.length > this.keep) room.messages.splice(0, room.messages.length - this.keep);
    this.posts++;
    return encodeChatResult({ r: 'posted', room: c.room, n, index: ctx.index });
  }

  /** Messages of `room` numbered above `after`, oldest first, at most `limit`. */
  page(name: string, after: number, limit: number): ChatPage {
    const room = this.rooms.get(name);
    if (room === undefined) return { room: name, first: 1, last: 0, messages: [] };
    const msgs = room.messages;
    const first = msgs.length > 0 ? msgs[0]!.n : room.last + 1;
    // Numbers are consecutive within the kept window: the start is arithmetic, not a search.
    const from = Math.max(0, Math.min(msgs.length, after - first + 1));
    return { room: name, first, last: room.last, messages: msgs.slice(from, from + Math.max(0, limit)) };
  }

  query(q: string): Uint8Array | undefined {
    let parsed: ChatQuery;
    try {
      parsed = JSON.parse(q) as ChatQuery;
    } catch {
      return undefined;
    }
    if (parsed?.q === 'page' && typeof parsed.room === 'string' && Number.isSafeInteger(parsed.after) && Number.isSafeInteger(parsed.limit)) {
      return cborEncode(this.page(parsed.room, parsed.after, Math.min(parsed.limit, chatLimits.pageMax)));
    }
    if (parsed?.q === 'rooms') {
      const rooms = [...this.rooms].map(([room, r]) => ({ room, last: r.last, kept: r.messages.length }));
      return cborEncode({ rooms, posts: this.posts, keep: this.keep });
    }
    return undefined;
  }

  /** The state as image parts: a header, then one part per room (messages as tuples). */
  private parts(rooms: [string, number, ChatMessage[]][], posts: number): Iterator<unknown> & Iterable<unknown> {
    return (function* () {
      yield [imageMagic, imageVersion, posts, rooms.length];
      for (const [name, last, messages] of rooms) yield [name, last, messages.map((m): MessageTuple => [m.n, m.from, m.text, m.index, m.logTimeMs])];
    })();
  }

  /** A capture of the state now: message objects never change, so copying the arrays suffices. */
  private capture(): [string, number, ChatMessage[]][] {
    return [...this.rooms].map(([name, r]) => [name, r.last, r.messages.slice()]);
  }

  snapshot(): SnapshotImage {
    return framedImage(this.parts(this.capture(), this.posts));
  }

  restore(): SnapshotRestore {
    return framedRestore('chat', (parts) => {
      const rooms = new Map<string, Room>();
      let posts = 0;
      if (parts.length > 0) {
        const h = parts[0] as unknown[];
        if (!Array.isArray(h) || h[0] !== imageMagic || h[1] !== imageVersion) throw new Error('not a chat image (version 1)');
        posts = h[2] as number;
        if (parts.length !== 1 + (h[3] as number)) throw new Error(`chat image: the header names ${String(h[3])} rooms, the image holds ${parts.length - 1}`);
        for (const p of parts.slice(1)) {
          const [name, last, tuples] = p as [string, number, MessageTuple[]];
          const messages = tuples.map(([n, from, text, index, logTimeMs]) => ({ n, from, text, index, logTimeMs }));
          rooms.set(name, { last, messages: messages.slice(Math.max(0, messages.length - this.keep)) });
        }
      }
      this.rooms = rooms;
      this.posts = posts;
    });
  }

  digest(): string {
    return framedDigest(this.parts(this.capture(), this.posts));
  }
}
