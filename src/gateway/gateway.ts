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
 * One source address holds at most `maxClientsPerAddress` of the slots
 * (admission.ts), so a single machine cannot lock everybody else out.
 *
 * Admitted clients are pinned in the connection pool (acquired for the
 * connection's lifetime): a `macula sub` that waits quietly for hours must
 * not be reaped as idle or evicted to make room. `maxClients` bounds what
 * pinning holds; a dead client still goes away with its QUIC idle timeout.
 */
import { EventEmitter } from 'node:events';
import type { Credential } from '../auth/credential.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { PubSubMessage, PubSubRun } from '../pubsub/subscription.js';
import type { Provider } from '../registry/types.js';
import { NoSuchProcedureError } from '../rpc/errors.js';
import type { RegisterOptions, RpcContext, RpcHandler } from '../rpc/types.js';
import type { Connection, PeerAddress } from '../transport/types.js';
import { ConfigError, ConnectionClosedError, QueueFullError, StoppedError, toWire } from '../util/errors.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { MessageDef, MessageOf, WireMessage } from '../wire/messages.js';
import type { Fields } from '../wire/schema.js';
import type { Headers } from '../wire/headers.js';
import { LRUCache } from 'lru-cache';
import { ClientAdmission, sourceOf } from './admission.js';
import { ClientLimitError, meshNodeRequest, PubSubUnavailableError, TooManyClientsError, TooManyClientsFromAddressError } from './errors.js';
import { ClientKeyQuota, patternBytes, registrationBytes, servedKey, subscriptionKey, type HeldKeys } from './key-quota.js';
import { NotStoredError } from '../dht/errors.js';
import { literalPrefix } from '../pubsub/topic.js';
import {
  GATEWAY_REQUESTS,
  GW_ATTACH,
  GW_CALL,
  GW_LOOKUP,
  GW_MSG,
  GW_NACK,
  GW_PEERS,
  GW_PUB,
  GW_REQ,
  GW_RESPOND,
  GW_SEND,
  GW_SERVE,
  GW_STATS,
  GW_SUB,
  GW_UNSUB,
  INVOKE,
  MAX_SID,
  RESULT,
} from './messages.js';
import {
  checkLimit,
  DEFAULT_MAX_CALLS_PER_CLIENT,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_CLIENT_DHT_BYTES,
  DEFAULT_MAX_CLIENT_DHT_KEYS,
  DEFAULT_MAX_DHT_BYTES_PER_CLIENT,
  DEFAULT_MAX_DHT_KEYS_PER_CLIENT,
  DEFAULT_MAX_PENDING_FORWARDS,
  DEFAULT_PUBLISH_WINDOW,
  DEFAULT_PUBLISH_WINDOW_BYTES,
  DEFAULT_MAX_SERVED_PER_CLIENT,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  DEFAULT_REFUSAL_GRACE_MS,
  DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS,
  defaultMaxClientsPerAddress,
  type GatewayInit,
  type GatewayStats,
} from './options.js';
import type { GatewayComponents, GatewayPubSub, GatewaySubscription } from './snapshot.js';
import { PublishFlow, type PublishCounters } from './publish-flow.js';

export type { GatewayComponents, GatewayPubSub, GatewaySubscription } from './snapshot.js';

/** What a connected client looks like to the gateway. */
interface ClientState {
  readonly conn: Connection;
  /** The host its slot was counted against (see admission.ts). */
  readonly host: string;
  readonly nodeIdHex: string;
  readonly subs: Map<number, ClientSub>;
  /** The DHT keys this client's subscriptions and served procedures use (see key-quota.ts). */
  readonly keys: HeldKeys;
  /** Served procedure → its registration (settled or not) and what it was charged (key-quota.ts). */
  readonly served: Map<string, { registered: Promise<void>; charge: number }>;
  /** In a secured realm: the client's verified credential (its sub deny list filters what it receives). */
  readonly credential: Credential | undefined;
  /** Its one-way publishes (GW_SEND) and their acknowledgements. */
  readonly publishes: PublishFlow;
  calls: number;
  pendingForwards: number;
  closed: boolean;
  /** Requests forwarded to the client that it may still answer (GW_RESPOND), by handle; created on first use. */
  responds: LRUCache<number, NonNullable<PubSubMessage['respond']>> | undefined;
  nextRq: number;
}

/** Requests a client may still answer: the most recent ones, for at most a minute. */
const MAX_OPEN_REQUESTS_PER_CLIENT = 1000;
const OPEN_REQUEST_TTL_MS = 60_000;

interface ClientSub {
  readonly sub: GatewaySubscription;
  readonly key: string;
  readonly charge: number;
}

export interface ClientInfo {
  nodeId: string;
  address: PeerAddress;
}

const ok = (r: unknown): OutboundMessage => ({ t: RESULT.type, r });

/**
 * Events: 'client' and 'client-closed' (ClientInfo) as clients come and go,
 * 'client-refused' (ClientInfo and the reason, 'max_clients' or
 * 'max_clients_per_address') when admission refuses one.
 */
export class Gateway extends EventEmitter {
  readonly maxClients: number;
  readonly maxClientsPerAddress: number;
  readonly maxSubscriptionsPerClient: number;
  readonly maxCallsPerClient: number;
  readonly maxServedPerClient: number;
  readonly maxPendingForwards: number;
  readonly subscribeReadyTimeoutMs: number;
  readonly refusalGraceMs: number;
  readonly publishWindow: number;
  readonly publishWindowBytes: number;
  readonly #keys: ClientKeyQuota;
  readonly #node: GatewayComponents;
  readonly #clients = new Map<Connection, ClientState>();
  readonly #admission: ClientAdmission;
  /** Connections already refused and counted, until they close (weak: nothing to clean up). */
  readonly #refusedConns = new WeakSet<Connection>();
  readonly #requests: Record<string, number> = {};
  #n = { admitted: 0, disconnected: 0, notClient: 0, subscriptions: 0, served: 0, callsInFlight: 0, forwarded: 0, forwardFailures: 0, forwardedRuns: 0, notStored: 0, forwardsDenied: 0 };
  readonly #pubs: PublishCounters = { publishes: 0, publishPending: 0, publishFailures: 0, publishOverruns: 0, publishRuns: 0 };

  constructor(components: GatewayComponents, init: GatewayInit = {}) {
    super();
    this.#node = components;
    this.maxClients = checkLimit('maxClients', init.maxClients ?? DEFAULT_MAX_CLIENTS, 0);
    this.maxClientsPerAddress = checkLimit('maxClientsPerAddress', init.maxClientsPerAddress ?? defaultMaxClientsPerAddress(this.maxClients), 0);
    this.#admission = new ClientAdmission(this.maxClients, this.maxClientsPerAddress);
    this.maxSubscriptionsPerClient = checkLimit('maxSubscriptionsPerClient', init.maxSubscriptionsPerClient ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT, 0);
    this.maxCallsPerClient = checkLimit('maxCallsPerClient', init.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT, 1);
    this.maxServedPerClient = checkLimit('maxServedPerClient', init.maxServedPerClient ?? DEFAULT_MAX_SERVED_PER_CLIENT, 0);
    this.maxPendingForwards = checkLimit('maxPendingForwards', init.maxPendingForwards ?? DEFAULT_MAX_PENDING_FORWARDS, 1);
    this.subscribeReadyTimeoutMs = checkLimit('subscribeReadyTimeoutMs', init.subscribeReadyTimeoutMs ?? DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS, 0);
    this.refusalGraceMs = checkLimit('refusalGraceMs', init.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS, 0);
    this.publishWindow = checkLimit('publishWindow', init.publishWindow ?? DEFAULT_PUBLISH_WINDOW, 1);
    this.publishWindowBytes = checkLimit('publishWindowBytes', init.publishWindowBytes ?? DEFAULT_PUBLISH_WINDOW_BYTES, 1);
    this.#keys = new ClientKeyQuota({
      maxKeys: checkLimit('maxDhtKeysPerClient', init.maxDhtKeysPerClient ?? DEFAULT_MAX_DHT_KEYS_PER_CLIENT, 0),
      maxBytes: checkLimit('maxDhtBytesPerClient', init.maxDhtBytesPerClient ?? DEFAULT_MAX_DHT_BYTES_PER_CLIENT, 0),
      allKeys: checkLimit('maxClientDhtKeys', init.maxClientDhtKeys ?? DEFAULT_MAX_CLIENT_DHT_KEYS, 0),
      allBytes: checkLimit('maxClientDhtBytes', init.maxClientDhtBytes ?? DEFAULT_MAX_CLIENT_DHT_BYTES, 0),
    });
    for (const def of GATEWAY_REQUESTS) this.#requests[def.name] = 0;
    this.#on(GW_ATTACH, () => this.#attach());
    this.#on(GW_PUB, (msg, c) => this.#pub(msg, c));
    this.#on(GW_SUB, (msg, c) => this.#sub(msg, c));
    this.#on(GW_UNSUB, (msg, c) => this.#unsub(msg, c));
    this.#on(GW_CALL, (msg, c) => this.#call(msg, c));
    this.#on(GW_SERVE, (msg, c) => this.#serve(msg, c));
    this.#on(GW_LOOKUP, (msg) => this.#lookup(msg));
    this.#on(GW_STATS, () => ok(this.#node.snapshot()));
    this.#on(GW_PEERS, () => ok(this.#node.peers()));
    this.#on(GW_REQ, (msg, c) => this.#req(msg, c));
    this.#on(GW_RESPOND, (msg, c) => this.#respond(msg, c));
    this.#node.messenger.handle(GW_SEND, (msg, peer, bytes) => this.#send(msg, peer, bytes), { onDropped: (err, msg, peer) => this.#sendDropped(err, msg, peer) });
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  stats(): GatewayStats {
    const { clients, ...admission } = this.#admission.stats();
    const refused = admission.refusedByReason.max_clients + admission.refusedByReason.max_clients_per_address;
    return {
      clients,
      maxClients: this.maxClients,
      maxClientsPerAddress: this.maxClientsPerAddress,
      ...admission,
      refused,
      ...this.#n,
      ...this.#pubs,
      publishWindow: this.publishWindow,
      publishWindowBytes: this.publishWindowBytes,
      dhtKeys: this.#keys.keys,
      maxClientDhtKeys: this.#keys.limits.allKeys,
      dhtBytes: this.#keys.bytes,
      maxClientDhtBytes: this.#keys.limits.allBytes,
      dhtKeysRefused: this.#keys.refused,
      requests: { ...this.#requests },
    };
  }

  /** Disconnects every client (their state is dropped as their connections close). */
  closeAll(): void {
    for (const c of this.#clients.values()) c.conn.close();
  }

  #on<F extends Fields>(def: MessageDef<F>, fn: (msg: WireMessage<F>, client: ClientState) => Promise<OutboundMessage> | OutboundMessage): void {
    this.#node.messenger.handle(def, (msg, peer) => {
      this.#requests[def.name]!++;
      if (peer.role !== 'client') {
        this.#n.notClient++;
        throw meshNodeRequest(def.type);
      }
      if (!this.#node.isRunning()) throw StoppedError.of('this node');
      return fn(msg, this.#admit(peer));
    });
  }

  #admit(peer: PeerInfo): ClientState {
    const conn = peer.connection;
    const known = this.#clients.get(conn);
    if (known) return known;
    if (conn.isClosed) throw new ConnectionClosedError('the client connection closed');
    const host = conn.remoteAddress.host;
    // A refused connection is refused once and counted once; its later requests get the same answer.
    const refusal = this.#refusedConns.has(conn) ? (this.#admission.refusalFor(host) ?? 'max_clients') : this.#admission.admit(host);
    if (refusal !== undefined) {
      if (!this.#refusedConns.has(conn)) {
        this.#refusedConns.add(conn);
        // Closing frees the connection slot; the delay lets the refusal reach the client first.
        setTimeout(() => conn.close(), this.refusalGraceMs).unref();
        this.emit('client-refused', { nodeId: peer.nodeIdHex, address: { ...conn.remoteAddress } } satisfies ClientInfo, refusal);
      }
      throw refusal === 'max_clients_per_address' ? new TooManyClientsFromAddressError(this.maxClientsPerAddress, sourceOf(host)) : new TooManyClientsError(this.maxClients);
    }
    const client: ClientState = {
      conn,
      host,
      nodeIdHex: peer.nodeIdHex,
      subs: new Map(),
      keys: ClientKeyQuota.empty(),
      served: new Map(),
      credential: peer.credential,
      publishes: new PublishFlow(this.publishWindow, this.publishWindowBytes, this.#pubs, (m) => this.#node.messenger.notifyOn(conn, m).catch(() => undefined)),
      calls: 0,
      pendingForwards: 0,
      closed: false,
      responds: undefined,
      nextRq: 0,
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
    this.#admission.release(c.host);
    this.#node.pool.release(c.conn);
    this.#n.disconnected++;
    c.publishes.close();
    this.#n.subscriptions -= c.subs.size;
    this.#n.served -= c.served.size;
    for (const { sub } of c.subs.values()) sub.unsubscribe().catch(() => undefined);
    c.subs.clear();
    this.#keys.releaseAll(c.keys);
    for (const [procedure, { registered }] of c.served) {
      // A registration still being stored is withdrawn once stored, so the withdrawal cannot overtake it.
      void registered.then(() => this.#node.services.unregister(procedure)).catch(() => undefined);
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
      limits: { subscriptions: this.maxSubscriptionsPerClient, calls: this.maxCallsPerClient, served: this.maxServedPerClient, publishWindow: this.publishWindow, publishWindowBytes: this.publishWindowBytes },
    });
  }

  #pub(msg: MessageOf<typeof GW_PUB>, c: ClientState): Promise<OutboundMessage> {
    // publish() is called before any await: requests of one client reach
    // pub/sub in arrival order, which keeps its per-publisher ordering.
    // The client's node ID travels with the message, so subscribers can tell the clients of one node apart.
    return this.#pubsub().publish(msg.tp, msg.d, { origin: c.nodeIdHex, ...(msg.h !== undefined && { headers: msg.h }) }).then(ok);
  }

  /** A request from the client: counted against its calls in flight, answered with the replies. */
  #req(msg: MessageOf<typeof GW_REQ>, c: ClientState): Promise<OutboundMessage> {
    return this.#inCallSlot(c, async () => {
      const headers = msg.h;
      const options = {
        origin: c.nodeIdHex,
        ...(headers !== undefined && { headers }),
        ...(msg.max !== undefined && msg.max > 0 && { max: msg.max }),
        ...(msg.timeoutMs !== undefined && msg.timeoutMs > 0 && { timeoutMs: msg.timeoutMs }),
      };
      const replies = await this.#pubsub().request(msg.tp, msg.d, options);
      return ok(replies.map((r) => ({ d: r.data, from: r.responder, ...(r.headers !== undefined && { h: r.headers }) })));
    });
  }

  /** Runs `work` as one of the client's calls in flight (calls and requests), refusing past maxCallsPerClient. */
  async #inCallSlot(c: ClientState, work: () => Promise<OutboundMessage>): Promise<OutboundMessage> {
    if (c.calls >= this.maxCallsPerClient) {
      throw new ClientLimitError('MACULA_ERR_BUSY', 'calls in flight', this.maxCallsPerClient, 'wait for answers before sending more calls or requests');
    }
    c.calls++;
    this.#n.callsInFlight++;
    try {
      return await work();
    } finally {
      c.calls--;
      this.#n.callsInFlight--;
    }
  }

  async #respond(msg: MessageOf<typeof GW_RESPOND>, c: ClientState): Promise<OutboundMessage> {
    const respond = c.responds?.get(msg.rq);
    if (respond === undefined) return ok(false);
    const headers = msg.h;
    await respond(msg.d, headers !== undefined ? { headers } : undefined);
    return ok(true);
  }

  /** A one-way publish (GW_SEND): handled in arrival order; its acceptance or failure is reported by the client's PublishFlow. */
  #send(msg: MessageOf<typeof GW_SEND>, peer: PeerInfo, bytes: number): undefined {
    this.#requests[GW_SEND.name]!++;
    let c: ClientState;
    try {
      if (peer.role !== 'client') {
        this.#n.notClient++;
        throw meshNodeRequest(GW_SEND.type);
      }
      if (!this.#node.isRunning()) throw StoppedError.of('this node');
      c = this.#admit(peer);
    } catch (err) {
      this.#sendDropped(err, msg, peer);
      return undefined;
    }
    const k = msg.k;
    if (k === undefined) {
      c.publishes.accept(msg.n, bytes, () => this.#pubsub().publish(msg.tp, msg.d, { origin: c.nodeIdHex, ...(msg.h !== undefined && { headers: msg.h }) }));
      return undefined;
    }
    // A run (wire/run.ts): publishes n … n + k - 1, handed to pub/sub together.
    this.#pubs.publishRuns++;
    const data = msg.d as readonly unknown[];
    const options = { origin: c.nodeIdHex };
    c.publishes.acceptRun(
      msg.n,
      k,
      bytes,
      () => this.#pubsub().publishRun(msg.tp, data, options).then((r) => r.refused),
      (i) => () => this.#pubsub().publish(msg.tp, data[i], options),
    );
    return undefined;
  }

  /** A GW_SEND refused before it could be published (authorization, admission, the connection's in-flight limit): reported to the client. */
  #sendDropped(err: unknown, msg: MessageOf<typeof GW_SEND>, peer: PeerInfo): void {
    const c = this.#clients.get(peer.connection);
    const k = msg.k ?? 1;
    if (c !== undefined) {
      for (let i = 0; i < k; i++) c.publishes.refused(msg.n + i, err);
      return;
    }
    // Not admitted: no flow to keep, the refusal is all it gets.
    this.#pubs.publishes += k;
    this.#pubs.publishFailures += k;
    for (let i = 0; i < k; i++) this.#node.messenger.notifyOn(peer.connection, { t: GW_NACK.type, n: msg.n + i, ...toWire(err) }).catch(() => undefined);
  }

  async #sub(msg: MessageOf<typeof GW_SUB>, c: ClientState): Promise<OutboundMessage> {
    const ps = this.#pubsub();
    const sid = msg.sid;
    if (c.subs.has(sid)) throw new ConfigError(`subscription id ${sid} is already in use on this connection; choose another`);
    if (c.subs.size >= this.maxSubscriptionsPerClient) {
      throw new ClientLimitError('MACULA_ERR_LIMIT', 'subscriptions', this.maxSubscriptionsPerClient, 'unsubscribe some, or connect another client');
    }
    const pattern = msg.pattern;
    const key = subscriptionKey(literalPrefix(pattern));
    const charge = this.#keys.take(c.keys, key, patternBytes(pattern));
    let sub: GatewaySubscription;
    try {
      sub = ps.subscribe(pattern, (m) => this.#forward(c, sid, m), { client: c.nodeIdHex, onRun: (run) => this.#forwardRun(c, sid, run), ...(msg.q !== undefined && { queue: msg.q }) });
    } catch (err) {
      this.#keys.release(c.keys, key, charge);
      throw err;
    }
    const entry: ClientSub = { sub, key, charge };
    c.subs.set(sid, entry);
    this.#n.subscriptions++;
    // Answer once remote publishers can find the subscription, so "subscribed" means it;
    // when the mesh refused the record, the client gets that refusal and no subscription.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([sub.ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.subscribeReadyTimeoutMs)))]);
    } catch (err) {
      if (err instanceof NotStoredError) this.#n.notStored++;
      if (c.subs.get(sid) === entry) this.#endSub(c, sid, entry);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return ok({ sid });
  }

  #endSub(c: ClientState, sid: number, entry: ClientSub): Promise<void> {
    c.subs.delete(sid);
    this.#n.subscriptions--;
    this.#keys.release(c.keys, entry.key, entry.charge);
    return entry.sub.unsubscribe();
  }

  /** Sends one message to the client; returns a promise only to slow its subscriptions down (see maxPendingForwards). */
  #forward(c: ClientState, sid: number, m: PubSubMessage): Promise<void> | undefined {
    if (!this.#mayForward(c, m.topic, 1)) return undefined;
    let rq: number | undefined;
    if (m.respond !== undefined) {
      c.responds ??= new LRUCache({ max: MAX_OPEN_REQUESTS_PER_CLIENT, ttl: OPEN_REQUEST_TTL_MS });
      rq = c.nextRq = (c.nextRq + 1) % (MAX_SID + 1);
      c.responds.set(rq, m.respond);
    }
    return this.#toClient(
      c,
      sid,
      {
        t: GW_MSG.type,
        sid,
        tp: m.topic,
        d: m.data,
        pub: m.publisher,
        s: m.seq,
        ...(m.origin !== undefined && { o: m.origin }),
        ...(m.headers !== undefined && { h: m.headers }),
        ...(rq !== undefined && { rq }),
      },
      1,
    );
  }

  /** Sends a run (pubsub's PubSubRun) to the client as one GW_MSG run: one permission check, one send. */
  #forwardRun(c: ClientState, sid: number, run: PubSubRun): Promise<void> | undefined {
    const k = run.length;
    if (!this.#mayForward(c, run.topic, k)) return undefined;
    if (k > 1) this.#n.forwardedRuns++;
    return this.#toClient(
      c,
      sid,
      {
        t: GW_MSG.type,
        sid,
        tp: run.topic,
        d: k > 1 ? run.data : run.data[0],
        pub: run.publisher,
        s: run.seq,
        ...(k > 1 && { k }),
        ...(run.origin !== undefined && { o: run.origin }),
      },
      k,
    );
  }

  /** Whether `k` messages on `topic` may go to the client: it is there and its credential allows them (counted when not). */
  #mayForward(c: ClientState, topic: string, k: number): boolean {
    if (c.closed || c.conn.isClosed) return false;
    if (c.credential !== undefined && !c.credential.permissions.deliverable(topic)) {
      this.#n.forwardsDenied += k;
      return false;
    }
    return true;
  }

  /**
   * Sends a GW_MSG carrying `k` messages of subscription `sid`; a promise
   * only to slow the subscription down (see maxPendingForwards). Messages
   * the connection cannot queue are lost to the client, as on a full
   * subscription buffer, and counted as the subscription's drops.
   */
  #toClient(c: ClientState, sid: number, msg: OutboundMessage, k: number): Promise<void> | undefined {
    c.pendingForwards++;
    this.#n.forwarded += k;
    const sent = this.#node.messenger.notifyOn(c.conn, msg).then(
      () => {
        c.pendingForwards--;
      },
      (err: unknown) => {
        c.pendingForwards--;
        this.#n.forwardFailures += k;
        if (err instanceof QueueFullError) c.subs.get(sid)?.sub.drop(k);
      },
    );
    return c.pendingForwards >= this.maxPendingForwards ? sent : undefined;
  }

  async #unsub(msg: MessageOf<typeof GW_UNSUB>, c: ClientState): Promise<OutboundMessage> {
    const sid = msg.sid;
    const entry = c.subs.get(sid);
    if (!entry) return ok(false);
    await this.#endSub(c, sid, entry);
    return ok(true);
  }

  #call(msg: MessageOf<typeof GW_CALL>, c: ClientState): Promise<OutboundMessage> {
    return this.#inCallSlot(c, async () => {
      const timeoutMs = msg.timeoutMs;
      // The client's node ID travels with the call, so the handler can tell which client of this node called.
      let resultHeaders: Headers | undefined;
      const headers = msg.h;
      const options = {
        origin: c.nodeIdHex,
        ...(timeoutMs !== undefined && timeoutMs > 0 && { timeoutMs }),
        ...(headers !== undefined && { headers }),
        onResultHeaders: (h: Headers) => (resultHeaders = h),
      };
      const r = await this.#node.services.call(msg.p, msg.a, options);
      return { t: RESULT.type, r, ...(resultHeaders !== undefined && { h: resultHeaders }) };
    });
  }

  async #serve(msg: MessageOf<typeof GW_SERVE>, c: ClientState): Promise<OutboundMessage> {
    const procedure = msg.p;
    if (msg.off === true) {
      const served = c.served.get(procedure);
      if (!served) return ok(false);
      c.served.delete(procedure);
      this.#n.served--;
      this.#keys.release(c.keys, servedKey(procedure), served.charge);
      await served.registered.catch(() => undefined);
      await this.#node.services.unregister(procedure);
      return ok(true);
    }
    if (c.served.has(procedure)) throw new ConfigError(`this client already serves "${procedure}"`);
    if (c.served.size >= this.maxServedPerClient) {
      throw new ClientLimitError('MACULA_ERR_LIMIT', 'served procedures', this.maxServedPerClient, 'stop serving some, or connect another client');
    }
    const options: RegisterOptions = {};
    if (msg.timeoutMs !== undefined && msg.timeoutMs > 0) options.timeoutMs = msg.timeoutMs;
    const handler: RpcHandler = (args, ctx) => this.#invoke(c, procedure, args, ctx);
    const charge = this.#keys.take(c.keys, servedKey(procedure), registrationBytes(procedure));
    const served = { registered: this.#node.services.register(procedure, handler, options), charge };
    c.served.set(procedure, served);
    this.#n.served++;
    try {
      await served.registered;
    } catch (err) {
      if (err instanceof NotStoredError) this.#n.notStored++;
      if (c.served.get(procedure) === served) {
        c.served.delete(procedure);
        this.#n.served--;
        this.#keys.release(c.keys, servedKey(procedure), charge);
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
      const invoke = { t: INVOKE.type, p: procedure, a: args, d: timeoutMs, ...(ctx.headers !== undefined && { h: ctx.headers }) };
      const res = await this.#node.messenger.requestOn(c.conn, invoke, { timeoutMs });
      if (res.h !== undefined) Object.assign(ctx.resultHeaders, res.h);
      return res.r;
    } catch (err) {
      if (err instanceof ConnectionClosedError) throw new NoSuchProcedureError(procedure, 'the client that served it (it disconnected)');
      throw err;
    }
  }

  async #lookup(msg: MessageOf<typeof GW_LOOKUP>): Promise<OutboundMessage> {
    const name = msg.name;
    if (msg.fresh === true) this.#node.registry.invalidate(name);
    const providers = await this.#node.services.lookup(name);
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


