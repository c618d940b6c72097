/**
 * Topics and subscription patterns.
 *
 * A topic is a dot-separated list of non-empty segments (`sensors.site1.r12.temp`).
 * A pattern may also use two wildcards, each as a whole segment:
 * - `*` matches exactly one segment;
 * - `#`, only as the last segment, matches zero or more segments (MQTT-style:
 *   `a.#` matches `a`, `a.b` and `a.b.c`; `#` alone matches every topic).
 *
 * Published topics never contain `*` or `#`, so a topic is always concrete and
 * a pattern is the only place a wildcard can appear.
 */
import { MaculaError } from '../util/errors.js';

export const SINGLE_WILDCARD = '*';
export const MULTI_WILDCARD = '#';
export const TOPIC_SEPARATOR = '.';

/** Longest topic or pattern, in UTF-8 bytes. */
export const DEFAULT_MAX_TOPIC_BYTES = 256;
/** Most segments in a topic or pattern (a trailing `#` counts as one). */
export const DEFAULT_MAX_TOPIC_SEGMENTS = 16;

export interface TopicLimits {
  /** Longest topic or pattern in UTF-8 bytes. Default 256. */
  maxBytes?: number;
  /** Most segments. Default 16. */
  maxSegments?: number;
}

/** Which rule an invalid topic or pattern broke; stable, suitable as a metric label. */
export type TopicRule =
  | 'not_a_string'
  | 'empty'
  | 'too_long'
  | 'too_many_segments'
  | 'empty_segment'
  | 'wildcard_in_topic'
  | 'multi_wildcard_not_last'
  | 'partial_wildcard';

/** A topic or pattern breaks one of the rules above; `rule` says which one. */
export class InvalidTopicError extends MaculaError {
  readonly topic: string;
  readonly rule: TopicRule;

  constructor(kind: 'topic' | 'pattern', topic: string, rule: TopicRule, detail: string) {
    super('MACULA_ERR_INVALID_TOPIC', `invalid ${kind} ${quote(topic)}: ${detail}`);
    this.topic = topic;
    this.rule = rule;
  }
}

// Long or binary input must not turn the error message itself into a problem.
const QUOTE_MAX_CHARS = 80;

function quote(s: string): string {
  return JSON.stringify(s.length > QUOTE_MAX_CHARS ? `${s.slice(0, QUOTE_MAX_CHARS)}…` : s);
}

/**
 * UTF-8 length without encoding in the common case: a UTF-16 code unit
 * becomes 1 to 3 UTF-8 bytes (a surrogate pair, 2 units, becomes 4), so
 * `length` and `3 × length` bracket the byte count.
 */
function exceedsBytes(s: string, maxBytes: number): number | undefined {
  if (s.length * 3 <= maxBytes) return undefined;
  if (s.length > maxBytes) return Buffer.byteLength(s, 'utf8');
  const bytes = Buffer.byteLength(s, 'utf8');
  return bytes > maxBytes ? bytes : undefined;
}

function check(kind: 'topic' | 'pattern', input: unknown, limits: TopicLimits | undefined): string[] {
  if (typeof input !== 'string') {
    throw new InvalidTopicError(kind, String(input), 'not_a_string', `expected a string, got ${typeof input}`);
  }
  const s = input;
  if (s.length === 0) {
    throw new InvalidTopicError(kind, s, 'empty', `the ${kind} is empty; give at least one segment, e.g. "sensors.temp"`);
  }
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAX_TOPIC_BYTES;
  const bytes = exceedsBytes(s, maxBytes);
  if (bytes !== undefined) {
    throw new InvalidTopicError(
      kind,
      s,
      'too_long',
      `${bytes} bytes (UTF-8) exceeds the limit of ${maxBytes} bytes; use a shorter ${kind}`,
    );
  }
  const segments = splitTopic(s);
  const maxSegments = limits?.maxSegments ?? DEFAULT_MAX_TOPIC_SEGMENTS;
  if (segments.length > maxSegments) {
    throw new InvalidTopicError(
      kind,
      s,
      'too_many_segments',
      `${segments.length} segments exceeds the limit of ${maxSegments}; use fewer segments`,
    );
  }
  const last = segments.length - 1;
  for (let i = 0; i <= last; i++) {
    const seg = segments[i]!;
    const position = i + 1;
    if (seg.length === 0) {
      throw new InvalidTopicError(
        kind,
        s,
        'empty_segment',
        `empty segment at position ${position}; ${kind}s are dot-separated non-empty segments`,
      );
    }
    if (!seg.includes(SINGLE_WILDCARD) && !seg.includes(MULTI_WILDCARD)) continue;
    if (kind === 'topic') {
      throw new InvalidTopicError(
        kind,
        s,
        'wildcard_in_topic',
        seg === SINGLE_WILDCARD || seg === MULTI_WILDCARD
          ? `wildcard "${seg}" at position ${position}; wildcards are allowed only in subscription patterns, publish to a concrete topic`
          : `segment ${quote(seg)} at position ${position} contains a wildcard character; "*" and "#" are reserved for subscription patterns`,
      );
    }
    if (seg === SINGLE_WILDCARD) continue;
    if (seg === MULTI_WILDCARD) {
      if (i === last) continue;
      throw new InvalidTopicError(
        kind,
        s,
        'multi_wildcard_not_last',
        `"#" at position ${position} is not the last segment; "#" matches the rest of a topic and may only end a pattern`,
      );
    }
    throw new InvalidTopicError(
      kind,
      s,
      'partial_wildcard',
      `segment ${quote(seg)} at position ${position} mixes a wildcard with other characters; a segment containing "*" or "#" must be exactly that wildcard`,
    );
  }
  return segments;
}

/** The last topic validated, with the limits and its segments: a publisher (or a flood received) repeats its topic. */
let lastTopic: string | undefined;
let lastLimits: TopicLimits | undefined;
let lastSegments: readonly string[] = [];

/**
 * Checks a topic to publish to (no wildcards) and returns its segments, so a
 * caller that goes on to match it does not split it twice. The same topic
 * checked against the same limits object as the call before is answered
 * from that call (the segments array is shared: do not modify it).
 * @throws InvalidTopicError naming the rule broken
 */
export function validateTopic(topic: string, limits?: TopicLimits): readonly string[] {
  if (topic === lastTopic && lastTopic !== undefined && limits === lastLimits) return lastSegments;
  const segments = check('topic', topic, limits);
  lastTopic = topic;
  lastLimits = limits;
  lastSegments = segments;
  return segments;
}

/**
 * Checks a subscription pattern (wildcards allowed as whole segments, `#`
 * only last) and returns its segments.
 * @throws InvalidTopicError naming the rule broken
 */
export function validatePattern(pattern: string, limits?: TopicLimits): string[] {
  return check('pattern', pattern, limits);
}

/**
 * Segments of a topic or pattern; no validation. An indexOf/slice loop, not
 * `String.prototype.split`: measured here about 3× faster on 3–5 segment
 * topics, and splitting is a large share of the cost of a trie match.
 */
export function splitTopic(topic: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const dot = topic.indexOf(TOPIC_SEPARATOR, from);
    if (dot < 0) break;
    out.push(topic.slice(from, dot));
    from = dot + 1;
  }
  out.push(topic.slice(from));
  return out;
}

/** True when the pattern contains `*` or `#` (otherwise it matches only itself). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes(SINGLE_WILDCARD) || pattern.includes(MULTI_WILDCARD);
}

/**
 * Reference matcher over already split, valid input. It scans one pattern,
 * so matching a topic against N patterns this way costs O(N); the trie
 * (`topic-trie.ts`) is the index to use, this is its specification.
 */
export function matchSegments(pattern: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    // `#` is last in a valid pattern and accepts whatever remains, including nothing.
    if (p === MULTI_WILDCARD) return true;
    if (i >= topic.length) return false;
    if (p !== SINGLE_WILDCARD && p !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

/** Whether a valid pattern matches a valid topic (reference matcher, see `matchSegments`). */
export function matches(pattern: string, topic: string): boolean {
  return matchSegments(splitTopic(pattern), splitTopic(topic));
}

/**
 * The segments before the first wildcard, joined by '.': the whole pattern if
 * it has no wildcard, '' if it starts with one.
 *
 * Used as the DHT key of a subscription: a pattern can only match a topic that
 * starts with its literal prefix, so a publisher finds every candidate pattern
 * by looking up the segments + 1 prefixes of its topic (`prefixesOf`).
 */
export function literalPrefix(pattern: string): string {
  const segments = splitTopic(pattern);
  let n = 0;
  while (n < segments.length && segments[n] !== SINGLE_WILDCARD && segments[n] !== MULTI_WILDCARD) n++;
  return n === segments.length ? pattern : segments.slice(0, n).join(TOPIC_SEPARATOR);
}

/** Every literal prefix a matching pattern can have: `a.b.c` → ['', 'a', 'a.b', 'a.b.c']. */
export function prefixesOf(topic: string): string[] {
  const out = [''];
  if (topic.length === 0) return out;
  let from = 0;
  for (;;) {
    const dot = topic.indexOf(TOPIC_SEPARATOR, from);
    if (dot < 0) break;
    out.push(topic.slice(0, dot));
    from = dot + 1;
  }
  out.push(topic);
  return out;
}
