/** Gateway limits and their defaults, and the statistics it keeps. */
import { ConfigError } from '../util/errors.js';

export const DEFAULT_MAX_CLIENTS = 10_000;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;
export const DEFAULT_MAX_CALLS_PER_CLIENT = 100;
export const DEFAULT_MAX_SERVED_PER_CLIENT = 100;
export const DEFAULT_MAX_PENDING_FORWARDS = 1024;
export const DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS = 5000;
export const DEFAULT_REFUSAL_GRACE_MS = 1000;

export interface GatewayInit {
  /** Most light clients connected at once; more are refused with MACULA_ERR_TOO_MANY_CLIENTS. Default 10,000. */
  maxClients?: number;
  /** Most subscriptions one client holds. Default 1000. */
  maxSubscriptionsPerClient?: number;
  /** Most GW_CALL requests of one client in flight; more are refused with MACULA_ERR_BUSY. Default 100. */
  maxCallsPerClient?: number;
  /** Most procedures one client serves. Default 100. */
  maxServedPerClient?: number;
  /**
   * GW_MSG sends to one client not yet handed to the transport past which
   * its subscriptions stop taking messages: their bounded buffers then fill
   * and drop (counted by pub/sub) instead of memory growing. Default 1024.
   */
  maxPendingForwards?: number;
  /** How long GW_SUB waits for the subscription to be announced in the mesh before answering anyway. Default 5000 ms. */
  subscribeReadyTimeoutMs?: number;
  /** How long a refused client's connection stays open so the refusal reaches it. Default 1000 ms. */
  refusalGraceMs?: number;
}

export interface GatewayStats {
  clients: number;
  maxClients: number;
  /** Clients admitted since start. */
  admitted: number;
  /** Connections refused because maxClients clients were connected. */
  refused: number;
  disconnected: number;
  /** Gateway requests from peers that said HELLO as mesh nodes (refused). */
  notClient: number;
  subscriptions: number;
  served: number;
  callsInFlight: number;
  /** GW_MSG messages sent to clients / that could not be sent. */
  forwarded: number;
  forwardFailures: number;
  /** Messages not forwarded because the client's credential denies their topic. */
  forwardsDenied: number;
  /** Requests received, by message type name. */
  requests: Record<string, number>;
}

export function checkLimit(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`gateway option ${name} must be an integer ≥ ${min}, got ${value}`);
  return value;
}
