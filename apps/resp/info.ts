// The text of INFO and of CLIENT INFO / CLIENT LIST, from what the door and the backend know.
// INFO speaks Redis's fields where a client looks for them (loading, role, connected_clients)
// and tells the cluster's own state in a `concur` section. Must never block: status() is local.
import { release } from 'node:os';
import type { Client, KvDoor } from './door.ts';

const concurVersion = '0.1.0';
/** The Redis version clients are told (the commands and replies follow Redis 7.0's). */
export const redisVersion = '7.0.0';

export const infoSections = ['server', 'clients', 'persistence', 'stats', 'replication', 'concur', 'keyspace'] as const;
export type InfoSection = (typeof infoSections)[number];

/** The sections INFO asks for (none, `default`, `all`, `everything`: every one), or null when one is unknown. */
export function sectionsAsked(words: readonly string[]): InfoSection[] {
  if (words.length === 0 || words.some((w) => w === 'default' || w === 'all' || w === 'everything')) return [...infoSections];
  return infoSections.filter((s) => words.includes(s));
}

export function infoText(door: KvDoor, sections: readonly InfoSection[], keyCount: number | null): string {
  const s = door.backend.status();
  const uptimeSec = Math.floor((Date.now() - door.startedAtMs) / 1000);
  const out: string[] = [];
  const section = (name: string, lines: string[]) => {
    if (out.length > 0) out.push('');
    out.push(`# ${name}`, ...lines);
  };
  for (const name of sections) {
    switch (name) {
      case 'server':
        section('Server', [
          `redis_version:${redisVersion}`,
          'redis_mode:standalone',
          `concur_version:${concurVersion}`,
          `os:${process.platform} ${release()} ${process.arch}`,
          'arch_bits:64',
          `process_id:${process.pid}`,
          `tcp_port:${door.port}`,
          `uptime_in_seconds:${uptimeSec}`,
          `uptime_in_days:${Math.floor(uptimeSec / 86400)}`,
        ]);
        break;
      case 'clients':
        section('Clients', [`connected_clients:${door.clients.size}`, `maxclients:${door.settings.connectionsMax}`]);
        break;
      case 'persistence':
        // The store is whatever the log replays: never "loading" from a client's point of view.
        section('Persistence', ['loading:0', 'async_loading:0']);
        break;
      case 'stats':
        section('Stats', [
          `total_connections_received:${door.stats.connectionsAccepted}`,
          `total_commands_processed:${door.stats.commands}`,
          `rejected_connections:${door.stats.connectionsRejected}`,
        ]);
        break;
      case 'replication':
        // To a Redis client this door is a primary: it takes writes (the cluster's leader applies them).
        section('Replication', ['role:master', 'connected_slaves:0']);
        break;
      case 'concur': {
        const up = s.nodes.filter((n) => n.up).length;
        const commit = Math.max(0, ...s.nodes.map((n) => n.commitIndex));
        section('Concur', [
          `leader:${s.leader ?? 'none'}`,
          `term:${s.term}`,
          `commit_index:${commit}`,
          `nodes:${s.nodes.length}`,
          `nodes_up:${up}`,
          ...s.nodes.map((n) =>
            `node${n.id}:role=${n.role},up=${n.up ? 1 : 0},term=${n.term},commit_index=${n.commitIndex},last_index=${n.lastIndex}${n.appliedIndex !== undefined ? `,applied_index=${n.appliedIndex}` : ''}${n.member ? `,member=${n.member}` : ''}`,
          ),
          `read_mode_default:${door.settings.readModeDefault}`,
        ]);
        break;
      }
      case 'keyspace':
        section('Keyspace', keyCount !== null && keyCount > 0 ? [`db0:keys=${keyCount},expires=0,avg_ttl=0`] : []);
        break;
    }
  }
  return `${out.join('\r\n')}\r\n`;
}

/** One line of CLIENT LIST / CLIENT INFO, in Redis's field=value form. */
export function clientLine(c: Client, nowMs: number): string {
  const age = Math.floor((nowMs - c.createdAtMs) / 1000);
  const idle = Math.floor((nowMs - c.lastCommandAtMs) / 1000);
  return `id=${c.id} addr=${c.addr} laddr=${c.laddr} name=${c.name} age=${age} idle=${idle} db=0 resp=${c.proto} lib-name=${c.libName} lib-ver=${c.libVer} pending=${c.pendingCommands} read-mode=${c.readMode}`;
}
