/**
 * MeshNode: the composition root. Owns the identity, the transport, the
 * connection pool and the messenger, and wires the feature modules to them.
 */
import { Liveness, type LivenessInit } from '../liveness/liveness.js';
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import type { Action } from '../auth/permissions.js';
import { serveSubject } from '../auth/record-auth.js';
import { RealmGuard } from '../auth/realm-guard.js';
import { Identity, loadOrCreateIdentity, defaultDataDir, publicKeyFromHex } from '../identity/identity.js';
import { ConnectionPool, type ConnectionPoolInit } from '../transport/pool.js';
import { QuicTransport, type QuicTransportOptions } from '../transport/quic.js';
import { MemoryNetwork, MemoryTransport } from '../transport/memory.js';
import { DEFAULT_HOST, DEFAULT_PORT, formatAddress, type PeerAddress, type Transport } from '../transport/types.js';
import { ConfigError, StoppedError } from '../util/errors.js';
import { settleWithin } from '../util/time.js';
import { PING, PONG } from '../wire/messages.js';
import { Dht, type BootstrapResult, type DhtInit } from '../dht/dht.js';
import type { DhtLogger } from '../dht/network.js';
import { contactOf, MessengerDhtNetwork, serveDht } from '../session/dht-adapter.js';
import { ServiceRegistry, type Provider, type ServiceRegistryInit } from '../registry/index.js';
import { RpcClient, RpcServer, type CallOptions, type RegisterOptions, type RpcClientInit, type RpcHandler, type RpcServerInit } from '../rpc/index.js';
import { Messenger, DEFAULT_REALM, type BudgetStats, type MessengerInit } from '../session/messenger.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { NodeStatus } from '../session/node-status.js';
export type { NodeStatus } from '../session/node-status.js';
import { DEFAULT_CREDENTIAL_SWEEP_MS, realmAuthorizer, sweepSessions } from './realm-security.js';
import { RevocationSync } from './revocation-sync.js';
import { Gateway, type GatewayInit } from '../gateway/index.js';
import { DEFAULT_MAX_CLIENTS, nodeConnectionLimit } from '../gateway/options.js';
import { peersSnapshot } from '../gateway/snapshot.js';
import type { NodeSnapshot } from '../metrics/node-sources.js';
import { ObservedAddresses } from '../nat/observed.js';
import { ReachabilityCheck, type ReachabilityInit } from '../nat/reachability.js';
import { PortMapper } from '../nat/port-mapping.js';
import { RelayClient, type RelayClientInit } from '../relay/client.js';
import { RelayServer, type RelayServerInit } from '../relay/server.js';
import { RelayingTransport } from '../relay/transport.js';
import { DirectUpgrade } from '../relay/upgrade.js';
import { isRelayedHost } from '../transport/relayed-address.js';
import { WebGateway, type WebGatewayInit } from '../web/server.js';
import { PubSub, type PubSubInit, type PublishResult, type PubSubMessage, type Reply, type RequestOptions, type Subscription } from '../pubsub/index.js';
import type { Headers } from '../wire/headers.js';

export const DEFAULT_STOP_TIMEOUT_MS = 5000;
/**
 * A node's QUIC connections hear from their peer at least every 1.5 s
 * (keep-alives) and close after 6 s of silence: that is how a crashed or
 * frozen peer is detected on a connection we only send on (PUBLISH is
 * one-way, and writes into a dead connection succeed until flow control
 * blocks). Light clients keep the transport's defaults (30 s / 10 s);
 * their connections to a node get the node's keep-alives.
 */
export const NODE_QUIC_IDLE_TIMEOUT_MS = 6_000;
export const NODE_QUIC_KEEPALIVE_MS = 1_500;
/** A lost connection marks its node down only if it was used this recently. */
const LOST_CONNECTION_RECENT_USE_MS = 60_000;

function announceHostFor(bound: string): string {
  if (bound !== '0.0.0.0' && bound !== '::') return bound;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}


/** The session layer's options of a node (the realm is the node's; a node's role is always `node`). */
export type SessionInit = Omit<MessengerInit, 'realm' | 'role' | 'credential'>;

/**
 * A node's options: the node's own at the top level, each component's in
 * its own section, owned by that component (its defaults in its module,
 * collected in `DEFAULTS`):
 *
 *     { port, host, realm, bootstrap, …,
 *       transport, pool, session, dht, registry, liveness, rpc: { client, server }, pubsub, gateway }
 */
export interface MeshNodeOptions {
  /** UDP port to listen on; 0 picks a free port. Default 9443. */
  port?: number;
  /** Address to bind. Default 0.0.0.0. */
  host?: string;
  /** The mesh realm: nodes only talk within one realm. Default `default`. */
  realm?: string;
  /**
   * Host other nodes should use to reach this one, published in registry and
   * subscription records. Default: the bound host, or when bound to all
   * interfaces the first non-internal IPv4 address (127.0.0.1 if none).
   */
  announceHost?: string;
  /** Where the node key lives. Default: $MACULA_DATA_DIR or the per-user data dir. */
  dataDir?: string;
  /** Use this identity instead of the key file in dataDir. */
  identity?: Identity;
  /** Nodes to join through; none makes this node the first of a new mesh. */
  bootstrap?: PeerAddress[];
  /** Run over the in-process memory transport of this network instead of QUIC. */
  memoryNetwork?: MemoryNetwork;
  /**
   * QUIC transport: handshake and idle timeouts, keep-alives, stream and
   * receive windows, admission rates; see src/transport/quic.ts. A node's
   * QUIC idle timeout defaults to 6 s and its keep-alive to 1.5 s
   * (`NODE_DEFAULTS`), not the transport's 30 s / 10 s.
   */
  transport?: QuicTransportOptions;
  /**
   * Connection pool: `maxConnections` (default gateway.maxClients + 1000,
   * see nodeConnectionLimit), the idle reaper (`idleTimeoutMs`, default
   * 5 min: not the QUIC idle timeout, which is `transport.idleTimeoutMs`),
   * dial timeout; see src/transport/pool.ts.
   */
  pool?: ConnectionPoolInit;
  /** Session layer: request timeout, requests in flight per connection, frame size and budgets, HELLO admission; see src/session/messenger.ts. */
  session?: SessionInit;
  /** DHT parameters (k, alpha, timeouts, record store bounds); see src/dht/options.ts. */
  dht?: DhtInit;
  /** Service registry cache and TTL defaults; see src/registry/registry.ts. */
  registry?: Omit<ServiceRegistryInit, 'realm'>;
  /** Failure detection shared by RPC and pub/sub (backoff between probes of a down node); see src/liveness/liveness.ts. */
  liveness?: LivenessInit;
  /** RPC: the caller's defaults (timeout, selection, attempts, result cache) and the server's limits (handler timeout, procedures, running calls); see src/rpc/. */
  rpc?: { client?: RpcClientInit; server?: RpcServerInit };
  /** Pub/sub tunables (fan-out pool, caches, limits); see src/pubsub/options.ts. */
  pubsub?: PubSubInit;
  /** Light-client gateway limits (maxClients, per-client subscriptions, calls, served procedures); see src/gateway/options.ts. */
  gateway?: GatewayInit;
  /**
   * The reachability check (public / private / unknown; src/nat/reachability.ts),
   * or false to run none. Default: on over QUIC, off over the in-process network (it has no NATs).
   */
  reachability?: ReachabilityInit | false;
  /**
   * Relaying (src/relay/; needs the reachability check). `serve`: relay for
   * nodes behind a NAT — true always, false never, default when this node is
   * found public; `limits` bound what it relays. `client`: how a node found
   * private keeps relays, or false to never use relays.
   */
  relay?: { serve?: boolean; limits?: RelayServerInit; client?: RelayClientInit | false };
  /**
   * Ask the router (UPnP IGD, then NAT-PMP) to forward a public UDP port to
   * this node, and announce the mapped address (src/nat/port-mapping.ts).
   * Default false.
   */
  portMapping?: boolean;
  /**
   * The web gateway for browsers and web apps (WebTransport, its WebSocket
   * mapping, the dashboard); off unless given. See src/web/server.ts.
   */
  web?: WebGatewayInit;
  /** How long stop() waits for records to be withdrawn from the mesh. Default 5000 ms. */
  stopTimeoutMs?: number;
  /** Where warnings go (unreachable bootstrap, …). Default: stderr. */
  logger?: DhtLogger;
  /**
   * The realm authority's Ed25519 public key (hex or raw 32 bytes): makes the
   * realm secured. Every peer must then present a credential it signed;
   * without it the realm is open (anyone who knows its name may join).
   */
  realmKey?: string | Uint8Array;
  /** This node's credential chain (issuer first) for a secured realm; see `macula cred issue`. */
  credential?: readonly string[];
  /** How often connected peers' credentials are checked for expiry and revocation. Default 5000 ms. */
  credentialSweepMs?: number;
  /** How often the DHT is asked for a newer revocation list. Default 30 s. */
  revocationPollMs?: number;
  /** Clock difference tolerated on credentials' not-before and expiry, in seconds. Default 30. */
  credentialClockToleranceS?: number;
}

const stderrLogger: DhtLogger = { warn: (m) => process.stderr.write(`macula: warning: ${m}\n`) };

/**
 * Events: 'peer' (PeerInfo, after a HELLO), 'protocol-error' (ProtocolError,
 * PeerInfo | undefined), 'lookup' (LookupStats of every finished DHT lookup),
 * 'rpc-call' (ms, outcome of every call made), 'reachability' (the new status
 * when the reachability check changes its answer).
 */
export class MeshNode extends EventEmitter {
  readonly identity: Identity;
  readonly transport: Transport;
  readonly pool: ConnectionPool;
  readonly messenger: Messenger;
  /** Which nodes are down (connection lost, dial or request failed), shared by RPC and pub/sub. */
  readonly liveness: Liveness;
  readonly dht: Dht;
  readonly registry: ServiceRegistry;
  readonly rpcServer: RpcServer;
  readonly rpc: RpcClient;
  readonly pubsub: PubSub;
  readonly gateway: Gateway;
  /** The addresses peers saw this node's packets come from. */
  readonly observed = new ObservedAddresses();
  /** Whether others can dial this node (undefined when the check is off). */
  readonly reachability: ReachabilityCheck | undefined;
  /** Relays for nodes behind a NAT while enabled (undefined without the reachability check). */
  readonly relayServer: RelayServer | undefined;
  /** Keeps relays while this node is private (undefined without the reachability check or with relay.client false). */
  readonly relayClient: RelayClient | undefined;
  /** Replaces relayed connections by direct ones once the node behind the relay is reachable. */
  readonly directUpgrade: DirectUpgrade;
  /** Router port mapping (undefined unless the portMapping option is on). */
  readonly portMapper: PortMapper | undefined;
  /** The web gateway, when options.web is given: its sessions are light clients of `gateway`. */
  readonly web: WebGateway | undefined;
  readonly options: MeshNodeOptions;
  /** A secured realm's guard (undefined in an open realm). */
  readonly guard: RealmGuard | undefined;
  /** A secured realm's revocation list upkeep (undefined in an open realm). */
  readonly revocations: RevocationSync | undefined;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #sweep: NodeJS.Timeout | undefined;
  #startedAt = 0;

  constructor(identity: Identity, options: MeshNodeOptions = {}) {
    super();
    this.identity = identity;
    this.options = options;
    const transport = new RelayingTransport(
      options.memoryNetwork
        ? new MemoryTransport({ identity, network: options.memoryNetwork }, options.transport)
        : new QuicTransport({ identity }, { idleTimeoutMs: NODE_QUIC_IDLE_TIMEOUT_MS, keepAliveMs: NODE_QUIC_KEEPALIVE_MS, ...options.transport }),
    );
    this.transport = transport;
    // Light clients pin their connections: the pool always keeps room for mesh peers beyond them.
    const maxConnections = nodeConnectionLimit(options.pool?.maxConnections, options.gateway?.maxClients ?? DEFAULT_MAX_CLIENTS);
    this.pool = new ConnectionPool({ transport: this.transport }, { ...options.pool, maxConnections });
    this.guard = realmGuardFor(identity, options);
    this.messenger = new Messenger(
      {
        transport: this.transport,
        pool: this.pool,
        guard: this.guard,
        events: {
          hello: (peer) => {
            this.liveness.up(peer.nodeIdHex);
            this.emit('peer', peer);
          },
          message: (peer) => {
            this.liveness.up(peer.nodeIdHex);
            const contact = contactOf(peer);
            if (contact) this.dht.onContact(contact);
          },
          protocolError: (err, peer) => this.emit('protocol-error', err, peer),
          observed: (address, peer) => this.observed.record(address, peer.nodeIdHex),
        },
      },
      { ...options.session, realm: options.realm ?? DEFAULT_REALM, role: 'node', ...(options.credential !== undefined && { credential: options.credential }) },
    );
    this.dht = new Dht(
      {
        identity,
        network: new MessengerDhtNetwork(this.messenger),
        logger: options.logger ?? stderrLogger,
        // one event per finished lookup, for the lookup histograms (src/metrics/node-metrics.ts)
        metrics: { lookup: (stats) => this.emit('lookup', stats) },
        // A lookup does not wait out nodes the failure detection knows are down.
        isDown: (nodeIdHex) => this.liveness.isDown(nodeIdHex),
      },
      options.dht,
    );
    this.messenger.handle(PING, () => ({ t: PONG.type }));
    this.liveness = new Liveness(
      { probe: (nodeId, address, timeoutMs) => this.messenger.request({ address, nodeId }, { t: PING.type }, { timeoutMs }) },
      options.liveness,
    );
    // A connection unused for a minute carries no traffic: its loss (often the peer's idle reaper) proves nothing.
    this.pool.onConnectionLost = (nodeId, address, idleMs) => idleMs < LOST_CONNECTION_RECENT_USE_MS && this.liveness.down(nodeId, 'connection_lost', address);
    this.pool.onDialFailed = (address, nodeId) => nodeId !== undefined && this.liveness.down(nodeId, 'dial_failed', address);
    serveDht(this.messenger, this.dht);
    const node = this;
    this.registry = new ServiceRegistry(
      { dht: this.dht, localNode: { nodeId: identity.nodeIdHex, get address() { return node.advertisedAddress; } }, auth: this.guard, liveness: this.liveness },
      { ...options.registry, realm: this.messenger.realm },
    );
    this.rpcServer = new RpcServer({ transport: this.messenger, registry: this.registry }, options.rpc?.server);
    this.rpc = new RpcClient(
      { transport: this.messenger, registry: this.registry, server: this.rpcServer, liveness: this.liveness, observe: (ms, outcome) => this.emit('rpc-call', ms, outcome) },
      options.rpc?.client,
    );
    this.pubsub = new PubSub(
      { identity, dht: this.dht, messenger: this.messenger, realm: this.messenger.realm, advertisedAddress: () => this.advertisedAddress, auth: this.guard, liveness: this.liveness },
      options.pubsub,
    );
    this.gateway = new Gateway(
      {
        nodeId: this.nodeId,
        realm: this.messenger.realm,
        isRunning: () => this.running,
        messenger: this.messenger,
        pool: this.pool,
        registry: this.registry,
        pubsub: this.pubsub,
        // The node's own methods: a client's request is checked against the node's credential too.
        services: this,
        snapshot: () => this.snapshot(),
        peers: () => peersSnapshot(this.dht.table.toArray(), this.peers()),
      },
      options.gateway,
    );
    this.directUpgrade = new DirectUpgrade({ messenger: this.messenger, transport });
    if (options.portMapping === true) {
      const mapper = new PortMapper();
      mapper.onMapped = () => {
        this.reachability?.addressChanged();
        this.#addressChanged();
      };
      this.portMapper = mapper;
    }
    const reachability = options.reachability ?? (options.memoryNetwork ? false : {});
    if (reachability !== false) {
      const check = new ReachabilityCheck(
        {
          messenger: this.messenger,
          transport: this.transport,
          observed: this.observed,
          peers: () => this.dht.table.toArray(),
          // The node's own address, never a relayed one: a dial-back to a relay's port proves nothing about
          // this node, and a port mapping made after relays were taken must still be checked (and win).
          directAddress: () => this.#directAddress,
        },
        reachability,
      );
      this.observed.onChange = () => check.addressChanged();
      this.reachability = check;
      const relay = options.relay ?? {};
      const server = new RelayServer(
        { messenger: this.messenger, enabled: () => relay.serve ?? check.status === 'public' },
        relay.limits,
      );
      this.relayServer = server;
      const client =
        relay.client === false
          ? undefined
          : new RelayClient(
              {
                messenger: this.messenger,
                identity,
                realm: this.messenger.realm,
                candidates: () => this.dht.table.toArray(),
                accept: (conn) => transport.acceptRelayed(conn),
              },
              relay.client,
            );
      if (client) {
        transport.dialRelayed = (address, dialOptions) => client.dial(address, dialOptions);
        this.messenger.announcedHost = () => client.relayedAddress()?.host;
        client.onChange = () => this.#addressChanged();
        this.relayClient = client;
      }
      this.messenger.claimStream = (first, stream, peer) => server.claim(first, stream, peer) || (client?.claim(first, stream, peer) ?? false);
      check.onChange = (status) => {
        client?.setActive(status === 'private');
        this.emit('reachability', status);
      };
    }
    // Web sessions join the pool like inbound QUIC connections: one gateway, several transports.
    this.web = options.web ? new WebGateway({ nodeId: this.nodeId, realm: this.messenger.realm, accept: (conn) => this.pool.accept(conn) }, options.web) : undefined;
    if (this.guard) {
      this.messenger.authorize = realmAuthorizer(this.guard);
      this.revocations = new RevocationSync({ guard: this.guard, dht: this.dht, messenger: this.messenger });
    }
  }

  /**
   * Replaces this node's credential (e.g. after `macula cred issue` wrote a
   * new one; the CLI calls it on SIGHUP). New HELLOs carry it; the old one
   * stays in force when the new one does not verify.
   */
  async reloadCredential(chain: readonly string[]): Promise<void> {
    if (!this.guard) throw new ConfigError('this realm is open: there is no credential to reload (start with --realm-key to secure it)');
    await this.guard.reload(chain);
  }

  /**
   * Subscribes to a topic pattern (`*` one segment, `#` zero or more at the
   * end). With `queue`, joins that queue group: each message goes to one
   * member of the group across the mesh.
   */
  subscribe(pattern: string, handler: (msg: PubSubMessage) => void | Promise<void>, options: { queue?: string } = {}): Subscription {
    this.#permit('sub', pattern);
    return this.pubsub.subscribe(pattern, handler, options);
  }

  /** Publishes to every subscriber node in the realm: one message per node; resolves once queued (or in the turn's open run, see PubSub.publish). */
  publish(topic: string, data: unknown, options: { noWait?: boolean; headers?: Headers } = {}): Promise<PublishResult> {
    const refused = this.#refused('pub', topic);
    if (refused) return refused;
    return this.pubsub.publish(topic, data, options);
  }

  /**
   * Publishes a request and gathers up to `max` replies (default 1) within
   * `timeoutMs` (default 5000) from subscribers that answer with
   * `msg.respond()`. Fails at once with NoRespondersError
   * (MACULA_ERR_NO_RESPONDERS) when no subscription matches.
   */
  request(topic: string, data: unknown, options: RequestOptions = {}): Promise<Reply[]> {
    const refused = this.#refused('pub', topic);
    if (refused) return refused;
    return this.pubsub.request(topic, data, options);
  }

  /** Advertises a service in the mesh registry (signed DHT record, re-announced until stop or unadvertise). */
  advertise(name: string, metadata: Record<string, unknown> = {}, options: { ttlMs?: number; ttl?: number } = {}): Promise<void> {
    const ttlMs = options.ttlMs ?? (options.ttl !== undefined ? options.ttl * 1000 : undefined);
    const refused = this.#refused('serve', serveSubject(name));
    if (refused) return refused;
    return this.registry.advertise(name, metadata, ttlMs === undefined ? {} : { ttlMs });
  }

  unadvertise(name: string): Promise<boolean> {
    return this.registry.unadvertise(name);
  }

  /** Live providers of a service: this node first, then the cache, then the DHT. */
  lookup(name: string): Promise<readonly Provider[]> {
    return this.registry.lookup(name);
  }

  /** Serves a procedure and advertises it; calls run concurrently. */
  register(procedure: string, handler: RpcHandler, options: RegisterOptions = {}): Promise<void> {
    const refused = this.#refused('serve', procedure);
    if (refused) return refused;
    return this.rpcServer.register(procedure, handler, options);
  }

  unregister(procedure: string): Promise<boolean> {
    return this.rpcServer.unregister(procedure);
  }

  /**
   * Calls a procedure on one of its providers, failing over to others on
   * connection failure or timeout. `timeout` (ms) is accepted as an alias of `timeoutMs`.
   */
  call(procedure: string, args?: unknown, options: CallOptions & { timeout?: number } = {}): Promise<unknown> {
    const { timeout, ...rest } = options;
    const refused = this.#refused('call', procedure);
    if (refused) return refused;
    return this.rpc.call(procedure, args, timeout !== undefined && rest.timeoutMs === undefined ? { ...rest, timeoutMs: timeout } : rest);
  }

  /** In a secured realm, what this node does itself must be within its own credential (ForbiddenError otherwise). */
  #permit(action: Action, subject: string): void {
    if (this.guard) this.guard.check(this.guard.own, action, subject);
  }

  /** #permit for the methods that return a promise: the refusal as a rejected promise, or undefined. */
  #refused(action: Action, subject: string): Promise<never> | undefined {
    try {
      this.#permit(action, subject);
      return undefined;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get nodeId(): string {
    return this.identity.nodeIdHex;
  }

  get realm(): string {
    return this.messenger.realm;
  }

  get listenAddress(): PeerAddress | undefined {
    return this.transport.listenAddress;
  }

  /** The address published for others to reach this node (see announceHost). */
  get advertisedAddress(): PeerAddress {
    const listen = this.transport.listenAddress;
    if (!listen) throw new StoppedError('the node is not listening yet; start() it first');
    return this.relayClient?.relayedAddress() ?? this.#directAddress;
  }

  /** The address this node is dialed at without a relay: the router's mapped one, else the announced host and listen port. */
  get #directAddress(): PeerAddress {
    const listen = this.transport.listenAddress;
    if (!listen) throw new StoppedError('the node is not listening yet; start() it first');
    return this.portMapper?.external ?? { host: this.options.announceHost ?? announceHostFor(listen.host), port: listen.port };
  }

  /** Stops the reachability check, lets relays go, closes circuits, removes the port mapping. */
  async #stopNat(): Promise<void> {
    this.reachability?.stop();
    this.relayClient?.stop();
    this.relayServer?.close();
    await this.portMapper?.stop();
  }

  /** The advertised address changed (relays gained or lost): records are put again with it. */
  #addressChanged(): void {
    if (this.#state !== 'running') return;
    const address = this.advertisedAddress;
    this.emit('address', address);
    if (!isRelayedHost(address.host)) this.directUpgrade.announce(address);
    void this.registry.addressChanged();
    this.pubsub.addressChanged();
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  async start(): Promise<this> {
    if (this.#state !== 'new') throw new StoppedError('this node was already started once; create a new MeshNode');
    const port = this.options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be an integer in 0..65535, got ${port}`);
    if (this.guard) {
      await this.guard.verifyOwn();
      const guard = this.guard;
      this.#sweep = setInterval(() => sweepSessions(this.messenger, guard), this.options.credentialSweepMs ?? DEFAULT_CREDENTIAL_SWEEP_MS);
      this.#sweep.unref();
    }
    await this.transport.listen({ host: this.options.host ?? DEFAULT_HOST, port });
    this.messenger.start();
    this.dht.start();
    this.#state = 'running';
    this.#startedAt = Date.now();
    this.revocations?.start(this.options.revocationPollMs);
    const listen = this.transport.listenAddress!;
    if (this.portMapper) {
      // The check waits for the mapping attempt: a dial-back sent before the router forwards the port leaves
      // a connection-tracking entry on the router that keeps later dial-backs from that peer unforwarded.
      void this.portMapper.start({ host: announceHostFor(listen.host), port: listen.port }).finally(() => {
        if (this.#state === 'running') this.reachability?.start();
      });
    } else this.reachability?.start();
    await this.web?.start();
    const bootstrap = this.options.bootstrap ?? [];
    if (bootstrap.length > 0) this.#joined = this.dht.bootstrap(bootstrap);
    return this;
  }

  #joined: Promise<BootstrapResult> | undefined;

  /**
   * Resolves once the node has joined the mesh: its bootstrap nodes answered
   * and the self-lookup filled its routing table. A node without bootstrap
   * addresses is the first of its mesh and has joined at once. When no
   * bootstrap node answers, the DHT keeps retrying with backoff and this
   * resolves with `reached: 0`.
   */
  joined(): Promise<BootstrapResult> {
    return this.#joined ?? Promise.resolve({ reached: 0, retrying: false, routingTableSize: this.dht.table.size });
  }

  /** Ready: started and, if it has bootstrap nodes, at least one is in the routing table. */
  get ready(): boolean {
    return this.running && ((this.options.bootstrap ?? []).length === 0 || this.dht.table.size > 0);
  }

  /** Round trip to another node (dialing it if needed); resolves with the RTT in ms. */
  async ping(target: PeerAddress, nodeId?: string): Promise<number> {
    const t0 = performance.now();
    await this.messenger.request({ address: target, ...(nodeId ? { nodeId } : {}) }, { t: PING.type });
    return performance.now() - t0;
  }

  /** Byte and admission budgets (used / limit) and refusals by reason; also in the messenger's queueStats() read by /stats and `macula stats`. */
  budgets(): BudgetStats {
    return this.messenger.budgetStats();
  }

  peers(): PeerInfo[] {
    return this.messenger.sessions();
  }

  status(): NodeStatus {
    return {
      nodeId: this.nodeId,
      realm: this.realm,
      listen: this.listenAddress,
      transport: this.transport.kind,
      connections: this.pool.size,
      routingTableSize: this.dht.table.size,
      joined: this.ready,
      running: this.running,
      bootstrapNodes: this.options.bootstrap?.length ?? 0,
      startedAt: this.#startedAt,
    };
  }

  /**
   * Everything the node counts, in one shape: `/stats` of the admin server
   * and GW_STATS (`macula stats`) both answer with it.
   */
  snapshot(): NodeSnapshot {
    const mem = process.memoryUsage();
    return {
      generatedAt: new Date().toISOString(),
      node: this.status(),
      pool: this.pool.stats(),
      transport: this.transport.stats(),
      dht: this.dht.stats(),
      traffic: this.messenger.trafficStats(),
      queues: this.messenger.queueStats(),
      registry: this.registry.stats(),
      liveness: this.liveness.stats(),
      rpc: { client: this.rpc.stats(), server: this.rpcServer.stats() },
      pubsub: this.pubsub.stats(),
      gateway: this.gateway.stats(),
      nat: {
        reachability: this.reachability?.stats(),
        observed: this.observed.stats(),
        advertised: this.#state === 'running' ? formatAddress(this.advertisedAddress) : undefined,
        relay: this.relayServer?.stats(),
        relays: this.relayClient?.stats(),
        directUpgrade: this.directUpgrade.stats(),
        portMapping: this.portMapper?.stats(),
      },
      ...(this.guard && { auth: this.guard.stats() }),
      ...(this.web && { web: this.web.stats() }),
      process: {
        pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()),
        memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external, arrayBuffersBytes: mem.arrayBuffers },
      },
    };
  }

  /**
   * Stops without withdrawing anything (in-process tests and simulations).
   * Not a crash: closing the transport closes every connection, so peers are
   * told at once. A crash or a freeze tells nobody; tests of those run the
   * node in its own process (test/helpers/node-process.ts).
   */
  async kill(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    clearInterval(this.#sweep);
    this.revocations?.stop();
    await this.#stopNat();
    void this.pubsub.stop({ withdraw: false });
    await this.web?.stop();
    this.liveness.close();
    this.dht.stop();
    this.messenger.stop();
    await this.transport.close();
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    clearInterval(this.#sweep);
    this.revocations?.stop();
    await this.#stopNat();
    // Withdraw our records first (while connections are up), so that others
    // stop finding them at once instead of after their TTL.
    if (wasRunning) {
      await settleWithin(
        (async () => {
          await Promise.all([this.rpcServer.stop(), this.registry.withdrawAll(), this.pubsub.stop()]);
          await this.dht.withdrawAll(); // whatever else this node published
        })(),
        this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
      );
    } else {
      await this.pubsub.stop({ withdraw: false });
    }
    await this.web?.stop();
    this.liveness.close();
    this.dht.stop();
    this.messenger.stop();
    await this.transport.close();
  }
}

function realmGuardFor(identity: Identity, options: MeshNodeOptions): RealmGuard | undefined {
  const { realmKey, credential } = options;
  if (realmKey === undefined) {
    if (credential !== undefined) throw new ConfigError('a credential was given but no realm key: add --realm-key <authority public key> to secure the realm');
    return undefined;
  }
  const authority = typeof realmKey === 'string' ? publicKeyFromHex(realmKey) : realmKey;
  if (authority === undefined || authority.length !== 32) throw new ConfigError('the realm key is the authority\'s Ed25519 public key: 64 hex digits, as `macula realm create` printed it');
  if (credential === undefined || credential.length === 0) {
    throw new ConfigError('a secured realm needs this node\'s credential: pass --credential <file> (issue one with `macula cred issue --role node`)');
  }
  return new RealmGuard({
    realm: options.realm ?? DEFAULT_REALM,
    authority,
    credential,
    identity,
    role: 'node',
    ...(options.credentialClockToleranceS !== undefined && { clockToleranceS: options.credentialClockToleranceS }),
  });
}

/** Creates and starts a node: loads (or creates) the key in the data dir unless an identity is given. */
export async function createNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  const identity = options.identity ?? (await loadOrCreateIdentity(options.dataDir ?? defaultDataDir())).identity;
  const node = new MeshNode(identity, { realm: DEFAULT_REALM, ...options });
  return node.start();
}
