/**
 * A connection through a relay, behind the transport's Connection and
 * Stream interfaces: the layers above (pool, session, DHT, RPC, pub/sub) see
 * an ordinary connection to the remote node ID, which comes from the Noise
 * handshake (secure-channel.ts), never from the relay.
 *
 * Streams are multiplexed inside the one encrypted channel. Each channel
 * message is `kind (u8) ‖ stream id (u32 BE) ‖ payload`: DATA, FIN
 * (half-close), RESET, CLOSE (the whole connection). The dialing side uses
 * odd stream ids, the other even ones; a stream exists for the peer once
 * its first DATA or FIN arrives, as with QUIC. A stream whose reader lags
 * by more than `maxBufferedBytes` is reset (the session reads at once, so
 * only a misbehaving peer gets there), and at most `maxStreams` streams
 * opened by the peer wait for acceptStream(); more are reset.
 */
import { AcceptQueue } from '../transport/accept-queue.js';
import type { Connection, Direction, PeerAddress, Stream } from '../transport/types.js';
import { ConnectionClosedError } from '../util/errors.js';
import { MAX_CHANNEL_PLAINTEXT, type SecureChannel } from './secure-channel.js';

const DATA = 0;
const FIN = 1;
const RESET = 2;
const CLOSE = 3;
const HEADER = 5;
const MAX_CHUNK = MAX_CHANNEL_PLAINTEXT - HEADER;

export const DEFAULT_RELAYED_MAX_STREAMS = 64;
export const DEFAULT_RELAYED_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface RelayedConnectionOptions {
  /** The address the connection is known by (the peer's relayed address). */
  remoteAddress: PeerAddress;
  direction: Direction;
  maxStreams?: number;
  maxBufferedBytes?: number;
}

export class RelayedConnection implements Connection {
  readonly remoteNodeId: Uint8Array;
  readonly remoteNodeIdHex: string;
  readonly remoteAddress: PeerAddress;
  readonly direction: Direction;
  readonly closed: Promise<void>;
  /** Always true: how the pool and the node tell a relayed connection from a direct one. */
  readonly relayed = true;
  readonly #channel: SecureChannel;
  readonly #streams = new Map<number, RelayedStream>();
  readonly #incoming: AcceptQueue<Stream>;
  readonly #maxBuffered: number;
  #nextId: number;
  #closed = false;
  #resolveClosed!: () => void;

  constructor(channel: SecureChannel, options: RelayedConnectionOptions) {
    this.#channel = channel;
    this.remoteNodeId = channel.remoteNodeId;
    this.remoteNodeIdHex = channel.remoteNodeIdHex;
    this.remoteAddress = options.remoteAddress;
    this.direction = options.direction;
    this.#nextId = options.direction === 'outbound' ? 1 : 2;
    this.#incoming = new AcceptQueue(options.maxStreams ?? DEFAULT_RELAYED_MAX_STREAMS);
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_RELAYED_MAX_BUFFERED_BYTES;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    void this.#readLoop();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  async openStream(): Promise<Stream> {
    if (this.#closed) throw new ConnectionClosedError('the relayed connection is closed');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new RelayedStream(id, this);
    this.#streams.set(id, stream);
    return stream;
  }

  acceptStream(): Promise<Stream | null> {
    return this.#incoming.shift();
  }

  rttMs(): number {
    return 0;
  }

  close(): void {
    if (this.#closed) return;
    void this.send(CLOSE, 0).catch(() => undefined);
    this.#shut();
  }

  /** Sends one mux message (payload ≤ the chunk size). */
  send(kind: number, id: number, payload?: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError('the relayed connection is closed'));
    const msg = new Uint8Array(HEADER + (payload?.length ?? 0));
    msg[0] = kind;
    new DataView(msg.buffer).setUint32(1, id);
    if (payload) msg.set(payload, HEADER);
    return this.#channel.send(msg);
  }

  forget(id: number): void {
    this.#streams.delete(id);
  }

  get maxBuffered(): number {
    return this.#maxBuffered;
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const msg = await this.#channel.read();
        if (msg === null || msg.length < HEADER) break;
        const kind = msg[0]!;
        if (kind === CLOSE) break;
        const id = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(1);
        let stream = this.#streams.get(id);
        if (!stream) {
          // Only the peer's own ids (the other parity) open a stream; anything else is a late message for one that ended.
          const peers = this.direction === 'outbound' ? id % 2 === 0 : id % 2 === 1;
          if (!peers || kind === RESET || id === 0) continue;
          stream = new RelayedStream(id, this);
          if (!this.#incoming.push(stream)) {
            void this.send(RESET, id).catch(() => undefined);
            continue;
          }
          this.#streams.set(id, stream);
        }
        if (kind === DATA) stream.received(msg.subarray(HEADER));
        else if (kind === FIN) stream.receivedFin();
        else if (kind === RESET) stream.receivedReset();
      }
    } catch {
      // a message that failed authentication: the channel is not to be trusted any more
    }
    this.#shut();
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
    for (const s of this.#streams.values()) s.receivedReset();
    this.#streams.clear();
    this.#incoming.close();
    this.#resolveClosed();
  }
}

class RelayedStream implements Stream {
  readonly id: number;
  readonly #conn: RelayedConnection;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #waiter: ((chunk: Uint8Array | null) => void) | undefined;
  #remoteDone = false;
  #localDone = false;
  #reset = false;

  constructor(id: number, conn: RelayedConnection) {
    this.id = id;
    this.#conn = conn;
  }

  read(): Promise<Uint8Array | null> {
    const chunk = this.#chunks.shift();
    if (chunk) {
      this.#buffered -= chunk.length;
      return Promise.resolve(chunk);
    }
    if (this.#remoteDone || this.#reset) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#reset) throw new ConnectionClosedError('the relayed stream was reset');
    if (this.#localDone) throw new ConnectionClosedError('the relayed stream was finished; no more writes');
    for (let off = 0; off < data.length; off += MAX_CHUNK) {
      await this.#conn.send(DATA, this.id, data.subarray(off, Math.min(data.length, off + MAX_CHUNK)));
    }
  }

  async finishWrite(): Promise<void> {
    if (this.#localDone || this.#reset) return;
    this.#localDone = true;
    await this.#conn.send(FIN, this.id);
    this.#maybeForget();
  }

  reset(): void {
    if (this.#reset) return;
    void this.#conn.send(RESET, this.id).catch(() => undefined);
    this.receivedReset();
  }

  received(chunk: Uint8Array): void {
    if (this.#reset || this.#remoteDone) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter(chunk);
      return;
    }
    if (this.#buffered + chunk.length > this.#conn.maxBuffered) {
      this.reset();
      return;
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  receivedFin(): void {
    this.#remoteDone = true;
    if (this.#chunks.length === 0) this.#wake();
    this.#maybeForget();
  }

  receivedReset(): void {
    this.#reset = true;
    this.#localDone = true;
    this.#chunks = [];
    this.#buffered = 0;
    this.#wake();
    this.#conn.forget(this.id);
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
  }

  #maybeForget(): void {
    if (this.#remoteDone && this.#localDone) this.#conn.forget(this.id);
  }
}
