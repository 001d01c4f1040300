// The public runtime API (`concur/runtime`): the Supervisor that spawns, crashes and restarts
// actors; what an actor module is (a factory given an ActorContext); the fault model; and the
// events the runtime reports. Re-exports only: each name is documented where it is defined.
export {
  Supervisor,
  ActorDownError,
  actorIdMax,
  defaultRestartPolicy,
  defaultSpinBeforeSleepUs,
  spinBeforeSleepUsMax,
  type ActorSpec,
  type RestartPolicy,
  type SupervisorOptions,
} from './supervisor.ts';
export {
  supervisorId,
  rawFrameTag,
  type Actor,
  type ActorContext,
  type ActorEvent,
  type ActorFactory,
  type ActorId,
  type StorageHandle,
} from './actor.ts';
export { noFaults, delayMsMax, validatePolicy, type LinkPolicy } from './faults.ts';
export type { DropReason } from './link.ts';
export type { LinkMetrics, RuntimeEvent, RuntimeEventType } from './events.ts';
export { DecodeError, messageShapesMax, type MessageShapes } from './codec.ts';
export { FrameTooLargeError } from './ring.ts';
