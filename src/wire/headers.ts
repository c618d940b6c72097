/**
 * Message headers: an optional map of string keys to string values carried
 * by publishes, RPC calls and RPC results, delivered unchanged. Bounded so
 * that a header map never costs more than a few KiB: at most 32 entries,
 * keys of 1..64 characters, values of at most 1024 characters, and keys and
 * values together at most 4 KiB of UTF-8.
 */
import { MaculaError } from '../util/errors.js';
import { f } from './schema.js';

export type Headers = Record<string, string>;

export const MAX_HEADERS = 32;
export const MAX_HEADER_KEY_CHARS = 64;
export const MAX_HEADER_VALUE_CHARS = 1024;
export const MAX_HEADER_BYTES = 4096;

/** The wire field of a header map (checked on every message that carries one). */
export const HEADERS_FIELD = f.opt(f.strmap(MAX_HEADERS, MAX_HEADER_KEY_CHARS, MAX_HEADER_VALUE_CHARS, MAX_HEADER_BYTES));

/** Headers that break a bound or are not a string → string map. */
export class InvalidHeadersError extends MaculaError {
  constructor(detail: string) {
    super(
      'MACULA_ERR_INVALID_HEADERS',
      `invalid headers: ${detail}; headers are at most ${MAX_HEADERS} entries, keys of 1..${MAX_HEADER_KEY_CHARS} characters, string values of at most ${MAX_HEADER_VALUE_CHARS} characters, ${MAX_HEADER_BYTES} bytes in all`,
    );
  }
}

/**
 * Checks headers given by a caller; returns them (undefined for none or an
 * empty map, which are not sent).
 * @throws InvalidHeadersError
 */
export function checkHeaders(headers: unknown): Headers | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (typeof headers !== 'object' || Array.isArray(headers)) throw new InvalidHeadersError('expected a map of strings');
  const keys = Object.keys(headers);
  if (keys.length === 0) return undefined;
  if (keys.length > MAX_HEADERS) throw new InvalidHeadersError(`${keys.length} entries`);
  let bytes = 0;
  for (const key of keys) {
    const value = (headers as Record<string, unknown>)[key];
    if (key.length < 1 || key.length > MAX_HEADER_KEY_CHARS) throw new InvalidHeadersError(`key ${JSON.stringify(key.slice(0, 80))} has ${key.length} characters`);
    if (typeof value !== 'string') throw new InvalidHeadersError(`the value of ${JSON.stringify(key)} is a ${typeof value}, not a string`);
    if (value.length > MAX_HEADER_VALUE_CHARS) throw new InvalidHeadersError(`the value of ${JSON.stringify(key)} has ${value.length} characters`);
    bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  if (bytes > MAX_HEADER_BYTES) throw new InvalidHeadersError(`${bytes} bytes`);
  return headers as Headers;
}
