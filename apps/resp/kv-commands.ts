// The Redis commands over concur's KV store: strings (GET, SET with NX/XX/GET, SETNX, GETSET,
// MGET, MSET, INCR and friends), keys (DEL, UNLINK, EXISTS, TYPE, SCAN, DBSIZE). Writes are log
// commands under the connection's session; reads take the connection's read path. Must never
// answer from anything but the backend's answers.
import { int64Min, type KvResult, parseInt64 } from '../kv/commands.ts';
import { decodeCountAnswer, decodeMgetAnswer, decodeScanAnswer, scanCountMax } from '../kv/queries.ts';
import { type CommandSpec, keyArg, valueArg, word } from './commands.ts';
import type { Client, Job, KvDoor } from './door.ts';
import { fromKvResult, notInteger, RespError, syntaxError, wrongArity } from './errors.ts';
import { globMatcher, literalPrefix } from './glob.ts';
import { array, bulk, bulkOrNil, integer, nil, ok, simple } from './reply.ts';

const readFlags = ['readonly', 'fast'] as const;
const writeFlags = ['write', 'denyoom'] as const;

function expect<T extends KvResult['type']>(r: KvResult, type: T, command: string): Extract<KvResult, { type: T }> {
  if (r.type !== type) throw fromKvResult(r, command);
  return r as Extract<KvResult, { type: T }>;
}

function read(run: (deadlineAtMs: number) => Promise<Buffer>): Job {
  return { kind: 'read', run };
}

function keysOf(args: Buffer[], from: number, door: KvDoor): string[] {
  const keys: string[] = [];
  for (let i = from; i < args.length; i++) keys.push(keyArg(args[i]!, door));
  return keys;
}

/** The increment argument of INCRBY/DECRBY: a base-10 signed 64-bit integer, as Redis reads it. */
function deltaArg(arg: Buffer): bigint {
  const n = parseInt64(arg);
  if (n === null) throw notInteger();
  return n;
}

function incrBy(client: Client, door: KvDoor, key: string, delta: bigint, command: string): Job {
  return door.write(client, { op: 'incr-by', key, delta }, (r) => integer(expect(r, 'integer', command).value));
}

/** MGET through the log: one get each (each linearizable; as a set, not one point of the log). */
async function logValues(client: Client, door: KvDoor, keys: string[], deadlineAtMs: number): Promise<(Uint8Array | null)[]> {
  return Promise.all(keys.map((k) => door.readKey(client, k, 'log', deadlineAtMs)));
}

const get: CommandSpec = {
  name: 'get', arity: 2, flags: readFlags, keys: [1, 1, 1], group: 'string', summary: 'Returns the string value of a key.',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    const { readMode, proto } = client;
    return door.get(key, readMode, proto) ?? read(async (d) => bulkOrNil(await door.readKey(client, key, readMode, d), proto));
  },
};

const set: CommandSpec = {
  name: 'set', arity: -3, flags: writeFlags, keys: [1, 1, 1], group: 'string', summary: 'Sets the string value of a key (NX, XX and GET; concur keeps no expiry, so EX, PX, EXAT and PXAT are refused).',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    const value = valueArg(args[2]!, door);
    let condition: 'nx' | 'xx' | null = null;
    let returnPrevious = false;
    for (let i = 3; i < args.length; i++) {
      const opt = word(args[i]!);
      if ((opt === 'nx' || opt === 'xx') && condition === null) condition = opt;
      else if (opt === 'get' && !returnPrevious) returnPrevious = true;
      else if (opt === 'keepttl') continue; // nothing has a TTL, so keeping it changes nothing
      else if (opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') {
        throw new RespError(`ERR SET ${opt.toUpperCase()} is not supported: concur's KV store keeps no expiry (TTL) on keys`);
      } else throw syntaxError();
    }
    const proto = client.proto;
    if (condition === null && !returnPrevious) return door.put(client, key, value);
    return door.write(client, { op: 'put-if', key, value, condition, returnPrevious }, (r) => {
      if (r.type === 'condition-failed') return returnPrevious ? bulkOrNil(r.previous, proto) : nil(proto);
      if (r.type === 'swapped') return bulkOrNil(r.previous, proto);
      return (expect(r, 'written', 'set'), ok);
    });
  },
};

const setnx: CommandSpec = {
  name: 'setnx', arity: 3, flags: [...writeFlags, 'fast'], keys: [1, 1, 1], group: 'string', summary: 'Sets the value of a key only when the key does not exist (1: set, 0: not).',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    return door.write(client, { op: 'put-if', key, value: valueArg(args[2]!, door), condition: 'nx', returnPrevious: false }, (r) =>
      r.type === 'condition-failed' ? integer(0) : (expect(r, 'written', 'setnx'), integer(1)),
    );
  },
};

const getset: CommandSpec = {
  name: 'getset', arity: 3, flags: writeFlags, keys: [1, 1, 1], group: 'string', summary: 'Sets the value of a key and returns the previous value.',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    const proto = client.proto;
    return door.write(client, { op: 'put-if', key, value: valueArg(args[2]!, door), condition: null, returnPrevious: true }, (r) => bulkOrNil(expect(r, 'swapped', 'getset').previous, proto));
  },
};

const mget: CommandSpec = {
  name: 'mget', arity: -2, flags: readFlags, keys: [1, -1, 1], group: 'string', summary: 'Returns the values of several keys, all as of one log index.',
  run(args, client, door) {
    const keys = keysOf(args, 1, door);
    const { readMode, proto } = client;
    return read(async (d) => {
      let values: (Uint8Array | null)[];
      if (readMode === 'log') {
        values = await logValues(client, door, keys, d);
      } else {
        const answer = decodeMgetAnswer(await door.query({ q: 'mget', keys }, readMode, d));
        if ('tooLargeBytes' in answer) {
          throw new RespError(`ERR MGET would answer ${answer.tooLargeBytes} bytes of values; the limit is ${door.settings.valueBytesMax} (what one value may be): ask for fewer keys`);
        }
        values = answer.values;
      }
      return array(values.map((v) => bulkOrNil(v, proto)));
    });
  },
};

const mset: CommandSpec = {
  name: 'mset', arity: -3, flags: writeFlags, keys: [1, -1, 2], group: 'string', summary: 'Sets several keys in one log entry: all or none.',
  run(args, client, door) {
    if ((args.length - 1) % 2 !== 0) throw wrongArity('mset');
    const entries: Array<[string, Uint8Array]> = [];
    for (let i = 1; i < args.length; i += 2) entries.push([keyArg(args[i]!, door), valueArg(args[i + 1]!, door)]);
    return door.write(client, { op: 'mput', entries }, (r) => (expect(r, 'written', 'mset'), ok));
  },
};

const incr: CommandSpec = {
  name: 'incr', arity: 2, flags: [...writeFlags, 'fast'], keys: [1, 1, 1], group: 'string', summary: 'Adds 1 to the integer value of a key (absent: 0).',
  run: (args, client, door) => incrBy(client, door, keyArg(args[1]!, door), 1n, 'incr'),
};

const decr: CommandSpec = {
  name: 'decr', arity: 2, flags: [...writeFlags, 'fast'], keys: [1, 1, 1], group: 'string', summary: 'Subtracts 1 from the integer value of a key (absent: 0).',
  run: (args, client, door) => incrBy(client, door, keyArg(args[1]!, door), -1n, 'decr'),
};

const incrby: CommandSpec = {
  name: 'incrby', arity: 3, flags: [...writeFlags, 'fast'], keys: [1, 1, 1], group: 'string', summary: 'Adds a number to the integer value of a key (absent: 0).',
  run: (args, client, door) => incrBy(client, door, keyArg(args[1]!, door), deltaArg(args[2]!), 'incrby'),
};

const decrby: CommandSpec = {
  name: 'decrby', arity: 3, flags: [...writeFlags, 'fast'], keys: [1, 1, 1], group: 'string', summary: 'Subtracts a number from the integer value of a key (absent: 0).',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    const delta = deltaArg(args[2]!);
    if (delta === int64Min) throw new RespError('ERR decrement would overflow');
    return incrBy(client, door, key, -delta, 'decrby');
  },
};

function del(name: string): CommandSpec {
  return {
    name, arity: -2, flags: ['write'], keys: [1, -1, 1], group: 'generic', summary: 'Deletes keys in one log entry; answers how many existed.',
    run(args, client, door) {
      return door.write(client, { op: 'mdelete', keys: keysOf(args, 1, door) }, (r) => integer(expect(r, 'deleted-count', name).count));
    },
  };
}

const exists: CommandSpec = {
  name: 'exists', arity: -2, flags: readFlags, keys: [1, -1, 1], group: 'generic', summary: 'How many of the keys exist (a key named twice counts twice).',
  run(args, client, door) {
    const keys = keysOf(args, 1, door);
    const readMode = client.readMode;
    return read(async (d) => {
      if (readMode === 'log') return integer((await logValues(client, door, keys, d)).filter((v) => v !== null).length);
      return integer(decodeCountAnswer(await door.query({ q: 'exists', keys }, readMode, d)));
    });
  },
};

const type: CommandSpec = {
  name: 'type', arity: 2, flags: readFlags, keys: [1, 1, 1], group: 'generic', summary: 'The type of a key: string, or none when absent.',
  run(args, client, door) {
    const key = keyArg(args[1]!, door);
    const readMode = client.readMode;
    return read(async (d) => simple((await door.readKey(client, key, readMode, d)) === null ? 'none' : 'string'));
  },
};

const dbsize: CommandSpec = {
  name: 'dbsize', arity: 1, flags: readFlags, keys: [0, 0, 0], group: 'server', summary: 'The number of keys.',
  run(_args, client, door) {
    const readMode = client.readMode;
    return read(async (d) => integer(decodeCountAnswer(await door.query({ q: 'dbsize' }, readMode, d))));
  },
};

const scanCountDefault = 10;

const scan: CommandSpec = {
  name: 'scan', arity: -2, flags: ['readonly'], keys: [0, 0, 0], group: 'generic', summary: 'Iterates over the keys in key order (cursor, MATCH, COUNT, TYPE).',
  run(args, client, door) {
    const after = door.cursors.resume(args[1]!.toString('latin1'));
    if (after === undefined) throw new RespError('ERR invalid cursor');
    let pattern = '*';
    let count = scanCountDefault;
    let typeWanted: string | null = null;
    for (let i = 2; i < args.length; i += 2) {
      const opt = word(args[i]!);
      const v = args[i + 1];
      if (v === undefined) throw syntaxError();
      if (opt === 'match') pattern = v.toString('utf8');
      else if (opt === 'count') {
        const n = parseInt64(v);
        if (n === null) throw notInteger();
        if (n < 1n) throw syntaxError();
        count = Number(n > BigInt(scanCountMax) ? scanCountMax : n);
      } else if (opt === 'type') typeWanted = word(v);
      else throw syntaxError();
    }
    const match = globMatcher(pattern);
    const prefix = literalPrefix(pattern);
    const readMode = client.readMode;
    return read(async (d) => {
      const answer = decodeScanAnswer(await door.query({ q: 'scan', after, prefix, count }, readMode, d));
      // Every key is a string: TYPE string filters nothing, any other type everything.
      const keys = typeWanted !== null && typeWanted !== 'string' ? [] : match === null ? answer.keys : answer.keys.filter(match);
      const cursor = answer.last === null ? '0' : door.cursors.save(answer.last);
      return array([bulk(cursor), array(keys.map((k) => bulk(k)))]);
    });
  },
};

export const kvCommands: readonly CommandSpec[] = [get, set, setnx, getset, mget, mset, incr, decr, incrby, decrby, del('del'), del('unlink'), exists, type, dbsize, scan];
