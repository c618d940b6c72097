/**
 * Every default of a node, in the shape of MeshNodeOptions. Each value is
 * defined once, in the module that owns it (`*_DEFAULTS` next to the
 * constants); this only collects them, with the two places where a node
 * differs from a bare component: the QUIC idle timeout and keep-alive
 * (crash detection), and the pool's connection limit (room for mesh peers
 * beyond the light clients). The CLI reads its defaults from here.
 */
import { DEFAULT_CLOCK_TOLERANCE_S } from '../auth/credential.js';
import { DHT_DEFAULTS } from '../dht/options.js';
import { GATEWAY_DEFAULTS, MESH_CONNECTION_MARGIN, nodeConnectionLimit } from '../gateway/options.js';
import { LIVENESS_DEFAULTS } from '../liveness/liveness.js';
import { REACHABILITY_DEFAULTS } from '../nat/reachability.js';
import { PUBSUB_DEFAULTS } from '../pubsub/options.js';
import { REGISTRY_DEFAULTS } from '../registry/registry.js';
import { RELAY_CLIENT_DEFAULTS } from '../relay/client.js';
import { RELAY_SERVER_DEFAULTS } from '../relay/server.js';
import { RPC_CLIENT_DEFAULTS } from '../rpc/client.js';
import { RPC_SERVER_DEFAULTS } from '../rpc/server.js';
import { DEFAULT_REALM, SESSION_DEFAULTS } from '../session/messenger.js';
import { POOL_DEFAULTS } from '../transport/pool.js';
import { TRANSPORT_DEFAULTS } from '../transport/quic.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../transport/types.js';
import { WEB_DEFAULTS } from '../web/server.js';
import { DEFAULT_STOP_TIMEOUT_MS, NODE_QUIC_IDLE_TIMEOUT_MS, NODE_QUIC_KEEPALIVE_MS } from './mesh-node.js';
import { DEFAULT_CREDENTIAL_SWEEP_MS } from './realm-security.js';
import { DEFAULT_REVOCATION_POLL_MS } from './revocation-sync.js';

/** The node's own (top-level) options. */
export const NODE_DEFAULTS = Object.freeze({
  port: DEFAULT_PORT,
  host: DEFAULT_HOST,
  realm: DEFAULT_REALM,
  stopTimeoutMs: DEFAULT_STOP_TIMEOUT_MS,
  credentialSweepMs: DEFAULT_CREDENTIAL_SWEEP_MS,
  revocationPollMs: DEFAULT_REVOCATION_POLL_MS,
  credentialClockToleranceS: DEFAULT_CLOCK_TOLERANCE_S,
  /** Connections kept for mesh peers beyond gateway.maxClients. */
  meshConnectionMargin: MESH_CONNECTION_MARGIN,
});

export const DEFAULTS = Object.freeze({
  node: NODE_DEFAULTS,
  transport: Object.freeze({ ...TRANSPORT_DEFAULTS, idleTimeoutMs: NODE_QUIC_IDLE_TIMEOUT_MS, keepAliveMs: NODE_QUIC_KEEPALIVE_MS }),
  pool: Object.freeze({ ...POOL_DEFAULTS, maxConnections: nodeConnectionLimit(undefined, GATEWAY_DEFAULTS.maxClients) }),
  session: SESSION_DEFAULTS,
  dht: DHT_DEFAULTS,
  registry: REGISTRY_DEFAULTS,
  liveness: LIVENESS_DEFAULTS,
  rpc: Object.freeze({ client: RPC_CLIENT_DEFAULTS, server: RPC_SERVER_DEFAULTS }),
  pubsub: PUBSUB_DEFAULTS,
  gateway: GATEWAY_DEFAULTS,
  reachability: REACHABILITY_DEFAULTS,
  /** `serve` has no fixed default: a node relays while the reachability check finds it public. */
  relay: Object.freeze({ limits: RELAY_SERVER_DEFAULTS, client: RELAY_CLIENT_DEFAULTS }),
  /** The web gateway is off unless a port is given; these apply once it is on. */
  web: WEB_DEFAULTS,
});
