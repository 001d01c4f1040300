// What the supervisor hands a worker at start (workerData) and the control messages the two
// exchange over the worker's parentPort. Start-up and control only: data goes through rings.
import type { MessagePort } from 'node:worker_threads';
import type { ActorEvent, ActorId } from './actor.ts';
import type { MessageShapes } from './codec.ts';
import type { DropReason } from './link.ts';
import type { RingHandle } from './ring.ts';

export interface HostInit {
  /** URL of the module worker-boot.mjs imports (actor-host.ts). */
  entry: string;
  /** URL of the actor module (exports a factory as default or `createActor`). */
  module: string;
  id: ActorId;
  peers: ActorId[];
  /**
   * Ids the supervisor removed from the cluster: sends to them are dropped as 'removed' rather
   * than thrown, since a restarted actor may still hold them in its persisted state.
   */
  removed: ActorId[];
  config: Record<string, unknown>;
  incarnation: number;
  seed: number;
  dataDir: string | null;
  shapes: MessageShapes;
  inbound: { from: ActorId; ring: RingHandle }[];
  outbound: { to: ActorId; ring: RingHandle }[];
  doorbell: SharedArrayBuffer;
  faults: SharedArrayBuffer;
  /** One Int32 per actor id (see PauseWord in supervisor.ts): the host freezes while its word is set. */
  pause: SharedArrayBuffer;
  framesPerReadMax: number;
  /** Microseconds the mailbox loop re-checks its rings before it sleeps; 0: sleep at once. */
  spinBeforeSleepUs: number;
  control: MessagePort;
}

export type HostToSupervisor =
  | { kind: 'ready' }
  | { kind: 'stopped' }
  | { kind: 'event'; event: ActorEvent }
  | { kind: 'dropped'; from: ActorId; to: ActorId; reason: DropReason; count: number; bytes: number }
  | { kind: 'decode-failed'; from: ActorId; to: ActorId; bytes: number; error: string }
  /** The host has applied the membership message numbered `seq` (see SupervisorToHost). */
  | { kind: 'peers-ack'; seq: number };

/**
 * `peer-added` hands over both rings between this actor and the new one: `inbound` (new → this,
 * built on this actor's doorbell) and `outbound` (this → new). `seq` is echoed in a peers-ack.
 */
export type SupervisorToHost =
  | { kind: 'stop' }
  | { kind: 'peer-added'; seq: number; id: ActorId; inbound: RingHandle; outbound: RingHandle }
  | { kind: 'peer-removed'; seq: number; id: ActorId };
