// The Paxos proposer's side of the client-actor protocol (apps/cluster/paxos-sessions.ts): on its
// own over a stub core (acks by the tag a value carries from its propose, in order, never for a copy), and
// inside three PaxosHosts over a fake network (acks only after apply, redirect from a follower,
// busy on refusal, a replaced command never acked, redirect when leadership is lost).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PaxosHost, type PaxosHostInit, type PaxosNodeConfig } from '../../apps/cluster/paxos-host.ts';
import { PaxosSessions } from '../../apps/cluster/paxos-sessions.ts';
import { readResults } from '../../apps/cluster/client-wire.ts';
import { decodeControl, FrameKind, ProposeFrameWriter, proposeWantsResults } from '../../apps/cluster/wire.ts';
import { CountStateMachine } from '../../apps/count/state-machine.ts';
import { PaxosRole, type PaxosNode } from '../../protocols/paxos/index.ts';

const noResult = new Uint8Array(0);

interface Control {
  to: number;
  kind: string;
  seq: number;
  leader: number;
}

const kindName: Record<number, string> = { [FrameKind.ack]: 'ack', [FrameKind.redirect]: 'redirect', [FrameKind.busy]: 'busy' };

function control(to: number, frame: Uint8Array): Control {
  const c = decodeControl(frame, 0, frame.length);
  return { to, kind: kindName[c.kind] ?? String(c.kind), seq: c.seq, leader: c.leader };
}

/** A propose frame of `n` commands from `firstSeq`, each command's first bytes its seq (as the bench client does). */
function proposeFrame(firstSeq: number, n: number, bytes = 8): Uint8Array {
  const w = new ProposeFrameWriter(n, bytes);
  w.begin(firstSeq);
  for (let i = 0; i < n; i++) {
    const at = w.add(bytes);
    new DataView(w.bytes.buffer).setUint32(at, firstSeq + i, true);
  }
  return w.finish().slice();
}

// ---- the sessions class over a stub core ------------------------------------------------------

test("sessions: a client that wants results gets each command's slot and answer, in seq order, once its frames are done", () => {
  const proposed: { kind: 0; data: Uint8Array; tag?: unknown }[] = [];
  const got: [number, number, string][] = [];
  const s2 = new PaxosSessions(
    { status: () => ({ role: PaxosRole.leader, ballot: 129, leader: 1 }), currentRole: PaxosRole.leader, propose: (data: Uint8Array, tag?: unknown) => (proposed.push({ kind: 0, data, tag }), true) } as unknown as PaxosNode,
    {
      sendFrame: (_to, f) => {
        assert.is(f[1], FrameKind.results);
        readResults(f, 0, f.length, (seq, slot, r) => got.push([seq, slot, new TextDecoder().decode(r)]));
      },
      now: () => 0,
    },
    false,
    1_000,
  );
  const w = new ProposeFrameWriter(3, 1);
  w.begin(1, proposeWantsResults, 2);
  for (const c of 'abc') w.bytes[w.add(1)] = c.charCodeAt(0);
  const f = w.finish().slice();
  s2.onProposeFrame(1, 0, f, 0, f.length);
  assert.is(proposed.length, 3);
  // Applied in slot order 7, 8, 9 (the frame's order); answers only once all three are in.
  s2.applied(proposed[0]!, 7, new TextEncoder().encode('A'));
  s2.applied(proposed[1]!, 8, new TextEncoder().encode('B'));
  s2.sendAcks();
  assert.equal(got, []);
  s2.applied(proposed[2]!, 9, new TextEncoder().encode('C'));
  s2.sendAcks();
  assert.equal(got, [[1, 7, 'A'], [2, 8, 'B'], [3, 9, 'C']]);
});

function stub(role: number = PaxosRole.leader) {
  // What the core would apply: the value proposed, carrying the proposer's tag.
  const proposed: { kind: 0; data: Uint8Array; tag?: unknown }[] = [];
  const node = {
    role,
    refuseAfter: Infinity,
    status() {
      return { role: this.role, ballot: 129, leader: 1 };
    },
    get currentRole() {
      return this.role;
    },
    propose(data: Uint8Array, tag?: unknown) {
      if (proposed.length >= this.refuseAfter) return false;
      proposed.push({ kind: 0, data, tag });
      return true;
    },
  };
  const sent: Control[] = [];
  const clock = { t: 0 };
  const sessions = new PaxosSessions(node as unknown as PaxosNode, { sendFrame: (to, f) => sent.push(control(to, f)), now: () => clock.t }, false, 1_000);
  return { node, proposed, sent, clock, sessions };
}

test('sessions: a frame is acked once every command of it was applied, frames in order, never for another value with the same bytes', () => {
  const { proposed, sent, sessions } = stub();
  const a = proposeFrame(1, 3);
  const b = proposeFrame(4, 2);
  sessions.onProposeFrame(1, 9, a, 0, a.length);
  sessions.onProposeFrame(1, 9, b, 0, b.length);
  assert.is(proposed.length, 5);
  assert.is(sessions.proposalsAccepted, 5);
  // The second frame's commands apply first (Basic Paxos chooses slots in any order): no ack yet.
  sessions.applied(proposed[3]!, 0, noResult);
  sessions.applied(proposed[4]!, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent, []);
  // The same bytes in another buffer (a value learned from another node) are not our command.
  // The same bytes chosen as another proposer's value (no tag of ours) never count.
  for (let i = 0; i < 3; i++) sessions.applied({ kind: 0, data: proposed[i]!.data.slice() }, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent, []);
  sessions.applied(proposed[0]!, 0, noResult);
  sessions.applied(proposed[1]!, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent, []);
  sessions.applied(proposed[2]!, 0, noResult);
  sessions.sendAcks();
  // One cumulative ack through both frames.
  assert.equal(sent, [{ to: 9, kind: 'ack', seq: 5, leader: 0 }]);
  assert.is(sessions.framesOutstanding, 0);
});

test('sessions: a follower redirects to the leader; a refusal while leader is busy from the first refused seq', () => {
  const f = stub(PaxosRole.follower);
  const a = proposeFrame(1, 2);
  f.sessions.onProposeFrame(2, 9, a, 0, a.length);
  assert.equal(f.sent, [{ to: 9, kind: 'redirect', seq: 1, leader: 1 }]);
  assert.is(f.proposed.length, 0);

  const l = stub();
  l.node.refuseAfter = 2;
  const b = proposeFrame(1, 4);
  l.sessions.onProposeFrame(1, 9, b, 0, b.length);
  assert.equal(l.sent, [{ to: 9, kind: 'busy', seq: 3, leader: 0 }]);
  // A frame the client sent before it heard the busy starts past seq 3: ignored.
  const c = proposeFrame(5, 2);
  l.node.refuseAfter = Infinity;
  l.sessions.onProposeFrame(1, 9, c, 0, c.length);
  assert.is(l.proposed.length, 2);
  // The client goes back to seq 3; 3 and 4 are proposed, 1 and 2 (resent with them) are not again.
  const d = proposeFrame(1, 4);
  l.sessions.onProposeFrame(1, 9, d, 0, d.length);
  assert.is(l.proposed.length, 4);
  for (const p of l.proposed) l.sessions.applied(p, 0, noResult);
  l.sessions.sendAcks();
  assert.equal(l.sent.at(-1), { to: 9, kind: 'ack', seq: 4, leader: 0 });
});

test('sessions: a session stuck behind a command that never applies goes back to its last ack; the rest of its old frames count for nothing', () => {
  const { proposed, sent, clock, sessions } = stub();
  const a = proposeFrame(1, 2);
  const b = proposeFrame(3, 2);
  sessions.onProposeFrame(1, 9, a, 0, a.length);
  sessions.onProposeFrame(1, 9, b, 0, b.length);
  sessions.applied(proposed[0]!, 0, noResult);
  sessions.applied(proposed[1]!, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent.splice(0), [{ to: 9, kind: 'ack', seq: 2, leader: 0 }]);
  // proposed[2] was replaced: nothing more ever applies for frame b.
  sessions.applied(proposed[3]!, 0, noResult);
  clock.t = 900;
  sessions.tick(1);
  assert.equal(sent, []);
  clock.t = 3_000;
  sessions.tick(1);
  assert.equal(sent.splice(0), [{ to: 9, kind: 'redirect', seq: 3, leader: 1 }]);
  // Its last command applying now acks nothing: that frame is forgotten.
  sessions.applied(proposed[2]!, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent, []);
  // A frame sent before the redirect arrived (seq 5) is ignored; the resend from seq 3 is taken.
  const late = proposeFrame(5, 1);
  sessions.onProposeFrame(1, 9, late, 0, late.length);
  assert.is(proposed.length, 4);
  const again = proposeFrame(3, 3);
  sessions.onProposeFrame(1, 9, again, 0, again.length);
  assert.is(proposed.length, 7);
  for (const p of proposed.slice(4)) sessions.applied(p, 0, noResult);
  sessions.sendAcks();
  assert.equal(sent, [{ to: 9, kind: 'ack', seq: 5, leader: 0 }]);
});

// ---- three PaxosHosts over a fake network -----------------------------------------------------

const client = 9;

class Net {
  readonly hosts = new Map<number, PaxosHost>();
  readonly apps = new Map<number, CountStateMachine>();
  queue: { from: number; to: number; bytes: Uint8Array }[] = [];
  /** Every control frame a client got, with the leader's applied commands at the time. */
  readonly got: (Control & { appliedAtLeader: number })[] = [];
  readonly cut = new Set<number>();
  clock = { t: 0 };

  constructor(mode: 'basic' | 'multi' = 'multi', paxos: PaxosNodeConfig['paxos'] = {}) {
    const voters = [1, 2, 3];
    for (const id of voters) {
      const config: PaxosNodeConfig = {
        tickMs: 10,
        raft: {},
        storage: 'memory',
        fsync: 'never',
        statusEveryMs: 50,
        seed: 1,
        app: 'count',
        voters,
        protocol: 'multipaxos',
        paxos: { electionTicks: 1_000, heartbeatTicks: 100, ...paxos },
        paxosMode: mode,
      };
      const app = new CountStateMachine();
      this.apps.set(id, app);
      const init = {
        self: id,
        peers: voters.filter((v) => v !== id),
        incarnation: 0,
        config,
        io: {
          now: () => this.clock.t,
          sendFrame: (to: number, frame: Uint8Array) => {
            if (!voters.includes(to)) this.got.push({ ...control(to, frame), appliedAtLeader: app.commands });
            else if (!this.cut.has(id) && !this.cut.has(to)) this.queue.push({ from: id, to, bytes: frame.slice() });
          },
          reply: () => {},
          emit: () => {},
        },
        log: null,
        app,
        snapshots: null,
        startedFrom: null,
      } as PaxosHostInit;
      this.hosts.set(id, new PaxosHost(init));
    }
  }

  host(id: number): PaxosHost {
    return this.hosts.get(id)!;
  }

  /** Delivers until nothing is in flight, processing every host after each round. */
  settle(): void {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      for (const h of this.hosts.values()) h.process();
      if (this.queue.length === 0) return;
      const q = this.queue;
      this.queue = [];
      for (const m of q) if (!this.cut.has(m.from) && !this.cut.has(m.to)) this.host(m.to).onFrame(m.from, m.bytes, 0, m.bytes.length);
    }
    throw new Error('the network did not settle');
  }

  elect(id: number): void {
    this.host(id).campaign();
    this.settle();
    assert.is(this.host(id).node.currentRole, PaxosRole.leader, `node ${id} leads`);
  }

  propose(to: number, firstSeq: number, n: number): void {
    const f = proposeFrame(firstSeq, n);
    this.host(to).onFrame(client, f, 0, f.length);
  }
}

test('hosts: acks come only once the commands are applied, cumulatively, from the leader', () => {
  const net = new Net('multi', { batchMax: 2, inflightMax: 3 });
  net.elect(1);
  net.propose(1, 1, 3);
  net.propose(1, 4, 4);
  assert.equal(net.got, [], 'nothing applied yet, nothing acked');
  net.host(1).process();
  assert.equal(net.got, [], 'accepts sent, nothing chosen yet');
  net.settle();
  assert.is(net.apps.get(1)!.commands, 7);
  const acks = net.got.filter((g) => g.kind === 'ack');
  assert.ok(acks.length >= 1 && acks.at(-1)!.seq === 7, JSON.stringify(net.got));
  for (const a of acks) assert.ok(a.appliedAtLeader >= a.seq, `ack through ${a.seq} with ${a.appliedAtLeader} applied`);
  for (let i = 1; i < acks.length; i++) assert.ok(acks[i]!.seq > acks[i - 1]!.seq, 'acks only move forward');
  for (const id of [2, 3]) assert.is(net.apps.get(id)!.commands, 7, `node ${id} applied every command`);
});

test('hosts: a follower redirects the client to the leader; a leader with its window and backlog full answers busy', () => {
  const net = new Net('multi', { batchMax: 4, inflightMax: 4 });
  net.elect(1);
  net.propose(2, 1, 2);
  assert.equal(net.got, [{ to: client, kind: 'redirect', seq: 1, leader: 1, appliedAtLeader: 0 }]);
  net.got.length = 0;
  // 4 slots in flight, then the core's backlog (8192 values), then refusal.
  const n = 4 + 8192 + 10;
  net.propose(1, 1, n);
  assert.equal(net.got, [{ to: client, kind: 'busy', seq: 4 + 8192 + 1, leader: 0, appliedAtLeader: 0 }]);
  net.got.length = 0;
  net.settle();
  assert.equal(net.got.filter((g) => g.kind === 'ack').at(-1)?.seq, 4 + 8192);
});

test('hosts: Basic Paxos takes frames on any node and answers busy past its queue', () => {
  const net = new Net('basic', { inflightMax: 1 });
  net.propose(2, 1, 3);
  // One instance runs, one value waits in the queue, the third is refused.
  assert.equal(net.got, [{ to: client, kind: 'busy', seq: 3, leader: 0, appliedAtLeader: 0 }]);
  net.got.length = 0;
  net.settle();
  for (let i = 0; i < 50 && net.apps.get(2)!.commands < 2; i++) {
    net.clock.t += 10;
    net.host(2).tick();
    net.settle();
  }
  assert.is(net.apps.get(2)!.commands, 2);
  assert.equal(net.got.filter((g) => g.kind === 'ack').at(-1)?.seq, 2);
});

test('hosts: a deposed leader never acks a command another leader replaced, and redirects its clients to the new leader', () => {
  const net = new Net('multi', { batchMax: 4, inflightMax: 8 });
  net.elect(1);
  net.propose(1, 1, 2);
  net.settle();
  assert.equal(net.got.filter((g) => g.kind === 'ack').at(-1)?.seq, 2);
  net.got.length = 0;
  // Node 1's accepts for seqs 3..5 never reach anyone.
  net.cut.add(1);
  net.propose(1, 3, 3);
  net.host(1).process();
  assert.is(net.host(1).sessions.framesOutstanding, 1);
  net.cut.delete(1);
  net.queue = [];
  // Node 2 leads with a higher ballot; another client's commands take the slots node 1 had used.
  net.cut.add(1);
  net.elect(2);
  const other = proposeFrame(100, 3);
  net.host(2).onFrame(8, other, 0, other.length);
  net.settle();
  assert.is(net.apps.get(2)!.commands, 5);
  net.cut.delete(1);
  // Node 1 hears the higher ballot and learns what was chosen in its slots.
  net.host(2).tick();
  net.clock.t += 2_000;
  net.host(2).tick();
  net.settle();
  assert.is(net.host(1).node.currentRole, PaxosRole.follower);
  assert.is(net.apps.get(1)!.commands, 5, 'node 1 applied the other leader’s values in its slots');
  const toClient = net.got.filter((g) => g.to === client);
  assert.equal(toClient.filter((g) => g.kind === 'ack'), [], 'seqs 3..5 were never applied: never acked');
  assert.equal(toClient.filter((g) => g.kind === 'redirect').map((g) => [g.seq, g.leader]), [[3, 2]]);
});

test.run();
