/** Gateway limits and their defaults, and the statistics it keeps. */
import { ConfigError } from '../util/errors.js';

import type { AdmissionStats } from './admission.js';
import { intOption } from '../util/options.js';

export const DEFAULT_MAX_CLIENTS = 10_000;
/**
 * Share of maxClients one source address may hold by default: a quarter, so
 * at least four sources are needed to fill a node, while a NAT gateway or a
 * busy host still gets thousands of slots (2,500 of the default 10,000).
 */
export const DEFAULT_CLIENTS_PER_ADDRESS_SHARE = 0.25;
/**
 * The default per-address limit is never below this (nor above maxClients):
 * a small node shared by a few machines would otherwise refuse the second
 * command run on one of them.
 */
export const MIN_DEFAULT_CLIENTS_PER_ADDRESS = 64;

/**
 * Connection slots kept for mesh peers on top of maxClients. Clients hold
 * pool slots that are never evicted, so without this margin a node full of
 * clients could no longer dial its peers.
 */
export const MESH_CONNECTION_MARGIN = 1000;

/**
 * The node's connection limit for `maxClients` light clients: by default
 * maxClients + MESH_CONNECTION_MARGIN. A limit given that leaves no room for
 * mesh peers once every client slot is taken is refused.
 */
export function nodeConnectionLimit(maxConnections: number | undefined, maxClients: number): number {
  if (maxConnections === undefined) return maxClients + MESH_CONNECTION_MARGIN;
  if (!(maxConnections > maxClients)) {
    throw new ConfigError(
      `maxConnections ${maxConnections} leaves no room for mesh peers once ${maxClients} light clients (gateway.maxClients) are connected; ` +
        `raise it above maxClients (default: maxClients + ${MESH_CONNECTION_MARGIN}) or lower maxClients`,
    );
  }
  return maxConnections;
}

/** The per-address limit used when none is given: a quarter of maxClients, at least 64, at most maxClients. */
export function defaultMaxClientsPerAddress(maxClients: number): number {
  return Math.min(maxClients, Math.max(MIN_DEFAULT_CLIENTS_PER_ADDRESS, Math.ceil(maxClients * DEFAULT_CLIENTS_PER_ADDRESS_SHARE)));
}
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;
export const DEFAULT_MAX_CALLS_PER_CLIENT = 100;
export const DEFAULT_MAX_SERVED_PER_CLIENT = 100;
export const DEFAULT_MAX_PENDING_FORWARDS = 4096;
/**
 * Publishes (GW_SEND) one client may have unacknowledged, and bytes of their
 * frames; see publish-flow.ts. The count keeps a client's pipeline full
 * across the round trip to its node under load (256 left the shell path
 * waiting for acknowledgements at about half the rate 2048 reaches); the
 * bytes bound what the node holds for one client whatever the payloads.
 */
export const DEFAULT_PUBLISH_WINDOW = 2048;
export const DEFAULT_PUBLISH_WINDOW_BYTES = 32 * 1024 * 1024;
export const DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS = 5000;
export const DEFAULT_REFUSAL_GRACE_MS = 1000;
/**
 * Distinct DHT keys (subscription prefixes, served procedures) and bytes of
 * records one client may make the node publish, and all clients together
 * (see key-quota.ts). The node is one publisher to the mesh, whose stores
 * hold at most 1000 records and 1 MiB of it (record-store.ts): 768 keys and
 * 768 KiB for clients leave 232 records and 256 KiB to the node's own.
 */
export const DEFAULT_MAX_DHT_KEYS_PER_CLIENT = 64;
export const DEFAULT_MAX_DHT_BYTES_PER_CLIENT = 64 * 1024;
export const DEFAULT_MAX_CLIENT_DHT_KEYS = 768;
export const DEFAULT_MAX_CLIENT_DHT_BYTES = 768 * 1024;

/** The gateway's defaults (maxClientsPerAddress follows maxClients: a quarter, at least 64). */
export const GATEWAY_DEFAULTS = Object.freeze({
  maxClients: DEFAULT_MAX_CLIENTS,
  maxClientsPerAddress: defaultMaxClientsPerAddress(DEFAULT_MAX_CLIENTS),
  maxSubscriptionsPerClient: DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  maxCallsPerClient: DEFAULT_MAX_CALLS_PER_CLIENT,
  maxServedPerClient: DEFAULT_MAX_SERVED_PER_CLIENT,
  maxPendingForwards: DEFAULT_MAX_PENDING_FORWARDS,
  subscribeReadyTimeoutMs: DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS,
  refusalGraceMs: DEFAULT_REFUSAL_GRACE_MS,
  maxDhtKeysPerClient: DEFAULT_MAX_DHT_KEYS_PER_CLIENT,
  maxDhtBytesPerClient: DEFAULT_MAX_DHT_BYTES_PER_CLIENT,
  maxClientDhtKeys: DEFAULT_MAX_CLIENT_DHT_KEYS,
  maxClientDhtBytes: DEFAULT_MAX_CLIENT_DHT_BYTES,
});

export interface GatewayInit {
  /** Most light clients connected at once; more are refused with MACULA_ERR_TOO_MANY_CLIENTS. Default 10,000. */
  maxClients?: number;
  /**
   * Most light clients from one source address (an IPv4 address or an IPv6
   * /64); more are refused with MACULA_ERR_TOO_MANY_CLIENTS_FROM_ADDRESS.
   * Default: defaultMaxClientsPerAddress(maxClients), 2,500 for 10,000.
   */
  maxClientsPerAddress?: number;
  /** Most subscriptions one client holds. Default 1000. */
  maxSubscriptionsPerClient?: number;
  /** Most GW_CALL requests of one client in flight; more are refused with MACULA_ERR_BUSY. Default 100. */
  maxCallsPerClient?: number;
  /** Most procedures one client serves. Default 100. */
  maxServedPerClient?: number;
  /**
   * GW_MSG sends to one client not yet written past which its
   * subscriptions stop taking messages: their bounded buffers then fill
   * and drop (counted by pub/sub) instead of memory growing. Default 4096:
   * messages to a client go out in batches, and one write in flight often
   * carries a thousand, so a smaller bound would stop the subscriptions
   * whenever a single batch is on its way.
   */
  maxPendingForwards?: number;
  /**
   * One-way publishes (GW_SEND) one client may have unacknowledged, announced
   * in GW_ATTACH; the client waits for acknowledgements beyond it, and what
   * comes past it is refused (MACULA_ERR_FLOW_CONTROL). Bounds what the node
   * holds for a client, with publishWindowBytes. Default 2048.
   */
  publishWindow?: number;
  /**
   * Bytes of one client's unacknowledged publishes (their GW_SEND frames),
   * announced in GW_ATTACH; past it the node refuses like past the window
   * (one frame may cross the line). A client keeps to half of it (it counts
   * payloads and topics, not frames). Default 32 MiB.
   */
  publishWindowBytes?: number;
  /** How long GW_SUB waits for the subscription to be announced in the mesh before answering anyway. Default 5000 ms. */
  subscribeReadyTimeoutMs?: number;
  /** How long a refused client's connection stays open so the refusal reaches it. Default 1000 ms. */
  refusalGraceMs?: number;
  /** Distinct DHT keys (subscription prefixes + served procedures) one client may cause. Default 64. */
  maxDhtKeysPerClient?: number;
  /** Bytes of DHT records (patterns, registrations, 160 B per key) one client may cause. Default 64 KiB. */
  maxDhtBytesPerClient?: number;
  /** Distinct DHT keys all clients together may cause (a shared key counts once). Default 768. */
  maxClientDhtKeys?: number;
  /** Bytes of DHT records all clients together may cause. Default 768 KiB. */
  maxClientDhtBytes?: number;
}

export interface GatewayStats extends Omit<AdmissionStats, 'clients'> {
  clients: number;
  maxClients: number;
  maxClientsPerAddress: number;
  /** Clients admitted since start. */
  admitted: number;
  /** Connections refused by admission, every reason (refusedByReason splits them). */
  refused: number;
  disconnected: number;
  /** Gateway requests from peers that said HELLO as mesh nodes (refused). */
  notClient: number;
  subscriptions: number;
  served: number;
  /** Distinct DHT keys and bytes of records the clients cause now, and their bounds. */
  dhtKeys: number;
  maxClientDhtKeys: number;
  dhtBytes: number;
  maxClientDhtBytes: number;
  /** Subscriptions and serves refused by those bounds. */
  dhtKeysRefused: number;
  /** Subscriptions and serves the mesh refused to store (MACULA_ERR_NOT_STORED answered). */
  notStored: number;
  callsInFlight: number;
  /** Messages sent to clients (GW_MSG) / that could not be sent, counted one by one. */
  forwarded: number;
  forwardFailures: number;
  /** GW_MSG runs among them (their messages count one by one above). */
  forwardedRuns: number;
  /** Messages not forwarded because the client's credential denies their topic. */
  forwardsDenied: number;
  /** Requests received, by message type name. */
  requests: Record<string, number>;
  /** One-way publishes (GW_SEND) received, pending now (over every client), failed (GW_NACK sent), refused past the window. */
  publishes: number;
  publishPending: number;
  publishFailures: number;
  publishOverruns: number;
  /** GW_SEND runs received (each counted in `publishes` as its k publishes). */
  publishRuns: number;
  /** The per-client window announced in GW_ATTACH: publishes, and bytes of them. */
  publishWindow: number;
  publishWindowBytes: number;
}

export function checkLimit(name: string, value: number, min: number): number {
  return intOption(`gateway option ${name}`, value, min);
}
