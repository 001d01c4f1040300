import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { Supervisor, type ActorSpec, type SupervisorOptions } from '../../runtime/supervisor.ts';
import type { RuntimeEvent } from '../../runtime/events.ts';
import { eventually, nextEvent } from '../support/cluster.ts';

const memberModule = new URL('./member-actor.ts', import.meta.url);
const member = (id: number): ActorSpec => ({ id, module: memberModule });

function memberCluster(n: number, extra: Partial<SupervisorOptions> = {}): Promise<Supervisor> {
  return Supervisor.start({ actors: Array.from({ length: n }, (_, i) => member(i + 1)), metricsIntervalMs: 0, ...extra });
}

/** Waits until actor `at` has had a pong from each of `from`. */
function pongs(s: Supervisor, at: number, from: number[]): Promise<Record<number, number>> {
  return eventually(async () => {
    const p = await s.call<Record<number, number>>(at, 'pongsFrom');
    return from.every((f) => (p[f] ?? 0) > 0) ? p : undefined;
  }, `pongs at ${at} from ${from.join(', ')}`);
}

async function refused(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: Error) => e);
  assert.ok(err && re.test(err.message), `expected a refusal matching ${re}, got ${err ? err.message : 'success'}`);
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an actor added to a running cluster talks both ways with every old actor and the supervisor', async () => {
  const s = await memberCluster(2, { metricsIntervalMs: 50 });
  const seen: string[] = [];
  const sub = s.events$.subscribe((e) => {
    if (e.type === 'actor-added' || e.type === 'spawned') seen.push(`${e.type} ${e.id}`);
  });
  try {
    await s.addActor(member(3));
    assert.equal(s.ids, [1, 2, 3]);
    assert.equal(seen, ['actor-added 3', 'spawned 3']);
    assert.is(s.status(3).status, 'up');
    // addActor resolves only once every running actor has applied the change.
    assert.equal(await s.call(1, 'peers'), [2, 3]);
    assert.equal(await s.call(1, 'peerHistory'), [[2, 3]], 'onPeersChanged with the new peer');
    assert.equal(await s.call(2, 'peerHistory'), [[1, 3]]);
    assert.equal(await s.call(3, 'peers'), [1, 2]);
    assert.equal(await s.call(3, 'peerHistory'), [], 'not called at start');

    for (const id of [1, 2, 3]) s.send(id, { type: 'ping-peers' });
    await pongs(s, 3, [1, 2]);
    await pongs(s, 1, [2, 3]);
    await pongs(s, 2, [1, 3]);
    const reply = firstValueFrom(s.messages$.pipe(filter((m) => m.from === 3), timeout(5_000)));
    s.send(3, { type: 'ping', n: 7 });
    assert.equal(await reply, { from: 3, message: { type: 'pong', n: 7, by: 3 } });

    const metrics = await firstValueFrom(s.events$.pipe(filter((e): e is Extract<RuntimeEvent, { type: 'metrics' }> => e.type === 'metrics'), timeout(5_000)));
    const links = new Set(metrics.links.map((l) => `${l.from}>${l.to}`));
    for (const l of ['0>3', '3>0', '1>3', '3>1', '2>3', '3>2']) assert.ok(links.has(l), `metrics report link ${l}`);
  } finally {
    sub.unsubscribe();
    await s.stop();
  }
});

test('streams between actors lose nothing and keep their order while actors come and go', async () => {
  const s = await memberCluster(2);
  type Streams = Record<number, { count: number; outOfOrder: number }>;
  try {
    // Paced streams, so frames are flowing while the receiver's rings change under its loop.
    s.send(1, { type: 'stream-start', to: 2, chunk: 50 });
    await s.addActor(member(3));
    const before = await s.call<Streams>(2, 'streams');
    s.send(3, { type: 'stream-start', to: 2, chunk: 50 });
    await s.addActor(member(4));
    await s.removeActor(4);
    await s.addActor(member(5));
    const during = await s.call<Streams>(2, 'streams');
    s.send(1, { type: 'stream-stop' });
    s.send(3, { type: 'stream-stop' });
    await settle(100); // the stops have landed: no more frames are sent
    const sentBy1 = (await s.call<Record<number, number>>(1, 'sent'))[2]!;
    const sentBy3 = (await s.call<Record<number, number>>(3, 'sent'))[2]!;
    assert.ok((during[1]?.count ?? 0) > (before[1]?.count ?? 0) && (during[3]?.count ?? 0) > 0, 'frames were flowing while actors were added and removed');
    const streams = await eventually(async () => {
      const st = await s.call<Streams>(2, 'streams');
      return st[1]?.count === sentBy1 && st[3]?.count === sentBy3 ? st : undefined;
    }, `actor 2 to receive all ${sentBy1} + ${sentBy3} frames`);
    assert.is(streams[1]!.outOfOrder, 0);
    assert.is(streams[3]!.outOfOrder, 0);
  } finally {
    await s.stop();
  }
});

test('a removed actor is gone: the others keep talking, actors that still send to it have the frame dropped, the supervisor refuses', async () => {
  const s = await memberCluster(3);
  const seen: string[] = [];
  const sub = s.events$.subscribe((e) => {
    if (e.type === 'stopped-actor' || e.type === 'actor-removed') seen.push(`${e.type} ${e.id}`);
  });
  try {
    await s.removeActor(2);
    assert.equal(seen, ['stopped-actor 2', 'actor-removed 2'], 'stopped gracefully, then removed');
    assert.equal(s.ids, [1, 3]);
    assert.equal(await s.call(1, 'peerHistory'), [[3]]);
    assert.equal(await s.call(3, 'peers'), [1]);
    s.send(1, { type: 'ping-peers' });
    s.send(3, { type: 'ping-peers' });
    await pongs(s, 1, [3]);
    await pongs(s, 3, [1]);

    const dropped = nextEvent(s, 'dropped-frame', (e) => e.from === 1 && e.to === 2 && e.reason === 'removed');
    const sent = nextEvent(s, 'actor', (e) => e.id === 1 && e.event.type === 'sent');
    s.send(1, { type: 'send-to', to: 2 });
    assert.is((await sent).event.to, 2, 'ctx.send to a removed peer does not throw');
    assert.is((await dropped).count, 1);
    assert.ok(s.isUp(1));

    const threw = nextEvent(s, 'actor', (e) => e.id === 1 && e.event.type === 'send-threw');
    s.send(1, { type: 'send-to', to: 40 });
    assert.match(String((await threw).event.error), /has no link to 40/, 'an id never in the cluster still throws');

    assert.throws(() => s.send(2, { type: 'ping' }), /no actor 2 \(it was removed\); actors are 1, 3/);
    assert.throws(() => s.status(2), /no actor 2/);
    await refused(s.removeActor(2), /no actor 2/);
    await refused(s.addActor(member(2)), /id 2 belonged to a removed actor and may not be used again/);
  } finally {
    sub.unsubscribe();
    await s.stop();
  }
});

test('an actor that was down while peers were added and removed knows the current set when restarted', async () => {
  const s = await memberCluster(3, { restart: { auto: false } });
  try {
    await s.crash(1);
    await s.addActor(member(4));
    await s.removeActor(3);
    assert.is(s.status(1).status, 'down');
    await s.restart(1);
    assert.equal(await s.call(1, 'peers'), [2, 4]);
    s.send(1, { type: 'ping-peers' });
    s.send(4, { type: 'ping-peers' });
    await pongs(s, 1, [2, 4]);
    await pongs(s, 4, [1, 2]);
    // It never saw 3 removed, yet the removal reached it: a send to 3 is dropped, not thrown.
    const dropped = nextEvent(s, 'dropped-frame', (e) => e.from === 1 && e.to === 3 && e.reason === 'removed');
    s.send(1, { type: 'send-to', to: 3 });
    assert.is((await dropped).count, 1);
    assert.ok(s.isUp(1));
  } finally {
    await s.stop();
  }
});

test('an old actor that crashes after an add and is restarted by the policy knows the new peer', async () => {
  const s = await memberCluster(2, { restart: { backoffMsInitial: 10 } });
  try {
    await s.addActor(member(3));
    const restarted = nextEvent(s, 'restarted', (e) => e.id === 1);
    s.send(1, { type: 'throw' });
    await restarted;
    assert.equal(await s.call(1, 'peers'), [2, 3]);
    s.send(1, { type: 'ping-peers' });
    await pongs(s, 1, [2, 3]);
  } finally {
    await s.stop();
  }
});

test('partition, isolate, heal and link faults cover an added actor, whose links start clean', async () => {
  const s = await memberCluster(2);
  const cut = (from: number, to: number) => s.linkPolicy(from, to).cut;
  try {
    s.partition([[1], [2]]);
    await s.addActor(member(3));
    for (const [f, t] of [[1, 3], [3, 1], [2, 3], [3, 2]] as const) assert.is(cut(f, t), false, `new link ${f}→${t} starts clean`);
    assert.is(cut(1, 2), true, 'the old partition stays');

    s.partition([[1, 3], [2]]);
    assert.equal([cut(1, 3), cut(3, 1), cut(3, 2), cut(2, 3), cut(1, 2)], [false, false, true, true, true]);
    s.send(3, { type: 'ping-peers' });
    await pongs(s, 3, [1]);
    await settle(200);
    assert.is((await s.call<Record<number, number>>(3, 'pongsFrom'))[2], undefined, '3→2 is cut');

    s.isolate(3);
    assert.equal([cut(1, 3), cut(3, 1), cut(2, 3), cut(3, 2), cut(1, 2)], [true, true, true, true, false]);
    s.heal();
    s.send(3, { type: 'ping-peers' });
    await pongs(s, 3, [1, 2]);

    s.setFaults({ loss: 1 }, { to: [3] });
    assert.equal([s.linkPolicy(1, 3).loss, s.linkPolicy(2, 3).loss, s.linkPolicy(3, 1).loss], [1, 1, 0]);
    s.clearFaults();
    assert.is(s.linkPolicy(1, 3).loss, 0);

    await s.removeActor(3);
    s.partition([[1], [2]]);
    assert.throws(() => s.partition([[1, 3]]), /no actor 3 \(it was removed\)/);
  } finally {
    await s.stop();
  }
});

test('the highest id can be added; an added actor that fails to start stays a member, down, until removed', async () => {
  const s = await memberCluster(2, { restart: { auto: false } });
  try {
    await s.addActor(member(64));
    s.send(64, { type: 'ping-peers' });
    await pongs(s, 64, [1, 2]);
    await refused(s.addActor({ ...member(3), config: { failOnStart: true } }), /actor 3 .*failed to start.*configured to fail on start/);
    assert.equal(s.ids, [1, 2, 3, 64]);
    assert.is(s.status(3).status, 'down');
    await s.removeActor(3);
    assert.equal(s.ids, [1, 2, 64]);
    assert.equal(await s.call(1, 'peerHistory'), [[2, 64], [2, 3, 64], [2, 64]]);
  } finally {
    await s.stop();
  }
});

test('bad additions and removals are refused with messages that say why', async () => {
  const s = await memberCluster(2);
  try {
    await refused(s.addActor(member(1)), /actor 1 already exists; actors are 1, 2/);
    await refused(s.addActor(member(65)), /actor ids must be integers from 1 to 64, got 65/);
    await refused(s.addActor(member(0)), /from 1 to 64, got 0/);
    await refused(s.addActor(member(2.5)), /from 1 to 64, got 2.5/);
    await refused(s.addActor({ id: 3, module: '' }), /actor 3 needs a module/);
    await refused(s.removeActor(9), /no actor 9; actors are 1, 2/);
    assert.equal(s.ids, [1, 2], 'nothing changed');
  } finally {
    await s.stop();
  }
  await refused(s.addActor(member(5)), /supervisor has been stopped/);
  const idle = Supervisor.create({ actors: [member(1)], metricsIntervalMs: 0 });
  await refused(idle.addActor(member(2)), /needs a started supervisor/);
  await idle.stop();
});

test.run();
