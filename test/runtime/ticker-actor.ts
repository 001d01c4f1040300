// A test actor for pause/resume: a timer every 10 ms records the largest gap between two fires
// (by its own clock), and every frame it receives is stamped with the wall clock, so a test can
// see from outside that a paused worker fired no timer and read no frame until resumed.
import type { ActorContext, ActorFactory } from '../../runtime/actor.ts';

const ticker: ActorFactory = (ctx: ActorContext) => {
  let ticks = 0;
  let lastTickAt = ctx.now();
  let gapMsMax = 0;
  const received: { n: number; atWallMs: number }[] = [];
  const tick = (): void => {
    const now = ctx.now();
    gapMsMax = Math.max(gapMsMax, now - lastTickAt);
    lastTickAt = now;
    ticks++;
    ctx.setTimer(10, tick);
  };
  ctx.setTimer(10, tick);
  return {
    receive(_from, message) {
      received.push({ n: (message as { n: number }).n, atWallMs: Date.now() });
    },
    control: {
      ticks: () => ({ ticks, gapMsMax }),
      resetGap: () => {
        gapMsMax = 0;
      },
      received: () => received,
    },
  };
};

export default ticker;
