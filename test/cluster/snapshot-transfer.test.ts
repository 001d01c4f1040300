// The snapshot stream on its own, over a fake clock and a channel that loses, duplicates and
// reorders frames: the follower ends with a byte-identical, verified file, and a transfer with
// no way through is given up and reported.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotIntake, SnapshotSenders, type TransferSettings } from '../../apps/cluster/snapshot-transfer.ts';
import { decodeSnapshotAck, decodeSnapshotChunk } from '../../apps/cluster/wire.ts';
import { createRng } from '../../runtime/rng.ts';
import { SnapshotStore, type SnapshotInfo } from '../../runtime/storage/snapshot-store.ts';

const settings: TransferSettings = { chunkBytes: 1000, inflightBytesMax: 4000, resendMs: 50, timeoutMs: 2000 };

async function writeSnapshot(store: SnapshotStore, bytes: number): Promise<SnapshotInfo> {
  const w = store.createWriter({ index: 77, term: 3, voters: [1, 2, 3] });
  const rng = createRng(5);
  for (let done = 0; done < bytes; done += 700) await w.write(Uint8Array.from({ length: Math.min(700, bytes - done) }, () => rng.int(0, 256)));
  return w.commit();
}

interface Wire {
  to: number;
  frame: Uint8Array;
  at: number;
}

/** Runs leader (1) → follower (2) in virtual time over a channel with the given faults. */
async function run(loss: number, duplicate: number, reorder: boolean, restartFollowerAtMs = -1, blackhole = false) {
  const dirA = mkdtempSync(join(tmpdir(), 'concur-xfer-a-'));
  const dirB = mkdtempSync(join(tmpdir(), 'concur-xfer-b-'));
  try {
    const leaderStore = SnapshotStore.open(dirA);
    const info = await writeSnapshot(leaderStore, 25_000);
    let now = 0;
    const rng = createRng(11);
    const inFlight: Wire[] = [];
    const send = (to: number, frame: Uint8Array) => {
      if (blackhole || rng.chance(loss)) return;
      const copies = rng.chance(duplicate) ? 2 : 1;
      for (let i = 0; i < copies; i++) inFlight.push({ to, frame: frame.slice(), at: now + (reorder ? rng.int(1, 20) : 5) });
    };
    const reports: [number, boolean][] = [];
    const senders = new SnapshotSenders(leaderStore, settings, { now: () => now, sendFrame: send }, (to, ok) => reports.push([to, ok]));
    let delivered: SnapshotInfo | null = null;
    const openIntake = () => new SnapshotIntake(SnapshotStore.open(dirB), { now: () => now, sendFrame: send }, (_from, term, i) => {
      assert.is(term, 9);
      delivered = i;
    });
    let intake = openIntake();
    senders.start(2, 9, info);
    for (; now < 10_000 && delivered === null && reports.length === 0; now++) {
      if (now === restartFollowerAtMs) intake = openIntake(); // a restart: a new intake over the same directory
      inFlight.sort((a, b) => a.at - b.at);
      while (inFlight.length > 0 && inFlight[0]!.at <= now) {
        const w = inFlight.shift()!;
        if (w.to === 2) {
          const c = decodeSnapshotChunk(w.frame, 0, w.frame.length);
          intake.onChunk(1, c.key, c.leaderTerm, c.offset, c.data);
        } else {
          const a = decodeSnapshotAck(w.frame, 0, w.frame.length);
          senders.onAck(2, a.key, a.have, a.done);
        }
      }
      if (now % 10 === 0) senders.tick();
    }
    // Let the last ack through, so the sender reports.
    for (let i = 0; i < 50 && reports.length === 0 && !blackhole; i++, now++) {
      inFlight.sort((a, b) => a.at - b.at);
      while (inFlight.length > 0 && inFlight[0]!.to === 1) {
        const w = inFlight.shift()!;
        const a = decodeSnapshotAck(w.frame, 0, w.frame.length);
        senders.onAck(2, a.key, a.have, a.done);
      }
      senders.tick();
    }
    const got = delivered as SnapshotInfo | null;
    return {
      same: got !== null && Buffer.compare(readFileSync(join(dirA, info.name)), readFileSync(join(dirB, got.name))) === 0,
      reports,
      ms: now,
      sent: senders.bytesSent,
    };
  } finally {
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
}

test('a clean channel: the file arrives whole and the sender reports success', async () => {
  const r = await run(0, 0, false);
  assert.ok(r.same, 'byte-identical, verified file');
  assert.equal(r.reports, [[2, true]]);
});

test('loss, duplication and reordering: still a byte-identical file, at the cost of resends', async () => {
  const r = await run(0.2, 0.1, true);
  assert.ok(r.same, 'byte-identical, verified file');
  assert.equal(r.reports, [[2, true]]);
  assert.ok(r.sent > 25_000, `lost chunks were resent (${r.sent} bytes sent for 25,000+)`);
});

test('a follower restarted in the middle resumes from its partial file', async () => {
  const r = await run(0, 0, false, 30);
  assert.ok(r.same);
  assert.equal(r.reports, [[2, true]]);
});

test('nothing gets through: the sender gives up after its timeout and reports the failure', async () => {
  const r = await run(0, 0, false, -1, true);
  assert.equal(r.reports, [[2, false]]);
  assert.ok(r.ms >= settings.timeoutMs, `given up after ${r.ms} ms`);
});

test.run();
