// Stage 2: squares each number and says which incarnation of itself did it.
import type { ActorFactory } from 'concur/runtime';

const transform: ActorFactory = (ctx) => ({
  receive(_from, message) {
    const { n } = message as { n: number };
    ctx.send(Number(ctx.config.next), { n, square: n * n, by: ctx.incarnation });
  },
});
export default transform;
