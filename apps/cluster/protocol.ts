// What crosses a node's rings besides Raft messages: client requests from the supervisor (id 0)
// and the node's answers and status reports. Also the codec shape table every end shares.
import type { MessageShapes } from '../../runtime/codec.ts';
import type { LocalReadMode } from '../http/backend.ts';

/** Supervisor → node: propose `data` (an app command); answered by `applied`, `redirect` or `dropped`. */
export interface ProposeRequest {
  t: 'propose';
  id: number;
  data: Uint8Array;
}

/** Supervisor → node: read `key` by `mode`; answered by `read-ok` or `redirect`. */
export interface ReadRequest {
  t: 'read';
  id: number;
  mode: LocalReadMode;
  key: string;
  /** A query to this app (the key is its query); absent: a KV read. */
  app?: string;
}

/**
 * Node → supervisor: `value` (null: absent) as of log index `index`. `applied` is what the node
 * had applied and `commit` the leader's commit index as last known here: for a stale read the
 * gap between them bounds how far behind the answer may be.
 */
export interface ReadReply {
  t: 'read-ok';
  id: number;
  value: Uint8Array | null;
  index: number;
  applied: number;
  commit: number;
}

/** Node → supervisor: the command committed at `index` and the state machine answered `result`. */
export interface AppliedReply {
  t: 'applied';
  id: number;
  index: number;
  result: Uint8Array;
}

/** Node → supervisor: this node cannot take the request; `leader` is its best guess (0: none). */
export interface RedirectReply {
  t: 'redirect';
  id: number;
  leader: number;
}

/** Node → supervisor: the proposal was accepted then lost (overwritten by a new leader's log). */
export interface DroppedReply {
  t: 'dropped';
  id: number;
  why: string;
}

/**
 * Node → supervisor: the leader refused the proposal for now (too much uncommitted, or a
 * leadership transfer): it certainly did not take effect. `why` says which.
 */
export interface BusyReply {
  t: 'busy';
  id: number;
  why: string;
}

/**
 * Node → supervisor: this node will not serve the request at all (a witness asked for a read):
 * retrying elsewhere is the caller's choice, `why` says where.
 */
export interface RefusedReply {
  t: 'refused';
  id: number;
  why: string;
}

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
}

export type ToNode = ProposeRequest | ReadRequest;
export type FromNode = AppliedReply | RedirectReply | DroppedReply | BusyReply | RefusedReply | StatusReport | ReadReply;

/** Key order of every record that crosses a ring, so cbor-x ships them without key names. */
export const clusterShapes: MessageShapes = [
  // protocols/raft Message
  ['type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint', 'context'],
  // protocols/raft Entry
  ['index', 'term', 'kind', 'data'],
  ['t', 'id', 'data'],
  ['t', 'id', 'index', 'result'],
  ['t', 'id', 'leader'],
  ['t', 'id', 'why'],
  ['t', 'role', 'term', 'leader', 'commit', 'lastIndex', 'applied', 'firstIndex', 'snapshotIndex', 'voters', 'outgoing', 'learners', 'witnesses', 'membershipIndex'],
  ['t', 'id', 'mode', 'key'],
  ['t', 'id', 'mode', 'key', 'app'],
  ['t', 'id', 'value', 'index', 'applied', 'commit'],
];
