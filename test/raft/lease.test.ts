// Lease reads: the lease arithmetic on its own, and the node's rules around it (who may serve,
// what renews a lease, what ends it, and the follower-side vote refusal it stands on).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaderLease } from '../../protocols/raft/lease.ts';
import { MajorityConfig, message, MessageType, Role, type Message, type RaftSettings } from '../../protocols/raft/index.ts';
import { TestCluster } from './harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);

function elected(n = 3, settings: Partial<RaftSettings> = {}, unsafe = {}): TestCluster {
  const c = new TestCluster(n, { preVote: false, checkQuorum: true, electionTicks: 10, heartbeatTicks: 1, leaseDriftTicks: 2, ...settings }, unsafe);
  c.raft(1).campaign();
  c.stabilize();
  c.takeTranscript();
  assert.is(c.raft(1).currentRole, Role.leader);
  return c;
}

test('LeaderLease: a majority (the leader included) must ack a round; the lease runs from its send tick', () => {
  const l = new LeaderLease(1, () => new MajorityConfig([1, 2, 3, 4, 5]), 8, {}, 10);
  l.roundStarted(3);
  l.acked(2, 3);
  assert.not.ok(l.validAt(3), 'the leader and one follower are 2 of 5');
  l.acked(3, 3);
  assert.is(l.untilTick, 11);
  assert.ok(l.validAt(10));
  assert.not.ok(l.validAt(11), 'the lease ends at T + electionTicks − leaseDriftTicks, exclusive');
  // Later rounds renew only as far as a majority has acked them.
  l.roundStarted(6);
  l.acked(2, 6);
  l.acked(4, 1); // an old ack: heard at tick 1, proves nothing newer
  l.acked(3, 3); // a duplicate
  assert.is(l.untilTick, 11);
  l.acked(4, 6);
  assert.is(l.untilTick, 14);
  l.revoke();
  l.acked(5, 6);
  assert.not.ok(l.validAt(7), 'a revoked lease stays revoked');
  l.reset();
  assert.is(l.untilTick, Number.NEGATIVE_INFINITY);
});

test('LeaderLease mutations: renewing without acks, or for 2*electionTicks, lengthens the lease', () => {
  const noAcks = new LeaderLease(1, () => new MajorityConfig([1, 2, 3]), 8, { ignoreAcks: true }, 10);
  noAcks.roundStarted(5);
  assert.is(noAcks.untilTick, 13, 'renewed with nobody acking');
  const long = new LeaderLease(1, () => new MajorityConfig([1, 2, 3]), 8, { tooLong: true }, 10);
  long.roundStarted(5);
  long.acked(2, 5);
  assert.is(long.untilTick, 25);
});

test('an old ack arriving late does not extend the lease: it counts from when its round was sent', () => {
  const c = elected();
  const leader = c.raft(1);
  c.tick(1); // tick 1: heartbeat round sent at tick 1
  c.processAll();
  const beats = c.inflight.filter((m) => m.type === MessageType.heartbeat);
  c.inflight = [];
  for (const hb of beats) c.raft(hb.to).step(hb);
  c.processAll();
  const held: Message[] = c.inflight.filter((m) => m.type === MessageType.heartbeatResp);
  assert.is(held.length, 2);
  c.inflight = [];
  // Ticks 2..8: every later round is lost.
  for (let i = 0; i < 7; i++) {
    c.tick(1);
    c.processAll();
    c.inflight = [];
  }
  assert.is(leader.status().leaseUntilTick, 0, 'no ack yet: no lease');
  assert.not.ok(leader.leaseRead(1));
  for (const m of held) leader.step(m);
  // The acks arrived at tick 8 but prove contact at tick 1 only: the lease ends at 1 + 10 − 2.
  assert.is(leader.status().tick, 8);
  assert.is(leader.status().leaseUntilTick, 9);
  assert.ok(leader.leaseRead(2));
  c.tick(1);
  assert.not.ok(leader.status().leaseValid);
  assert.not.ok(leader.leaseRead(3), 'expired at tick 9 although the acks came at tick 8');
});

test('one follower of five acking is not a majority: no lease', () => {
  const c = elected(5);
  const leader = c.raft(1);
  c.tick(1);
  c.processAll();
  c.deliverRound();
  c.processAll();
  const acks = c.inflight.filter((m) => m.type === MessageType.heartbeatResp);
  assert.is(acks.length, 4);
  c.inflight = [];
  leader.step(acks[0]!);
  assert.not.ok(leader.leaseRead(1), 'leader + 1 of 5');
  leader.step(acks[1]!);
  assert.ok(leader.leaseRead(2), 'leader + 2 of 5 is a majority');
});

test('leaseRead serves at the commit index in the next Ready, with no message', () => {
  const c = elected();
  c.run(1);
  const leader = c.raft(1);
  leader.propose(enc('x'));
  leader.flush();
  c.stabilize();
  assert.ok(leader.leaseRead(42));
  const rd = leader.ready();
  assert.equal(rd.readStates, [{ index: 2, context: 42 }]);
  assert.is(rd.messages.length + rd.messagesAfterPersist.length, 0);
  leader.advance(rd);
});

test('leaseRead is refused: on a follower, with CheckQuorum off, and before an entry of the term commits', () => {
  const c = elected();
  c.run(1);
  assert.not.ok(c.raft(2).leaseRead(1), 'follower');
  const off = elected(3, { checkQuorum: false });
  off.run(3);
  assert.not.ok(off.raft(1).leaseRead(1), 'without CheckQuorum acks bound nothing');
  assert.not.ok(off.raft(1).status().leaseValid);
  // A new leader whose heartbeats are acked but whose no-op has not committed yet.
  const fresh = new TestCluster(3, { preVote: false, checkQuorum: true });
  fresh.raft(1).campaign();
  for (let i = 0; i < 3; i++) {
    fresh.processAll();
    fresh.deliverRound((m) => m.type === MessageType.vote || m.type === MessageType.voteResp);
  }
  assert.is(fresh.raft(1).currentRole, Role.leader);
  fresh.inflight = fresh.inflight.filter((m) => m.type !== MessageType.app); // the no-op is lost
  fresh.tick(1);
  for (let i = 0; i < 3; i++) {
    fresh.processAll();
    fresh.deliverRound((m) => m.type === MessageType.heartbeat || m.type === MessageType.heartbeatResp);
  }
  assert.ok(fresh.raft(1).status().leaseUntilTick > 0, 'the round was acked');
  assert.is(fresh.raft(1).commitIndex, 0);
  assert.not.ok(fresh.raft(1).leaseRead(1), 'commit index may lag the previous leader\'s');
});

test('a leadership transfer ends the lease for the term, even if the TimeoutNow is lost', () => {
  for (const survives of [false, true]) {
    const c = elected(3, {}, survives ? { leaseSurvivesTransfer: true } : {});
    c.run(1);
    const leader = c.raft(1);
    assert.ok(leader.leaseRead(1));
    assert.ok(leader.transferLeadership(2));
    assert.not.ok(leader.leaseRead(2), 'no lease reads while a transfer is under way');
    c.processAll();
    assert.ok(c.inflight.some((m) => m.type === MessageType.timeoutNow), 'target is up to date: TimeoutNow goes at once');
    c.inflight = []; // lost (or merely late: its forced campaign would ignore every lease)
    c.run(12); // the transfer is abandoned; heartbeats are acked again
    assert.is(leader.currentRole, Role.leader);
    assert.is(leader.status().leaseValid, survives, survives ? 'the mutation keeps serving' : 'forfeited for the term');
  }
});

test('a restarted follower refuses votes for an election timeout: it may have backed a lease', () => {
  for (const amnesia of [false, true]) {
    const c = elected(3, { preVote: true }, amnesia ? { voteAmnesia: true } : {});
    c.run(1);
    assert.ok(c.raft(1).leaseRead(1), 'node 1 holds a lease backed by nodes 2 and 3');
    c.isolate(1);
    c.crash(2);
    c.restart(2);
    c.raft(3).campaign();
    c.stabilize();
    if (amnesia) {
      assert.is(c.raft(3).currentRole, Role.leader, 'the hole: a second leader while node 1 still leases');
      assert.ok(c.raft(1).leaseRead(2));
    } else {
      assert.is.not(c.raft(3).currentRole, Role.leader, 'node 2 just restarted and ignores the campaign');
      assert.ok(c.raft(1).leaseRead(2), 'node 1 still (rightly) leases');
    }
  }
});

test('a follower whose term moved on still refuses to vote while it recently heard a leader', () => {
  for (const amnesia of [false, true]) {
    const c = elected(3, {}, amnesia ? { voteAmnesia: true } : {});
    c.run(1);
    const f = c.raft(2);
    // A stale answer from an old exchange carries term 5: node 2 adopts it and forgets its leader.
    f.step(message(MessageType.appResp, 3, 2, 5));
    assert.is(f.currentTerm, 5);
    assert.is(f.leaderId, 0);
    f.step(message(MessageType.vote, 3, 2, 5, { index: 1, logTerm: 1 }));
    c.process(2);
    const resp = c.inflight.find((m) => m.type === MessageType.voteResp && m.from === 2)!;
    assert.is(resp.reject, !amnesia, amnesia ? 'etcd-style: votes at once' : 'the lease memory survived the term change');
  }
});

test('follower read: the index covers what the leader had committed when it received the request', () => {
  const c = elected();
  const leader = c.raft(1);
  // Node 2 misses two commits.
  c.cutLink(1, 2);
  leader.propose(enc('a'));
  leader.propose(enc('b'));
  leader.flush();
  c.stabilize();
  assert.is(leader.commitIndex, 3);
  assert.ok(c.raft(2).commitIndex < 3, 'node 2 lags the leader');
  c.heal();
  assert.ok(c.raft(2).readIndex(77));
  c.processAll();
  const req = c.inflight.find((m) => m.type === MessageType.readIndex)!;
  assert.ok(req !== undefined, 'the follower forwards the read to its leader');
  c.inflight = c.inflight.filter((m) => m !== req);
  // The leader commits one more entry before the request reaches it.
  leader.propose(enc('c'));
  leader.flush();
  c.stabilize();
  leader.step(req);
  const commitAtReceipt = leader.commitIndex;
  assert.is(commitAtReceipt, 4);
  leader.flush();
  c.stabilize();
  const rs = c.node(2).readStates.find((r) => r.context === 77);
  assert.ok(rs !== undefined, 'the follower got its read index back');
  assert.ok(rs!.index >= commitAtReceipt, `read index ${rs!.index} >= leader commit ${commitAtReceipt} at receipt`);
});

test('deferred commit notices: a follower whose read is answered is told the commit it needs', () => {
  const c = elected(3, { deferCommitNotice: true, heartbeatTicks: 5 });
  const leader = c.raft(1);
  leader.propose(enc('a'));
  leader.flush();
  c.processAll();
  c.deliverRound(); // entry 2 reaches both followers
  c.processAll();
  // Node 2's ack is held back; node 3's commits entry 2, and nothing new goes to node 2.
  const held = c.inflight.filter((m) => m.from === 2 && m.type === MessageType.appResp);
  assert.is(held.length, 1);
  c.inflight = c.inflight.filter((m) => !held.includes(m));
  c.deliverRound();
  c.processAll();
  assert.is(leader.commitIndex, 2);
  assert.is(c.raft(2).commitIndex, 1);
  assert.equal(c.inflight.filter((m) => m.to === 2), [], 'no append of its own tells node 2 the commit');
  // Node 2 reads. The round's heartbeat can tell it only what it is known to hold (index 1): its
  // ack for entry 2 arrives after the heartbeat left.
  assert.ok(c.raft(2).readIndex(5));
  c.processAll();
  c.deliverRound(); // readIndex 2→1
  leader.flush(); // starts the read round
  c.processAll();
  c.inflight.unshift(...held);
  c.stabilize();
  const rs = c.node(2).readStates.find((r) => r.context === 5);
  assert.is(rs?.index, 2);
  assert.is(c.raft(2).commitIndex, 2, 'told with the answer, not at the next tick');
});

test.run();
