// The Raft leader's side of the client pipeline (apps/cluster/client-sessions.ts) over a stub core:
// results only after apply and only for this session's own entries, streams kept apart, a stream
// started afresh on request, and a witness that never takes a client's commands.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientSessions } from '../../apps/cluster/client-sessions.ts';
import { readResults } from '../../apps/cluster/client-wire.ts';
import { decodeControl, FrameKind, ProposeFrameWriter, proposeStartsStream, proposeWantsResults } from '../../apps/cluster/wire.ts';
import { Role, type RaftNode } from '../../protocols/raft/index.ts';

const text = new TextEncoder();
const untext = new TextDecoder();

class StubRaft {
  currentRole: number = Role.leader;
  leaderId = 1;
  currentTerm = 2;
  lastIndex = 4;
  refuseFrom = Infinity;
  readonly terms = new Map<number, number>();
  readonly proposed: string[] = [];
  propose(data: Uint8Array): number {
    if (this.lastIndex + 1 >= this.refuseFrom) return 0;
    this.lastIndex++;
    this.terms.set(this.lastIndex, this.currentTerm);
    this.proposed.push(untext.decode(data));
    return this.lastIndex;
  }
}

interface Out {
  to: number;
  kind: number;
  stream: number;
  seq?: number;
  leader?: number;
  /** Redirects: the node took nothing from seq on (else: go back, what it took may still apply). */
  notTaken?: boolean;
  results?: [number, number, string][];
}

function setup(canLead = () => true) {
  const raft = new StubRaft();
  const out: Out[] = [];
  const sessions = new ClientSessions(
    raft as unknown as RaftNode,
    {
      sendFrame(to, frame) {
        const kind = frame[1]!;
        if (kind === FrameKind.results) {
          const results: [number, number, string][] = [];
          const stream = readResults(frame, 0, frame.length, (seq, index, r) => results.push([seq, index, untext.decode(r)]));
          out.push({ to, kind, stream, results });
        } else {
          const c = decodeControl(frame, 0, frame.length);
          out.push(kind === FrameKind.redirect ? { to, kind, stream: c.stream, seq: c.seq, leader: c.leader, notTaken: c.notTaken } : { to, kind, stream: c.stream, seq: c.seq, leader: c.leader });
        }
      },
    },
    (i) => raft.terms.get(i) ?? 0,
    canLead,
  );
  return { raft, out, sessions };
}

function frame(firstSeq: number, commands: string[], flags = proposeWantsResults, stream = 0): Uint8Array {
  const w = new ProposeFrameWriter(64, 64);
  w.begin(firstSeq, flags, stream);
  for (const c of commands) w.bytes.set(text.encode(c), w.add(c.length));
  return w.finish().slice();
}

function apply(s: ClientSessions, from: number, to: number, result: (i: number) => string): void {
  for (let i = from; i <= to; i++) if (s.wantResults) s.applied(i, text.encode(result(i)));
  s.advanceAcks(1, to);
  s.sendAcks();
}

test('results go back only after apply, each with its index, as one cumulative frame per session', () => {
  const { out, sessions } = setup();
  const f = frame(1, ['a', 'b', 'c']);
  sessions.onProposeFrame(1, 0, f, 0, f.length);
  apply(sessions, 5, 6, (i) => `r${i}`);
  assert.equal(out, [], 'nothing until the whole frame is applied');
  apply(sessions, 7, 7, (i) => `r${i}`);
  assert.equal(out, [{ to: 0, kind: FrameKind.results, stream: 0, results: [[1, 5, 'r5'], [2, 6, 'r6'], [3, 7, 'r7']] }]);
});

test('a client that wants no results gets a bare ack (the benchmark client)', () => {
  const { out, sessions } = setup();
  const f = frame(1, ['a', 'b'], 0);
  sessions.onProposeFrame(1, 9, f, 0, f.length);
  apply(sessions, 5, 6, () => 'x');
  assert.equal(out, [{ to: 9, kind: FrameKind.ack, stream: 0, seq: 2, leader: 0 }]);
});

test("another leader's entry at our index: no result for it, the client goes back to its last ack", () => {
  const { raft, out, sessions } = setup();
  const f1 = frame(1, ['a']);
  const f2 = frame(2, ['b', 'c']);
  sessions.onProposeFrame(1, 0, f1, 0, f1.length);
  sessions.onProposeFrame(1, 0, f2, 0, f2.length);
  // Entries 6 and 7 were overwritten by a leader of term 3.
  raft.terms.set(6, 3);
  raft.terms.set(7, 3);
  apply(sessions, 5, 7, (i) => `r${i}`);
  assert.equal(out, [
    { to: 0, kind: FrameKind.results, stream: 0, results: [[1, 5, 'r5']] },
    { to: 0, kind: FrameKind.redirect, stream: 0, seq: 2, leader: 0, notTaken: false },
  ]);
});

test('streams of one client are separate sessions; a frame past what is expected is ignored unless it starts the stream', () => {
  const { raft, out, sessions } = setup();
  const s0 = frame(1, ['a']);
  const s3 = frame(1, ['x'], proposeWantsResults, 3);
  sessions.onProposeFrame(1, 0, s0, 0, s0.length);
  sessions.onProposeFrame(1, 0, s3, 0, s3.length);
  assert.equal(raft.proposed, ['a', 'x']);
  const ahead = frame(5, ['gap']);
  sessions.onProposeFrame(1, 0, ahead, 0, ahead.length);
  assert.equal(raft.proposed, ['a', 'x'], 'ahead of seq 2: ignored');
  const restart = frame(5, ['fresh'], proposeWantsResults | proposeStartsStream);
  sessions.onProposeFrame(1, 0, restart, 0, restart.length);
  assert.equal(raft.proposed, ['a', 'x', 'fresh']);
  apply(sessions, 5, 7, (i) => `r${i}`);
  assert.equal(out, [
    { to: 0, kind: FrameKind.results, stream: 3, results: [[1, 6, 'r6']] },
    { to: 0, kind: FrameKind.results, stream: 0, results: [[5, 7, 'r7']] },
  ]);
});

test('busy mid-frame: what was proposed is answered, the client is told to send again from the first refused', () => {
  const { raft, out, sessions } = setup();
  raft.refuseFrom = 7;
  const f = frame(1, ['a', 'b', 'c']);
  sessions.onProposeFrame(1, 0, f, 0, f.length);
  assert.equal(out, [{ to: 0, kind: FrameKind.busy, stream: 0, seq: 3, leader: 0 }]);
  apply(sessions, 5, 6, (i) => `r${i}`);
  assert.equal(out[1], { to: 0, kind: FrameKind.results, stream: 0, results: [[1, 5, 'r5'], [2, 6, 'r6']] });
  // The resend overlaps nothing already taken.
  raft.refuseFrom = Infinity;
  const again = frame(3, ['c']);
  sessions.onProposeFrame(1, 0, again, 0, again.length);
  assert.equal(raft.proposed, ['a', 'b', 'c']);
});

test('a follower, or a witness leading for a moment, redirects and takes nothing', () => {
  const w = setup(() => false);
  const f = frame(1, ['a']);
  w.sessions.onProposeFrame(1, 0, f, 0, f.length);
  assert.equal(w.raft.proposed, []);
  assert.is(w.out[0]!.kind, FrameKind.redirect);
  const follower = setup();
  follower.raft.currentRole = Role.follower;
  follower.raft.leaderId = 2;
  follower.sessions.onProposeFrame(1, 0, f, 0, f.length);
  assert.equal(follower.out, [{ to: 0, kind: FrameKind.redirect, stream: 0, seq: 1, leader: 2, notTaken: true }]);
});

test.run();
