// Unit tests of the Paxos core (protocols/paxos): configuration checks, the acceptor's rules,
// the durability contract of the Ready batch, restarts from storage, Multi-Paxos leadership,
// windows and batching, both read paths, and the three deliberate mutations each producing the
// wrong outcome in a small deterministic scenario. The two tests at the end pin fixed bugs (a
// Basic Paxos command chosen twice when another proposer adopted it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import {
  ballot,
  MemoryPaxosStorage,
  PaxosConfigError,
  paxosMessage,
  PaxosMessageType as T,
  PaxosNode,
  PaxosRole,
  ValueKind,
  type PaxosConfig,
  type PaxosMessage,
  type PaxosMutations,
  type PaxosReady,
  type PaxosSettings,
  type Value,
} from '../../protocols/paxos/index.ts';
import { formatValue } from '../../protocols/paxos/describe.ts';
import { multiLeaderCluster, PaxosTestCluster } from './harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const val = (s: string): Value => ({ kind: ValueKind.normal, data: enc(s) });
const show = (v: Value | undefined) => (v === undefined ? '-' : formatValue(v));

function node(id: number, opts: Partial<PaxosConfig> & Partial<PaxosSettings> = {}): { p: PaxosNode; storage: MemoryPaxosStorage } {
  const storage = (opts.storage as MemoryPaxosStorage | undefined) ?? new MemoryPaxosStorage();
  const p = new PaxosNode({ nodes: [1, 2, 3], mode: 'multi', rng: createRng(id), ...opts, id, storage });
  return { p, storage };
}

/** Steps 2–5 of the Ready contract, done by hand. */
function persistAndAdvance(p: PaxosNode, storage: MemoryPaxosStorage, rd: PaxosReady): void {
  storage.persist(rd);
  p.advance(rd);
}

function drain(p: PaxosNode, storage: MemoryPaxosStorage): PaxosMessage[] {
  const out: PaxosMessage[] = [];
  while (p.hasReady()) {
    const rd = p.ready();
    out.push(...rd.messages, ...rd.messagesAfterPersist);
    persistAndAdvance(p, storage, rd);
  }
  return out;
}

// ---------------------------------------------------------------- configuration

test('config: bad settings are refused with the setting named', () => {
  const base = { id: 1, nodes: [1, 2, 3], mode: 'multi' as const, storage: new MemoryPaxosStorage(), rng: createRng(1) };
  const cases: [Partial<PaxosConfig>, RegExp][] = [
    [{ nodes: [] }, /at least one acceptor/],
    [{ nodes: [1, 2, 2] }, /nodes must be unique/],
    [{ id: 4 }, /must include this node's id 4/],
    [{ id: 0 }, /id must be an integer from 1/],
    [{ nodes: [1, 200] }, /each node id must be an integer/],
    [{ mode: 'fast' as never }, /mode must be basic or multi, got fast/],
    [{ electionTicks: 1 }, /electionTicks must be an integer from 2/],
    [{ electionTicks: 2.5 }, /electionTicks/],
    [{ heartbeatTicks: 0 }, /heartbeatTicks must be an integer from 1 to 9/],
    [{ electionTicks: 5, heartbeatTicks: 5 }, /heartbeatTicks must be an integer from 1 to 4, got 5/],
    [{ inflightMax: 0 }, /inflightMax/],
    [{ batchMax: 0 }, /batchMax/],
    [{ applied: -1 }, /applied/],
  ];
  for (const [patch, re] of cases) {
    try {
      new PaxosNode({ ...base, ...patch } as PaxosConfig);
      assert.unreachable(`accepted ${JSON.stringify(patch)}`);
    } catch (err) {
      assert.instance(err, PaxosConfigError, JSON.stringify(patch));
      assert.match((err as Error).message, re);
    }
  }
  // The limits themselves are fine.
  new PaxosNode({ ...base, nodes: [1], electionTicks: 2, heartbeatTicks: 1, inflightMax: 1, batchMax: 1 });
});

// ---------------------------------------------------------------- acceptor

test('acceptor: a lower prepare or accept gets a nack naming the promise; nothing below it is accepted', () => {
  const { p, storage } = node(1);
  const b22 = ballot(2, 2);
  p.step(paxosMessage(T.prepare, 2, 1, b22, { slot: 1 }));
  let out = drain(p, storage);
  assert.equal(out.map((m) => [m.type, m.to, m.ballot]), [[T.promise, 2, b22]]);

  p.step(paxosMessage(T.prepare, 3, 1, ballot(1, 3), { slot: 1 }));
  p.step(paxosMessage(T.accept, 3, 1, ballot(1, 3), { proposals: [{ slot: 1, ballot: ballot(1, 3), value: val('low') }] }));
  out = drain(p, storage);
  assert.equal(out.map((m) => [m.type, m.to, m.ballot, m.slot]), [[T.nack, 3, b22, 1], [T.nack, 3, b22, 1]]);
  assert.is(p.acceptedAt(1), undefined, 'nothing accepted below the promise');
  assert.is(storage.acceptedAt(1), undefined);
  assert.is(p.promisedBallot, b22);

  // At the promise itself, and above it, accepts go through (and a higher one raises the promise).
  p.step(paxosMessage(T.accept, 2, 1, b22, { proposals: [{ slot: 1, ballot: b22, value: val('ok') }] }));
  out = drain(p, storage);
  assert.equal(out.map((m) => [m.type, m.slots]), [[T.accepted, [1]]]);
  assert.is(show(storage.acceptedAt(1)?.value), '"ok"');
  const b33 = ballot(3, 3);
  p.step(paxosMessage(T.accept, 3, 1, b33, { proposals: [{ slot: 1, ballot: b33, value: val('ok') }] }));
  drain(p, storage);
  assert.is(p.promisedBallot, b33);
  assert.is(storage.acceptedAt(1)?.ballot, b33);
  assert.is(storage.initialState().promised, b33);
});

test('durability: promises and accepteds leave only after persistence (messagesAfterPersist, mustSync)', () => {
  const { p, storage } = node(1);
  const b = ballot(1, 2);
  p.step(paxosMessage(T.prepare, 2, 1, b, { slot: 1 }));
  let rd = p.ready();
  assert.equal(rd.messages, [], 'nothing may leave before the promise is durable');
  assert.equal(rd.messagesAfterPersist.map((m) => m.type), [T.promise]);
  assert.equal(rd.hardState, { promised: b, commit: 0 });
  assert.ok(rd.mustSync);
  persistAndAdvance(p, storage, rd);

  p.step(paxosMessage(T.accept, 2, 1, b, { proposals: [{ slot: 1, ballot: b, value: val('x') }, { slot: 2, ballot: b, value: val('y') }] }));
  rd = p.ready();
  assert.equal(rd.messages, []);
  assert.equal(rd.messagesAfterPersist.map((m) => [m.type, m.slots]), [[T.accepted, [1, 2]]]);
  assert.equal(rd.accepted.map((a) => [a.slot, a.ballot, show(a.value)]), [[1, b, '"x"'], [2, b, '"y"']]);
  assert.ok(rd.mustSync);
  assert.is(storage.acceptedAt(1), undefined, 'the host writes it, not the core');
  persistAndAdvance(p, storage, rd);
  assert.is(show(storage.acceptedAt(2)?.value), '"y"');
});

test('durability: a proposer\'s prepares wait for its own durable promise; its own acks count only once durable', () => {
  const c = new PaxosTestCluster(3, 'multi');
  const leader = c.paxos(1);
  leader.campaign();
  let rd = leader.ready();
  assert.equal(rd.messages, []);
  assert.equal(rd.messagesAfterPersist.map((m) => [m.type, m.to]), [[T.prepare, 2], [T.prepare, 3]], 'prepares vouch for our own promise');
  assert.is(rd.hardState?.promised, ballot(1, 1));
  c.node(1).storage.persist(rd);
  leader.advance(rd);
  c.inflight.push(...rd.messagesAfterPersist);
  c.stabilize();
  assert.is(leader.currentRole, PaxosRole.leader);

  // A proposal: the leader's own acceptance is in the Ready; until it is durable only node 2's counts.
  leader.propose(enc('x'));
  leader.flush();
  rd = leader.ready();
  assert.equal(rd.accepted.map((a) => a.slot), [1]);
  const accepts = rd.messages.filter((m) => m.type === T.accept);
  assert.equal(accepts.map((m) => m.to), [2, 3], 'accepts leave before the leader\'s own write');
  c.paxos(2).step(accepts[0]!);
  c.process(2, false);
  const ack = c.inflight.find((m) => m.type === T.accepted && m.from === 2)!;
  leader.step(ack);
  assert.is(leader.commitIndex, 0, 'one durable acceptance of three is not a majority');
  c.node(1).storage.persist(rd);
  leader.advance(rd);
  assert.is(leader.commitIndex, 1, 'the leader\'s own durable acceptance makes two');
});

test('restart: an acceptor comes back with its promise and accepted values, and honours them', () => {
  const storage = new MemoryPaxosStorage();
  let { p } = node(1, { storage });
  const b = ballot(3, 2);
  p.step(paxosMessage(T.prepare, 2, 1, b, { slot: 1 }));
  p.step(paxosMessage(T.accept, 2, 1, b, { proposals: [{ slot: 4, ballot: b, value: val('kept') }] }));
  drain(p, storage);

  // A promise made but not yet persisted is lost with the crash — and it never left the node.
  p.step(paxosMessage(T.prepare, 3, 1, ballot(9, 3), { slot: 1 }));
  const lost = p.ready();
  assert.equal(lost.messages, [], 'the unpersisted promise was not sent');

  ({ p } = node(1, { storage }));
  assert.is(p.promisedBallot, b);
  assert.is(show(p.acceptedAt(4)?.value), '"kept"');
  assert.is(p.status().lastSlot, 4);
  p.step(paxosMessage(T.prepare, 3, 1, ballot(2, 3), { slot: 1 }));
  p.step(paxosMessage(T.accept, 3, 1, ballot(2, 3), { proposals: [{ slot: 4, ballot: ballot(2, 3), value: val('other') }] }));
  let out = drain(p, storage);
  assert.equal(out.map((m) => [m.type, m.ballot]), [[T.nack, b], [T.nack, b]], 'nothing below the durable promise');
  assert.is(show(storage.acceptedAt(4)?.value), '"kept"');
  p.step(paxosMessage(T.prepare, 3, 1, ballot(4, 3), { slot: 1 }));
  out = drain(p, storage);
  assert.equal(out.map((m) => [m.type, m.proposals.map((x) => [x.slot, x.ballot, show(x.value)])]), [[T.promise, [[4, b, '"kept"']]]], 'a higher prepare learns what was accepted');
});

test('restart: a node replays the chosen values it kept, from slot 1, and proposes above its old ballot', () => {
  const c = multiLeaderCluster();
  c.propose(1, 'a');
  c.propose(1, 'b');
  c.stabilize();
  c.crash(1);
  c.restart(1);
  c.process(1);
  assert.equal(c.node(1).applied.map((x) => show(x.value)), ['"a"', '"b"']);
  assert.is(c.paxos(1).currentRole, PaxosRole.follower);
  c.paxos(1).campaign();
  assert.is(c.paxos(1).status().ballot, ballot(2, 1), 'the new ballot is above the durable promise 1.1');
});

test('snapshots: a node behind a compacted prefix gets the snapshot, and a restart starts from its image', () => {
  const c = multiLeaderCluster(3);
  c.isolate(3);
  for (const v of ['a', 'b', 'c']) c.propose(1, v);
  c.stabilize();
  assert.is(c.compact(1), 3);
  assert.is(c.compact(2), 3);
  assert.is(c.paxos(1).chosenAt(1), undefined, 'compacted away');
  assert.is(c.node(1).storage.snapshotSlot(), 3);
  c.heal();
  c.run(3);
  assert.ok(c.takeTranscript().includes('3: installed snapshot through slot 3'));
  assert.is(c.paxos(3).commitIndex, 3);
  assert.equal(c.node(3).applied.map((x) => show(x.value)), ['"a"', '"b"', '"c"']);
  c.propose(1, 'd');
  c.run(2);
  c.crash(1);
  c.restart(1);
  c.process(1);
  assert.equal(c.node(1).applied.map((x) => [x.slot, show(x.value)]), [[1, '"a"'], [2, '"b"'], [3, '"c"'], [4, '"d"']], 'image 1–3, then slot 4 replayed');
  assert.is(c.paxos(1).commitIndex, 4);
});

// ---------------------------------------------------------------- Multi-Paxos

test('multi: phase 1 elects a leader; followers follow it and refuse proposals and reads', () => {
  const c = new PaxosTestCluster(3, 'multi');
  assert.not.ok(c.propose(1, 'x'), 'no leader yet');
  c.paxos(1).campaign();
  assert.is(c.paxos(1).currentRole, PaxosRole.candidate);
  c.stabilize();
  assert.is(c.leader(), 1);
  for (const id of [2, 3]) {
    const st = c.paxos(id).status();
    assert.is(st.leader, 1);
    assert.is(st.promised, ballot(1, 1));
    assert.not.ok(c.propose(id, 'x'), `follower ${id} refuses a proposal`);
    assert.not.ok(c.paxos(id).readIndex(1), `follower ${id} refuses a read`);
  }
  assert.ok(c.propose(1, 'x'));
  c.stabilize();
  for (const id of c.ids) assert.equal(c.node(id).applied.map((x) => show(x.value)), ['"x"']);
});

test('multi: a follower that hears no leader campaigns on its own after its election timeout', () => {
  const c = new PaxosTestCluster(3, 'multi', { electionTicks: 5 });
  c.run(20);
  const lead = c.leader();
  assert.ok(lead > 0);
  for (const id of c.ids) assert.is(c.paxos(id).status().leader, lead);
});

test('multi: a deposed leader steps down when a higher ballot refuses it', () => {
  const c = multiLeaderCluster();
  c.isolate(1);
  c.paxos(2).campaign();
  c.stabilize();
  assert.is(c.paxos(2).currentRole, PaxosRole.leader);
  assert.is(c.paxos(1).currentRole, PaxosRole.leader, 'still thinks it leads');
  c.heal();
  c.propose(1, 'stale');
  c.stabilize();
  assert.is(c.paxos(1).currentRole, PaxosRole.follower);
  assert.is(c.paxos(1).status().leader, 2);
  assert.is(c.paxos(1).commitIndex, 0, 'the stale proposal was not chosen');
});

test('multi: inflightMax bounds the slots in flight; proposals past it wait for a slot, in order', () => {
  const c = multiLeaderCluster(3, { inflightMax: 3 });
  const results = ['a', 'b', 'c', 'd'].map((v) => c.propose(1, v));
  assert.equal(results, [true, true, true, true]);
  assert.equal([c.paxos(1).status().inflight, c.paxos(1).status().queued], [3, 1], 'd waits outside the window');
  c.stabilize();
  assert.equal([c.paxos(1).status().inflight, c.paxos(1).status().queued], [0, 0]);
  assert.is(c.paxos(1).commitIndex, 4, 'd got slot 4 once the window freed');
});

test('multi: batchMax splits one flush into accept messages of at most batchMax proposals', () => {
  const c = multiLeaderCluster(3, { batchMax: 2 });
  for (const v of ['a', 'b', 'c', 'd', 'e']) assert.ok(c.propose(1, v));
  c.process(1);
  const accepts = c.inflight.filter((m) => m.type === T.accept);
  assert.equal(accepts.map((m) => [m.to, m.proposals.map((p) => p.slot)]), [
    [2, [1, 2]],
    [2, [3, 4]],
    [2, [5]],
    [3, [1, 2]],
    [3, [3, 4]],
    [3, [5]],
  ]);
  c.stabilize();
  assert.is(c.paxos(3).commitIndex, 5);
});

test('multi: a new leader re-proposes reported values, fills gaps with no-ops, and applies in order', () => {
  const c = multiLeaderCluster(3, { batchMax: 1 });
  for (const v of ['a', 'b', 'c']) c.propose(1, v);
  c.process(1);
  // Only slot 3 reaches node 2; slots 1–2 are lost.
  c.drop({ slot: 1 });
  c.drop({ slot: 2 });
  c.drop({ to: 3 });
  c.deliverRound();
  c.crash(1);
  c.paxos(2).campaign();
  c.stabilize();
  assert.is(c.leader(), 2);
  for (const id of [2, 3]) assert.equal(c.node(id).applied.map((x) => show(x.value)), ['noop', 'noop', '"c"']);
});

// ---------------------------------------------------------------- reads

test('multi reads: a ReadState comes only after a heartbeat round acknowledged by a majority', () => {
  const c = multiLeaderCluster(5);
  c.propose(1, 'x');
  c.stabilize();
  const leader = c.paxos(1);
  assert.ok(leader.readIndex(42));
  c.process(1);
  const hbs = c.inflight.filter((m) => m.type === T.heartbeat);
  assert.equal(hbs.map((m) => m.to), [2, 3, 4, 5]);
  assert.ok(hbs.every((m) => m.context === hbs[0]!.context && m.context > 0), 'the round is tagged');
  c.deliverRound({ to: 2 });
  c.processAll();
  c.deliverRound({ type: 'heartbeatResp' });
  c.process(1);
  assert.equal(c.node(1).readsServed, [], 'leader + node 2: 2 of 5 is not a majority');
  c.deliverRound({ to: 3 });
  c.processAll();
  c.deliverRound({ type: 'heartbeatResp' });
  c.process(1);
  assert.equal(c.node(1).readsServed, [{ index: 1, context: 42 }], '3 of 5: served at the highest assigned slot');
});

test('multi reads: a cut-off leader confirms nothing; a one-node cluster reads at once', () => {
  const c = multiLeaderCluster(3);
  c.isolate(1);
  c.paxos(1).readIndex(7);
  c.stabilize();
  assert.equal(c.node(1).readsServed, []);
  const solo = new PaxosTestCluster(1, 'multi');
  solo.paxos(1).campaign();
  solo.stabilize();
  assert.ok(solo.propose(1, 'x'));
  assert.ok(solo.paxos(1).readIndex(9));
  solo.stabilize();
  assert.equal(solo.node(1).readsServed, [{ index: 1, context: 9 }]);
});

test('basic reads: a read marker is chosen in a slot like a command; the read is served there', () => {
  const c = new PaxosTestCluster(3, 'basic');
  assert.ok(c.propose(1, 'x'));
  assert.ok(c.paxos(1).readIndex(5));
  c.stabilize();
  assert.equal(c.node(1).readsServed, [{ index: 2, context: 5 }]);
  assert.equal(c.node(1).applied.map((x) => [x.slot, show(x.value)]), [[1, '"x"'], [2, 'read']]);
  // Any node takes reads in Basic Paxos; two reads asked before a marker starts share it.
  assert.ok(c.paxos(2).readIndex(6));
  c.stabilize();
  assert.equal(c.node(2).readsServed.map((r) => r.context), [6]);
  assert.ok(c.node(2).readsServed[0]!.index >= 2);
});

// ---------------------------------------------------------------- Basic Paxos

test('basic: a later proposer adopts the value a promise reports (round 5 / round 6)', () => {
  const c = roundFiveSix({});
  assert.equal(c.node(5).applied.map((x) => show(x.value)), ['"X"', '"Y"']);
  assert.equal(c.node(1).applied.map((x) => show(x.value)), ['"X"']);
});

test('basic: any node proposes; a value that loses its slot moves to the next one', () => {
  const c = new PaxosTestCluster(3, 'basic');
  assert.ok(c.propose(1, 'A'));
  assert.ok(c.propose(2, 'B'));
  c.run(80);
  const logs = c.ids.map((id) => c.node(id).applied.map((x) => show(x.value)).join(' '));
  assert.is(logs[0], logs[1]);
  assert.is(logs[1], logs[2]);
  assert.equal(logs[0]!.split(' ').sort(), ['"A"', '"B"']);
});

// ---------------------------------------------------------------- mutations

test('mutation acceptBelowPromise: an acceptor takes an accept below its promise, and two values are chosen in one slot', () => {
  const run = (unsafe: PaxosMutations) => {
    const c = new PaxosTestCluster(3, 'basic', {}, unsafe);
    c.propose(1, 'X');
    c.processAll();
    c.deliverRound(); // prepares 1.1
    c.processAll();
    c.deliverRound(); // promises: node 1 sends accept X@1.1
    c.processAll();
    const held = c.inflight.filter((m) => m.type === T.accept); // node 1's accepts, held back
    c.inflight = c.inflight.filter((m) => m.type !== T.accept);
    c.propose(3, 'Y'); // ballot 2.3: node 3 has promised 1.1
    c.cutLink(3, 1);
    c.cutLink(1, 3);
    c.stabilize(); // nodes 2 and 3 promise 2.3 (nothing accepted yet), accept Y@2.3: Y chosen
    assert.is(show(c.paxos(3).chosenAt(1)), '"Y"');
    c.inflight.push(...held);
    c.stabilize(); // X@1.1 reaches node 2, which promised 2.3
    return c;
  };
  const safe = run({});
  assert.is(show(safe.paxos(2).acceptedAt(1)?.value), '"Y"', 'the accept below the promise is refused');
  assert.is.not(show(safe.paxos(1).chosenAt(1)), '"X"', 'node 1 never learns X in slot 1');
  const broken = run({ acceptBelowPromise: true });
  assert.is(broken.paxos(2).acceptedAt(1)?.ballot, ballot(1, 1), 'node 2 accepted X@1.1 below its promise 2.3');
  assert.is(show(broken.paxos(1).chosenAt(1)), '"X"', 'node 1 learns X chosen in slot 1...');
  assert.is(show(broken.paxos(3).chosenAt(1)), '"Y"', '...where node 3 learned Y: agreement broken');
});

test('mutation ignoreAcceptedInPromise (basic): the second proposer overrides a chosen value', () => {
  const c = roundFiveSix({ ignoreAcceptedInPromise: true });
  assert.is(show(c.paxos(1).chosenAt(1)), '"X"');
  assert.is(show(c.paxos(5).chosenAt(1)), '"Y"', 'Y chosen in slot 1 over the reported X');
});

test('mutation ignoreAcceptedInPromise (multi): a new leader puts a no-op where a value was chosen', () => {
  const run = (unsafe: PaxosMutations) => {
    const c = multiLeaderCluster(3, {}, unsafe);
    c.propose(1, 'a');
    c.process(1);
    c.drop({ to: 3 });
    c.deliverRound(); // accept a@1.1 reaches node 2
    c.processAll();
    c.deliverRound(); // its ack: node 1 learns a is chosen (1 and 2 of 3)
    assert.is(show(c.paxos(1).chosenAt(1)), '"a"');
    c.crash(1);
    c.paxos(2).campaign();
    c.stabilize();
    return c;
  };
  assert.equal(run({}).node(3).applied.map((x) => show(x.value)), ['"a"']);
  assert.equal(run({ ignoreAcceptedInPromise: true }).node(3).applied.map((x) => show(x.value)), ['noop'], 'a was chosen in slot 1, now a no-op is');
});

test('mutation skipGapFill: a new leader leaves the gap empty, so nothing after it ever applies', () => {
  const run = (unsafe: PaxosMutations) => {
    const c = multiLeaderCluster(3, { batchMax: 1 }, unsafe);
    c.propose(1, 'a');
    c.propose(1, 'b');
    c.process(1);
    c.drop({ slot: 1 }); // slot 1 reaches nobody
    c.drop({ to: 3 });
    c.deliverRound(); // slot 2 reaches node 2
    c.crash(1);
    c.paxos(2).campaign();
    c.run(10);
    return c;
  };
  const ok = run({});
  assert.equal(ok.node(3).applied.map((x) => show(x.value)), ['noop', '"b"']);
  const broken = run({ skipGapFill: true });
  assert.is(broken.paxos(2).chosenAt(1), undefined, 'slot 1 never gets a value');
  assert.is(show(broken.paxos(2).chosenAt(2)), '"b"', 'slot 2 is chosen...');
  assert.is(broken.paxos(2).commitIndex, 0, '...but never applies');
  assert.is(broken.paxos(3).commitIndex, 0);
});

// ---------------------------------------------------------------- a value chosen once, whoever chose it

// Basic Paxos: a proposer whose queued command was adopted and chosen by another proposer must
// not run it again in a later slot (it did once: the command was chosen twice).
test('basic: a command another proposer got chosen is not proposed again', () => {
  const c = new PaxosTestCluster(3, 'basic');
  c.propose(1, 'A');
  c.propose(2, 'B');
  c.processAll();
  c.deliverRound(); // prepares 1.1 and 1.2: node 2 refuses 1.1
  c.processAll();
  c.deliverRound(); // node 1 backs off; node 2's phase 1 completes and it accepts B@1.2 itself
  c.tickUntilRetry(1); // node 1 retries with 2.1...
  c.processAll();
  c.deliverRound({ from: 1 }); // ...and its prepares arrive before node 2's accepts
  c.processAll();
  c.deliverRound({ type: 'promise' }); // node 2's promise reports B@1.2: node 1 adopts B
  c.run(60); // B is chosen in slot 1 by node 1; node 2, backing off, still has B queued
  const applied = c.node(3).applied.map((x) => show(x.value));
  assert.equal(applied.filter((v) => v === '"B"').length, 1, `B chosen once (applied: ${applied.join(' ')})`);
});

// A proposer recognises its own value by content, not by reference: over a wire that copies
// messages, re-learning it from a promise must not make it propose it again (it did once).
test('basic: over a copying wire, a proposer recognises its own value in a promise', () => {
  const applied = ownValueRelearned(true);
  assert.equal(applied.filter((v) => v === '"X"').length, 1, `X chosen once (applied: ${applied.join(' ')})`);
});

test('basic: a proposer that re-learns its own value from a promise (same object) chooses it once', () => {
  const applied = ownValueRelearned(false);
  assert.equal(applied, ['"X"', '"Y"']);
});

/**
 * Node 1's X@1.1 is accepted by node 1 alone; node 3 (proposing Y at 2.3) adopts X from node 1's
 * promise and gets X@2.3 accepted by itself alone. Node 1 times out and retries at 3.1 with the
 * promises of {1, 3}: the highest report is node 3's X@2.3 — node 1's own command, as a copy
 * when the wire copies. Node 1 chooses X in slot 1; node 3 then puts Y in slot 2.
 */
function ownValueRelearned(clone: boolean): string[] {
  const c = new PaxosTestCluster(3, 'basic');
  c.cloneOnDelivery = clone;
  c.noteApplies = false;
  c.propose(1, 'X');
  c.processAll();
  c.deliverRound(); // prepares 1.1
  c.processAll();
  c.deliverRound(); // promises: node 1 accepts X@1.1 itself and sends accepts...
  c.processAll();
  c.drop({ type: 'accept' }); // ...which are lost
  c.cutLink(3, 2);
  c.propose(3, 'Y'); // ballot 2.3
  c.processAll();
  c.deliverRound({ type: 'prepare' });
  c.processAll();
  c.deliverRound({ type: 'promise' }); // node 1 reports X@1.1: node 3 adopts X, accepts X@2.3 itself
  assert.is(c.paxos(3).acceptedAt(1)?.ballot, ballot(2, 3));
  c.processAll();
  c.drop({}); // its accepts (and the nack from node 2's link) are lost
  c.heal();
  c.cutLink(1, 2); // node 1's next phase 1 hears from node 3 only
  c.tickUntilRetry(1); // node 1's instance times out; it prepares 3.1
  c.processAll();
  c.deliverRound({ type: 'prepare' });
  c.processAll();
  c.deliverRound({ type: 'promise' }); // {1, 3}: the highest report is X@2.3
  c.heal();
  c.stabilize(); // node 1's accept X@3.1 reaches 2 and 3: X chosen in slot 1
  assert.is(show(c.paxos(1).chosenAt(1)), '"X"');
  c.run(60); // node 3 (and node 1, if it thinks X lost its slot) try again
  return c.node(2).applied.map((x) => show(x.value));
}

// ---------------------------------------------------------------- helpers

/** basic-round5-round6.txt as a function: X chosen by {1,2,3} at 1.1, node 1 cut off, node 5 proposes Y at 2.5 via {3,4,5}. */
function roundFiveSix(unsafe: PaxosMutations): PaxosTestCluster {
  const c = new PaxosTestCluster(5, 'basic', {}, unsafe);
  c.noteApplies = false;
  c.propose(1, 'X');
  c.processAll();
  c.deliverRound();
  c.processAll();
  c.deliverRound();
  c.cutLink(1, 4);
  c.cutLink(1, 5);
  c.processAll();
  c.deliverRound();
  c.processAll();
  c.deliverRound();
  assert.is(show(c.paxos(1).chosenAt(1)), '"X"', 'X chosen in round 5');
  c.isolate(1);
  c.cutLink(5, 2);
  c.cutLink(2, 5);
  c.propose(5, 'Y');
  c.stabilize();
  return c;
}

test.run();
