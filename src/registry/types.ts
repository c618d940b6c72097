/**
 * The narrow contracts the service registry is written against. The real
 * Dht satisfies RegistryDht structurally; unit tests pass small fakes.
 */
import type { PeerAddress } from '../transport/types.js';

/** The fields of a DHT record the registry reads (a subset of DhtRecord). */
export interface RegistryRecord {
  /** CBOR registration (see registration.ts); empty = tombstone. */
  readonly value: Uint8Array;
  /** Raw 32-byte Ed25519 public key of the publisher: the provider's node ID is its SHA-256. */
  readonly publisher: Uint8Array;
  /** Expiry, unix ms. */
  readonly expires: number;
}

export interface RegistryDht {
  /** Signs and stores `value` under `key`; the DHT re-announces it before expiry until withdraw(key). */
  put(key: Uint8Array, value: Uint8Array, options: { ttlMs?: number }): Promise<unknown>;
  /** Replaces our record under `key` with a tombstone and stops re-announcing it. */
  withdraw(key: Uint8Array): Promise<unknown>;
  /** Live, signature-checked records under `key`, one per publisher. */
  findValue(key: Uint8Array): Promise<{ records: readonly RegistryRecord[] }>;
}

/** This node, as it appears in its own registrations. */
export interface LocalNode {
  /** Hex node ID. */
  readonly nodeId: string;
  /** Where other nodes reach this one (read at advertise time, so a getter may return the bound port). */
  readonly address: PeerAddress;
}

/**
 * One node that provides a service. Objects and arrays handed out by the
 * registry are shared with its cache and frozen: treat them as read-only.
 */
export interface Provider {
  /** Hex node ID, derived from the record's publisher key (never from the value). */
  readonly nodeId: string;
  readonly address: Readonly<PeerAddress>;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Record expiry, unix ms; Infinity for this node's own registrations (renewed while advertised). */
  readonly expires: number;
  /** True when the provider is this node (call it directly, without the network). */
  readonly local: boolean;
}

export interface AdvertiseOptions {
  /** Record TTL; the DHT re-announces before it runs out. Default 300 000 ms (5 min). */
  ttlMs?: number;
}

export interface RegistryStats {
  /** Lookups answered from the cache with at least one provider. */
  hits: number;
  /** Lookups that had to go to the DHT (including ones that joined a lookup already in flight). */
  misses: number;
  /** Lookups answered from the negative cache (no provider, recently checked). */
  negativeHits: number;
  /** Entries in the cache (positive and negative). */
  size: number;
  /** Distinct names with a DHT lookup in flight. */
  inFlight: number;
  /** DHT lookups started (single-flight: one per name however many callers wait). */
  dhtLookups: number;
  /** DHT lookups that failed. */
  dhtErrors: number;
  /** Records dropped because their value is not a valid registration. */
  malformed: number;
  /** Registrations left out of answers because the failure detection holds their node down. */
  skippedDown: number;
  /** Records dropped (from the DHT answer or the cache) because they had expired. */
  expired: number;
  /** Services this node advertises. */
  localServices: number;
}
