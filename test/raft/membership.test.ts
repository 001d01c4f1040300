// Membership in the core: the change rules (applyConfChange), joint quorums, the configuration
// history along a log (truncation, restart, snapshots), and the leader's refusals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createRng } from '../../runtime/rng.ts';
import {
  applyConfChange,
  decodeConfEntry,
  decodeMembership,
  encodeConfEntry,
  encodeMembership,
  EntryKind,
  isJoint,
  JointConfig,
  MemoryStorage,
  membership,
  message,
  MessageType,
  RaftNode,
  Role,
  VoteResult,
  type ConfChange,
  type ConfChangeOp,
  type Entry,
  type Membership,
} from '../../protocols/raft/index.ts';
import { MembershipLog } from '../../protocols/raft/membership.ts';
import { TestCluster } from './harness.ts';

const m123 = membership([1, 2, 3]);
const change = (...pairs: [ConfChangeOp, number][]): ConfChange => ({ changes: pairs.map(([op, node]) => ({ op, node })) });

test('one voter added or removed is a simple change; two at once go through the joint configuration', () => {
  assert.equal(applyConfChange(m123, change(['add-voter', 4])), membership([1, 2, 3, 4]));
  assert.equal(applyConfChange(m123, change(['remove', 2])), membership([1, 3]));
  const joint = applyConfChange(m123, change(['add-voter', 4], ['remove', 1])) as Membership;
  assert.equal(joint.voters, [2, 3, 4]);
  assert.equal(joint.outgoing, [1, 2, 3]);
  assert.ok(joint.autoLeave);
  assert.equal(applyConfChange(joint, { changes: [], leave: true }), membership([2, 3, 4]));
  // A learner joining or leaving changes no voter: no joint step needed.
  assert.equal(applyConfChange(m123, change(['add-learner', 4], ['add-learner', 5])), membership([1, 2, 3], { learners: [4, 5] }));
  // joint: true forces the step even for one change; autoLeave: false keeps it until a leave.
  const forced = applyConfChange(m123, { ...change(['add-voter', 4]), joint: true, autoLeave: false }) as Membership;
  assert.ok(isJoint(forced) && !forced.autoLeave);
  // The mutation skips the step: the halves' majorities ({2,3} and {4,5,1}) need not meet.
  assert.not.ok(isJoint(applyConfChange(m123, change(['add-voter', 4], ['add-voter', 5], ['remove', 2], ['remove', 3]), true) as Membership));
});

test('changes that make no sense are refused with the reason', () => {
  const refused = (m: Membership, cc: ConfChange, re: RegExp) => {
    const r = applyConfChange(m, cc);
    assert.type(r, 'string', JSON.stringify(cc));
    assert.match(r as string, re);
  };
  refused(m123, change(['add-voter', 2]), /already a voter/);
  refused(m123, change(['remove', 9]), /not a member/);
  refused(m123, change(['add-voter', 4], ['remove', 4]), /twice/);
  refused(membership([1]), change(['remove', 1]), /no voter/);
  refused(membership([1, 2], { witnesses: [2] }), change(['remove', 1]), /only witnesses/);
  refused(membership([1, 2, 3], { witnesses: [3] }), change(['add-voter', 3]), /witness: remove it/);
  refused(membership([1, 2, 3], { learners: [4] }), change(['add-witness', 4]), /already a learner/);
  refused(m123, change(['add-learner', 1]), /remove it before/);
  refused(m123, { changes: [], leave: true }, /not in a joint/);
  const joint = applyConfChange(m123, change(['add-voter', 4], ['remove', 1])) as Membership;
  refused(joint, change(['add-voter', 5]), /must be left first/);
  refused(m123, { changes: [] }, /at least one/);
});

test('property: every accepted change yields a well-formed configuration, one voter apart unless joint', () => {
  const op = fc.constantFrom<ConfChangeOp>('add-voter', 'add-learner', 'add-witness', 'remove');
  const cc = fc.record({ changes: fc.array(fc.record({ op, node: fc.integer({ min: 1, max: 7 }) }), { maxLength: 3 }), leave: fc.boolean(), autoLeave: fc.boolean() });
  fc.assert(
    fc.property(fc.array(cc, { maxLength: 12 }), (steps) => {
      let m = m123;
      for (const s of steps) {
        const next = applyConfChange(m, s);
        if (typeof next === 'string') continue;
        const all = [...next.voters, ...next.outgoing];
        assert.ok(next.voters.length > 0, 'at least one voter');
        assert.ok(next.voters.some((id) => !next.witnesses.includes(id)), 'at least one full voter');
        for (const w of next.witnesses) assert.ok(all.includes(w), `witness ${w} votes`);
        for (const l of next.learners) assert.not.ok(next.voters.includes(l), `learner ${l} is no voter`);
        if (!isJoint(next) && !isJoint(m)) {
          const changed = new Set([...next.voters, ...m.voters].filter((id) => next.voters.includes(id) !== m.voters.includes(id)));
          assert.ok(changed.size <= 1, `a simple change moved ${changed.size} voters`);
        }
        if (isJoint(next)) assert.equal(next.outgoing, m.voters, 'the outgoing half is the old voters');
        assert.equal(decodeMembership(encodeMembership(next)), next);
        m = next;
      }
    }),
    { numRuns: 500, seed: 13 },
  );
});

test('a joint quorum needs a majority of both halves, for commits, votes and liveness checks', () => {
  const q = new JointConfig([1, 4, 5], [1, 2, 3]);
  const match = new Map([[1, 9], [2, 3], [3, 2], [4, 9], [5, 9]]);
  assert.is(q.committedIndex((id) => match.get(id) ?? 0), 3, 'incoming reaches 9, outgoing only 3');
  const votes = new Map([[1, true], [4, true], [5, true]]);
  assert.is(q.voteResult(votes), VoteResult.pending, 'all of the incoming half, none of the outgoing');
  votes.set(2, false).set(3, false);
  assert.is(q.voteResult(votes), VoteResult.lost);
  assert.not.ok(q.hasQuorum((id) => id === 1 || id === 4 || id === 5));
  assert.ok(q.hasQuorum((id) => id !== 3 && id !== 5));
  assert.ok(new JointConfig([7]).onlyVoter(7));
  assert.not.ok(new JointConfig([7], [6, 7]).onlyVoter(7));
});

test('config entries carry the whole configuration; damaged ones are refused', () => {
  const cc = change(['add-voter', 4]);
  const data = encodeConfEntry(cc, membership([1, 2, 3, 4]));
  assert.equal(decodeConfEntry(data).membership, membership([1, 2, 3, 4]));
  assert.throws(() => decodeConfEntry(new TextEncoder().encode('{"change":{"changes":[]}}')), /no membership/);
  assert.throws(() => decodeConfEntry(new TextEncoder().encode('nope')), /not JSON/);
  assert.throws(() => decodeConfEntry(new TextEncoder().encode('{"change":{"changes":[{"op":"grow","node":1}]},"membership":{"voters":[1]}}')), /bad change/);
});

test('the configuration history follows the log: truncation rolls a change back, a snapshot resets the base', () => {
  const h = new MembershipLog(0, m123);
  h.appended(5, encodeConfEntry(change(['add-voter', 4]), membership([1, 2, 3, 4])));
  h.appended(9, encodeConfEntry(change(['remove', 1]), membership([2, 3, 4])));
  assert.equal(h.current, membership([2, 3, 4]));
  assert.equal(h.at(7), membership([1, 2, 3, 4]));
  assert.equal(h.at(4), m123);
  h.truncateFrom(9);
  assert.equal(h.current, membership([1, 2, 3, 4]));
  assert.is(h.currentIndex, 5);
  h.reset(20, membership([4, 5]));
  assert.equal(h.at(5), membership([4, 5]), 'below a snapshot only its configuration is known');
});

/** Node 1 of `ids`, leading alone in a new configuration: campaign, persist, advance. */
function leaderOf(voters: number[]): { n: RaftNode; storage: MemoryStorage; settle: () => void } {
  const storage = new MemoryStorage();
  const n = new RaftNode({ id: 1, voters, storage, rng: createRng(1), preVote: false });
  const settle = () => {
    while (n.hasReady()) {
      const rd = n.ready();
      storage.append(rd.entries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      n.advance(rd);
    }
  };
  return { n, storage, settle };
}

test('the leader refuses a change before its term has a commit, while one is pending, and when not leading', () => {
  const follower = leaderOf([1, 2, 3]).n;
  assert.equal(follower.proposeConfChange(change(['add-voter', 4])), { refused: 'not the leader' });
  const { n, settle } = leaderOf([1]);
  n.campaign();
  settle();
  assert.is(n.currentRole, Role.leader);
  // The no-op is appended and durable at once for a single voter: term commit happens in advance().
  const first = n.proposeConfChange(change(['add-voter', 2]));
  assert.ok('index' in first, JSON.stringify(first));
  const pending = n.proposeConfChange(change(['add-voter', 3]));
  assert.ok('refused' in pending && /not committed yet/.test(pending.refused), JSON.stringify(pending));
  assert.equal(n.membership, membership([1, 2]), 'in force as soon as appended');
  assert.is(n.propose(new Uint8Array(1), EntryKind.config), 0, 'config entries only through proposeConfChange');
});

test('a restarted node knows its configuration from its log, and a joining node from the first config entry it gets', () => {
  const c = new TestCluster(4, { preVote: false }, {}, {}, 0, { voters: [1, 2, 3], witnesses: [] });
  c.raft(1).campaign();
  c.stabilize();
  assert.ok('index' in c.raft(1).proposeConfChange(change(['add-voter', 4])));
  c.raft(1).flush();
  c.stabilize();
  assert.equal(c.raft(4).membership, membership([1, 2, 3, 4]), 'the joining node learned it from entry 2');
  c.crash(2);
  c.restart(2);
  assert.equal(c.raft(2).membership, membership([1, 2, 3, 4]), 'restarted: read from its durable log');
  assert.equal(c.raft(2).status().membershipIndex, 2);
});

test('a snapshot message carries the configuration; the follower installs it with the snapshot', () => {
  const storage = new MemoryStorage();
  const n = new RaftNode({ id: 4, voters: [], joining: true, storage, rng: createRng(4) });
  assert.is(n.campaign(), false, 'a node with no configuration never campaigns');
  const conf = membership([1, 2, 4], { learners: [5] });
  const carried: Entry = { index: 30, term: 3, kind: EntryKind.config, data: encodeMembership(conf) };
  n.step(message(MessageType.snapshot, 1, 4, 3, { index: 30, logTerm: 3, commit: 30, entries: [carried] }));
  const rd = n.ready();
  assert.equal(rd.snapshot?.membership, conf);
  assert.equal(rd.membership, conf, 'the host hears of the new configuration in the same Ready');
  storage.installSnapshot(rd.snapshot!);
  if (rd.hardState) storage.setHardState(rd.hardState);
  n.advance(rd);
  const again = new RaftNode({ id: 4, voters: [], joining: true, storage, rng: createRng(5) });
  assert.equal(again.membership, conf, 'and finds it in the snapshot after a restart');
});

test.run();
