// The node host on its own, over a fake clock and transport: what it does with time that passed
// while it did not run, before it steps what arrived meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NodeHost } from '../../apps/cluster/node-host.ts';
import type { NodeConfig } from '../../apps/cluster/node-config.ts';
import { encodeRaft } from '../../apps/cluster/wire.ts';
import { KvApp } from '../../apps/kv/app.ts';
import { openMemory } from '../../runtime/storage/memory.ts';
import { message, MessageType } from '../../protocols/raft/index.ts';

function host(clock: { t: number }): NodeHost {
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
    io: { now: () => clock.t, sendFrame: () => {}, reply: () => {}, emit: () => {} },
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

test.run();
