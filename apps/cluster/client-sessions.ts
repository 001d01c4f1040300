// The leader's side of the client-actor protocol (apps/cluster/wire.ts): frames of proposals
// with sequence numbers, one cumulative ack per client per batch ("applied through seq N"),
// and a redirect or busy that sends the client back to its last ack. It must never ack a
// proposal before it is applied, nor one whose log index another leader's entry took.
import type { ActorId } from '../../runtime/actor.ts';
import { DecodeError } from '../../runtime/codec.ts';
import { Role, type RaftNode } from '../../protocols/raft/index.ts';
import { ResultsWriter, sendDue, type AnsweredStream } from './client-wire.ts';
import { commandHeaderBytes, commandLength, cutShort, encodeControl, FrameKind, proposeHeader, proposeHeaderBytes, proposeStartsStream, proposeWantsResults } from './wire.ts';

/**
 * What the leader knows of one client actor: the next seq it expects (a frame that does not
 * start there or before is ignored: the client goes back to its last ack after a busy or a
 * redirect), and per accepted frame the last log index and seq it covers.
 */
interface ClientSession extends AnsweredStream {
  /** Cleared when the session is dropped (its ranges in `owners` are then skipped). */
  live: boolean;
  nextSeq: number;
  /** Flat queue of (lastIndex, lastSeq, term) triples from `head`. */
  batches: number[];
  head: number;
}

export interface SessionIO {
  sendFrame(to: ActorId, frame: Uint8Array): void;
}


/** A session's key: its client actor and the stream within it. */
function keyOf(client: ActorId, stream: number): number {
  return client * 256 + stream;
}

export class ClientSessions {
  private readonly sessions = new Map<number, ClientSession>();
  /** Index ranges proposed for sessions that want results, in index order: (first, last, session) triples. */
  private owners: (number | ClientSession)[] = [];
  private ownersHead = 0;
  private readonly writer = new ResultsWriter();
  private readonly send = (to: ActorId, frame: Uint8Array): void => this.io.sendFrame(to, frame);
  private acksDue = false;
  /** Proposals accepted from client actors since start (benchmark counter). */
  proposalsAccepted = 0;

  constructor(
    private readonly raft: RaftNode,
    private readonly io: SessionIO,
    /** The term of the entry at an index (to tell our entry from another leader's). */
    private readonly termAt: (index: number) => number,
    /** False on a witness: it leads only until it hands leadership on, and keeps no state machine to answer from. */
    private readonly canLead: () => boolean = () => true,
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
    const { count, firstSeq, flags, stream } = proposeHeader(bytes, start, end);
    const key = keyOf(client, stream);
    if (this.raft.currentRole !== Role.leader || !this.canLead()) {
      this.drop(key);
      this.io.sendFrame(client, encodeControl(FrameKind.redirect, firstSeq, this.leaderHint(self), stream, true));
      return;
    }
    let s = this.sessions.get(key);
    if (s !== undefined && (flags & proposeStartsStream) !== 0) {
      // The client (re)starts its stream here: it may have gone on with another leader since.
      this.drop(key);
      s = undefined;
    }
    // Ahead of what we expect: an earlier frame was refused; the client will go back.
    if (s !== undefined && firstSeq > s.nextSeq) return;
    if (s === undefined) {
      // A client's first frame here sets where its stream starts (it may come from another leader).
      const wantsResults = (flags & proposeWantsResults) !== 0;
      s = { client, stream, wantsResults, results: [], sentSeq: firstSeq - 1, live: true, nextSeq: firstSeq, batches: [], head: 0, ackedSeq: firstSeq - 1, ackDue: false };
      this.sessions.set(key, s);
    }
    const skip = s.nextSeq - firstSeq;
    if (skip >= count) return;
    const copy = bytes.slice(start, end);
    const buffer = copy.buffer; // once: `.buffer` is a slow builtin call
    let at = proposeHeaderBytes;
    let firstIndex = 0;
    let lastIndex = 0;
    for (let i = 0; i < count; i++) {
      if (at + commandHeaderBytes > copy.length) throw cutShort(end - start, 'propose frame cut short at command', i, count);
      const len = commandLength(copy, at);
      const dataAt = at + commandHeaderBytes;
      if (dataAt + len > copy.length) throw cutShort(end - start, 'propose frame cut short at command', i, count);
      at = dataAt + len;
      if (i < skip) continue;
      const index = this.raft.propose(new Uint8Array(buffer, dataAt, len));
      if (index === 0) {
        // Refused while leader: too many uncommitted entries or bytes, or a transfer. Back off.
        this.io.sendFrame(client, encodeControl(FrameKind.busy, s.nextSeq, 0, stream));
        break;
      }
      if (firstIndex === 0) firstIndex = index;
      lastIndex = index;
      s.nextSeq++;
      this.proposalsAccepted++;
    }
    if (lastIndex > 0) {
      s.batches.push(lastIndex, s.nextSeq - 1, this.raft.currentTerm);
      if (s.wantsResults) this.owners.push(firstIndex, lastIndex, s);
    }
  }

  /**
   * Called for every applied entry (with the state machine's answer) while any session wants
   * results: keeps the answer if the entry is one such a session proposed. Whether it was really
   * that session's entry (not another leader's at the same index) advanceAcks checks by term
   * before anything is sent.
   */
  applied(index: number, result: Uint8Array): void {
    const o = this.owners;
    let h = this.ownersHead;
    while (h < o.length && (o[h + 1] as number) < index) h += 3;
    if (h < o.length && (o[h] as number) <= index) {
      const s = o[h + 2] as ClientSession;
      if (s.live) s.results.push(index, result);
    }
    if (h === o.length) {
      o.length = 0;
      h = 0;
    } else if (h >= 3 * 1024 && h * 2 >= o.length) {
      o.copyWithin(0, h);
      o.length -= h;
      h = 0;
    }
    this.ownersHead = h;
  }

  /** Whether apply must report results (some session wants them). */
  get wantResults(): boolean {
    return this.owners.length > this.ownersHead;
  }

  private drop(key: number): void {
    const s = this.sessions.get(key);
    if (s === undefined) return;
    s.live = false;
    this.sessions.delete(key);
  }

  /** Drops a session and sends its client back to its last ack. */
  private redirect(self: ActorId, key: number, s: ClientSession): void {
    this.drop(key);
    this.io.sendFrame(s.client, encodeControl(FrameKind.redirect, s.ackedSeq + 1, this.leaderHint(self), s.stream));
  }

  /** After apply: advance every client's ack to the last frame whose entries are all applied. */
  advanceAcks(self: ActorId, applied: number): void {
    for (const [key, s] of this.sessions) {
      const q = s.batches;
      let h = s.head;
      while (h < q.length && q[h]! <= applied) {
        if (this.termAt(q[h]!) !== q[h + 2]) {
          // Another leader's entry took this index: what this client sent from there is lost
          // (results kept since the last ack go too: sending them would ack past the loss).
          sendDue(s, this.writer, this.send);
          this.redirect(self, key, s);
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
    for (const [key, s] of this.sessions) {
      if (s.head < s.batches.length && s.batches[s.head]! <= index) {
        sendDue(s, this.writer, this.send);
        this.redirect(self, key, s);
      }
    }
  }

  sendAcks(): void {
    if (!this.acksDue) return;
    this.acksDue = false;
    for (const s of this.sessions.values()) sendDue(s, this.writer, this.send);
  }

  /** Lost leadership: every client goes back to its last ack and follows the hint. */
  redirectAll(self: ActorId): void {
    for (const [key, s] of this.sessions) {
      sendDue(s, this.writer, this.send);
      this.redirect(self, key, s);
    }
    this.owners = [];
    this.ownersHead = 0;
  }
}
