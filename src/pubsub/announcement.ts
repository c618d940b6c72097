/**
 * The value of a subscription record in the DHT.
 *
 * Key: `dhtKey('pubsub/' + realm, prefix)`, where prefix is the literal
 * prefix of the patterns (the segments before the first wildcard, see
 * `literalPrefix`). Value, CBOR: `{ a: { h, p }, ps: [pattern, ...], qs?:
 * [[pattern, group], ...], c? }`: where the node takes PUBLISH messages, every
 * distinct pattern it subscribes with under that prefix, and every distinct
 * (pattern, queue group) pair of its queue subscriptions (`ps` may then be
 * empty). One record per node per key; the DHT keeps one
 * record per publisher under a key, so a node's newer put replaces its older
 * one. The node ID is not in the value: it is SHA-256 of the record's signing
 * key, so nobody can announce on behalf of another node. In a secured realm
 * `c` carries the node's credential chain, which must permit subscribing
 * every pattern (see RecordAuth).
 */
import { encodeBody, decodeBody } from '../wire/codec.js';
import { isPlainMap } from '../wire/schema.js';
import type { PeerAddress } from '../transport/types.js';
import { isQueueGroup } from './queue.js';
import { splitTopic, validatePattern, type TopicLimits } from './topic.js';

export interface Announcement {
  address: PeerAddress;
  /** Each pattern already split into segments, ready for `matchSegments`. */
  patterns: string[][];
  /** Queue subscriptions: pattern (split) and group name. */
  queues: QueueEntry[];
  /** The publisher's credential chain as found in the value (unverified; secured realms). */
  credential: unknown;
}

export interface QueueEntry {
  segs: string[];
  group: string;
}

/** More patterns than any honest record of `maxAnnounceBytes` can hold is a malformed record. */
export const MAX_PATTERNS_PER_RECORD = 4096;
const MAX_HOST_CHARS = 255;

export function announcementKeyNamespace(realm: string): string {
  return `pubsub/${realm}`;
}

export function encodeAnnouncement(address: PeerAddress, patterns: readonly string[], credential?: readonly string[], queues?: readonly (readonly [string, string])[]): Uint8Array {
  const value: Record<string, unknown> = { a: { h: address.host, p: address.port }, ps: patterns };
  if (queues !== undefined && queues.length > 0) value.qs = queues;
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
  const qs = v.qs === undefined ? [] : v.qs;
  if (!Array.isArray(qs)) return undefined;
  if (ps.length + qs.length === 0 || ps.length + qs.length > MAX_PATTERNS_PER_RECORD) return undefined;
  const patterns: string[][] = [];
  for (const raw of ps) {
    const segs = patternOf(raw, prefix, limits);
    if (segs === undefined) return undefined;
    patterns.push(segs);
  }
  const queues: QueueEntry[] = [];
  for (const q of qs as unknown[]) {
    if (!Array.isArray(q) || q.length !== 2 || !isQueueGroup(q[1])) return undefined;
    const segs = patternOf(q[0], prefix, limits);
    if (segs === undefined) return undefined;
    queues.push({ segs, group: q[1] as string });
  }
  return { address: { host: h, port: p }, patterns, queues, credential: v.c };
}

function patternOf(raw: unknown, prefix: string, limits: TopicLimits): string[] | undefined {
  if (typeof raw !== 'string') return undefined;
  let segs: string[];
  try {
    segs = validatePattern(raw, limits);
  } catch {
    return undefined;
  }
  return hasLiteralPrefix(segs, prefix) ? segs : undefined;
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
