/**
 * The one validator of options: every module checks the options it is
 * given through it, so a bad value fails the same way everywhere, with a
 * ConfigError that names the module's option, what it accepts and what it
 * got.
 */
import { ConfigError } from './errors.js';

/** An integer in `min..max` (inclusive). */
export function intOption(what: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`;
    throw new ConfigError(`${what} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

/** A finite number in `min..max`, or above `min` when `exclusiveMin` (a duration that may not be 0). */
export function numberOption(what: string, value: number, min: number, options: { max?: number; exclusiveMin?: boolean } = {}): number {
  const max = options.max ?? Number.MAX_VALUE;
  const low = options.exclusiveMin ? value > min : value >= min;
  if (typeof value !== 'number' || !Number.isFinite(value) || !low || value > max) {
    const lower = options.exclusiveMin ? `> ${min}` : `≥ ${min}`;
    throw new ConfigError(`${what} must be a number ${lower}${options.max !== undefined ? ` and ≤ ${max}` : ''}, got ${String(value)}`);
  }
  return value;
}

/** One of `allowed`. */
export function oneOfOption<T>(what: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw new ConfigError(`${what} must be one of ${allowed.join(', ')}, got ${String(value)}`);
  return value;
}
