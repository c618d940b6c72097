/**
 * Metrics hooks. Counters that need labels or observations are pushed
 * through the optional `DhtMetrics` interface (the prom-client adapter lives
 * outside src/dht); gauges and totals are pulled with `Dht.stats()`.
 */
import type { StoreRefusalReason } from './errors.js';
import type { LookupKind, LookupOutcome, LookupStats } from './lookup.js';

export interface DhtMetrics {
  /** A request of message type `type` (its name, e.g. 'FIND_NODE') was sent. */
  rpcSent?(type: string): void;
  /** A request of type `type` was received and handled. */
  rpcReceived?(type: string): void;
  /** A request we sent timed out. */
  rpcTimeout?(type: string): void;
  /** A lookup finished (kind, outcome, rounds, messages, ...). */
  lookup?(stats: LookupStats): void;
  /** A record was stored or replaced in the local store. */
  recordStored?(): void;
  recordsExpired?(count: number): void;
  storeRefused?(reason: StoreRefusalReason): void;
}

export interface DhtStats {
  routingTableSize: number;
  /** Contacts evicted by ping-then-evict. */
  evictions: number;
  /** Live records in the store (tombstones not included). */
  records: number;
  /** Bound of `records` (the record store's maxRecords). */
  maxRecords: number;
  keys: number;
  /** Accounted bytes of the store's live records, and their bound (see record-store.ts). */
  bytes: number;
  maxBytes: number;
  /** Bytes of the publisher holding the most here. */
  maxPublisherBytes: number;
  tombstones: number;
  /** Records evicted to make room (full key for a present publisher; tombstones past their bounds). */
  recordsEvicted: number;
  /** Records this node publishes and re-announces. */
  ownRecords: number;
  recordsStored: number;
  recordsExpired: number;
  storesRefused: Record<StoreRefusalReason, number>;
  lookups: Record<LookupKind, Partial<Record<LookupOutcome, number>>>;
  /** Sum of `rounds` over finished lookups, per kind (mean = sum / count of that kind). */
  lookupRoundsSum: Record<LookupKind, number>;
  /** Contacts lookups did not ask because the failure detection held their node down. */
  lookupSkippedDown: number;
  rpcSent: Record<string, number>;
  rpcReceived: Record<string, number>;
  timeouts: number;
  /** Requests that failed other than by timeout (dial/stream errors, ERROR answers). */
  failures: number;
}
