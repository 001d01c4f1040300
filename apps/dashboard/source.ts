// What the dashboard reads from a running cluster, beyond the public status: each node's last
// report with the leader's view of its followers, the messages nodes sent, write latencies.
// `Cluster` provides it; the feed (feed.ts) turns it into at most a few updates a second.

export interface LiveProgress {
  id: number;
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** Append messages sent and not yet acknowledged. */
  inflight: number;
}

export interface LiveNode {
  id: number;
  up: boolean;
  /** 'down' while the node's worker is not running, 'paused' while it is frozen (the rest is then its last report). */
  role: 'leader' | 'candidate' | 'follower' | 'down' | 'paused';
  term: number;
  /** The term as people read it: the number on Raft, `round.node` of the ballot on Multi-Paxos. */
  epoch: string;
  vote: number;
  /** The leader this node follows (0: none known). */
  leader: number;
  firstIndex: number;
  appliedIndex: number;
  commitIndex: number;
  lastIndex: number;
  snapshotIndex: number;
  /** Leader only: its followers' progress. */
  progress: LiveProgress[];
}

/** Messages `from` sent `to` of one type since the previous count. */
export interface TrafficCount {
  from: number;
  to: number;
  /** The protocol's name for it: app, appResp, vote, heartbeat, snapshot... (Raft); accept, promise... (Paxos). */
  type: string;
  count: number;
}

export interface LiveSource {
  /** 'raft' or 'multipaxos': names the message types and what the page explains. */
  readonly protocol: string;
  live(): LiveNode[];
  takeTraffic(): TrafficCount[];
  observeWriteLatency(observer: ((ms: number) => void) | null): void;
}

export function isLiveSource(x: unknown): x is LiveSource {
  const o = x as Partial<LiveSource> | null;
  return typeof o?.protocol === 'string' && typeof o.live === 'function' && typeof o.takeTraffic === 'function' && typeof o.observeWriteLatency === 'function';
}
