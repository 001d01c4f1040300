import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import { MemoryStorage, RaftConfigError, RaftNode, resolveRaftConfig, type RaftConfig } from '../../protocols/raft/index.ts';

const base = (): RaftConfig => ({ id: 1, voters: [1, 2, 3], storage: new MemoryStorage(), rng: createRng(1) });

test('defaults are filled in', () => {
  const c = resolveRaftConfig(base());
  assert.is(c.electionTicks, 10);
  assert.is(c.heartbeatTicks, 1);
  assert.is(c.preVote, true);
  assert.is(c.checkQuorum, true);
  assert.is(c.leaseDriftTicks, 2);
});

test('bad settings are refused with the setting named', () => {
  const bad: [Partial<RaftConfig>, RegExp][] = [
    [{ voters: [] }, /cluster of 0 nodes/],
    [{ voters: [2, 3] }, /must include this node's id 1/],
    [{ voters: [1, 1, 2] }, /unique/],
    [{ id: 0 }, /id must be an integer >= 1/],
    [{ heartbeatTicks: 10, electionTicks: 10 }, /heartbeatTicks \(10\) must be less than electionTicks \(10\)/],
    [{ electionTicks: 1 }, /electionTicks must be an integer >= 2/],
    [{ inflightMax: 0 }, /inflightMax/],
    [{ deferCommitNotice: 'yes' as unknown as boolean }, /deferCommitNotice must be a boolean, got yes/],
    [{ batchEntriesMax: 1.5 }, /batchEntriesMax/],
    [{ batchBytesMax: -1 }, /batchBytesMax/],
    [{ leaseDriftTicks: -1 }, /leaseDriftTicks must be an integer >= 0/],
    [{ leaseDriftTicks: 10, electionTicks: 10 }, /leaseDriftTicks \(10\) must be less than electionTicks \(10\)/],
    [{ rng: undefined as unknown as RaftConfig['rng'] }, /rng is required/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => new RaftNode({ ...base(), ...patch }), (e: Error) => e instanceof RaftConfigError && re.test(e.message), re.source);
  }
});

test('the election timeout is randomized from the injected generator, and replays', () => {
  const timeouts = (seed: number): number[] => {
    const out: number[] = [];
    for (let round = 0; round < 5; round++) {
      const n = new RaftNode({ ...base(), voters: [1, 2], rng: createRng(seed + round), preVote: false });
      let ticks = 0;
      while (n.currentRole === 0) {
        n.tick();
        ticks++;
      }
      out.push(ticks);
    }
    return out;
  };
  const a = timeouts(7);
  assert.equal(timeouts(7), a, 'same seed, same timeouts');
  for (const t of a) assert.ok(t >= 10 && t < 20, `timeout ${t} within [electionTicks, 2*electionTicks)`);
});

test.run();
