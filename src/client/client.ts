/**
 * MaculaClient: a light client of one mesh node. It is not a mesh member: it
 * dials the node's QUIC port with a throwaway identity, says HELLO with role
 * `client` and port 0 (nothing listens on its side), and uses the node as its
 * gateway to publish, subscribe, call, serve procedures and read stats
 * (see src/gateway/messages.ts for the protocol).
 *
 * It reuses the node's own layers (QuicTransport, ConnectionPool, Messenger),
 * so framing, write coalescing, request ids, timeouts and the in-flight limit
 * for calls the node sends it (INVOKE) behave exactly as between nodes. The
 * pool's idle reaper is never started: the one connection must stay open
 * however quiet the client is.
 *
 * No automatic reconnection: when the connection is lost, `closed` resolves,
 * a 'disconnect' event carries the reason and every later request fails.
 * Whoever owns the client decides whether to connect again.
 */
import { EventEmitter } from 'node:events';
import { REVOKE } from '../auth/messages.js';
import { PING } from '../wire/messages.js';
import { Identity } from '../identity/identity.js';
import { DEFAULT_REALM, Messenger } from '../session/messenger.js';
import { ConnectionPool } from '../transport/pool.js';
import { QuicTransport } from '../transport/quic.js';
import { formatAddress, type Connection, type PeerAddress, type Transport } from '../transport/types.js';
import { ConfigError, ConnectionClosedError, DialError, MaculaError, RemoteError, StoppedError, TransportError } from '../util/errors.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { Message, MessageOf } from '../wire/messages.js';
import { NoSuchProcedureError, RemoteCallError } from '../rpc/errors.js';
import { validatePattern } from '../pubsub/topic.js';
import { HELLO } from '../wire/messages.js';
import { GW_ACK, GW_ATTACH, GW_CALL, GW_LOOKUP, GW_MSG, GW_NACK, GW_PEERS, GW_PUB, GW_REQ, GW_RESPOND, GW_SERVE, GW_STATS, GW_SUB, GW_UNSUB, INVOKE } from '../gateway/messages.js';
import { validateQueueGroup } from '../pubsub/queue.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { ClientPublisher, DEFAULT_MAX_PENDING_PUBLISH_BYTES, NO_PUBLISH_STATS, type PublishError, type PublishStats } from '../gateway/client-publisher.js';
import type { PeersSnapshot } from '../gateway/snapshot.js';
import { runServed, ServedProcedures } from '../gateway/client-serve.js';
import { udpRefused } from './probe.js';
import type { AttachInfo, ClientMessage, ClientProvider, ClientReply, ClientSubscription, ServeHandler, ServedProcedure } from './types.js';

export type { AttachInfo, ClientMessage, ClientProvider, ClientReply, ClientSubscription, ServeContext, ServeHandler, ServedProcedure } from './types.js';
export { PublishError, type PublishStats } from '../gateway/client-publisher.js';

export const DEFAULT_NODE: PeerAddress = { host: '127.0.0.1', port: 9443 };
export const DEFAULT_CLIENT_TIMEOUT_MS = 5000;
/** Extra time a request waits beyond the call timeout it carries, so the node's own timeout answers first. */
const CALL_MARGIN_MS = 1000;
/** How long close() waits for the node to withdraw what the client served. */
const CLOSE_UNSERVE_MS = 3000;

/** No node answered at the address (nothing listening, wrong port, firewall). */
export class NodeUnreachableError extends MaculaError {
  readonly address: PeerAddress;

  constructor(address: PeerAddress, options?: { cause?: unknown }) {
    super('MACULA_ERR_UNREACHABLE', `cannot reach a node at ${formatAddress(address)} — is \`macula start\` running?`, options);
    this.address = address;
  }
}

const REALM_RULE = HELLO.fields.realm as { min: number; max: number };

/**
 * Checks a realm name by the rule of the HELLO message (its length), so a
 * bad one is refused here rather than by the node closing the connection.
 * @throws ConfigError saying what is allowed
 */
export function validateRealm(realm: string): void {
  if (realm.length < REALM_RULE.min || realm.length > REALM_RULE.max) {
    throw new ConfigError(`invalid realm: a realm name is ${REALM_RULE.min}..${REALM_RULE.max} characters long, got ${realm.length}`);
  }
}

export interface MaculaClientInit {
  /** The node to use as gateway. Default 127.0.0.1:9443. */
  node?: PeerAddress;
  /** The node's realm; a node of another realm refuses the connection. Default 'default'. */
  realm?: string;
  /** Connect deadline and the default timeout of requests and calls. Default 5000 ms. */
  timeoutMs?: number;
  /** Calls of served procedures handled at once; more are answered MACULA_ERR_BUSY. Default 1000. */
  maxInFlight?: number;
  /** Name and version of the software using the client, sent in GW_ATTACH (e.g. "macula-cli/0.1.0"). */
  software?: string;
  /**
   * For a secured realm: the client's credential chain, sent in HELLO. Its
   * subject must be the key of `identity` (components): a creds file from
   * `macula cred issue --role client` holds both (see readCredentialFile).
   */
  credential?: readonly string[];
  /** Bytes of publishes sent and not yet acknowledged by the node past which publish() waits. Default 8 MiB. */
  maxPendingPublishBytes?: number;
}

export interface MaculaClientComponents {
  /** Default: QUIC with `identity`. Tests pass a memory transport. */
  transport?: Transport;
  /** Default: a fresh identity per client; clients need no stable ID. */
  identity?: Identity;
}

export class MaculaClient extends EventEmitter {
  readonly node: PeerAddress;
  readonly realm: string;
  readonly timeoutMs: number;
  /** What the node said about itself when the client attached. */
  info: AttachInfo | undefined;
  /** Resolves once the connection is closed, by close() or because it was lost. */
  readonly closed: Promise<void>;

  readonly #transport: Transport;
  readonly #pool: ConnectionPool;
  readonly #messenger: Messenger;
  readonly #software: string | undefined;
  /** Over real UDP only: probe the port so a stopped node is reported at once (see udpRefused). */
  readonly #probe: boolean;
  readonly #subs = new Map<number, { pattern: string; onMessage: (msg: ClientMessage) => unknown }>();
  readonly #served = new ServedProcedures<ServeHandler>();
  readonly #maxPendingPublishBytes: number;
  #publisher: ClientPublisher | undefined;
  #nextSid = 1;
  #conn: Connection | undefined;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  /** Connects to a node and attaches to its gateway. @throws NodeUnreachableError, RemoteError (refused: realm, too many clients) */
  static async connect(init: MaculaClientInit = {}, components: MaculaClientComponents = {}): Promise<MaculaClient> {
    const client = new MaculaClient(components, init);
    await client.open();
    return client;
  }

  constructor(components: MaculaClientComponents = {}, init: MaculaClientInit = {}) {
    super();
    this.node = init.node ?? DEFAULT_NODE;
    this.realm = init.realm ?? DEFAULT_REALM;
    validateRealm(this.realm);
    this.timeoutMs = init.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    this.#software = init.software;
    this.#maxPendingPublishBytes = init.maxPendingPublishBytes ?? DEFAULT_MAX_PENDING_PUBLISH_BYTES;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#probe = components.transport === undefined;
    this.#transport = components.transport ?? new QuicTransport({ identity: components.identity ?? Identity.generate() });
    this.#pool = new ConnectionPool({ transport: this.#transport }, { maxConnections: 4 });
    this.#messenger = new Messenger(
      { transport: this.#transport, pool: this.#pool },
      {
        realm: this.realm,
        role: 'client',
        requestTimeoutMs: this.timeoutMs,
        ...(init.maxInFlight !== undefined && { maxInFlight: init.maxInFlight }),
        ...(init.credential !== undefined && { credential: init.credential }),
      },
    );
    this.#messenger.handle(GW_MSG, (msg) => this.#onMsg(msg));
    this.#messenger.handle(INVOKE, (msg) => this.#onInvoke(msg));
    this.#messenger.handle(GW_ACK, (msg) => void this.#publisher?.acknowledged(msg.n as number));
    this.#messenger.handle(GW_NACK, (msg) => void this.#publisher?.failed(msg.n as number, msg.code as string, msg.message as string));
  }

  get connected(): boolean {
    return this.#conn !== undefined && !this.#conn.isClosed && this.#closing === undefined;
  }

  /** Dials the node and attaches. Called by connect(). */
  async open(): Promise<AttachInfo> {
    if (this.#conn) throw new ConfigError('this client is already connected');
    let conn: Connection;
    try {
      const dial = this.#pool.get(this.node, undefined, this.timeoutMs);
      if (!this.#probe) conn = await dial;
      else {
        dial.catch(() => undefined); // may lose the race below
        const probe = new AbortController();
        const refused = udpRefused(this.node, this.timeoutMs, probe.signal).then((yes) =>
          yes ? Promise.reject(new DialError(formatAddress(this.node), 'port unreachable')) : dial,
        );
        try {
          conn = await Promise.race([dial, refused]);
        } finally {
          probe.abort();
        }
      }
    } catch (err) {
      await this.#shutdown();
      if (err instanceof DialError || err instanceof TransportError) throw new NodeUnreachableError(this.node, { cause: err });
      throw err;
    }
    this.#conn = conn;
    void conn.closed.then(() => this.#onConnectionClosed());
    try {
      this.info = (await this.#request({ t: GW_ATTACH.type, ...(this.#software !== undefined && { software: this.#software }) })) as AttachInfo;
    } catch (err) {
      await this.#shutdown();
      throw err;
    }
    this.#publisher = ClientPublisher.attached(
      this.info.limits,
      this.#maxPendingPublishBytes,
      (msg) => void this.#messenger.notifyOn(conn, msg).catch(() => undefined),
      (err) => this.#publishFailed(err),
    );
    return this.info;
  }

  /**
   * Publishes `data` (any CBOR value but undefined) to `topic` with optional
   * `headers`, one-way:
   * resolves once the message is handed to the connection, not when the
   * node took it. When the node's window of unacknowledged publishes is
   * full it waits for room, so a fast publisher goes at the node's pace.
   * A failure at the node (permission, limits) arrives later: emitted as a
   * 'publish-error' event (a PublishError naming the publish by its number
   * and topic), counted in publishStats().failed, and the next flush()
   * rejects with it. Use flush() to know that the node has everything.
   * @throws InvalidTopicError, InvalidPayloadError, InvalidHeadersError (nothing sent), QueueFullError (a window's worth of calls already waits), ConnectionClosedError
   */
  publish(topic: string, data: unknown, options?: { headers?: Headers }): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined || this.#closing !== undefined) return Promise.reject(StoppedError.of('this client'));
    return publisher.publish(topic, data, options?.headers); // no options object made per publish
  }

  /**
   * Publishes a request and gathers up to `max` replies (default 1) within
   * `timeoutMs` (default: the client's timeout) from subscribers that answer.
   * @throws RemoteError MACULA_ERR_NO_RESPONDERS at once when nobody subscribes, MACULA_ERR_TIMEOUT when nobody answered
   */
  async request(topic: string, data: unknown, options: { timeoutMs?: number; max?: number; headers?: Headers } = {}): Promise<ClientReply[]> {
    const h = checkHeaders(options.headers);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const msg: OutboundMessage = { t: GW_REQ.type, tp: topic, d: data, timeoutMs, ...(options.max !== undefined && { max: options.max }), ...(h !== undefined && { h }) };
    const replies = (await this.#request(msg, timeoutMs + CALL_MARGIN_MS)) as { d: unknown; h?: Headers; from: string }[];
    return replies.map((r) => ({ data: r.d, headers: r.h, responder: r.from }));
  }

  /**
   * Resolves once the node has handled every publish made before this call
   * (queued each for its subscriber nodes, or reported its failure), as a
   * NATS client's flush does. Rejects with the first PublishError since the
   * previous flush, or TimeoutError after `timeoutMs` (default: the
   * client's timeoutMs).
   */
  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined) return Promise.reject(StoppedError.of('this client'));
    return publisher.flush(options.timeoutMs ?? this.timeoutMs);
  }

  /**
   * Publishes and waits for the node's answer: how many subscriber nodes and
   * local subscriptions it reached. A round trip per message; publish() is
   * the fast way.
   */
  async publishAndWait(topic: string, data: unknown, options: { timeoutMs?: number; headers?: Headers } = {}): Promise<{ nodes: number; local: number }> {
    const h = checkHeaders(options.headers);
    return (await this.#request({ t: GW_PUB.type, tp: topic, d: data, ...(h !== undefined && { h }) }, options.timeoutMs)) as { nodes: number; local: number };
  }

  /** Counts of one-way publishes: sent, acknowledged, failed, pending and the window. */
  publishStats(): PublishStats {
    return this.#publisher?.stats() ?? { ...NO_PUBLISH_STATS };
  }

  /**
   * Subscribes to `pattern` (`*` one segment, final `#` any number). Resolves
   * once the node has announced the subscription in the mesh. `onMessage`
   * runs for each message in arrival order; what it throws is emitted as a
   * 'handler-error' event.
   * With `queue`, the subscription joins that queue group: each message goes
   * to one member of the group across the mesh.
   * @throws InvalidTopicError, InvalidQueueGroupError (before anything is sent) for a pattern or group name that breaks a rule
   */
  async subscribe(pattern: string, onMessage: (msg: ClientMessage) => unknown, options: { queue?: string } = {}): Promise<ClientSubscription> {
    validatePattern(pattern);
    if (options.queue !== undefined) validateQueueGroup(options.queue);
    const sid = this.#nextSid++;
    this.#subs.set(sid, { pattern, onMessage });
    try {
      await this.#request({ t: GW_SUB.type, pattern, sid, ...(options.queue !== undefined && { q: options.queue }) });
    } catch (err) {
      this.#subs.delete(sid);
      throw err;
    }
    return {
      sid,
      pattern,
      unsubscribe: async () => {
        if (!this.#subs.delete(sid) || !this.connected) return;
        await this.#request({ t: GW_UNSUB.type, sid });
      },
    };
  }

  /**
   * Hands the node a revocation list signed by the realm authority (see
   * `macula cred revoke`); the node adopts it if it is newer than its own,
   * closes the sessions it revokes and spreads it through the DHT.
   */
  async revoke(list: string): Promise<{ seq: number; adopted: boolean }> {
    return (await this.#request({ t: REVOKE.type, rl: list })) as { seq: number; adopted: boolean };
  }

  /**
   * Calls a procedure in the mesh through the node. `timeoutMs` covers every
   * attempt (default: the client's timeoutMs); `headers` go with the call,
   * `onResultHeaders` gets the headers of the result, if it has any.
   */
  async call(procedure: string, args?: unknown, options: { timeoutMs?: number; headers?: Headers; onResultHeaders?: (h: Headers) => void } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const h = checkHeaders(options.headers);
    const msg: OutboundMessage = { t: GW_CALL.type, p: procedure, timeoutMs, ...(h !== undefined && { h }) };
    if (args !== undefined) msg.a = args;
    try {
      const res = await this.#requestMessage(msg, timeoutMs + CALL_MARGIN_MS);
      if (res.h !== undefined) options.onResultHeaders?.(res.h as Headers);
      return res.r;
    } catch (err) {
      // The node's answer: the call failed there. The same class an embedded caller gets for a failed handler.
      if (err instanceof RemoteError) throw new RemoteCallError(err.code, err.message, procedure, this.info?.nodeId ?? '');
      throw err;
    }
  }

  /**
   * Serves `procedure` from this client: the node registers it in the mesh
   * and forwards every call here. The registration ends with unserve(),
   * close(), or at once when the connection is lost.
   */
  async serve(procedure: string, handler: ServeHandler, options: { timeoutMs?: number } = {}): Promise<ServedProcedure> {
    await this.#served.serve(procedure, handler, () => this.#request({ t: GW_SERVE.type, p: procedure, ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) }));
    return { procedure, unserve: () => this.#unserve(procedure, handler) };
  }

  /** Providers of a service name (procedures are `rpc:<procedure>`). `fresh` skips the node's registry cache. */
  async lookup(name: string, options: { fresh?: boolean } = {}): Promise<ClientProvider[]> {
    return (await this.#request({ t: GW_LOOKUP.type, name, ...(options.fresh && { fresh: true }) })) as ClientProvider[];
  }

  /** The node's statistics snapshot. */
  /** Round trip to the node (PING/PONG on the client's connection), in ms. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.#request({ t: PING.type });
    return performance.now() - t0;
  }

  async stats(): Promise<Record<string, unknown>> {
    return (await this.#request({ t: GW_STATS.type })) as Record<string, unknown>;
  }

  /** The node's routing-table contacts and open connections. */
  async peers(): Promise<PeersSnapshot> {
    return (await this.#request({ t: GW_PEERS.type })) as PeersSnapshot;
  }

  /**
   * Withdraws what this client serves (waiting up to 3 s for the node to
   * confirm, so nobody finds it once close() resolves), then closes the
   * connection. Subscriptions end with the connection.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#conn && !this.#conn.isClosed && this.#served.size > 0) {
        const procedures = this.#served.removeAll();
        await Promise.allSettled(procedures.map((p) => this.#request({ t: GW_SERVE.type, p, off: true }, CLOSE_UNSERVE_MS, true)));
      }
      await this.#shutdown();
    })();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#publisher?.close(this.#closing !== undefined ? StoppedError.of('this client') : this.#lost());
    this.#conn?.close();
    this.#pool.stop();
    this.#messenger.stop();
    await this.#transport.close();
    this.#resolveClosed();
  }

  async #unserve(procedure: string, handler: ServeHandler): Promise<void> {
    if (this.#served.remove(procedure, handler) && this.connected) await this.#request({ t: GW_SERVE.type, p: procedure, off: true });
  }

  async #request(msg: OutboundMessage, timeoutMs: number = this.timeoutMs, whileClosing = false): Promise<unknown> {
    return (await this.#requestMessage(msg, timeoutMs, whileClosing)).r;
  }

  async #requestMessage(msg: OutboundMessage, timeoutMs: number = this.timeoutMs, whileClosing = false): Promise<Message> {
    const conn = this.#conn;
    if (!conn || (this.#closing !== undefined && !whileClosing)) throw StoppedError.of('this client');
    if (conn.isClosed) throw this.#lost();
    try {
      return await this.#messenger.requestOn(conn, msg, { timeoutMs });
    } catch (err) {
      if (err instanceof ConnectionClosedError && this.#closing === undefined) throw this.#lost(err);
      throw err;
    }
  }

  #lost(cause?: unknown): ConnectionClosedError {
    return new ConnectionClosedError(`lost the connection to the node at ${formatAddress(this.node)}`, cause === undefined ? undefined : { cause });
  }

  #onConnectionClosed(): void {
    if (this.#closing === undefined) {
      this.emit('disconnect', this.#lost());
      void this.#shutdown();
    }
  }

  #publishFailed(err: PublishError): void {
    // Without a listener the failure is still counted and the next flush() rejects with it.
    if (this.listenerCount('publish-error') > 0) this.emit('publish-error', err);
  }

  #onMsg(msg: MessageOf<typeof GW_MSG>): undefined {
    const sub = this.#subs.get(msg.sid);
    if (!sub) return undefined; // unsubscribed meanwhile
    if (msg.k !== undefined) {
      // A run (wire/run.ts): the handler sees each message with its own number.
      const data = msg.d as readonly unknown[];
      const seq = msg.s;
      for (let i = 0; i < msg.k; i++) this.#handle(sub, { topic: msg.tp, data: data[i], publisher: msg.pub, seq: seq === undefined ? undefined : seq + i, origin: msg.o, headers: undefined });
      return undefined;
    }
    const m: ClientMessage = {
      topic: msg.tp,
      data: msg.d,
      publisher: msg.pub,
      seq: msg.s,
      origin: msg.o,
      headers: msg.h,
    };
    if (msg.rq !== undefined) {
      const rq = msg.rq;
      m.respond = async (data, options) => {
        const h = checkHeaders(options?.headers);
        return (await this.#request({ t: GW_RESPOND.type, rq, d: data, ...(h !== undefined && { h }) })) === true;
      };
    }
    this.#handle(sub, m);
    return undefined;
  }

  #handle(sub: { onMessage: (msg: ClientMessage) => unknown }, m: ClientMessage): void {
    try {
      sub.onMessage(m);
    } catch (err) {
      this.emit('handler-error', err);
    }
  }

  async #onInvoke(msg: MessageOf<typeof INVOKE>): Promise<OutboundMessage> {
    const handler = this.#served.get(msg.p);
    if (!handler) throw new NoSuchProcedureError(msg.p, 'this client');
    return runServed(handler, { p: msg.p, a: msg.a, d: msg.d, h: msg.h as Headers | undefined });
  }
}

