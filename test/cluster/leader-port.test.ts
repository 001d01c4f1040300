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

test('the Redis port follows the leader: new connections reach the leader, old ones forward, a crashed holder is replaced', async () => {
  const c = await Cluster.start({ nodes: 3, storage: 'memory' });
  const clients: Redis[] = [];
  let lp: LeaderPort | null = null;
  try {
    const first = await eventually(() => c.leader() ?? undefined, 'a leader');
    lp = await LeaderPort.start(c, { resp: { port: 0 } });
    const port = lp.portNumber;
    assert.ok(port > 0, 'port 0 became a real port, kept from then on');
    assert.is(lp.node, first, 'the leader holds the port');

    const a = client(port, false);
    clients.push(a);
    await a.connect();
    assert.is(await servedBy(a), first);
    assert.is(await a.set('k1', 'one'), 'OK');

    // Leadership moves: the port follows within a few checks.
    const second = [1, 2, 3].find((id) => id !== first)!;
    await c.transfer(second, 10_000);
    await eventually(() => (lp!.node === second ? true : undefined), `the port on node ${second}`);
    const b = client(port, false);
    clients.push(b);
    await b.connect();
    assert.is(await servedBy(b), second, 'a new connection reaches the new leader');
    // The old connection stays with the node that took it, now a follower, and forwards.
    assert.is(await servedBy(a), first);
    assert.is(await a.set('k2', 'through-the-old-leader'), 'OK');
    assert.is(await b.get('k2'), 'through-the-old-leader');
    assert.is(await a.get('k1'), 'one');

    // A steady writer on the new holder, reconnecting when its node goes: every INCR it was told
    // succeeded must be in the final count (some unanswered ones may have applied too).
    const w = client(port, true);
    w.on('error', () => {}); // refused connects while the port moves: it tries again
    clients.push(w);
    await w.connect();
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
    await eventually(() => (acked >= 20 ? true : undefined), 'writes through the port');
    assert.is(await servedBy(w), second, 'the writer is on the node about to crash');

    // The node holding the port crashes: its connections close, the new leader takes the port.
    const bClosed = new Promise<void>((resolve) => b.once('end', () => resolve()));
    const before = acked;
    await c.crash(second);
    await bClosed;
    const third = await eventually(() => {
      const l = c.leader();
      return l !== null && l !== second && lp!.node === l ? l : undefined;
    }, 'a new leader holding the port');
    const d = client(port, false);
    clients.push(d);
    await d.connect();
    assert.is(await servedBy(d), third);
    assert.is(await d.get('k2'), 'through-the-old-leader', 'an acknowledged write survived the crash');
    await eventually(() => (acked >= before + 20 ? true : undefined), 'the writer going again after the crash');
    assert.is(await servedBy(w), third, 'the writer connected again, to the new leader');

    writing = false;
    await writer;
    const total = Number(await d.get('counter'));
    assert.ok(total >= acked, `every acknowledged INCR counted: ${total} >= ${acked}`);
    assert.ok(total <= attempted, `no INCR counted that was never sent: ${total} <= ${attempted}`);
  } finally {
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
