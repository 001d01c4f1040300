// The worker side of an actor: loads the actor module named by the supervisor, gives it its
// context, and runs its mailbox loop over the inbound rings. Started by worker-boot.mjs.
// It must never swallow an actor's error: a throw in receive, idle or a timer crashes the worker.
import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { rawFrameTag, type Actor, type ActorContext, type ActorEvent, type ActorFactory, type ActorId } from './actor.ts';
import { Codec, DecodeError } from './codec.ts';
import { FaultTable, LinkFaults } from './faults.ts';
import { OutLink, type DropReason } from './link.ts';
import type { HostInit, HostToSupervisor, SupervisorToHost } from './host-protocol.ts';
import { PauseTable } from './pause.ts';
import { Doorbell, Ring, type RingHandle } from './ring.ts';

const init = workerData as HostInit;
const port = parentPort!;
const post = (m: HostToSupervisor) => port.postMessage(m);

const codec = new Codec(init.shapes);
const faultTable = new FaultTable(init.faults);
const doorbell = new Doorbell(init.doorbell);
const pauseTable = new PauseTable(init.pause);
/**
 * A safe point: a requested pause freezes the whole thread here (supervisor.pause). The loop
 * checks before each batch, and timers before they fire, so once frozen nothing runs; on resume
 * the actor's own clock (performance.now) shows the time that passed, and beforeBatch catches up.
 */
const holdIfPaused = (): void => {
  pauseTable.holdIfRequested(init.id);
};
// Membership changes replace these arrays rather than mutate them (copy on write), so a loop
// that holds the old array finishes its pass over a consistent list.
let inbound: { from: ActorId; ring: Ring }[] = init.inbound.map((l) => ({ from: l.from, ring: new Ring(l.ring) }));
const outbound = new Map<ActorId, OutLink>();
let outLinks: OutLink[] = [];
let peers: readonly ActorId[] = [...init.peers];
const removed = new Set<ActorId>(init.removed);
// Drops are counted here and reported in bursts: one postMessage per dropped frame would cost
// more than the traffic it reports on a lossy link.
const drops = new Map<string, { to: ActorId; reason: DropReason; count: number; bytes: number }>();
let dropsTimer: ReturnType<typeof setTimeout> | null = null;
function flushDrops(): void {
  dropsTimer = null;
  for (const d of drops.values()) post({ kind: 'dropped', from: init.id, to: d.to, reason: d.reason, count: d.count, bytes: d.bytes });
  drops.clear();
}
function countDrop(to: ActorId, reason: DropReason, bytes: number): void {
  const key = `${to}:${reason}`;
  const d = drops.get(key) ?? { to, reason, count: 0, bytes: 0 };
  d.count++;
  d.bytes += bytes;
  drops.set(key, d);
  dropsTimer ??= setTimeout(flushDrops, 100);
}

function attachOutLink(to: ActorId, ring: RingHandle): void {
  // Seeded exactly as the links made at start, so a run with the same sends repeats exactly.
  const faults = new LinkFaults(faultTable, init.id, to, init.seed, init.incarnation);
  outbound.set(to, new OutLink(new Ring(ring), faults, (reason, bytes) => countDrop(to, reason, bytes)));
  outLinks = [...outbound.values()];
}
for (const l of init.outbound) attachOutLink(l.to, l.ring);

/** The link to `to`; null for a removed peer (the caller drops the frame); throws for a stranger. */
function linkTo(to: ActorId): OutLink | null {
  const link = outbound.get(to);
  if (link) return link;
  if (removed.has(to)) return null;
  throw new RangeError(`actor ${init.id} has no link to ${to}; known: ${[...outbound.keys()].join(', ')}`);
}

function sendFrame(to: ActorId, link: OutLink | null, frame: Uint8Array): void {
  if (link) link.send(frame);
  else countDrop(to, 'removed', frame.length);
}

const timers = new Map<number, ReturnType<typeof setTimeout>>();
let nextTimer = 1;
let stopping = false;

const ctx: ActorContext = {
  self: init.id,
  get peers() {
    return peers;
  },
  config: init.config,
  incarnation: init.incarnation,
  storage: { dir: init.dataDir },
  send(to, message) {
    const link = linkTo(to);
    sendFrame(to, link, codec.encode(message));
  },
  encode: (message) => codec.encode(message),
  sendEncoded(to, frame) {
    sendFrame(to, linkTo(to), frame);
  },
  publish() {
    for (const l of outLinks) l.publish();
  },
  now: () => performance.now(),
  setTimer(delayMs, fire) {
    const id = nextTimer++;
    timers.set(id, setTimeout(() => {
      timers.delete(id);
      holdIfPaused();
      if (!stopping) fire();
    }, delayMs));
    return id;
  },
  clearTimer(id) {
    const t = timers.get(id);
    if (t !== undefined) clearTimeout(t);
    timers.delete(id);
  },
  emit(event: ActorEvent) {
    post({ kind: 'event', event });
  },
};

const mod = (await import(init.module)) as { default?: ActorFactory; createActor?: ActorFactory };
const factory = mod.default ?? mod.createActor;
if (typeof factory !== 'function') throw new TypeError(`actor module ${init.module} exports no factory (default export or createActor)`);
const actor: Actor = await factory(ctx);

function hasWork(): boolean {
  for (const l of inbound) if (!l.ring.isEmpty()) return true;
  return false;
}

let currentFrom = 0;
const receiveFrame = actor.receiveFrame?.bind(actor);
const deliver = (bytes: Uint8Array, start: number, end: number): void => {
  let message: unknown;
  try {
    if (receiveFrame !== undefined && bytes[start] === rawFrameTag) {
      receiveFrame(currentFrom, bytes, start, end);
      return;
    }
    message = codec.decode(bytes, start, end);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    post({ kind: 'decode-failed', from: currentFrom, to: init.id, bytes: end - start, error: err.message });
    return;
  }
  actor.receive(currentFrom, message);
};

function drain(): number {
  let frames = 0;
  for (const l of inbound) {
    currentFrom = l.from;
    frames += l.ring.read(deliver, init.framesPerReadMax);
  }
  return frames;
}

// How long an idle mailbox loop re-checks its rings before it sleeps on the doorbell. Under a
// streaming load the next frame often lands within microseconds; a short bounded spin saves
// the producer's notify and this thread's wake-up. The supervisor bounds it; 0 disables it.
const spinBeforeSleepUs = init.spinBeforeSleepUs;

function spinForWork(): boolean {
  if (spinBeforeSleepUs <= 0) return false;
  const until = performance.now() + spinBeforeSleepUs / 1000;
  // The clock is read once per 32 looks at the rings: a reading per look allocated a heap number
  // each (8 % of a follower's allocations in a heap profile), and a look is a few atomic loads.
  for (;;) {
    for (let i = 0; i < 32; i++) if (hasWork()) return true;
    if (performance.now() >= until) return false;
  }
}

/** Frames sent during a batch (receive and idle) wake their readers once, at the batch's end. */
function beginBatch(): void {
  for (const l of outLinks) l.setDeferWakeups(true);
}
function endBatch(): void {
  // Timers and control calls between batches send with an immediate wake-up again.
  for (const l of outLinks) l.setDeferWakeups(false);
}

const beforeBatch = actor.beforeBatch?.bind(actor);

async function mailboxLoop(): Promise<void> {
  while (!stopping) {
    holdIfPaused();
    if (stopping) break;
    beginBatch();
    let frames: number;
    try {
      if (beforeBatch !== undefined && hasWork()) beforeBatch();
      frames = drain();
      if (frames > 0 && actor.idle) await actor.idle();
    } finally {
      endBatch();
    }
    if (frames > 0) {
      // Let timers, control calls and I/O run between batches.
      await yieldToEventLoop();
      continue;
    }
    if (spinForWork()) continue;
    const woken = await doorbell.sleep(hasWork);
    if (woken) for (const l of inbound) if (!l.ring.isEmpty()) l.ring.countWakeup();
  }
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  doorbell.interrupt();
  for (const t of timers.values()) clearTimeout(t);
  timers.clear();
  if (actor.stop) await actor.stop();
  for (const l of outbound.values()) l.close();
  if (dropsTimer) clearTimeout(dropsTimer);
  flushDrops();
  post({ kind: 'stopped' });
  controlPort.close();
  port.removeAllListeners('message');
  port.close();
}

// Control surface for the supervisor, over comlink on a port of its own.
const controlPort = init.control;
const control = {
  ...(actor.control ?? {}),
  ping: () => ({ id: init.id, incarnation: init.incarnation }),
  stop,
};
Comlink.expose(control, nodeEndpoint(controlPort));

// ---- membership: the supervisor adds and removes peers while this actor runs ---------------

function setPeers(next: ActorId[]): void {
  peers = next.sort((a, b) => a - b);
  actor.onPeersChanged?.(peers);
}

function addPeer(id: ActorId, inRing: RingHandle, outRing: RingHandle): void {
  if (id === init.id || outbound.has(id)) return;
  attachOutLink(id, outRing);
  inbound = [...inbound, { from: id, ring: new Ring(inRing) }].sort((a, b) => a.from - b.from);
  setPeers([...peers, id]);
  // The new ring shares this actor's doorbell: a frame written before it was attached rang a
  // bell the loop then found no work for, so the loop may be asleep with that frame waiting.
  doorbell.ring();
}

function removePeer(id: ActorId): void {
  removed.add(id);
  const link = outbound.get(id);
  if (!link) return;
  // Frames still in flight either way are lost, as on a network: the peer is gone.
  link.close();
  outbound.delete(id);
  outLinks = [...outbound.values()];
  inbound = inbound.filter((l) => l.from !== id);
  setPeers(peers.filter((p) => p !== id));
}

function onMembership(m: Exclude<SupervisorToHost, { kind: 'stop' }>): void {
  if (stopping) return;
  if (m.kind === 'peer-added') addPeer(m.id, m.inbound, m.outbound);
  else removePeer(m.id);
  post({ kind: 'peers-ack', seq: m.seq });
}

// This listener is also what keeps the worker alive: Atomics.waitAsync alone does not.
port.on('message', (m: SupervisorToHost) => {
  if (m.kind === 'stop') void stop();
  else onMembership(m);
});

post({ kind: 'ready' });
await mailboxLoop();
