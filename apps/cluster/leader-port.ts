// The cluster's Redis port served by the leader's own thread (`concur start --resp-port P
// --resp-door leader`), as a virtual address follows a database's primary: the supervisor has the
// leader's node listen on P, and when leadership moves, the old node stops listening and the new
// leader takes the port. A connection stays on the node that accepted it: after a move it forwards
// over the rings like a follower's own port (node-door.ts); it closes if that node crashes (the
// client connects again, to the leader). So a write on this port crosses no thread while its node
// leads, where the supervisor's door (`--resp-door supervisor`) costs two hops and survives any crash.
// Must never leave the port unserved while some node is up and can listen on it.
import type { RespSettings } from '../resp/settings.ts';
import type { Cluster } from './cluster.ts';

export interface LeaderPortOptions {
  /** The Redis door's settings on whichever node holds the port (port 0: a free one, kept from then on). */
  resp: Partial<RespSettings>;
  /** How often the leader is looked at (the port moves within about this of a leader change). */
  checkMs: number;
  /** Told once when the port cannot be had for `stuckWarnMs` (another process took it, or a frozen node holds it). */
  warn: (line: string) => void;
  stuckWarnMs: number;
}

/** No node could take the port at start. */
export class LeaderPortError extends Error {
  override name = 'LeaderPortError';
}

const defaults: Omit<LeaderPortOptions, 'resp'> = { checkMs: 20, warn: () => {}, stuckWarnMs: 5_000 };

/** How long a node may take to answer a take or a release (a paused node answers when resumed). */
const callTimeoutMs = 2_000;

export class LeaderPort {
  /** The node listening on the port now (null: none, between two holders or before the first). */
  private holder: { id: number; incarnation: number } | null = null;
  private port: number;
  private moving: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private failingSince = 0;
  private warned = false;
  private stopped = false;
  private readonly o: LeaderPortOptions;

  private constructor(
    private readonly cluster: Cluster,
    o: Partial<LeaderPortOptions> & Pick<LeaderPortOptions, 'resp'>,
  ) {
    this.o = { ...defaults, ...o };
    this.port = o.resp.port ?? 6380;
  }

  /**
   * Puts the port on the leader (or, with no leader by `deadlineMs`, on any node up) and keeps it
   * there. Rejects if no node could listen on it by then, naming why.
   */
  static async start(cluster: Cluster, o: Partial<LeaderPortOptions> & Pick<LeaderPortOptions, 'resp'>, deadlineMs = 10_000): Promise<LeaderPort> {
    if (cluster.protocol !== 'raft') throw new LeaderPortError('--resp-door leader needs Raft nodes (their doors); a multipaxos cluster serves the Redis protocol from the supervisor (--resp-door supervisor)');
    const lp = new LeaderPort(cluster, o);
    const until = Date.now() + deadlineMs;
    let lastError: unknown = null;
    while (lp.holder === null) {
      const to = cluster.leader() ?? (Date.now() + deadlineMs / 2 > until ? lp.anyUp() : null);
      if (to !== null) lastError = await lp.take(to);
      if (lp.holder !== null) break;
      if (Date.now() >= until) {
        throw new LeaderPortError(`no node could take the Redis port ${lp.port} within ${deadlineMs} ms${lastError !== null ? `: ${(lastError as Error).message}` : ' (no node was up)'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    lp.timer = setInterval(() => lp.check(), lp.o.checkMs);
    return lp;
  }

  /** The port (the one picked, when 0 was asked for). */
  get portNumber(): number {
    return this.port;
  }

  /** The node listening on it now, or null between two holders. */
  get node(): number | null {
    return this.holder?.id ?? null;
  }

  /** Stops moving the port (the nodes' doors close with their nodes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.moving;
  }

  private anyUp(): number | null {
    return this.cluster.status().nodes.find((n) => n.up)?.id ?? null;
  }

  /** Still listening: the node holding the port is the incarnation that took it. */
  private holderAlive(): boolean {
    const h = this.holder;
    if (h === null || !this.cluster.hasNode(h.id)) return false;
    const s = this.cluster.supervisor.status(h.id);
    return (s.status === 'up' || s.status === 'paused') && s.incarnation === h.incarnation;
  }

  private check(): void {
    if (this.moving !== null || this.stopped) return;
    // A crashed, restarted or removed holder took its listener with its worker.
    if (this.holder !== null && !this.holderAlive()) this.holder = null;
    const leader = this.cluster.leader();
    // With no leader the port stays where it is (its node answers TRYAGAIN), or goes to any node up.
    const to = leader ?? (this.holder === null ? this.anyUp() : null);
    if (to === null || to === this.holder?.id) return;
    // A node removed between the look and the call: the next look finds another.
    this.moving = this.move(to)
      .catch(() => undefined)
      .finally(() => (this.moving = null));
  }

  private async move(to: number): Promise<void> {
    const from = this.holder;
    if (from !== null) {
      // Released first: the port is one socket, and only one node may listen on it. A holder that
      // does not answer (paused) still listens; taking fails until it does, and is tried again.
      await this.cluster.supervisor.call(from.id, 'releaseLeaderPort', [], callTimeoutMs).catch(() => undefined);
      this.holder = null;
    }
    if (this.stopped) return;
    await this.take(to);
  }

  /** Has `to` listen on the port; null when it does, else what went wrong. */
  private async take(to: number): Promise<unknown> {
    const incarnation = this.cluster.supervisor.status(to).incarnation;
    try {
      const { port } = await this.cluster.supervisor.call<{ port: number }>(to, 'takeLeaderPort', [{ ...this.o.resp, port: this.port }], callTimeoutMs);
      this.port = port;
      this.holder = { id: to, incarnation };
      this.failingSince = 0;
      this.warned = false;
      return null;
    } catch (err) {
      const now = Date.now();
      if (this.failingSince === 0) this.failingSince = now;
      if (!this.warned && now - this.failingSince >= this.o.stuckWarnMs) {
        this.warned = true;
        this.o.warn(`the Redis port ${this.port} has had no node listening for ${Math.round((now - this.failingSince) / 1000)} s: ${(err as Error).message}`);
      }
      return err;
    }
  }
}
