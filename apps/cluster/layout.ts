// Which nodes a cluster's data directory holds, kept in `<dataDir>/cluster.json`: the cluster's
// first configuration and every node added or removed since. A cluster started again on the
// directory runs the nodes that are still members, whatever --nodes says; without the file, a
// restart after membership changes would start the original nodes, removed or not, and none of
// the added ones. Each node's own configuration still comes from its own log and snapshot.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memberRoles, type MemberRole } from '../http/backend.ts';

export interface ClusterLayout {
  version: 1;
  /** The configuration before any entry of the log: what every node derives the rest from. */
  first: { voters: number[]; witnesses: number[] };
  /** Nodes that run, and for each added one the part it was added for. */
  nodes: { id: number; joinAs?: MemberRole }[];
  /** Ids of nodes removed for good: never used again. */
  removed: number[];
}

const fileName = 'cluster.json';

export class LayoutError extends Error {
  override name = 'LayoutError';
}

export function freshLayout(nodes: number, witnesses: readonly number[]): ClusterLayout {
  const voters = Array.from({ length: nodes }, (_, i) => i + 1);
  return { version: 1, first: { voters, witnesses: [...witnesses] }, nodes: voters.map((id) => ({ id })), removed: [] };
}

/** The layout recorded in `dir`, or null when there is none (a new directory, or one from before membership changes). */
export function readLayout(dir: string): ClusterLayout | null {
  const file = join(dir, fileName);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LayoutError(`${file} is not valid JSON (${(err as Error).message}); it lists the cluster's nodes — restore it, or move it aside to start the nodes --nodes names`);
  }
  const problem = layoutProblem(raw);
  if (problem !== null) throw new LayoutError(`${file} is damaged: ${problem}; restore it, or move it aside to start the nodes --nodes names`);
  return raw as ClusterLayout;
}

/** Replaces the layout in `dir` whole: a crash leaves the old file or the new one, never half of one. */
export function writeLayout(dir: string, layout: ClusterLayout): void {
  const file = join(dir, fileName);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(layout, null, 2)}\n`);
  renameSync(tmp, file);
}

/** The largest id the cluster ever used: a new node takes the next one. */
export function maxIdEverUsed(layout: ClusterLayout): number {
  return Math.max(0, ...layout.first.voters, ...layout.nodes.map((n) => n.id), ...layout.removed);
}

const isIdList = (v: unknown): v is number[] => Array.isArray(v) && v.every((id) => Number.isInteger(id) && id > 0);

function layoutProblem(raw: unknown): string | null {
  const o = raw as Partial<ClusterLayout> | null;
  if (typeof o !== 'object' || o === null || o.version !== 1) return 'expected { version: 1, first, nodes, removed }';
  if (typeof o.first !== 'object' || o.first === null || !isIdList(o.first.voters) || o.first.voters.length === 0 || !isIdList(o.first.witnesses)) {
    return '"first" must hold non-empty "voters" and a "witnesses" list of node ids';
  }
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) return '"nodes" must list at least one node';
  for (const n of o.nodes) {
    if (typeof n !== 'object' || n === null || !Number.isInteger(n.id) || n.id < 1) return `bad node ${JSON.stringify(n)}`;
    if (n.joinAs !== undefined && !memberRoles.includes(n.joinAs)) return `node ${n.id} has an unknown role ${JSON.stringify(n.joinAs)}`;
  }
  if (!isIdList(o.removed)) return '"removed" must be a list of node ids';
  return null;
}
