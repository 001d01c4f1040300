// Option parsers shared by every command: each rejects a bad value with a message that names
// the flag, what was given and what is accepted.
import { InvalidArgumentError, Option } from 'commander';

/** Thrown for a bad combination of flags found after parsing; printed without a stack. */
export class UsageError extends Error {}

/** The exit code of every usage error, commander's own included: the command never ran. */
export const exitUsage = 2;

export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}".`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${n}.`);
    return n;
  };
}

export function numberOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got "${value}".`);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${n}.`);
    return n;
  };
}

/** A comma-separated list of integers, e.g. `--batch 1,8,64`. */
export function intListOption(min: number, max: number): (value: string) => number[] {
  const one = intOption(min, max);
  return (value) => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) throw new InvalidArgumentError(`expected a comma-separated list of integers from ${min} to ${max}, got "${value}".`);
    return parts.map(one);
  };
}

export function choiceOption<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${value}".`);
    return value as T;
  };
}

/** Node ids are positive integers; the cluster answers 404 for one it does not have. */
export const nodeIdMax = 999_999_999;

/** One node id, as a command argument: `concur cluster crash 2`. */
export function nodeIdArg(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`node ids are positive integers, got "${value}" (concur cluster status lists them).`);
  return Number(value);
}

/** Node ids separated by commas, e.g. `1,2`: one side of a partition or a cut; each id once. */
export function nodeIdsArg(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new InvalidArgumentError(`expected node ids separated by commas, e.g. 1,2, got "${value}".`);
  const ids = parts.map(nodeIdArg);
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError(`a node id is named twice in "${value}".`);
  return ids;
}

/** An option whose default is a list, shown in --help as one would type it (`1,8,64`), not as JSON. */
export function listOption<T>(flags: string, description: string, parse: (value: string) => T[], value: T[]): Option {
  return new Option(flags, description).argParser(parse).default(value, value.join(','));
}
