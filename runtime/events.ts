// Everything the runtime reports, as one discriminated union carried on the supervisor's rxjs
// stream. The HTTP API, the dashboard and the benchmarks all subscribe to this same stream.
import type { ActorEvent, ActorId } from './actor.ts';
import type { DropReason } from './link.ts';

export interface LinkMetrics {
  from: ActorId;
  to: ActorId;
  frames: number;
  bytes: number;
  framesPerSec: number;
  bytesPerSec: number;
  /** Bytes in the ring not yet read, and its size: occupancy = usedBytes / capacityBytes. */
  usedBytes: number;
  capacityBytes: number;
  /** Times the reader of this link woke up with frames waiting on it. */
  wakeups: number;
  /** Frames dropped on this link so far (faults, a dead receiver, overflow), as reported. */
  dropped: number;
}

export type RuntimeEvent = { at: number } & (
  | { type: 'spawned'; id: ActorId; incarnation: number }
  /** A later incarnation is up (after a crash, by the restart strategy or by `restart`). */
  | { type: 'restarted'; id: ActorId; incarnation: number }
  | { type: 'crashed'; id: ActorId; incarnation: number; reason: 'injected' | 'error' | 'exit'; error?: string; exitCode?: number }
  | { type: 'restart-scheduled'; id: ActorId; delayMs: number; restartsInWindow: number }
  | { type: 'gave-up'; id: ActorId; restartsInWindow: number; windowMs: number; why: string }
  | { type: 'stopped-actor'; id: ActorId }
  /** The actor's worker is frozen (`pause`) until `resume`. */
  | { type: 'paused'; id: ActorId; incarnation: number }
  | { type: 'resumed'; id: ActorId; incarnation: number; pausedMs: number }
  /** An actor joined a running cluster (`addActor`); its 'spawned' follows once it is up. */
  | { type: 'actor-added'; id: ActorId }
  /** An actor left the cluster for good (`removeActor`); its id is never used again. */
  | { type: 'actor-removed'; id: ActorId }
  | { type: 'partitioned'; groups: ActorId[][] }
  | { type: 'link-cut'; from: ActorId[]; to: ActorId[] }
  | { type: 'healed' }
  | { type: 'faults-changed'; from: ActorId[]; to: ActorId[]; policy: Record<string, unknown> }
  | { type: 'dropped-frame'; from: ActorId; to: ActorId; reason: DropReason; bytes: number; count: number }
  | { type: 'decode-failed'; from: ActorId; to: ActorId; bytes: number; error: string }
  | { type: 'actor'; id: ActorId; event: ActorEvent }
  | { type: 'metrics'; intervalMs: number; links: LinkMetrics[] }
  | { type: 'stopped' }
);

export type RuntimeEventType = RuntimeEvent['type'];
