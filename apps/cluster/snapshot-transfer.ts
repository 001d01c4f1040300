// Streaming a snapshot file from a leader to a follower over the node rings. The sender keeps a
// byte budget in flight and goes back to what the receiver holds after a loss; the receiver
// writes into a partial file that survives a restart, so a transfer resumes where it stopped.
// Neither side decides anything of Raft: the leader's core asks for a transfer, the follower's
// core is handed the snapshot only once the whole file is on disk and verified.
import type { SnapshotInfo, SnapshotReceiver, SnapshotStore } from '../../runtime/storage/snapshot-store.ts';
import { encodeSnapshotAck, encodeSnapshotChunk, type SnapshotKey } from './wire.ts';

export interface TransferSettings {
  /** Bytes of the file per chunk frame (well under half a ring). */
  chunkBytes: number;
  /** Bytes sent and not yet acknowledged, per follower. */
  inflightBytesMax: number;
  /** Without progress for this long, the sender goes back to what the receiver acked. */
  resendMs: number;
  /** Without progress for this long, the sender gives up and tells its core (which offers again later). */
  timeoutMs: number;
}

export const transferDefaults: Readonly<TransferSettings> = Object.freeze({
  chunkBytes: 128 * 1024,
  inflightBytesMax: 1024 * 1024,
  resendMs: 250,
  timeoutMs: 10_000,
});

export interface TransferIO {
  now(): number;
  sendFrame(to: number, frame: Uint8Array): void;
}

export const keyOf = (info: SnapshotInfo): SnapshotKey => ({ index: info.index, term: info.term, fileBytes: info.fileBytes, headerCrc: info.headerCrc });
const sameKey = (a: SnapshotKey, b: SnapshotKey): boolean => a.index === b.index && a.term === b.term && a.fileBytes === b.fileBytes && a.headerCrc === b.headerCrc;

interface Outgoing {
  readonly to: number;
  readonly info: SnapshotInfo;
  readonly key: SnapshotKey;
  readonly leaderTerm: number;
  /** The receiver holds [0, acked). */
  acked: number;
  /** The next byte to send. */
  next: number;
  /** When `acked` last grew, and when we last went back to it. */
  lastProgressMs: number;
  lastResendMs: number;
}

/** What a leader is sending, for status and the dashboard. */
export interface OutgoingStatus {
  to: number;
  index: number;
  fileBytes: number;
  sent: number;
  acked: number;
}

/** The leader's side: one transfer per follower at most. */
export class SnapshotSenders {
  private readonly out = new Map<number, Outgoing>();
  /** Transfers completed and given up, since start. */
  completed = 0;
  failed = 0;
  bytesSent = 0;

  constructor(
    private readonly store: SnapshotStore,
    private readonly settings: TransferSettings,
    private readonly io: TransferIO,
    /** The transfer to `to` ended: ok (the follower holds the whole file) or not (given up). */
    private readonly report: (to: number, ok: boolean) => void,
  ) {}

  /** Files being sent: they must outlive newer snapshots until their transfers end. */
  inUse(): Set<string> {
    return new Set([...this.out.values()].map((t) => t.info.name));
  }

  /**
   * Sends `info` to `to` in leader term `leaderTerm`. A transfer of the same file already under
   * way goes on; one of another file is replaced.
   */
  start(to: number, leaderTerm: number, info: SnapshotInfo): void {
    const cur = this.out.get(to);
    const key = keyOf(info);
    if (cur !== undefined && cur.leaderTerm === leaderTerm && sameKey(cur.key, key)) return;
    const now = this.io.now();
    // The first chunk also asks the receiver what it holds already: a resumed transfer jumps there.
    const t: Outgoing = { to, info, key, leaderTerm, acked: 0, next: 0, lastProgressMs: now, lastResendMs: now };
    this.out.set(to, t);
    this.pump(t);
  }

  onAck(from: number, key: SnapshotKey, have: number, done: boolean): void {
    const t = this.out.get(from);
    if (t === undefined || !sameKey(t.key, key)) return;
    if (done) {
      this.out.delete(from);
      this.completed++;
      this.report(from, true);
      return;
    }
    const prev = t.acked;
    if (have > prev) t.lastProgressMs = this.io.now();
    t.acked = have;
    // It holds more than we sent (a partial file from before a restart): jump ahead. It holds
    // less than it did (it restarted and lost unsynced bytes): go back. A loss in between is
    // repaired by the resend timer, not here, so repeated acks do not resend a window each.
    if (have > t.next || have < prev) t.next = have;
    this.pump(t);
  }

  /** Timeouts and go-back; call every tick. */
  tick(): void {
    const now = this.io.now();
    for (const t of this.out.values()) {
      const idle = now - t.lastProgressMs;
      if (idle >= this.settings.timeoutMs) {
        this.out.delete(t.to);
        this.failed++;
        this.report(t.to, false);
      } else if (idle >= this.settings.resendMs && now - t.lastResendMs >= this.settings.resendMs) {
        // No progress: go back to what the receiver acked (asking where it stands if nothing is left to send).
        t.lastResendMs = now;
        t.next = t.acked;
        this.pump(t, true);
      }
    }
  }

  /** Leadership lost or the node stops: every transfer ends without a report (the core forgot them). */
  stopAll(): void {
    this.out.clear();
  }

  /** The follower is no longer to be sent anything (e.g. its transfer was abandoned by the core). */
  cancel(to: number): void {
    this.out.delete(to);
  }

  status(): OutgoingStatus[] {
    return [...this.out.values()].map((t) => ({ to: t.to, index: t.key.index, fileBytes: t.key.fileBytes, sent: t.next, acked: t.acked }));
  }

  private pump(t: Outgoing, probe = false): void {
    const { chunkBytes, inflightBytesMax } = this.settings;
    let sent = false;
    while (t.next < t.key.fileBytes && t.next - t.acked < inflightBytesMax) {
      let data: Uint8Array;
      try {
        data = this.store.readRaw(t.info.name, t.next, Math.min(chunkBytes, t.key.fileBytes - t.next));
      } catch {
        // The file is gone or unreadable: this transfer cannot finish; the core offers a new one.
        this.out.delete(t.to);
        this.failed++;
        this.report(t.to, false);
        return;
      }
      this.io.sendFrame(t.to, encodeSnapshotChunk(t.key, t.leaderTerm, t.next, data));
      t.next += data.length;
      this.bytesSent += data.length;
      sent = true;
    }
    if (!sent && (probe || t.key.fileBytes === 0)) {
      // An empty chunk at what we believe it holds: its answer tells where it stands.
      this.io.sendFrame(t.to, encodeSnapshotChunk(t.key, t.leaderTerm, Math.min(t.acked, t.key.fileBytes), new Uint8Array(0)));
    }
  }
}

/**
 * The follower's side: one partial file at a time (a newer transfer replaces an older one). When
 * the file is complete and verified, `delivered` hands it to the host, which steps its core.
 */
export class SnapshotIntake {
  private current: { key: SnapshotKey; receiver: SnapshotReceiver } | null = null;
  bytesReceived = 0;

  constructor(
    private readonly store: SnapshotStore,
    private readonly io: TransferIO,
    private readonly delivered: (from: number, leaderTerm: number, info: SnapshotInfo) => void,
  ) {}

  onChunk(from: number, key: SnapshotKey, leaderTerm: number, offset: number, data: Uint8Array): void {
    if (this.current === null || !sameKey(this.current.key, key)) {
      // A new file (or the first chunk since a restart): resumes a partial file of the same content.
      this.current = { key, receiver: this.store.receive(key) };
    }
    const r = this.current.receiver;
    const before = r.have;
    const have = data.length > 0 ? r.write(offset, data) : before;
    if (have > before) this.bytesReceived += have - before;
    if (have < key.fileBytes) {
      this.io.sendFrame(from, encodeSnapshotAck(key, have, false));
      return;
    }
    let info: SnapshotInfo;
    try {
      info = r.complete();
    } catch {
      // The bytes did not verify (the receiver deleted them): start over from nothing.
      this.current = null;
      this.io.sendFrame(from, encodeSnapshotAck(key, 0, false));
      return;
    }
    this.current = null;
    this.io.sendFrame(from, encodeSnapshotAck(key, key.fileBytes, true));
    this.delivered(from, leaderTerm, info);
  }

  /** A transfer in progress, for status. */
  status(): { index: number; fileBytes: number; have: number } | null {
    return this.current === null ? null : { index: this.current.key.index, fileBytes: this.current.key.fileBytes, have: this.current.receiver.have };
  }
}
