/**
 * Byte-level helpers for 256-bit IDs. Lookups and the routing table compare
 * IDs millions of times in a large simulation, so everything here works on
 * the bytes directly: no hex strings, no bigint, no allocation per compare.
 */
import { randomBytes } from 'node:crypto';
import { ID_BITS, ID_BYTES } from './constants.js';

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function isId(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === ID_BYTES;
}

/**
 * Orders `a` and `b` by XOR distance to `target`: negative when `a` is closer,
 * 0 only when a and b are the same ID.
 */
export function compareDistance(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/**
 * The first 48 bits of the XOR distance as a number (exact: below 2^53).
 * Comparing these orders two IDs by distance unless they tie, which for
 * random IDs means a shared 48-bit prefix; callers fall back to
 * compareDistance on a tie.
 */
export function distancePrefix(id: Uint8Array, target: Uint8Array): number {
  return (
    (id[0]! ^ target[0]!) * 2 ** 40 +
    (id[1]! ^ target[1]!) * 2 ** 32 +
    (id[2]! ^ target[2]!) * 2 ** 24 +
    (id[3]! ^ target[3]!) * 2 ** 16 +
    (id[4]! ^ target[4]!) * 2 ** 8 +
    (id[5]! ^ target[5]!)
  );
}

/** The XOR distance as bytes (for tests and diagnostics; hot paths use compareDistance). */
export function xorDistance(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Number of leading bits `a` and `b` share (ID_BITS when equal). This is the bucket index. */
export function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return ID_BITS;
}

/**
 * A random ID that shares exactly `cpl` leading bits with `self`: a target
 * for a lookup that refreshes bucket `cpl`.
 */
export function randomIdWithPrefix(self: Uint8Array, cpl: number): Uint8Array {
  if (!Number.isInteger(cpl) || cpl < 0 || cpl >= ID_BITS) throw new RangeError(`bucket index ${cpl} outside 0..${ID_BITS - 1}`);
  const id = new Uint8Array(randomBytes(ID_BYTES));
  const byte = cpl >> 3;
  const bit = cpl & 7;
  for (let i = 0; i < byte; i++) id[i] = self[i]!;
  // Keep the first `bit` bits of self in this byte, flip the next one, leave the rest random.
  const keep = (0xff00 >> bit) & 0xff;
  const flip = 0x80 >> bit;
  id[byte] = (self[byte]! & keep) | (~self[byte]! & flip) | (id[byte]! & ~(keep | flip) & 0xff);
  return id;
}

/**
 * A compact Map key for an ID: one char per byte. Used off the hot path
 * (stores, ping de-duplication); lookups compare bytes instead.
 */
export function idKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}
