/**
 * Requests and one-way messages between nodes: finds or dials the
 * connection (through the pool), keeps one PeerSession per connection, and
 * dispatches incoming requests to one handler per message type.
 */
import type { RealmGuard } from '../auth/realm-guard.js';
import { ConnectionPool } from '../transport/pool.js';
import type { Connection, PeerAddress, Transport } from '../transport/types.js';
import { ProtocolError } from '../util/errors.js';
import { FRAME_BUDGET_DEFAULTS, FrameBudget, type BudgetRefusalReason, type FrameBudgetOptions } from '../wire/budget.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../wire/frame.js';
import { DEFAULT_MAX_QUEUED_BYTES, type FramedStream, type OutboundMessage } from '../wire/framed-stream.js';
import { messageName, UnsupportedMessageError, type HandlerRegistry, type Message, type MessageDef, type WireMessage } from '../wire/messages.js';
import type { Fields } from '../wire/schema.js';
import { PeerSession, type Hello, type OneWayDropReason, type PeerInfo, type Role, type SessionHost } from './peer-session.js';
import { intOption } from '../util/options.js';
export type { OneWayDropReason } from './peer-session.js';

export type HandlerReply = Promise<OutboundMessage | undefined> | OutboundMessage | undefined;
/** `bytes`: the size of the message's frame body (see SessionHost.dispatch). */
export type Handler<M extends Message = Message> = (msg: M, peer: PeerInfo, bytes: number) => HandlerReply;

/**
 * Told when a one-way message of the handler's type was not handled (its
 * authorization or handler threw, or the connection's in-flight limit was
 * reached): a one-way message has no answer to carry the error, so a
 * protocol that reports failures (the light clients' GW_SEND) does it here.
 */
export type DropHandler = (err: unknown, msg: Message, peer: PeerInfo) => void;

export interface MessengerInit extends FrameBudgetOptions {
  /** Inbound connections whose peer has not had a HELLO accepted, in total; more are closed at once. Default 256. */
  maxPreHelloConnections?: number;
  /** The same, from one source address. Default 64. */
  maxPreHelloPerSource?: number;
  /** An inbound connection whose peer sends no acceptable HELLO within this time is closed. Default 10 s. */
  helloTimeoutMs?: number;
  realm?: string;
  role?: Role;
  /** Default per-request timeout. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** Requests served concurrently per connection before answering MACULA_ERR_BUSY. Default 1000. */
  maxInFlight?: number;
  maxFrameSize?: number;
  /** The credential chain to send in HELLO when there is no guard (a light client of a secured realm). */
  credential?: readonly string[];
}

export interface MessengerComponents {
  transport: Transport;
  pool: ConnectionPool;
  /** Observers (metrics, the DHT's contact updates). */
  events?: Partial<MessengerEvents>;
  /** A secured realm's guard: every HELLO must carry a credential it admits. */
  guard?: RealmGuard;
}

/**
 * Checked before a request reaches its handler, with the peer that sent it
 * (its verified credential in a secured realm); throws to refuse the request
 * (the error is the answer). The composition root sets it.
 */
export type Authorizer = (msg: Message, peer: PeerInfo) => void | Promise<void>;

export interface MessengerEvents {
  message(peer: PeerInfo): void;
  hello(peer: PeerInfo): void;
  protocolError(err: ProtocolError, peer: PeerInfo | undefined): void;
  /** A peer told us the address our packets came from (HELLO_ACK). */
  observed(address: PeerAddress, peer: PeerInfo): void;
}

/** Messages by type name (e.g. FIND_NODE) since the messenger was created. */
export interface TrafficStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  /** One-way messages received and not handled, by reason (they have no answer to carry an error). */
  oneWayDropped: Record<OneWayDropReason, number>;
}


/** Depth of the bounded queues of every connection, read at once (metrics, /health). */
export interface QueueStats {
  /** Bytes accepted for sending and not yet written, summed over every stream. */
  sendQueuedBytes: number;
  /** The fullest single stream's queued bytes: each stream is bounded on its own. */
  sendQueueLargestBytes: number;
  /** The bound of one stream's send queue; sends beyond it are refused. */
  sendQueueLimitBytes: number;
  /** Requests from peers being served now, summed over connections. */
  requestsInFlight: number;
  /** The busiest connection's requests in flight. */
  requestsInFlightLargest: number;
  /** Requests served at once per connection before answering BUSY. */
  maxInFlight: number;
  /** Requests this node sent that await their response. */
  requestsPending: number;
  /** Every byte and admission budget as used / limit (see budgetStats()). */
  budgets?: BudgetStats['budgets'];
  /** Refusals by budget reason since start (see budgetStats()). */
  budgetRefusals?: BudgetStats['refusals'];
}

/** How full each budget is, and how often each refused; the pairs share one shape so a health check can read them all alike. */
export interface BudgetStats {
  budgets: {
    /** Bytes of unfinished frames buffered by the node. */
    frameBytes: { used: number; limit: number };
    /** Inbound connections not yet past HELLO. */
    preHelloConnections: { used: number; limit: number };
  };
  /** Refusals by reason: frame budgets and connections before HELLO (here), admission rates (the transport's). */
  refusals: Record<BudgetRefusalReason, number>;
}

export interface Target {
  address: PeerAddress;
  nodeId?: Uint8Array | string;
}

export const DEFAULT_REALM = 'default';
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_IN_FLIGHT = 1000;
export const DEFAULT_MAX_PRE_HELLO_CONNECTIONS = 256;
export const DEFAULT_MAX_PRE_HELLO_PER_SOURCE = 64;
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

/** The session layer's defaults (the `session` options of a node). */
export const SESSION_DEFAULTS = Object.freeze({
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  maxInFlight: DEFAULT_MAX_IN_FLIGHT,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxPreHelloConnections: DEFAULT_MAX_PRE_HELLO_CONNECTIONS,
  maxPreHelloPerSource: DEFAULT_MAX_PRE_HELLO_PER_SOURCE,
  helloTimeoutMs: DEFAULT_HELLO_TIMEOUT_MS,
  ...FRAME_BUDGET_DEFAULTS,
});

export class Messenger implements SessionHost, HandlerRegistry<PeerInfo, HandlerReply> {
  readonly realm: string;
  readonly role: Role;
  readonly maxFrameSize: number;
  readonly maxInFlight: number;
  readonly requestTimeoutMs: number;
  readonly pool: ConnectionPool;
  readonly #transport: Transport;
  readonly #handlers = new Map<number, Handler>();
  readonly #onDropped = new Map<number, DropHandler>();
  readonly #sessions = new Map<Connection, PeerSession>();
  readonly #events: Partial<MessengerEvents>;
  readonly guard: RealmGuard | undefined;
  readonly #credential: readonly string[] | undefined;
  /** See Authorizer; undefined in an open realm. */
  authorize: Authorizer | undefined;
  /**
   * Sees every inbound connection before the pool does; returning true takes
   * it (the reachability check's dial-backs, which must not replace the
   * connection in use for that node).
   */
  claimInbound: ((conn: Connection) => boolean) | undefined;
  /** See SessionHost.claimStream (relay circuits). */
  claimStream: ((first: Message, stream: FramedStream, peer: PeerInfo) => boolean) | undefined;
  /** See SessionHost.announcedHost (a relayed address while the node is behind a NAT). */
  announcedHost: (() => string | undefined) | undefined;
  /** Set only in a secured realm (SessionHost.admit). */
  readonly admit: ((peer: PeerInfo, hello: Hello) => Promise<void>) | undefined;
  // Indexed by message type (1..255). A plain array increment on the hot
  // path; names are looked up only when someone reads trafficStats().
  // Float64 so that the counts stay exact far beyond 2^32.
  readonly #received = new Float64Array(256);
  readonly #oneWayDropped: Record<OneWayDropReason, number> = { in_flight_limit: 0, refused: 0 };
  readonly #sent = new Float64Array(256);
  readonly frameBudget: FrameBudget;
  readonly maxPreHelloConnections: number;
  readonly maxPreHelloPerSource: number;
  readonly helloTimeoutMs: number;
  /** Inbound connections not yet past HELLO, with the timer that closes them if none comes. */
  readonly #preHello = new Map<Connection, NodeJS.Timeout>();
  readonly #preHelloBySource = new Map<string, number>();
  #running = false;

  constructor(components: MessengerComponents, init: MessengerInit = {}) {
    this.#transport = components.transport;
    this.pool = components.pool;
    this.#events = components.events ?? {};
    this.#credential = init.credential;
    const guard = (this.guard = components.guard);
    this.admit = guard
      ? async (peer, hello) => {
          peer.credential = await guard.admit(peer.nodeId, hello.role, hello.cred);
        }
      : undefined;
    this.realm = init.realm ?? DEFAULT_REALM;
    this.role = init.role ?? 'node';
    const int = (name: string, value: number, min: number) => intOption(`session option ${name}`, value, min);
    this.requestTimeoutMs = int('requestTimeoutMs', init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, 1);
    this.maxInFlight = int('maxInFlight', init.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, 1);
    this.maxFrameSize = int('maxFrameSize', init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE, 1024);
    this.frameBudget = new FrameBudget(init);
    this.maxPreHelloConnections = int('maxPreHelloConnections', init.maxPreHelloConnections ?? DEFAULT_MAX_PRE_HELLO_CONNECTIONS, 1);
    this.maxPreHelloPerSource = int('maxPreHelloPerSource', init.maxPreHelloPerSource ?? DEFAULT_MAX_PRE_HELLO_PER_SOURCE, 1);
    this.helloTimeoutMs = int('helloTimeoutMs', init.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS, 1);
    this.pool.onConnection = (conn) => this.#attach(conn);
  }

  get listenPort(): number {
    return this.role === 'node' ? (this.#transport.listenAddress?.port ?? 0) : 0;
  }

  /** Registers the handler for a request type (one per type), and for one-way types optionally what to do with a drop. */
  handle<F extends Fields>(def: MessageDef<F>, handler: Handler<WireMessage<F>>, options: { onDropped?: (err: unknown, msg: WireMessage<F>, peer: PeerInfo) => void } = {}): void {
    if (this.#handlers.has(def.type)) throw new Error(`a handler for ${def.name} is already registered`);
    // Dispatch validates a message against the definition of its type first,
    // so the handler of that type only ever sees messages of its own shape.
    this.#handlers.set(def.type, handler as Handler);
    if (options.onDropped) this.#onDropped.set(def.type, options.onDropped as DropHandler);
  }

  /** Accepts inbound connections until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.pool.start();
    void (async () => {
      for (;;) {
        const conn = await this.#transport.acceptConnection();
        if (conn === null) return;
        if (this.claimInbound?.(conn)) continue;
        this.pool.accept(conn);
      }
    })();
  }

  stop(): void {
    this.#running = false;
    this.pool.stop();
    this.#sessions.clear();
    for (const timer of this.#preHello.values()) clearTimeout(timer);
    this.#preHello.clear();
    this.#preHelloBySource.clear();
  }

  /** Sends a request to the node at `target` and resolves with its response. */
  async request(target: Target, msg: OutboundMessage, options: { timeoutMs?: number } = {}): Promise<Message> {
    // The deadline covers the dial too: a dead peer must cost the request's
    // timeout, not the (longer) handshake timeout.
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const t0 = performance.now();
    const conn = await this.pool.get(target.address, target.nodeId, timeoutMs);
    const left = Math.max(1, timeoutMs - (performance.now() - t0));
    return this.requestOn(conn, msg, { timeoutMs: left });
  }

  async requestOn(conn: Connection, msg: OutboundMessage, options: { timeoutMs?: number } = {}): Promise<Message> {
    const session = this.#session(conn);
    this.pool.acquire(conn);
    try {
      return await session.request(msg, options.timeoutMs ?? this.requestTimeoutMs);
    } finally {
      this.pool.release(conn);
    }
  }

  /** Sends a one-way message (no response expected). */
  async notify(target: Target, msg: OutboundMessage): Promise<void> {
    const conn = await this.pool.get(target.address, target.nodeId);
    return this.notifyOn(conn, msg);
  }

  /**
   * Sends a one-way message on a connection: queued at once when its
   * request stream is open (no dial, no await), so a burst to one peer is
   * one write. Resolves once the write carrying it completes.
   */
  notifyOn(conn: Connection, msg: OutboundMessage): Promise<void> {
    this.pool.touch(conn);
    return this.#session(conn).notify(msg);
  }

  /** Whether one-way messages to `conn` pile up (see PeerSession.congested): senders that do not wait for each write should wait. */
  congested(conn: Connection): boolean {
    return this.#sessions.get(conn)?.congested ?? true;
  }

  /** A new stream on `conn` framed like the session's (the relay's circuits); the caller owns it. */
  openStream(conn: Connection): Promise<FramedStream> {
    this.pool.touch(conn);
    return this.#session(conn).openFramedStream();
  }

  /** Messages read and queued by type since this messenger was created. */
  trafficStats(): TrafficStats {
    return { received: countsByName(this.#received), sent: countsByName(this.#sent), oneWayDropped: { ...this.#oneWayDropped } };
  }

  /** O(connections): meant for scrapes and health checks, not for hot paths. */
  queueStats(): QueueStats {
    let sendQueuedBytes = 0;
    let sendQueueLargestBytes = 0;
    let requestsInFlight = 0;
    let requestsInFlightLargest = 0;
    let requestsPending = 0;
    for (const session of this.#sessions.values()) {
      const q = session.queuedBytes();
      sendQueuedBytes += q.total;
      if (q.largest > sendQueueLargestBytes) sendQueueLargestBytes = q.largest;
      requestsInFlight += session.inFlight;
      if (session.inFlight > requestsInFlightLargest) requestsInFlightLargest = session.inFlight;
      requestsPending += session.pendingRequests;
    }
    const budgets = this.budgetStats();
    return {
      sendQueuedBytes,
      sendQueueLargestBytes,
      sendQueueLimitBytes: DEFAULT_MAX_QUEUED_BYTES,
      requestsInFlight,
      requestsInFlightLargest,
      maxInFlight: this.maxInFlight,
      requestsPending,
      budgets: budgets.budgets,
      budgetRefusals: budgets.refusals,
    };
  }

  /** The byte and admission budgets and their refusals (the transport's admission refusals included). O(1). */
  budgetStats(): BudgetStats {
    const refusals = { ...this.frameBudget.refusals };
    const admission = (this.#transport.stats() as { admissionRefusals?: Partial<Record<BudgetRefusalReason, number>> }).admissionRefusals ?? {};
    for (const [reason, n] of Object.entries(admission)) refusals[reason as BudgetRefusalReason] += n ?? 0;
    return {
      budgets: {
        frameBytes: { used: this.frameBudget.used, limit: this.frameBudget.nodeLimit },
        preHelloConnections: { used: this.#preHello.size, limit: this.maxPreHelloConnections },
      },
      refusals,
    };
  }

  sessions(): PeerInfo[] {
    return [...this.#sessions.values()].map((s) => s.peer);
  }

  #session(conn: Connection): PeerSession {
    return this.#sessions.get(conn) ?? this.#attach(conn);
  }

  #attach(conn: Connection): PeerSession {
    let session = this.#sessions.get(conn);
    if (!session) {
      if (conn.direction === 'inbound') this.#admitPreHello(conn);
      session = new PeerSession(conn, this);
      this.#sessions.set(conn, session);
      void conn.closed.then(() => {
        this.#sessions.delete(conn);
        this.#passedHello(conn);
      });
    }
    return session;
  }

  /**
   * An inbound connection counts as "before HELLO" until its peer's HELLO is
   * accepted: bounded in total and per source address, and closed if no HELLO
   * comes within helloTimeoutMs. Refusals close the connection at once.
   */
  #admitPreHello(conn: Connection): void {
    const source = conn.remoteAddress.host;
    const fromSource = this.#preHelloBySource.get(source) ?? 0;
    let refusal: BudgetRefusalReason | undefined;
    if (this.#preHello.size >= this.maxPreHelloConnections) refusal = 'pre_hello_connections';
    else if (fromSource >= this.maxPreHelloPerSource) refusal = 'pre_hello_per_source';
    if (refusal !== undefined) {
      this.frameBudget.refusals[refusal]++;
      conn.close();
      return;
    }
    this.#preHelloBySource.set(source, fromSource + 1);
    const timer = setTimeout(() => {
      if (!this.#preHello.has(conn)) return;
      this.frameBudget.refusals.hello_timeout++;
      conn.close();
    }, this.helloTimeoutMs);
    timer.unref();
    this.#preHello.set(conn, timer);
  }

  #passedHello(conn: Connection): void {
    const timer = this.#preHello.get(conn);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#preHello.delete(conn);
    const source = conn.remoteAddress.host;
    const left = (this.#preHelloBySource.get(source) ?? 1) - 1;
    if (left > 0) this.#preHelloBySource.set(source, left);
    else this.#preHelloBySource.delete(source);
  }

  // ---- SessionHost ----------------------------------------------------------

  dispatch(msg: Message, peer: PeerInfo, bytes: number): Promise<OutboundMessage | undefined> | OutboundMessage | undefined {
    const handler = this.#handlers.get(msg.t);
    if (!handler) throw new UnsupportedMessageError(msg.t);
    if (this.authorize === undefined) return handler(msg, peer, bytes);
    const pending = this.authorize(msg, peer);
    return pending === undefined ? handler(msg, peer, bytes) : pending.then(() => handler(msg, peer, bytes));
  }

  get credential(): readonly string[] | undefined {
    return this.guard?.credential ?? this.#credential;
  }

  onMessage(peer: PeerInfo): void {
    this.pool.touch(peer.connection);
    this.#events.message?.(peer);
  }

  onHello(peer: PeerInfo): void {
    this.#passedHello(peer.connection);
    // The peer speaks on this connection: a duplicate waiting for that may be put in use.
    this.pool.confirm(peer.connection);
    this.#events.hello?.(peer);
  }

  onObserved(address: PeerAddress, peer: PeerInfo): void {
    this.#events.observed?.(address, peer);
  }

  onProtocolError(err: ProtocolError, peer: PeerInfo): void {
    this.#events.protocolError?.(err, peer);
  }

  onTraffic(direction: 'in' | 'out', type: number): void {
    (direction === 'in' ? this.#received : this.#sent)[type]++;
  }

  onOneWayDropped(reason: OneWayDropReason, msg: Message, peer: PeerInfo, err: unknown): void {
    this.#oneWayDropped[reason]++;
    this.#onDropped.get(msg.t)?.(err, msg, peer);
  }
}

function countsByName(counts: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let t = 0; t < counts.length; t++) if (counts[t]! > 0) out[messageName(t)] = counts[t]!;
  return out;
}
