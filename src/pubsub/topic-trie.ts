/**
 * The local subscription index: pattern → values, matched by topic.
 *
 * Every segment used by a pattern gets a small integer id (a refcounted
 * dictionary); a topic is turned into the ids of its segments once, and
 * everything after that compares numbers. Patterns without wildcards sit in
 * one hash table keyed by a hash of their segment ids: one probe finds them,
 * and none is made when a segment of the topic has no id. Patterns with
 * wildcards sit in a trie over segments; each node keeps a Map of literal
 * children keyed by segment id, at most one `*` child, the values of
 * patterns that end at the node, and the values of patterns that end at the
 * node with a trailing `#`. Matching walks at most two children per segment
 * (the literal one and `*`) and collects the `#` values met on the way, so
 * its cost grows with the topic's segments and with the wildcard branches
 * actually present, never with the number of subscriptions.
 *
 * Why numbers: with 100,000 subscriptions a match is bound by cache misses,
 * not by instructions. A Map with string keys reads the key string of every
 * entry it probes, and those strings lie all over the heap; a Set per
 * pattern adds its own table. Integer keys, a compact probe array for the
 * exact patterns and plain arrays of values cut those misses (figures in
 * ARCHITECTURE.md, Pub/sub).
 *
 * Entries are (pattern, value) pairs, each stored once. A value subscribed
 * through two patterns that both match a topic is returned twice, once per
 * subscription, because each subscription is delivered to on its own; use
 * `matchUnique` to get each value once.
 *
 * Removing the last entry under a node prunes the node and its emptied
 * ancestors, so memory follows the live subscriptions.
 */
import {
  MULTI_WILDCARD,
  SINGLE_WILDCARD,
  TOPIC_SEPARATOR,
  hasWildcard,
  splitTopic,
  validatePattern,
  type TopicLimits,
} from './topic.js';

export type TopicTrieInit = TopicLimits;

/** Marks a topic segment that no literal edge of the trie carries: only `*` and `#` can match it. */
const NO_ID = -1;
/**
 * A pattern's value list gets a value → position index once it holds this
 * many values, and loses it below half of it: shorter lists are searched
 * with indexOf, faster than a Map at that size.
 */
const INDEX_AT = 32;
/** Smallest size of the exact patterns' table (a power of two). */
const MIN_SLOTS = 16;

class TrieNode<T> {
  /** Literal children, keyed by the segment's id (see TopicTrie#segmentId). */
  literal: Map<number, TrieNode<T>> | undefined = undefined;
  star: TrieNode<T> | undefined = undefined;
  /** Values of the pattern that ends exactly here. */
  exact: T[] | undefined = undefined;
  /** Values of the pattern that ends here followed by `#`. */
  rest: T[] | undefined = undefined;

  isEmpty(): boolean {
    return this.literal === undefined && this.star === undefined && this.exact === undefined && this.rest === undefined;
  }
}

// Module-level walkers (not methods or closures) keep the hot loop monomorphic.

function collect<T>(start: TrieNode<T>, ids: readonly number[], from: number, out: T[]): void {
  let node = start;
  let i = from;
  for (;;) {
    const rest = node.rest;
    if (rest !== undefined) for (let k = 0; k < rest.length; k++) out.push(rest[k]!);
    if (i === ids.length) {
      const exact = node.exact;
      if (exact !== undefined) for (let k = 0; k < exact.length; k++) out.push(exact[k]!);
      return;
    }
    const star = node.star;
    const id = ids[i]!;
    const lit = id === NO_ID || node.literal === undefined ? undefined : node.literal.get(id);
    i++;
    if (lit !== undefined) {
      if (star !== undefined) collect(star, ids, i, out);
      node = lit;
    } else if (star !== undefined) {
      node = star;
    } else {
      return;
    }
  }
}

function visit<T>(start: TrieNode<T>, ids: readonly number[], from: number, fn: (value: T) => void): number {
  let node = start;
  let i = from;
  let n = 0;
  for (;;) {
    const rest = node.rest;
    if (rest !== undefined) {
      for (let k = 0; k < rest.length; k++) fn(rest[k]!);
      n += rest.length;
    }
    if (i === ids.length) {
      const exact = node.exact;
      if (exact !== undefined) {
        for (let k = 0; k < exact.length; k++) fn(exact[k]!);
        n += exact.length;
      }
      return n;
    }
    const star = node.star;
    const id = ids[i]!;
    const lit = id === NO_ID || node.literal === undefined ? undefined : node.literal.get(id);
    i++;
    if (lit !== undefined) {
      if (star !== undefined) n += visit(star, ids, i, fn);
      node = lit;
    } else if (star !== undefined) {
      node = star;
    } else {
      return n;
    }
  }
}

/** The values of one pattern without wildcards; patterns whose ids hash alike are chained. */
class ExactEntry<T> {
  constructor(
    readonly pattern: string,
    readonly values: T[],
    public next: ExactEntry<T> | undefined,
  ) {}
}

/**
 * Key of the exact-pattern map from the ids of a pattern's or topic's
 * segments (-1 when one has no id: then no exact pattern can match). A small
 * integer, so the lookup compares numbers and reads no key string.
 */
function exactKey(ids: readonly number[]): number {
  let h = ids.length;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === NO_ID) return -1;
    h = Math.imul(h ^ id, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h & 0x3fffffff;
}

/**
 * The exact patterns' table: `exactKey` → the chain of entries with that
 * key, in open addressing with linear probing. The keys sit alone in an
 * Int32Array, so a topic that no exact pattern equals (the common case)
 * costs one read of a compact array; a Map reads a bucket and then entries
 * spread over a table several times larger. Kept between 1/8 and 1/2 full.
 */
class ExactTable<T> {
  /** key + 1 per slot, 0 when free. */
  #keys = new Int32Array(MIN_SLOTS);
  #heads: Array<ExactEntry<T> | undefined> = new Array<ExactEntry<T> | undefined>(MIN_SLOTS).fill(undefined);
  #count = 0;

  get(key: number): ExactEntry<T> | undefined {
    const keys = this.#keys;
    const mask = keys.length - 1;
    const want = key + 1;
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === want) return this.#heads[i];
      if (k === 0) return undefined;
    }
  }

  set(key: number, head: ExactEntry<T>): void {
    const i = this.#slot(key);
    if (this.#keys[i] === 0) {
      this.#keys[i] = key + 1;
      this.#count++;
    }
    this.#heads[i] = head;
    if (this.#count * 2 > this.#keys.length) this.#resize(this.#keys.length * 2);
  }

  delete(key: number): void {
    const keys = this.#keys;
    const heads = this.#heads;
    const mask = keys.length - 1;
    let hole = this.#slot(key);
    if (keys[hole] === 0) return;
    // Backward-shift deletion: pull later keys of the probe run into the hole, no tombstones.
    for (let i = (hole + 1) & mask; keys[i] !== 0; i = (i + 1) & mask) {
      const home = (keys[i]! - 1) & mask;
      // Movable when its home is not cyclically within (hole, i].
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        keys[hole] = keys[i]!;
        heads[hole] = heads[i];
        hole = i;
      }
    }
    keys[hole] = 0;
    heads[hole] = undefined;
    this.#count--;
    if (this.#count * 8 < keys.length && keys.length > MIN_SLOTS) this.#resize(keys.length / 2);
  }

  *values(): Generator<ExactEntry<T>> {
    for (const head of this.#heads) if (head !== undefined) yield head;
  }

  /** The slot holding `key`, or the free slot where it would go. */
  #slot(key: number): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    const want = key + 1;
    let i = key & mask;
    while (keys[i] !== 0 && keys[i] !== want) i = (i + 1) & mask;
    return i;
  }

  #resize(slots: number): void {
    const keys = this.#keys;
    const heads = this.#heads;
    this.#keys = new Int32Array(slots);
    this.#heads = new Array<ExactEntry<T> | undefined>(slots).fill(undefined);
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === 0) continue;
      const j = this.#slot(keys[i]! - 1);
      this.#keys[j] = keys[i]!;
      this.#heads[j] = heads[i];
    }
  }
}

/** Position of `value` in `list` by SameValueZero (as a Set would compare), -1 when absent. */
function linearPosition<T>(list: readonly T[], value: T): number {
  // Only NaN differs from itself; indexOf never finds it.
  return value === value ? list.indexOf(value) : list.findIndex((x) => x !== x);
}

export class TopicTrie<T> {
  readonly #limits: TopicLimits;
  /** Patterns with a wildcard, indexed segment by segment. */
  #root = new TrieNode<T>();
  /**
   * Patterns without a wildcard, keyed by `exactKey` of their segment ids.
   * Most subscriptions are exact; keeping them out of the trie turns their
   * match into one lookup and keeps the trie, walked on every publish, small.
   */
  #exact = new ExactTable<T>();
  #exactPatterns = 0;
  /** Value → position indexes of the value lists that grew long (see INDEX_AT). */
  #positions = new Map<T[], Map<T, number>>();
  /**
   * Segment → id for every segment of an exact pattern or of a literal edge
   * of the trie, with the reverse table and the number of uses (edges and
   * exact patterns) of each id; ids of segments no longer used are reused.
   * The maps walked per publish are keyed by these small integers: a lookup
   * then compares numbers, where string keys make the map read every
   * candidate key string, scattered in the heap, and those cache misses were
   * most of the time of a match. The dictionary itself is small and hot.
   */
  #segmentIds = new Map<string, number>();
  #segments: string[] = [];
  #edges: number[] = [];
  #freeIds: number[] = [];
  #size = 0;
  #wildcardPatterns = 0;
  #nodes = 0;

  /** `init`: the topic limits patterns are validated against (defaults of `topic.ts`). */
  constructor(init: TopicTrieInit = {}) {
    this.#limits = { ...init };
  }

  /** Number of (pattern, value) entries. */
  get size(): number {
    return this.#size;
  }

  /** Trie nodes besides the root; with pruning it stays proportional to the live wildcard patterns. */
  get nodeCount(): number {
    return this.#nodes;
  }

  /** Number of distinct patterns with at least one value. */
  get patternCount(): number {
    return this.#exactPatterns + this.#wildcardPatterns;
  }

  /**
   * Adds `value` under `pattern`; false when that exact pair is already present.
   * @throws InvalidTopicError when the pattern is invalid
   */
  add(pattern: string, value: T): boolean {
    const segs = validatePattern(pattern, this.#limits);
    if (hasWildcard(pattern)) return this.#addWildcard(segs, value);
    const entry = this.#findExact(pattern, segs);
    if (entry !== undefined) {
      if (!this.#push(entry.values, value)) return false;
    } else {
      const key = exactKey(segs.map((seg) => this.#holdSegment(seg)));
      this.#exact.set(key, new ExactEntry(pattern, [value], this.#exact.get(key)));
      this.#exactPatterns++;
    }
    this.#size++;
    return true;
  }

  #findExact(pattern: string, segs: readonly string[]): ExactEntry<T> | undefined {
    const ids: number[] = [];
    for (const seg of segs) {
      const id = this.#segmentIds.get(seg);
      if (id === undefined) return undefined;
      ids.push(id);
    }
    let entry = this.#exact.get(exactKey(ids));
    while (entry !== undefined && entry.pattern !== pattern) entry = entry.next;
    return entry;
  }

  #removeExact(pattern: string, value: T): boolean {
    const segs = splitTopic(pattern);
    const entry = this.#findExact(pattern, segs);
    if (entry === undefined || !this.#pull(entry.values, value)) return false;
    this.#size--;
    if (entry.values.length > 0) return true;
    const ids = segs.map((seg) => this.#segmentIds.get(seg)!);
    const key = exactKey(ids);
    const head = this.#exact.get(key)!;
    if (head === entry) {
      if (entry.next === undefined) this.#exact.delete(key);
      else this.#exact.set(key, entry.next);
    } else {
      let prev = head;
      while (prev.next !== entry) prev = prev.next!;
      prev.next = entry.next;
    }
    this.#exactPatterns--;
    for (const id of ids) this.#releaseSegment(id);
    return true;
  }

  #addWildcard(segs: readonly string[], value: T): boolean {
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    let node = this.#root;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      if (seg === SINGLE_WILDCARD) {
        if (node.star === undefined) {
          node.star = new TrieNode<T>();
          this.#nodes++;
        }
        node = node.star;
      } else {
        const id = this.#segmentIds.get(seg);
        let child = id === undefined ? undefined : node.literal?.get(id);
        if (child === undefined) {
          child = new TrieNode<T>();
          (node.literal ??= new Map()).set(this.#holdSegment(seg), child);
          this.#nodes++;
        }
        node = child;
      }
    }
    const list = multi ? node.rest : node.exact;
    if (list === undefined) {
      if (multi) node.rest = [value];
      else node.exact = [value];
      this.#wildcardPatterns++;
    } else if (!this.#push(list, value)) {
      return false;
    }
    this.#size++;
    return true;
  }

  /** The id of `seg` for one more use, allocated if it has none. */
  #holdSegment(seg: string): number {
    let id = this.#segmentIds.get(seg);
    if (id === undefined) {
      id = this.#freeIds.pop() ?? this.#segments.length;
      this.#segmentIds.set(seg, id);
      this.#segments[id] = seg;
      this.#edges[id] = 0;
    }
    this.#edges[id]!++;
    return id;
  }

  /** One use of `id` is gone; frees the id with its last use. */
  #releaseSegment(id: number): void {
    if (--this.#edges[id]! > 0) return;
    this.#segmentIds.delete(this.#segments[id]!);
    this.#segments[id] = '';
    this.#freeIds.push(id);
  }

  /** Appends `value` unless present; false if it was. */
  #push(list: T[], value: T): boolean {
    const index = list.length >= INDEX_AT / 2 ? this.#positions.get(list) : undefined;
    if (index !== undefined) {
      if (index.has(value)) return false;
      index.set(value, list.length);
    } else {
      if (linearPosition(list, value) >= 0) return false;
      if (list.length + 1 >= INDEX_AT) this.#positions.set(list, new Map(list.map((v, i) => [v, i])).set(value, list.length));
    }
    list.push(value);
    return true;
  }

  /**
   * Removes `value` by moving the last value into its place (matching
   * promises no order); false if absent. An emptied list's index goes too.
   */
  #pull(list: T[], value: T): boolean {
    const index = list.length >= INDEX_AT / 2 ? this.#positions.get(list) : undefined;
    const at = index !== undefined ? (index.get(value) ?? -1) : linearPosition(list, value);
    if (at < 0) return false;
    const last = list.pop()!;
    if (at < list.length) {
      list[at] = last;
      index?.set(last, at);
    }
    if (index !== undefined) {
      index.delete(value);
      if (list.length < INDEX_AT / 2) this.#positions.delete(list);
    }
    return true;
  }

  #contains(list: T[], value: T): boolean {
    const index = list.length >= INDEX_AT / 2 ? this.#positions.get(list) : undefined;
    return index !== undefined ? index.has(value) : linearPosition(list, value) >= 0;
  }

  /** Removes one (pattern, value) entry; false when it was not present. Prunes emptied nodes. */
  remove(pattern: string, value: T): boolean {
    if (!hasWildcard(pattern)) return this.#removeExact(pattern, value);
    const segs = splitTopic(pattern);
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    // The path and the ids of its edges (NO_ID for `*`) are kept so that emptied nodes can be unlinked bottom-up.
    const path: TrieNode<T>[] = [this.#root];
    const edges: number[] = [];
    let node: TrieNode<T> | undefined = this.#root;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      // A `#` anywhere but last was never accepted by add().
      if (seg === MULTI_WILDCARD) return false;
      if (seg === SINGLE_WILDCARD) {
        node = node.star;
        edges.push(NO_ID);
      } else {
        const id = this.#segmentIds.get(seg);
        node = id === undefined ? undefined : node.literal?.get(id);
        edges.push(id!);
      }
      if (node === undefined) return false;
      path.push(node);
    }
    const list = multi ? node.rest : node.exact;
    if (list === undefined || !this.#pull(list, value)) return false;
    this.#size--;
    if (list.length === 0) {
      if (multi) node.rest = undefined;
      else node.exact = undefined;
      this.#wildcardPatterns--;
      this.#prune(path, edges);
    }
    return true;
  }

  #prune(path: TrieNode<T>[], edges: readonly number[]): void {
    for (let i = path.length - 1; i > 0; i--) {
      if (!path[i]!.isEmpty()) return;
      const parent = path[i - 1]!;
      const id = edges[i - 1]!;
      this.#nodes--;
      if (id === NO_ID) {
        parent.star = undefined;
      } else {
        parent.literal!.delete(id);
        if (parent.literal!.size === 0) parent.literal = undefined;
        this.#releaseSegment(id);
      }
    }
  }

  /** Whether the (pattern, value) entry is present. */
  has(pattern: string, value: T): boolean {
    const list = this.#values(pattern);
    return list !== undefined && this.#contains(list, value);
  }

  /** Whether any value is subscribed with exactly this pattern. */
  hasPattern(pattern: string): boolean {
    return this.#values(pattern) !== undefined;
  }

  #values(pattern: string): T[] | undefined {
    const segs = splitTopic(pattern);
    if (!hasWildcard(pattern)) return this.#findExact(pattern, segs)?.values;
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    let node: TrieNode<T> | undefined = this.#root;
    for (let i = 0; i < depth && node !== undefined; i++) {
      const seg = segs[i]!;
      if (seg === MULTI_WILDCARD) return undefined;
      if (seg === SINGLE_WILDCARD) {
        node = node.star;
      } else {
        const id = this.#segmentIds.get(seg);
        node = id === undefined ? undefined : node.literal?.get(id);
      }
    }
    if (node === undefined) return undefined;
    return multi ? node.rest : node.exact;
  }

  /**
   * The ids of the topic's segments (NO_ID for a segment no literal edge
   * carries): the given segments, or the topic split here, in the same
   * indexOf/slice loop as `splitTopic` but without keeping the substrings.
   */
  #topicIds(topic: string, segments: readonly string[] | undefined): number[] {
    const ids = this.#segmentIds;
    const out: number[] = [];
    if (segments !== undefined) {
      for (let i = 0; i < segments.length; i++) out.push(ids.get(segments[i]!) ?? NO_ID);
      return out;
    }
    let from = 0;
    for (;;) {
      const dot = topic.indexOf(TOPIC_SEPARATOR, from);
      if (dot < 0) break;
      out.push(ids.get(topic.slice(from, dot)) ?? NO_ID);
      from = dot + 1;
    }
    out.push(ids.get(topic.slice(from)) ?? NO_ID);
    return out;
  }

  /** Values of the exact pattern equal to the topic whose segment ids are `ids`. */
  #exactValues(topic: string, ids: readonly number[]): T[] | undefined {
    if (this.#exactPatterns === 0) return undefined;
    const key = exactKey(ids);
    if (key < 0) return undefined;
    let entry = this.#exact.get(key);
    while (entry !== undefined && entry.pattern !== topic) entry = entry.next;
    return entry?.values;
  }

  /**
   * Values of every entry whose pattern matches `topic`, one per matching
   * (pattern, value) entry, in no particular order. The topic is not
   * validated here: validate published topics once, where they enter, and
   * pass the segments `validateTopic` returned to save splitting it again.
   */
  match(topic: string, segments?: readonly string[]): T[] {
    const out: T[] = [];
    if (this.#size === 0) return out;
    const ids = this.#topicIds(topic, segments);
    const exact = this.#exactValues(topic, ids);
    if (exact !== undefined) for (let k = 0; k < exact.length; k++) out.push(exact[k]!);
    if (this.#wildcardPatterns > 0) collect(this.#root, ids, 0, out);
    return out;
  }

  /** Like `match`, but each distinct value once. */
  matchUnique(topic: string, segments?: readonly string[]): T[] {
    return [...new Set(this.match(topic, segments))];
  }

  /**
   * Calls `fn` once per matching entry (as `match` would list them) without
   * building an array; returns the number of calls. `fn` must not add or
   * remove entries of this trie.
   */
  forEachMatch(topic: string, fn: (value: T) => void, segments?: readonly string[]): number {
    if (this.#size === 0) return 0;
    let n = 0;
    const ids = this.#topicIds(topic, segments);
    const exact = this.#exactValues(topic, ids);
    if (exact !== undefined) {
      for (let k = 0; k < exact.length; k++) fn(exact[k]!);
      n = exact.length;
    }
    if (this.#wildcardPatterns > 0) n += visit(this.#root, ids, 0, fn);
    return n;
  }

  /** The distinct patterns present, each once. */
  *patterns(): IterableIterator<string> {
    for (const [pattern] of this.#lists()) yield pattern;
  }

  /** Every (pattern, value) entry. */
  *entries(): IterableIterator<[string, T]> {
    for (const [pattern, values] of this.#lists()) for (const v of values) yield [pattern, v];
  }

  /** Removes every entry. */
  clear(): void {
    this.#root = new TrieNode<T>();
    this.#exact = new ExactTable();
    this.#exactPatterns = 0;
    this.#positions = new Map();
    this.#segmentIds = new Map();
    this.#segments = [];
    this.#edges = [];
    this.#freeIds = [];
    this.#size = 0;
    this.#wildcardPatterns = 0;
    this.#nodes = 0;
  }

  *#lists(): Generator<[string, T[]]> {
    for (const head of this.#exact.values()) {
      for (let entry: ExactEntry<T> | undefined = head; entry !== undefined; entry = entry.next) yield [entry.pattern, entry.values];
    }
    // Iterative depth-first walk of the wildcard trie.
    const stack: Array<[TrieNode<T>, string[]]> = [[this.#root, []]];
    while (stack.length > 0) {
      const [node, path] = stack.pop()!;
      if (node.exact !== undefined) yield [path.join(TOPIC_SEPARATOR), node.exact];
      if (node.rest !== undefined) yield [[...path, MULTI_WILDCARD].join(TOPIC_SEPARATOR), node.rest];
      if (node.star !== undefined) stack.push([node.star, [...path, SINGLE_WILDCARD]]);
      if (node.literal !== undefined) for (const [id, child] of node.literal) stack.push([child, [...path, this.#segments[id]!]]);
    }
  }
}
