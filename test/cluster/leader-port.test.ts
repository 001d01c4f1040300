// The cluster's Redis port on the leader's thread (apps/cluster/leader-port.ts, `concur start
// --resp-door leader`): the leader's node listens; when leadership moves the port moves with it,
// while the connections the old node took stay there and forward; when the node holding the port
// crashes, the new leader takes it. Writes acknowledged through it survive all of that.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { Cluster } from '../../apps/cluster/cluster.ts';
import { LeaderPort } from '../../apps/cluster/leader-port.ts';
import { eventually } from '../support/cluster.ts';

/** The node whose door answered: INFO on a node's door reports that node alone. */
async function servedBy(c: Redis): Promise<number> {
  const m = /\bnode(\d+):role=/.exec(await c.info('concur'));
  assert.ok(m, 'INFO concur names the serving node');
  return Number(m![1]);
}

function client(port: number, reconnect: boolean): Redis {
  // A command cut off with its connection is not sent again by the client (the test counts its own
  // retries); ioredis then never settles it, so a deadline does.
  return new Redis({ port, host: '127.0.0.1', lazyConnect: true, autoResendUnfulfilledCommands: false, commandTimeout: 2_000, ...(reconnect ? {} : { retryStrategy: () => null, maxRetriesPerRequest: 0 }) });
}

/**
 * A new connection to the port, reaching the leader. Under load (CI runs two files at once on two
 * cores) leadership can move on its own at any moment, and a connection waiting in the backlog of a
 * listener that is being closed is reset, as at any address that moves; so a connect may land on a
 * node that is no longer the leader, or fail. The port must reach the leader within the deadline.
 */
async function connectToLeader(c: Cluster, lp: LeaderPort, clients: Redis[], reconnect = false): Promise<{ cl: Redis; node: number }> {
  return eventually(async () => {
    const cl = client(lp.portNumber, reconnect);
    cl.on('error', () => {}); // a refused or reset connect: tried again
    clients.push(cl);
    try {
      await cl.connect();
      const node = await servedBy(cl);
      if (node === c.leader() && node === lp.node) return { cl, node };
    } catch {
      // reset in the backlog of a listener being moved; another try
    }
    cl.disconnect();
    return undefined;
  }, 'a new connection to the port reaching the leader');
}

/** A SET that a moment without a leader (TRYAGAIN) may turn away, as a client would retry it. */
async function setRetrying(cl: Redis, key: string, value: string): Promise<string> {
  return eventually(async () => {
    try {
      return await cl.set(key, value);
    } catch (e) {
      if (/^TRYAGAIN/.test((e as Error).message)) return undefined;
      throw e;
    }
  }, `SET ${key} accepted`);
}

test('the Redis port follows the leader: new connections reach the leader, old ones forward, a crashed holder is replaced', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory' });
  const clients: Redis[] = [];
  let lp: LeaderPort | null = null;
  let stopWriter = async () => {};
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    lp = await LeaderPort.start(c, { resp: { port: 0 } });
    assert.ok(lp.portNumber > 0, 'port 0 became a real port, kept from then on');
    const { cl: a, node: first } = await connectToLeader(c, lp, clients);
    assert.is(await setRetrying(a, 'k1', 'one'), 'OK');

    // Leadership moves: the port follows within a few checks.
    const second = [1, 2, 3].find((id) => id !== first)!;
    // (Under load leadership may come back to the first node on its own: moved away again.)
    const { cl: b } = await eventually(async () => {
      if (c.leader() === first || c.leader() === null) await c.transfer(second, 10_000).catch(() => undefined);
      const r = await connectToLeader(c, lp!, clients);
      return r.node !== first ? r : undefined;
    }, 'a new connection reaching the new leader');
    // The old connection stays with the node that took it, now a follower, and forwards.
    assert.is(await servedBy(a), first);
    assert.is(await setRetrying(a, 'k2', 'through-the-old-leader'), 'OK');
    assert.is(await b.get('k2'), 'through-the-old-leader');
    assert.is(await a.get('k1'), 'one');

    // A steady writer on the leader, reconnecting when its node goes: every INCR it was told
    // succeeded must be in the final count (some unanswered ones may have applied too).
    const { cl: w } = await connectToLeader(c, lp, clients, true);
    let acked = 0;
    let attempted = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        attempted++;
        try {
          await w.incr('counter');
          acked++;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    stopWriter = async () => {
      writing = false;
      await writer;
    };
    await eventually(() => (acked >= 20 ? true : undefined), 'writes through the port');

    // The node holding the port, with the writer on it, crashes: its connections close, and the
    // new leader takes the port.
    const victim = await eventually(async () => {
      const on = await servedBy(w).catch(() => null);
      if (on !== null && on === lp!.node) return on;
      w.disconnect(true); // leadership moved on its own since: onto the holder again
      return undefined;
    }, 'the writer on the node holding the port');
    const wClosed = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the writer's connection to node ${victim} stayed open 10 s after the node crashed`)), 10_000);
      w.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    const before = acked;
    await c.crash(victim);
    await wClosed;
    await eventually(() => {
      const l = c.leader();
      return l !== null && l !== victim && lp!.node === l ? l : undefined;
    }, 'a new leader holding the port');
    // Fails (by its deadline) unless a new connection to the port reaches the live leader.
    const { cl: d } = await connectToLeader(c, lp, clients);
    assert.is(await d.get('k2'), 'through-the-old-leader', 'an acknowledged write survived the crash');
    await eventually(() => (acked >= before + 20 ? true : undefined), 'the writer going again after the crash');
    // The writer reconnected while the port was moving: to the new leader, or to a survivor that
    // held the port for a moment while there was none, and which now forwards.
    const wNode = await servedBy(w);
    assert.ok(wNode !== victim && [1, 2, 3].includes(wNode), `the writer connected again, to a live node (node ${wNode})`);

    await stopWriter();
    const total = Number(await d.get('counter'));
    assert.ok(total >= acked, `every acknowledged INCR counted: ${total} >= ${acked}`);
    assert.ok(total <= attempted, `no INCR counted that was never sent: ${total} <= ${attempted}`);
  } finally {
    await stopWriter(); // a failed assertion must not leave it retrying forever
    for (const cl of clients) cl.disconnect();
    await lp?.stop();
    await c.stop();
  }
});

test('with no node able to listen (the port taken by another process), the start says so', async () => {
  const { createServer } = await import('node:net');
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const port = (squatter.address() as { port: number }).port;
  const c = await Cluster.start({ nodes: 1, storage: 'memory' });
  try {
    await eventually(() => c.leader() ?? undefined, 'a leader');
    const failed = await LeaderPort.start(c, { resp: { port } }, 500).then(() => null, (e: Error) => e);
    assert.ok(failed !== null, 'refused');
    assert.match(failed!.message, new RegExp(`no node could take the Redis port ${port} within 500 ms: cannot serve clients on 127\\.0\\.0\\.1:${port} \\(the port is in use\\); free the port or give --resp-port another one`));
  } finally {
    squatter.close();
    await c.stop();
  }
});

test('a multipaxos cluster is refused: its nodes have no doors', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory', protocol: 'multipaxos' });
  try {
    const failed = await LeaderPort.start(c, { resp: { port: 0 } }).then(() => null, (e: Error) => e);
    assert.match(failed?.message ?? '', /needs Raft nodes/);
  } finally {
    await c.stop();
  }
});

test.run();
