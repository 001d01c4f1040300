// Where a node may cut its log once it holds a durable snapshot: a pure rule shared by every
// host (the simulator and the worker node host), so both keep the same catch-up margin. It
// never decides when to snapshot, and never lets a cut pass the snapshot itself.
import type { RaftStatus } from './raft.ts';
import { Role } from './types.ts';

export interface CompactionSettings {
  /**
   * Entries kept below the point a node could cut to: a follower that lags by less catches up
   * from the log, not from a snapshot. Every node keeps them (any node may lead next).
   */
  catchUpEntries: number;
  /**
   * A leader also keeps what its slowest live follower still needs, so a follower slower than
   * the snapshot interval is not sent snapshot after snapshot; but never more than this many
   * entries below its snapshot, or a follower that can never keep up would hold memory forever.
   */
  retainEntriesMax: number;
}

/**
 * The highest index through which the log may be dropped, given a durable snapshot at
 * `snapshotIndex` and this node's status (its role and, as leader, each follower's progress).
 * Followers not heard from lately (down, or cut off) do not hold the point back: they will get
 * a snapshot when they return.
 */
export function compactionPoint(snapshotIndex: number, status: Pick<RaftStatus, 'role' | 'progress' | 'id'>, s: CompactionSettings): number {
  let through = snapshotIndex - s.catchUpEntries;
  if (status.role === Role.leader) {
    let slowest = Number.POSITIVE_INFINITY;
    for (const [id, pr] of status.progress) if (id !== status.id && pr.recentActive && pr.match < slowest) slowest = pr.match;
    if (slowest < snapshotIndex) through = Math.max(Math.min(through, slowest - s.catchUpEntries), snapshotIndex - s.retainEntriesMax);
  }
  return Math.max(0, Math.min(through, snapshotIndex));
}
