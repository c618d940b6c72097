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
 * plain arrays of values cut those misses (figures in ARCHITECTURE.md,
 * Pub/sub).
 *
 * Entries are (pattern, value) pairs, each stored once. A value subscribed
 * through two patterns that both match a topic is returned twice, once per
 * subscription, because each subscription is delivered to on its own; use
 * `matchUnique` to get each value once.
 *
 * Removing the last entry under a node prunes the node and its emptied
 * ancestors, so memory follows the live subscriptions (the node arrays keep
 * their largest size; pruned ids are reused).
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
 * with indexOf, faster than a Map at that size.
 */
const INDEX_AT = 32;
/** Smallest size of the hash tables (a power of two). */
const MIN_SLOTS = 16;

/** The root's node id. No node has it as a child, so it also stands for "no child". */
const ROOT = 0;
const NONE = 0;
/** Int32 fields per slot of the edge table: parent + 1 (0 when free), segment id, child, padding. */
const EDGE = 4;

/** Hash of a literal edge, from its parent node and its segment id. */
function edgeHash(parent: number, seg: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ seg;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) & 0x3fffffff;
}

/**
 * The trie of the wildcard patterns, stored flat: a node is an integer id,
 * its fields are arrays indexed by that id (its `*` child, its number of
 * literal children, the values of the pattern ending at it and of the one
 * ending at it followed by `#`), and every literal edge of the trie sits in
 * one open-addressing table keyed by (parent, segment id). A step of a walk
 * reads a slot of that table and a few array elements, all compact, instead
 * of a node object, its Map and the Map's table, each somewhere else in the
 * heap. Ids of pruned nodes are reused; the arrays keep their largest size.
 */
class Nodes<T> {
  star: Int32Array = new Int32Array(MIN_SLOTS);
  kids: Int32Array = new Int32Array(MIN_SLOTS);
  exact: Array<T[] | undefined> = [undefined];
  rest: Array<T[] | undefined> = [undefined];
  edges = new Int32Array(MIN_SLOTS * EDGE);
  #edgeCount = 0;
  #free: number[] = [];

  /** A new empty node. */
  alloc(): number {
    const id = this.#free.pop() ?? this.exact.length;
    if (id === this.exact.length) {
      this.exact.push(undefined);
      this.rest.push(undefined);
      if (id === this.star.length) {
        this.star = grown(this.star);
        this.kids = grown(this.kids);
      }
    }
    return id;
  }

  /** Gives back an empty node's id. */
  release(node: number): void {
    this.#free.push(node);
  }

  isEmpty(node: number): boolean {
    return this.star[node] === NONE && this.kids[node] === 0 && this.exact[node] === undefined && this.rest[node] === undefined;
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
    this.kids[parent]!++;
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
    this.kids[parent]!--;
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
    const { star, kids, exact, rest } = this;
    let node = start;
    let i = from;
    for (;;) {
      const r = rest[node];
      if (r !== undefined) for (let k = 0; k < r.length; k++) out.push(r[k]!);
      if (i === end) {
        const e = exact[node];
        if (e !== undefined) for (let k = 0; k < e.length; k++) out.push(e[k]!);
        return;
      }
      const s = star[node]!;
      const id = ids[i]!;
      const lit = id === NO_ID || kids[node] === 0 ? NONE : this.child(node, id);
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
    const { star, kids, exact, rest } = this;
    let node = start;
    let i = from;
    let n = 0;
    for (;;) {
      const r = rest[node];
      if (r !== undefined) {
        for (let k = 0; k < r.length; k++) fn(r[k]!);
        n += r.length;
      }
      if (i === end) {
        const e = exact[node];
        if (e !== undefined) {
          for (let k = 0; k < e.length; k++) fn(e[k]!);
          n += e.length;
        }
        return n;
      }
      const s = star[node]!;
      const id = ids[i]!;
      const lit = id === NO_ID || kids[node] === 0 ? NONE : this.child(node, id);
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

/** Position of `value` in `list` by SameValueZero (as a Set would compare), -1 when absent. */
function linearPosition<T>(list: readonly T[], value: T): number {
  // Only NaN differs from itself; indexOf never finds it.
  return value === value ? list.indexOf(value) : list.findIndex((x) => x !== x);
}

export class TopicTrie<T> {
  readonly #limits: TopicLimits;
  /** Patterns with a wildcard, indexed segment by segment. */
  #trie = new Nodes<T>();
  /**
   * Patterns without a wildcard, keyed by `exactKey` of their segment ids.
   * Most subscriptions are exact; keeping them out of the trie turns their
   * match into one lookup and keeps the trie, walked on every publish, small.
   */
  #exact = new ExactTable<T>();
  #exactPatterns = 0;
  /** Value → position indexes of the value lists that grew long (see INDEX_AT). */
  #positions = new Map<T[], Map<T, number>>();
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
    const entry = this.#findExact(pattern, segs);
    if (entry !== undefined) {
      if (!this.#push(entry.values, value)) return false;
    } else {
      const key = exactKey(segs.map((seg) => this.#segments.hold(seg)));
      this.#exact.set(key, new ExactEntry(pattern, [value], this.#exact.get(key)));
      this.#exactPatterns++;
    }
    this.#size++;
    return true;
  }

  #findExact(pattern: string, segs: readonly string[]): ExactEntry<T> | undefined {
    const key = exactKey(segs.map((seg) => this.#segments.get(seg)));
    if (key < 0) return undefined;
    let entry = this.#exact.get(key);
    while (entry !== undefined && entry.pattern !== pattern) entry = entry.next;
    return entry;
  }

  #removeExact(pattern: string, value: T): boolean {
    const segs = splitTopic(pattern);
    const entry = this.#findExact(pattern, segs);
    if (entry === undefined || !this.#pull(entry.values, value)) return false;
    this.#size--;
    if (entry.values.length > 0) return true;
    const ids = segs.map((seg) => this.#segments.get(seg));
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
    for (const id of ids) this.#segments.release(id);
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
        child = trie.star[node]!;
        if (child === NONE) {
          child = trie.alloc();
          trie.star[node] = child;
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
    const lists = multi ? trie.rest : trie.exact;
    const list = lists[node];
    if (list === undefined) {
      lists[node] = [value];
      this.#wildcardPatterns++;
    } else if (!this.#push(list, value)) {
      return false;
    }
    this.#size++;
    return true;
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
    const trie = this.#trie;
    const path = [ROOT];
    const edges: number[] = [];
    let node = ROOT;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      // A `#` anywhere but last was never accepted by add().
      if (seg === MULTI_WILDCARD) return false;
      if (seg === SINGLE_WILDCARD) {
        node = trie.star[node]!;
        edges.push(NO_ID);
      } else {
        const id = this.#segments.get(seg);
        node = id === NO_ID ? NONE : trie.child(node, id);
        edges.push(id);
      }
      if (node === NONE) return false;
      path.push(node);
    }
    const lists = multi ? trie.rest : trie.exact;
    const list = lists[node];
    if (list === undefined || !this.#pull(list, value)) return false;
    this.#size--;
    if (list.length === 0) {
      lists[node] = undefined;
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
        trie.star[parent] = NONE;
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
    const trie = this.#trie;
    let node = ROOT;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      if (seg === MULTI_WILDCARD) return undefined;
      if (seg === SINGLE_WILDCARD) {
        node = trie.star[node]!;
      } else {
        const id = this.#segments.get(seg);
        node = id === NO_ID ? NONE : trie.child(node, id);
      }
      if (node === NONE) return undefined;
    }
    return multi ? trie.rest[node] : trie.exact[node];
  }

  /** Values of the exact pattern equal to the topic whose segment ids are `ids[0..end)`. */
  #exactValues(topic: string, ids: readonly number[], end: number): T[] | undefined {
    if (this.#exactPatterns === 0) return undefined;
    const key = exactKey(ids, end);
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
    const ids = this.#visiting ? [] : this.#ids;
    const end = this.#segments.idsOf(topic, segments, ids);
    const exact = this.#exactValues(topic, ids, end);
    if (exact !== undefined) for (let k = 0; k < exact.length; k++) out.push(exact[k]!);
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
      const exact = this.#exactValues(topic, ids, end);
      if (exact !== undefined) {
        for (let k = 0; k < exact.length; k++) fn(exact[k]!);
        n = exact.length;
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
    this.#trie = new Nodes<T>();
    this.#exact = new ExactTable();
    this.#exactPatterns = 0;
    this.#positions = new Map();
    this.#segments = new SegmentIds();
    this.#size = 0;
    this.#wildcardPatterns = 0;
    this.#nodes = 0;
  }

  *#lists(): Generator<[string, T[]]> {
    for (const head of this.#exact.values()) {
      for (let entry: ExactEntry<T> | undefined = head; entry !== undefined; entry = entry.next) yield [entry.pattern, entry.values];
    }
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
      const exact = trie.exact[node];
      const rest = trie.rest[node];
      if (exact !== undefined) yield [path.join(TOPIC_SEPARATOR), exact];
      if (rest !== undefined) yield [[...path, MULTI_WILDCARD].join(TOPIC_SEPARATOR), rest];
      if (trie.star[node] !== NONE) stack.push([trie.star[node]!, [...path, SINGLE_WILDCARD]]);
      for (const [seg, child] of children.get(node) ?? []) stack.push([child, [...path, this.#segments.name(seg)]]);
    }
  }
}
