/**
 * What the metrics, the health checks and the admin server read from a
 * node: its one `snapshot()` (the shape `/stats` and GW_STATS answer with)
 * and the events it emits. MeshNode is one; the metrics sit below the
 * composition root, hence the interface.
 */
import type { RealmGuardStats } from '../auth/realm-guard.js';
import type { LivenessStats } from '../liveness/liveness.js';
import type { DhtStats } from '../dht/metrics.js';
import type { NodeStatus } from '../session/node-status.js';
import type { PoolStats } from '../transport/pool.js';
import type { QueueStats, TrafficStats } from '../session/messenger.js';
import type { TransportStats } from '../transport/types.js';
import type { GatewayStats } from '../gateway/options.js';
import type { WebStats } from '../web/server.js';
import type { PubSubStats } from '../pubsub/pubsub.js';
import type { RegistryStats } from '../registry/types.js';
import type { RpcClientStats } from '../rpc/client.js';
import type { RpcServerStats } from '../rpc/server.js';
import type { ObservedStats } from '../nat/observed.js';
import type { ReachabilityStats } from '../nat/reachability.js';
import type { PortMappingStats } from '../nat/port-mapping.js';
import type { RelayClientStats } from '../relay/client.js';
import type { RelayServerStats } from '../relay/server.js';
import type { DirectUpgradeStats } from '../relay/upgrade.js';

export type { QueueStats, TrafficStats };

/** A node as the metrics, /health and the admin server see it. */
export interface ObservedNode {
  snapshot(): NodeSnapshot;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter listener shape
  on(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * `node.snapshot()`, taken once per scrape or report: every metric of a
 * scrape, every check of a health report reads the same snapshot. It is
 * taken at the first `read()` after `reset()` (the start of a scrape or
 * report) and kept at most until the event loop turns.
 */
export class SnapshotReader {
  readonly #node: ObservedNode;
  #current: NodeSnapshot | undefined;

  constructor(node: ObservedNode) {
    this.#node = node;
  }

  readonly read = (): NodeSnapshot => {
    if (this.#current === undefined) {
      this.#current = this.#node.snapshot();
      setImmediate(() => this.reset()).unref();
    }
    return this.#current;
  };

  reset(): void {
    this.#current = undefined;
  }
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
  /** Behind a NAT or not: the reachability check (absent when off) and the addresses peers observed. */
  nat?: {
    reachability: ReachabilityStats | undefined;
    observed: ObservedStats;
    /** The address this node announces (a relayed one while it is behind a NAT with relays). */
    advertised: string | undefined;
    /** Relaying for others (src/relay/server.ts) and the relays this node keeps (src/relay/client.ts). */
    relay: RelayServerStats | undefined;
    relays: RelayClientStats | undefined;
    /** Relayed connections replaced by direct ones (src/relay/upgrade.ts). */
    directUpgrade: DirectUpgradeStats;
    /** Router port mapping (src/nat/port-mapping.ts), when on. */
    portMapping: PortMappingStats | undefined;
  };
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
 * The node's budgets, read from its snapshot at every health report: one
 * line per budget. Add new budgets here as the snapshot reports them.
 */
export function nodeBudgets(s: NodeSnapshot): BudgetReading[] {
  const budgets: BudgetReading[] = [{ name: 'dhtStoreRecords', used: s.dht.records, limit: s.dht.maxRecords }];
  if (s.dht.maxBytes > 0) budgets.push({ name: 'dhtStoreBytes', used: s.dht.bytes, limit: s.dht.maxBytes });
  const b = s.queues.budgets;
  if (b) budgets.push({ name: 'frameBytes', ...b.frameBytes }, { name: 'preHelloConnections', ...b.preHelloConnections });
  return budgets;
}
