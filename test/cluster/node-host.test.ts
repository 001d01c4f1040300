// The node host on its own, over a fake clock and transport: what it does with time that passed
// while it did not run, before it steps what arrived meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NodeHost } from '../../apps/cluster/node-host.ts';
import type { NodeConfig } from '../../apps/cluster/node-config.ts';
import { encodeRaft } from '../../apps/cluster/wire.ts';
import { KvApp } from '../../apps/kv/app.ts';
import { openMemory } from '../../runtime/storage/memory.ts';
import { EntryKind, message, MessageType } from '../../protocols/raft/index.ts';
import { encodeCommand } from '../../apps/kv/commands.ts';
import type { NodeIO, NodeObserver } from '../../apps/cluster/node-host.ts';

function host(clock: { t: number }, io: Partial<NodeIO> = {}, observer?: NodeObserver): NodeHost {
  const store = openMemory({ keepEntries: false });
  const config: NodeConfig = {
    tickMs: 10,
    raft: { electionTicks: 10, heartbeatTicks: 1, checkQuorum: true, preVote: true },
    storage: 'memory',
    fsync: 'never',
    statusEveryMs: 50,
    seed: 1,
  };
  return new NodeHost({
    self: 2,
    peers: [1, 3],
    incarnation: 0,
    config,
    io: { now: () => clock.t, sendFrame: () => {}, reply: () => {}, emit: () => {}, ...io },
    ...(observer ? { observer } : {}),
    store,
    recovered: store.load(),
    app: new KvApp(),
    snapshots: null,
    startedFrom: null,
  });
}

function heartbeat(): Uint8Array {
  return encodeRaft(message(MessageType.heartbeat, 1, 2, 1, { commit: 0 })).slice();
}

test('a frame that arrives after a stall is judged at the time it arrives, not at the tick before the stall', () => {
  const clock = { t: 0 };
  const h = host(clock);
  clock.t = 50;
  h.tick();
  assert.is(h.raft.status().tick, 5);
  // The thread stalls for half a second (a GC pause, a long fsync); then a heartbeat is drained.
  clock.t = 550;
  h.beforeBatch();
  const f = heartbeat();
  h.onFrame(1, f, 0, f.length);
  h.process();
  assert.is(h.raft.status().tick, 55, 'the ticks of the stall were counted before the heartbeat');
  // Heard the leader at tick 55: it may not campaign for an election timeout from then on.
  clock.t = 600;
  h.tick();
  assert.is(h.campaign().started, false, 'at tick 60 the leader was heard 5 ticks ago');
  clock.t = 660;
  h.tick();
  assert.is(h.campaign().started, true, 'at tick 66, 11 ticks later, it may');
});

test('without catching up first, the same heartbeat would be stamped with the tick from before the stall', () => {
  // The control for the test above: this is the shortened vote-refusal window it prevents.
  const clock = { t: 0 };
  const h = host(clock);
  clock.t = 50;
  h.tick();
  clock.t = 550;
  const f = heartbeat();
  h.onFrame(1, f, 0, f.length); // no beforeBatch
  h.process();
  clock.t = 600;
  h.tick();
  assert.is(h.campaign().started, true, 'stamped at tick 5, the refusal ran out during the stall');
});

test('a follower wakes the leader for its ack before it applies what the append committed', () => {
  const clock = { t: 0 };
  const events: string[] = [];
  const h = host(clock, { sendFrame: (to) => events.push(`send ${to}`), publish: () => events.push('publish') }, { applied: (i) => events.push(`applied ${i}`) });
  const put = encodeCommand({ op: 'put', clientId: 'c', seq: 1, key: 'k', value: new Uint8Array([1]) });
  const entries = [{ index: 1, term: 1, kind: EntryKind.normal, data: put }];
  const f = encodeRaft(message(MessageType.app, 1, 2, 1, { index: 0, logTerm: 0, entries, commit: 1 })).slice();
  h.onFrame(1, f, 0, f.length);
  h.process();
  const ack = events.indexOf('send 1');
  const applied = events.indexOf('applied 1');
  assert.ok(ack >= 0 && applied > ack, `the ack was sent, then entry 1 applied: ${events.join(', ')}`);
  assert.ok(events.slice(ack, applied).includes('publish'), `published between the ack and the apply: ${events.join(', ')}`);
});

test.run();
