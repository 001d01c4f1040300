// Client identities for requests made through the API: a pool of session lanes, one per
// in-flight request, each with its own client id and increasing seq. Must never hand the same
// lane to two requests at once: the KV session table allows one write in flight per client.
import { randomBytes } from 'node:crypto';

export interface SessionLane {
  readonly clientId: string;
  /** The seq of the request currently using the lane. */
  readonly seq: number;
  /** The client id as encoded in commands (kv clientIdText), kept by a door that writes commands from bytes; null until then. */
  idText: Uint8Array | null;
}

interface LaneState {
  clientId: string;
  seq: number;
  idText: Uint8Array | null;
}

/*
 * Why lanes and not one client id per server: concurrent requests under one id could reach the
 * log out of seq order, and the state machine would answer the later-applied one "stale". With
 * a lane per in-flight request, seqs under an id are strictly sequential. A request abandoned at
 * its deadline frees its lane; if it commits after the lane's next request, it is stale and not
 * applied — at most once, as promised for an outcome that was reported unknown.
 * Lanes are reused most-recently-freed first, so the session table sees about as many of our
 * ids as the peak concurrency, not one per request.
 */
export class SessionLanes {
  /** Random per server instance, so two servers (or a restarted one) never share an id. */
  readonly instanceId: string;
  private readonly free: LaneState[] = [];
  private created = 0;
  private busy = 0;

  constructor(
    readonly lanesMax: number,
    /** What the ids start with: the front door the lanes belong to. */
    private readonly prefix = 'http',
  ) {
    this.instanceId = randomBytes(9).toString('base64url');
  }

  get inUse(): number {
    return this.busy;
  }

  /** A lane with a fresh seq, or null when lanesMax are in use. */
  acquire(): SessionLane | null {
    let lane = this.free.pop();
    if (!lane) {
      if (this.created >= this.lanesMax) return null;
      lane = { clientId: `${this.prefix}-${this.instanceId}-${this.created}`, seq: 0, idText: null };
      this.created += 1;
    }
    lane.seq += 1;
    this.busy += 1;
    return lane;
  }

  release(lane: SessionLane): void {
    this.busy -= 1;
    this.free.push(lane as LaneState);
  }
}
