/**
 * Finds the subscriber nodes of a topic: two bounded LRU caches with TTL in
 * front of the DHT.
 *
 * - Prefix level: literal prefix → the subscription records under its key
 *   (node, address, patterns). A topic of n segments needs the n + 1 prefixes
 *   '', s1, s1.s2, …, the topic itself: looked up in parallel, each
 *   single-flight (concurrent misses share one `findValue`), and each cached
 *   for the TTL, empty answers and failed lookups included, so a key costs
 *   at most one DHT lookup per TTL however hot it is.
 * - Topic level: topic → the nodes with at least one pattern matching it,
 *   built from the prefix entries and kept no longer than the oldest of
 *   them. A publish of a known topic is one map lookup.
 *
 * Invalidation does not go back to the DHT (which may still hold the old
 * record for a moment): UNSUBSCRIBED from a node removes its patterns that
 * match the topic from the cached prefix entries; a node that went down is
 * removed from every entry. Topic entries built before are dropped and
 * rebuilt from the prefix entries on the next publish.
 */
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../dht/clock.js';
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
  readonly expiresAt: number;
  subs: PrefixSub[];
}

export const NO_PEERS: readonly Peer[] = Object.freeze([]);
const NO_TARGETS: TopicTargets = Object.freeze({ nodes: NO_PEERS, groups: undefined });

function hasNode(t: TopicTargets, nodeId: string): boolean {
  if (t.nodes.some((p) => p.nodeId === nodeId)) return true;
  if (t.groups !== undefined) for (const members of t.groups.values()) if (members.some((p) => p.nodeId === nodeId)) return true;
  return false;
}

function matchesAny(patterns: readonly string[][], segs: readonly string[]): boolean {
  for (const p of patterns) if (matchSegments(p, segs)) return true;
  return false;
}

export class SubscriberCache {
  readonly #dht: SubscriberCacheDht;
  readonly #auth: RecordAuth | undefined;
  readonly #namespace: string;
  readonly #selfId: string;
  readonly #clock: Clock;
  readonly #peer: (nodeId: string, address: PeerAddress) => Peer;
  readonly #isDown: ((nodeId: string) => boolean) | undefined;
  readonly #ttlMs: number;
  readonly #limits: TopicLimits;
  readonly #topics: LRUCache<string, TopicTargets>;
  readonly #prefixes: LRUCache<string, PrefixEntry>;
  readonly #topicFlights = new Map<string, Promise<TopicTargets>>();
  readonly #prefixFlights = new Map<string, Promise<PrefixEntry>>();
  /** Bumped by every invalidation: a resolution that started before one must not cache its result. */
  #generation = 0;
  #s = { topicHits: 0, topicMisses: 0, prefixHits: 0, prefixMisses: 0, dhtLookups: 0, lookupFailures: 0, malformed: 0, invalidations: 0 };

  constructor(components: SubscriberCacheComponents, init: SubscriberCacheInit) {
    this.#dht = components.dht;
    this.#auth = components.auth;
    this.#namespace = announcementKeyNamespace(components.realm);
    this.#selfId = components.selfId;
    this.#clock = components.clock ?? systemClock;
    this.#peer = components.peer;
    this.#isDown = components.isDown;
    this.#ttlMs = init.ttlMs;
    this.#limits = init.limits;
    // An injected clock drives entry ages too (tests advance time by hand);
    // otherwise lru-cache's own timer, which reads the clock at most once per ms.
    const timing = components.clock ? { perf: components.clock, ttlResolution: 0 } : {};
    this.#topics = new LRUCache({ max: init.max, ttl: init.ttlMs, ...timing });
    this.#prefixes = new LRUCache({ max: init.max, ttl: init.ttlMs, ...timing });
  }

  /** The subscriber nodes of `topic` (not this node): the cached answer on a hit, else a promise. */
  lookup(topic: string, segs: readonly string[]): TopicTargets | Promise<TopicTargets> {
    const hit = this.#topics.get(topic);
    if (hit !== undefined) {
      this.#s.topicHits++;
      return hit;
    }
    this.#s.topicMisses++;
    let flight = this.#topicFlights.get(topic);
    if (flight === undefined) {
      const p = this.#resolve(topic, segs).finally(() => {
        if (this.#topicFlights.get(topic) === p) this.#topicFlights.delete(topic);
      });
      this.#topicFlights.set(topic, p);
      flight = p;
    }
    return flight;
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
      const entry = this.#prefixes.peek(prefix);
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

  /** The node is down: remove it from every entry (O(entries), once per outage). */
  forget(nodeId: string): void {
    this.#s.invalidations++;
    this.#generation++;
    for (const entry of this.#prefixes.values()) {
      if (entry.subs.some((s) => s.peer.nodeId === nodeId)) entry.subs = entry.subs.filter((s) => s.peer.nodeId !== nodeId);
    }
    this.#dropTopicsWith(nodeId);
  }

  stats(): SubscriberCacheStats {
    return { ...this.#s, topicSize: this.#topics.size, prefixSize: this.#prefixes.size };
  }

  clear(): void {
    this.#generation++;
    this.#topics.clear();
    this.#prefixes.clear();
  }

  #dropTopicsWith(nodeId: string): void {
    const stale: string[] = [];
    for (const [topic, targets] of this.#topics.entries()) if (hasNode(targets, nodeId)) stale.push(topic);
    for (const topic of stale) this.#topics.delete(topic);
  }

  async #resolve(topic: string, segs: readonly string[]): Promise<TopicTargets> {
    const generation = this.#generation;
    const prefixes = prefixesOf(topic);
    const entries = await Promise.all(prefixes.map((p) => this.#prefix(p)));
    let expiresAt = Infinity;
    let peers: Peer[] | undefined;
    let groups: Map<string, Peer[]> | undefined;
    const seen = new Set<Peer>();
    for (const entry of entries) {
      if (entry.expiresAt < expiresAt) expiresAt = entry.expiresAt;
      for (const s of entry.subs) {
        if (this.#isDown?.(s.peer.nodeId) === true) continue;
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
    const result: TopicTargets = peers === undefined && groups === undefined ? NO_TARGETS : { nodes: peers ?? NO_PEERS, groups };
    const ttl = expiresAt - this.#clock.now();
    if (generation === this.#generation && ttl > 0) this.#topics.set(topic, result, { ttl });
    return result;
  }

  #prefix(prefix: string): PrefixEntry | Promise<PrefixEntry> {
    const hit = this.#prefixes.get(prefix);
    if (hit !== undefined) {
      this.#s.prefixHits++;
      return hit;
    }
    this.#s.prefixMisses++;
    let flight = this.#prefixFlights.get(prefix);
    if (flight === undefined) {
      flight = this.#fetch(prefix);
      this.#prefixFlights.set(prefix, flight);
    }
    return flight;
  }

  async #fetch(prefix: string): Promise<PrefixEntry> {
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
      // Cached like an empty answer: a failing DHT is asked again after the TTL, not on every publish.
      this.#s.lookupFailures++;
    }
    const entry: PrefixEntry = { expiresAt: this.#clock.now() + this.#ttlMs, subs };
    this.#prefixes.set(prefix, entry);
    this.#prefixFlights.delete(prefix);
    return entry;
  }
}
