// The Redis door's command table: what each command is called, its arity (Redis's convention:
// n exact, -n at least n, the name included), what COMMAND tells clients about it, and the
// function that answers it. Must never hold a command's logic (see kv-commands.ts and
// server-commands.ts): only the lookup.
import { isUtf8 } from 'node:buffer';
import type { Client, Job, KvDoor } from './door.ts';
import { RespError } from './errors.ts';

export interface CommandSpec {
  /** Lower case, as COMMAND lists it. */
  readonly name: string;
  readonly arity: number;
  /** Redis's command flags (COMMAND INFO), e.g. write, readonly, fast. */
  readonly flags: readonly string[];
  /** The first and last key argument and the step between keys (0, 0, 0: none). */
  readonly keys: readonly [number, number, number];
  readonly group: string;
  readonly summary: string;
  /**
   * Answers at once (bytes), or hands back a job the connection runs in order. Throws RespError
   * for bad arguments. Must copy what it keeps of `args`: they view the parser's buffers.
   */
  run(args: Buffer[], client: Client, door: KvDoor): Buffer | Job;
}

export type CommandTable = ReadonlyMap<string, CommandSpec>;

/** Lookup by the name as sent: lower and upper case directly, mixed case through toLowerCase. */
export function commandTable(specs: readonly CommandSpec[]): CommandTable {
  const table = new Map<string, CommandSpec>();
  for (const s of specs) {
    if (table.has(s.name)) throw new Error(`the RESP command ${s.name} is defined twice`);
    table.set(s.name, s);
    table.set(s.name.toUpperCase(), s);
  }
  return table;
}

/** A key argument as the KV's key: UTF-8 text of 1..keyBytesMax bytes. */
export function keyArg(arg: Buffer, door: KvDoor): string {
  if (arg.length === 0) throw new RespError('ERR concur keys must not be empty');
  const max = door.settings.keyBytesMax;
  if (arg.length > max) throw new RespError(`ERR the key is ${arg.length} bytes; the limit is ${max}`);
  // A lossy decode would make two different byte keys one key.
  if (!isUtf8(arg)) throw new RespError('ERR concur keys are text: this key is not valid UTF-8');
  return arg.toString('utf8');
}

/** A value argument, held to valueBytesMax. (Still a view of the parser's buffer: encode it before waiting.) */
export function valueArg(arg: Buffer, door: KvDoor): Buffer {
  const max = door.settings.valueBytesMax;
  if (arg.length > max) throw new RespError(`ERR the value is ${arg.length} bytes; the limit is ${max}`);
  return arg;
}

/** An argument compared case-insensitively with option names. */
export function word(arg: Buffer): string {
  return arg.toString('latin1').toLowerCase();
}
