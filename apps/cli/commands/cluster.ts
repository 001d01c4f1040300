// `concur cluster status|crash|restart|pause|resume|partition|isolate|cut|faults|heal`: the
// fault endpoints of the HTTP API of a running `concur start`, one short line per change. Like
// `concur kv`, it talks to the cluster over HTTP only and never prints a stack.
import type { Command } from 'commander';
import { nodeIdArg, nodeIdsArg, numberOption, intOption, UsageError } from '../options.ts';
import { callJson, runClient, withApiFlags, type ApiClientOptions } from '../http-client.ts';
import { describeLinkFault, formatClusterStatus, formatNetwork, type ClusterView } from '../cluster-status.ts';
import { delayMsMax } from '../../../runtime/faults.ts';

export function clusterStatus(opts: ApiClientOptions): Promise<ClusterView> {
  return callJson(opts, 'GET', 'cluster');
}

export type NodeAction = 'crash' | 'restart' | 'pause' | 'resume' | 'isolate';

export function nodeAction(opts: ApiClientOptions, id: number, action: NodeAction): Promise<unknown> {
  return callJson(opts, 'POST', `cluster/nodes/${id}/${action}`);
}

export function partition(opts: ApiClientOptions, groups: number[][]): Promise<{ groups?: number[][] }> {
  return callJson(opts, 'POST', 'cluster/partition', { groups });
}

export function cut(opts: ApiClientOptions, from: number[], to: number[]): Promise<unknown> {
  return callJson(opts, 'POST', 'cluster/cut', { from, to });
}

/** What POST /cluster/faults takes; `from`/`to` left out mean every node. */
export interface LinkFaultRequest {
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  duplicate?: number;
  reorder?: number;
  from?: number[];
  to?: number[];
}

export function setFaults(opts: ApiClientOptions, f: LinkFaultRequest): Promise<unknown> {
  return callJson(opts, 'POST', 'cluster/faults', f);
}

export function clearFaults(opts: ApiClientOptions): Promise<unknown> {
  return callJson(opts, 'DELETE', 'cluster/faults');
}

export function heal(opts: ApiClientOptions): Promise<unknown> {
  return callJson(opts, 'POST', 'cluster/heal');
}

const done: Record<NodeAction, (id: number) => string> = {
  crash: (id) => `node ${id} crashed (its worker is gone; concur cluster restart ${id} brings it back from its log)`,
  restart: (id) => `node ${id} restarted`,
  pause: (id) => `node ${id} paused (it processes nothing, sends nothing and its timers wait; concur cluster resume ${id})`,
  resume: (id) => `node ${id} resumed`,
  isolate: (id) => `node ${id} isolated: every link to and from it is cut (concur cluster heal joins it again)`,
};

const what: Record<NodeAction, string> = {
  crash: 'crash a node: its worker is terminated at once, in-flight messages lost',
  restart: 'restart a crashed node from its data directory',
  pause: 'freeze a node: it processes nothing, sends nothing, its timers do not fire (a long GC pause, a stopped VM)',
  resume: 'let a paused node run again; it catches up on the time that passed',
  isolate: 'cut every link to and from a node',
};

const say = (line: string) => process.stdout.write(`${line}\n`);
const ids = (list: number[]) => list.join(',');

interface FaultFlags extends ApiClientOptions, LinkFaultRequest {
  clear?: boolean;
}

const faultFields = ['loss', 'delayMs', 'jitterMs', 'duplicate', 'reorder'] as const;

const exitCodes = '\nExit codes: 0 ok, 1 refused (unknown node, a node already in that state), 2 bad usage, 3 request failed\n(unreachable, a token missing or refused, the fault API switched off, deadline).';

export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('see and break a running `concur start` through its HTTP API: node status, crash, pause, partition, link faults, heal')
    .addHelpText('after', exitCodes);

  withApiFlags(cluster.command('status'))
    .description('a table of the nodes (status, role, term, commit, applied) and the network (partition, cuts, link faults)')
    .option('--json', 'print GET /cluster as JSON')
    .action(
      runClient(async (flags: ApiClientOptions & { json?: boolean }) => {
        const s = await clusterStatus(flags);
        process.stdout.write(flags.json ? `${JSON.stringify(s)}\n` : formatClusterStatus(s));
      }),
    );

  for (const action of ['crash', 'restart', 'pause', 'resume', 'isolate'] as const) {
    withApiFlags(cluster.command(action))
      .argument('<id>', 'node id', nodeIdArg)
      .description(what[action])
      .action(
        runClient(async (id: number, flags: ApiClientOptions) => {
          await nodeAction(flags, id, action);
          say(done[action](id));
        }),
      );
  }

  withApiFlags(cluster.command('partition'))
    .argument('<groups...>', 'two or more groups of node ids, e.g. 1,2 3,4,5 (nodes left out form one more group)', (v: string, prev: number[][] | undefined) => [...(prev ?? []), nodeIdsArg(v)])
    .description('split the network: nodes talk only within their group')
    .action(
      runClient(async (groups: number[][], flags: ApiClientOptions) => {
        const answer = await partition(flags, groups);
        say(`partitioned: ${(answer.groups ?? groups).map(ids).join(' | ')} (concur cluster heal joins them again)`);
      }),
    );

  withApiFlags(cluster.command('cut'))
    .argument('<from>', 'node ids whose frames are dropped, e.g. 1 or 1,2', nodeIdsArg)
    .argument('<to>', 'node ids they no longer reach, e.g. 3 or 3,4', nodeIdsArg)
    .description('cut links one way: frames from each FROM node to each TO node are dropped; the other direction still flows')
    .action(
      runClient(async (from: number[], to: number[], flags: ApiClientOptions) => {
        const both = from.filter((id) => to.includes(id));
        if (both.length > 0) throw new UsageError(`node ${ids(both)} is on both sides of the cut; a node always reaches itself`);
        await cut(flags, from, to);
        say(`cut ${ids(from)} -> ${ids(to)} (frames the other way still flow; concur cluster heal restores it)`);
      }),
    );

  withApiFlags(cluster.command('faults'))
    .description('set link faults (loss, delay with jitter, duplication, reordering) on every link or on --from/--to; --clear removes them; no flags: show them')
    .option('--loss <p>', 'probability a frame is dropped, 0 to 1', numberOption(0, 1))
    .option('--delay-ms <ms>', 'delay every frame by this many ms', intOption(0, delayMsMax))
    .option('--jitter-ms <ms>', 'plus a random 0..ms more per frame', intOption(0, delayMsMax))
    .option('--duplicate <p>', 'probability a frame is delivered twice, 0 to 1', numberOption(0, 1))
    .option('--reorder <p>', 'probability a frame is held back and overtaken by the next, 0 to 1', numberOption(0, 1))
    .option('--from <ids>', 'only links from these nodes, e.g. 1,2 (default: every node)', nodeIdsArg)
    .option('--to <ids>', 'only links to these nodes (default: every node)', nodeIdsArg)
    .option('--clear', 'remove every link fault (partitions and cuts stay: concur cluster heal removes everything)')
    .addHelpText('after', '\nSettings left out keep their value on those links (set one to 0 to remove it; --clear removes all).\nExamples:\n  concur cluster faults --loss 0.1 --delay-ms 20 --jitter-ms 10\n  concur cluster faults --from 1 --to 2,3 --duplicate 0.05 --reorder 0.05\n  concur cluster faults --clear')
    .action(
      runClient(async (f: FaultFlags) => {
        const given = faultFields.filter((k) => f[k] !== undefined);
        if (f.clear) {
          if (given.length > 0 || f.from !== undefined || f.to !== undefined) throw new UsageError('--clear removes every link fault; give it alone, or set faults without it');
          await clearFaults(f);
          say('link faults cleared (partitions, cuts and paused nodes stay as they are)');
          return;
        }
        if (given.length === 0) {
          if (f.from !== undefined || f.to !== undefined) throw new UsageError('--from and --to say which links; add a fault: --loss, --delay-ms, --jitter-ms, --duplicate or --reorder');
          const s = await clusterStatus(f);
          say(formatNetwork(s.network)[2]!);
          return;
        }
        const body: LinkFaultRequest = {};
        for (const k of given) body[k] = f[k];
        if (f.from !== undefined) body.from = f.from;
        if (f.to !== undefined) body.to = f.to;
        await setFaults(f, body);
        say(`link faults ${f.from ? ids(f.from) : '*'} -> ${f.to ? ids(f.to) : '*'}: ${describeLinkFault(body, true)} (settings not given keep their value)`);
      }),
    );

  withApiFlags(cluster.command('heal'))
    .description('make the network whole: partitions, cuts, isolation and link faults are gone (paused nodes stay paused)')
    .action(
      runClient(async (flags: ApiClientOptions) => {
        await heal(flags);
        say('healed: no partition, cuts or link faults');
        // Heal leaves paused nodes paused: say so, since a paused node looks like a network fault.
        const s = await clusterStatus(flags).catch(() => null);
        const paused = s?.nodes.filter((n) => n.status === 'paused').map((n) => n.id) ?? [];
        if (paused.length > 0) say(`still paused: node${paused.length > 1 ? 's' : ''} ${ids(paused)} (concur cluster resume ${paused[0]})`);
      }),
    );
}
