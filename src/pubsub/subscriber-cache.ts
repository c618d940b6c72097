/**
 * Finds the subscriber nodes of a topic: two bounded LRU caches with TTL in
 * front of the DHT, each single-flight through lru-cache's `fetchMethod`
 * (concurrent misses of one key share one resolution).
 *
 * - Prefix level: literal prefix → the subscription records under its key
 *   (node, address, patterns). A topic of n segments needs the n + 1 prefixes
 *   '', s1, s1.s2, …, the topic itself: looked up in parallel and each
 *   cached for the TTL, empty answers included, so a key costs at most one
 *   DHT lookup per TTL however hot it is. A lookup that fails keeps the
 *   entry it was refreshing (for another TTL), or caches an empty one.
 * - Topic level: topic → the nodes with at least one pattern matching it,
 *   built from the prefix entries and kept no longer than the oldest of
 *   them. A publish of a known topic is one map lookup.
 *
 * Stale while revalidate: an entry past its TTL is still answered at once
 * while it is rebuilt in the background, so a publish never waits for a
 * DHT lookup of a topic it has published to before (a lookup that may be
 * slow while dead nodes are still in routing tables). Only a topic never
 * seen, or evicted, waits.
 *
 * Invalidation does not go back to the DHT (which may still hold the old
 * record for a moment): UNSUBSCRIBED from a node removes its patterns that
 * match the topic from the cached prefix entries; a node that went down is
 * left out of topic answers (the ones listing it are dropped, rebuilt
 * without it and remember that they left it out); when it is up again only
 * the answers that left it out are dropped. Without the failure detection
 * (`forget`) a node is removed from every entry.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../util/clock.js';
import { dhtKey } from '../dht/key.js';
import { recordPublisherId, type DhtRecord } from '../dht/record.js';
import { toHex } from '../identity/identity.js';
import type { PeerAddress } from '../transport/types.js';
import type { RecordAuth } from '../auth/record-auth.js';
import { announcementKeyNamespace, decodeAnnouncement, type QueueEntry } from './announcement.js';
import type { Peer } from './fanout.js';
import { matchSegments, prefixesOf, type TopicLimits } from './topic.js';

/** What the cache needs from the DHT (Dht implements it). */
export interface SubscriberCacheDht {
  findValue(key: Uint8Array): Promise<{ records: DhtRecord[] }>;
}

export interface SubscriberCacheComponents {
  dht: SubscriberCacheDht;
  realm: string;
  /** This node's ID (hex): its own records are skipped, local delivery is direct. */
  selfId: string;
  /** Injected in tests; the default is the system clock. */
  clock?: Clock;
  /** The shared Peer object of a node. */
  peer: (nodeId: string, address: PeerAddress) => Peer;
  /** In a secured realm: announcements whose publisher may not subscribe their patterns are skipped. */
  auth?: RecordAuth;
  /** Nodes the failure detection holds down are left out of topic answers until they are up (then the cache is cleared). */
  isDown?: (nodeId: string) => boolean;
}

export interface SubscriberCacheInit {
  ttlMs: number;
  max: number;
  /** Limits that patterns read from records must satisfy. */
  limits: TopicLimits;
}

export interface SubscriberCacheStats {
  topicHits: number;
  /** Publishes answered from an entry past its TTL while it was rebuilt in the background. */
  staleHits: number;
  topicMisses: number;
  topicSize: number;
  prefixHits: number;
  prefixMisses: number;
  prefixSize: number;
  dhtLookups: number;
  lookupFailures: number;
  /** Records whose value could not be decoded (dropped). */
  malformed: number;
  invalidations: number;
}

interface PrefixSub {
  readonly peer: Peer;
  patterns: string[][];
  queues: QueueEntry[];
}

/** Where a topic's messages go besides this node. */
export interface TopicTargets {
  /** Nodes with a plain subscription matching the topic. */
  readonly nodes: readonly Peer[];
  /** Queue group → its member nodes (in node ID order), when any group matches the topic. */
  readonly groups: ReadonlyMap<string, readonly Peer[]> | undefined;
}

interface PrefixEntry {
  subs: PrefixSub[];
}

/** A topic's answer, and the nodes left out of it because they were down (dropped once they are up). */
interface TopicEntry {
  readonly targets: TopicTargets;
  readonly leftOut: readonly string[] | undefined;
}

export const NO_PEERS: readonly Peer[] = Object.freeze([]);
const NO_TARGETS: TopicTargets = Object.freeze({ nodes: NO_PEERS, groups: undefined });

function hasNode(t: TopicTargets, nodeId: string): boolean {
  if (t.nodes.some((p) => p.nodeId === nodeId)) return true;
  if (t.groups !== undefined) for (const members of t.groups.values()) if (members.some((p) => p.nodeId === nodeId)) return true;
  return false;
}

const ALLOW_STALE = { allowStale: true } as const;

function matchesAny(patterns: readonly string[][], segs: readonly string[]): boolean {
  for (const p of patterns) if (matchSegments(p, segs)) return true;
  return false;
}

export class SubscriberCache {
  readonly #dht: SubscriberCacheDht;
  readonly #auth: RecordAuth | undefined;
  readonly #namespace: string;
  readonly #selfId: string;
  readonly #peer: (nodeId: string, address: PeerAddress) => Peer;
  readonly #isDown: ((nodeId: string) => boolean) | undefined;
  readonly #limits: TopicLimits;
  readonly #topics: LRUCache<string, TopicEntry, readonly string[]>;
  readonly #prefixes: LRUCache<string, PrefixEntry>;
  /** Bumped by every invalidation: a resolution that started before one is built again. */
  #generation = 0;
  #s = { topicHits: 0, staleHits: 0, topicMisses: 0, prefixHits: 0, prefixMisses: 0, dhtLookups: 0, lookupFailures: 0, malformed: 0, invalidations: 0 };

  constructor(components: SubscriberCacheComponents, init: SubscriberCacheInit) {
    this.#dht = components.dht;
    this.#auth = components.auth;
    this.#namespace = announcementKeyNamespace(components.realm);
    this.#selfId = components.selfId;
    this.#peer = components.peer;
    this.#isDown = components.isDown;
    this.#limits = init.limits;
    // An injected clock drives entry ages too (tests advance time by hand);
    // otherwise lru-cache's own timer, which reads the clock at most once per ms.
    const timing = components.clock ? { perf: components.clock, ttlResolution: 0 } : {};
    // Stale entries are kept (a fresh-only get() does not delete them) to be answered while their
    // refresh runs; a refresh whose entry was dropped meanwhile answers its waiters but is not stored.
    const stale = { noDeleteOnStaleGet: true, ignoreFetchAbort: true } as const;
    this.#topics = new LRUCache<string, TopicEntry, readonly string[]>({
      max: init.max,
      ttl: init.ttlMs,
      ...timing,
      ...stale,
      fetchMethod: (topic, _old, { context, options }) => this.#resolve(topic, context, options),
    });
    this.#prefixes = new LRUCache<string, PrefixEntry>({
      max: init.max,
      ttl: init.ttlMs,
      ...timing,
      ...stale,
      fetchMethod: (prefix, old) => this.#fetch(prefix, old),
    });
  }

  /** The subscriber nodes and queue groups of `topic` (not this node): the cached answer when there is one (stale ones included), else a promise. */
  lookup(topic: string, segs: readonly string[]): TopicTargets | Promise<TopicTargets> {
    const hit = this.#topics.get(topic);
    if (hit !== undefined) {
      this.#s.topicHits++;
      return hit.targets;
    }
    const stale = this.#topics.peek(topic, ALLOW_STALE);
    // Built (once: single-flight) in the background when a stale answer is given meanwhile.
    const fresh = this.#topics.fetch(topic, { context: segs }).then((e) => e?.targets ?? NO_TARGETS);
    if (stale !== undefined) {
      this.#s.staleHits++;
      return stale.targets;
    }
    this.#s.topicMisses++;
    return fresh;
  }

  /**
   * `nodeId` has no subscription matching `topic` any more: drop those
   * patterns of it. A notice that changes nothing costs n + 1 map reads, so
   * repeated notices cannot make a node rebuild its caches.
   */
  unsubscribed(nodeId: string, topic: string, segs: readonly string[]): void {
    this.#topics.delete(topic);
    let changed = false;
    for (const prefix of prefixesOf(topic)) {
      const entry = this.#prefixes.peek(prefix, { allowStale: true });
      if (entry === undefined || !entry.subs.some((s) => s.peer.nodeId === nodeId)) continue;
      const subs: PrefixSub[] = [];
      for (const s of entry.subs) {
        if (s.peer.nodeId !== nodeId) subs.push(s);
        else {
          const rest = s.patterns.filter((p) => !matchSegments(p, segs));
          const queues = s.queues.filter((q) => !matchSegments(q.segs, segs));
          if (rest.length !== s.patterns.length || queues.length !== s.queues.length) changed = true;
          if (rest.length + queues.length > 0) subs.push({ peer: s.peer, patterns: rest, queues });
        }
      }
      entry.subs = subs;
    }
    if (!changed) return;
    this.#s.invalidations++;
    this.#generation++;
    // Other topics may list the node for the patterns just removed; they are rebuilt from the prefix entries.
    this.#dropTopicsWith(nodeId);
  }

  /** Without the failure detection: the node is gone, remove it from every entry (O(entries), once per outage). */
  forget(nodeId: string): void {
    this.#s.invalidations++;
    this.#generation++;
    for (const entry of this.#prefixes.values()) {
      if (entry.subs.some((s) => s.peer.nodeId === nodeId)) entry.subs = entry.subs.filter((s) => s.peer.nodeId !== nodeId);
    }
    this.#dropTopicsWith(nodeId);
  }

  /** The failure detection holds the node down: the topic answers listing it are rebuilt without it (O(entries), once per outage). */
  down(nodeId: string): void {
    this.#s.invalidations++;
    this.#generation++;
    this.#dropTopicsWith(nodeId);
  }

  /** The node is up again: only the topic answers that left it out are dropped (O(entries), once per outage). */
  up(nodeId: string): void {
    const stale: string[] = [];
    for (const [topic, { value: e }] of this.#topics.dump()) if (e.leftOut?.includes(nodeId)) stale.push(topic);
    if (stale.length === 0) return;
    this.#s.invalidations++;
    this.#generation++;
    for (const topic of stale) this.#topics.delete(topic);
  }

  stats(): SubscriberCacheStats {
    return { ...this.#s, topicSize: this.#topics.size, prefixSize: this.#prefixes.size };
  }

  clear(): void {
    this.#generation++;
    this.#topics.clear();
    this.#prefixes.clear();
  }

  /** Drops the answers listing the node, stale ones included (they are answered while rebuilt). */
  #dropTopicsWith(nodeId: string): void {
    const stale: string[] = [];
    for (const [topic, { value: e }] of this.#topics.dump()) if (hasNode(e.targets, nodeId)) stale.push(topic);
    for (const topic of stale) this.#topics.delete(topic);
  }

  /** The fetchMethod of the topic level: the answer built from the prefix entries, cached no longer than the oldest of them. */
  async #resolve(topic: string, segs: readonly string[], options: { ttl?: number }): Promise<TopicEntry> {
    const prefixes = prefixesOf(topic);
    let entry: TopicEntry;
    for (let attempt = 0; ; attempt++) {
      const generation = this.#generation;
      const entries = await Promise.all(prefixes.map((p) => this.#prefix(p)));
      entry = this.#build(entries, segs);
      if (generation === this.#generation || attempt === 2) break;
      // Invalidated meanwhile: build it again from the entries as they are now.
    }
    let ttl = Infinity;
    for (const p of prefixes) ttl = Math.min(ttl, this.#prefixes.getRemainingTTL(p));
    // lru-cache reads a TTL of 0 as "no TTL": an answer whose prefix entries are already past theirs is stale at once.
    options.ttl = ttl > 0 && Number.isFinite(ttl) ? ttl : 1;
    return entry;
  }

  #build(entries: readonly PrefixEntry[], segs: readonly string[]): TopicEntry {
    let peers: Peer[] | undefined;
    let groups: Map<string, Peer[]> | undefined;
    let leftOut: string[] | undefined;
    const seen = new Set<Peer>();
    for (const entry of entries) {
      for (const s of entry.subs) {
        if (this.#isDown?.(s.peer.nodeId) === true) {
          if ((matchesAny(s.patterns, segs) || s.queues.some((q) => matchSegments(q.segs, segs))) && !leftOut?.includes(s.peer.nodeId)) (leftOut ??= []).push(s.peer.nodeId);
          continue;
        }
        for (const q of s.queues) {
          if (!matchSegments(q.segs, segs)) continue;
          groups ??= new Map();
          const members = groups.get(q.group);
          if (members === undefined) groups.set(q.group, [s.peer]);
          else if (!members.includes(s.peer)) members.push(s.peer);
        }
        if (seen.has(s.peer) || !matchesAny(s.patterns, segs)) continue;
        seen.add(s.peer);
        (peers ??= []).push(s.peer);
      }
    }
    // One order for every publisher, whatever order the DHT answered in: round-robin over it spreads evenly.
    if (groups !== undefined) for (const members of groups.values()) members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    const targets: TopicTargets = peers === undefined && groups === undefined ? NO_TARGETS : { nodes: peers ?? NO_PEERS, groups };
    return { targets, leftOut };
  }

  /** A prefix entry for a topic answer being built: a fresh one, else the DHT's (a stale one is refreshed first; the topic's own stale answer is what publishes get meanwhile). */
  #prefix(prefix: string): PrefixEntry | Promise<PrefixEntry> {
    const hit = this.#prefixes.get(prefix);
    if (hit !== undefined) {
      this.#s.prefixHits++;
      return hit;
    }
    this.#s.prefixMisses++;
    return this.#prefixes.fetch(prefix).then((e) => e ?? { subs: [] });
  }

  /** The fetchMethod of the prefix level: the subscription records under the prefix's key. */
  async #fetch(prefix: string, old: PrefixEntry | undefined): Promise<PrefixEntry> {
    this.#s.dhtLookups++;
    const subs: PrefixSub[] = [];
    try {
      const { records } = await this.#dht.findValue(dhtKey(this.#namespace, prefix));
      for (const record of records) {
        const nodeId = toHex(recordPublisherId(record));
        if (nodeId === this.#selfId) continue;
        const a = decodeAnnouncement(record.value, prefix, this.#limits);
        if (a === undefined) {
          this.#s.malformed++;
          continue;
        }
        const subjects = this.#auth && [...a.patterns, ...a.queues.map((q) => q.segs)].map((p) => p.join('.'));
        if (subjects && !(await this.#auth!.permits(record.publisher, a.credential, 'sub', subjects))) continue;
        subs.push({ peer: this.#peer(nodeId, a.address), patterns: a.patterns, queues: a.queues });
      }
    } catch {
      // A failing DHT is asked again after the TTL, not on every publish; what was known stays meanwhile.
      this.#s.lookupFailures++;
      return old ?? { subs };
    }
    return { subs };
  }
}
