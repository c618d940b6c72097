/**
 * The local subscription index: pattern → values, matched by topic.
 *
 * Every segment used by a pattern gets a small integer id (a refcounted
 * dictionary); a topic is turned into the ids of its segments once, and
 * everything after that compares numbers. Patterns without wildcards sit in
 * one hash table keyed by a hash of their segment ids: one probe finds them,
 * and none is made when a segment of the topic has no id. Patterns with
 * wildcards sit in a trie over segments, stored flat (see `Nodes`): each
 * node has literal children keyed by segment id, at most one `*` child, the
 * values of the pattern that ends at the node, and the values of the one
 * that ends at the node with a trailing `#`. Matching walks at most two children per segment
 * (the literal one and `*`) and collects the `#` values met on the way, so
 * its cost grows with the topic's segments and with the wildcard branches
 * actually present, never with the number of subscriptions.
 *
 * Why numbers: with 100,000 subscriptions a match is bound by cache misses,
 * not by instructions. A Map with string keys reads the key string of every
 * entry it probes, and those strings lie all over the heap; a node object
 * with a Map of children costs three reads in three places per step; a Set
 * per pattern adds its own table. Integer keys, compact probe arrays and
 * the values of all patterns in blocks of one array (`ValuePool`: a list
 * costs one miss, where an array per list cost its reference, the array and
 * its elements) cut those misses (figures in ARCHITECTURE.md, Pub/sub).
 *
 * Entries are (pattern, value) pairs, each stored once. A value subscribed
 * through two patterns that both match a topic is returned twice, once per
 * subscription, because each subscription is delivered to on its own; use
 * `matchUnique` to get each value once.
 *
 * Removing the last entry under a node prunes the node and its emptied
 * ancestors, so memory follows the live subscriptions (the node arrays and
 * the value pool keep their largest size; pruned ids and freed blocks are
 * reused).
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

/** Id of a topic segment no pattern uses: only `*` and `#` can match it. */
const NO_ID = -1;
/**
 * A pattern's value list gets a value → position index once it holds this
 * many values, and loses it below half of it: shorter lists are searched
 * linearly, faster than a Map at that size.
 */
const INDEX_AT = 32;
/** Smallest size of the hash tables (a power of two). */
const MIN_SLOTS = 16;

/** The root's node id. No node has it as a child, so it also stands for "no child". */
const ROOT = 0;
const NONE = 0;
/**
 * Int32 fields of a node's record in `Nodes.meta`: its `*` child, its
 * number of literal children, and two value lists (see `ValuePool`): the
 * pattern ending at the node and the one ending at it followed by `#`. Eight
 * fields, 32 bytes: a step of a walk reads one cache line.
 */
const STAR = 0;
const KIDS = 1;
const EXACT = 2;
const REST = 5;
const NODE = 8;
/** Fields of a value list's record: where its block of the pool starts, how many values it holds, the block's size. */
const START = 0;
const LENGTH = 1;
const CAPACITY = 2;
/** Int32 fields per slot of the edge table: parent + 1 (0 when free), segment id, child, padding. */
const EDGE = 4;

/** Hash of a literal edge, from its parent node and its segment id. */
function edgeHash(parent: number, seg: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ seg;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) & 0x3fffffff;
}

/**
 * The patterns' value lists, all in one array: a list is a block of it (a
 * power of two in size, doubled when full, halved when a quarter full)
 * described by a record of three Int32 fields (START, LENGTH, CAPACITY) kept
 * by its owner: a trie node's record, or the exact table beside the key. A
 * match reads the values straight from the block whose position it found in
 * the record: one cache line, where an array per list costs a reference,
 * the array object and its elements, each a miss of its own. Freed blocks are
 * reused by size; the array keeps its largest size. A list of INDEX_AT
 * values or more gets a value → position index so that add and remove stay
 * O(1).
 */
class ValuePool<T> {
  values: Array<T | undefined> = [];
  /** Starts of free blocks, by log2 of their size. */
  #free: number[][] = [];
  /** Block start → (value → position in the block), for the long lists. */
  #index = new Map<number, Map<T, number>>();

  /** Whether the list of record `rec[at..]` holds `value`. */
  has(rec: Int32Array, at: number, value: T): boolean {
    return this.#position(rec, at, value) >= 0;
  }

  /** Appends `value` to the list of record `rec[at..]` unless present; false if it was. */
  add(rec: Int32Array, at: number, value: T): boolean {
    const length = rec[at + LENGTH]!;
    if (length > 0 && this.#position(rec, at, value) >= 0) return false;
    if (length === rec[at + CAPACITY]!) this.#move(rec, at, Math.max(1, length * 2));
    const start = rec[at + START]!;
    this.values[start + length] = value;
    rec[at + LENGTH] = length + 1;
    const index = this.#indexed(start, length);
    if (index !== undefined) index.set(value, length);
    else if (length + 1 >= INDEX_AT) this.#index.set(start, this.#indexOf(start, length + 1));
    return true;
  }

  /**
   * Removes `value` from the list of record `rec[at..]` by moving the last
   * value into its place (matching promises no order); false if absent.
   */
  remove(rec: Int32Array, at: number, value: T): boolean {
    const i = this.#position(rec, at, value);
    if (i < 0) return false;
    const start = rec[at + START]!;
    const length = rec[at + LENGTH]! - 1;
    const last = this.values[start + length] as T;
    this.values[start + i] = last;
    this.values[start + length] = undefined;
    rec[at + LENGTH] = length;
    const index = this.#indexed(start, length + 1);
    if (index !== undefined) {
      index.delete(value);
      if (i < length) index.set(last, i);
      if (length < INDEX_AT / 2) this.#index.delete(start);
    }
    const capacity = rec[at + CAPACITY]!;
    if (length === 0) {
      this.#release(start, capacity);
      rec.fill(0, at + START, at + CAPACITY + 1);
    } else if (length * 4 <= capacity) {
      this.#move(rec, at, capacity / 2);
    }
    return true;
  }

  /** A copy of the list of record `rec[at..]`. */
  list(rec: Int32Array, at: number): T[] {
    const start = rec[at + START]!;
    return this.values.slice(start, start + rec[at + LENGTH]!) as T[];
  }

  #position(rec: Int32Array, at: number, value: T): number {
    const start = rec[at + START]!;
    const length = rec[at + LENGTH]!;
    const index = this.#indexed(start, length);
    if (index !== undefined) return index.get(value) ?? -1;
    const values = this.values;
    const end = start + length;
    // SameValueZero, as a Set would compare: only NaN differs from itself.
    if (value === value) {
      for (let i = start; i < end; i++) if (values[i] === value) return i - start;
    } else {
      for (let i = start; i < end; i++) if (values[i] !== values[i]) return i - start;
    }
    return -1;
  }

  /** The index of the list in the block at `start` holding `length` values, if it has one. */
  #indexed(start: number, length: number): Map<T, number> | undefined {
    return length >= INDEX_AT / 2 ? this.#index.get(start) : undefined;
  }

  #indexOf(start: number, length: number): Map<T, number> {
    const index = new Map<T, number>();
    for (let i = 0; i < length; i++) index.set(this.values[start + i] as T, i);
    return index;
  }

  /** Moves a list into a new block of `capacity` values (its length fits). */
  #move(rec: Int32Array, at: number, capacity: number): void {
    const from = rec[at + START]!;
    const length = rec[at + LENGTH]!;
    const size = 31 - Math.clz32(capacity);
    const to = this.#free[size]?.pop() ?? this.values.length;
    if (to === this.values.length) for (let i = 0; i < capacity; i++) this.values.push(undefined);
    for (let i = 0; i < length; i++) this.values[to + i] = this.values[from + i];
    const index = this.#indexed(from, length);
    if (index !== undefined) {
      this.#index.delete(from);
      this.#index.set(to, index);
    }
    if (rec[at + CAPACITY]! > 0) this.#release(from, rec[at + CAPACITY]!);
    rec[at + START] = to;
    rec[at + CAPACITY] = capacity;
  }

  /** Gives back a block, emptied so that it keeps no value alive. */
  #release(start: number, capacity: number): void {
    this.values.fill(undefined, start, start + capacity);
    (this.#free[31 - Math.clz32(capacity)] ??= []).push(start);
  }
}

/**
 * The trie of the wildcard patterns, stored flat: a node is an integer id,
 * its fields are a record of `meta` at id × NODE (its `*` child, its number
 * of literal children, the records of its two value lists in `values`), and
 * every literal edge of the trie sits in one open-addressing table keyed by
 * (parent, segment id). A step of a walk reads a slot of that table and a
 * node's record, both compact, instead of a node object, its Map and the
 * Map's table, each somewhere else in the heap. Ids of pruned nodes are
 * reused; the arrays keep their largest size.
 */
class Nodes<T> {
  meta: Int32Array = new Int32Array(MIN_SLOTS * NODE);
  edges = new Int32Array(MIN_SLOTS * EDGE);
  #edgeCount = 0;
  /** The next never used id (the root's is taken). */
  #next = ROOT + 1;
  #free: number[] = [];

  /** `values`: the pool holding the value lists whose records are in `meta`. */
  constructor(readonly values: ValuePool<T>) {}

  /** A new empty node. */
  alloc(): number {
    const id = this.#free.pop() ?? this.#next++;
    if (id * NODE === this.meta.length) this.meta = grown(this.meta);
    return id;
  }

  /** Gives back an empty node's id. */
  release(node: number): void {
    this.#free.push(node);
  }

  isEmpty(node: number): boolean {
    const at = node * NODE;
    const meta = this.meta;
    return meta[at + STAR] === NONE && meta[at + KIDS] === 0 && meta[at + EXACT + LENGTH] === 0 && meta[at + REST + LENGTH] === 0;
  }

  /** The `*` child of `node`, NONE if none. */
  star(node: number): number {
    return this.meta[node * NODE + STAR]!;
  }

  setStar(node: number, child: number): void {
    this.meta[node * NODE + STAR] = child;
  }

  /** The literal child of `parent` for segment id `seg`, NONE if none. */
  child(parent: number, seg: number): number {
    const edges = this.edges;
    const mask = edges.length / EDGE - 1;
    const key = parent + 1;
    for (let i = edgeHash(parent, seg) & mask; ; i = (i + 1) & mask) {
      const at = i * EDGE;
      const k = edges[at]!;
      if (k === key && edges[at + 1] === seg) return edges[at + 2]!;
      if (k === 0) return NONE;
    }
  }

  link(parent: number, seg: number, child: number): void {
    const at = this.#slot(parent, seg) * EDGE;
    this.edges[at] = parent + 1;
    this.edges[at + 1] = seg;
    this.edges[at + 2] = child;
    this.meta[parent * NODE + KIDS]!++;
    if (++this.#edgeCount * 2 > this.edges.length / EDGE) this.#resize((this.edges.length / EDGE) * 2);
  }

  unlink(parent: number, seg: number): void {
    const edges = this.edges;
    const mask = edges.length / EDGE - 1;
    let hole = this.#slot(parent, seg);
    // Backward-shift deletion: pull later edges of the probe run into the hole, no tombstones.
    for (let i = (hole + 1) & mask; edges[i * EDGE] !== 0; i = (i + 1) & mask) {
      const home = edgeHash(edges[i * EDGE]! - 1, edges[i * EDGE + 1]!) & mask;
      // Movable when its home is not cyclically within (hole, i].
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        edges.copyWithin(hole * EDGE, i * EDGE, i * EDGE + EDGE);
        hole = i;
      }
    }
    edges.fill(0, hole * EDGE, hole * EDGE + EDGE);
    this.meta[parent * NODE + KIDS]!--;
    if (--this.#edgeCount * 8 < edges.length / EDGE && edges.length / EDGE > MIN_SLOTS) this.#resize(edges.length / EDGE / 2);
  }

  /** Every literal edge as [parent, segment id, child]. */
  *allEdges(): Generator<[number, number, number]> {
    const edges = this.edges;
    for (let at = 0; at < edges.length; at += EDGE) if (edges[at] !== 0) yield [edges[at]! - 1, edges[at + 1]!, edges[at + 2]!];
  }

  /**
   * Pushes onto `out` the values of the patterns below `start` that match
   * the topic whose segment ids are `ids[0..end)`, from `from` on.
   */
  collect(start: number, ids: readonly number[], end: number, from: number, out: T[]): void {
    const meta = this.meta;
    const values = this.values.values;
    let node = start;
    let i = from;
    for (;;) {
      const at = node * NODE;
      const rest = meta[at + REST + LENGTH]!;
      if (rest !== 0) for (let k = meta[at + REST + START]!, e = k + rest; k < e; k++) out.push(values[k] as T);
      if (i === end) {
        const exact = meta[at + EXACT + LENGTH]!;
        if (exact !== 0) for (let k = meta[at + EXACT + START]!, e = k + exact; k < e; k++) out.push(values[k] as T);
        return;
      }
      const s = meta[at + STAR]!;
      const id = ids[i]!;
      const lit = id === NO_ID || meta[at + KIDS] === 0 ? NONE : this.child(node, id);
      i++;
      if (lit !== NONE) {
        if (s !== NONE) this.collect(s, ids, end, i, out);
        node = lit;
      } else if (s !== NONE) {
        node = s;
      } else {
        return;
      }
    }
  }

  /** Like `collect`, calling `fn` per value; returns the number of calls. */
  visit(start: number, ids: readonly number[], end: number, from: number, fn: (value: T) => void): number {
    const meta = this.meta;
    const values = this.values.values;
    let node = start;
    let i = from;
    let n = 0;
    for (;;) {
      const at = node * NODE;
      const rest = meta[at + REST + LENGTH]!;
      if (rest !== 0) {
        for (let k = meta[at + REST + START]!, e = k + rest; k < e; k++) fn(values[k] as T);
        n += rest;
      }
      if (i === end) {
        const exact = meta[at + EXACT + LENGTH]!;
        if (exact !== 0) {
          for (let k = meta[at + EXACT + START]!, e = k + exact; k < e; k++) fn(values[k] as T);
          n += exact;
        }
        return n;
      }
      const s = meta[at + STAR]!;
      const id = ids[i]!;
      const lit = id === NO_ID || meta[at + KIDS] === 0 ? NONE : this.child(node, id);
      i++;
      if (lit !== NONE) {
        if (s !== NONE) n += this.visit(s, ids, end, i, fn);
        node = lit;
      } else if (s !== NONE) {
        node = s;
      } else {
        return n;
      }
    }
  }

  /** The slot of the edge (parent, seg), or the free slot where it would go. */
  #slot(parent: number, seg: number): number {
    const edges = this.edges;
    const mask = edges.length / EDGE - 1;
    let i = edgeHash(parent, seg) & mask;
    while (edges[i * EDGE] !== 0 && (edges[i * EDGE] !== parent + 1 || edges[i * EDGE + 1] !== seg)) i = (i + 1) & mask;
    return i;
  }

  #resize(slots: number): void {
    const old = this.edges;
    this.edges = new Int32Array(slots * EDGE);
    for (let at = 0; at < old.length; at += EDGE) {
      if (old[at] === 0) continue;
      this.edges.set(old.subarray(at, at + EDGE), this.#slot(old[at]! - 1, old[at + 1]!) * EDGE);
    }
  }
}

function grown(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/**
 * Key of the exact-pattern map from the ids of a pattern's or topic's
 * segments (-1 when one has no id: then no exact pattern can match). A small
 * integer, so the lookup compares numbers and reads no key string.
 */
function exactKey(ids: readonly number[], end = ids.length): number {
  let h = end;
  for (let i = 0; i < end; i++) {
    const id = ids[i]!;
    if (id === NO_ID) return -1;
    h = Math.imul(h ^ id, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h & 0x3fffffff;
}

/** Int32 fields per slot of the exact table's `lists`: the record of the slot's value list, padded to 16 bytes. */
const LIST = 4;

/**
 * The exact patterns' table: `exactKey` and pattern → the record of the
 * pattern's value list, in open addressing with linear probing (patterns
 * whose keys are equal take slots of their own). The keys sit alone in an
 * Int32Array, so a topic that no exact pattern equals (the common case)
 * costs one read of a compact array; one that a pattern equals then reads
 * its pattern to confirm it, the list's record and the list's block. A Map
 * reads a bucket and then entries spread over a table several times
 * larger. Kept between 1/8 and 1/2 full.
 */
class ExactTable {
  /** key + 1 per slot, 0 when free. */
  #keys = new Int32Array(MIN_SLOTS);
  /** Per slot, the record of its value list (see ValuePool). */
  lists: Int32Array = new Int32Array(MIN_SLOTS * LIST);
  /** Per slot, its pattern. */
  #patterns: Array<string | undefined> = new Array<string | undefined>(MIN_SLOTS).fill(undefined);
  #count = 0;

  /** Where the list record of `pattern` (whose key is `key`) is in `lists`, -1 if it has none. */
  find(key: number, pattern: string): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    const want = key + 1;
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === want && this.#patterns[i] === pattern) return i * LIST;
      if (k === 0) return -1;
    }
  }

  /** Takes a slot, with an empty value list, for a pattern that has none; returns where its list record is. */
  insert(key: number, pattern: string): number {
    if (++this.#count * 2 > this.#keys.length) this.#resize(this.#keys.length * 2);
    const i = this.#vacant(key);
    this.#keys[i] = key + 1;
    this.#patterns[i] = pattern;
    return i * LIST;
  }

  /** Frees the slot whose list record is at `at`; the list is empty. */
  delete(at: number): void {
    const keys = this.#keys;
    const lists = this.lists;
    const patterns = this.#patterns;
    const mask = keys.length - 1;
    let hole = at / LIST;
    // Backward-shift deletion: pull later slots of the probe run into the hole, no tombstones.
    for (let i = (hole + 1) & mask; keys[i] !== 0; i = (i + 1) & mask) {
      const home = (keys[i]! - 1) & mask;
      // Movable when its home is not cyclically within (hole, i].
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        keys[hole] = keys[i]!;
        lists.copyWithin(hole * LIST, i * LIST, i * LIST + LIST);
        patterns[hole] = patterns[i];
        hole = i;
      }
    }
    keys[hole] = 0;
    lists.fill(0, hole * LIST, hole * LIST + LIST);
    patterns[hole] = undefined;
    if (--this.#count * 8 < keys.length && keys.length > MIN_SLOTS) this.#resize(keys.length / 2);
  }

  /** Every pattern with where its list record is, valid until the table changes. */
  *entries(): Generator<[string, number]> {
    for (let i = 0; i < this.#patterns.length; i++) {
      const pattern = this.#patterns[i];
      if (pattern !== undefined) yield [pattern, i * LIST];
    }
  }

  /** The first free slot from the home of `key`. */
  #vacant(key: number): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    let i = key & mask;
    while (keys[i] !== 0) i = (i + 1) & mask;
    return i;
  }

  #resize(size: number): void {
    const keys = this.#keys;
    const lists = this.lists;
    const patterns = this.#patterns;
    this.#keys = new Int32Array(size);
    this.lists = new Int32Array(size * LIST);
    this.#patterns = new Array<string | undefined>(size).fill(undefined);
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === 0) continue;
      const j = this.#vacant(keys[i]! - 1);
      this.#keys[j] = keys[i]!;
      this.lists.set(lists.subarray(i * LIST, i * LIST + LIST), j * LIST);
      this.#patterns[j] = patterns[i];
    }
  }
}

/**
 * Segment → small integer id, for every segment of an exact pattern or of a
 * literal edge of the trie, with the number of uses (exact patterns and
 * edges) of each id; an id is freed with its last use and reused. Few
 * distinct segments, used by every match: the map stays in cache.
 */
class SegmentIds {
  #ids = new Map<string, number>();
  #names: string[] = [];
  #uses: number[] = [];
  #free: number[] = [];

  /** The id of `seg`, or NO_ID. */
  get(seg: string): number {
    return this.#ids.get(seg) ?? NO_ID;
  }

  /** The segment an id stands for. */
  name(id: number): string {
    return this.#names[id]!;
  }

  /** The id of `seg` for one more use, allocated if it has none. */
  hold(seg: string): number {
    let id = this.#ids.get(seg);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(seg, id);
      this.#names[id] = seg;
      this.#uses[id] = 0;
    }
    this.#uses[id]!++;
    return id;
  }

  /** One use of `id` is gone; frees the id with its last use. */
  release(id: number): void {
    if (--this.#uses[id]! > 0) return;
    this.#ids.delete(this.#names[id]!);
    this.#names[id] = '';
    this.#free.push(id);
  }

  /**
   * Writes into `out` the ids of a topic's segments, NO_ID for a segment no
   * pattern uses (only `*` and `#` can match it), and returns their number:
   * of the given segments, or of the topic split here in the indexOf/slice
   * loop of `splitTopic`, without keeping the substrings.
   */
  idsOf(topic: string, segments: readonly string[] | undefined, out: number[]): number {
    const ids = this.#ids;
    if (segments !== undefined) {
      for (let i = 0; i < segments.length; i++) out[i] = ids.get(segments[i]!) ?? NO_ID;
      return segments.length;
    }
    let n = 0;
    let from = 0;
    for (;;) {
      const dot = topic.indexOf(TOPIC_SEPARATOR, from);
      if (dot < 0) break;
      out[n++] = ids.get(topic.slice(from, dot)) ?? NO_ID;
      from = dot + 1;
    }
    out[n++] = ids.get(topic.slice(from)) ?? NO_ID;
    return n;
  }
}

export class TopicTrie<T> {
  readonly #limits: TopicLimits;
  /** The values of every pattern, exact or not. */
  #values = new ValuePool<T>();
  /** Patterns with a wildcard, indexed segment by segment. */
  #trie = new Nodes<T>(this.#values);
  /**
   * Patterns without a wildcard, keyed by `exactKey` of their segment ids.
   * Most subscriptions are exact; keeping them out of the trie turns their
   * match into one lookup and keeps the trie, walked on every publish, small.
   */
  #exact = new ExactTable();
  #exactPatterns = 0;
  /** Ids of the segments patterns use; the tables walked per publish are keyed by them. */
  #segments = new SegmentIds();
  #size = 0;
  #wildcardPatterns = 0;
  #nodes = 0;
  /** The topic's segment ids, reused from match to match instead of a new array each. */
  readonly #ids: number[] = [];
  /** Set while forEachMatch calls back: `#ids` is in use, a match from the callback takes an array of its own. */
  #visiting = false;

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
    let at = this.#findExact(pattern, segs);
    if (at < 0) {
      at = this.#exact.insert(exactKey(segs.map((seg) => this.#segments.hold(seg))), pattern);
      this.#values.add(this.#exact.lists, at, value);
      this.#exactPatterns++;
    } else if (!this.#values.add(this.#exact.lists, at, value)) {
      return false;
    }
    this.#size++;
    return true;
  }

  /** Where the list record of `pattern` (split into `segs`) is in the exact table's `lists`, -1 if it has none. */
  #findExact(pattern: string, segs: readonly string[]): number {
    const key = exactKey(segs.map((seg) => this.#segments.get(seg)));
    return key < 0 ? -1 : this.#exact.find(key, pattern);
  }

  #removeExact(pattern: string, value: T): boolean {
    const segs = splitTopic(pattern);
    const at = this.#findExact(pattern, segs);
    if (at < 0 || !this.#values.remove(this.#exact.lists, at, value)) return false;
    this.#size--;
    if (this.#exact.lists[at + LENGTH]! > 0) return true;
    this.#exact.delete(at);
    this.#exactPatterns--;
    for (const seg of segs) this.#segments.release(this.#segments.get(seg));
    return true;
  }

  #addWildcard(segs: readonly string[], value: T): boolean {
    const trie = this.#trie;
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    let node = ROOT;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      let child: number;
      if (seg === SINGLE_WILDCARD) {
        child = trie.star(node);
        if (child === NONE) {
          child = trie.alloc();
          trie.setStar(node, child);
          this.#nodes++;
        }
      } else {
        const id = this.#segments.get(seg);
        child = id === NO_ID ? NONE : trie.child(node, id);
        if (child === NONE) {
          child = trie.alloc();
          trie.link(node, this.#segments.hold(seg), child);
          this.#nodes++;
        }
      }
      node = child;
    }
    const at = node * NODE + (multi ? REST : EXACT);
    const fresh = trie.meta[at + LENGTH] === 0;
    if (!this.#values.add(trie.meta, at, value)) return false;
    if (fresh) this.#wildcardPatterns++;
    this.#size++;
    return true;
  }

  /** Removes one (pattern, value) entry; false when it was not present. Prunes emptied nodes. */
  remove(pattern: string, value: T): boolean {
    if (!hasWildcard(pattern)) return this.#removeExact(pattern, value);
    const segs = splitTopic(pattern);
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    // The path and the ids of its edges (NO_ID for `*`) are kept so that emptied nodes can be unlinked bottom-up.
    const trie = this.#trie;
    const path = [ROOT];
    const edges: number[] = [];
    let node = ROOT;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      // A `#` anywhere but last was never accepted by add().
      if (seg === MULTI_WILDCARD) return false;
      if (seg === SINGLE_WILDCARD) {
        node = trie.star(node);
        edges.push(NO_ID);
      } else {
        const id = this.#segments.get(seg);
        node = id === NO_ID ? NONE : trie.child(node, id);
        edges.push(id);
      }
      if (node === NONE) return false;
      path.push(node);
    }
    const at = node * NODE + (multi ? REST : EXACT);
    if (!this.#values.remove(trie.meta, at, value)) return false;
    this.#size--;
    if (trie.meta[at + LENGTH] === 0) {
      this.#wildcardPatterns--;
      this.#prune(path, edges);
    }
    return true;
  }

  #prune(path: readonly number[], edges: readonly number[]): void {
    const trie = this.#trie;
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i]!;
      if (!trie.isEmpty(node)) return;
      const parent = path[i - 1]!;
      const id = edges[i - 1]!;
      if (id === NO_ID) {
        trie.setStar(parent, NONE);
      } else {
        trie.unlink(parent, id);
        this.#segments.release(id);
      }
      trie.release(node);
      this.#nodes--;
    }
  }

  /** Whether the (pattern, value) entry is present. */
  has(pattern: string, value: T): boolean {
    const list = this.#listOf(pattern);
    return list !== undefined && this.#values.has(list[0], list[1], value);
  }

  /** Whether any value is subscribed with exactly this pattern. */
  hasPattern(pattern: string): boolean {
    const list = this.#listOf(pattern);
    return list !== undefined && list[0][list[1] + LENGTH]! > 0;
  }

  /** The records array and position of `pattern`'s value list (possibly empty: a trie node's), undefined if it has none. */
  #listOf(pattern: string): [Int32Array, number] | undefined {
    if (!hasWildcard(pattern)) {
      const at = this.#findExact(pattern, splitTopic(pattern));
      return at < 0 ? undefined : [this.#exact.lists, at];
    }
    const at = this.#wildcardList(pattern);
    return at < 0 ? undefined : [this.#trie.meta, at];
  }

  /** Where the record of a wildcard pattern's value list is in the trie's `meta`, -1 if the pattern has no node. */
  #wildcardList(pattern: string): number {
    const segs = splitTopic(pattern);
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    const trie = this.#trie;
    let node = ROOT;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      if (seg === MULTI_WILDCARD) return -1;
      if (seg === SINGLE_WILDCARD) {
        node = trie.star(node);
      } else {
        const id = this.#segments.get(seg);
        node = id === NO_ID ? NONE : trie.child(node, id);
      }
      if (node === NONE) return -1;
    }
    return node * NODE + (multi ? REST : EXACT);
  }

  /**
   * Where the list record of the exact pattern equal to the topic (whose
   * segment ids are `ids[0..end)`) is in the exact table's `lists`, -1 if
   * no exact pattern equals it.
   */
  #exactList(topic: string, ids: readonly number[], end: number): number {
    if (this.#exactPatterns === 0) return -1;
    const key = exactKey(ids, end);
    if (key < 0) return -1;
    return this.#exact.find(key, topic);
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
    const ids = this.#visiting ? [] : this.#ids;
    const end = this.#segments.idsOf(topic, segments, ids);
    const exact = this.#exactList(topic, ids, end);
    if (exact >= 0) {
      const lists = this.#exact.lists;
      const values = this.#values.values;
      for (let k = lists[exact + START]!, e = k + lists[exact + LENGTH]!; k < e; k++) out.push(values[k] as T);
    }
    if (this.#wildcardPatterns > 0) this.#trie.collect(ROOT, ids, end, 0, out);
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
    const outer = !this.#visiting;
    const ids = outer ? this.#ids : [];
    const end = this.#segments.idsOf(topic, segments, ids);
    this.#visiting = true;
    try {
      let n = 0;
      const exact = this.#exactList(topic, ids, end);
      if (exact >= 0) {
        const lists = this.#exact.lists;
        const values = this.#values.values;
        n = lists[exact + LENGTH]!;
        for (let k = lists[exact + START]!, e = k + n; k < e; k++) fn(values[k] as T);
      }
      if (this.#wildcardPatterns > 0) n += this.#trie.visit(ROOT, ids, end, 0, fn);
      return n;
    } finally {
      if (outer) this.#visiting = false;
    }
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
    this.#values = new ValuePool();
    this.#trie = new Nodes<T>(this.#values);
    this.#exact = new ExactTable();
    this.#exactPatterns = 0;
    this.#segments = new SegmentIds();
    this.#size = 0;
    this.#wildcardPatterns = 0;
    this.#nodes = 0;
  }

  *#lists(): Generator<[string, T[]]> {
    // Copied first: removals while the caller iterates move the exact table's slots.
    const exact = [...this.#exact.entries()].map(([pattern, at]): [string, T[]] => [pattern, this.#values.list(this.#exact.lists, at)]);
    yield* exact;
    const trie = this.#trie;
    const children = new Map<number, Array<[number, number]>>();
    for (const [parent, seg, child] of trie.allEdges()) {
      const list = children.get(parent);
      if (list === undefined) children.set(parent, [[seg, child]]);
      else list.push([seg, child]);
    }
    // Iterative depth-first walk of the wildcard trie.
    const stack: Array<[number, string[]]> = [[ROOT, []]];
    while (stack.length > 0) {
      const [node, path] = stack.pop()!;
      const at = node * NODE;
      if (trie.meta[at + EXACT + LENGTH]! > 0) yield [path.join(TOPIC_SEPARATOR), this.#values.list(trie.meta, at + EXACT)];
      if (trie.meta[at + REST + LENGTH]! > 0) yield [[...path, MULTI_WILDCARD].join(TOPIC_SEPARATOR), this.#values.list(trie.meta, at + REST)];
      if (trie.star(node) !== NONE) stack.push([trie.star(node), [...path, SINGLE_WILDCARD]]);
      for (const [seg, child] of children.get(node) ?? []) stack.push([child, [...path, this.#segments.name(seg)]]);
    }
  }
}
