// The core's side of snapshots and byte limits: InstallSnapshot on the follower (restore,
// fast-forward, stale), the leader's snapshot state and reportSnapshot, the byte windows, the
// compaction point rule, and the two lease holes (heartbeat replies before a durable term, and
// a forced campaign inside a lease).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import { compactionPoint, EntryKind, membership, MemoryStorage, message, MessageType, RaftNode, Role, type Entry, type Ready, type RaftStatus } from '../../protocols/raft/index.ts';
import { RaftLog } from '../../protocols/raft/log.ts';
import { Inflights, Progress, ProgressState } from '../../protocols/raft/progress.ts';
import { electedCluster, TestCluster } from './harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const entry = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, kind: EntryKind.normal, data: enc(text) });


/** A follower over its own storage, at term `term`, with `log` stored. */
function follower(log: Entry[], term = 1, commit = 0): { raft: RaftNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ term, vote: 0, commit }, log);
  const raft = new RaftNode({ id: 2, voters: [1, 2, 3], storage, rng: createRng(7) });
  return { raft, storage };
}

const snapMsg = (index: number, logTerm: number, term = 1) => message(MessageType.snapshot, 1, 2, term, { index, logTerm, commit: index });

function install(f: { raft: RaftNode; storage: MemoryStorage }): Ready {
  const rd = f.raft.ready();
  if (rd.snapshot !== null) f.storage.installSnapshot(rd.snapshot);
  f.storage.append(rd.entries);
  if (rd.hardState !== null) f.storage.setHardState(rd.hardState);
  f.raft.advance(rd);
  return rd;
}

test('raft log: a restored snapshot replaces the log; terms before it are unknown, its own is kept', () => {
  const storage = new MemoryStorage({ term: 1, vote: 0, commit: 2 }, [entry(1, 1), entry(2, 1), entry(3, 1)]);
  const log = new RaftLog(storage, 2, 2);
  log.restore({ index: 10, term: 3, voters: [1, 2, 3] });
  assert.is(log.committed, 10);
  assert.is(log.firstIndex(), 11);
  assert.is(log.lastIndex(), 10);
  assert.is(log.term(10), 3);
  assert.is(log.term(3), -1, 'the old log is no longer this log');
  assert.is(log.persistedIndex(), 0, 'nothing is durable until the snapshot is installed');
  assert.ok(log.hasUnstableToPersist());
  assert.equal(log.takeSnapshot(), { index: 10, term: 3, voters: [1, 2, 3] });
  assert.is(log.takeSnapshot(), null, 'handed out once');
  assert.throws(() => log.restore({ index: 9, term: 3, voters: [] }), /not past commit/);
  // Committed entries handed out before the snapshot arrived can still be read from storage.
  assert.equal(log.slice(1, 3).map((e) => e.index), [1, 2]);
  assert.throws(() => log.slice(5, 12), /compacted/);
  log.append([entry(11, 3)]);
  assert.is(log.lastIndex(), 11);
  storage.installSnapshot({ index: 10, term: 3, voters: [1, 2, 3] });
  log.stableSnapTo(10);
  assert.is(log.applied, 10, 'the snapshot counts as applied once installed');
  assert.is(log.firstIndex(), 11);
});

test('memory storage: compaction keeps the boundary term, install empties the log', () => {
  const s = new MemoryStorage({ term: 2, vote: 0, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
  s.setSnapshot({ index: 3, term: 2, voters: [1] });
  s.compact(2);
  assert.is(s.firstIndex(), 3);
  assert.is(s.term(2), 1);
  assert.is(s.term(1), -1);
  assert.throws(() => s.entries(2, 4), /starts at 3/);
  assert.throws(() => s.append([entry(2, 3)]), /compacted prefix/);
  s.installSnapshot({ index: 9, term: 4, voters: [1] });
  assert.is(s.lastIndex(), 9);
  assert.is(s.firstIndex(), 10);
  assert.is(s.term(9), 4);
  assert.is(s.snapshot().index, 9);
  const copy = s.clone();
  s.append([entry(10, 4)]);
  assert.is(copy.lastIndex(), 9, 'a clone is what was durable then');
});

test('follower: a snapshot beyond its log replaces it, and the ack waits for the install', () => {
  const f = follower([entry(1, 1), entry(2, 1)], 1, 1);
  f.raft.step(snapMsg(8, 1));
  const rd = f.raft.ready();
  assert.equal(rd.snapshot, { index: 8, term: 1, voters: [1, 2, 3], membership: membership([1, 2, 3]) });
  assert.ok(rd.mustSync);
  assert.equal(rd.messages, [], 'nothing may leave before the install');
  assert.equal(rd.messagesAfterPersist.map((m) => [m.type, m.index, m.reject]), [[MessageType.appResp, 8, false]]);
  assert.ok(rd.committedTo < rd.committedFrom, 'the snapshot stands for entries 1..8: none is applied from the log');
  assert.throws(() => f.raft.advance(rd), /install rd.snapshot first/);
});

test('follower: install, then the log continues after the snapshot', () => {
  const f = follower([entry(1, 1)], 1, 1);
  f.raft.step(snapMsg(8, 1));
  install(f);
  const st = f.raft.status();
  assert.is(st.commit, 8);
  assert.is(st.applied, 8);
  assert.is(st.firstIndex, 9);
  f.raft.step(message(MessageType.app, 1, 2, 1, { index: 8, logTerm: 1, entries: [entry(9, 1)], commit: 9 }));
  const rd = install(f);
  assert.equal(rd.messagesAfterPersist.map((m) => [m.type, m.index, m.reject]), [[MessageType.appResp, 9, false]]);
  assert.equal([rd.committedFrom, rd.committedTo], [9, 9]);
});

test('follower: a snapshot whose last entry it holds only moves commit; an old one is acked with its commit', () => {
  const f = follower([entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], 1, 1);
  f.raft.step(snapMsg(3, 1));
  let rd = install(f);
  assert.is(rd.snapshot, null, 'the log already holds entry 3: keep it');
  assert.is(f.raft.commitIndex, 3);
  assert.equal(rd.messagesAfterPersist.map((m) => m.index), [3]);
  f.raft.step(snapMsg(2, 1));
  rd = install(f);
  assert.is(rd.snapshot, null);
  assert.equal(rd.messagesAfterPersist.map((m) => m.index), [3], 'acked with the commit index it has');
  // A snapshot of a later term at an index our log holds with another term replaces the log.
  f.raft.step(snapMsg(4, 2, 2));
  rd = install(f);
  assert.equal(rd.snapshot, { index: 4, term: 2, voters: [1, 2, 3], membership: membership([1, 2, 3]) });
});

/** Node 3 cut off while the leader (1) commits 4 entries and compacts through 5; then healed. */
function followerBehindSnapshot(): ReturnType<typeof electedCluster> {
  const c = electedCluster();
  c.isolate(3);
  for (let i = 0; i < 4; i++) c.propose(1, `v${i}`);
  c.raft(1).flush();
  c.stabilize();
  c.snapshotAndCompact(1, 5);
  c.heal();
  return c;
}

test('leader: a follower behind the compacted log gets one snapshot offer, then nothing until it answers', () => {
  const c = followerBehindSnapshot();
  c.takeTranscript();
  c.run(1);
  const sent = c.takeTranscript().filter((l) => l.startsWith('snapshot 1→3'));
  assert.equal(sent, ['snapshot 1→3 t1 snapshot=5/t1 commit=5']);
  const pr = c.raft(1).status().progress.get(3)!;
  assert.is(pr.state, 'replicate', 'the ack brought it back to streaming');
  assert.is(pr.match, 5);
});

test('leader: a lost snapshot holds the follower until the host reports its transfer; a failure report, whatever the host sent, brings an offer of the newest', () => {
  const c = followerBehindSnapshot();
  // One heartbeat round: node 3 answers, the leader offers snapshot 5, the network loses it.
  c.tick(1);
  const lost: string[] = [];
  for (let round = 0; round < 10; round++) {
    c.processAll();
    for (const m of c.inflight) if (m.type === MessageType.snapshot) lost.push(`${m.from}→${m.to} snapshot ${m.index}`);
    c.inflight = c.inflight.filter((m) => m.type !== MessageType.snapshot);
    if (c.deliverRound() === 0) break;
  }
  assert.equal(lost, ['1→3 snapshot 5']);
  c.takeTranscript();
  // The leader moves on to a newer snapshot, as a host may send instead of the one asked for.
  c.propose(1, 'v4');
  c.raft(1).flush();
  c.stabilize();
  const newest = c.node(1).appliedIndex;
  c.snapshotAndCompact(1, newest);
  // Node 3 answers every heartbeat, yet nothing tells the core the transfer is lost: the host owes that report.
  c.run(5);
  assert.not.ok(c.takeTranscript().some((l) => l.startsWith('snapshot 1→3')), 'no second offer before the report');
  assert.equal([c.raft(1).status().progress.get(3)!.state, c.raft(1).status().progress.get(3)!.pendingSnapshot], ['snapshot', 5]);
  // The core asked for 5; the host's report names only the follower, so it fits whichever snapshot went.
  c.raft(1).reportSnapshot(3, false);
  c.run(1);
  assert.equal(c.takeTranscript().filter((l) => l.startsWith('snapshot 1→3')), [`snapshot 1→3 t1 snapshot=${newest}/t1 commit=${newest}`]);
  const pr = c.raft(1).status().progress.get(3)!;
  assert.is(pr.state, 'replicate');
  assert.is(pr.match, c.raft(1).lastIndex);
});

test('progress: snapshot state pauses appends; success probes after the snapshot, failure retries from match', () => {
  const p = new Progress(20, 4);
  p.maybeUpdate(3);
  p.becomeSnapshot(15);
  assert.is(p.state, ProgressState.snapshot);
  assert.ok(p.isPaused());
  assert.ok(p.isStaleRejection(19), 'no append goes out in the snapshot state');
  p.becomeProbe();
  assert.is(p.next, 16, 'after a transfer the follower holds at least the snapshot');
  p.becomeSnapshot(15);
  p.pendingSnapshot = 0; // what a failed transfer report does
  p.becomeProbe();
  assert.is(p.next, 4);
});

test('inflights: the window is also full once its bytes reach the limit', () => {
  const w = new Inflights(10, 100);
  w.add(1, 60);
  assert.not.ok(w.full());
  w.add(2, 50);
  assert.ok(w.full(), '110 bytes in flight with a 100-byte limit');
  w.freeLE(1);
  assert.is(w.bytes, 50);
  assert.not.ok(w.full());
  w.freeLE(2);
  assert.is(w.bytes, 0);
  assert.throws(() => new Inflights(1, 0), /bytesMax/);
});

test('leader: inflightBytesMax pauses a follower\'s stream at the byte budget, not the count', () => {
  const c = electedCluster({ inflightMax: 100, inflightBytesMax: 25, batchEntriesMax: 1 });
  c.isolate(2);
  c.isolate(3);
  for (let i = 0; i < 10; i++) c.propose(1, '0123456789'); // 10 bytes each
  c.raft(1).flush();
  c.processAll();
  const pr = c.raft(1).status().progress.get(2)!;
  assert.is(pr.inflight, 3, 'three 10-byte appends reach the 25-byte budget');
  assert.is(pr.inflightBytes, 30);
  assert.ok(pr.paused);
});

test('leader: uncommittedBytesMax refuses proposals past the budget (one always fits)', () => {
  const c = electedCluster({ uncommittedBytesMax: 25 });
  c.isolate(2);
  c.isolate(3);
  const leader = c.raft(1);
  assert.ok(leader.propose(new Uint8Array(40)) > 0, 'a single proposal larger than the limit is accepted when none is pending');
  assert.is(leader.propose(new Uint8Array(1)), 0, 'then nothing more');
  assert.is(leader.status().uncommittedBytes, 40);
  c.heal();
  leader.flush();
  c.stabilize();
  assert.is(leader.status().uncommittedBytes, 0, 'commit releases the budget');
  assert.ok(leader.propose(new Uint8Array(10)) > 0);
  assert.ok(leader.propose(new Uint8Array(10)) > 0);
  assert.is(leader.propose(new Uint8Array(10)), 0, '30 bytes would pass 25');
});

test('a heartbeat reply waits for its term to be durable; in a durable term it leaves at once', () => {
  const f = follower([], 0, 0);
  f.raft.step(message(MessageType.heartbeat, 1, 2, 1, { commit: 0 }));
  let rd = f.raft.ready();
  assert.equal(rd.hardState?.term, 1);
  assert.equal(rd.messages, [], 'term 1 is not durable yet');
  assert.equal(rd.messagesAfterPersist.map((m) => m.type), [MessageType.heartbeatResp]);
  f.storage.setHardState(rd.hardState!);
  f.raft.advance(rd);
  f.raft.step(message(MessageType.heartbeat, 1, 2, 1, { commit: 0 }));
  rd = f.raft.ready();
  assert.equal(rd.messages.map((m) => m.type), [MessageType.heartbeatResp], 'the term is durable now');
});

test('campaign(): refused within the election timeout of hearing a leader, allowed after it', () => {
  const c = electedCluster({ checkQuorum: true, electionTicks: 10 });
  assert.is(c.raft(2).campaign(), false, 'node 2 heard the leader just now');
  assert.is(c.raft(1).campaign(), false, 'a leader does not campaign');
  c.isolate(2);
  c.tick(2, 10);
  assert.is(c.raft(2).campaign(), true, 'an election timeout without the leader');
  // Without CheckQuorum there is no lease to protect.
  const d = electedCluster({ checkQuorum: false });
  assert.is(d.raft(2).campaign(), true);
});

test('restart: a node with a saved term refuses to campaign for one election timeout', () => {
  const c = electedCluster({ checkQuorum: true, electionTicks: 10 });
  c.crash(2);
  c.restart(2);
  assert.is(c.raft(2).campaign(), false);
  c.isolate(2);
  c.tick(2, 10);
  assert.is(c.raft(2).campaign(), true);
});

type Pr = { match: number; lastActiveTick: number; state?: 'replicate' | 'snapshot' };
const status = (role: number, progress: [number, Pr][]): Pick<RaftStatus, 'role' | 'progress' | 'id' | 'tick'> =>
  ({ id: 1, tick: 100, role, progress: new Map(progress.map(([id, p]) => [id, { state: 'replicate', ...p, next: p.match + 1, inflight: 0, inflightBytes: 0, paused: false, pendingSnapshot: 0, recentActive: true }])) }) as never;

test('compaction point: a margin below the snapshot; a leader also waits for its slowest live follower, up to a bound', () => {
  const s = { catchUpEntries: 10, retainEntriesMax: 100, liveTicks: 30 };
  assert.is(compactionPoint(1000, status(Role.follower, []), s), 990);
  assert.is(compactionPoint(5, status(Role.follower, []), s), 0);
  const live = status(Role.leader, [[1, { match: 1000, lastActiveTick: 100 }], [2, { match: 950, lastActiveTick: 75 }], [3, { match: 10, lastActiveTick: 60 }]]);
  assert.is(compactionPoint(1000, live, s), 940, 'the slowest live follower (950) minus the margin; one not heard for 40 ticks does not count');
  const sending = status(Role.leader, [[2, { match: 950, lastActiveTick: 100 }], [3, { match: 930, lastActiveTick: 10, state: 'snapshot' }]]);
  assert.is(compactionPoint(1000, sending, s), 920, 'a follower receiving a snapshot holds the point however long ago it was heard');
  const slow = status(Role.leader, [[2, { match: 500, lastActiveTick: 100 }]]);
  assert.is(compactionPoint(1000, slow, s), 900, 'never more than retainEntriesMax below the snapshot');
  const ahead = status(Role.leader, [[2, { match: 2000, lastActiveTick: 100 }]]);
  assert.is(compactionPoint(1000, ahead, s), 990, 'never past the snapshot');
});

test.run();
