/**
 * The light client for browsers and web apps: the API of MaculaClient
 * (connect, publish, subscribe, call, serve, lookup, stats, peers, close)
 * over a WebTransport session to a node's web gateway instead of QUIC.
 *
 * It speaks the node's own protocol on the session's streams: length-
 * prefixed CBOR frames; its request stream opens with HELLO (role `client`),
 * the node's request stream (GW_MSG, INVOKE) opens with the node's HELLO,
 * answered HELLO_ACK. The gateway on the other side is the one QUIC clients
 * use: same messages, limits and errors.
 *
 * Runs where a W3C `WebTransport` class exists: a browser (the bundle at
 * /macula-client.js brings the package's polyfill, which falls back to its
 * WebSocket mapping), or Node with the WebTransport class of
 * @fails-components/webtransport passed as `WebTransport`.
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';
import { GW_ACK, GW_ATTACH, GW_CALL, GW_LOOKUP, GW_MSG, GW_NACK, GW_PEERS, GW_PUB, GW_SERVE, GW_STATS, GW_SUB, GW_UNSUB, INVOKE } from '../../gateway/messages.js';
import { ConnectionClosedError, ProtocolError, RemoteError, StoppedError, TimeoutError, ConfigError, toWire } from '../../util/errors.js';
import { ERROR, HELLO, HELLO_ACK, MAX_REQUEST_ID, PING, PROTOCOL_VERSION, UnsupportedMessageError, type Message } from '../../wire/messages.js';
import { encodeFrame, FrameDecoder } from '../../wire/frame.js';
import { frameBody, type EncodedMessage } from '../../wire/codec.js';
import { checkHeaders, type Headers } from '../../wire/headers.js';
import { ClientPublisher, DEFAULT_MAX_PENDING_PUBLISH_BYTES, NO_PUBLISH_STATS, type PublishError, type PublishStats } from '../../gateway/client-publisher.js';
import { runServed, ServedProcedures, type ServeHandler } from '../../gateway/client-serve.js';
import { WebGatewayUnreachableError, WebKeyProofError } from '../errors.js';
import { CHALLENGE_BYTES, CHALLENGE_MESSAGE_BYTES, PROOF_ACCEPTED } from '../key-proof.js';
import { STREAM_ROLE_CLIENT, STREAM_ROLE_CLIENT_PROOF, STREAM_ROLE_NODE } from '../stream-roles.js';
import { parseCreds, proveKey, signingKey, type SigningKey, type WebClientIdentity } from './key.js';

export type { WebClientIdentity } from './key.js';

const cbor = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false } as const;
const encoder = new Encoder(cbor);
const decoder = new Decoder(cbor);

/** The path of the node's WebTransport endpoint. */
export const SESSION_PATH = '/macula';
export const DEFAULT_TIMEOUT_MS = 5000;
/** Messages a subscription read as an async iterator buffers; older ones are dropped (counted in `dropped`). */
export const DEFAULT_SUBSCRIPTION_BUFFER = 1000;
const CALL_MARGIN_MS = 1000;
/** How long close() waits for the node to close the session after the request stream ended. */
const CLOSE_WAIT_MS = 2000;

export { PublishError, type PublishStats } from '../../gateway/client-publisher.js';

type Msg = { v?: number; t: number; id?: number; [k: string]: unknown };

interface BidiStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}
interface WebTransportSession {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<unknown>;
  createBidirectionalStream(): Promise<BidiStream>;
  close(info?: { closeCode?: number; reason?: string }): void;
}
export type WebTransportClass = new (url: string, options?: Record<string, unknown>) => WebTransportSession;

export interface WebClientInit {
  /** The node's web gateway, e.g. https://127.0.0.1:8443 (the session path is added). */
  url: string;
  realm?: string;
  /** Connect deadline and default request timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Sent in GW_ATTACH, e.g. "my-app/1.0". */
  software?: string;
  /**
   * For a secured realm: the credential sent in HELLO, as its token chain,
   * one token, or the text of a client creds file (tokens and key: the key
   * is then the identity unless `identity` is given).
   */
  credential?: string | readonly string[];
  /**
   * The client key the session proves to the node (signed with WebCrypto
   * over the node's challenge): the session's node ID is then SHA-256 of the
   * public key, which a secured realm's credential must name. Without one the
   * session has a random ID (open realms).
   */
  identity?: WebClientIdentity;
  /** The WebTransport class to use. Default: globalThis.WebTransport (the bundle sets the package's polyfill). */
  WebTransport?: WebTransportClass;
  /** Passed to the WebTransport constructor, e.g. serverCertificateHashes; forceReliable and flow-control windows for Node. */
  transportOptions?: Record<string, unknown>;
  /** Bytes of publishes sent and not yet acknowledged by the node; past it publish() waits. Default 8 MiB. */
  maxPendingPublishBytes?: number;
}

export interface WebMessage {
  topic: string;
  data: unknown;
  headers: Headers | undefined;
  publisher: string | undefined;
  seq: number | undefined;
  origin: string | undefined;
}

export interface WebSubscription extends AsyncIterable<WebMessage> {
  readonly sid: number;
  readonly pattern: string;
  /** Messages dropped from the iterator's buffer because nobody read them. */
  readonly dropped: number;
  unsubscribe(): Promise<void>;
}

/** A procedure's handler: as MaculaClient's (the caller's timeout as a signal, its headers, headers for the result). */
export type WebServeHandler = ServeHandler;

export interface AttachInfo {
  nodeId: string;
  realm: string;
  limits: { subscriptions: number; calls: number; served: number; publishWindow?: number; publishWindowBytes?: number };
}

interface Pending {
  resolve(m: Msg): void;
  reject(e: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Length-prefixed CBOR frames over one WebTransport stream. */
class FrameChannel {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #decoder = new FrameDecoder();
  readonly #bodies: Uint8Array[] = [];
  #queue: Uint8Array[] = [];
  #flushing = false;
  #ending = false;

  /** `role`: the byte that opens the stream (stream-roles.ts). */
  constructor(stream: BidiStream, role: number) {
    this.#reader = stream.readable.getReader();
    this.#writer = stream.writable.getWriter();
    this.#writer.closed.catch(() => undefined);
    this.#queue.push(Uint8Array.of(role));
  }

  /** The next `n` raw bytes (the key proof's challenge and status, before any frame); what follows is read as frames. */
  async readBytes(n: number): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      const { value, done } = await this.#reader.read();
      if (done || !value) return null;
      parts.push(value);
      have += value.length;
    }
    const all = parts.length === 1 ? parts[0]! : concatFrames(parts);
    if (all.length > n) this.#bodies.push(...this.#decoder.push(all.subarray(n)));
    return all.subarray(0, n);
  }

  /** Queues raw bytes (the key proof) and writes them. */
  sendRaw(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.flush();
  }

  /** Writes what is queued (the role byte of a stream with nothing else to send yet). */
  flush(): void {
    if (!this.#flushing && this.#queue.length > 0) void this.#flush();
  }

  send(msg: Msg): void {
    this.#queue.push(encodeFrame(encoder.encode({ ...msg, v: PROTOCOL_VERSION }) as Uint8Array));
    if (!this.#flushing) void this.#flush();
  }

  /** A message encoded once (a publish: its size counts against the publish window). */
  sendEncoded(msg: EncodedMessage): void {
    this.#queue.push(encodeFrame(frameBody(msg)));
    if (!this.#flushing) void this.#flush();
  }

  /** Frames sent in one turn go out in one write. */
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        await Promise.resolve();
        const frames = this.#queue.splice(0);
        const out = frames.length === 1 ? frames[0]! : concatFrames(frames);
        await this.#writer.write(out);
      }
      if (this.#ending) await this.#writer.close();
    } catch {
      this.#queue = [];
    } finally {
      this.#flushing = false;
    }
  }

  /** The next message, or null at the end of the stream. */
  async read(): Promise<Msg | null> {
    for (;;) {
      const body = this.#bodies.shift();
      if (body) {
        const msg = decoder.decode(body) as Msg;
        if (msg === null || typeof msg !== 'object' || typeof msg.t !== 'number') throw new ProtocolError('bad_envelope', 'the node sent a message without a type');
        return msg;
      }
      const { value, done } = await this.#reader.read();
      if (done || !value) return null;
      this.#bodies.push(...this.#decoder.push(value));
    }
  }

  /** Finishes the writing side once everything queued is written. */
  end(): void {
    this.#ending = true;
    if (!this.#flushing) void this.#flush();
  }

  close(): void {
    this.#writer.close().catch(() => undefined);
    this.#reader.cancel().catch(() => undefined);
  }
}

function concatFrames(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export class MaculaWebClient {
  readonly url: string;
  readonly realm: string;
  readonly timeoutMs: number;
  info: AttachInfo | undefined;
  /** Resolves once the session is closed, by close() or because it was lost. */
  readonly closed: Promise<void>;
  /** Called when the session is lost (not after close()). */
  ondisconnect: ((err: Error) => void) | undefined;

  readonly #init: WebClientInit;
  #session: WebTransportSession | undefined;
  #out: FrameChannel | undefined;
  /** The credential chain sent in HELLO and HELLO_ACK (secured realms). */
  #credential: string[] | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Map<number, (m: WebMessage) => void>();
  readonly #served = new ServedProcedures<WebServeHandler>();
  readonly #publishErrorListeners = new Set<(err: PublishError) => void>();
  #publisher: ClientPublisher | undefined;
  #nextId = 1;
  #nextSid = 1;
  #closing = false;
  #isClosed = false;
  #resolveClosed!: () => void;

  /** Opens a session to the node's web gateway and attaches to its gateway. */
  static async connect(init: WebClientInit): Promise<MaculaWebClient> {
    const client = new MaculaWebClient(init);
    await client.open();
    return client;
  }

  constructor(init: WebClientInit) {
    this.#init = init;
    this.url = init.url.replace(/\/+$/, '');
    this.realm = init.realm ?? 'default';
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get connected(): boolean {
    return this.#session !== undefined && !this.#isClosed && !this.#closing;
  }

  async open(): Promise<AttachInfo> {
    if (this.#session) throw new ConfigError('this client is already connected');
    const WT = this.#init.WebTransport ?? (globalThis as { WebTransport?: WebTransportClass }).WebTransport;
    if (!WT) throw new ConfigError('no WebTransport class here: pass one as `WebTransport` (in Node: the one of @fails-components/webtransport)');
    const session = new WT(`${this.url}${SESSION_PATH}`, this.#init.transportOptions ?? {});
    this.#session = session;
    session.closed.then(
      () => this.#onClosed(),
      () => this.#onClosed(),
    );
    try {
      await withTimeout(session.ready, this.timeoutMs, `connecting to ${this.url}`).catch((err: unknown) => {
        throw new WebGatewayUnreachableError(this.url, { cause: err });
      });
      const { credential, key } = await this.#clientKey();
      this.#credential = credential;
      // Both streams are opened here, the node's too (see stream-roles.ts).
      const out = new FrameChannel(await session.createBidirectionalStream(), key ? STREAM_ROLE_CLIENT_PROOF : STREAM_ROLE_CLIENT);
      if (key) await withTimeout(this.#proveKey(out, key), this.timeoutMs, `proving the client key to ${this.url}`);
      this.#out = out;
      void this.#readResponses(out);
      const nodeStream = new FrameChannel(await session.createBidirectionalStream(), STREAM_ROLE_NODE);
      nodeStream.flush();
      void this.#serveNode(nodeStream);
      const hello: Msg = { t: HELLO.type, realm: this.realm, role: 'client', port: 0 };
      if (credential) hello.cred = credential;
      const helloDone = this.#request(hello);
      const attach: Msg = { t: GW_ATTACH.type };
      if (this.#init.software !== undefined) attach.software = this.#init.software;
      const [, info] = await Promise.all([helloDone, this.#request(attach)]);
      this.info = info as AttachInfo;
      this.#publisher = ClientPublisher.attached(
        this.info.limits,
        this.#init.maxPendingPublishBytes ?? DEFAULT_MAX_PENDING_PUBLISH_BYTES,
        (msg) => out.sendEncoded(msg),
        (err) => {
          for (const listener of this.#publishErrorListeners) listener(err);
        },
      );
      return this.info;
    } catch (err) {
      this.#shutdown();
      throw err;
    }
  }

  /** The credential chain for HELLO and the key to prove, from `credential` and `identity`. */
  async #clientKey(): Promise<{ credential: string[] | undefined; key: SigningKey | undefined }> {
    const given = this.#init.credential;
    let credential = typeof given === 'string' ? undefined : given && [...given];
    let identity = this.#init.identity;
    if (typeof given === 'string') {
      const creds = parseCreds(given);
      credential = creds.credential;
      if (!identity && creds.privateKey) identity = { privateKey: creds.privateKey };
    }
    return { credential, key: identity && (await signingKey(identity)) };
  }

  /** Answers the node's challenge on the request stream (../key-proof.ts) and waits for its verdict. */
  async #proveKey(out: FrameChannel, key: SigningKey): Promise<void> {
    out.flush();
    const challenge = await out.readBytes(CHALLENGE_MESSAGE_BYTES);
    if (!challenge) throw new ConnectionClosedError(`the web gateway at ${this.url} closed the session before its key-proof challenge`);
    out.sendRaw(await proveKey(key, challenge.subarray(0, CHALLENGE_BYTES), challenge.subarray(CHALLENGE_BYTES), this.realm));
    const status = await out.readBytes(1);
    if (status?.[0] !== PROOF_ACCEPTED) throw new WebKeyProofError(this.url, this.realm);
  }


  /**
   * Publishes `data` (any CBOR value but undefined) to `topic` with optional
   * `headers`, one-way, as MaculaClient does (see gateway/client-publisher.ts):
   * resolves once the message is handed to the session; when the node's
   * window of unacknowledged publishes is full it waits for room. A failure
   * at the node (permission, limits) arrives later: passed to the
   * 'publish-error' listeners (a PublishError naming the publish by number
   * and topic), counted in publishStats().failed, and the next flush()
   * rejects with it.
   * @throws InvalidTopicError, InvalidPayloadError, InvalidHeadersError (nothing sent), QueueFullError (a window's worth of calls already waits), ConnectionClosedError
   */
  publish(topic: string, data: unknown, options?: { headers?: Headers }): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined || this.#closing) return Promise.reject(StoppedError.of('this client'));
    return publisher.publish(topic, data, options?.headers); // no options object made per publish
  }

  /**
   * Resolves once the node has handled every publish made before this call.
   * Rejects with the first PublishError since the previous flush, or
   * TimeoutError after `timeoutMs` (default: the client's timeoutMs).
   */
  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined) return Promise.reject(StoppedError.of('this client'));
    return publisher.flush(options.timeoutMs ?? this.timeoutMs);
  }

  /** Publishes and waits for the node's answer: how many subscriber nodes and local subscriptions it reached. A round trip per message. */
  async publishAndWait(topic: string, data: unknown, options: { timeoutMs?: number; headers?: Headers } = {}): Promise<{ nodes: number; local: number }> {
    const h = checkHeaders(options.headers);
    return (await this.#request({ t: GW_PUB.type, tp: topic, d: data, ...(h !== undefined && { h }) }, options.timeoutMs)) as { nodes: number; local: number };
  }

  /** Counts of one-way publishes: sent, acknowledged, failed, pending and the window. */
  publishStats(): PublishStats {
    return this.#publisher?.stats() ?? { ...NO_PUBLISH_STATS };
  }

  /** Listens for failures of one-way publishes (PublishError), as MaculaClient's 'publish-error' event. */
  on(event: 'publish-error', listener: (err: PublishError) => void): this {
    if (event !== 'publish-error') throw new ConfigError(`unknown event "${String(event)}": this client emits 'publish-error'`);
    this.#publishErrorListeners.add(listener);
    return this;
  }

  off(event: 'publish-error', listener: (err: PublishError) => void): this {
    if (event === 'publish-error') this.#publishErrorListeners.delete(listener);
    return this;
  }

  /**
   * Subscribes to `pattern`. With `onMessage`, it runs for each message;
   * without, read the subscription as an async iterator (`for await`).
   */
  async subscribe(pattern: string, onMessage?: (msg: WebMessage) => unknown): Promise<WebSubscription> {
    const sid = this.#nextSid++;
    const buffer: WebMessage[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    let dropped = 0;
    this.#subs.set(sid, (m) => {
      if (onMessage) {
        try {
          onMessage(m);
        } catch {
          // a failing callback does not end the subscription
        }
        return;
      }
      if (buffer.length >= DEFAULT_SUBSCRIPTION_BUFFER) {
        buffer.shift();
        dropped++;
      }
      buffer.push(m);
      wake?.();
    });
    try {
      await this.#request({ t: GW_SUB.type, pattern, sid });
    } catch (err) {
      this.#subs.delete(sid);
      throw err;
    }
    const end = (): void => {
      ended = true;
      wake?.();
    };
    void this.closed.then(end);
    const client = this;
    return {
      sid,
      pattern,
      get dropped() {
        return dropped;
      },
      async unsubscribe() {
        end();
        if (!client.#subs.delete(sid) || !client.connected) return;
        await client.#request({ t: GW_UNSUB.type, sid });
      },
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = buffer.shift();
          if (next) {
            yield next;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    };
  }

  async call(procedure: string, args?: unknown, options: { timeoutMs?: number; headers?: Headers } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const h = checkHeaders(options.headers);
    const msg: Msg = { t: GW_CALL.type, p: procedure, timeoutMs, ...(h !== undefined && { h }) };
    if (args !== undefined) msg.a = args;
    return this.#request(msg, timeoutMs + CALL_MARGIN_MS);
  }

  async serve(procedure: string, handler: WebServeHandler, options: { timeoutMs?: number } = {}): Promise<{ procedure: string; unserve(): Promise<void> }> {
    await this.#served.serve(procedure, handler, () => this.#request({ t: GW_SERVE.type, p: procedure, ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) }));
    return {
      procedure,
      unserve: async () => {
        if (this.#served.remove(procedure, handler) && this.connected) await this.#request({ t: GW_SERVE.type, p: procedure, off: true });
      },
    };
  }

  async lookup(name: string, options: { fresh?: boolean } = {}): Promise<unknown[]> {
    return (await this.#request({ t: GW_LOOKUP.type, name, ...(options.fresh && { fresh: true }) })) as unknown[];
  }

  async stats(): Promise<Record<string, unknown>> {
    return (await this.#request({ t: GW_STATS.type })) as Record<string, unknown>;
  }

  async peers(): Promise<Record<string, unknown>> {
    return (await this.#request({ t: GW_PEERS.type })) as Record<string, unknown>;
  }

  /** Round trip to the node through the gateway (PING/PONG), in ms. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.#request({ t: PING.type });
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    if (this.#closing) return this.closed;
    this.#closing = true;
    if (this.#served.size > 0 && !this.#isClosed) {
      const procedures = this.#served.removeAll();
      await Promise.allSettled(procedures.map((p) => this.#request({ t: GW_SERVE.type, p, off: true }, 3000, true)));
    }
    // Ending the request stream asks the node to close the session: closing it from
    // this side while the node still writes makes node's HTTP/2 client loop (Node 20).
    if (!this.#isClosed && this.#out) {
      this.#out.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.closed, new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    this.#shutdown();
    return this.closed;
  }

  #shutdown(): void {
    if (!this.#isClosed) {
      this.#out?.close();
      try {
        this.#session?.close({ closeCode: 0, reason: 'client closed' });
      } catch {
        // already closed
      }
    }
    this.#onClosed();
  }

  #request(msg: Msg, timeoutMs: number = this.timeoutMs, whileClosing = false): Promise<unknown> {
    const out = this.#out;
    if (!out || (this.#closing && !whileClosing)) return Promise.reject(StoppedError.of('this client'));
    if (this.#isClosed) return Promise.reject(new ConnectionClosedError(`lost the session to ${this.url}`));
    const id = this.#nextId;
    this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve: (m) => resolve(m.r), reject, timer: undefined };
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new TimeoutError(`the request to ${this.url}`, timeoutMs));
        }, timeoutMs);
      }
      this.#pending.set(id, pending);
      try {
        out.send({ ...msg, id });
      } catch (err) {
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        reject(err);
      }
    });
  }

  async #readResponses(out: FrameChannel): Promise<void> {
    try {
      for (;;) {
        const msg = await out.read();
        if (msg === null) break;
        const pending = msg.id === undefined ? undefined : this.#pending.get(msg.id);
        if (!pending) continue;
        this.#pending.delete(msg.id!);
        clearTimeout(pending.timer);
        if (msg.t === ERROR.type) pending.reject(new RemoteError(String(msg.code), String(msg.message)));
        else pending.resolve(msg);
      }
    } catch {
      // a broken stream ends the session below
    }
    this.#shutdown();
  }

  /** The node's request stream: its HELLO, then GW_MSG (one-way) and INVOKE (answered). */
  async #serveNode(ch: FrameChannel): Promise<void> {
    try {
      const hello = await ch.read();
      if (hello === null) return;
      if (hello.t !== HELLO.type) throw new ProtocolError('unexpected_message', 'the node did not open its stream with HELLO');
      // In a secured realm the node admits its answer as it admits a HELLO: the credential goes in both.
      const ack: Msg = { t: HELLO_ACK.type, id: hello.id, realm: this.realm, role: 'client', port: 0 };
      if (this.#credential) ack.cred = this.#credential;
      ch.send(ack);
      for (;;) {
        const msg = await ch.read();
        if (msg === null) return;
        if (msg.t === GW_MSG.type) {
          this.#onMsg(msg);
        } else if (msg.t === GW_ACK.type) {
          this.#publisher?.acknowledged(msg.n as number);
        } else if (msg.t === GW_NACK.type) {
          this.#publisher?.failed(msg.n as number, String(msg.code), String(msg.message));
        } else if (msg.t === INVOKE.type && msg.id !== undefined) {
          void this.#invoke(ch, msg);
        } else if (msg.t === PING.type && msg.id !== undefined) {
          ch.send({ t: 4, id: msg.id });
        } else if (msg.id !== undefined) {
          ch.send({ t: ERROR.type, id: msg.id, ...toWire(new UnsupportedMessageError(msg.t, 'this client')) });
        }
      }
    } catch {
      ch.close();
    }
  }

  /** GW_MSG: one message, or a run of k (`d` their payloads, numbered s … s + k - 1; see wire/run.ts). */
  #onMsg(msg: Msg): void {
    const deliver = this.#subs.get(msg.sid as number);
    if (deliver === undefined) return;
    const topic = msg.tp as string;
    const publisher = msg.pub as string | undefined;
    const seq = msg.s as number | undefined;
    const origin = msg.o as string | undefined;
    const k = msg.k;
    if (typeof k !== 'number') {
      deliver({ topic, data: msg.d, headers: msg.h as Headers | undefined, publisher, seq, origin });
      return;
    }
    // The run's shape, by the rule a node checks it with (wire/run.ts).
    const wrong = GW_MSG.check?.(msg as Message);
    if (wrong !== undefined) throw new ProtocolError('invalid_message', `GW_MSG: ${wrong}`);
    const data = msg.d as readonly unknown[];
    for (let i = 0; i < k; i++) deliver({ topic, data: data[i], headers: undefined, publisher, seq: seq === undefined ? undefined : seq + i, origin });
  }

  async #invoke(ch: FrameChannel, msg: Msg): Promise<void> {
    const procedure = msg.p as string;
    const handler = this.#served.get(procedure);
    try {
      if (!handler) throw new RemoteError('MACULA_ERR_NO_SUCH_PROCEDURE', `this client does not serve "${procedure}"`);
      const result = await runServed(handler, { p: procedure, a: msg.a, ...(typeof msg.d === 'number' && { d: msg.d }), ...(msg.h !== undefined && { h: msg.h as Headers }) });
      ch.send({ ...result, id: msg.id });
    } catch (err) {
      try {
        ch.send({ t: ERROR.type, id: msg.id, ...toWire(err) });
      } catch {
        // the session is gone
      }
    }
  }


  #onClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const err = new ConnectionClosedError(`lost the session to ${this.url}`);
    this.#publisher?.close(this.#closing ? StoppedError.of('this client') : err);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (!this.#closing) this.ondisconnect?.(err);
    this.#resolveClosed();
  }
}

/** Connects to a node's web gateway (see MaculaWebClient.connect). */
export const connect = (init: WebClientInit): Promise<MaculaWebClient> => MaculaWebClient.connect(init);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms)))]).finally(() => clearTimeout(timer));
}
