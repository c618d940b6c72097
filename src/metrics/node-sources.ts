/**
 * What the metrics and the admin server read from a node, as narrow types,
 * so they can be exercised with a stand-in node and stay independent of
 * MeshNode's internals.
 *
 * `trafficStats()` and `queueStats()` are read from the messenger when it
 * offers them (messages by type, send-queue depth, requests in flight): a
 * stand-in node without them gets no such metrics or /stats sections,
 * rather than zeros that would look like real readings.
 */
import type { RealmGuardStats } from '../auth/realm-guard.js';
import type { LivenessStats } from '../liveness/liveness.js';
import type { DhtStats } from '../dht/metrics.js';
import type { NodeStatus } from '../session/node-status.js';
import type { PoolStats } from '../transport/pool.js';
import type { BudgetStats, QueueStats, TrafficStats } from '../session/messenger.js';
import type { PeerAddress, TransportStats } from '../transport/types.js';
import type { GatewayStats } from '../gateway/options.js';
import type { WebStats } from '../web/server.js';
import type { PubSubStats } from '../pubsub/pubsub.js';
import type { RegistryStats } from '../registry/types.js';
import type { RpcClientStats } from '../rpc/client.js';
import type { RpcServerStats } from '../rpc/server.js';

export type { QueueStats, TrafficStats };

/** The parts of MeshNode the metrics and the admin server read. */
export interface ObservedNode {
  readonly running: boolean;
  readonly ready: boolean;
  readonly options: { readonly bootstrap?: readonly PeerAddress[] | undefined };
  status(): NodeStatus;
  readonly pool: { stats(): PoolStats };
  readonly transport: { readonly kind: string; stats(): TransportStats };
  readonly dht: {
    stats(): DhtStats;
    /** The record store, when the node has one: its size and bounds feed nodeBudgets(). */
    readonly store?: { readonly size: number; readonly maxRecords: number };
  };
  readonly messenger: object;
  /** The web gateway, when the node runs one. */
  readonly web?: { stats(): WebStats } | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter listener shape
  on(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * The node's stats in the one shape `/stats` and GW_STATS (`macula stats`)
 * answer with: a section per component, each its own cumulative `stats()`.
 */
export interface NodeSnapshot {
  generatedAt: string;
  node: NodeStatus;
  pool: PoolStats;
  transport: TransportStats;
  dht: DhtStats;
  traffic: TrafficStats;
  queues: QueueStats;
  registry: RegistryStats;
  /** The failure detection: nodes down, marks and probes. */
  liveness: LivenessStats;
  rpc: { client: RpcClientStats; server: RpcServerStats };
  pubsub: PubSubStats;
  gateway: GatewayStats;
  /** A secured realm's admission and permission counters. */
  auth?: RealmGuardStats;
  /** The web gateway (browsers, web apps), when it runs. */
  web?: WebStats;
  process: {
    pid: number;
    uptimeSeconds: number;
    memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; arrayBuffersBytes: number };
  };
}

/** How full one budget of the node is (a count or bytes against its limit). */
export interface BudgetReading {
  name: string;
  used: number;
  limit: number;
  /** Ratio at which this budget fails the health check. Default: the monitor's fail ratio (1). */
  failAt?: number;
}

/**
 * The node's budgets, read from its components at every health report:
 * one line per budget. Add new budgets (bytes buffered, store bytes, …)
 * here as their components expose them.
 */
export function nodeBudgets(node: Pick<ObservedNode, 'dht' | 'messenger'>): BudgetReading[] {
  const budgets: BudgetReading[] = [];
  const store = node.dht.store;
  if (store) budgets.push({ name: 'dhtStoreRecords', used: store.size, limit: store.maxRecords });
  const dht = node.dht.stats();
  if (dht.maxBytes > 0) budgets.push({ name: 'dhtStoreBytes', used: dht.bytes, limit: dht.maxBytes });
  const m = node.messenger as MessengerProbes;
  if (typeof m.budgetStats === 'function') {
    const { frameBytes, preHelloConnections } = m.budgetStats.call(m).budgets;
    budgets.push({ name: 'frameBytes', ...frameBytes }, { name: 'preHelloConnections', ...preHelloConnections });
  }
  return budgets;
}

interface MessengerProbes {
  trafficStats?: () => TrafficStats;
  queueStats?: () => QueueStats;
  budgetStats?: () => BudgetStats;
  guard?: { stats(): RealmGuardStats };
}

/** A secured realm's admission and permission counters; undefined in an open realm. */
export function authSource(node: Pick<ObservedNode, 'messenger'>): (() => RealmGuardStats) | undefined {
  const guard = (node.messenger as MessengerProbes).guard;
  return guard ? () => guard.stats() : undefined;
}

/** The messenger's message counters, when it keeps them. */
export function trafficSource(node: Pick<ObservedNode, 'messenger'>): (() => TrafficStats) | undefined {
  const m = node.messenger as MessengerProbes;
  return typeof m.trafficStats === 'function' ? () => m.trafficStats!.call(m) : undefined;
}

/** The messenger's queue depths, when it reports them. */
export function queueSource(node: Pick<ObservedNode, 'messenger'>): (() => QueueStats) | undefined {
  const m = node.messenger as MessengerProbes;
  return typeof m.queueStats === 'function' ? () => m.queueStats!.call(m) : undefined;
}
