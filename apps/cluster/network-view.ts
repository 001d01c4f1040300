// The network as GET /cluster reports it, read back from the supervisor's fault table (so it is
// what senders see, whoever set it: the API, chaos, a test): the partition groups, the one-way
// cuts beyond them, and the links with faults. Must never change a link.
import type { LinkPolicy } from '../../runtime/faults.ts';
import { linkFaultFields, type LinkFaultSettings, type NetworkStatus } from '../http/backend.ts';

/** Describes the links between `ids` (ascending) as `policy(from, to)` reports them. */
export function networkStatus(ids: readonly number[], policy: (from: number, to: number) => LinkPolicy): NetworkStatus {
  const cut = (a: number, b: number) => policy(a, b).cut;
  // Nodes that can talk both ways fall in one group (transitively).
  const groupOf = new Map<number, number>(ids.map((id) => [id, id]));
  const find = (id: number): number => {
    let g = groupOf.get(id)!;
    while (g !== groupOf.get(g)) g = groupOf.get(g)!;
    groupOf.set(id, g);
    return g;
  };
  for (const a of ids) for (const b of ids) if (a < b && !cut(a, b) && !cut(b, a)) groupOf.set(find(a), find(b));
  const groups = new Map<number, number[]>();
  for (const id of ids) {
    const g = find(id);
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(id);
  }
  // A clean partition: every link between groups is cut both ways. Otherwise every cut is listed.
  let clean = groups.size > 1;
  for (const a of ids) for (const b of ids) if (a !== b && find(a) !== find(b) && !(cut(a, b) && cut(b, a))) clean = false;
  const cuts: { from: number; to: number }[] = [];
  for (const from of ids) for (const to of ids) if (from !== to && cut(from, to) && (!clean || find(from) === find(to))) cuts.push({ from, to });
  return { partition: clean ? [...groups.values()] : null, cuts, faults: linkFaults(ids, policy) };
}

function faultsOf(p: LinkPolicy): LinkFaultSettings {
  return { loss: p.loss, delayMs: p.delayMs, jitterMs: p.jitterMs, duplicate: p.duplicate, reorder: p.reorder };
}

const isZero = (f: LinkFaultSettings) => linkFaultFields.every((k) => f[k] === 0);
const same = (a: LinkFaultSettings, b: LinkFaultSettings) => linkFaultFields.every((k) => a[k] === b[k]);

function linkFaults(ids: readonly number[], policy: (from: number, to: number) => LinkPolicy): NetworkStatus['faults'] {
  const links: ({ from: number; to: number } & LinkFaultSettings)[] = [];
  for (const from of ids) for (const to of ids) if (from !== to) links.push({ from, to, ...faultsOf(policy(from, to)) });
  const faulty = links.filter((l) => !isZero(l));
  if (faulty.length === 0) return [];
  // Every link alike (the common "for all" setting): one line says it.
  if (faulty.length === links.length && links.every((l) => same(l, links[0]!))) return [{ from: '*', to: '*', ...faultsOf({ ...links[0]!, cut: false }) }];
  return faulty;
}
