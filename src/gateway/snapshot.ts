/**
 * What the gateway needs from its node (a structural subset of MeshNode, so
 * tests can pass a stand-in) and the STATS / PEERS snapshots it answers with.
 * Snapshots are plain JSON-able data: `macula stats --json` prints them as is.
 */
import type { DhtStats } from '../dht/metrics.js';
import type { TableContact } from '../dht/routing-table.js';
import { toHex } from '../identity/identity.js';
import type { Handler } from '../node/messenger.js';
import type { NodeStatus } from '../node/mesh-node.js';
import type { PeerInfo } from '../node/peer-session.js';
import type { PubSubMessage } from '../pubsub/subscription.js';
import type { Provider, RegistryStats } from '../registry/types.js';
import type { RpcClientStats } from '../rpc/client.js';
import type { RpcServerStats } from '../rpc/server.js';
import type { RegisterOptions, RpcHandler } from '../rpc/types.js';
import type { PoolStats } from '../transport/pool.js';
import type { Connection, TransportStats } from '../transport/types.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { Message, MessageDef } from '../wire/messages.js';
import type { GatewayStats } from './options.js';

export interface GatewaySubscription {
  readonly ready: Promise<void>;
  unsubscribe(): Promise<void>;
}

/** The node's pub/sub service, as the gateway uses it. */
export interface GatewayPubSub {
  subscribe(pattern: string, handler: (msg: PubSubMessage) => void | Promise<void>): GatewaySubscription;
  publish(topic: string, data: unknown, options?: { origin?: string }): Promise<unknown>;
  stats(): unknown;
}

export interface GatewayNode {
  readonly nodeId: string;
  readonly realm: string;
  readonly running: boolean;
  readonly messenger: {
    handle(def: MessageDef, handler: Handler): void;
    notify(target: { address: { host: string; port: number }; nodeId: string }, msg: OutboundMessage): Promise<void>;
    requestOn(conn: Connection, msg: OutboundMessage, options: { timeoutMs?: number }): Promise<Message>;
  };
  readonly pool: { acquire(conn: Connection): void; release(conn: Connection): void; stats(): PoolStats };
  readonly transport: { readonly kind: string; stats(): TransportStats };
  readonly dht: { stats(): DhtStats; readonly table: { toArray(): TableContact[] } };
  readonly registry: { invalidate(name: string): void; stats(): RegistryStats };
  /** The failure detection, when the node runs one. */
  readonly liveness?: { stats(): unknown };
  readonly rpc: { stats(): RpcClientStats };
  readonly rpcServer: { stats(): RpcServerStats };
  /** Present once the node runs pub/sub; PUB and SUB are refused without it. */
  readonly pubsub?: GatewayPubSub | undefined;
  status(): NodeStatus;
  peers(): PeerInfo[];
  register(procedure: string, handler: RpcHandler, options?: RegisterOptions): Promise<void>;
  unregister(procedure: string): Promise<boolean>;
  call(procedure: string, args?: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
  lookup(name: string): Promise<readonly Provider[]>;
}

/** Lists longer than this are cut (and say so): an answer must fit one frame. */
export const MAX_LISTED = 2000;

interface MessengerProbes {
  trafficStats?: () => unknown;
  queueStats?: () => unknown;
  guard?: { stats(): unknown };
}

export function statsSnapshot(node: GatewayNode, gateway: GatewayStats): Record<string, unknown> {
  const probes = node.messenger as MessengerProbes;
  const mem = process.memoryUsage();
  const snapshot: Record<string, unknown> = {
    generatedAt: new Date().toISOString(),
    node: { ...node.status(), transport: node.transport.kind },
    pool: node.pool.stats(),
    transport: node.transport.stats(),
    dht: node.dht.stats(),
    registry: node.registry.stats(),
    ...(node.liveness ? { liveness: node.liveness.stats() } : {}),
    rpc: { client: node.rpc.stats(), server: node.rpcServer.stats() },
    gateway,
    process: { pid: process.pid, uptimeSeconds: Math.round(process.uptime()), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
  };
  if (node.pubsub) snapshot.pubsub = node.pubsub.stats();
  // Message counters and send-queue depths, when the messenger keeps them.
  if (typeof probes.trafficStats === 'function') snapshot.traffic = probes.trafficStats();
  if (typeof probes.queueStats === 'function') snapshot.queues = probes.queueStats();
  // A secured realm's admission and permission counters.
  if (probes.guard) snapshot.auth = probes.guard.stats();
  return snapshot;
}

export interface PeersSnapshot {
  contacts: { nodeId: string; host: string; port: number; lastSeen: number; fails: number }[];
  connections: { nodeId: string; role: string; address: { host: string; port: number }; direction: string; rttMs: number }[];
  /** Entries left out of each list (MAX_LISTED). */
  truncated: { contacts: number; connections: number };
}

export function peersSnapshot(node: GatewayNode): PeersSnapshot {
  const table = node.dht.table.toArray();
  const connected = node.peers();
  return {
    contacts: table.slice(0, MAX_LISTED).map((c) => ({ nodeId: toHex(c.id), host: c.host, port: c.port, lastSeen: c.lastSeen, fails: c.fails })),
    connections: connected.slice(0, MAX_LISTED).map((p) => ({
      nodeId: p.nodeIdHex,
      role: p.role,
      address: { host: p.address.host, port: p.address.port },
      direction: p.connection.direction,
      rttMs: Math.round(p.connection.rttMs() * 10) / 10,
    })),
    truncated: { contacts: Math.max(0, table.length - MAX_LISTED), connections: Math.max(0, connected.length - MAX_LISTED) },
  };
}
