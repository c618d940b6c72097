/**
 * Tunables of the Dht, each with its default. Bounds of the record store and
 * of the routing table are documented next to those classes.
 */
import { intOption, numberOption } from '../util/options.js';
import { ALPHA, K, MAX_WIRE_CONTACTS } from './constants.js';
import { RECORD_STORE_DEFAULTS, type RecordStoreInit } from './record-store.js';
import { ROUTING_TABLE_DEFAULTS, type RoutingTableInit } from './routing-table.js';
import { DEFAULT_REPUBLISH_MARGIN_MS } from './own-records.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;
export const DEFAULT_LOOKUP_DEADLINE_MS = 10_000;
export const DEFAULT_VALUE_PEERS = 8;
export const DEFAULT_TTL_MS = 300_000;
export { DEFAULT_REPUBLISH_MARGIN_MS } from './own-records.js';
export const DEFAULT_REFRESH_INTERVAL_MS = 60 * 60 * 1000;
export const DEFAULT_REPLICATION_INTERVAL_MS = 120_000;
export const DEFAULT_REPLICATION_BATCH = 64;
export const DEFAULT_MAX_VALUE_RESPONSE_BYTES = 256 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_BOOTSTRAP_RETRY_MIN_MS = 1_000;
export const DEFAULT_BOOTSTRAP_RETRY_MAX_MS = 60_000;

export interface DhtInit {
  /** Bucket size and replication factor. Default 20, at most 32 (wire limit). */
  k?: number;
  /** Requests in flight per lookup. Default 3. */
  alpha?: number;
  /** Timeout of each request. Default 2 s. */
  requestTimeoutMs?: number;
  /** Deadline of a whole lookup; it then returns what it has. Default 10 s. */
  lookupDeadlineMs?: number;
  /**
   * FIND_VALUE stops after this many holders answered with records (their
   * records are merged). Default 8: keys hold many records (one per
   * provider or subscriber) and holders can have different subsets (a node
   * that joined after a put lacks it until re-announcement or replication),
   * so stopping at the first holder or two can miss records; asking all k
   * would make every lookup wait out the dead contacts a churning mesh
   * still has in its routing tables.
   */
  valuePeers?: number;
  /** TTL of put() records unless given. Default 300 s. */
  defaultTtlMs?: number;
  /** Re-announce own records this long before they expire (halfway for TTLs under 2 min). Default 60 s. */
  republishMarginMs?: number;
  /** Buckets without a lookup for this long are refreshed; 0 disables the timer. Default 1 h. */
  refreshIntervalMs?: number;
  /** Period of replication of stored records to the k closest of their key; 0 disables it. Default 120 s. */
  replicationIntervalMs?: number;
  /** Most records replicated per replication tick. Default 64. */
  replicationBatch?: number;
  /** Byte budget for the records in one VALUE response. Default 256 KiB. */
  maxValueResponseBytes?: number;
  /** Dial timeout for bootstrap addresses. Default 5 s. */
  connectTimeoutMs?: number;
  /** First retry delay when no bootstrap address is reachable; doubles up to the max. Default 1 s. */
  bootstrapRetryMinMs?: number;
  /** Default 60 s. */
  bootstrapRetryMaxMs?: number;
  /** Routing table tunables (ping-then-evict). */
  routingTable?: Omit<RoutingTableInit, 'k'>;
  /** Record store bounds and sweep. */
  recordStore?: RecordStoreInit;
}

export type DhtOptions = Required<Omit<DhtInit, 'routingTable' | 'recordStore'>>;

export function resolveDhtOptions(init: DhtInit): DhtOptions {
  const o: DhtOptions = {
    k: init.k ?? K,
    alpha: init.alpha ?? ALPHA,
    requestTimeoutMs: init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    lookupDeadlineMs: init.lookupDeadlineMs ?? DEFAULT_LOOKUP_DEADLINE_MS,
    valuePeers: init.valuePeers ?? DEFAULT_VALUE_PEERS,
    defaultTtlMs: init.defaultTtlMs ?? DEFAULT_TTL_MS,
    republishMarginMs: init.republishMarginMs ?? DEFAULT_REPUBLISH_MARGIN_MS,
    refreshIntervalMs: init.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS,
    replicationIntervalMs: init.replicationIntervalMs ?? DEFAULT_REPLICATION_INTERVAL_MS,
    replicationBatch: init.replicationBatch ?? DEFAULT_REPLICATION_BATCH,
    maxValueResponseBytes: init.maxValueResponseBytes ?? DEFAULT_MAX_VALUE_RESPONSE_BYTES,
    connectTimeoutMs: init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    bootstrapRetryMinMs: init.bootstrapRetryMinMs ?? DEFAULT_BOOTSTRAP_RETRY_MIN_MS,
    bootstrapRetryMaxMs: init.bootstrapRetryMaxMs ?? DEFAULT_BOOTSTRAP_RETRY_MAX_MS,
  };
  intOption('DHT option k', o.k, 1, MAX_WIRE_CONTACTS);
  intOption('DHT option alpha', o.alpha, 1);
  numberOption('DHT option requestTimeoutMs', o.requestTimeoutMs, 0, { exclusiveMin: true });
  numberOption('DHT option lookupDeadlineMs', o.lookupDeadlineMs, 0, { exclusiveMin: true });
  return Object.freeze(o);
}

/** The DHT's defaults, each defined once above or in the record store and routing table. */
export const DHT_DEFAULTS = Object.freeze({ ...resolveDhtOptions({}), routingTable: ROUTING_TABLE_DEFAULTS, recordStore: RECORD_STORE_DEFAULTS });
