// Runs Paxos scenario transcripts (testdata/*.txt), in the format of test/raft/transcript.ts
// (after etcd's datadriven tests): each block is a command line, a `----` line and the output
// expected from it, then a blank line; `#` lines before a command are comments kept on rewrite.
// Run with CONCUR_REWRITE=1 to rewrite the expected output from what the code does now — then
// read the diff before keeping it.
//
// Commands:
//   cluster n=3 mode=basic|multi [electionTicks= heartbeatTicks= inflightMax= batchMax=] [unsafe=NAME]... [clone=true]
//   campaign ID                 Multi-Paxos: run phase 1 now
//   propose ID VALUE            → ok | refused
//   propose-many ID N [PREFIX]  values PREFIX1..PREFIXN (default v1..vN)
//   read ID CONTEXT             → accepted | refused
//   flush ID                    (process flushes anyway, as the node host does)
//   tick ID [N] | tick-all [N]  ticks without processing
//   tick-until-retry ID         Basic Paxos: tick one node until it starts an instance (back-off over)
//   compact ID                  snapshot the state machine at what it applied; drop the slots it covers
//   run N                       N rounds of: every live node ticks, then stabilize (plain heartbeats counted, not listed)
//   process                     every node's Ready loop; prints applies and served reads
//   deliver [from= to= type= slot=]   process, then deliver what is in flight (matching messages only)
//   drop [from= to= type= slot=]      remove matching messages from flight
//   inflight                    list what is in flight
//   stabilize                   process and deliver until nothing is in flight
//   isolate ID | cut FROM TO | heal | crash ID | restart ID
//   status [IDS] | slots [IDS] | applied [IDS]
import { runTranscriptFile } from '../support/transcript-file.ts';
import { formatBallot, formatPaxosMessage, type PaxosMode, type PaxosMutations, type PaxosSettings } from '../../protocols/paxos/index.ts';
import { PaxosTestCluster, type MessageFilter } from './harness.ts';

const settingKeys = new Set(['electionTicks', 'heartbeatTicks', 'inflightMax', 'batchMax']);
const mutationKeys = new Set(['acceptBelowPromise', 'ignoreAcceptedInPromise', 'skipGapFill']);
const plainHeartbeat = /^(  \(dropped\) )?heartbeat(Resp)? \S+ b\S+ commit=\d+$/;

class Interpreter {
  private c: PaxosTestCluster | null = null;

  private get cluster(): PaxosTestCluster {
    if (this.c === null) throw new Error('no cluster yet: start with `cluster n=3 mode=multi`');
    return this.c;
  }

  run(command: string): string[] {
    const [cmd, ...args] = command.trim().split(/\s+/);
    const num = (k: number): number => {
      const v = Number(args[k]);
      if (!Number.isInteger(v)) throw new Error(`${cmd}: argument ${k + 1} must be an integer, got ${args[k]}`);
      return v;
    };
    const ids = (): number[] => (args.length > 0 ? args.map(Number) : this.cluster.ids);
    const filter = (): MessageFilter => {
      const f: MessageFilter = {};
      for (const a of args) {
        const [k, v] = a.split('=') as [string, string | undefined];
        if (v === undefined) throw new Error(`${cmd}: filter ${a} must be key=value`);
        if (k === 'from' || k === 'to' || k === 'slot') f[k] = Number(v);
        else if (k === 'type') f.type = v;
        else throw new Error(`${cmd}: unknown filter ${k} (from, to, type, slot)`);
      }
      return f;
    };
    switch (cmd) {
      case 'cluster': {
        const settings: Partial<PaxosSettings> = {};
        const unsafe: PaxosMutations = {};
        let n = 3;
        let mode: PaxosMode = 'multi';
        let clone = false;
        for (const a of args) {
          const [k, v] = a.split('=') as [string, string];
          if (k === 'n') n = Number(v);
          else if (k === 'mode') mode = v as PaxosMode;
          else if (k === 'clone') clone = v === 'true';
          else if (k === 'unsafe') {
            if (!mutationKeys.has(v)) throw new Error(`cluster: unknown mutation ${v}`);
            (unsafe as Record<string, boolean>)[v] = true;
          } else if (settingKeys.has(k)) (settings as Record<string, number>)[k] = Number(v);
          else throw new Error(`cluster: unknown argument ${k}`);
        }
        this.c = new PaxosTestCluster(n, mode, settings, unsafe);
        this.c.cloneOnDelivery = clone;
        return [];
      }
      case 'campaign':
        this.cluster.paxos(num(0)).campaign();
        return [];
      case 'propose':
        return [this.cluster.propose(num(0), args[1] ?? 'x') ? 'ok' : 'refused'];
      case 'propose-many': {
        const id = num(0);
        const prefix = args[2] ?? 'v';
        const out: string[] = [];
        for (let i = 1; i <= num(1); i++) out.push(this.cluster.propose(id, `${prefix}${i}`) ? 'ok' : 'refused');
        return [out.every((x) => x === 'ok') ? `ok x${out.length}` : out.map((x, i) => `${prefix}${i + 1}: ${x}`).join(', ')];
      }
      case 'read':
        return [this.cluster.paxos(num(0)).readIndex(num(1)) ? 'accepted' : 'refused'];
      case 'flush':
        this.cluster.paxos(num(0)).flush();
        return [];
      case 'tick':
        this.cluster.tick(num(0), args[1] === undefined ? 1 : num(1));
        return [];
      case 'tick-until-retry': {
        // Basic Paxos: ticks one node until its back-off (or time-out) ends and it starts an instance.
        const id = num(0);
        const n = this.cluster.tickUntilRetry(id);
        return [`${id}: started an instance after ${n} tick(s), ballot ${formatBallot(this.cluster.paxos(id).status().ballot)}`];
      }
      case 'compact': {
        const id = num(0);
        return [`${id}: snapshot through slot ${this.cluster.compact(id)}`];
      }
      case 'tick-all': {
        const count = args[0] === undefined ? 1 : num(0);
        for (let i = 0; i < count; i++) for (const id of this.cluster.ids) if (this.cluster.node(id).node !== null) this.cluster.tick(id);
        return [];
      }
      case 'run': {
        this.cluster.run(num(0));
        const all = this.cluster.takeTranscript();
        const shown = all.filter((l) => !plainHeartbeat.test(l));
        const hidden = all.length - shown.length;
        return hidden > 0 ? [...shown, `(${hidden} plain heartbeats and replies not shown)`] : shown;
      }
      case 'process':
        this.cluster.processAll();
        return this.cluster.takeTranscript();
      case 'deliver': {
        const f = filter();
        this.cluster.processAll();
        this.cluster.deliverRound(f);
        return this.cluster.takeTranscript();
      }
      case 'drop':
        return [`dropped ${this.cluster.drop(filter())}`];
      case 'inflight':
        return this.cluster.inflight.length > 0 ? this.cluster.inflight.map(formatPaxosMessage) : ['(nothing)'];
      case 'stabilize':
        this.cluster.stabilize();
        return this.cluster.takeTranscript();
      case 'isolate':
        this.cluster.isolate(num(0));
        return [];
      case 'cut':
        this.cluster.cutLink(num(0), num(1));
        return [];
      case 'heal':
        this.cluster.heal();
        return [];
      case 'crash':
        this.cluster.crash(num(0));
        return [];
      case 'restart':
        this.cluster.restart(num(0));
        return [];
      case 'status':
        return this.cluster.statusLines(ids());
      case 'slots': {
        const through = this.cluster.lastSlot();
        return ids().map((id) => this.cluster.slotsLine(id, through));
      }
      case 'applied':
        return ids().map((id) => this.cluster.appliedLine(id));
      default:
        throw new Error(`unknown command "${cmd}"`);
    }
  }
}

/** Runs a transcript file; returns mismatches (or rewrites the file when CONCUR_REWRITE=1). */
export function runTranscript(path: string): string[] {
  const it = new Interpreter();
  return runTranscriptFile(path, (command) => it.run(command));
}
