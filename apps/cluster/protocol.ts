// What a node sends the supervisor (id 0) as messages: its status reports. Client requests and
// their answers are frames (wire.ts, client-wire.ts). Also the codec shape table every end shares.
import type { MessageShapes } from '../../runtime/codec.ts';

/** Node → supervisor: what GET /cluster shows, sent on change (rate-limited). */
export interface StatusReport {
  t: 'status';
  role: number;
  term: number;
  leader: number;
  commit: number;
  lastIndex: number;
  applied: number;
  /** The first index the node's log still holds (entries before it are in a snapshot). */
  firstIndex: number;
  /** The newest snapshot the node's log is based on (0: none). */
  snapshotIndex: number;
  /** The configuration in force at this node (the newest its log holds, committed or not). */
  voters: number[];
  /** Joint consensus: the outgoing half's voters (empty when not joint). */
  outgoing: number[];
  learners: number[];
  witnesses: number[];
  /** The index of the entry that set it (0: the configuration the node started with). */
  membershipIndex: number;
  /** Whom the node voted for in `term` (0: nobody; Paxos: 0). */
  vote: number;
  /** Leader only: per follower `progressFields` numbers (sent-counts.ts); else empty. */
  progress: number[];
  /** Messages sent since the previous report: [to, type, count] triples (SentCounts.take). */
  sent: number[];
}

/** Everything a node sends the supervisor as a message (client answers travel as frames: client-wire.ts). */
export type FromNode = StatusReport;

/** Key order of every record that crosses a ring, so cbor-x ships them without key names. */
export const clusterShapes: MessageShapes = [
  // protocols/raft Message
  ['type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint', 'context'],
  // protocols/raft Entry
  ['index', 'term', 'kind', 'data'],
  ['t', 'role', 'term', 'leader', 'commit', 'lastIndex', 'applied', 'firstIndex', 'snapshotIndex', 'voters', 'outgoing', 'learners', 'witnesses', 'membershipIndex', 'vote', 'progress', 'sent'],
];
