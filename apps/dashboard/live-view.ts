// Turns nodes' status reports into what the dashboard draws, for any holder of reports: the
// Cluster behind `concur start`, and the bench clusters (bench/dashboard-cost.ts).
import { messageTypeName, Role } from '../../protocols/raft/index.ts';
import { formatBallot, paxosMessageTypeName } from '../../protocols/paxos/types.ts';
import type { StatusReport } from '../cluster/protocol.ts';
import { progressFields, progressStates } from '../cluster/sent-counts.ts';
import type { LiveNode, LiveProgress, TrafficCount } from './source.ts';

/** A node's last report, and whether its worker runs (`up`) and is frozen (`paused`). */
export type ReportView = Omit<StatusReport, 't'> & { id: number; up: boolean; paused?: boolean };

export function liveNodeOf(v: ReportView, protocol: string): LiveNode {
  const role = !v.up ? 'down' : v.paused === true ? 'paused' : v.role === Role.leader ? 'leader' : v.role === Role.candidate || v.role === Role.preCandidate ? 'candidate' : 'follower';
  return {
    id: v.id,
    up: v.up,
    role,
    term: v.term,
    epoch: protocol === 'raft' ? String(v.term) : formatBallot(v.term),
    vote: v.vote,
    leader: v.leader,
    firstIndex: v.firstIndex,
    appliedIndex: v.applied,
    commitIndex: v.commit,
    lastIndex: v.lastIndex,
    snapshotIndex: v.snapshotIndex,
    progress: unflattenProgress(v.progress),
  };
}

function unflattenProgress(flat: readonly number[]): LiveProgress[] {
  const out: LiveProgress[] = [];
  for (let i = 0; i + progressFields <= flat.length; i += progressFields) {
    out.push({ id: flat[i]!, match: flat[i + 1]!, next: flat[i + 2]!, state: progressStates[flat[i + 3]!] ?? 'probe', inflight: flat[i + 4]! });
  }
  return out;
}

/** Messages sent per (from, to, type) as reports bring them, until taken. */
export class TrafficCounter {
  private readonly counts = new Map<number, number>();

  constructor(private readonly protocol: string) {}

  add(from: number, sent: readonly number[]): void {
    for (let i = 0; i + 2 < sent.length; i += 3) {
      const key = from * 65_536 + sent[i]! * 256 + sent[i + 1]!;
      this.counts.set(key, (this.counts.get(key) ?? 0) + sent[i + 2]!);
    }
  }

  take(): TrafficCount[] {
    const out: TrafficCount[] = [];
    for (const [key, count] of this.counts) out.push({ from: Math.floor(key / 65_536), to: Math.floor(key / 256) % 256, type: this.typeName(key % 256), count });
    this.counts.clear();
    return out;
  }

  private typeName(type: number): string {
    return (this.protocol === 'raft' ? messageTypeName[type] : paxosMessageTypeName[type]) ?? `type-${type}`;
  }
}
