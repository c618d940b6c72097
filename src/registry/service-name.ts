import { InvalidServiceNameError } from './errors.js';

export const MAX_SERVICE_NAME_LENGTH = 128;

/**
 * Control characters, lone surrogates, invisible formatting characters and
 * line/paragraph separators: names are shown in logs, tables and CLI output,
 * where such characters hide or forge text.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cs}\p{Cf}\p{Zl}\p{Zp}]/u;

export function isValidServiceName(name: unknown, maxLength = MAX_SERVICE_NAME_LENGTH): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= maxLength && !UNPRINTABLE.test(name);
}

export function validateServiceName(name: unknown, maxLength = MAX_SERVICE_NAME_LENGTH): asserts name is string {
  if (!isValidServiceName(name, maxLength)) throw new InvalidServiceNameError(name, maxLength);
}
