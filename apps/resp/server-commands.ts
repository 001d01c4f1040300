// The connection and server commands a Redis client expects to find: PING, ECHO, QUIT, SELECT,
// AUTH, HELLO, CLIENT (names, ids, info, and READMODE, concur's per-connection read path),
// COMMAND (what redis-cli and ioredis ask at start), CONFIG GET, INFO; MULTI and its family are
// refused with a reason. Must never touch the store except through the door's reads.
import { parseInt64 } from '../kv/commands.ts';
import { decodeCountAnswer } from '../kv/queries.ts';
import { ConflictError, type ReadMode, readModes } from '../http/backend.ts';
import { type CommandSpec, word } from './commands.ts';
import type { Client, KvDoor } from './door.ts';
import { notInteger, RespError, syntaxError, wrongArity } from './errors.ts';
import { globMatcher } from './glob.ts';
import { clientLine, infoText, redisVersion, sectionsAsked } from './info.ts';
import { array, bulk, bulkOrNil, integer, map, nil, ok, pong, type Protocol, simple } from './reply.ts';

const connFlags = ['fast', 'loading', 'stale'] as const;

const ping: CommandSpec = {
  name: 'ping', arity: -1, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'Answers PONG, or the message given.',
  run(args) {
    if (args.length > 2) throw wrongArity('ping');
    return args.length === 2 ? bulk(args[1]!) : pong;
  },
};

const echo: CommandSpec = {
  name: 'echo', arity: 2, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'Answers the message given.',
  run: (args) => bulk(args[1]!),
};

const quit: CommandSpec = {
  name: 'quit', arity: -1, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'Closes the connection once earlier commands are answered.',
  run(_args, client) {
    client.quitAfterAnswer();
    return ok;
  },
};

const select: CommandSpec = {
  name: 'select', arity: 2, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'Selects database 0, the only one.',
  run(args) {
    const n = parseInt64(args[1]!);
    if (n === null) throw notInteger();
    if (n !== 0n) throw new RespError('ERR DB index is out of range (concur has one database, 0)');
    return ok;
  },
};

// Redis with no password set: AUTH <password> is an error, AUTH default <any> succeeds.
function authenticate(user: string | null): void {
  if (user === null) throw new RespError('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  if (user !== 'default') throw new RespError('WRONGPASS invalid username-password pair or user is disabled.');
}

const auth: CommandSpec = {
  name: 'auth', arity: -2, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'concur has no users: AUTH default <any password> succeeds, anything else is refused.',
  run(args) {
    if (args.length > 3) throw syntaxError();
    authenticate(args.length === 3 ? args[1]!.toString('utf8') : null);
    return ok;
  },
};

function clientNameProblem(name: string): boolean {
  return !/^[!-~]*$/.test(name);
}

const hello: CommandSpec = {
  name: 'hello', arity: -1, flags: connFlags, keys: [0, 0, 0], group: 'connection', summary: 'Chooses RESP2 or RESP3 and answers what this server is.',
  run(args, client) {
    let proto: Protocol = client.proto;
    if (args.length >= 2) {
      const n = parseInt64(args[1]!);
      if (n === null) throw new RespError('ERR Protocol version is not an integer or out of range');
      if (n !== 2n && n !== 3n) throw new RespError('NOPROTO unsupported protocol version');
      proto = Number(n) as Protocol;
    }
    let name: string | null = null;
    for (let i = 2; i < args.length; i++) {
      const opt = word(args[i]!);
      if (opt === 'auth' && i + 2 < args.length) {
        authenticate(args[i + 1]!.toString('utf8'));
        i += 2;
      } else if (opt === 'setname' && i + 1 < args.length) {
        name = args[++i]!.toString('utf8');
        if (clientNameProblem(name)) throw new RespError('ERR Client names cannot contain spaces, newlines or special characters.');
      } else throw new RespError(`ERR Syntax error in HELLO option '${args[i]!.toString('utf8')}'`);
    }
    client.proto = proto;
    if (name !== null) client.name = name;
    return map([
      ['server', bulk('redis')],
      ['version', bulk(redisVersion)],
      ['proto', integer(proto)],
      ['id', integer(client.id)],
      ['mode', bulk('standalone')],
      ['role', bulk('master')],
      ['modules', array([])],
    ], proto);
  },
};

function readModeCommand(args: Buffer[], client: Client, door: KvDoor) {
  if (args.length === 2) return bulk(client.readMode);
  if (args.length !== 3) throw syntaxError();
  const mode = word(args[2]!);
  if (!(readModes as readonly string[]).includes(mode)) throw new RespError(`ERR unknown read mode '${args[2]!.toString('utf8')}'; use one of ${readModes.join(', ')}`);
  const before = client.readMode;
  // At once, so the commands sent right behind this one already read this way.
  client.readMode = mode as ReadMode;
  if (mode === 'log') return ok;
  return {
    kind: 'read' as const,
    async run(deadlineAtMs: number) {
      // One read by the new path tells whether this cluster serves it at all (a Multi-Paxos leader
      // holds no lease); a cluster merely without a leader now does not make the mode wrong.
      try {
        decodeCountAnswer(await door.query({ q: 'dbsize' }, mode as ReadMode, deadlineAtMs));
      } catch (err) {
        if (err instanceof ConflictError) {
          if (client.readMode === mode) client.readMode = before;
          throw err;
        }
      }
      return ok;
    },
  };
}

const clientHelp = [
  'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'ID', '    Return the ID of the current connection.',
  'GETNAME', '    Return the name of the current connection.',
  'SETNAME <name>', '    Assign the name <name> to the current connection.',
  'INFO', '    Return information about the current client connection.',
  'LIST', '    Return information about client connections.',
  'SETINFO <LIB-NAME|LIB-VER> <value>', '    Record the library name or version of the client.',
  'READMODE [log|index|lease|follower|stale]', '    concur: the read path of this connection (default index, linearizable); without an argument, the current one.',
  'HELP', '    Print this help.',
];

const client: CommandSpec = {
  name: 'client', arity: -2, flags: ['loading', 'stale'], keys: [0, 0, 0], group: 'connection', summary: 'Connection names, ids, info, and READMODE (the read path of this connection).',
  run(args, c, door) {
    const sub = word(args[1]!);
    switch (sub) {
      case 'id':
        return integer(c.id);
      case 'getname':
        return bulkOrNil(c.name === '' ? null : c.name, c.proto);
      case 'setname': {
        if (args.length !== 3) throw wrongArity('client|setname');
        const name = args[2]!.toString('utf8');
        if (clientNameProblem(name)) throw new RespError('ERR Client names cannot contain spaces, newlines or special characters.');
        c.name = name;
        return ok;
      }
      case 'setinfo': {
        if (args.length !== 4) throw wrongArity('client|setinfo');
        const attr = word(args[2]!);
        const value = args[3]!.toString('utf8');
        if (clientNameProblem(value)) throw new RespError(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
        if (attr === 'lib-name') c.libName = value;
        else if (attr === 'lib-ver') c.libVer = value;
        else throw new RespError(`ERR Unrecognized option '${args[2]!.toString('utf8')}'`);
        return ok;
      }
      case 'info':
        return bulk(`${clientLine(c, Date.now())}\n`);
      case 'list': {
        const now = Date.now();
        return bulk([...door.clients].map((x) => `${clientLine(x, now)}\n`).join(''));
      }
      case 'no-evict':
      case 'no-touch':
        // Nothing is evicted and no access time is kept: on and off both hold already.
        if (args.length !== 3 || !['on', 'off'].includes(word(args[2]!))) throw syntaxError();
        return ok;
      case 'readmode':
        return readModeCommand(args, c, door);
      case 'help':
        return array(clientHelp.map((l) => simple(l)));
      default:
        throw new RespError(`ERR unknown subcommand '${args[1]!.toString('utf8')}'. Try CLIENT HELP.`);
    }
  },
};

const noTransactions = 'concur has no transactions; MSET writes several keys in one log entry, and each command is linearizable on its own';

// A client that sends MULTI queues its transaction right behind it without waiting for the
// answer. Those commands must not run one by one as if nothing happened: until EXEC or DISCARD
// they are refused too (see RespConnection), and EXEC answers EXECABORT.
const multi: CommandSpec = {
  name: 'multi', arity: 1, flags: ['loading', 'stale', 'fast'], keys: [0, 0, 0], group: 'transactions', summary: 'Refused: concur has no transactions (MSET writes several keys at once).',
  run(_args, client) {
    client.refusingTransaction = true;
    throw new RespError(`ERR MULTI is not supported: ${noTransactions}`);
  },
};

const exec: CommandSpec = {
  name: 'exec', arity: 1, flags: ['loading', 'stale'], keys: [0, 0, 0], group: 'transactions', summary: 'Refused: concur has no transactions.',
  run(_args, client) {
    if (!client.refusingTransaction) throw new RespError('ERR EXEC without MULTI');
    client.refusingTransaction = false;
    throw new RespError(`EXECABORT Transaction discarded: MULTI is not supported (${noTransactions}); none of its commands ran`);
  },
};

const discard: CommandSpec = {
  name: 'discard', arity: 1, flags: ['loading', 'stale', 'fast'], keys: [0, 0, 0], group: 'transactions', summary: 'Leaves a refused MULTI.',
  run(_args, client) {
    if (!client.refusingTransaction) throw new RespError('ERR DISCARD without MULTI');
    client.refusingTransaction = false;
    return ok;
  },
};

const watchRefusal = (name: string): CommandSpec => ({
  name, arity: name === 'watch' ? -2 : 1, flags: ['loading', 'stale', 'fast'], keys: [0, 0, 0], group: 'transactions', summary: 'Refused: concur has no transactions.',
  run() {
    throw new RespError(`ERR ${name.toUpperCase()} is not supported: ${noTransactions}`);
  },
});

const info: CommandSpec = {
  name: 'info', arity: -1, flags: ['loading', 'stale'], keys: [0, 0, 0], group: 'server', summary: 'Server, client and cluster state: role, leader, term, commit index, nodes.',
  run(args, _client, door) {
    const sections = sectionsAsked(args.slice(1).map(word));
    if (!sections.includes('keyspace')) return bulk(infoText(door, sections, null));
    return {
      kind: 'read',
      async run(deadlineAtMs) {
        let keys: number | null = null;
        try {
          // Any node's count as it has applied: INFO must answer even without a leader.
          keys = decodeCountAnswer(await door.query({ q: 'dbsize' }, 'stale', Math.min(deadlineAtMs, Date.now() + 1_000)));
        } catch {
          // No keyspace line then.
        }
        return bulk(infoText(door, sections, keys));
      },
    };
  },
};

function configValues(door: KvDoor): Array<[string, string]> {
  const s = door.settings;
  return [
    ['appendonly', 'no'],
    ['save', ''],
    ['databases', '1'],
    ['maxclients', String(s.connectionsMax)],
    ['proto-max-bulk-len', String(s.requestBytesMax)],
    ['timeout', '0'],
  ];
}

const config: CommandSpec = {
  name: 'config', arity: -2, flags: ['loading', 'stale'], keys: [0, 0, 0], group: 'server', summary: 'CONFIG GET answers a few Redis parameters; concur is configured by the flags of concur start.',
  run(args, c, door) {
    const sub = word(args[1]!);
    if (sub !== 'get') throw new RespError(`ERR CONFIG ${args[1]!.toString('utf8').toUpperCase()} is not supported: concur is configured by the flags of concur start`);
    if (args.length < 3) throw wrongArity('config|get');
    const matchers = args.slice(2).map((a) => globMatcher(word(a)));
    const pairs = configValues(door).filter(([name]) => matchers.some((m) => m === null || m(name)));
    return map(pairs.map(([k, v]) => [k, bulk(v)] as const), c.proto);
  },
};

/** COMMAND and its subcommands, over the table it is given. */
function commandCommand(all: () => readonly CommandSpec[]): CommandSpec {
  const entry = (s: CommandSpec) =>
    array([bulk(s.name), integer(s.arity), array(s.flags.map((f) => simple(f))), integer(s.keys[0]), integer(s.keys[1]), integer(s.keys[2]), array([]), array([]), array([]), array([])]);
  const docs = (s: CommandSpec, proto: Protocol) =>
    map([['summary', bulk(s.summary)], ['since', bulk('concur 0.1.0')], ['group', bulk(s.group)], ['complexity', bulk('O(1) per key, plus a trip through the cluster')]], proto);
  const named = (args: Buffer[]) => args.slice(2).map(word);
  return {
    name: 'command', arity: -1, flags: ['loading', 'stale'], keys: [0, 0, 0], group: 'server', summary: 'What the commands of this server are (COUNT, DOCS, INFO, LIST).',
    run(args, c) {
      const specs = all();
      if (args.length === 1) return array(specs.map(entry));
      const sub = word(args[1]!);
      switch (sub) {
        case 'count':
          return integer(specs.length);
        case 'list':
          return array(specs.map((s) => bulk(s.name)));
        case 'info': {
          const names = named(args);
          if (names.length === 0) return array(specs.map(entry));
          return array(names.map((n) => {
            const s = specs.find((x) => x.name === n);
            return s === undefined ? nil(c.proto) : entry(s);
          }));
        }
        case 'docs': {
          const names = named(args);
          const chosen = names.length === 0 ? specs : specs.filter((s) => names.includes(s.name));
          return map(chosen.map((s) => [s.name, docs(s, c.proto)] as const), c.proto);
        }
        default:
          throw new RespError(`ERR unknown subcommand '${args[1]!.toString('utf8')}'. Try COMMAND HELP.`);
      }
    },
  };
}

export function serverCommands(all: () => readonly CommandSpec[]): CommandSpec[] {
  return [
    ping, echo, quit, select, auth, hello, client, info, config, commandCommand(all),
    multi, exec, discard, watchRefusal('watch'), watchRefusal('unwatch'),
  ];
}
