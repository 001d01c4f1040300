// Stage 1: every 10 ms, sends the next number to the stage named in its config.
import type { ActorFactory } from 'concur/runtime';

const source: ActorFactory = (ctx) => {
  let n = 0;
  const tick = () => {
    ctx.send(Number(ctx.config.next), { n: ++n });
    ctx.setTimer(10, tick);
  };
  ctx.setTimer(10, tick);
  return { receive() {} };
};
export default source;
