// The pieces of the node host that membership changes rely on, without workers: snapshot messages
// keep their configuration entry on the wire, a witness snapshot frame round-trips, and a node
// added to a running cluster derives the configuration from a log that starts at index 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng } from '../../runtime/rng.ts';
import {
  applyConfChange,
  decodeMembership,
  encodeConfEntry,
  encodeMembership,
  EntryKind,
  membership,
  MemoryStorage,
  message,
  MessageType,
  type ConfChange,
  type Entry,
  type Membership,
} from '../../protocols/raft/index.ts';
import { createRaft } from '../../apps/cluster/node-membership.ts';
import type { NodeConfig } from '../../apps/cluster/node-config.ts';
import { decodeRaft, decodeWitnessSnapshot, encodeRaft, encodeWitnessSnapshot } from '../../apps/cluster/wire.ts';

test('a snapshot message keeps its configuration entry through the wire encoding', () => {
  const m = membership([1, 4, 5], { outgoing: [1, 2, 3], learners: [7], witnesses: [5], autoLeave: true });
  const conf: Entry = { index: 120, term: 3, kind: EntryKind.config, data: encodeMembership(m) };
  const sent = message(MessageType.snapshot, 1, 4, 5, { index: 120, logTerm: 3, commit: 130, entries: [conf] });
  const frame = encodeRaft(sent);
  const got = decodeRaft(frame, 0, frame.length);
  assert.is(got.type, MessageType.snapshot);
  assert.is(got.entries.length, 1);
  assert.is(got.entries[0]!.kind, EntryKind.config);
  assert.equal({ ...decodeMembership(got.entries[0]!.data) }, { ...m });
});

test('a witness snapshot frame round-trips and refuses impossible fields', () => {
  const m = encodeMembership(membership([1, 2, 3], { witnesses: [3] }));
  const f = encodeWitnessSnapshot(7, 400, 6, m);
  const got = decodeWitnessSnapshot(f, 0, f.length);
  assert.equal({ leaderTerm: got.leaderTerm, index: got.index, term: got.term }, { leaderTerm: 7, index: 400, term: 6 });
  assert.equal(got.membership, m);
  const bad = encodeWitnessSnapshot(7, -1, 6, m);
  assert.throws(() => decodeWitnessSnapshot(bad, 0, bad.length), /impossible fields/);
});

const config: NodeConfig = { tickMs: 10, raft: {}, storage: 'memory', fsync: 'never', statusEveryMs: 50, seed: 1, voters: [1, 2, 3], joining: true, joinAs: 'voter' };

/** A log of the cluster that started as voters 1, 2, 3: a no-op, then one config entry per change. */
function logOf(...changes: string[][]): MemoryStorage {
  const entries: Entry[] = [{ index: 1, term: 1, kind: EntryKind.noop, data: new Uint8Array(0) }];
  let m: Membership = membership([1, 2, 3]);
  for (const c of changes) {
    const [op, node] = c as [ConfChange['changes'][number]['op'], string];
    const cc: ConfChange = { changes: [{ op, node: Number(node) }] };
    const next = applyConfChange(m, cc);
    if (typeof next === 'string') throw new Error(next);
    m = next;
    entries.push({ index: entries.length + 1, term: 1, kind: EntryKind.config, data: encodeConfEntry(cc, m) });
  }
  return new MemoryStorage({ term: 1, vote: 0, commit: 0 }, entries);
}

test('a joining node derives the configuration from a log that starts at index 1', () => {
  const rng = createRng(1);
  const fresh = createRaft({ id: 4, storage: logOf() }, config, 4, [1, 2, 3], rng);
  assert.not.ok(fresh.membership.voters.includes(4), 'not a voter before any entry adds it');
  const learner = createRaft({ id: 4, storage: logOf(['add-learner', '4']) }, config, 4, [1, 2, 3], rng);
  assert.equal([...learner.membership.voters], [1, 2, 3]);
  assert.equal([...learner.membership.learners], [4]);
  const voter = createRaft({ id: 4, storage: logOf(['add-learner', '4'], ['add-voter', '4'], ['remove', '1']) }, config, 4, [1, 2, 3], rng);
  assert.equal([...voter.membership.voters], [2, 3, 4]);
  assert.equal([...voter.membership.learners], []);
  // Another node's joining does not confuse this one; a witness knows it is one from its first entry.
  const other = createRaft({ id: 5, storage: logOf(['add-learner', '4'], ['add-voter', '5']) }, config, 5, [1, 2, 3, 4], rng);
  assert.equal([...other.membership.voters], [1, 2, 3, 5]);
  assert.equal([...other.membership.learners], [4]);
  const witness = createRaft({ id: 4, storage: logOf(['add-witness', '4']) }, { ...config, joinAs: 'witness' }, 4, [1, 2, 3], rng);
  assert.equal([...witness.membership.witnesses], [4]);
});

test.run();
