// A Raft node as an actor: hosts the pure core on its worker, drives ticks from a real timer,
// persists each Ready batch before sending what promises durability, applies committed entries
// to the app's state machine and answers the supervisor's client requests.
// It must never send an ack or vote before the state it promises is synced (per fsync policy).
import type { Actor, ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { supervisorId } from '../../runtime/actor.ts';
import { createRng, mixSeed } from '../../runtime/rng.ts';
import { openStorage, type FsyncPolicy } from '../../runtime/storage/index.ts';
import { EntryKind, RaftNode, roleName, type Message, type RaftSettings, type Ready } from '../../protocols/raft/index.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import { DurableLog } from './log-store.ts';
import type { FromNode, ToNode } from './protocol.ts';

export interface NodeConfig {
  /** Length of one Raft tick in milliseconds; election and heartbeat settings are in ticks. */
  tickMs: number;
  raft: Partial<RaftSettings>;
  storage: 'wal' | 'memory';
  fsync: FsyncPolicy;
  /** Status reports to the supervisor are sent at most this often (role changes go at once). */
  statusEveryMs: number;
  seed: number;
}

const statusRefreshMs = 1_000;

interface Pending {
  id: number;
  term: number;
}

const createNode: ActorFactory = (ctx: ActorContext): Actor => {
  const cfg = ctx.config as unknown as NodeConfig;
  if (cfg.storage === 'wal' && ctx.storage.dir === null) throw new Error(`node ${ctx.self}: WAL storage needs a data directory`);
  const store = cfg.storage === 'wal' ? openStorage({ kind: 'wal', dir: ctx.storage.dir!, fsync: cfg.fsync }) : openStorage({ kind: 'memory', fsync: cfg.fsync });
  const recovered = store.load();
  ctx.emit({ type: 'recovered', summary: recovered.report.summary, entries: recovered.report.entriesRecovered, dropped: recovered.report.dropped });
  const log = new DurableLog(store, recovered);
  const raft = new RaftNode({
    ...cfg.raft,
    id: ctx.self,
    voters: [ctx.self, ...ctx.peers].sort((a, b) => a - b),
    storage: log,
    rng: createRng(mixSeed(cfg.seed, ctx.self, ctx.incarnation)),
    applied: 0,
  });
  const app = new KvStateMachine();
  const pending = new Map<number, Pending>();
  let lastStatus = '';
  let lastStatusAt = -Infinity;
  let stopped = false;

  const reply = (m: FromNode) => ctx.send(supervisorId, m);

  function sendAll(msgs: readonly Message[]): void {
    for (const m of msgs) ctx.send(m.to, m);
  }

  function apply(rd: Ready): void {
    for (const e of rd.committedEntries) {
      const result = e.kind === EntryKind.normal ? app.apply(e.index, e.data) : null;
      const p = pending.get(e.index);
      if (p === undefined) continue;
      pending.delete(e.index);
      if (p.term !== e.term) reply({ t: 'dropped', id: p.id, why: `entry ${e.index} was replaced by a newer leader's entry (term ${e.term})` });
      else reply({ t: 'applied', id: p.id, index: e.index, result: result ?? new Uint8Array(0) });
    }
  }

  function reportStatus(force: boolean): void {
    const st = raft.status();
    const key = `${st.role}:${st.term}:${st.leader}:${st.commit}:${st.lastIndex}`;
    const now = ctx.now();
    // Unchanged status is still repeated now and then, so a supervisor that missed a report
    // (it restarted its view, or the frame was dropped) converges.
    if (key === lastStatus && now - lastStatusAt < statusRefreshMs) return;
    if (!force && now - lastStatusAt < cfg.statusEveryMs) return;
    lastStatus = key;
    lastStatusAt = now;
    reply({ t: 'status', role: st.role, term: st.term, leader: st.leader, commit: st.commit, lastIndex: st.lastIndex, applied: st.applied });
  }

  /** Drains every Ready: the one place where the durability order is kept. */
  function process(): void {
    raft.flush();
    while (raft.hasReady()) {
      const rd = raft.ready();
      // Leader appends and heartbeats go first: followers write in parallel with our own disk.
      sendAll(rd.messages);
      log.write(rd.entries, rd.hardState);
      if (rd.mustSync) log.sync();
      sendAll(rd.messagesAfterPersist);
      apply(rd);
      if (rd.softState) {
        ctx.emit({ type: 'role', role: roleName[rd.softState.role], term: rd.softState.term, leader: rd.softState.leader });
        reportStatus(true);
      }
      raft.advance(rd);
    }
    reportStatus(false);
  }

  function tick(): void {
    if (stopped) return;
    raft.tick();
    process();
    ctx.setTimer(cfg.tickMs, tick);
  }
  ctx.setTimer(cfg.tickMs, tick);

  function onClientRequest(m: ToNode): void {
    if (m.t !== 'propose') throw new Error(`node ${ctx.self}: unknown request ${JSON.stringify((m as { t: unknown }).t)} from the supervisor`);
    const index = raft.propose(m.data);
    if (index === 0) {
      reply({ t: 'redirect', id: m.id, leader: raft.softState.leader === ctx.self ? 0 : raft.softState.leader });
      return;
    }
    pending.set(index, { id: m.id, term: raft.softState.term });
  }

  return {
    receive(from, message) {
      if (from === supervisorId) onClientRequest(message as ToNode);
      else raft.step(message as Message);
    },
    idle() {
      process();
    },
    stop() {
      stopped = true;
      log.close();
    },
    control: {
      status: () => {
        const st = raft.status();
        return { ...st, roleName: roleName[st.role], progress: Object.fromEntries(st.progress), pending: pending.size };
      },
      campaign: () => {
        raft.campaign();
        process();
      },
      transferLeadership: (to: number) => {
        const ok = raft.transferLeadership(to);
        process();
        return ok;
      },
      read: (key: string) => app.readLocal(key),
    },
  };
};

export default createNode;
