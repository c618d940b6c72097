/**
 * The local subscription index: pattern → values, matched by topic.
 *
 * Patterns without wildcards sit in one Map keyed by the whole pattern: one
 * lookup on the unsplit topic finds them. Patterns with wildcards sit in a
 * trie over segments; each node keeps a Map of literal children, at most one
 * `*` child, the values of patterns that end at the node, and the values of
 * patterns that end at the node with a trailing `#`. Matching walks at most
 * two children per segment (the literal one and `*`) and collects the `#`
 * values met on the way, so its cost grows with the topic's segments and with
 * the wildcard branches actually present, never with the number of
 * subscriptions.
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

class TrieNode<T> {
  literal: Map<string, TrieNode<T>> | undefined = undefined;
  star: TrieNode<T> | undefined = undefined;
  /** Values of the pattern that ends exactly here. */
  exact: Set<T> | undefined = undefined;
  /** Values of the pattern that ends here followed by `#`. */
  rest: Set<T> | undefined = undefined;

  isEmpty(): boolean {
    return this.literal === undefined && this.star === undefined && this.exact === undefined && this.rest === undefined;
  }
}

// Module-level walkers (not methods or closures) keep the hot loop monomorphic.

function collect<T>(start: TrieNode<T>, segs: readonly string[], from: number, out: T[]): void {
  let node = start;
  let i = from;
  for (;;) {
    if (node.rest !== undefined) for (const v of node.rest) out.push(v);
    if (i === segs.length) {
      if (node.exact !== undefined) for (const v of node.exact) out.push(v);
      return;
    }
    const star = node.star;
    const lit = node.literal === undefined ? undefined : node.literal.get(segs[i]!);
    i++;
    if (lit !== undefined) {
      if (star !== undefined) collect(star, segs, i, out);
      node = lit;
    } else if (star !== undefined) {
      node = star;
    } else {
      return;
    }
  }
}

function visit<T>(start: TrieNode<T>, segs: readonly string[], from: number, fn: (value: T) => void): number {
  let node = start;
  let i = from;
  let n = 0;
  for (;;) {
    if (node.rest !== undefined) {
      for (const v of node.rest) {
        n++;
        fn(v);
      }
    }
    if (i === segs.length) {
      if (node.exact !== undefined) {
        for (const v of node.exact) {
          n++;
          fn(v);
        }
      }
      return n;
    }
    const star = node.star;
    const lit = node.literal === undefined ? undefined : node.literal.get(segs[i]!);
    i++;
    if (lit !== undefined) {
      if (star !== undefined) n += visit(star, segs, i, fn);
      node = lit;
    } else if (star !== undefined) {
      node = star;
    } else {
      return n;
    }
  }
}

export class TopicTrie<T> {
  readonly #limits: TopicLimits;
  /** Patterns with a wildcard, indexed segment by segment. */
  #root = new TrieNode<T>();
  /**
   * Patterns without a wildcard, keyed by the whole pattern. Most
   * subscriptions are exact; keeping them out of the trie turns their match
   * into one lookup on the unsplit topic and keeps the trie, walked on every
   * publish, small.
   */
  #exact = new Map<string, Set<T>>();
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
    return this.#exact.size + this.#wildcardPatterns;
  }

  /**
   * Adds `value` under `pattern`; false when that exact pair is already present.
   * @throws InvalidTopicError when the pattern is invalid
   */
  add(pattern: string, value: T): boolean {
    const segs = validatePattern(pattern, this.#limits);
    if (hasWildcard(pattern)) return this.#addWildcard(segs, value);
    let set = this.#exact.get(pattern);
    if (set === undefined) {
      set = new Set();
      this.#exact.set(pattern, set);
    } else if (set.has(value)) {
      return false;
    }
    set.add(value);
    this.#size++;
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
        const children = (node.literal ??= new Map());
        let child = children.get(seg);
        if (child === undefined) {
          child = new TrieNode<T>();
          children.set(seg, child);
          this.#nodes++;
        }
        node = child;
      }
    }
    let set = multi ? node.rest : node.exact;
    if (set === undefined) {
      set = new Set();
      if (multi) node.rest = set;
      else node.exact = set;
      this.#wildcardPatterns++;
    } else if (set.has(value)) {
      return false;
    }
    set.add(value);
    this.#size++;
    return true;
  }

  /** Removes one (pattern, value) entry; false when it was not present. Prunes emptied nodes. */
  remove(pattern: string, value: T): boolean {
    if (!hasWildcard(pattern)) {
      const set = this.#exact.get(pattern);
      if (set === undefined || !set.delete(value)) return false;
      if (set.size === 0) this.#exact.delete(pattern);
      this.#size--;
      return true;
    }
    const segs = splitTopic(pattern);
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    // The path is kept so that emptied nodes can be unlinked bottom-up.
    const path: TrieNode<T>[] = [this.#root];
    let node: TrieNode<T> | undefined = this.#root;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      // A `#` anywhere but last was never accepted by add().
      if (seg === MULTI_WILDCARD) return false;
      node = seg === SINGLE_WILDCARD ? node.star : node.literal?.get(seg);
      if (node === undefined) return false;
      path.push(node);
    }
    const set = multi ? node.rest : node.exact;
    if (set === undefined || !set.delete(value)) return false;
    this.#size--;
    if (set.size === 0) {
      if (multi) node.rest = undefined;
      else node.exact = undefined;
      this.#wildcardPatterns--;
      this.#prune(path, segs);
    }
    return true;
  }

  #prune(path: TrieNode<T>[], segs: readonly string[]): void {
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i]!;
      if (!node.isEmpty()) return;
      const parent = path[i - 1]!;
      const seg = segs[i - 1]!;
      this.#nodes--;
      if (seg === SINGLE_WILDCARD) {
        parent.star = undefined;
      } else {
        parent.literal!.delete(seg);
        if (parent.literal!.size === 0) parent.literal = undefined;
      }
    }
  }

  /** Whether the (pattern, value) entry is present. */
  has(pattern: string, value: T): boolean {
    return this.#values(pattern)?.has(value) ?? false;
  }

  /** Whether any value is subscribed with exactly this pattern. */
  hasPattern(pattern: string): boolean {
    return this.#values(pattern) !== undefined;
  }

  #values(pattern: string): Set<T> | undefined {
    if (!hasWildcard(pattern)) return this.#exact.get(pattern);
    const segs = splitTopic(pattern);
    const multi = segs[segs.length - 1] === MULTI_WILDCARD;
    const depth = multi ? segs.length - 1 : segs.length;
    let node: TrieNode<T> | undefined = this.#root;
    for (let i = 0; i < depth && node !== undefined; i++) {
      const seg = segs[i]!;
      if (seg === MULTI_WILDCARD) return undefined;
      node = seg === SINGLE_WILDCARD ? node.star : node.literal?.get(seg);
    }
    if (node === undefined) return undefined;
    return multi ? node.rest : node.exact;
  }

  /**
   * Values of every entry whose pattern matches `topic`, one per matching
   * (pattern, value) entry, in no particular order. The topic is not
   * validated here: validate published topics once, where they enter, and
   * pass the segments `validateTopic` returned to save splitting it again.
   */
  match(topic: string, segments?: readonly string[]): T[] {
    const out: T[] = [];
    const exact = this.#exact.get(topic);
    if (exact !== undefined) for (const v of exact) out.push(v);
    if (this.#wildcardPatterns > 0) collect(this.#root, segments ?? splitTopic(topic), 0, out);
    return out;
  }

  /** Like `match`, but each distinct value once. */
  matchUnique(topic: string, segments?: readonly string[]): T[] {
    return [...new Set(this.match(topic, segments))];
  }

  /**
   * Calls `fn` once per matching entry (as `match` would list them) without
   * building an array; returns the number of calls.
   */
  forEachMatch(topic: string, fn: (value: T) => void, segments?: readonly string[]): number {
    let n = 0;
    const exact = this.#exact.get(topic);
    if (exact !== undefined) {
      for (const v of exact) {
        n++;
        fn(v);
      }
    }
    if (this.#wildcardPatterns > 0) n += visit(this.#root, segments ?? splitTopic(topic), 0, fn);
    return n;
  }

  /** The distinct patterns present, each once. */
  *patterns(): IterableIterator<string> {
    for (const [pattern] of this.#sets()) yield pattern;
  }

  /** Every (pattern, value) entry. */
  *entries(): IterableIterator<[string, T]> {
    for (const [pattern, values] of this.#sets()) for (const v of values) yield [pattern, v];
  }

  /** Removes every entry. */
  clear(): void {
    this.#root = new TrieNode<T>();
    this.#exact = new Map();
    this.#size = 0;
    this.#wildcardPatterns = 0;
    this.#nodes = 0;
  }

  *#sets(): Generator<[string, Set<T>]> {
    yield* this.#exact;
    // Iterative depth-first walk of the wildcard trie.
    const stack: Array<[TrieNode<T>, string[]]> = [[this.#root, []]];
    while (stack.length > 0) {
      const [node, path] = stack.pop()!;
      if (node.exact !== undefined) yield [path.join(TOPIC_SEPARATOR), node.exact];
      if (node.rest !== undefined) yield [[...path, MULTI_WILDCARD].join(TOPIC_SEPARATOR), node.rest];
      if (node.star !== undefined) stack.push([node.star, [...path, SINGLE_WILDCARD]]);
      if (node.literal !== undefined) for (const [seg, child] of node.literal) stack.push([child, [...path, seg]]);
    }
  }
}
