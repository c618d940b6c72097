/** Public API of the Macula mesh node. */
export { DEFAULT_PORT } from './transport/types.js';
export { createNode, MeshNode, type MeshNodeOptions, type NodeStatus, type SessionInit } from './node/mesh-node.js';
export { DEFAULTS, NODE_DEFAULTS } from './node/defaults.js';
export type { ReachabilityInit } from './nat/reachability.js';
export type { RelayClientInit } from './relay/client.js';
export type { RelayServerInit } from './relay/server.js';
export type { WebGatewayInit } from './web/server.js';
export { Messenger, type Handler, type MessengerInit, type Target } from './session/messenger.js';
export { RemoteError, type PeerInfo, type Role } from './session/peer-session.js';
export { Identity, loadOrCreateIdentity, defaultDataDir, nodeIdFromPublicKey, shortId, toHex, fromHex } from './identity/identity.js';
export { QuicTransport } from './transport/quic.js';
export { MemoryNetwork, MemoryTransport } from './transport/memory.js';
export { ConnectionPool, type ConnectionPoolInit, type PoolStats } from './transport/pool.js';
export { formatAddress, parseAddress, type Connection, type PeerAddress, type Stream, type Transport, type TransportOptions } from './transport/types.js';
export { defineMessage, PROTOCOL_VERSION, type Message, type MessageDef } from './wire/messages.js';
export { f as fields } from './wire/schema.js';
export * from './util/errors.js';
export { Dht, dhtKey, signRecord, verifyRecord, recordPublisherId, StoreRefusedError, type DhtRecord, type LookupResult, type PutResult, type BootstrapResult, type DhtInit } from './dht/index.js';
export { ServiceRegistry, InvalidServiceNameError, RegistryLookupError, type Provider, type ServiceRegistryInit } from './registry/index.js';
export {
  RpcClient,
  RpcServer,
  BadArgumentsError,
  NoProvidersError,
  NoSuchProcedureError,
  RemoteCallError,
  RpcTimeoutError,
  RpcUnavailableError,
  TooManyInFlightError,
  type CallOptions,
  type RegisterOptions,
  type RpcContext,
  type RpcHandler,
  type Selection,
} from './rpc/index.js';
export { PubSub, Subscription, InvalidPayloadError, NoRespondersError, InvalidQueueGroupError, type PubSubInit, type PubSubMessage, type PublishResult, type PubSubStats, type Reply, type RequestOptions } from './pubsub/index.js';
export { InvalidHeadersError, type Headers } from './wire/headers.js';
export type { SlowConsumer } from './pubsub/slow-consumers.js';
export { InvalidTopicError, validateTopic, validatePattern } from './pubsub/topic.js';
export { Gateway } from './gateway/index.js';
export { MaculaClient, NodeUnreachableError, type MaculaClientInit, type ClientMessage, type ClientSubscription } from './client/index.js';
export { PublishError, type PublishStats } from './client/index.js';
export { AdminServer } from './metrics/admin-server.js';
export { PrometheusMetrics } from './metrics/prometheus.js';
export { instrumentNode } from './metrics/node-metrics.js';
export { noopMetrics, type Metrics } from './metrics/metrics.js';
