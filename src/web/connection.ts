/**
 * A WebTransport session (over HTTP/3, HTTP/2 or the WebSocket mapping of
 * @fails-components/webtransport) as a transport Connection: the node's
 * session layer, pool and light-client gateway take it as they take a QUIC
 * connection, so a browser is one more client of the one gateway.
 *
 * Browsers present no client certificate, so a session proves a client key
 * inside the session when it has one (key-proof.ts): its node ID is then
 * SHA-256 of that key, as on QUIC, and credential admission applies as it
 * does there. A session that proves no key gets a random 32-byte ID for its
 * lifetime. The ID names it in the gateway (the `origin` of what it
 * publishes and calls) and in the pool. Its connections are `clientOnly`: a
 * HELLO as a mesh node is refused by the session layer, so a browser can
 * never become a mesh contact.
 *
 * The client opens every stream, the node's own included (stream-roles.ts):
 * openStream() hands out the stream the client opened for the node.
 *
 * Bounded: streams the peer opens past `maxStreams`, and streams without a
 * known role, are refused (cancelled) and counted.
 */
import { randomBytes } from 'node:crypto';
import { nodeIdFromPublicKey, toHex, verifySignature } from '../identity/identity.js';
import { ConnectionClosedError } from '../util/errors.js';
import type { Connection, PeerAddress, Stream } from '../transport/types.js';
import { CHALLENGE_BYTES, PROOF_ACCEPTED, PROOF_BYTES, PROOF_REFUSED, proofMessage } from './key-proof.js';
import { NODE_STREAM_WAIT_MS, STREAM_ROLE_CLIENT, STREAM_ROLE_CLIENT_PROOF, STREAM_ROLE_NODE } from './stream-roles.js';

/** The parts of a WebTransport session (server or client side) used here; the W3C WebTransport shape. */
export interface WebTransportLike {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<unknown>;
  readonly incomingBidirectionalStreams: ReadableStream<BidiStreamLike>;
  createBidirectionalStream(): Promise<BidiStreamLike>;
  close(info?: { closeCode?: number; reason?: string }): void;
}

export interface BidiStreamLike {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

export interface WebConnectionInit {
  /** This node's ID and realm: what a key proof signs besides the challenge. */
  nodeId: Uint8Array;
  realm: string;
  /** Streams the peer may have open at once. */
  maxStreams: number;
  /** Called once for every stream refused: over maxStreams, or without a known role. */
  onStreamRefused?: (reason: 'max_streams' | 'bad_stream') => void;
}

/** How long a session refused for its key proof stays open for the refusal to reach the client. */
const REFUSAL_CLOSE_MS = 200;

let nextStreamId = 0;

/** One bidirectional WebTransport stream as a transport Stream. */
export class WebStream implements Stream {
  readonly id = nextStreamId++;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #done = false;
  #onEnd: (() => void) | undefined;
  /** Bytes read past the role byte, handed out by the next read(). */
  #head: Uint8Array | undefined;

  readonly #sessionClosed: () => boolean;

  /** `sessionClosed`: once it says so, nothing more is written (the package's HTTP/2 session loops on writes after its close). */
  constructor(bidi: BidiStreamLike, sessionClosed: () => boolean, onEnd?: () => void) {
    this.#reader = bidi.readable.getReader();
    this.#writer = bidi.writable.getWriter();
    this.#sessionClosed = sessionClosed;
    this.#onEnd = onEnd;
    this.#writer.closed.catch(() => undefined);
  }

  /** Reads the role byte the client opened the stream with (stream-roles.ts); undefined if the stream ended first. */
  async readRole(): Promise<number | undefined> {
    return (await this.readExact(1))?.[0];
  }

  /** The next `n` bytes (what follows is left for read()); undefined if the stream ended first. */
  async readExact(n: number): Promise<Uint8Array | undefined> {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      const chunk = await this.read();
      if (chunk === null) return undefined;
      parts.push(chunk);
      have += chunk.length;
    }
    const all = parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
    if (all.length > n) this.#head = all.subarray(n);
    return all.subarray(0, n);
  }

  async read(): Promise<Uint8Array | null> {
    const head = this.#head;
    if (head) {
      this.#head = undefined;
      return head;
    }
    if (this.#done) return null;
    try {
      const { value, done } = await this.#reader.read();
      if (done || value === undefined) return this.#end();
      return value;
    } catch {
      return this.#end();
    }
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#sessionClosed()) throw new ConnectionClosedError('the web session is closed');
    try {
      await this.#writer.write(data);
    } catch (err) {
      throw new ConnectionClosedError('the web session stream is closed', { cause: err });
    }
  }

  async finishWrite(): Promise<void> {
    if (this.#sessionClosed()) return;
    await this.#writer.close().catch(() => undefined);
  }

  reset(): void {
    this.#end();
    if (this.#sessionClosed()) return;
    this.#reader.cancel().catch(() => undefined);
    this.#writer.abort().catch(() => undefined);
  }

  /** Also runs `f` once the reading side ends (after the other callbacks). */
  onEnd(f: () => void): void {
    if (this.#done) return void f();
    const before = this.#onEnd;
    this.#onEnd = () => {
      before?.();
      f();
    };
  }

  #end(): null {
    this.#done = true;
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    onEnd?.();
    return null;
  }
}

/**
 * How a session named itself, once its request stream arrived: `anonymous`
 * (no key proof: a random ID), `proven` (ID = SHA-256 of the proved key),
 * `bad_key_proof` (a signature that does not verify for this session's
 * challenge: the session is closed), `no_stream` (the session ended, or
 * opened no request stream within NODE_STREAM_WAIT_MS: closed).
 */
export type WebIdentification = 'anonymous' | 'proven' | 'bad_key_proof' | 'no_stream';

export class WebConnection implements Connection {
  readonly remoteAddress: PeerAddress;
  readonly direction = 'inbound' as const;
  readonly clientOnly = true;
  readonly closed: Promise<void>;
  /** Which WebTransport mode carries the session ('http3', 'http2', 'websocket'). */
  readonly mode: string;
  readonly #session: WebTransportLike;
  readonly #init: WebConnectionInit;
  #remoteNodeId: Uint8Array;
  #remoteNodeIdHex: string;
  /** Resolves once the session's first request stream fixed its ID, or the session failed to name itself (WebIdentification). */
  readonly identified: Promise<WebIdentification>;
  #identify: ((how: WebIdentification) => void) | undefined;
  #requestStreamSeen = false;
  readonly #accepted: Stream[] = [];
  readonly #waiting: ((s: Stream | null) => void)[] = [];
  readonly #nodeStreams: Stream[] = [];
  readonly #nodeWaiting: ((s: Stream | null) => void)[] = [];
  #open = 0;
  #isClosed = false;
  #resolveClosed!: () => void;

  constructor(session: WebTransportLike, remoteAddress: PeerAddress, mode: string, init: WebConnectionInit) {
    this.#session = session;
    this.#init = init;
    this.mode = mode;
    this.remoteAddress = remoteAddress;
    this.#remoteNodeId = new Uint8Array(randomBytes(32));
    this.#remoteNodeIdHex = toHex(this.#remoteNodeId);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.identified = new Promise((resolve) => {
      const timer = setTimeout(() => this.#identified('no_stream'), NODE_STREAM_WAIT_MS);
      timer.unref();
      this.#identify = (how) => {
        clearTimeout(timer);
        this.#identify = undefined;
        resolve(how);
        if (how === 'no_stream') this.close();
        // As a refused HELLO: the refusal is read before the session ends.
        else if (how === 'bad_key_proof') setTimeout(() => this.close(), REFUSAL_CLOSE_MS).unref();
      };
    });
    session.closed.then(
      () => this.#onClosed(),
      () => this.#onClosed(),
    );
    void this.#acceptLoop();
  }

  /** SHA-256 of the key the session proved, else random; fixed once `identified` resolved. */
  get remoteNodeId(): Uint8Array {
    return this.#remoteNodeId;
  }

  get remoteNodeIdHex(): string {
    return this.#remoteNodeIdHex;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** The stream the client opened for the node's requests (waits up to NODE_STREAM_WAIT_MS for it). */
  async openStream(): Promise<Stream> {
    if (this.#isClosed) throw new ConnectionClosedError('the web session is closed');
    const ready = this.#nodeStreams.shift();
    if (ready) return ready;
    let timer: NodeJS.Timeout | undefined;
    let waiter!: (s: Stream | null) => void;
    const stream = await new Promise<Stream | null>((resolve) => {
      waiter = resolve;
      this.#nodeWaiting.push(resolve);
      timer = setTimeout(() => resolve(null), NODE_STREAM_WAIT_MS);
    });
    clearTimeout(timer);
    const i = this.#nodeWaiting.indexOf(waiter);
    if (i >= 0) this.#nodeWaiting.splice(i, 1);
    if (stream === null) throw new ConnectionClosedError(`the web client opened no stream for the node within ${NODE_STREAM_WAIT_MS} ms`);
    return stream;
  }

  acceptStream(): Promise<Stream | null> {
    const next = this.#accepted.shift();
    if (next) return Promise.resolve(next);
    if (this.#isClosed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  rttMs(): number {
    return 0;
  }

  close(): void {
    if (this.#isClosed) return;
    try {
      this.#session.close({ closeCode: 0, reason: 'closed by the node' });
    } catch {
      // already closing
    }
    this.#onClosed();
  }

  async #acceptLoop(): Promise<void> {
    const reader = this.#session.incomingBidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || value === undefined) break;
        if (this.#open >= this.#init.maxStreams) {
          this.#init.onStreamRefused?.('max_streams');
          value.readable.cancel().catch(() => undefined);
          value.writable.abort().catch(() => undefined);
          continue;
        }
        this.#open++;
        void this.#route(new WebStream(value, () => this.#isClosed, () => this.#open--));
      }
    } catch {
      // the session ended
    }
    this.#onClosed();
  }

  /** Hands a new stream to acceptStream() or openStream() by the role byte it starts with. */
  async #route(stream: WebStream): Promise<void> {
    const role = await stream.readRole();
    if (this.#isClosed) return stream.reset();
    if (role === STREAM_ROLE_CLIENT || role === STREAM_ROLE_CLIENT_PROOF) {
      // The session's first request stream decides its ID, which is fixed from then on: only it may prove a key.
      const first = !this.#requestStreamSeen;
      this.#requestStreamSeen = true;
      if (role === STREAM_ROLE_CLIENT_PROOF) {
        if (!first) {
          this.#init.onStreamRefused?.('bad_stream');
          return stream.reset();
        }
        if (!(await this.#proveKey(stream))) return;
      }
      if (first) this.#identified(role === STREAM_ROLE_CLIENT ? 'anonymous' : 'proven');
      // The client ending its request stream is its goodbye: the session closes from this side.
      stream.onEnd(() => this.close());
      const waiter = this.#waiting.shift();
      if (waiter) waiter(stream);
      else this.#accepted.push(stream);
    } else if (role === STREAM_ROLE_NODE) {
      const waiter = this.#nodeWaiting.shift();
      if (waiter) waiter(stream);
      else this.#nodeStreams.push(stream);
    } else {
      if (role !== undefined) this.#init.onStreamRefused?.('bad_stream');
      stream.reset();
    }
  }

  /**
   * Sends this session's challenge, checks the key proof that answers it
   * (key-proof.ts) and, when it verifies, takes SHA-256 of the key as the
   * session's node ID. The challenge lives only in this call: a proof made
   * for another session (or another node, or realm) does not verify here.
   */
  async #proveKey(stream: WebStream): Promise<boolean> {
    const challenge = new Uint8Array(randomBytes(CHALLENGE_BYTES));
    const sent = new Uint8Array(CHALLENGE_BYTES + this.#init.nodeId.length);
    sent.set(challenge);
    sent.set(this.#init.nodeId, CHALLENGE_BYTES);
    let proof: Uint8Array | undefined;
    try {
      await stream.write(sent);
      proof = await stream.readExact(PROOF_BYTES);
    } catch {
      proof = undefined;
    }
    if (proof === undefined || this.#isClosed) {
      this.#identified('no_stream');
      return false;
    }
    const publicKey = proof.slice(0, 32);
    if (!verifySignature(publicKey, proofMessage(challenge, this.#init.nodeId, this.#init.realm), proof.subarray(32))) {
      await stream.write(Uint8Array.of(PROOF_REFUSED)).catch(() => undefined);
      this.#identified('bad_key_proof');
      return false;
    }
    this.#remoteNodeId = nodeIdFromPublicKey(publicKey);
    this.#remoteNodeIdHex = toHex(this.#remoteNodeId);
    await stream.write(Uint8Array.of(PROOF_ACCEPTED)).catch(() => undefined);
    return true;
  }

  #identified(how: WebIdentification): void {
    this.#identify?.(how);
  }

  #onClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#identified('no_stream');
    for (const w of this.#waiting.splice(0)) w(null);
    for (const w of this.#nodeWaiting.splice(0)) w(null);
    for (const s of this.#accepted.splice(0)) s.reset();
    for (const s of this.#nodeStreams.splice(0)) s.reset();
    this.#resolveClosed();
  }
}

/** `host:port` as the package reports a peer (IPv6 without brackets) to an address. */
export function parsePeerAddress(text: string | undefined): PeerAddress {
  const s = text ?? '';
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  const host = i > 0 ? s.slice(0, i).replace(/^\[|\]$/g, '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1') : 'unknown';
  return { host, port: Number.isInteger(port) ? port : 0 };
}
