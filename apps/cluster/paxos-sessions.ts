// The Paxos proposer's side of the client-actor protocol (apps/cluster/wire.ts), after
// client-sessions.ts (Raft's): frames of proposals with sequence numbers, one cumulative ack per
// client per batch ("applied through seq N"), and a redirect or busy that sends the client back
// to its last ack. It must never ack a proposal before it is applied, nor one another value took
// the place of.
//
// What differs from Raft: PaxosNode.propose returns no index (a Multi-Paxos leader gives the
// value a slot later, past its window), slots are chosen out of order and applied in order, and a
// deposed leader's value may be replaced by another leader's no-op or value. So a command is known
// by the identity of its bytes, not by a log index: each propose frame is copied out of the ring
// once, every command is a view of that copy, and the core hands the leader's own value objects
// to apply unchanged (propose → instance → accept to itself → chosen → apply, all the same Value;
// a value learned from another node is a decoded copy, never one of ours). A frame is done once
// as many values of its buffer were applied as it had commands proposed; a session's frames are
// acked in order, so a frame whose command was replaced holds its session's acks back until the
// leadership changes (every session is sent back to its last ack) or, as a last resort, until the
// session has made no progress for `stuckMs` (it is sent back to its last ack here).
import type { ActorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { PaxosRole, type PaxosNode, type Value } from '../../protocols/paxos/index.ts';
import { ResultsWriter, sendDue, type AnsweredStream } from './client-wire.ts';
import { commandHeaderBytes, commandLength, cutShort, encodeControl, FrameKind, proposeHeader, proposeHeaderBytes, proposeStartsStream, proposeWantsResults } from './wire.ts';

/** One accepted propose frame: its commands proposed and not yet applied, and the last seq it covers. */
interface FrameRecord {
  readonly session: PaxosSession;
  lastSeq: number;
  remaining: number;
  /** A session that wants results: (slot, result) per command proposed, by position. */
  results: (number | Uint8Array)[] | null;
}

/** A command's tag when its session wants results: its frame and its place in it (else the tag is the frame). */
interface CommandTag {
  readonly frame: FrameRecord;
  readonly pos: number;
}


/** What the proposer knows of one client actor (see ClientSession in client-sessions.ts). */
interface PaxosSession extends AnsweredStream {
  /** The next seq expected; a frame starting past it is ignored (the client will go back). */
  nextSeq: number;
  /** Accepted frames not yet acked, oldest first, from `head`. */
  frames: FrameRecord[];
  head: number;
  /** When this session last had a frame acked, or became non-empty (for the stuck check). */
  progressAt: number;
}

export interface PaxosSessionIO {
  sendFrame(to: ActorId, frame: Uint8Array): void;
  now(): number;
}

export class PaxosSessions {
  /** By client actor × 256 + stream. */
  private readonly sessions = new Map<number, PaxosSession>();
  private readonly writer = new ResultsWriter();
  private readonly send = (to: ActorId, frame: Uint8Array): void => this.io.sendFrame(to, frame);
  /** Frames with commands proposed and not all applied, by their copy's buffer. */
  /** Frames whose commands still count (each command's value carries its frame as its tag). */
  private readonly frames = new Set<FrameRecord>();
  private acksDue = false;
  /** Multi-Paxos: the ballot the sessions' commands were proposed under (0: none yet). */
  private ballot = 0;
  /** Proposals accepted from client actors since start (benchmark counter). */
  proposalsAccepted = 0;

  constructor(
    private readonly node: PaxosNode,
    private readonly io: PaxosSessionIO,
    /** Basic Paxos: every node proposes, so frames are taken whatever the role. */
    private readonly basic: boolean,
    /** A session with frames outstanding and no ack for this long is sent back to its last ack. */
    private readonly stuckMs: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Frames proposed and not yet all applied (for tests and status). */
  get framesOutstanding(): number {
    return this.frames.size;
  }

  private leaderHint(self: ActorId): number {
    const lead = this.node.status().leader;
    return lead === self ? 0 : lead;
  }

  /**
   * A frame of proposals: copied out of the ring once; each command is a view of that copy, and
   * that copy's buffer is how apply tells this frame's commands from every other value.
   */
  onProposeFrame(self: ActorId, client: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const { count, firstSeq, flags, stream } = proposeHeader(bytes, start, end);
    const key = client * 256 + stream;
    if (!this.basic) {
      const st = this.node.status();
      if (st.role !== PaxosRole.leader) {
        this.drop(key);
        this.io.sendFrame(client, encodeControl(FrameKind.redirect, firstSeq, st.leader === self ? 0 : st.leader, stream, true));
        return;
      }
      // Leadership lost and won again between two looks: what was proposed before may be replaced.
      if (st.ballot !== this.ballot) {
        if (this.ballot !== 0) this.rewindAll(self);
        this.ballot = st.ballot;
      }
    }
    let s = this.sessions.get(key);
    if (s !== undefined && (flags & proposeStartsStream) !== 0) {
      // The client (re)starts its stream here: it may have gone on with another leader since.
      this.drop(key);
      s = undefined;
    }
    if (s === undefined) {
      // A client's first frame here sets where its stream starts (it may come from another leader).
      const wantsResults = (flags & proposeWantsResults) !== 0;
      s = { client, stream, wantsResults, results: [], sentSeq: firstSeq - 1, nextSeq: firstSeq, frames: [], head: 0, ackedSeq: firstSeq - 1, ackDue: false, progressAt: this.io.now() };
      this.sessions.set(key, s);
    }
    const skip = s.nextSeq - firstSeq;
    // Ahead of what we expect: an earlier frame was refused; the client will go back.
    if (skip < 0 || skip >= count) return;
    const copy = bytes.slice(start, end);
    const buffer = copy.buffer; // once: `.buffer` is a slow builtin call
    if (s.head === s.frames.length) s.progressAt = this.io.now();
    const f: FrameRecord = { session: s, lastSeq: 0, remaining: 0, results: s.wantsResults ? [] : null };
    let at = proposeHeaderBytes;
    let proposed = 0;
    for (let i = 0; i < count; i++) {
      if (at + commandHeaderBytes > copy.length) throw cutShort(end - start, 'propose frame cut short at command', i, count);
      const len = commandLength(copy, at);
      const dataAt = at + commandHeaderBytes;
      if (dataAt + len > copy.length) throw cutShort(end - start, 'propose frame cut short at command', i, count);
      at = dataAt + len;
      if (i < skip) continue;
      if (!this.node.propose(new Uint8Array(buffer, dataAt, len), s.wantsResults ? ({ frame: f, pos: proposed } satisfies CommandTag) : f)) {
        // Refused: a Multi-Paxos leader with its window and backlog full, a Basic Paxos proposer
        // with its queue full (back off), or no longer the leader (go to the new one).
        if (this.basic || this.node.currentRole === PaxosRole.leader) this.io.sendFrame(client, encodeControl(FrameKind.busy, s.nextSeq, 0, stream));
        else this.io.sendFrame(client, encodeControl(FrameKind.redirect, s.nextSeq, this.leaderHint(self), stream, true));
        break;
      }
      proposed++;
      s.nextSeq++;
      this.proposalsAccepted++;
    }
    if (proposed === 0) return;
    f.lastSeq = s.nextSeq - 1;
    f.remaining = proposed;
    s.frames.push(f);
    this.frames.add(f);
  }

  /**
   * A value was applied (call for every normal value, in slot order). If it is one of a frame's
   * commands, that frame is one closer to done; done frames at the front of their session's queue
   * move its ack forward.
   */
  applied(value: Value, slot: number, result: Uint8Array): void {
    const tag = value.tag as FrameRecord | CommandTag | undefined;
    if (tag === undefined) return;
    const f = 'frame' in tag ? tag.frame : tag;
    if (!this.frames.has(f)) return;
    if (f.results !== null) {
      const pos = (tag as CommandTag).pos;
      f.results[2 * pos] = slot;
      f.results[2 * pos + 1] = result;
    }
    if (--f.remaining > 0) return;
    this.frames.delete(f);
    const s = f.session;
    // Frames of one session may finish out of order (Basic Paxos chooses slots in any order, and
    // a frame with a replaced command never finishes): the ack covers only a finished prefix.
    const q = s.frames;
    let h = s.head;
    if (q[h] !== f) return;
    while (h < q.length && q[h]!.remaining === 0) {
      s.ackedSeq = q[h]!.lastSeq;
      const r = q[h]!.results;
      if (r !== null) for (const x of r) s.results.push(x);
      h++;
    }
    s.ackDue = true;
    this.acksDue = true;
    s.progressAt = this.io.now();
    if (h === q.length) {
      q.length = 0;
      h = 0;
    } else if (h >= 1024 && h * 2 >= q.length) {
      q.copyWithin(0, h);
      q.length -= h;
      h = 0;
    }
    s.head = h;
  }

  /** One cumulative ack to each client whose ack moved (after the Ready loop). */
  sendAcks(): void {
    if (!this.acksDue) return;
    this.acksDue = false;
    for (const s of this.sessions.values()) sendDue(s, this.writer, this.send, true);
  }

  /**
   * Sessions with frames outstanding and no progress for stuckMs go back to their last ack here.
   * The safety net for a command whose value was replaced without a change of leader (Basic
   * Paxos: a slot chosen with a copy of our value from another acceptor, or a command merged by
   * content with another client's equal one); Multi-Paxos replaces values only across leaders.
   */
  tick(self: ActorId): void {
    if (this.frames.size === 0) return;
    const now = this.io.now();
    for (const s of this.sessions.values()) {
      if (s.head < s.frames.length && now - s.progressAt > this.stuckMs) this.rewind(s, self);
    }
  }

  /** Leadership lost: every client goes back to its last ack and follows the hint to the new leader. */
  leadershipLost(self: ActorId): void {
    if (this.sessions.size === 0) return;
    this.sendAcks();
    const hint = this.leaderHint(self);
    for (const s of this.sessions.values()) this.io.sendFrame(s.client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, hint, s.stream));
    this.sessions.clear();
    this.frames.clear();
    this.ballot = 0;
  }

  /**
   * A snapshot replaced the state machine: what clients sent and was not acked may or may not be
   * in it. Every session with frames outstanding goes back to its last ack (its commands will be
   * proposed again; the state machine's session table makes a resend safe).
   */
  forgetAll(self: ActorId): void {
    this.sendAcks();
    for (const s of this.sessions.values()) if (s.head < s.frames.length) this.rewind(s, self);
  }

  /** Sends one session back to its last ack while this node still takes its frames. */
  private rewind(s: PaxosSession, self: ActorId): void {
    // A frame counts only while it is in the set: its commands that apply later count for nothing.
    for (const f of this.frames) if (f.session === s) this.frames.delete(f);
    s.frames = [];
    s.head = 0;
    // Frames the client sent before it hears this start past nextSeq and are ignored.
    s.nextSeq = s.ackedSeq + 1;
    s.progressAt = this.io.now();
    sendDue(s, this.writer, this.send, true);
    // The hint names this node: "send again from there, here".
    this.io.sendFrame(s.client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, this.basic || this.node.currentRole === PaxosRole.leader ? self : this.leaderHint(self), s.stream));
  }

  /** Every session back to its last ack (its values may have been replaced). */
  private rewindAll(self: ActorId): void {
    this.sendAcks();
    for (const s of this.sessions.values()) if (s.head < s.frames.length) this.rewind(s, self);
  }

  private drop(key: number): void {
    const s = this.sessions.get(key);
    if (s === undefined) return;
    this.sessions.delete(key);
    for (const f of this.frames) if (f.session === s) this.frames.delete(f);
  }
}
