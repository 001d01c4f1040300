// A test actor: answers pings, sends numbered bursts, records what it receives, and fails on
// request, so runtime tests can observe delivery, faults and crashes from the outside.
import type { ActorContext, ActorFactory } from '../../../runtime/actor.ts';

interface Msg {
  type: string;
  n?: number;
  to?: number;
  count?: number;
  bytes?: number;
  ms?: number;
  publish?: boolean;
}

const probe: ActorFactory = (ctx: ActorContext) => {
  if (ctx.config.failOnStart) throw new Error(`probe ${ctx.self} configured to fail on start`);
  const failAfterMs = Number(ctx.config.failAfterMs ?? 0);
  if (failAfterMs > 0) {
    ctx.setTimer(failAfterMs, () => {
      throw new Error(`probe ${ctx.self} failing after ${failAfterMs} ms as configured`);
    });
  }
  const received: { from: number; n: number; at: number; wallMs: number }[] = [];
  // When the last `hold` ended (wall clock, which every worker shares).
  let heldUntilMs = 0;
  let pongs = 0;
  let idles = 0;
  // beforeBatch must come before every batch of deliveries (it catches up on time first).
  let batches = 0;
  let inBatch = false;
  let receivedOutsideBatch = 0;
  ctx.emit({ type: 'probe-started', incarnation: ctx.incarnation });
  return {
    beforeBatch() {
      batches++;
      inBatch = true;
    },
    receive(from, message) {
      if (!inBatch) receivedOutsideBatch++;
      const m = message as Msg;
      switch (m.type) {
        case 'ping':
          ctx.send(from, { type: 'pong', n: m.n });
          break;
        case 'pong':
          pongs++;
          break;
        case 'burst': {
          const pad = new Uint8Array(m.bytes ?? 0);
          for (let n = 0; n < m.count!; n++) ctx.send(m.to!, { type: 'seq', n, pad });
          break;
        }
        case 'seq':
          received.push({ from, n: m.n!, at: ctx.now(), wallMs: Date.now() });
          break;
        case 'hold':
          // Sends one frame, wakes its reader now if asked to, then stays busy inside this batch.
          ctx.send(m.to!, { type: 'seq', n: m.n });
          if (m.publish) ctx.publish();
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms);
          heldUntilMs = Date.now();
          break;
        case 'ping-peers':
          for (const p of ctx.peers) ctx.send(p, { type: 'ping', n: m.n });
          break;
        case 'garbage':
          ctx.sendEncoded(m.to!, new Uint8Array([0xff, 0xff, 0xff, 0x1c, 0x5f]));
          ctx.send(m.to!, { type: 'seq', n: -1 });
          break;
        case 'throw':
          throw new Error(`probe ${ctx.self} asked to throw`);
        case 'emit':
          ctx.emit({ type: 'probe-note', n: m.n });
          break;
        default:
          throw new Error(`probe ${ctx.self} got an unknown message ${JSON.stringify(m)}`);
      }
    },
    idle() {
      idles++;
      inBatch = false;
    },
    control: {
      received: () => received,
      pongs: () => pongs,
      heldUntilMs: () => heldUntilMs,
      idles: () => idles,
      batches: () => ({ batches, receivedOutsideBatch }),
      whoami: () => ({ id: ctx.self, peers: ctx.peers, incarnation: ctx.incarnation, dir: ctx.storage.dir }),
    },
  };
};

export default probe;
