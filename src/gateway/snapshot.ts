/**
 * What the gateway uses of its node, each part named (MeshNode passes its
 * own components; tests can pass stand-ins), and the PEERS snapshot.
 * Snapshots are plain JSON-able data: `macula stats --json` prints them as is.
 */
import type { TableContact } from '../dht/routing-table.js';
import { toHex } from '../identity/identity.js';
import type { HandlerReply } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { PubSubMessage, PubSubRun } from '../pubsub/subscription.js';
import type { Provider } from '../registry/types.js';
import type { RegisterOptions, RpcHandler } from '../rpc/types.js';
import type { Connection } from '../transport/types.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { HandlerRegistry, Message } from '../wire/messages.js';
import type { Headers } from '../wire/headers.js';
import type { RunFailures } from './publish-flow.js';

export interface GatewaySubscription {
  readonly ready: Promise<void>;
  unsubscribe(): Promise<void>;
  /** `n` messages for it were lost on the way to its consumer (the client's send queue was full): counted as drops. */
  drop(n?: number): void;
}

/** The node's pub/sub service, as the gateway uses it. */
export interface GatewayPubSub {
  subscribe(pattern: string, handler: (msg: PubSubMessage) => void | Promise<void>, options?: { queue?: string; client?: string; onRun?: (run: PubSubRun) => void | Promise<void> }): GatewaySubscription;
  publish(topic: string, data: unknown, options?: { origin?: string; headers?: Headers }): Promise<unknown>;
  /** Consecutive publishes to one topic without headers (a GW_SEND run); resolves with the ones refused on their own. */
  publishRun(topic: string, data: readonly unknown[], options?: { origin?: string }): Promise<{ refused: RunFailures }>;
  request(topic: string, data: unknown, options?: { origin?: string; headers?: Headers; max?: number; timeoutMs?: number }): Promise<readonly { data: unknown; headers?: Headers; responder: string }[]>;
  stats(): unknown;
}

/** What the gateway uses of its node, each part named. */
export interface GatewayComponents {
  readonly nodeId: string;
  readonly realm: string;
  isRunning(): boolean;
  readonly messenger: HandlerRegistry<PeerInfo, HandlerReply> & {
    notifyOn(conn: Connection, msg: OutboundMessage): Promise<void>;
    requestOn(conn: Connection, msg: OutboundMessage, options: { timeoutMs?: number }): Promise<Message>;
  };
  readonly pool: { acquire(conn: Connection): void; release(conn: Connection): void };
  readonly registry: { invalidate(name: string): void };
  /** Present once the node runs pub/sub; PUB and SUB are refused without it. */
  readonly pubsub?: GatewayPubSub | undefined;
  /** The node's services, with the node's own permission checks. */
  readonly services: {
    register(procedure: string, handler: RpcHandler, options?: RegisterOptions): Promise<void>;
    unregister(procedure: string): Promise<boolean>;
    call(procedure: string, args?: unknown, options?: { timeoutMs?: number; origin?: string; headers?: Headers; onResultHeaders?: (h: Headers) => void }): Promise<unknown>;
    lookup(name: string): Promise<readonly Provider[]>;
  };
  /** The node's stats snapshot (GW_STATS answers with it). */
  snapshot(): object;
  /** Routing table and connections (GW_PEERS). */
  peers(): PeersSnapshot;
}

/** Lists longer than this are cut (and say so): an answer must fit one frame. */
export const MAX_LISTED = 2000;

export interface PeersSnapshot {
  contacts: { nodeId: string; host: string; port: number; lastSeen: number; fails: number }[];
  connections: { nodeId: string; role: string; address: { host: string; port: number }; direction: string; rttMs: number }[];
  /** Entries left out of each list (MAX_LISTED). */
  truncated: { contacts: number; connections: number };
}

export function peersSnapshot(table: readonly TableContact[], connected: readonly PeerInfo[]): PeersSnapshot {
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
