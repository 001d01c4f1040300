// The leader's side of the client-actor protocol (apps/cluster/wire.ts): frames of proposals
// with sequence numbers, one cumulative ack per client per batch ("applied through seq N"),
// and a redirect or busy that sends the client back to its last ack. It must never ack a
// proposal before it is applied, nor one whose log index another leader's entry took.
import type { ActorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { Role, type RaftNode } from '../../protocols/raft/index.ts';
import { commandHeaderBytes, commandLength, encodeControl, FrameKind, proposeHeader, proposeHeaderBytes } from './wire.ts';

/**
 * What the leader knows of one client actor: the next seq it expects (a frame that does not
 * start there or before is ignored: the client goes back to its last ack after a busy or a
 * redirect), and per accepted frame the last log index and seq it covers.
 */
interface ClientSession {
  nextSeq: number;
  /** Flat queue of (lastIndex, lastSeq, term) triples from `head`. */
  batches: number[];
  head: number;
  ackedSeq: number;
  ackDue: boolean;
}

export interface SessionIO {
  sendFrame(to: ActorId, frame: Uint8Array): void;
}

export class ClientSessions {
  private readonly sessions = new Map<ActorId, ClientSession>();
  private acksDue = false;
  /** Proposals accepted from client actors since start (benchmark counter). */
  proposalsAccepted = 0;

  constructor(
    private readonly raft: RaftNode,
    private readonly io: SessionIO,
    /** The term of the entry at an index (to tell our entry from another leader's). */
    private readonly termAt: (index: number) => number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  private leaderHint(self: ActorId): number {
    const lead = this.raft.leaderId;
    return lead === self ? 0 : lead;
  }

  /**
   * A frame of proposals: copied out of the ring once; each command is a view of that copy, so
   * the bytes go to the log, the followers and apply without another copy or any re-encoding.
   */
  onProposeFrame(self: ActorId, client: ActorId, bytes: Uint8Array, start: number, end: number): void {
    const { count, firstSeq } = proposeHeader(bytes, start, end);
    if (this.raft.currentRole !== Role.leader) {
      this.sessions.delete(client);
      this.io.sendFrame(client, encodeControl(FrameKind.redirect, firstSeq, this.leaderHint(self)));
      return;
    }
    let s = this.sessions.get(client);
    if (s === undefined) {
      // A client's first frame here sets where its stream starts (it may come from another leader).
      s = { nextSeq: firstSeq, batches: [], head: 0, ackedSeq: firstSeq - 1, ackDue: false };
      this.sessions.set(client, s);
    }
    const skip = s.nextSeq - firstSeq;
    // Ahead of what we expect: an earlier frame was refused; the client will go back.
    if (skip < 0 || skip >= count) return;
    const copy = bytes.slice(start, end);
    const buffer = copy.buffer; // once: `.buffer` is a slow builtin call
    let at = proposeHeaderBytes;
    let lastIndex = 0;
    for (let i = 0; i < count; i++) {
      if (at + commandHeaderBytes > copy.length) throw new DecodeError(end - start, `propose frame cut short at command ${i} of ${count}`);
      const len = commandLength(copy, at);
      const dataAt = at + commandHeaderBytes;
      if (dataAt + len > copy.length) throw new DecodeError(end - start, `propose frame cut short at command ${i} of ${count}`);
      at = dataAt + len;
      if (i < skip) continue;
      const index = this.raft.propose(new Uint8Array(buffer, dataAt, len));
      if (index === 0) {
        // Refused while leader: too many uncommitted entries or bytes, or a transfer. Back off.
        this.io.sendFrame(client, encodeControl(FrameKind.busy, s.nextSeq));
        break;
      }
      lastIndex = index;
      s.nextSeq++;
      this.proposalsAccepted++;
    }
    if (lastIndex > 0) s.batches.push(lastIndex, s.nextSeq - 1, this.raft.currentTerm);
  }

  /** After apply: advance every client's ack to the last frame whose entries are all applied. */
  advanceAcks(self: ActorId, applied: number): void {
    for (const [client, s] of this.sessions) {
      const q = s.batches;
      let h = s.head;
      while (h < q.length && q[h]! <= applied) {
        if (this.termAt(q[h]!) !== q[h + 2]) {
          // Another leader's entry took this index: what this client sent from there is lost.
          this.sessions.delete(client);
          this.io.sendFrame(client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, this.leaderHint(self)));
          h = -1;
          break;
        }
        s.ackedSeq = q[h + 1]!;
        s.ackDue = true;
        this.acksDue = true;
        h += 3;
      }
      if (h < 0) continue;
      if (h === q.length) {
        q.length = 0;
        h = 0;
      } else if (h >= 3 * 1024 && h * 2 >= q.length) {
        // Under steady load the queue never empties: drop its consumed front now and then.
        q.copyWithin(0, h);
        q.length -= h;
        h = 0;
      }
      s.head = h;
    }
  }

  /**
   * A snapshot replaced the log through `index`: what clients sent up to there may or may not be
   * in it. They go back to their last ack (the state machine's session table makes a resend safe).
   */
  forgetThrough(self: ActorId, index: number): void {
    for (const [client, s] of this.sessions) {
      if (s.head < s.batches.length && s.batches[s.head]! <= index) {
        this.sessions.delete(client);
        this.io.sendFrame(client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, this.leaderHint(self)));
      }
    }
  }

  sendAcks(): void {
    if (!this.acksDue) return;
    this.acksDue = false;
    for (const [client, s] of this.sessions) {
      if (!s.ackDue) continue;
      s.ackDue = false;
      this.io.sendFrame(client, encodeControl(FrameKind.ack, s.ackedSeq));
    }
  }

  /** Lost leadership: every client goes back to its last ack and follows the hint. */
  redirectAll(self: ActorId): void {
    for (const [client, s] of this.sessions) this.io.sendFrame(client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, this.leaderHint(self)));
    this.sessions.clear();
  }
}
