// What `concur cluster status` prints from GET /cluster: a table of nodes (status, role, term,
// commit, applied) and the network's partition, one-way cuts and link faults. Formatting only:
// it reads an answer, never asks for one. Fields an older server leaves out are shown as such.
import type { NodeStatus } from '../http/backend.ts';

/** One link fault as GET /cluster reports it; `"*"` stands for every node. */
export interface LinkFault {
  from: number | '*';
  to: number | '*';
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  duplicate?: number;
  reorder?: number;
}

export interface NetworkStatus {
  partition: number[][] | null;
  cuts: { from: number; to: number }[];
  faults: LinkFault[];
}

/** GET /cluster, with what the fault API adds: each node's status, the last state of a down one, the network. */
export interface ClusterView {
  leader: number | null;
  term: number;
  nodes: (Omit<NodeStatus, 'role'> & { role: string; status?: 'up' | 'down' | 'paused'; last?: Partial<NodeStatus> })[];
  network?: NetworkStatus;
}

const percent = (p: number) => `${+(p * 100).toFixed(2)}%`;

/**
 * A link fault's settings in a few words: `loss 10%, delay 20 ms, jitter 0..10 ms`. `zeros`:
 * show settings that are 0 too (a change that sets them), not only those in force.
 */
export function describeLinkFault(f: Omit<LinkFault, 'from' | 'to'>, zeros = false): string {
  const shown = (v: number | undefined): v is number => v !== undefined && (zeros || v !== 0);
  const parts: string[] = [];
  if (shown(f.loss)) parts.push(`loss ${percent(f.loss)}`);
  if (shown(f.delayMs)) parts.push(`delay ${f.delayMs} ms`);
  if (shown(f.jitterMs)) parts.push(`jitter 0..${f.jitterMs} ms`);
  if (shown(f.duplicate)) parts.push(`duplicate ${percent(f.duplicate)}`);
  if (shown(f.reorder)) parts.push(`reorder ${percent(f.reorder)}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const link = (from: number | string, to: number | string) => `${from}->${to}`;

/** The network's partition, cuts and faults, one line each. */
export function formatNetwork(n: NetworkStatus | undefined): string[] {
  if (n === undefined) return ['network: not reported by this server'];
  return [
    `partition: ${n.partition === null || n.partition.length <= 1 ? 'none' : n.partition.map((g) => g.join(',')).join(' | ')}`,
    `cuts: ${n.cuts.length === 0 ? 'none' : n.cuts.map((c) => link(c.from, c.to)).join(', ')}`,
    `faults: ${n.faults.length === 0 ? 'none' : n.faults.map((f) => `${link(f.from, f.to)} ${describeLinkFault(f)}`).join('; ')}`,
  ];
}

function nodeState(n: ClusterView['nodes'][number]): 'up' | 'down' | 'paused' {
  return n.status ?? (n.up ? 'up' : 'down');
}

/** The whole status: leader and term, a table of nodes, then the network. */
export function formatClusterStatus(s: ClusterView): string {
  const rows = [['node', 'status', 'role', 'term', 'commit', 'applied']];
  for (const n of s.nodes) {
    const state = nodeState(n);
    // A down node's role is "down"; what it was when it went down is under `last`.
    const was = state === 'down' ? { ...n, ...(n.last ?? {}) } : n;
    const role = state === 'down' ? (was.role !== 'down' && was.role !== undefined ? `(was ${was.role})` : '-') : n.role;
    rows.push([String(n.id), state, role, String(was.term ?? '?'), String(was.commitIndex ?? '?'), String(was.appliedIndex ?? '-')]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => r.map((cell, c) => (c === 0 || c >= 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
  return [`leader: ${s.leader ?? 'none'}  term ${s.term}`, ...table, ...formatNetwork(s.network)].join('\n') + '\n';
}
