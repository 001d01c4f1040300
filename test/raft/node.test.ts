import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import { MemoryStorage, MessageType, RaftNode, Role, type Message, type Ready } from '../../protocols/raft/index.ts';
import { electedCluster, TestCluster } from './harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);


test('durability contract: acks and votes wait for persistence, a leader\'s appends do not', () => {
  const c = new TestCluster(3, { preVote: false });
  c.raft(1).campaign();
  let rd = c.raft(1).ready();
  assert.ok(rd.mustSync, 'the new term and self-vote must be synced');
  assert.equal(rd.hardState, { term: 1, vote: 1, commit: 0 });
  assert.is(rd.messages.length, 0);
  assert.equal(rd.messagesAfterPersist.map((m) => m.type), [MessageType.vote, MessageType.vote], 'vote requests carry our durable self-vote');
  persistAndAdvance(c, 1, rd);
  c.raft(2).step(rd.messagesAfterPersist[0]!);
  rd = c.raft(2).ready();
  assert.is(rd.messagesAfterPersist[0]!.type, MessageType.voteResp);
  assert.equal(rd.hardState, { term: 1, vote: 1, commit: 0 });
  persistAndAdvance(c, 2, rd);
  c.raft(1).step(rd.messagesAfterPersist[0]!);
  assert.is(c.raft(1).currentRole, Role.leader);
  rd = c.raft(1).ready();
  assert.equal(rd.entries.map((e) => e.index), [1]);
  assert.equal(rd.messages.map((m) => m.type), [MessageType.app, MessageType.app], 'appends may leave before the leader\'s own write');
  persistAndAdvance(c, 1, rd);
  c.raft(2).step(rd.messages[0]!);
  rd = c.raft(2).ready();
  assert.equal(rd.messages, []);
  assert.equal(rd.messagesAfterPersist.map((m) => [m.type, m.index]), [[MessageType.appResp, 1]], 'an ack promises the entry is durable');
});

test('the leader counts itself toward commit only once its own write is durable', () => {
  const c = electedCluster();
  const leader = c.raft(1);
  leader.propose(enc('x'));
  leader.flush();
  const rd = leader.ready(); // the leader's write of entry 2 is "in flight" from here on
  assert.equal(rd.entries.map((e) => e.index), [2]);
  const apps = rd.messages.filter((m) => m.type === MessageType.app);
  assert.is(apps.length, 2);
  // Follower 2 acks; with the leader's own write pending, 1 of 3 durable copies is not a majority.
  const ack2 = ackFrom(c, 2, apps[0]!);
  leader.step(ack2);
  assert.is(leader.commitIndex, 1, 'no commit: only follower 2 holds entry 2 durably');
  // The leader's write completes: now two durable copies.
  persistAndAdvance(c, 1, rd);
  assert.is(leader.commitIndex, 2);
});

test('a leader may commit without its own write when enough followers hold the entry (thesis §10.2.1)', () => {
  const c = electedCluster();
  const leader = c.raft(1);
  leader.propose(enc('y'));
  leader.flush();
  const rd = leader.ready();
  const apps = rd.messages.filter((m) => m.type === MessageType.app);
  leader.step(ackFrom(c, 2, apps[0]!));
  leader.step(ackFrom(c, 3, apps[1]!));
  assert.is(leader.commitIndex, 2, 'followers 2 and 3 are a majority of 3');
  persistAndAdvance(c, 1, rd);
  assert.is(leader.lastIndex, 2);
});

/** Steps 2–5 of the Ready contract for node `id`, done by hand. */
function persistAndAdvance(c: TestCluster, id: number, rd: Ready): void {
  c.node(id).storage.append(rd.entries);
  if (rd.hardState !== null) c.node(id).storage.setHardState(rd.hardState);
  c.raft(id).advance(rd);
}

function ackFrom(c: TestCluster, id: number, app: Message): Message {
  const f = c.raft(id);
  f.step(app);
  const rd = f.ready();
  persistAndAdvance(c, id, rd);
  const ack = rd.messagesAfterPersist.find((m) => m.type === MessageType.appResp);
  assert.ok(ack, `follower ${id} acks`);
  return ack!;
}

test('ready() twice without advance() is refused; advance() without ready() too', () => {
  const n = new RaftNode({ id: 1, voters: [1], storage: new MemoryStorage(), rng: createRng(1) });
  n.campaign();
  n.ready();
  assert.throws(() => n.ready(), /before advance/);
  const m = new RaftNode({ id: 1, voters: [1], storage: new MemoryStorage(), rng: createRng(1) });
  assert.throws(() => m.advance({} as Ready), /without an outstanding/);
});

/** A single voter that campaigned and made its new term durable: it leads now. */
function soleLeader(storage: MemoryStorage): RaftNode {
  const n = new RaftNode({ id: 1, voters: [1], storage, rng: createRng(1) });
  n.campaign();
  const rd = n.ready();
  storage.setHardState(rd.hardState!);
  n.advance(rd);
  return n;
}

test('advance() refuses a Ready whose entries the host did not persist', () => {
  const n = soleLeader(new MemoryStorage());
  const rd = n.ready();
  assert.throws(() => n.advance(rd), /storage lacks entry 1/);
});

test('single node: leads once its term is durable (a crash before would let it lead that term twice), proposals commit after its own write', () => {
  const storage = new MemoryStorage();
  const c = new RaftNode({ id: 1, voters: [1], storage: new MemoryStorage(), rng: createRng(1) });
  c.campaign();
  assert.is(c.currentRole, Role.candidate, 'won its own vote, but term 1 is not durable yet');
  const n = soleLeader(storage);
  assert.is(n.currentRole, Role.leader);
  assert.is(n.propose(enc('a')), 2);
  let rd = n.ready();
  assert.is(n.commitIndex, 0, 'nothing is durable yet');
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  n.advance(rd);
  assert.is(n.commitIndex, 2);
  rd = n.ready();
  assert.equal([rd.committedFrom, rd.committedTo], [1, 2], 'the range a host may read from its own storage');
  assert.equal(rd.committedEntries.map((e) => e.index), [1, 2]);
  assert.is(rd.committedEntries, rd.committedEntries, 'made once');
  n.advance(rd);
  assert.is(n.propose(enc('b')), 3);
  rd = n.ready();
  assert.ok(rd.committedTo < rd.committedFrom && rd.committedEntries.length === 0, 'nothing to apply before the write');
  storage.append(rd.entries);
  n.advance(rd);
  rd = n.ready();
  // The host never read committedEntries here: advancing still moves applied past them.
  assert.equal([rd.committedFrom, rd.committedTo], [3, 3]);
  n.advance(rd);
  assert.is(n.status().applied, 3);
  assert.not.ok(n.hasReady());
});

test('a crash loses what was not persisted; restart resumes from storage', () => {
  const c = electedCluster();
  const leader = c.raft(1);
  leader.propose(enc('kept'));
  c.stabilize();
  leader.propose(enc('lost'));
  // Crash before the leader's Ready is processed: "lost" never reached its disk or anyone else.
  c.crash(1);
  c.restart(1);
  assert.equal(
    c.raft(1).entries(1, 10).map((e) => e.index),
    [1, 2],
  );
  assert.is(c.raft(1).currentTerm, 1, 'the term was durable');
  assert.is(c.raft(1).currentRole, Role.follower);
  c.run(40);
  const l = c.leader();
  assert.ok(l !== 0);
  assert.is(c.raft(l).commitIndex, c.raft(l).lastIndex, 'the cluster recovers and commits everything it holds');
  assert.ok(c.node(1).applied.some((e) => new TextDecoder().decode(e.data) === 'kept'), 'restarted node re-applies from its log');
});

test('proposals are refused by followers and during a leadership transfer; transfer to self or a stranger is refused', () => {
  const c = electedCluster();
  assert.is(c.raft(2).propose(enc('x')), 0);
  assert.not.ok(c.raft(1).transferLeadership(1));
  assert.not.ok(c.raft(1).transferLeadership(9));
  c.isolate(3);
  assert.ok(c.raft(1).transferLeadership(3));
  assert.is(c.raft(1).propose(enc('x')), 0);
  // The target is unreachable: the transfer is abandoned after an election timeout.
  c.run(12);
  assert.is(c.raft(1).currentRole, Role.leader);
  assert.ok(c.raft(1).propose(enc('x')) > 0, 'proposals are accepted again');
});

test('uncommittedEntriesMax bounds what a leader accepts ahead of its commit', () => {
  const c = electedCluster({ uncommittedEntriesMax: 3 });
  c.isolate(1);
  const accepted = [1, 2, 3, 4, 5].map((i) => c.raft(1).propose(enc(`p${i}`)));
  assert.equal(accepted, [2, 3, 4, 0, 0]);
});

test('a stale leader learns the new term from the answer to its heartbeat and steps down', () => {
  const c = electedCluster({ preVote: true, checkQuorum: false });
  c.isolate(1);
  c.run(40);
  const newLeader = c.leader();
  assert.ok(newLeader !== 1 && newLeader !== 0, 'the others elected a leader');
  assert.is(c.raft(1).currentRole, Role.leader, 'without CheckQuorum the cut-off leader still believes');
  c.heal();
  c.run(2);
  assert.is(c.raft(1).currentRole, Role.follower);
  assert.is(c.raft(1).currentTerm, c.raft(newLeader).currentTerm);
});

test.run();
