/**
 * Signed DHT records.
 *
 * A record is (key, value, publisher public key, seq, expiry) plus an Ed25519
 * signature by the publisher over this byte string (all integers big-endian):
 *
 *   "macula-record-v1" 0x00       17 bytes  domain separation
 *   key                           32 bytes
 *   publisher public key          32 bytes  raw Ed25519
 *   seq                            8 bytes  uint64
 *   expiry (unix ms)               8 bytes  uint64
 *   value length                   4 bytes  uint32
 *   value                          n bytes
 *
 * A fixed binary layout rather than CBOR: it is trivially canonical (no
 * encoder options or version can change the signed bytes) and it is built
 * without allocation beyond the output buffer.
 *
 * A record with an empty value is a tombstone: it replaces the publisher's
 * earlier record (higher seq) and is never returned to applications.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { nodeIdFromPublicKey, publicKeyObject, verifySignature, type Identity } from '../identity/identity.js';
import { isId } from './id.js';

export const RECORD_DOMAIN = 'macula-record-v1';
const DOMAIN_BYTES = Buffer.from(RECORD_DOMAIN + '\0', 'latin1');
const HEADER_BYTES = DOMAIN_BYTES.length + 32 + 32 + 8 + 8 + 4;

export interface DhtRecord {
  /** 32-byte DHT key (see dhtKey()). */
  key: Uint8Array;
  /** Application bytes (CBOR by convention); empty = tombstone. */
  value: Uint8Array;
  /** Raw 32-byte Ed25519 public key of the publisher; its node ID is SHA-256 of it. */
  publisher: Uint8Array;
  /** Publisher-chosen sequence number; a higher seq replaces a lower one. */
  seq: number;
  /** Expiry, unix ms. */
  expires: number;
  /** 64-byte Ed25519 signature over recordSigningPayload(). */
  signature: Uint8Array;
}

/** Wire form (see messages.ts `recordField`). */
export interface WireRecord {
  k: Uint8Array;
  v: Uint8Array;
  pk: Uint8Array;
  s: number;
  e: number;
  sig: Uint8Array;
}

export function toWireRecord(r: DhtRecord): WireRecord {
  return { k: r.key, v: r.value, pk: r.publisher, s: r.seq, e: r.expires, sig: r.signature };
}

/** Structural conversion only (lengths and integer ranges); the signature is checked by verifyRecord(). */
export function fromWireRecord(w: unknown): DhtRecord | undefined {
  if (typeof w !== 'object' || w === null) return undefined;
  const { k, v, pk, s, e, sig } = w as Partial<WireRecord>;
  const r = { key: k, value: v, publisher: pk, seq: s, expires: e, signature: sig } as DhtRecord;
  return isWellFormed(r) ? r : undefined;
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isWellFormed(r: DhtRecord): boolean {
  return (
    isId(r.key) &&
    r.value instanceof Uint8Array &&
    r.publisher instanceof Uint8Array &&
    r.publisher.length === 32 &&
    isUint(r.seq) &&
    isUint(r.expires) &&
    r.signature instanceof Uint8Array &&
    r.signature.length === 64
  );
}

function writeUint64(buf: Buffer, n: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
}

/** The exact bytes a record signature covers (layout in the file comment). */
export function recordSigningPayload(r: Omit<DhtRecord, 'signature'>): Uint8Array {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + r.value.length);
  let o = DOMAIN_BYTES.copy(buf, 0);
  buf.set(r.key, o);
  o += 32;
  buf.set(r.publisher, o);
  o += 32;
  writeUint64(buf, r.seq, o);
  o += 8;
  writeUint64(buf, r.expires, o);
  o += 8;
  buf.writeUInt32BE(r.value.length, o);
  o += 4;
  buf.set(r.value, o);
  return buf;
}

export interface SignRecordInput {
  key: Uint8Array;
  value: Uint8Array;
  seq: number;
  ttlMs: number;
  /** Current time, unix ms (injected so tests control it). */
  now: number;
}

export function signRecord(identity: Identity, input: SignRecordInput): DhtRecord {
  const unsigned = {
    key: input.key,
    value: input.value,
    publisher: identity.publicKey,
    seq: input.seq,
    expires: Math.floor(input.now + input.ttlMs),
  };
  if (!isId(unsigned.key)) throw new TypeError('a record key must be 32 bytes (use dhtKey())');
  if (!isUint(unsigned.seq)) throw new TypeError(`record seq must be a non-negative safe integer, got ${input.seq}`);
  if (!isUint(unsigned.expires)) throw new TypeError('record expiry must be a non-negative safe integer');
  return { ...unsigned, signature: identity.sign(recordSigningPayload(unsigned)) };
}

/**
 * Verification costs ~0.1-0.2 ms (most of it building the key object), and
 * the same record is verified again and again: by each of the k nodes that
 * store it (in a simulation, in one process), by every replication no-op, by
 * every lookup that reads it. Both caches are bounded LRUs keyed by content,
 * so sharing them process-wide is safe.
 */
const keyCache = new LRUCache<string, KeyObject>({ max: 1024 });
const verifiedCache = new LRUCache<string, string>({ max: 8192 });

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** True when the record is well formed and signed by its publisher key. Expiry is not checked here. */
export function verifyRecord(r: DhtRecord): boolean {
  if (!isWellFormed(r)) return false;
  const payload = recordSigningPayload(r);
  const sigKey = latin1(r.signature);
  // The cache maps a signature to the digest of the payload it was verified
  // against, so a valid signature paired with altered fields misses the cache.
  const digest = createHash('sha256').update(payload).digest('base64');
  if (verifiedCache.get(sigKey) === digest) return true;
  const pkKey = latin1(r.publisher);
  let key = keyCache.get(pkKey);
  if (!key) {
    try {
      key = publicKeyObject(r.publisher);
    } catch {
      return false;
    }
    keyCache.set(pkKey, key);
  }
  if (!verifySignature(key, payload, r.signature)) return false;
  verifiedCache.set(sigKey, digest);
  return true;
}

/** The publisher's node ID (SHA-256 of its public key). */
export function recordPublisherId(r: DhtRecord): Uint8Array {
  return nodeIdFromPublicKey(r.publisher);
}

export function isTombstone(r: DhtRecord): boolean {
  return r.value.length === 0;
}
