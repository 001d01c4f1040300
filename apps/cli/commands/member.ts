// `concur member list|add|remove|promote` and `concur transfer`: clients of the HTTP API's
// membership endpoints of a running `concur start`. Like `concur kv`, they talk to the cluster
// over HTTP only and print one line a person can act on when the cluster says no.
import type { Command } from 'commander';
import { choiceOption, UsageError } from '../options.ts';
import { memberRoles, type ClusterStatus, type MemberRole } from '../../http/backend.ts';
import { callJson as call, runClient, withApiFlags, type ApiClientOptions } from '../http-client.ts';

export function memberList(opts: ApiClientOptions): Promise<ClusterStatus> {
  return call(opts, 'GET', 'cluster');
}

export function memberAdd(opts: ApiClientOptions, role: MemberRole): Promise<{ id: number; index: number }> {
  return call(opts, 'POST', 'cluster/members', { role });
}

export function memberRemove(opts: ApiClientOptions, id: number): Promise<{ id: number; index: number }> {
  return call(opts, 'DELETE', `cluster/members/${id}`);
}

export function memberPromote(opts: ApiClientOptions, id: number): Promise<{ id: number; index: number }> {
  return call(opts, 'POST', `cluster/members/${id}/promote`);
}

export function transferLeadership(opts: ApiClientOptions, to: number): Promise<{ leader: number; term: number }> {
  return call(opts, 'POST', 'cluster/transfer', { to });
}

/** One line per member: id, role, what its node is doing; then the change in flight, if any. */
export function formatMembers(s: ClusterStatus): string {
  const nodes = new Map(s.nodes.map((n) => [n.id, n]));
  const lines = (s.members ?? []).map((m) => {
    const n = nodes.get(m.id);
    const state = n === undefined ? 'no worker' : `${n.role}${n.up ? '' : ' (down)'}  term ${n.term}  applied ${n.appliedIndex ?? '?'}`;
    return `${String(m.id).padStart(3)}  ${m.role.padEnd(7)}  ${state}`;
  });
  for (const n of s.nodes) if (!(s.members ?? []).some((m) => m.id === n.id)) lines.push(`${String(n.id).padStart(3)}  ${'-'.padEnd(7)}  in no configuration yet (joining)`);
  const p = s.pendingChange;
  if (p) lines.push(`pending: entry ${p.index}${p.joint ? ` (joint: voters ${p.voters.join(',')} and ${p.outgoing.join(',')})` : ''}, not committed yet`);
  lines.push(`leader: ${s.leader ?? 'none'}  term ${s.term}`);
  return `${lines.join('\n')}\n`;
}

function nodeId(text: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new UsageError(`node ids are positive integers, got "${text}" (concur member list shows them).`);
  return Number(text);
}

export function registerMember(program: Command): void {
  const member = program
    .command('member')
    .description('list and change the members of the cluster of a running `concur start` (through its HTTP API)')
    .addHelpText(
      'after',
      '\nRoles: a voter votes and keeps the state machine; a learner receives the log but votes in nothing (promote it once\n' +
        'it has caught up); a witness votes and holds the log but keeps no state machine and serves no reads.\n' +
        'Exit codes: 0 ok, 1 refused (unknown node, a change already pending, a learner behind, the last voter, the node limit),\n' +
        '2 bad usage, 3 request failed (unreachable, no leader, deadline).',
    );

  withApiFlags(member.command('list'))
    .description('print every member with its role, and the change in flight')
    .option('--json', 'print GET /cluster as JSON')
    .action(
      runClient(async (flags: ApiClientOptions & { json?: boolean }) => {
        const s = await memberList(flags);
        process.stdout.write(flags.json ? `${JSON.stringify(s)}\n` : formatMembers(s));
      }),
    );

  withApiFlags(member.command('add'))
    .description('start a node with a fresh id and add it (a voter joins as a learner and is promoted once caught up)')
    .option('--role <role>', `${memberRoles.join(' | ')}`, choiceOption(memberRoles), 'voter' as MemberRole)
    .action(
      runClient(async (flags: ApiClientOptions & { role: MemberRole }) => {
        const { id, index } = await memberAdd(flags, flags.role);
        process.stdout.write(`added node ${id} as ${flags.role === 'voter' ? 'a voter' : `a ${flags.role}`} (entry ${index})\n`);
      }),
    );

  withApiFlags(member.command('remove <id>'))
    .description('remove a member; its worker stops once the change commits (removing the leader hands leadership over)')
    .action(
      runClient(async (id: string, flags: ApiClientOptions) => {
        const r = await memberRemove(flags, nodeId(id));
        process.stdout.write(`removed node ${r.id} (entry ${r.index})\n`);
      }),
    );

  withApiFlags(member.command('promote <id>'))
    .description('turn a caught-up learner into a voter')
    .action(
      runClient(async (id: string, flags: ApiClientOptions) => {
        const r = await memberPromote(flags, nodeId(id));
        process.stdout.write(`promoted node ${r.id} to voter (entry ${r.index})\n`);
      }),
    );

  withApiFlags(program.command('transfer <id>'))
    .description('move leadership to a full voter; answers once it leads')
    .addHelpText('after', '\nExit codes: 0 ok, 1 refused (unknown node, not a full voter), 2 bad usage, 3 request failed (unreachable, no leader, deadline).')
    .action(
      runClient(async (id: string, flags: ApiClientOptions) => {
        const r = await transferLeadership(flags, nodeId(id));
        process.stdout.write(`node ${r.leader} leads (term ${r.term})\n`);
      }),
    );
}
