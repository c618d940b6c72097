/**
 * Service registry: which nodes provide a named service.
 *
 * advertise() stores a signed registration in the DHT under
 * dhtKey(`registry/<realm>`, name); the DHT re-announces it before it
 * expires (see src/dht/own-records.ts) until unadvertise() withdraws it.
 * A provider that stops without withdrawing disappears once its record
 * expires: from the DHT at its TTL, and from every cache at the latest one
 * cache TTL later (earlier in practice: cached entries are dropped as soon
 * as one of their providers has expired).
 *
 * lookup() answers from three sources, in order: this node's own
 * registrations (no DHT needed to know them; listed first), a cache of
 * recent answers, and a DHT lookup. Concurrent misses for one name share a
 * single DHT lookup.
 */
import type { Liveness } from '../liveness/liveness.js';
import { nodeIdFromPublicKey, toHex } from '../identity/identity.js';
import { serveSubject, type RecordAuth } from '../auth/record-auth.js';
import { dhtKey } from '../dht/key.js';
import { NotStoredError } from '../dht/errors.js';
import { ConfigError } from '../util/errors.js';
import { InvalidServiceNameError, RegistryLookupError } from './errors.js';
import { DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_MS, DEFAULT_NEGATIVE_CACHE_TTL_MS, NO_PROVIDERS, ProviderCache, type LoadedProviders } from './provider-cache.js';
import { decodeRegistration, DEFAULT_MAX_METADATA_BYTES, encodeRegistration, maxRegistrationBytes, registryNamespace } from './registration.js';
import { isValidServiceName, MAX_SERVICE_NAME_LENGTH, validateServiceName } from './service-name.js';
import type { Clock } from '../util/clock.js';
import type { AdvertiseOptions, LocalNode, Provider, RegistryDht, RegistryStats } from './types.js';
import { DEFAULT_REALM } from '../session/messenger.js';

/** The node's default realm (one definition, in the session layer). */
export const DEFAULT_REGISTRY_REALM = DEFAULT_REALM;
export const DEFAULT_ADVERTISE_TTL_MS = 300_000;

export const REGISTRY_DEFAULTS = Object.freeze({
  cacheMaxEntries: DEFAULT_CACHE_MAX_ENTRIES,
  cacheTtlMs: DEFAULT_CACHE_TTL_MS,
  negativeCacheTtlMs: DEFAULT_NEGATIVE_CACHE_TTL_MS,
  defaultTtlMs: DEFAULT_ADVERTISE_TTL_MS,
  maxMetadataBytes: DEFAULT_MAX_METADATA_BYTES,
});
const MIN_TTL_MS = 1000;

export interface ServiceRegistryComponents {
  dht: RegistryDht;
  localNode: LocalNode;
  /** Default: the system clock (Date.now). */
  clock?: Clock;
  /** In a secured realm: puts this node's credential into its records, and skips records whose publisher may not serve the name. */
  auth?: RecordAuth;
  /** Shared failure detection: registrations of down nodes leave the cache and answers until the node is up. */
  liveness?: Pick<Liveness, 'isDown' | 'onChange'>;
}

export interface ServiceRegistryInit {
  /** Realm the registrations live in (part of the DHT key). Default 'default'. */
  realm?: string;
  /** Most names in the lookup cache. Default 10 000. */
  cacheMaxEntries?: number;
  /** How long a lookup answer is reused. Default 5000 ms. */
  cacheTtlMs?: number;
  /** How long "no providers" is reused. Default 1000 ms. */
  negativeCacheTtlMs?: number;
  /** Record TTL when advertise() is given none. Default 300 000 ms. */
  defaultTtlMs?: number;
  /** Largest metadata map, CBOR-encoded. Default 4096 bytes. */
  maxMetadataBytes?: number;
}

interface LocalAd {
  readonly key: Uint8Array;
  /** The one-element provider list of this node, prebuilt so local() allocates nothing. */
  readonly providers: readonly Provider[];
  readonly ttlMs: number;
}

export class ServiceRegistry {
  readonly realm: string;
  readonly defaultTtlMs: number;
  readonly maxMetadataBytes: number;
  readonly #dht: RegistryDht;
  readonly #self: LocalNode;
  readonly #clock: Clock;
  readonly #namespace: string;
  readonly #maxValueBytes: number;
  readonly #cache: ProviderCache;
  readonly #local = new Map<string, LocalAd>();
  #hits = 0;
  #misses = 0;
  #negativeHits = 0;
  #dhtLookups = 0;
  #dhtErrors = 0;
  #malformed = 0;
  readonly #auth: RecordAuth | undefined;
  #expired = 0;
  #skippedDown = 0;
  readonly #isDown: ((nodeId: string) => boolean) | undefined;

  constructor(components: ServiceRegistryComponents, init: ServiceRegistryInit = {}) {
    this.#dht = components.dht;
    this.#self = components.localNode;
    this.#auth = components.auth;
    this.#clock = components.clock ?? Date;
    this.realm = init.realm ?? DEFAULT_REGISTRY_REALM;
    if (this.realm.length === 0 || this.realm.includes(':')) {
      throw new ConfigError(`realm "${this.realm}" is invalid: it must be non-empty and may not contain ':'`);
    }
    this.#namespace = registryNamespace(this.realm);
    this.defaultTtlMs = init.defaultTtlMs ?? DEFAULT_ADVERTISE_TTL_MS;
    this.maxMetadataBytes = init.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
    this.#maxValueBytes = maxRegistrationBytes(this.maxMetadataBytes, components.auth !== undefined);
    this.#cache = new ProviderCache(
      { clock: components.clock, load: (name) => this.#fetch(name) },
      { maxEntries: init.cacheMaxEntries, ttlMs: init.cacheTtlMs, negativeTtlMs: init.negativeCacheTtlMs },
    );
    this.#isDown = components.liveness && ((id) => components.liveness!.isDown(id));
    // Down: out of every cached answer at once. Up: the answers that left it out are rebuilt (from the DHT) with it.
    components.liveness?.onChange((nodeId, up) => (up ? this.#cache.nodeUp(nodeId) : this.#cache.dropNode(nodeId)));
  }

  /**
   * Advertises that this node provides `name`. Replaces an earlier
   * advertisement of the same name (e.g. new metadata). Resolves once the
   * record has been stored by enough of the k closest nodes; on failure
   * (NotStoredError when the mesh refused it) nothing stays advertised.
   */
  async advertise(name: string, metadata: Record<string, unknown> = {}, options: AdvertiseOptions = {}): Promise<void> {
    validateServiceName(name);
    const ttlMs = options.ttlMs ?? this.defaultTtlMs;
    if (!Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS) throw new ConfigError(`registration TTL must be at least ${MIN_TTL_MS} ms, got ${ttlMs}`);
    const address = this.#self.address;
    if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65535) {
      throw new ConfigError(`cannot advertise "${name}": this node has no listening port yet (got ${address.port}); advertise after the node has started`);
    }
    const value = encodeRegistration(name, address, metadata, this.maxMetadataBytes, this.#auth?.credential);
    const key = dhtKey(this.#namespace, name);
    const provider: Provider = Object.freeze({
      nodeId: this.#self.nodeId,
      address: Object.freeze({ host: address.host, port: address.port }),
      metadata: Object.freeze({ ...metadata }),
      expires: Infinity,
      local: true,
    });
    const ad: LocalAd = { key, providers: Object.freeze([provider]), ttlMs };
    this.#local.set(name, ad);
    this.invalidate(name);
    try {
      await this.#dht.put(key, value, { ttlMs });
    } catch (err) {
      if (this.#local.get(name) === ad) {
        this.#local.delete(name);
        this.invalidate(name);
      }
      if (!(err instanceof NotStoredError)) throw err;
      // The few nodes that took it must not keep it, nor the DHT re-announce it.
      if (!this.#local.has(name)) await this.#dht.withdraw(key).catch(() => undefined);
      throw err.about(`the registration of service "${name}"`);
    }
  }

  /** Withdraws this node's registration of `name`. False if it was not advertised. */
  async unadvertise(name: string): Promise<boolean> {
    const ad = this.#local.get(name);
    if (!ad) return false;
    this.#local.delete(name);
    this.invalidate(name);
    await this.#dht.withdraw(ad.key);
    return true;
  }

  /** Withdraws every registration of this node (for a clean stop). Best effort: returns how many were withdrawn. */
  async withdrawAll(): Promise<number> {
    const results = await Promise.allSettled([...this.#local.keys()].map((name) => this.unadvertise(name)));
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  /**
   * This node's advertised address changed (it moved behind relays, or
   * back): every registration is put again with the new address. Best
   * effort: a failure leaves the old record until the next change or its expiry.
   */
  async addressChanged(): Promise<void> {
    await Promise.allSettled(
      [...this.#local].map(([name, ad]) => {
        const p = ad.providers[0]!;
        return this.advertise(name, p.metadata as Record<string, unknown>, { ttlMs: ad.ttlMs });
      }),
    );
  }

  /** Names this node advertises. */
  advertised(): string[] {
    return [...this.#local.keys()];
  }

  /** This node's own registration of `name` as a provider list (empty if none). */
  local(name: string): readonly Provider[] {
    return this.#local.get(name)?.providers ?? NO_PROVIDERS;
  }

  /**
   * The live providers of `name`, this node first if it provides it. The
   * returned array is shared with the cache and frozen: do not modify it.
   * Rejects with RegistryLookupError when the DHT lookup fails and this node
   * does not provide the name itself; with InvalidServiceNameError for a bad name.
   */
  lookup(name: string): Promise<readonly Provider[]> {
    const cached = this.lookupCached(name);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.#resolve(name);
  }

  /**
   * The cached answer for `name`, or undefined on a cache miss; never starts a
   * lookup. Synchronous and allocation-free, for hot paths that can skip an
   * await when the answer is cached.
   */
  lookupCached(name: string): readonly Provider[] | undefined {
    const providers = this.#cache.get(name);
    if (providers === undefined) return undefined;
    if (providers.length === 0) this.#negativeHits++;
    else this.#hits++;
    return providers;
  }

  /** Forgets the cached answer for `name` (e.g. after a provider failed); the next lookup asks the DHT. */
  invalidate(name: string): void {
    // A lookup already in flight may return what we just declared stale: it
    // still answers its waiters, but no longer fills the cache.
    this.#cache.delete(name);
  }

  /** Forgets every cached answer. */
  clearCache(): void {
    this.#cache.clear();
  }

  stats(): RegistryStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      negativeHits: this.#negativeHits,
      size: this.#cache.size,
      inFlight: this.#cache.inFlight,
      dhtLookups: this.#dhtLookups,
      dhtErrors: this.#dhtErrors,
      malformed: this.#malformed,
      expired: this.#expired + this.#cache.expiredDrops,
      localServices: this.#local.size,
      skippedDown: this.#skippedDown,
    };
  }

  #resolve(name: string): Promise<readonly Provider[]> {
    this.#misses++;
    if (!isValidServiceName(name)) return Promise.reject(new InvalidServiceNameError(name, MAX_SERVICE_NAME_LENGTH));
    return this.#cache.fetch(name);
  }

  /** The cache's load on a miss: a DHT lookup (one for concurrent misses of a name). */
  async #fetch(name: string): Promise<LoadedProviders> {
    this.#dhtLookups++;
    let records;
    try {
      ({ records } = await this.#dht.findValue(dhtKey(this.#namespace, name)));
    } catch (err) {
      this.#dhtErrors++;
      const local = this.local(name);
      // A degraded answer (this node only): not cached, the next lookup asks the DHT again.
      if (local.length > 0) return { providers: local, cacheable: false };
      throw new RegistryLookupError(name, this.realm, { cause: err });
    }
    // Read after the await: advertise()/unadvertise() may have run meanwhile.
    const local = this.#local.get(name)?.providers ?? NO_PROVIDERS;
    const providers: Provider[] = [...local];
    let down: Provider[] | undefined;
    const seen = new Set<string>();
    const now = this.#clock.now();
    for (const r of records) {
      if (r.value.length === 0) continue; // tombstone
      if (!(r.expires > now)) {
        this.#expired++;
        continue;
      }
      if (!(r.publisher instanceof Uint8Array) || r.publisher.length !== 32) {
        this.#malformed++;
        continue;
      }
      const nodeId = toHex(nodeIdFromPublicKey(r.publisher));
      // Our own record: the local registration is authoritative (a record left
      // over from before a restart must not make us call ourselves over the network).
      if (nodeId === this.#self.nodeId || seen.has(nodeId)) continue;
      const isDown = this.#isDown?.(nodeId) === true;
      const reg = decodeRegistration(r.value, name, this.#maxValueBytes);
      if (!reg) {
        this.#malformed++;
        continue;
      }
      // No squatting: in a secured realm only a publisher permitted to serve the name is a provider.
      if (this.#auth && !(await this.#auth.permits(r.publisher, reg.credential, 'serve', [serveSubject(name)]))) continue;
      seen.add(nodeId);
      (isDown ? (down ??= []) : providers).push(Object.freeze({ nodeId, address: reg.address, metadata: reg.metadata, expires: r.expires, local: false }));
    }
    // Down providers are left out while another one is up; when all are down they stay, so that a
    // call says which provider it could not reach rather than that nobody provides the name.
    let leftOut: string[] | undefined;
    if (down !== undefined) {
      if (providers.length === 0) providers.push(...down);
      else {
        this.#skippedDown += down.length;
        leftOut = down.map((p) => p.nodeId);
      }
    }
    return { providers: providers.length === 0 ? NO_PROVIDERS : Object.freeze(providers), leftOut };
  }
}
