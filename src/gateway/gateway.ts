/**
 * The gateway for light clients: shell commands and applications that are
 * not mesh members connect to a node over the node's own QUIC port (HELLO
 * role `client`, port 0) and publish, subscribe, call, serve, look up and
 * read stats through it, as the NATS CLI talks to a server.
 *
 * One handler per request type (messages.ts), each refusing peers that said
 * HELLO as a mesh node. A client is admitted on its first request while
 * fewer than `maxClients` are connected; its state (subscriptions, served
 * procedures, calls in flight) is bounded per client and dropped the moment
 * its connection closes: subscriptions end, served procedures are
 * unregistered (withdrawn from the registry at once, not after their TTL).
 *
 * Admitted clients are pinned in the connection pool (acquired for the
 * connection's lifetime): a `macula sub` that waits quietly for hours must
 * not be reaped as idle or evicted to make room. `maxClients` bounds what
 * pinning holds; a dead client still goes away with its QUIC idle timeout.
 */
import { settleWithin } from '../util/time.js';
import { EventEmitter } from 'node:events';
import type { Credential } from '../auth/credential.js';
import type { PeerInfo } from '../node/peer-session.js';
import type { Handler } from '../node/messenger.js';
import type { PubSubMessage } from '../pubsub/subscription.js';
import type { Provider } from '../registry/types.js';
import { NoSuchProcedureError } from '../rpc/errors.js';
import type { RegisterOptions, RpcContext, RpcHandler } from '../rpc/types.js';
import type { Connection, PeerAddress } from '../transport/types.js';
import { ConfigError, ConnectionClosedError, StoppedError } from '../util/errors.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { Message, MessageDef } from '../wire/messages.js';
import { ClientLimitError, NotAClientError, PubSubUnavailableError, TooManyClientsError } from './errors.js';
import {
  GATEWAY_REQUESTS,
  GW_ATTACH,
  GW_CALL,
  GW_LOOKUP,
  GW_MSG,
  GW_PEERS,
  GW_PUB,
  GW_SERVE,
  GW_STATS,
  GW_SUB,
  GW_UNSUB,
  INVOKE,
  RESULT,
} from './messages.js';
import {
  checkLimit,
  DEFAULT_MAX_CALLS_PER_CLIENT,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_PENDING_FORWARDS,
  DEFAULT_MAX_SERVED_PER_CLIENT,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  DEFAULT_REFUSAL_GRACE_MS,
  DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS,
  type GatewayInit,
  type GatewayStats,
} from './options.js';
import { peersSnapshot, statsSnapshot, type GatewayNode, type GatewayPubSub, type GatewaySubscription } from './snapshot.js';

export type { GatewayNode, GatewayPubSub, GatewaySubscription } from './snapshot.js';

/** What a connected client looks like to the gateway. */
interface ClientState {
  readonly conn: Connection;
  readonly nodeIdHex: string;
  /** Where messages to the client go: the pool finds its connection by node ID. */
  readonly target: { address: PeerAddress; nodeId: string };
  readonly subs: Map<number, GatewaySubscription>;
  /** Served procedure → its registration (settled or not). */
  readonly served: Map<string, Promise<void>>;
  /** In a secured realm: the client's verified credential (its sub deny list filters what it receives). */
  readonly credential: Credential | undefined;
  calls: number;
  pendingForwards: number;
  closed: boolean;
}

export interface ClientInfo {
  nodeId: string;
  address: PeerAddress;
}

const ok = (r: unknown): OutboundMessage => ({ t: RESULT.type, r });

/** Events: 'client' and 'client-closed' (ClientInfo) as clients come and go, 'client-refused' (ClientInfo) at maxClients. */
export class Gateway extends EventEmitter {
  readonly maxClients: number;
  readonly maxSubscriptionsPerClient: number;
  readonly maxCallsPerClient: number;
  readonly maxServedPerClient: number;
  readonly maxPendingForwards: number;
  readonly subscribeReadyTimeoutMs: number;
  readonly refusalGraceMs: number;
  readonly #node: GatewayNode;
  readonly #clients = new Map<Connection, ClientState>();
  /** Connections already refused and counted, until they close (weak: nothing to clean up). */
  readonly #refusedConns = new WeakSet<Connection>();
  readonly #requests: Record<string, number> = {};
  #n = { admitted: 0, refused: 0, disconnected: 0, notClient: 0, subscriptions: 0, served: 0, callsInFlight: 0, forwarded: 0, forwardFailures: 0, forwardsDenied: 0 };

  constructor(components: { node: GatewayNode }, init: GatewayInit = {}) {
    super();
    this.#node = components.node;
    this.maxClients = checkLimit('maxClients', init.maxClients ?? DEFAULT_MAX_CLIENTS, 0);
    this.maxSubscriptionsPerClient = checkLimit('maxSubscriptionsPerClient', init.maxSubscriptionsPerClient ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT, 0);
    this.maxCallsPerClient = checkLimit('maxCallsPerClient', init.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT, 1);
    this.maxServedPerClient = checkLimit('maxServedPerClient', init.maxServedPerClient ?? DEFAULT_MAX_SERVED_PER_CLIENT, 0);
    this.maxPendingForwards = checkLimit('maxPendingForwards', init.maxPendingForwards ?? DEFAULT_MAX_PENDING_FORWARDS, 1);
    this.subscribeReadyTimeoutMs = checkLimit('subscribeReadyTimeoutMs', init.subscribeReadyTimeoutMs ?? DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS, 0);
    this.refusalGraceMs = checkLimit('refusalGraceMs', init.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS, 0);
    for (const def of GATEWAY_REQUESTS) this.#requests[def.name] = 0;
    this.#on(GW_ATTACH, () => this.#attach());
    this.#on(GW_PUB, (msg, c) => this.#pub(msg, c));
    this.#on(GW_SUB, (msg, c) => this.#sub(msg, c));
    this.#on(GW_UNSUB, (msg, c) => this.#unsub(msg, c));
    this.#on(GW_CALL, (msg, c) => this.#call(msg, c));
    this.#on(GW_SERVE, (msg, c) => this.#serve(msg, c));
    this.#on(GW_LOOKUP, (msg) => this.#lookup(msg));
    this.#on(GW_STATS, () => ok(statsSnapshot(this.#node, this.stats())));
    this.#on(GW_PEERS, () => ok(peersSnapshot(this.#node)));
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  stats(): GatewayStats {
    return { clients: this.#clients.size, maxClients: this.maxClients, ...this.#n, requests: { ...this.#requests } };
  }

  /** Disconnects every client (their state is dropped as their connections close). */
  closeAll(): void {
    for (const c of this.#clients.values()) c.conn.close();
  }

  #on(def: MessageDef, fn: (msg: Message, client: ClientState) => Promise<OutboundMessage> | OutboundMessage): void {
    const handler: Handler = (msg, peer) => {
      this.#requests[def.name]!++;
      if (peer.role !== 'client') {
        this.#n.notClient++;
        throw new NotAClientError(def.type);
      }
      if (!this.#node.running) throw new StoppedError('this node');
      return fn(msg, this.#admit(peer));
    };
    this.#node.messenger.handle(def, handler);
  }

  #admit(peer: PeerInfo): ClientState {
    const conn = peer.connection;
    const known = this.#clients.get(conn);
    if (known) return known;
    if (conn.isClosed) throw new ConnectionClosedError('the client connection closed');
    if (this.#clients.size >= this.maxClients) {
      if (!this.#refusedConns.has(conn)) {
        this.#refusedConns.add(conn);
        this.#n.refused++;
        // Closing frees the connection slot; the delay lets the refusal reach the client first.
        setTimeout(() => conn.close(), this.refusalGraceMs).unref();
        this.emit('client-refused', { nodeId: peer.nodeIdHex, address: { ...conn.remoteAddress } } satisfies ClientInfo);
      }
      throw new TooManyClientsError(this.maxClients);
    }
    const client: ClientState = {
      conn,
      nodeIdHex: peer.nodeIdHex,
      target: { address: peer.address, nodeId: peer.nodeIdHex },
      subs: new Map(),
      served: new Map(),
      credential: peer.credential,
      calls: 0,
      pendingForwards: 0,
      closed: false,
    };
    this.#clients.set(conn, client);
    this.#n.admitted++;
    this.#node.pool.acquire(conn);
    void conn.closed.then(() => this.#drop(client));
    this.emit('client', { nodeId: peer.nodeIdHex, address: { ...conn.remoteAddress } } satisfies ClientInfo);
    return client;
  }

  /** The client is gone: end its subscriptions and withdraw what it served, now. */
  #drop(c: ClientState): void {
    if (c.closed) return;
    c.closed = true;
    this.#clients.delete(c.conn);
    this.#node.pool.release(c.conn);
    this.#n.disconnected++;
    this.#n.subscriptions -= c.subs.size;
    this.#n.served -= c.served.size;
    for (const sub of c.subs.values()) sub.unsubscribe().catch(() => undefined);
    c.subs.clear();
    for (const [procedure, registered] of c.served) {
      // A registration still being stored is withdrawn once stored, so the withdrawal cannot overtake it.
      void registered.then(() => this.#node.unregister(procedure)).catch(() => undefined);
    }
    c.served.clear();
    this.emit('client-closed', { nodeId: c.nodeIdHex, address: { ...c.conn.remoteAddress } } satisfies ClientInfo);
  }

  #pubsub(): GatewayPubSub {
    const ps = this.#node.pubsub;
    if (!ps) throw new PubSubUnavailableError();
    return ps;
  }

  #attach(): OutboundMessage {
    const node = this.#node;
    return ok({
      nodeId: node.nodeId,
      realm: node.realm,
      limits: { subscriptions: this.maxSubscriptionsPerClient, calls: this.maxCallsPerClient, served: this.maxServedPerClient },
    });
  }

  #pub(msg: Message, c: ClientState): Promise<OutboundMessage> {
    // publish() is called before any await: requests of one client reach
    // pub/sub in arrival order, which keeps its per-publisher ordering.
    // The client's node ID travels with the message, so subscribers can tell the clients of one node apart.
    return this.#pubsub().publish(msg.tp as string, msg.d, { origin: c.nodeIdHex }).then(ok);
  }

  async #sub(msg: Message, c: ClientState): Promise<OutboundMessage> {
    const ps = this.#pubsub();
    const sid = msg.sid as number;
    if (c.subs.has(sid)) throw new ConfigError(`subscription id ${sid} is already in use on this connection; choose another`);
    if (c.subs.size >= this.maxSubscriptionsPerClient) {
      throw new ClientLimitError('MACULA_ERR_LIMIT', 'subscriptions', this.maxSubscriptionsPerClient, 'unsubscribe some, or connect another client');
    }
    const sub = ps.subscribe(msg.pattern as string, (m) => this.#forward(c, sid, m));
    c.subs.set(sid, sub);
    this.#n.subscriptions++;
    // Answer once remote publishers can find the subscription, so "subscribed" means it.
    await settleWithin(sub.ready, this.subscribeReadyTimeoutMs);
    return ok({ sid });
  }

  /** Sends one message to the client; returns a promise only to slow its subscriptions down (see maxPendingForwards). */
  #forward(c: ClientState, sid: number, m: PubSubMessage): Promise<void> | undefined {
    if (c.closed || c.conn.isClosed) return undefined;
    if (c.credential !== undefined && !c.credential.permissions.deliverable(m.topic)) {
      this.#n.forwardsDenied++;
      return undefined;
    }
    c.pendingForwards++;
    this.#n.forwarded++;
    const sent = this.#node.messenger
      .notify(c.target, { t: GW_MSG.type, sid, tp: m.topic, d: m.data, pub: m.publisher, s: m.seq, ...(m.origin !== undefined && { o: m.origin }) })
      .then(
        () => {
          c.pendingForwards--;
        },
        () => {
          c.pendingForwards--;
          this.#n.forwardFailures++;
        },
      );
    return c.pendingForwards >= this.maxPendingForwards ? sent : undefined;
  }

  async #unsub(msg: Message, c: ClientState): Promise<OutboundMessage> {
    const sid = msg.sid as number;
    const sub = c.subs.get(sid);
    if (!sub) return ok(false);
    c.subs.delete(sid);
    this.#n.subscriptions--;
    await sub.unsubscribe();
    return ok(true);
  }

  async #call(msg: Message, c: ClientState): Promise<OutboundMessage> {
    if (c.calls >= this.maxCallsPerClient) {
      throw new ClientLimitError('MACULA_ERR_BUSY', 'calls in flight', this.maxCallsPerClient, 'wait for answers before sending more calls');
    }
    c.calls++;
    this.#n.callsInFlight++;
    try {
      const timeoutMs = msg.timeoutMs as number | undefined;
      return ok(await this.#node.call(msg.p as string, msg.a, timeoutMs !== undefined && timeoutMs > 0 ? { timeoutMs } : {}));
    } finally {
      c.calls--;
      this.#n.callsInFlight--;
    }
  }

  async #serve(msg: Message, c: ClientState): Promise<OutboundMessage> {
    const procedure = msg.p as string;
    if (msg.off === true) {
      const registered = c.served.get(procedure);
      if (!registered) return ok(false);
      c.served.delete(procedure);
      this.#n.served--;
      await registered.catch(() => undefined);
      await this.#node.unregister(procedure);
      return ok(true);
    }
    if (c.served.has(procedure)) throw new ConfigError(`this client already serves "${procedure}"`);
    if (c.served.size >= this.maxServedPerClient) {
      throw new ClientLimitError('MACULA_ERR_LIMIT', 'served procedures', this.maxServedPerClient, 'stop serving some, or connect another client');
    }
    const options: RegisterOptions = {};
    if (typeof msg.timeoutMs === 'number' && msg.timeoutMs > 0) options.timeoutMs = msg.timeoutMs;
    const handler: RpcHandler = (args, ctx) => this.#invoke(c, procedure, args, ctx);
    const registered = this.#node.register(procedure, handler, options);
    c.served.set(procedure, registered);
    this.#n.served++;
    try {
      await registered;
    } catch (err) {
      if (c.served.get(procedure) === registered) {
        c.served.delete(procedure);
        this.#n.served--;
      }
      throw err;
    }
    return ok(true);
  }

  /** Runs one call of a client-served procedure on that client. */
  async #invoke(c: ClientState, procedure: string, args: unknown, ctx: RpcContext): Promise<unknown> {
    // A provider that is gone answers "no such procedure", so the caller fails over to another one.
    if (c.closed || c.conn.isClosed) throw new NoSuchProcedureError(procedure, 'the client that served it (it disconnected)');
    const timeoutMs = Math.max(1, Math.ceil(ctx.timeoutMs));
    try {
      const res = await this.#node.messenger.requestOn(c.conn, { t: INVOKE.type, p: procedure, a: args, d: timeoutMs }, { timeoutMs });
      return res.r;
    } catch (err) {
      if (err instanceof ConnectionClosedError) throw new NoSuchProcedureError(procedure, 'the client that served it (it disconnected)');
      throw err;
    }
  }

  async #lookup(msg: Message): Promise<OutboundMessage> {
    const name = msg.name as string;
    if (msg.fresh === true) this.#node.registry.invalidate(name);
    const providers = await this.#node.lookup(name);
    return ok(providers.map(providerToWire));
  }
}

function providerToWire(p: Provider): Record<string, unknown> {
  return {
    nodeId: p.nodeId,
    address: { host: p.address.host, port: p.address.port },
    metadata: { ...p.metadata },
    expires: Number.isFinite(p.expires) ? p.expires : null,
    local: p.local,
  };
}


