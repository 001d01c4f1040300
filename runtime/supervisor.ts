// The supervisor (main thread): spawns one Worker per actor, allocates one ring per directed
// link, owns the fault table, restarts crashed actors (OTP-style back-off and intensity limit)
// and publishes every event on one rxjs stream. It never sits in the actor-to-actor data path.
import { MessageChannel, Worker } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Subject, type Observable } from 'rxjs';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { rawFrameTag, supervisorId, type ActorId } from './actor.ts';
import { Codec, DecodeError, type MessageShapes } from './codec.ts';
import type { LinkMetrics, RuntimeEvent } from './events.ts';
import { FaultTable, LinkFaults, noFaults, validatePolicy, type LinkPolicy } from './faults.ts';
import type { HostInit, HostToSupervisor, SupervisorToHost } from './host-protocol.ts';
import { OutLink } from './link.ts';
import { PauseTable } from './pause.ts';
import { Doorbell, Ring, type RingHandle } from './ring.ts';

export const actorIdMax = 64;

export interface ActorSpec {
  id: ActorId;
  /** Path or URL of the actor module. */
  module: string | URL;
  config?: Record<string, unknown>;
}

export interface RestartPolicy {
  /** Restart an actor that crashed on its own (not one crashed on purpose with `crash`). */
  auto: boolean;
  backoffMsInitial: number;
  backoffMsMax: number;
  /** At most this many restarts of one actor within `intensityWindowMs`; then it stays down. */
  intensityMax: number;
  intensityWindowMs: number;
}

export interface SupervisorOptions {
  actors: ActorSpec[];
  shapes?: MessageShapes;
  /** Seeds every link's fault decisions, so a run with the same sends repeats exactly. */
  seed?: number;
  /** Bytes per ring (power of two); the largest frame is half of it. */
  ringBytes?: number;
  /** Base directory: each actor keeps its files in `<dataDir>/node-<id>`. null: nothing on disk. */
  dataDir?: string | null;
  restart?: Partial<RestartPolicy>;
  /** How often a `metrics` event is published; 0 turns metrics off. */
  metricsIntervalMs?: number;
  framesPerReadMax?: number;
  /**
   * How long (µs) an idle worker re-checks its rings before sleeping on its doorbell: saves the
   * notify / wake-up round trip under streaming load. 0 turns it off; at most spinBeforeSleepUsMax.
   */
  spinBeforeSleepUs?: number;
  /** How long `stop` waits for an actor to stop gracefully before terminating it. */
  stopTimeoutMs?: number;
  /** How long an actor may take to load and report ready. */
  startTimeoutMs?: number;
}

/**
 * Default spin before a worker sleeps. Measured (bench raft, 3 nodes, 2 shared cores): 10 µs
 * lifts batch 1 / inflight 1 about 1.6× and leaves the batched cells unchanged; 30 µs gave
 * about 2× there but cost batch 1 / inflight 32 and batch 512 up to ~20 % (threads outnumber
 * cores, so a spin steals CPU from the thread it waits for).
 */
export const defaultSpinBeforeSleepUs = 10;
/** Upper bound: a spin longer than this costs an idle worker more CPU than a wake-up saves. */
export const spinBeforeSleepUsMax = 1_000;

export const defaultRestartPolicy: RestartPolicy = { auto: true, backoffMsInitial: 50, backoffMsMax: 5_000, intensityMax: 5, intensityWindowMs: 10_000 };

/** `paused`: the worker exists but is frozen (pause/resume); it counts as not up. */
export type ActorStatus = 'starting' | 'up' | 'paused' | 'down' | 'gave-up' | 'stopping' | 'stopped';
type Status = ActorStatus;

interface ActorState {
  spec: ActorSpec;
  moduleUrl: string;
  status: Status;
  incarnation: number;
  everSpawned: boolean;
  worker: Worker | null;
  control: Comlink.Remote<Record<string, (...args: unknown[]) => unknown>> | null;
  controlPort: import('node:worker_threads').MessagePort | null;
  crashInjected: boolean;
  lastError: string | undefined;
  restarts: number[];
  restartTimer: ReturnType<typeof setTimeout> | null;
  /** When the current pause began (performance.now()), while paused. */
  pausedAt: number;
  /** Set once `removeActor` began: it must not be restarted, and a second call awaits the first. */
  removal: Promise<void> | null;
  /** Membership messages posted to the current worker and not yet applied, by sequence number. */
  acks: Map<number, () => void>;
  /** Settles when the current worker has exited. */
  exited: Promise<void>;
  /** Rejects control calls in flight when the worker goes away. */
  gone: Promise<never>;
  markGone: (why: Error) => void;
}

export class ActorDownError extends Error {
  constructor(readonly id: ActorId, why: string) {
    super(why === 'paused' ? `actor ${id} is paused; resume it with resume(${id})` : `actor ${id} is not running (${why}); restart it with restart(${id})`);
    this.name = 'ActorDownError';
  }
}

const bootUrl = new URL('./worker-boot.mjs', import.meta.url);
// Compiled (dist/, the package's build) the host is a .js file beside this one; from source, .ts.
const hostUrl = new URL(`./actor-host.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url).href;

export class Supervisor {
  readonly seed: number;
  // Replaced, never mutated, on every membership change: a caller iterating `ids` keeps a
  // consistent list while actors are added or removed.
  private idList: ActorId[];
  /** Removed ids are never used again: peers may still hold them in their state. */
  private readonly removedIds = new Set<ActorId>();
  private started = false;
  private nextPeersSeq = 1;
  private readonly events = new Subject<RuntimeEvent>();
  private readonly messages = new Subject<{ from: ActorId; message: unknown }>();
  /** Every event the runtime reports (see events.ts). */
  readonly events$: Observable<RuntimeEvent> = this.events.asObservable();
  /** Messages actors send to the supervisor (id 0) through their rings. */
  readonly messages$: Observable<{ from: ActorId; message: unknown }> = this.messages.asObservable();

  private readonly actors = new Map<ActorId, ActorState>();
  private readonly codec: Codec;
  private readonly faults: FaultTable;
  private readonly pauses: PauseTable;
  private readonly rings = new Map<string, Ring>();
  private readonly doorbells = new Map<ActorId, SharedArrayBuffer>();
  private readonly supervisorDoorbell: Doorbell;
  private readonly out = new Map<ActorId, OutLink>();
  /** Copy on write, like `idList`: the inbound loop may be in the middle of a pass over it. */
  private inbound: { from: ActorId; ring: Ring }[] = [];
  private readonly restartPolicy: RestartPolicy;
  private readonly startedAt = performance.now();
  private metricsTimer: ReturnType<typeof setInterval> | null = null;
  private lastMetrics = new Map<string, { frames: number; bytes: number; at: number }>();
  private dropCounts = new Map<string, { count: number; bytes: number }>();
  private dropTotals = new Map<string, number>();
  private loopDone: Promise<void> = Promise.resolve();
  private stopping = false;

  private constructor(private readonly options: Required<Omit<SupervisorOptions, 'restart'>> & { restart: RestartPolicy }) {
    this.restartPolicy = options.restart;
    this.seed = options.seed;
    this.idList = options.actors.map((a) => a.id).sort((a, b) => a - b);
    this.codec = new Codec(options.shapes);
    // Sized for every id an actor may ever have, so actors added later have rows too (the
    // table's buffer is handed to each worker once, at spawn, and cannot grow).
    this.faults = new FaultTable(FaultTable.allocate(actorIdMax));
    this.pauses = new PauseTable(PauseTable.allocate(actorIdMax));
    this.supervisorDoorbell = new Doorbell();
    this.doorbells.set(supervisorId, this.supervisorDoorbell.buffer);
    this.idList.forEach((id, i) => this.allocateLinks(id, this.idList.slice(0, i)));
  }

  /** The current actors' ids, ascending. A new array after each `addActor` / `removeActor`. */
  get ids(): ActorId[] {
    return this.idList;
  }

  /** Validates the options, starts every actor and resolves once all report ready. */
  static async start(options: SupervisorOptions): Promise<Supervisor> {
    const s = Supervisor.create(options);
    await s.startAll();
    return s;
  }

  /**
   * Validates the options and allocates rings, but starts no actor yet: subscribe to `events$`
   * and `messages$` first, then `startAll()`, to see everything from the first message on.
   */
  static create(options: SupervisorOptions): Supervisor {
    const s = new Supervisor(validateOptions(options));
    for (const spec of options.actors) s.actors.set(spec.id, newActorState(spec, moduleUrlOf(spec.module)));
    return s;
  }

  /** Starts every actor and resolves once all report ready; on failure stops the rest and throws. */
  async startAll(): Promise<void> {
    this.started = true;
    this.loopDone = this.inboundLoop();
    if (this.options.metricsIntervalMs > 0) {
      this.metricsTimer = setInterval(() => this.publishMetrics(), this.options.metricsIntervalMs);
      this.metricsTimer.unref();
    }
    try {
      await Promise.all(this.ids.map((id) => this.spawn(id)));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  // ---- data plane (supervisor as a peer) -------------------------------------------------

  /** Sends a message to an actor over the supervisor's ring (e.g. a client request). */
  send(to: ActorId, message: unknown): void {
    const link = this.out.get(to);
    if (!link) throw this.noActor(to);
    link.send(this.codec.encode(message));
  }

  /**
   * Sends a raw frame (first byte `rawFrameTag`) to an actor, which gets it undecoded in
   * `receiveFrame`. The bytes are copied into the ring (or queued) before this returns.
   */
  sendFrame(to: ActorId, frame: Uint8Array): void {
    const link = this.out.get(to);
    if (!link) throw this.noActor(to);
    link.send(frame);
  }

  private frameHandler: ((from: ActorId, bytes: Uint8Array, start: number, end: number) => void) | null = null;

  /**
   * Receives the raw frames actors send to the supervisor (instead of `messages$`, which carries
   * decoded messages). The bytes are ring memory, valid only during the call: copy what outlives it.
   */
  onFrame(handler: (from: ActorId, bytes: Uint8Array, start: number, end: number) => void): void {
    this.frameHandler = handler;
  }

  // ---- status and control -----------------------------------------------------------------

  status(id: ActorId): { id: ActorId; status: Status; incarnation: number; lastError?: string } {
    const a = this.state(id);
    return { id, status: a.status, incarnation: a.incarnation, ...(a.lastError ? { lastError: a.lastError } : {}) };
  }

  isUp(id: ActorId): boolean {
    return this.state(id).status === 'up';
  }

  /**
   * Calls a method of the actor's control surface (comlink). Rejects with ActorDownError if the
   * actor is down or goes down before answering, and after `timeoutMs` in any case.
   */
  async call<T = unknown>(id: ActorId, method: string, args: unknown[] = [], timeoutMs = 5_000): Promise<T> {
    const a = this.state(id);
    if (a.status !== 'up' || !a.control) throw new ActorDownError(id, a.status);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`actor ${id} did not answer ${method}() within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const fn = (a.control as unknown as Record<string, (...x: unknown[]) => Promise<T>>)[method]!;
      return await Promise.race([fn(...args), a.gone, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- faults ------------------------------------------------------------------------------

  /** Crashes an actor abruptly (its worker is terminated, paused or not). It stays down until `restart`. */
  async crash(id: ActorId): Promise<void> {
    const a = this.state(id);
    this.cancelRestart(a);
    if (a.status !== 'up' && a.status !== 'starting' && a.status !== 'paused') return;
    a.crashInjected = true;
    this.faults.setDown(id, true);
    // terminate() interrupts a thread blocked in Atomics.wait, so a frozen worker dies frozen:
    // it runs nothing between the crash and its end.
    await a.worker?.terminate();
    await a.exited;
  }

  /**
   * Freezes an actor's worker, like SIGSTOP: it reads no frame, fires no timer and answers no
   * control call until `resume`. Frames sent to it wait in its rings (a full ring holds the
   * sender's frames in its queue, as for a slow reader). Resolves once the worker is frozen; rejects
   * if it is not up, or did not reach a safe point within `timeoutMs` (it then runs on).
   */
  async pause(id: ActorId, timeoutMs = this.options.stopTimeoutMs): Promise<void> {
    const a = this.state(id);
    if (a.status === 'paused') return;
    if (a.status !== 'up') throw new ActorDownError(id, a.status);
    a.status = 'paused';
    a.pausedAt = performance.now();
    const frozen = this.pauses.request(id, timeoutMs);
    // An idle worker sleeps on its doorbell: wake it so it reaches its safe point now.
    new Doorbell(this.doorbells.get(id)!).interrupt();
    if (!(await frozen)) {
      this.pauses.release(id);
      // Crashed, stopped or removed while pausing: its status says so already.
      if (a.status === 'paused') a.status = 'up';
      throw new Error(`actor ${id} did not pause within ${timeoutMs} ms (${a.status === 'up' ? 'it is busy in one long step' : `it is ${a.status}`})`);
    }
    this.emit({ type: 'paused', id, incarnation: a.incarnation });
  }

  /** Lets a paused actor run again; it catches up on the time that passed (its clock kept running). */
  resume(id: ActorId): void {
    const a = this.state(id);
    if (a.status !== 'paused') throw new RangeError(`actor ${id} is not paused (it is ${a.status})`);
    this.pauses.release(id);
    a.status = 'up';
    this.emit({ type: 'resumed', id, incarnation: a.incarnation, pausedMs: Math.round(performance.now() - a.pausedAt) });
  }

  /** The actors that are paused now, ascending. */
  pausedIds(): ActorId[] {
    return this.ids.filter((id) => this.actors.get(id)?.status === 'paused');
  }

  /** Starts a crashed, stopped or given-up actor again (crashing it first if it runs). */
  async restart(id: ActorId): Promise<void> {
    const a = this.state(id);
    if (a.removal) throw new RangeError(`actor ${id} is being removed; it cannot be restarted`);
    this.cancelRestart(a);
    if (a.status === 'up' || a.status === 'starting' || a.status === 'paused') await this.crash(id);
    a.restarts = [];
    await this.spawn(id);
  }

  /**
   * Splits the actors into groups that cannot reach each other (both directions). Actors not
   * listed form one more group together. Replaces any earlier partition.
   */
  partition(groups: ActorId[][]): void {
    const seen = new Set<ActorId>();
    for (const g of groups) {
      if (!Array.isArray(g) || g.length === 0) throw new RangeError('each partition group must be a non-empty list of actor ids');
      for (const id of g) {
        this.state(id);
        if (seen.has(id)) throw new RangeError(`actor ${id} is in two partition groups; each actor may appear once`);
        seen.add(id);
      }
    }
    const rest = this.ids.filter((id) => !seen.has(id));
    const all = rest.length > 0 ? [...groups, rest] : groups;
    const groupOf = new Map<ActorId, number>();
    all.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const from of this.ids) for (const to of this.ids) if (from !== to) this.faults.set(from, to, { cut: groupOf.get(from) !== groupOf.get(to) });
    this.emit({ type: 'partitioned', groups: all.map((g) => [...g]) });
  }

  /** Cuts links one way only: frames from each of `from` to each of `to` are dropped. */
  cut(from: ActorId[], to: ActorId[]): void {
    for (const f of from) this.state(f);
    for (const t of to) this.state(t);
    for (const f of from) for (const t of to) if (f !== t) this.faults.set(f, t, { cut: true });
    this.emit({ type: 'link-cut', from: [...from], to: [...to] });
  }

  /** Cuts an actor off from every other actor, both ways. */
  isolate(id: ActorId): void {
    const others = this.ids.filter((x) => x !== id);
    this.partition([[id], others]);
  }

  /** Removes every cut (partitions and one-way cuts). Loss, delay and the rest stay. */
  heal(): void {
    for (const from of this.ids) for (const to of this.ids) if (from !== to) this.faults.set(from, to, { cut: false });
    this.emit({ type: 'healed' });
  }

  /**
   * Sets loss, delay, jitter, duplicate and reorder rates on links between actors: on every
   * link by default, or only from/to the given ids. Unset fields keep their value.
   */
  setFaults(policy: Partial<Omit<LinkPolicy, 'cut'>>, scope: { from?: ActorId[]; to?: ActorId[] } = {}): void {
    validatePolicy(policy);
    const from = scope.from ?? this.ids;
    const to = scope.to ?? this.ids;
    for (const id of [...from, ...to]) this.state(id);
    for (const f of from) for (const t of to) if (f !== t) this.faults.set(f, t, policy);
    this.emit({ type: 'faults-changed', from: [...from], to: [...to], policy: { ...policy } });
  }

  /** Removes every fault, cuts included. */
  clearFaults(): void {
    for (const from of this.ids) for (const to of this.ids) if (from !== to) this.faults.set(from, to, noFaults);
    this.emit({ type: 'healed' });
  }

  linkPolicy(from: ActorId, to: ActorId): LinkPolicy {
    return this.faults.get(from, to);
  }

  // ---- membership --------------------------------------------------------------------------

  /**
   * Adds an actor to the running cluster: allocates its rings to the supervisor and every
   * current actor, tells every running actor of the new peer (and waits until each has applied
   * it, exited, or `stopTimeoutMs` passed), then spawns it and resolves once it reports ready.
   * Actors that are down get the new peer when they are spawned again.
   *
   * Faults: the new actor's links start clean, even while a partition or `setFaults` is in
   * force; call `partition`, `setFaults` or `cut` again to cover it. If it fails to start, it
   * stays a member (down, restarted by the restart policy like any crashed actor) and the
   * promise rejects: `removeActor` drops it.
   */
  async addActor(spec: ActorSpec): Promise<void> {
    this.validateNewActor(spec);
    const id = spec.id;
    const others = this.idList;
    this.allocateLinks(id, others);
    this.actors.set(id, newActorState(spec, moduleUrlOf(spec.module)));
    this.idList = [...others, id].sort((x, y) => x - y);
    // Until it is up, frames to it are dropped as 'down', as for a restarting actor: its rings
    // are emptied when it spawns, so nothing written before would be read anyway.
    this.faults.setDown(id, true);
    this.emit({ type: 'actor-added', id });
    const told = this.tellPeers(id, (seq, peer) => ({ kind: 'peer-added', seq, id, inbound: this.ring(id, peer).handle, outbound: this.ring(peer, id).handle }));
    await Promise.all([told, this.spawn(id)]);
  }

  /**
   * Removes an actor for good: stops it gracefully (terminating it after `stopTimeoutMs`),
   * cancels any pending restart, tells every other running actor (and waits as `addActor`
   * does), and forgets its rings. Its id may not be used again. Frames in flight to or from it
   * are lost; actors that still send to it have those frames dropped as 'removed'.
   */
  async removeActor(id: ActorId): Promise<void> {
    const a = this.state(id);
    a.removal ??= this.remove(id, a);
    return a.removal;
  }

  private async remove(id: ActorId, a: ActorState): Promise<void> {
    await this.stopActor(a);
    this.actors.delete(id);
    this.removedIds.add(id);
    this.idList = this.idList.filter((x) => x !== id);
    this.forgetLinks(id);
    // Forgetting and telling happen in one turn: a peer spawned from now on is built without
    // the removed actor, and every worker that exists now gets the message.
    await this.tellPeers(id, (seq) => ({ kind: 'peer-removed', seq, id }));
    this.emit({ type: 'actor-removed', id });
  }

  private validateNewActor(spec: ActorSpec): void {
    if (this.stopping) throw new Error('the supervisor has been stopped; no actor can be added');
    if (!this.started) throw new Error('addActor needs a started supervisor: list the first actors in options.actors, call startAll(), then add');
    validateSpec(spec);
    if (this.actors.has(spec.id)) throw new RangeError(`actor ${spec.id} already exists; actors are ${this.idList.join(', ')}`);
    if (this.removedIds.has(spec.id)) throw new RangeError(`actor id ${spec.id} belonged to a removed actor and may not be used again (peers may still hold it in their state); choose another id`);
  }

  /**
   * Rings between `id` and the supervisor and each of `others`, both ways, and the supervisor's
   * ends of its own. A ring wakes its reader, so X>Y is built on Y's doorbell.
   */
  private allocateLinks(id: ActorId, others: readonly ActorId[]): void {
    this.doorbells.set(id, new SharedArrayBuffer(4));
    for (const other of [supervisorId, ...others]) {
      this.rings.set(`${other}>${id}`, new Ring(Ring.handle(this.options.ringBytes, this.doorbells.get(id)!)));
      this.rings.set(`${id}>${other}`, new Ring(Ring.handle(this.options.ringBytes, this.doorbells.get(other)!)));
    }
    this.inbound = [...this.inbound, { from: id, ring: this.ring(id, supervisorId) }].sort((x, y) => x.from - y.from);
    const faults = new LinkFaults(this.faults, supervisorId, id, this.seed);
    this.out.set(id, new OutLink(this.ring(supervisorId, id), faults, (reason, bytes) => this.countDrop(supervisorId, id, reason, bytes)));
    // In case the inbound loop sleeps: it only looks at the rings it knew when it fell asleep.
    this.supervisorDoorbell.ring();
  }

  private forgetLinks(id: ActorId): void {
    this.out.get(id)?.close();
    this.out.delete(id);
    this.inbound = this.inbound.filter((l) => l.from !== id);
    for (const key of [...this.rings.keys()]) {
      const [from, to] = key.split('>').map(Number);
      if (from !== id && to !== id) continue;
      this.rings.delete(key);
      this.lastMetrics.delete(key);
      this.dropTotals.delete(key);
    }
    this.doorbells.delete(id);
  }

  /**
   * Posts a membership message to every other actor with a worker (a starting one too: the
   * message waits in its port until its host listens) and resolves once each has applied it,
   * has exited, or `stopTimeoutMs` has passed, so a busy actor cannot hold the change forever.
   */
  private tellPeers(changed: ActorId, message: (seq: number, peer: ActorId) => SupervisorToHost): Promise<void> {
    const applied: Promise<void>[] = [];
    for (const [peer, a] of this.actors) {
      if (peer === changed || !a.worker || a.status === 'stopping') continue;
      const seq = this.nextPeersSeq++;
      // A paused worker applies it when resumed (it waits in its port): waiting would hold the change.
      if (a.status !== 'paused') applied.push(this.ackOf(a, seq));
      a.worker.postMessage(message(seq, peer));
    }
    return Promise.all(applied).then(() => undefined);
  }

  private ackOf(a: ActorState, seq: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        a.acks.delete(seq);
        resolve();
      };
      const timer = setTimeout(done, this.options.stopTimeoutMs);
      a.acks.set(seq, done);
    });
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Stops every actor gracefully (terminating any that hang) and releases every handle. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    await Promise.all([...this.actors.values()].map((a) => this.stopActor(a)));
    for (const l of this.out.values()) l.close();
    this.supervisorDoorbell.interrupt();
    await this.loopDone;
    this.flushDrops();
    this.emit({ type: 'stopped' });
    this.events.complete();
    this.messages.complete();
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Asks one actor to stop, terminates it if it hangs, and resolves once its worker exited. */
  private async stopActor(a: ActorState): Promise<void> {
    this.cancelRestart(a);
    if (!a.worker) return;
    // A frozen worker cannot read the stop message: let it run to stop gracefully.
    this.pauses.release(a.spec.id);
    a.status = 'stopping';
    a.worker.postMessage({ kind: 'stop' } satisfies SupervisorToHost);
    const timer = setTimeout(() => void a.worker?.terminate(), this.options.stopTimeoutMs);
    await a.exited;
    clearTimeout(timer);
  }

  private state(id: ActorId): ActorState {
    const a = this.actors.get(id);
    if (!a) throw this.noActor(id);
    return a;
  }

  private noActor(id: ActorId): RangeError {
    const removed = this.removedIds.has(id) ? ' (it was removed)' : '';
    return new RangeError(`no actor ${id}${removed}; actors are ${this.idList.join(', ') || 'none'}`);
  }

  private ring(from: ActorId, to: ActorId): Ring {
    return this.rings.get(`${from}>${to}`)!;
  }

  private emit(e: RuntimeEvent extends infer E ? (E extends RuntimeEvent ? Omit<E, 'at'> : never) : never): void {
    this.events.next({ ...e, at: Math.round(performance.now() - this.startedAt) } as RuntimeEvent);
  }

  private spawn(id: ActorId): Promise<void> {
    const a = this.state(id);
    if (this.stopping || a.removal) return Promise.resolve();
    if (a.everSpawned) a.incarnation++;
    a.everSpawned = true;
    // Whatever was sent to the dead incarnation is lost, as on a real network.
    for (const from of [supervisorId, ...this.ids]) if (from !== id) this.ring(from, id).discardUnread();
    a.status = 'starting';
    a.crashInjected = false;
    this.pauses.release(id);
    const { port1, port2 } = new MessageChannel();
    const dataDir = this.options.dataDir === null ? null : join(this.options.dataDir, `node-${id}`);
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    const handle = (from: ActorId, to: ActorId): RingHandle => this.ring(from, to).handle;
    const peers = this.ids.filter((x) => x !== id);
    const init: HostInit = {
      entry: hostUrl,
      module: a.moduleUrl,
      id,
      peers,
      removed: [...this.removedIds],
      config: a.spec.config ?? {},
      incarnation: a.incarnation,
      seed: this.seed,
      dataDir,
      shapes: this.options.shapes,
      inbound: [supervisorId, ...peers].map((from) => ({ from, ring: handle(from, id) })),
      outbound: [supervisorId, ...peers].map((to) => ({ to, ring: handle(id, to) })),
      doorbell: this.doorbells.get(id)!,
      faults: this.faults.buffer,
      pause: this.pauses.buffer,
      framesPerReadMax: this.options.framesPerReadMax,
      spinBeforeSleepUs: this.options.spinBeforeSleepUs,
      control: port2,
    };
    const worker = new Worker(bootUrl, { workerData: init, transferList: [port2] });
    a.worker = worker;
    a.controlPort = port1;
    a.control = Comlink.wrap(nodeEndpoint(port1)) as ActorState['control'];
    let markExited!: () => void;
    a.exited = new Promise((r) => (markExited = r));
    let rejectGone!: (e: Error) => void;
    a.gone = new Promise<never>((_, reject) => (rejectGone = reject));
    a.gone.catch(() => {});
    a.markGone = rejectGone;

    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const startTimer = setTimeout(() => {
        if (!ready) {
          a.lastError = `did not report ready within ${this.options.startTimeoutMs} ms`;
          void worker.terminate();
        }
      }, this.options.startTimeoutMs);
      worker.on('message', (m: HostToSupervisor) => {
        switch (m.kind) {
          case 'ready':
            ready = true;
            clearTimeout(startTimer);
            // A stop or removal asked for while it started wins: it must not count as up, or
            // its exit would look like a crash and be restarted.
            if (a.status !== 'stopping') {
              a.status = 'up';
              this.faults.setDown(id, false);
            }
            this.emit({ type: a.incarnation === 0 ? 'spawned' : 'restarted', id, incarnation: a.incarnation });
            resolve();
            break;
          case 'event':
            this.emit({ type: 'actor', id, event: m.event });
            break;
          case 'dropped':
            this.countDrop(m.from, m.to, m.reason, m.bytes, m.count);
            break;
          case 'decode-failed':
            this.emit({ type: 'decode-failed', from: m.from, to: m.to, bytes: m.bytes, error: m.error });
            break;
          case 'peers-ack':
            a.acks.get(m.seq)?.();
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (err) => {
        a.lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      });
      worker.on('exit', (code) => {
        clearTimeout(startTimer);
        this.faults.setDown(id, true);
        a.worker = null;
        a.control = null;
        a.controlPort?.close();
        a.controlPort = null;
        a.markGone(new ActorDownError(id, 'it exited'));
        // A dead worker applies nothing more; its next incarnation starts from the current set.
        for (const done of [...a.acks.values()]) done();
        const wasStopping = a.status === 'stopping';
        if (wasStopping) {
          a.status = 'stopped';
          this.emit({ type: 'stopped-actor', id });
        } else {
          a.status = 'down';
          const reason = a.crashInjected ? 'injected' : a.lastError ? 'error' : 'exit';
          this.emit({ type: 'crashed', id, incarnation: a.incarnation, reason, ...(reason === 'error' ? { error: a.lastError } : {}), exitCode: code });
          if (!a.crashInjected && this.restartPolicy.auto && !this.stopping) this.scheduleRestart(a);
        }
        markExited();
        if (!ready) reject(new Error(`actor ${id} (${a.spec.module}) failed to start: ${a.lastError ?? `exited with code ${code}`}`));
      });
    });
  }

  private scheduleRestart(a: ActorState): void {
    const now = performance.now();
    const p = this.restartPolicy;
    a.restarts = a.restarts.filter((t) => now - t < p.intensityWindowMs);
    if (a.restarts.length >= p.intensityMax) {
      a.status = 'gave-up';
      this.emit({
        type: 'gave-up',
        id: a.spec.id,
        restartsInWindow: a.restarts.length,
        windowMs: p.intensityWindowMs,
        why: `restarted ${a.restarts.length} times within ${p.intensityWindowMs} ms (limit ${p.intensityMax}); last error: ${a.lastError ?? 'none'}`,
      });
      return;
    }
    const delayMs = Math.min(p.backoffMsMax, p.backoffMsInitial * 2 ** a.restarts.length);
    a.restarts.push(now + delayMs);
    this.emit({ type: 'restart-scheduled', id: a.spec.id, delayMs, restartsInWindow: a.restarts.length });
    a.restartTimer = setTimeout(() => {
      a.restartTimer = null;
      if (this.actors.get(a.spec.id) !== a) return;
      a.lastError = undefined;
      this.spawn(a.spec.id).catch(() => {
        // A failed start exits the worker, which schedules the next attempt or gives up.
      });
    }, delayMs);
  }

  private cancelRestart(a: ActorState): void {
    if (a.restartTimer) clearTimeout(a.restartTimer);
    a.restartTimer = null;
  }

  private countDrop(from: ActorId, to: ActorId, reason: string, bytes: number, count = 1): void {
    const key = `${from}>${to}>${reason}`;
    const first = this.dropCounts.size === 0;
    const d = this.dropCounts.get(key) ?? { count: 0, bytes: 0 };
    d.count += count;
    d.bytes += bytes;
    this.dropCounts.set(key, d);
    this.dropTotals.set(`${from}>${to}`, (this.dropTotals.get(`${from}>${to}`) ?? 0) + count);
    // Drops are reported in bursts so a lossy link does not flood the stream with one event each.
    if (first) setTimeout(() => this.flushDrops(), 100).unref();
  }

  private flushDrops(): void {
    for (const [key, d] of this.dropCounts) {
      const [from, to, reason] = key.split('>');
      this.emit({ type: 'dropped-frame', from: Number(from), to: Number(to), reason: reason as never, bytes: d.bytes, count: d.count });
    }
    this.dropCounts.clear();
  }

  private async inboundLoop(): Promise<void> {
    const hasWork = () => this.inbound.some((l) => !l.ring.isEmpty());
    let from = 0;
    const deliver = (bytes: Uint8Array, start: number, end: number) => {
      if (bytes[start] === rawFrameTag && this.frameHandler !== null) {
        this.frameHandler(from, bytes, start, end);
        return;
      }
      let message: unknown;
      try {
        message = this.codec.decode(bytes, start, end);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        this.emit({ type: 'decode-failed', from, to: supervisorId, bytes: end - start, error: err.message });
        return;
      }
      this.messages.next({ from, message });
    };
    while (!this.stopping) {
      let frames = 0;
      for (const l of this.inbound) {
        from = l.from;
        frames += l.ring.read(deliver, this.options.framesPerReadMax);
      }
      if (frames > 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      await this.supervisorDoorbell.sleep(hasWork);
    }
  }

  private publishMetrics(): void {
    const now = performance.now();
    const links: LinkMetrics[] = [];
    for (const [key, ring] of this.rings) {
      const [from, to] = key.split('>').map(Number) as [number, number];
      const c = ring.counters();
      const last = this.lastMetrics.get(key) ?? { frames: 0, bytes: 0, at: this.startedAt };
      const seconds = Math.max(1e-3, (now - last.at) / 1000);
      links.push({
        from,
        to,
        frames: c.framesIn,
        bytes: c.bytesIn,
        framesPerSec: Math.round((c.framesIn - last.frames) / seconds),
        bytesPerSec: Math.round((c.bytesIn - last.bytes) / seconds),
        usedBytes: c.usedBytes,
        capacityBytes: c.capacityBytes,
        wakeups: c.wakeups,
        dropped: this.dropTotals.get(key) ?? 0,
      });
      this.lastMetrics.set(key, { frames: c.framesIn, bytes: c.bytesIn, at: now });
    }
    this.emit({ type: 'metrics', intervalMs: this.options.metricsIntervalMs, links });
  }
}

function newActorState(spec: ActorSpec, moduleUrl: string): ActorState {
  return {
    spec,
    moduleUrl,
    status: 'down',
    incarnation: 0,
    everSpawned: false,
    worker: null,
    control: null,
    controlPort: null,
    crashInjected: false,
    lastError: undefined,
    restarts: [],
    restartTimer: null,
    pausedAt: 0,
    removal: null,
    acks: new Map(),
    exited: Promise.resolve(),
    gone: new Promise<never>(() => {}),
    markGone: () => {},
  };
}

function validateSpec(a: ActorSpec): void {
  if (a === null || typeof a !== 'object') throw new TypeError(`an actor spec is { id, module, config? }, got ${String(a)}`);
  if (!Number.isInteger(a.id) || a.id < 1 || a.id > actorIdMax) throw new RangeError(`actor ids must be integers from 1 to ${actorIdMax}, got ${String(a.id)}`);
  if (!(a.module instanceof URL) && (typeof a.module !== 'string' || a.module === '')) throw new TypeError(`actor ${a.id} needs a module (path or URL of the actor's factory)`);
}

function moduleUrlOf(module: string | URL): string {
  if (module instanceof URL) return module.href;
  return module.startsWith('file:') ? module : new URL(module, `file://${process.cwd()}/`).href;
}

function validateOptions(o: SupervisorOptions): Required<Omit<SupervisorOptions, 'restart'>> & { restart: RestartPolicy } {
  if (!o || !Array.isArray(o.actors) || o.actors.length === 0) {
    throw new RangeError('a cluster needs at least one actor: pass actors: [{ id: 1, module: ... }, ...]');
  }
  const ids = new Set<number>();
  for (const a of o.actors) {
    validateSpec(a);
    if (ids.has(a.id)) throw new RangeError(`actor id ${a.id} is used twice; ids must be unique`);
    ids.add(a.id);
  }
  const ringBytes = o.ringBytes ?? 1 << 20;
  Ring.handle(ringBytes); // validates: throws with the accepted range
  const restart = { ...defaultRestartPolicy, ...(o.restart ?? {}) };
  for (const key of ['backoffMsInitial', 'backoffMsMax', 'intensityMax', 'intensityWindowMs'] as const) {
    if (!(Number.isFinite(restart[key]) && restart[key] >= 0)) throw new RangeError(`restart.${key} must be a number ≥ 0, got ${String(restart[key])}`);
  }
  const spinBeforeSleepUs = o.spinBeforeSleepUs ?? defaultSpinBeforeSleepUs;
  if (!(Number.isFinite(spinBeforeSleepUs) && spinBeforeSleepUs >= 0 && spinBeforeSleepUs <= spinBeforeSleepUsMax)) {
    throw new RangeError(`spinBeforeSleepUs must be 0 to ${spinBeforeSleepUsMax}, got ${String(spinBeforeSleepUs)}`);
  }
  const metricsIntervalMs = o.metricsIntervalMs ?? 1_000;
  if (!(metricsIntervalMs === 0 || metricsIntervalMs >= 10)) throw new RangeError(`metricsIntervalMs must be 0 (off) or at least 10, got ${metricsIntervalMs}`);
  return {
    actors: o.actors,
    shapes: o.shapes ?? [],
    seed: (o.seed ?? 1) >>> 0,
    ringBytes,
    dataDir: o.dataDir ?? null,
    restart,
    metricsIntervalMs,
    framesPerReadMax: o.framesPerReadMax ?? 1024,
    spinBeforeSleepUs,
    stopTimeoutMs: o.stopTimeoutMs ?? 5_000,
    startTimeoutMs: o.startTimeoutMs ?? 20_000,
  };
}
