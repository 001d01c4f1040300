// A test actor for membership changes: answers pings, pings its current peers, streams numbered
// frames, records who answered and every peer list it was told of, and reports what a send did,
// so tests can watch the cluster grow and shrink from the outside.
import type { ActorContext, ActorFactory, ActorId } from '../../runtime/actor.ts';

interface Msg {
  type: string;
  n?: number;
  to?: number;
  count?: number;
  chunk?: number;
}

const member: ActorFactory = (ctx: ActorContext) => {
  if (ctx.config.failOnStart) throw new Error(`member ${ctx.self} configured to fail on start`);
  const pongsFrom: Record<number, number> = {};
  const peerHistory: ActorId[][] = [];
  // Per sender: how many numbered frames arrived, and whether any came out of order.
  const streams: Record<number, { count: number; next: number; outOfOrder: number }> = {};
  // Paced streams: a chunk of numbered frames every millisecond until stopped, so a stream is
  // still flowing while the cluster changes around it.
  const sent: Record<number, number> = {};
  const pacers = new Map<ActorId, number>();

  function pace(to: ActorId, chunk: number): void {
    for (let i = 0; i < chunk; i++) ctx.send(to, { type: 'seq', n: (sent[to] = (sent[to] ?? 0) + 1) - 1 });
    pacers.set(to, ctx.setTimer(1, () => pace(to, chunk)));
  }

  function trySend(to: ActorId, message: unknown): void {
    try {
      ctx.send(to, message);
      ctx.emit({ type: 'sent', to });
    } catch (err) {
      ctx.emit({ type: 'send-threw', to, error: (err as Error).message });
    }
  }

  return {
    receive(from, message) {
      const m = message as Msg;
      switch (m.type) {
        case 'ping':
          ctx.send(from, { type: 'pong', n: m.n, by: ctx.self });
          break;
        case 'pong':
          pongsFrom[from] = (pongsFrom[from] ?? 0) + 1;
          break;
        case 'ping-peers':
          for (const p of ctx.peers) ctx.send(p, { type: 'ping', n: m.n });
          break;
        case 'send-to':
          trySend(m.to!, { type: 'ping', n: m.n });
          break;
        case 'stream':
          for (let n = 0; n < m.count!; n++) ctx.send(m.to!, { type: 'seq', n });
          break;
        case 'stream-start':
          pace(m.to!, m.chunk!);
          break;
        case 'stream-stop':
          for (const t of pacers.values()) ctx.clearTimer(t);
          pacers.clear();
          break;
        case 'seq': {
          const s = (streams[from] ??= { count: 0, next: 0, outOfOrder: 0 });
          if (m.n !== s.next) s.outOfOrder++;
          s.next = m.n! + 1;
          s.count++;
          break;
        }
        case 'throw':
          throw new Error(`member ${ctx.self} asked to throw`);
        default:
          throw new Error(`member ${ctx.self} got an unknown message ${JSON.stringify(m)}`);
      }
    },
    onPeersChanged(peers) {
      peerHistory.push([...peers]);
      ctx.emit({ type: 'peers-changed', peers: [...peers] });
    },
    control: {
      peers: () => [...ctx.peers],
      pongsFrom: () => pongsFrom,
      peerHistory: () => peerHistory,
      streams: () => streams,
      sent: () => sent,
      incarnation: () => ctx.incarnation,
    },
  };
};

export default member;
