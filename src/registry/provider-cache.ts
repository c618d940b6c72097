/**
 * The registry's cache of lookup answers: name → providers, in an O(1) LRU
 * (lru-cache) bounded by entry count, with a TTL per entry. Empty answers
 * are cached too (negative cache), with their own, shorter TTL.
 *
 * Single-flight through lru-cache's `fetchMethod`: concurrent misses of one
 * name share one load (a DHT lookup). `delete(name)` while a load is in
 * flight lets it answer its waiters but keeps its answer out of the cache
 * (it may be what was just declared stale).
 *
 * Reads allocate nothing: a hit returns the cached (frozen) array itself.
 * Each entry remembers the earliest expiry of its providers, so "has any
 * provider expired?" is one comparison rather than a scan; when one has,
 * the whole entry is dropped and the next lookup asks the DHT again — which
 * also brings back providers that re-announced in the meantime. Each entry
 * also names the providers left out of it because they were down, so a
 * node that is up again drops only the answers that left it out.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../util/clock.js';
import type { Provider } from './types.js';
import { intOption, numberOption } from '../util/options.js';

export const DEFAULT_CACHE_MAX_ENTRIES = 10_000;
export const DEFAULT_CACHE_TTL_MS = 5_000;
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 1_000;

export const NO_PROVIDERS: readonly Provider[] = Object.freeze([]);

interface Entry {
  readonly providers: readonly Provider[];
  /** Smallest `expires` among the providers (Infinity when none can expire). */
  readonly minExpires: number;
  /** Providers left out because they were down (their node IDs). */
  readonly leftOut: readonly string[] | undefined;
}

/** A load's answer: the providers, and those left out because they were down. */
export interface LoadedProviders {
  readonly providers: readonly Provider[];
  readonly leftOut?: readonly string[] | undefined;
  /** False for an answer that must not be reused (a degraded one). */
  readonly cacheable?: boolean;
}

export interface ProviderCacheInit {
  /** Most names kept. Default 10 000. */
  maxEntries?: number;
  /** How long an answer with providers is reused; 0 disables the cache. Default 5000 ms. */
  ttlMs?: number;
  /** How long an answer without providers is reused; 0 disables the negative cache. Default 1000 ms. */
  negativeTtlMs?: number;
}

// Passed to every get() so lru-cache does not allocate a default options object per call.
const GET_OPTIONS: LRUCache.GetOptions<string, Entry, unknown> = {};

export class ProviderCache {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  /** Entries dropped on read because a provider in them had expired. */
  expiredDrops = 0;
  /** Loads running now. */
  inFlight = 0;
  readonly #lru: LRUCache<string, Entry>;
  readonly #clock: Clock;

  /** @param components.load the answer for a name on a miss (the registry's DHT lookup); a rejection is passed to every waiter and cached nowhere */
  constructor(components: { clock?: Clock; load: (name: string) => Promise<LoadedProviders> }, init: ProviderCacheInit = {}) {
    this.maxEntries = init.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
    this.ttlMs = init.ttlMs ?? DEFAULT_CACHE_TTL_MS;
    this.negativeTtlMs = init.negativeTtlMs ?? DEFAULT_NEGATIVE_CACHE_TTL_MS;
    intOption('registry option cacheMaxEntries', this.maxEntries, 1);
    numberOption('registry option cacheTtlMs', this.ttlMs, 0);
    numberOption('registry option negativeCacheTtlMs', this.negativeTtlMs, 0);
    this.#clock = components.clock ?? Date;
    const load = components.load;
    this.#lru = new LRUCache<string, Entry>({
      max: this.maxEntries,
      // An injected clock drives the entry ages too (tests advance time by hand);
      // lru-cache memoises "now" for ttlResolution ms of real time, which a
      // hand-driven clock must not be subject to.
      ...(components.clock ? { perf: components.clock, ttlResolution: 0 } : {}),
      // A load whose name was deleted meanwhile still answers its waiters; its answer is not stored.
      ignoreFetchAbort: true,
      fetchMethod: async (name, _old, { options }) => {
        this.inFlight++;
        try {
          const { providers, leftOut, cacheable = true } = await load(name);
          const ttl = !cacheable ? 0 : providers.length === 0 ? this.negativeTtlMs : this.ttlMs;
          // lru-cache reads a TTL of 0 as "never expires": an answer that must not be reused is stored expired.
          options.ttl = ttl > 0 ? ttl : 1;
          let minExpires = ttl > 0 ? Infinity : -Infinity;
          for (const p of providers) if (p.expires < minExpires) minExpires = p.expires;
          return { providers: providers.length === 0 ? NO_PROVIDERS : providers, minExpires, leftOut: leftOut?.length ? leftOut : undefined };
        } finally {
          this.inFlight--;
        }
      },
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  /** The cached providers of `name` (possibly empty: a negative entry), or undefined on a miss. */
  get(name: string): readonly Provider[] | undefined {
    const entry = this.#lru.get(name, GET_OPTIONS);
    if (entry === undefined) return undefined;
    if (entry.minExpires <= this.#clock.now()) {
      this.#lru.delete(name);
      if (entry.minExpires !== -Infinity) this.expiredDrops++;
      return undefined;
    }
    return entry.providers;
  }

  /** The providers of `name`, loaded on a miss (one load for concurrent misses). */
  async fetch(name: string): Promise<readonly Provider[]> {
    const entry = await this.#lru.fetch(name);
    // An answer not to be reused was stored expired; it leaves at once.
    if (entry !== undefined && entry.minExpires === -Infinity && this.#lru.peek(name, { allowStale: true }) === entry) this.#lru.delete(name);
    return entry?.providers ?? NO_PROVIDERS;
  }

  /** Removes a node from every cached answer it shares with other providers (O(entries); once per outage). */
  dropNode(nodeId: string): void {
    const updates: [string, Entry][] = [];
    for (const [name, entry] of this.#lru.entries()) {
      if (!entry.providers.some((p) => p.nodeId === nodeId)) continue;
      const rest = entry.providers.filter((p) => p.nodeId !== nodeId);
      // Its only provider stays: a call then names the provider it could not reach.
      if (rest.length > 0) updates.push([name, { providers: Object.freeze(rest), minExpires: entry.minExpires, leftOut: [...(entry.leftOut ?? []), nodeId] }]);
    }
    for (const [name, entry] of updates) {
      // Keeps the entry's remaining lifetime: the next refresh still comes when it was due.
      const ttl = this.#lru.getRemainingTTL(name);
      this.#lru.set(name, entry, Number.isFinite(ttl) && ttl > 0 ? { ttl } : {});
    }
  }

  /** The node is up again: drops the answers that left it out (O(entries); once per outage). */
  nodeUp(nodeId: string): void {
    const stale: string[] = [];
    for (const [name, entry] of this.#lru.entries()) if (entry.leftOut?.includes(nodeId)) stale.push(name);
    for (const name of stale) this.#lru.delete(name);
  }

  delete(name: string): void {
    this.#lru.delete(name);
  }

  clear(): void {
    this.#lru.clear();
  }
}
