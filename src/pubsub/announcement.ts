/**
 * The value of a subscription record in the DHT.
 *
 * Key: `dhtKey('pubsub/' + realm, prefix)`, where prefix is the literal
 * prefix of the patterns (the segments before the first wildcard, see
 * `literalPrefix`). Value, CBOR: `{ a: { h, p }, ps: [pattern, ...], c? }`: where
 * the node takes PUBLISH messages and every distinct pattern it subscribes
 * with under that prefix. One record per node per key; the DHT keeps one
 * record per publisher under a key, so a node's newer put replaces its older
 * one. The node ID is not in the value: it is SHA-256 of the record's signing
 * key, so nobody can announce on behalf of another node. In a secured realm
 * `c` carries the node's credential chain, which must permit subscribing
 * every pattern (see RecordAuth).
 */
import { encodeBody, decodeBody } from '../wire/codec.js';
import { isPlainMap } from '../wire/schema.js';
import type { PeerAddress } from '../transport/types.js';
import { splitTopic, validatePattern, type TopicLimits } from './topic.js';

export interface Announcement {
  address: PeerAddress;
  /** Each pattern already split into segments, ready for `matchSegments`. */
  patterns: string[][];
  /** The publisher's credential chain as found in the value (unverified; secured realms). */
  credential: unknown;
}

/** More patterns than any honest record of `maxAnnounceBytes` can hold is a malformed record. */
export const MAX_PATTERNS_PER_RECORD = 4096;
const MAX_HOST_CHARS = 255;

export function announcementKeyNamespace(realm: string): string {
  return `pubsub/${realm}`;
}

export function encodeAnnouncement(address: PeerAddress, patterns: readonly string[], credential?: readonly string[]): Uint8Array {
  const value: Record<string, unknown> = { a: { h: address.host, p: address.port }, ps: patterns };
  if (credential) value.c = credential;
  return encodeBody(value);
}

/**
 * Limits for patterns read from records: one byte and one segment more than
 * ours, because a prefix too large for its record is announced as
 * `<prefix>.#` (see announcer.ts), which may exceed the limits by that much.
 */
export function relaxedLimits(limits: Required<TopicLimits>): TopicLimits {
  return { maxBytes: limits.maxBytes + 2, maxSegments: limits.maxSegments + 1 };
}

/**
 * Decodes a record value; undefined when it is malformed in any way (bad
 * CBOR, wrong shape, invalid address or pattern, or a pattern whose literal
 * prefix is not `prefix`: a record under the wrong key would otherwise make
 * us send topics to a node that never asked for them).
 */
export function decodeAnnouncement(value: Uint8Array, prefix: string, limits: TopicLimits): Announcement | undefined {
  let v: unknown;
  try {
    v = decodeBody(value);
  } catch {
    return undefined;
  }
  if (!isPlainMap(v) || !isPlainMap(v.a) || !Array.isArray(v.ps)) return undefined;
  const { h, p } = v.a;
  if (typeof h !== 'string' || h.length === 0 || h.length > MAX_HOST_CHARS) return undefined;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) return undefined;
  const ps = v.ps as unknown[];
  if (ps.length === 0 || ps.length > MAX_PATTERNS_PER_RECORD) return undefined;
  const patterns: string[][] = [];
  for (const raw of ps) {
    if (typeof raw !== 'string') return undefined;
    let segs: string[];
    try {
      segs = validatePattern(raw, limits);
    } catch {
      return undefined;
    }
    if (!hasLiteralPrefix(segs, prefix)) return undefined;
    patterns.push(segs);
  }
  return { address: { host: h, port: p }, patterns, credential: v.c };
}

function hasLiteralPrefix(segs: readonly string[], prefix: string): boolean {
  const want = prefix === '' ? [] : splitTopic(prefix);
  if (segs.length < want.length) return false;
  for (let i = 0; i < want.length; i++) if (segs[i] !== want[i]) return false;
  // The segment after the prefix, if any, must be a wildcard: otherwise the prefix would be longer.
  if (segs.length === want.length) return true;
  const next = segs[want.length];
  return next === '*' || next === '#';
}
