// Option parsers shared by every command: each rejects a bad value with a message that names
// the flag, what was given and what is accepted.
import { InvalidArgumentError } from 'commander';

/** Thrown for a bad combination of flags found after parsing; printed without a stack. */
export class UsageError extends Error {}

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
