/** Where a secured realm's revocation list lives in the DHT, and how its record value is read. */
import { dhtKey } from '../dht/key.js';
import { decodeBody } from '../wire/codec.js';
import { isPlainMap } from '../wire/schema.js';

export function revocationsKey(realm: string): Uint8Array {
  return dhtKey(`auth/${realm}`, 'revocations');
}

/** The list token in a revocations record value, or undefined. */
export function revocationsToken(value: Uint8Array): unknown {
  try {
    const v = decodeBody(value);
    return isPlainMap(v) ? v.rl : undefined;
  } catch {
    return undefined;
  }
}
