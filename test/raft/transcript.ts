// Runs scenario transcripts (testdata/*.txt, after etcd's datadriven tests): each block is a
// command, a `----` line and the output expected from it. Run with CONCUR_REWRITE=1 to rewrite
// the expected output from what the code does now — then read the diff before keeping it.
import { runTranscriptFile } from '../support/transcript-file.ts';
import { describeMembership, formatEntry, roleName, type ConfChange, type ConfChangeOp, type RaftMutations, type RaftSettings } from '../../protocols/raft/index.ts';
import { TestCluster, type InitialMembership } from './harness.ts';

const settingKeys = new Set(['preVote', 'checkQuorum', 'deferCommitNotice', 'electionTicks', 'heartbeatTicks', 'inflightMax', 'batchEntriesMax', 'batchBytesMax', 'leaseDriftTicks', 'promoteLagEntriesMax']);

class Interpreter {
  private c: TestCluster | null = null;

  private get cluster(): TestCluster {
    if (this.c === null) throw new Error('no cluster yet: start with `cluster n=3`');
    return this.c;
  }

  run(command: string): string[] {
    const [cmd, ...args] = command.trim().split(/\s+/);
    const num = (k: number): number => {
      const v = Number(args[k]);
      if (!Number.isInteger(v)) throw new Error(`${cmd}: argument ${k + 1} must be an integer, got ${args[k]}`);
      return v;
    };
    switch (cmd) {
      case 'cluster': {
        // The transcripts follow etcd-raft's message flow, in which a commit is told to every
        // follower at once; a cluster line with deferCommitNotice=true shows the deferred one.
        const settings: Partial<RaftSettings> = { deferCommitNotice: false };
        const unsafe: RaftMutations = {};
        const logs: Record<number, number[]> = {};
        let n = 3;
        let term = 0;
        let initial = null as InitialMembership | null;
        const ids = (v: string) => v.split(',').map(Number);
        for (const a of args) {
          const [k, v] = a.split('=') as [string, string];
          if (k === 'n') n = Number(v);
          else if (k === 'voters') initial = { voters: ids(v), witnesses: initial?.witnesses ?? [] };
          else if (k === 'witnesses') initial = { voters: initial?.voters ?? [], witnesses: ids(v) };
          else if (k === 'term') term = Number(v);
          else if (k === 'unsafe') (unsafe as Record<string, boolean>)[v] = true;
          else if (/^log\d+$/.test(k)) logs[Number(k.slice(3))] = v.split(',').map(Number);
          else if (settingKeys.has(k)) (settings as Record<string, unknown>)[k] = v === 'true' ? true : v === 'false' ? false : Number(v);
          else throw new Error(`cluster: unknown argument ${k}`);
        }
        if (initial !== null && initial.voters.length === 0) initial.voters = Array.from({ length: n }, (_, i) => i + 1);
        this.c = new TestCluster(n, settings, unsafe, logs, term, initial);
        return [];
      }
      case 'campaign':
        // Silent when it starts an election; refused while the node honours a leader's lease.
        return this.cluster.raft(num(0)).campaign() ? [] : ['refused'];
      case 'tick': {
        const count = args[1] === undefined ? 1 : num(1);
        this.cluster.tick(num(0), count);
        return [];
      }
      case 'tick-all': {
        const count = args[0] === undefined ? 1 : num(0);
        for (let i = 0; i < count; i++) for (const id of this.cluster.ids) if (this.cluster.node(id).raft !== null) this.cluster.tick(id);
        return [];
      }
      case 'run': {
        // Routine heartbeats would drown the story; they are counted, not listed.
        this.cluster.run(num(0));
        const all = this.cluster.takeTranscript();
        const shown = all.filter((l) => !/^(  \(dropped\) )?heartbeat(Resp)? \S+ t\d+( commit=\d+)?$/.test(l));
        const hidden = all.length - shown.length;
        return hidden > 0 ? [...shown, `(${hidden} plain heartbeats and replies not shown)`] : shown;
      }
      case 'process':
        this.cluster.processAll();
        return [];
      case 'deliver':
        this.cluster.processAll();
        this.cluster.deliverRound();
        return this.cluster.takeTranscript();
      case 'stabilize':
        this.cluster.stabilize();
        return this.cluster.takeTranscript();
      case 'propose': {
        const idx = this.cluster.propose(num(0), args[1] ?? 'x');
        return [idx > 0 ? `index ${idx}` : 'refused'];
      }
      case 'propose-many': {
        const id = num(0);
        const out: number[] = [];
        for (let i = 0; i < num(1); i++) out.push(this.cluster.propose(id, `c${i + 1}`));
        return [out.every((x) => x > 0) ? `indexes ${out[0]}..${out[out.length - 1]}` : `refused: ${out.join(',')}`];
      }
      case 'flush':
        this.cluster.raft(num(0)).flush();
        return [];
      case 'read':
        return [this.cluster.raft(num(0)).readIndex(num(1)) ? 'accepted' : 'refused'];
      case 'lease-read': {
        // A lease read needs no messages: its ReadState is in the very next Ready.
        const ok = this.cluster.raft(num(0)).leaseRead(num(1));
        this.cluster.process(num(0));
        return [ok ? 'served' : 'refused', ...this.cluster.takeTranscript()];
      }
      case 'lease':
        return (args.length > 0 ? args.map(Number) : this.cluster.ids).map((id) => {
          const n = this.cluster.node(id);
          if (n.raft === null) return `${id}: down`;
          const st = n.raft.status();
          const lease = st.leaseUntilTick > 0 ? `lease until tick ${st.leaseUntilTick}${st.leaseValid ? ' (valid)' : ' (not valid)'}` : 'no lease';
          return `${id}: ${roleName[st.role]} t${st.term} at tick ${st.tick}, ${lease}`;
        });
      case 'conf': {
        // conf LEADER op node [op node ...] [joint] [manual] | conf LEADER leave
        const changes: { op: ConfChangeOp; node: number }[] = [];
        let joint = false;
        let autoLeave = true;
        let leave = false;
        for (let i = 1; i < args.length; i++) {
          const a = args[i]!;
          if (a === 'joint') joint = true;
          else if (a === 'manual') autoLeave = false;
          else if (a === 'leave') leave = true;
          else changes.push({ op: a as ConfChangeOp, node: num(++i) });
        }
        const cc: ConfChange = { changes, joint, autoLeave, leave };
        const r = this.cluster.raft(num(0)).proposeConfChange(cc);
        return ['refused' in r ? `refused: ${r.refused}` : `entry ${r.index}`];
      }
      case 'members':
        return (args.length > 0 ? args.map(Number) : this.cluster.ids).map((id) => {
          const n = this.cluster.node(id);
          if (n.raft === null) return `${id}: down`;
          const st = n.raft.status();
          return `${id}: ${roleName[st.role]} t${st.term} ${describeMembership(st.membership)}@${st.membershipIndex} commit=${st.commit}`;
        });
      case 'transfer':
        return [this.cluster.raft(num(0)).transferLeadership(num(1)) ? 'accepted' : 'refused'];
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
      case 'compact':
        return [this.cluster.snapshotAndCompact(num(0), num(1))];
      case 'report-snapshot':
        this.cluster.raft(num(0)).reportSnapshot(num(1), args[2] === 'ok');
        return [];
      case 'crash-before-persist':
        this.cluster.crashBeforePersist(num(0));
        return this.cluster.takeTranscript();
      case 'restart':
        this.cluster.restart(num(0));
        return [];
      case 'drop': {
        const n = this.cluster.inflight.length;
        this.cluster.inflight = [];
        return [`dropped ${n}`];
      }
      case 'status':
        return this.cluster.statusLines();
      case 'log':
        return (args.length > 0 ? args.map(Number) : this.cluster.ids).map((id) => this.cluster.logLine(id));
      case 'applied': {
        const node = this.cluster.node(num(0));
        return [node.applied.map(formatEntry).join(', ') || '(none)'];
      }
      case 'progress': {
        const st = this.cluster.raft(num(0)).status();
        return [...st.progress].map(
          ([id, p]) => `${id}: ${p.state} match=${p.match} next=${p.next} inflight=${p.inflight}${p.pendingSnapshot > 0 ? ` snapshot=${p.pendingSnapshot}` : ''}${p.paused ? ' paused' : ''}`,
        );
      }
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
