// The chat room's wire format: the one command (post a message to a room), its results, the
// queries and their answers, and the limits — checked at the HTTP edge and again in apply, so a
// replica answers bad bytes the same way everywhere and never throws.
import { cborDecode, cborEncode } from '../../platform/envelope.ts';

export const chatLimits = Object.freeze({
  /** Room names: URL-safe, so /chat/:room needs no escaping. */
  roomPattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
  fromBytesMax: 64,
  textBytesMax: 2_000,
  /** Rooms with messages at once; a post to a new room beyond this is refused. */
  roomsMax: 1_000,
  /** Messages a query or one page of the stream returns at most. */
  pageMax: 500,
});

/** Messages kept per room by default (older ones are dropped, the same on every replica). */
export const chatKeepDefault = 200;

export interface ChatPost {
  room: string;
  from: string;
  text: string;
}

export interface ChatMessage {
  /** The message's number in its room: 1, 2, 3, ... in log order, never reused. */
  n: number;
  from: string;
  text: string;
  /** The log index it was applied at. */
  index: number;
  /** The log's time then (ms; advances only while some app asks for time). */
  logTimeMs: number;
}

export type ChatResult =
  | { r: 'posted'; room: string; n: number; index: number }
  | { r: 'full'; message: string }
  | { r: 'invalid'; message: string };

/** The answer to a `page` query: messages of `room` after `after`. */
export interface ChatPage {
  room: string;
  /** The number of the oldest message kept (last + 1 when none is kept). */
  first: number;
  /** The number of the newest message (0 when the room never had one). */
  last: number;
  messages: ChatMessage[];
}

export type ChatQuery = { q: 'page'; room: string; after: number; limit: number } | { q: 'rooms' };

const utf8 = new TextEncoder();

export function roomProblem(room: unknown): string | null {
  if (typeof room !== 'string' || !chatLimits.roomPattern.test(room)) return `a room name is 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got ${JSON.stringify(room)}`;
  return null;
}

/** Why a post is not acceptable, or null. */
export function chatPostProblem(c: ChatPost): string | null {
  const room = roomProblem(c.room);
  if (room !== null) return room;
  if (typeof c.from !== 'string' || c.from.trim().length === 0 || utf8.encode(c.from).length > chatLimits.fromBytesMax) return `"from" is 1 to ${chatLimits.fromBytesMax} bytes of text (not only spaces)`;
  if (typeof c.text !== 'string' || c.text.length === 0 || utf8.encode(c.text).length > chatLimits.textBytesMax) return `"text" is 1 to ${chatLimits.textBytesMax} bytes of text`;
  return null;
}

export function encodeChatPost(c: ChatPost): Uint8Array {
  const problem = chatPostProblem(c);
  if (problem !== null) throw new RangeError(problem);
  return cborEncode([1, c.room, c.from, c.text]);
}

/** Decodes a command; throws RangeError with a reason on anything else. */
export function decodeChatPost(bytes: Uint8Array): ChatPost {
  let t: unknown;
  try {
    t = cborDecode(bytes);
  } catch (err) {
    throw new RangeError(`not CBOR: ${(err as Error).message}`);
  }
  if (!Array.isArray(t) || t[0] !== 1 || t.length !== 4) throw new RangeError('a chat command is the CBOR tuple [1, room, from, text]');
  const c: ChatPost = { room: t[1] as string, from: t[2] as string, text: t[3] as string };
  const problem = chatPostProblem(c);
  if (problem !== null) throw new RangeError(problem);
  return c;
}

export const encodeChatResult = (r: ChatResult): Uint8Array => cborEncode(r);
export const decodeChatResult = (b: Uint8Array): ChatResult => cborDecode(b) as ChatResult;

export const chatQuery = (q: ChatQuery): string => JSON.stringify(q);
