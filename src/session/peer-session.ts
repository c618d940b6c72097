/**
 * The message layer of one connection.
 *
 * Each side sends its requests on one long-lived stream that it opened
 * itself, and the other side answers on that same stream; responses are
 * matched by request id. The first message on every such stream is HELLO
 * (realm, role, listen port), answered by HELLO_ACK. Keeping one stream per
 * direction lets FramedStream coalesce many requests into one write, which
 * a stream per request cannot do.
 */
import type { Credential } from '../auth/credential.js';
import { shortId } from '../identity/identity.js';
import { isRelayedHost } from '../transport/relayed-address.js';
import type { Connection, PeerAddress, Stream } from '../transport/types.js';
import { BadResultError, BusyError, ConnectionClosedError, fromWire, NotAClientError, ProtocolError, RealmMismatchError, TimeoutError, toWire } from '../util/errors.js';
export { RemoteError } from '../util/errors.js';
import { BudgetExceededError, type BudgetAccount, type FrameBudget } from '../wire/budget.js';
import { FramedStream, type OutboundMessage } from '../wire/framed-stream.js';
import { ERROR, HELLO, HELLO_ACK, isMessage, MAX_REQUEST_ID, messageDef, messageName, type Message, type MessageOf } from '../wire/messages.js';
import { messagesIn } from '../wire/run.js';

export type Role = 'node' | 'client';

/** A HELLO or HELLO_ACK as received (both carry the same fields). */
export type Hello = MessageOf<typeof HELLO>;

/** What we know of the peer at the other end of a connection. */
export interface PeerInfo {
  readonly nodeId: Uint8Array;
  readonly nodeIdHex: string;
  role: Role;
  /** Where the peer listens: its observed host and the port from its HELLO (0 for clients). */
  address: PeerAddress;
  /** True once a HELLO or HELLO_ACK of our realm came from the peer (and, in a secured realm, was admitted): only then is it a mesh contact. */
  greeted: boolean;
  /** In a secured realm: the peer's verified credential, set when its HELLO was admitted. */
  credential?: Credential;
  readonly connection: Connection;
}

/** Why a one-way message was dropped: the connection's in-flight limit, or its handler refused or failed it. */
export type OneWayDropReason = 'in_flight_limit' | 'refused';

/** Whatever the session needs from the node that owns it. */
export interface SessionHost {
  readonly realm: string;
  readonly role: Role;
  readonly listenPort: number;
  readonly maxFrameSize: number;
  readonly maxInFlight: number;
  /** The node's budget for unfinished frames; each session draws on it through its own account. */
  readonly frameBudget?: FrameBudget;
  /**
   * Answers one request; returns the response (without v/id) or undefined for
   * one-way messages. `bytes`: the size of the message's frame body, what the
   * handler holds while it keeps the message.
   */
  dispatch(msg: Message, peer: PeerInfo, bytes: number): Promise<OutboundMessage | undefined> | OutboundMessage | undefined;
  onMessage(peer: PeerInfo): void;
  onProtocolError(err: ProtocolError, peer: PeerInfo): void;
  onHello(peer: PeerInfo): void;
  /** In a secured realm: this side's credential chain, sent in HELLO and HELLO_ACK. */
  readonly credential?: readonly string[];
  /**
   * In a secured realm: verifies the credential in the peer's HELLO or
   * HELLO_ACK against the identity its handshake proved and sets
   * `peer.credential`; throws (UnauthorizedError) to refuse the peer.
   */
  admit?(peer: PeerInfo, hello: Hello): Promise<void>;
  /** A message of `type` was read from ('in') or queued to ('out') one of this session's streams. */
  onTraffic(direction: 'in' | 'out', type: number): void;
  /** A one-way message was not handled (it has no answer to carry an error): counted; `err` says why. */
  onOneWayDropped(reason: OneWayDropReason, msg: Message, peer: PeerInfo, err: unknown): void;
  /** The peer's HELLO_ACK told the address our packets came from (see src/nat/observed.ts). */
  onObserved?(observed: PeerAddress, peer: PeerInfo): void;
  /**
   * A stream of a greeted peer whose first message is not HELLO (a relay
   * circuit, src/relay/): returns true to take the stream over.
   */
  claimStream?(first: Message, stream: FramedStream, peer: PeerInfo): boolean;
  /** The host this node announces when it is not its connections' address (a relayed address), sent in HELLO as `addr`. */
  announcedHost?(): string | undefined;
}

interface Pending {
  resolve(msg: Message): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | undefined;
}

/** Messages handled from one chunk before the reader lets queued microtasks run (a run, wire/run.ts, is at most this many). */
const YIELD_EVERY = 64;

/** An ERROR response for a thrown value (see toWire). */
function errorReply(err: unknown): OutboundMessage {
  return { t: ERROR.type, ...toWire(err) };
}

export class PeerSession {
  readonly peer: PeerInfo;
  #host: SessionHost;
  #out: FramedStream | undefined;
  /** The streams the peer opened that we answer on (their send queues count towards this connection's). */
  readonly #served = new Set<FramedStream>();
  #opening: Promise<FramedStream> | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #inFlight = 0;
  /** notify() calls waiting for the request stream to open; later ones queue behind them to keep the order. */
  #waitingForStream = 0;
  #closed = false;
  readonly #budget: BudgetAccount | undefined;

  constructor(conn: Connection, host: SessionHost) {
    this.#host = host;
    this.#budget = host.frameBudget?.account();
    this.peer = {
      nodeId: conn.remoteNodeId,
      nodeIdHex: conn.remoteNodeIdHex,
      role: 'node',
      address: { host: conn.remoteAddress.host, port: conn.direction === 'outbound' ? conn.remoteAddress.port : 0 },
      greeted: false,
      connection: conn,
    };
    void conn.closed.then(() => this.#onClosed());
    void this.#acceptLoop();
  }

  get pendingRequests(): number {
    return this.#pending.size;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Bytes waiting to be written on this connection: in total, and on its fullest stream (each stream is bounded on its own). */
  queuedBytes(): { total: number; largest: number } {
    let total = this.#out?.queuedBytes ?? 0;
    let largest = total;
    for (const stream of this.#served) {
      const q = stream.queuedBytes;
      total += q;
      if (q > largest) largest = q;
    }
    return { total, largest };
  }

  /** Sends a request and resolves with its response (ERROR responses reject with RemoteError). */
  async request(msg: OutboundMessage, timeoutMs: number): Promise<Message> {
    const out = await this.#stream();
    return this.#send(out, msg, timeoutMs);
  }

  /** A new stream of this connection, framed as the session's own (budget, limits, counters); the caller owns it. */
  async openFramedStream(): Promise<FramedStream> {
    return this.#framed(await this.peer.connection.openStream());
  }

  /** Whether one-way messages pile up here: the request stream is not open yet, or its send queue is past its high-water mark. */
  get congested(): boolean {
    return this.#out === undefined || this.#waitingForStream > 0 || this.#out.congested;
  }

  /**
   * Sends a one-way message (no id, no response); resolves once the write
   * carrying it completes. Queued at once when the request stream is open,
   * so a burst shares one write and no message waits on another's promise;
   * messages sent while the stream opens wait for it, in order, and until
   * they are queued later ones wait too.
   */
  notify(msg: OutboundMessage): Promise<void> {
    if (this.#out !== undefined && this.#waitingForStream === 0) return this.#out.send(msg);
    this.#waitingForStream++;
    return this.#stream().then(
      (out) => {
        this.#waitingForStream--;
        return out.send(msg);
      },
      (err: unknown) => {
        this.#waitingForStream--;
        throw err;
      },
    );
  }

  #send(out: FramedStream, msg: OutboundMessage, timeoutMs: number): Promise<Message> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError(`the connection to ${shortId(this.peer.nodeIdHex)} is closed`));
    const id = this.#nextId;
    this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return new Promise<Message>((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new TimeoutError(`${messageName(msg.t)} to ${shortId(this.peer.nodeIdHex)}`, timeoutMs));
        }, timeoutMs);
      }
      this.#pending.set(id, pending);
      out.send(msg, id).catch((err) => {
        if (this.#pending.delete(id)) {
          clearTimeout(pending.timer);
          reject(err);
        }
      });
    });
  }

  #stream(): Promise<FramedStream> {
    if (this.#out) return Promise.resolve(this.#out);
    this.#opening ??= this.#open().catch((err) => {
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  async #open(): Promise<FramedStream> {
    const conn = this.peer.connection;
    const stream = await conn.openStream();
    const out = this.#framed(stream);
    void this.#readResponses(out);
    const h = this.#host;
    // HELLO is pipelined: requests queued behind it go out in the same write.
    const hello = this.#send(out, this.#hello(HELLO.type), 10_000).then(async (ack) => {
      if (!isMessage(ack, HELLO_ACK)) throw this.#violation(`HELLO must be answered with HELLO_ACK, got ${messageName(ack.t)}`);
      await h.admit?.(this.peer, ack);
      return ack;
    });
    this.#out = out;
    hello.then(
      (ack) => {
        this.#learn(ack);
        const obs = ack.obs as { h: string; p: number } | undefined;
        if (obs) h.onObserved?.({ host: obs.h, port: obs.p }, this.peer);
      },
      (err) => {
        // A refused HELLO (wrong realm, node full) ends the connection: fail everything queued on it.
        this.#failAll(err);
        conn.close();
      },
    );
    return out;
  }

  #framed(stream: Stream): FramedStream {
    return new FramedStream(stream, {
      maxFrameSize: this.#host.maxFrameSize,
      onProtocolError: (err) => this.#host.onProtocolError(err, this.peer),
      onMessage: (direction, type) => this.#host.onTraffic(direction, type),
      ...(this.#budget && { budget: this.#budget }),
    });
  }

  async #readResponses(out: FramedStream): Promise<void> {
    try {
      for (;;) {
        const next = await out.read();
        if (next === null) break;
        this.#host.onMessage(this.peer);
        // The rest of the chunk in one pass.
        for (let msg: Message | undefined = next; msg !== undefined; msg = out.readBuffered()) this.#settle(msg);
      }
      this.#failAll(new ConnectionClosedError(`${shortId(this.peer.nodeIdHex)} ended the request stream`));
      this.#out = undefined;
      this.#opening = undefined;
    } catch (err) {
      this.#protocolFailure(err, out);
    }
  }

  /** A response read from our request stream: settles its request. */
  #settle(msg: Message): void {
    const def = messageDef(msg.t);
    if (!def?.response || msg.id === undefined) {
      throw this.#violation(`${messageName(msg.t)} is not a response`);
    }
    // The peer accepted our HELLO: responses pipelined behind HELLO_ACK get
    // the full budget now, not once the HELLO promise settles (a microtask later).
    if (msg.t === HELLO_ACK.type) this.#budget?.greet();
    const pending = this.#pending.get(msg.id);
    if (!pending) return; // late answer to a request that already timed out
    this.#pending.delete(msg.id);
    clearTimeout(pending.timer);
    if (isMessage(msg, ERROR)) pending.reject(fromWire({ code: msg.code, message: msg.message }));
    else pending.resolve(msg);
  }

  #learn(msg: Hello): void {
    this.#budget?.greet();
    this.peer.greeted = true;
    this.peer.role = msg.role;
    // A peer may name a relayed address only (src/transport/relayed-address.ts): a direct address is always the one its packets came from.
    const addr = msg.addr !== undefined && isRelayedHost(msg.addr) ? msg.addr : undefined;
    this.peer.address = { host: addr ?? this.peer.connection.remoteAddress.host, port: msg.port };
    this.#host.onHello(this.peer);
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      const stream = await this.peer.connection.acceptStream();
      if (stream === null) return;
      void this.#serve(this.#framed(stream));
    }
  }

  /** Serves the requests the peer sends on a stream it opened. */
  async #serve(stream: FramedStream): Promise<void> {
    const host = this.#host;
    this.#served.add(stream);
    try {
      const first = await stream.read();
      if (first === null) return;
      if (!isMessage(first, HELLO)) {
        if (this.peer.greeted && host.claimStream?.(first, stream, this.peer)) return;
        throw this.#violation(`the first message on a stream must be HELLO, got ${messageName(first.t)}`);
      }
      if (first.realm !== host.realm) return await this.#refuse(stream, first, new RealmMismatchError(String(first.realm)));
      if (this.peer.connection.clientOnly && first.role !== 'client') {
        return await this.#refuse(stream, first, new NotAClientError('this connection carries light clients only (a web session); say HELLO with role "client"'));
      }
      if (host.admit) {
        try {
          await host.admit(this.peer, first);
        } catch (err) {
          return await this.#refuse(stream, first, err);
        }
      }
      this.#learn(first);
      const { host: h, port: p } = this.peer.connection.remoteAddress;
      void stream.send({ ...this.#hello(HELLO_ACK.type), obs: { h, p } }, first.id).catch(() => undefined);
      for (;;) {
        const next = await stream.read();
        if (next === null) break;
        host.onMessage(this.peer);
        // The rest of the chunk in one pass: a one-way message whose handler
        // is synchronous costs no promise at all. Before more than
        // YIELD_EVERY messages (a run counts its messages) are handled the
        // microtasks queued meanwhile run (subscription handlers drain their
        // buffers), as they would between two chunks.
        let n = 0;
        for (let msg: Message | undefined = next; msg !== undefined; msg = stream.readBuffered()) {
          const weight = messagesIn(msg);
          if (n + weight > YIELD_EVERY) {
            n = 0;
            await undefined;
          }
          n += weight;
          if (msg.id === undefined) this.#deliver(msg, stream.lastBodyBytes);
          else void this.#answer(stream, msg, stream.lastBodyBytes);
        }
      }
      await stream.end();
    } catch (err) {
      this.#protocolFailure(err, stream);
    } finally {
      this.#served.delete(stream);
    }
  }

  #hello(type: number): OutboundMessage {
    const h = this.#host;
    const msg: OutboundMessage = { t: type, realm: h.realm, role: h.role, port: h.listenPort };
    if (h.credential) msg.cred = h.credential;
    const addr = h.announcedHost?.();
    if (addr !== undefined) msg.addr = addr;
    return msg;
  }

  /** Answers a HELLO with an error, then closes the connection (a little later, so the answer arrives). */
  async #refuse(stream: FramedStream, hello: Message, err: unknown): Promise<void> {
    await stream.send(errorReply(err), hello.id).catch(() => undefined);
    await stream.end();
    setTimeout(() => this.peer.connection.close(), 200).unref();
  }

  /** One-way messages: handled under the same in-flight limit, never answered; every drop is counted. */
  #deliver(msg: Message, bytes: number): void {
    const host = this.#host;
    if (this.#inFlight >= host.maxInFlight) {
      const err = new BusyError(`too many messages in flight on this connection (limit ${host.maxInFlight}); ${messageName(msg.t)} dropped`);
      return host.onOneWayDropped('in_flight_limit', msg, this.peer, err);
    }
    let handled: unknown;
    try {
      handled = host.dispatch(msg, this.peer, bytes);
    } catch (err) {
      return host.onOneWayDropped('refused', msg, this.peer, err);
    }
    if (!(handled instanceof Promise)) return;
    // Only a handler still running holds a slot of the in-flight limit.
    this.#inFlight++;
    handled.then(
      () => this.#inFlight--,
      (err: unknown) => {
        this.#inFlight--;
        host.onOneWayDropped('refused', msg, this.peer, err);
      },
    );
  }

  async #answer(stream: FramedStream, msg: Message, bytes: number): Promise<void> {
    const id = msg.id;
    if (this.#inFlight >= this.#host.maxInFlight) {
      await stream.send(errorReply(new BusyError(`too many requests in flight on this connection (limit ${this.#host.maxInFlight}); retry later`)), id).catch(() => undefined);
      return;
    }
    this.#inFlight++;
    let reply: OutboundMessage | undefined;
    try {
      reply = await this.#host.dispatch(msg, this.peer, bytes);
    } catch (err) {
      reply = errorReply(err);
    } finally {
      this.#inFlight--;
    }
    if (reply === undefined) return;
    try {
      await stream.send(reply, id);
    } catch (err) {
      // The reply itself could not be sent (not encodable, over the frame
      // limit): tell the caller instead of letting it wait for its timeout.
      if (err instanceof ConnectionClosedError) return;
      const fallback = errorReply(new BadResultError(`the response could not be sent: ${(err as Error).message}`));
      await stream.send(fallback, id).catch(() => undefined);
    }
  }

  /** A protocol violation detected here (not in the frame/codec layer, which reports its own). */
  #violation(message: string): ProtocolError {
    const err = new ProtocolError('unexpected_message', message);
    this.#host.onProtocolError(err, this.peer);
    return err;
  }

  #protocolFailure(err: unknown, stream: FramedStream): void {
    if (err instanceof ProtocolError || (err instanceof BudgetExceededError && err.closesConnection)) {
      // The FramedStream already counted it and reset the stream; a peer that
      // breaks the protocol or its connection's budget loses its connection,
      // everyone else is unaffected.
      this.peer.connection.close();
    } else {
      stream.reset();
    }
  }

  #failAll(err: unknown): void {
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  #onClosed(): void {
    this.#closed = true;
    this.#failAll(new ConnectionClosedError(`the connection to ${shortId(this.peer.nodeIdHex)} closed`));
  }
}
