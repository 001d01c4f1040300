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
  /**
   * A follower counts as live (and holds the point back) when the leader heard from it within
   * this many ticks, or while a snapshot is on its way to it. A few election timeouts: a
   * follower gone for longer is likely down and gets a snapshot when it returns.
   */
  liveTicks: number;
}

/**
 * The highest index through which the log may be dropped, given a durable snapshot at
 * `snapshotIndex` and this node's status (its role and, as leader, each follower's progress).
 * Followers not heard from lately (down, or cut off) do not hold the point back: they will get
 * a snapshot when they return. A follower receiving a snapshot does: once it has it, it needs
 * the log that follows.
 */
export function compactionPoint(snapshotIndex: number, status: Pick<RaftStatus, 'role' | 'progress' | 'id' | 'tick'>, s: CompactionSettings): number {
  let through = snapshotIndex - s.catchUpEntries;
  if (status.role === Role.leader) {
    let slowest = Number.POSITIVE_INFINITY;
    for (const [id, pr] of status.progress) {
      if (id === status.id || pr.match >= slowest) continue;
      const live = pr.state === 'snapshot' || (pr.lastActiveTick >= 0 && status.tick - pr.lastActiveTick <= s.liveTicks);
      if (live) slowest = pr.match;
    }
    if (slowest < snapshotIndex) through = Math.max(Math.min(through, slowest - s.catchUpEntries), snapshotIndex - s.retainEntriesMax);
  }
  return Math.max(0, Math.min(through, snapshotIndex));
}
