import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ActorDownError, Supervisor } from '../../runtime/supervisor.ts';
import { eventually, nextEvent } from '../support/cluster.ts';

const tickerModule = new URL('./ticker-actor.ts', import.meta.url);

function tickers(n: number, extra: Partial<Parameters<typeof Supervisor.start>[0]> = {}): Promise<Supervisor> {
  return Supervisor.start({ actors: Array.from({ length: n }, (_, i) => ({ id: i + 1, module: tickerModule })), metricsIntervalMs: 0, ...extra });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a paused actor is frozen: no timer fires, no frame is read, no control call answers; on resume it runs on', async () => {
  const s = await tickers(2);
  try {
    await sleep(50);
    await s.call(1, 'resetGap');
    const ticksBefore = (await s.call<{ ticks: number }>(1, 'ticks')).ticks;
    const paused = nextEvent(s, 'paused', (e) => e.id === 1);
    await s.pause(1);
    assert.is((await paused).incarnation, 0);
    assert.is(s.status(1).status, 'paused');
    assert.not.ok(s.isUp(1));
    assert.equal(s.pausedIds(), [1]);
    await s.pause(1); // pausing a paused actor is a no-op
    try {
      await s.call(1, 'ticks', [], 1_000);
      assert.unreachable('a paused actor answered a control call');
    } catch (err) {
      assert.instance(err, ActorDownError);
      assert.match((err as Error).message, /actor 1 is paused; resume it/);
    }
    for (let n = 0; n < 5; n++) s.send(1, { n });
    // The other actor runs on.
    const before2 = (await s.call<{ ticks: number }>(2, 'ticks')).ticks;
    await sleep(300);
    assert.ok((await s.call<{ ticks: number }>(2, 'ticks')).ticks > before2 + 5, 'actor 2 kept ticking');
    const resumedAt = Date.now();
    const resumed = nextEvent(s, 'resumed', (e) => e.id === 1);
    s.resume(1);
    assert.ok((await resumed).pausedMs >= 300);
    assert.is(s.status(1).status, 'up');
    // Its clock kept running while its timers did not: the first tick after resume sees the gap
    // (a control call may be answered just before that overdue tick fires, so ask until it has).
    const ticked = await eventually(async () => {
      const t = await s.call<{ ticks: number; gapMsMax: number }>(1, 'ticks');
      return t.gapMsMax >= 290 ? t : undefined;
    }, 'a tick after resume that saw the ~300 ms pause as one gap', 3_000);
    assert.ok(ticked.ticks > ticksBefore);
    const got = await s.call<{ n: number; atWallMs: number }[]>(1, 'received');
    assert.equal(got.map((r) => r.n), [0, 1, 2, 3, 4], 'frames sent while paused are read after resume, in order');
    for (const r of got) assert.ok(r.atWallMs >= resumedAt, 'no frame was read while paused');
    assert.throws(() => s.resume(1), /actor 1 is not paused \(it is up\)/);
  } finally {
    await s.stop();
  }
});

test('a paused actor can be crashed (it dies frozen) and restarted running; stop ends a paused actor gracefully', async () => {
  const s = await tickers(2, { restart: { auto: false }, stopTimeoutMs: 10_000 });
  try {
    await s.pause(1);
    const crashed = nextEvent(s, 'crashed', (e) => e.id === 1);
    const t0 = Date.now();
    await s.crash(1);
    assert.ok(Date.now() - t0 < 2_000, 'terminate does not wait for a resume');
    assert.is((await crashed).reason, 'injected');
    assert.is(s.status(1).status, 'down');
    await s.restart(1);
    assert.is(s.status(1).status, 'up');
    assert.ok((await s.call<{ ticks: number }>(1, 'ticks')).ticks >= 0, 'the new incarnation runs');
    await s.pause(2);
    const stoppedGracefully = nextEvent(s, 'stopped-actor', (e) => e.id === 2);
    const t1 = Date.now();
    await s.stop();
    await stoppedGracefully;
    assert.ok(Date.now() - t1 < 5_000, `stop took ${Date.now() - t1} ms (a paused actor must not wait out stopTimeoutMs)`);
  } finally {
    await s.stop();
  }
});

test('pause refuses an actor that is down, and restart of a paused actor starts it afresh', async () => {
  const s = await tickers(1, { restart: { auto: false } });
  try {
    await s.crash(1);
    try {
      await s.pause(1);
      assert.unreachable('paused a crashed actor');
    } catch (err) {
      assert.instance(err, ActorDownError);
    }
    await s.restart(1);
    await s.pause(1);
    // The frozen incarnation is ended (not left frozen beside the new one).
    const ended = nextEvent(s, 'crashed', (e) => e.id === 1 && e.incarnation === 1);
    await s.restart(1);
    assert.is((await ended).reason, 'injected');
    assert.is(s.status(1).status, 'up');
    assert.is(s.status(1).incarnation, 2);
    await s.call(1, 'ticks', [], 2_000);
  } finally {
    await s.stop();
  }
});

test.run();
