/**
 * One QUIC connection and its streams, wrapped over the quinn binding so that
 * the binding's failure modes never escape as unhandled rejections: reads end
 * with null, writes reject with typed errors, `closed` only ever resolves.
 */
import { toHex } from '../identity/identity.js';
import { ConnectionClosedError, TransportError } from '../util/errors.js';
import { AcceptQueue } from './accept-queue.js';
import { ignoreResult, type QuinnConnection, type QuinnStream } from './quic-binding.js';
import type { Connection, Direction, PeerAddress, Stream, TransportStats } from './types.js';

/** What a connection needs from the transport that owns it. */
export interface QuicConnectionOwner {
  readonly stats: Required<TransportStats>;
  /** Largest read a stream grows to while data keeps filling its reads. */
  readonly readChunkBytes: number;
  readonly maxPendingStreams: number;
  connectionClosed(conn: QuicConnection): void;
}

/** The read size of an idle stream (and the smallest a stream shrinks to). */
export const MIN_READ_CHUNK_BYTES = 4096;
/** A chunk filling less than 1/COPY_BELOW_FRACTION of its read buffer is copied out of it. */
const COPY_BELOW_FRACTION = 4;

/** quinn messages that mean the whole connection is gone, not just one stream. */
const CONNECTION_GONE = /^(connection lost|closed$|closed by peer|aborted by peer|reset by peer|timed out)/;

export class QuicConnection implements Connection {
  readonly remoteNodeId: Uint8Array;
  readonly remoteNodeIdHex: string;
  readonly remoteAddress: PeerAddress;
  readonly direction: Direction;
  readonly closed: Promise<void>;

  readonly #raw: QuinnConnection;
  readonly #owner: QuicConnectionOwner;
  readonly #incoming: AcceptQueue<QuicStream>;
  /** QUIC stream IDs: the low bit says which side opened the stream (0 = the dialer). */
  readonly #localOpenerBit: number;
  #isClosed = false;
  #resolveClosed!: () => void;

  constructor(raw: QuinnConnection, remoteAddress: PeerAddress, remoteNodeId: Uint8Array, direction: Direction, owner: QuicConnectionOwner) {
    this.#raw = raw;
    this.#owner = owner;
    this.remoteAddress = remoteAddress;
    this.remoteNodeId = remoteNodeId;
    this.remoteNodeIdHex = toHex(remoteNodeId);
    this.direction = direction;
    this.#localOpenerBit = direction === 'outbound' ? 0 : 1;
    this.#incoming = new AcceptQueue(owner.maxPendingStreams);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    const onGone = (): void => this.close();
    raw.closed().then(onGone, onGone);
    void this.#acceptLoop();
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  async openStream(): Promise<Stream> {
    if (this.#isClosed) throw this.closedError();
    let raw: QuinnStream;
    try {
      raw = await this.#raw.outboundStream();
    } catch (err) {
      this.close();
      throw this.closedError(err);
    }
    this.#owner.stats.streamsOpened++;
    return new QuicStream(raw, this, this.#localOpenerBit, this.#owner.readChunkBytes);
  }

  acceptStream(): Promise<Stream | null> {
    return this.#incoming.shift();
  }

  rttMs(): number {
    try {
      return this.#raw.rtt();
    } catch {
      return 0;
    }
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    ignoreResult(() => this.#raw.abort());
    for (const stream of this.#incoming.close()) stream.reset();
    this.#owner.connectionClosed(this);
    this.#resolveClosed();
  }

  /** Binding statistics (packets, frames, path) for diagnostics. */
  quicStats(): Record<string, number> {
    try {
      const s = this.#raw.stats();
      const out: Record<string, number> = {};
      for (const key in s) out[key] = Number(s[key]);
      return out;
    } catch {
      return {};
    }
  }

  closedError(cause?: unknown): ConnectionClosedError {
    const why = cause instanceof Error ? ` (${cause.message})` : '';
    return new ConnectionClosedError(
      `the connection to node ${this.remoteNodeIdHex.slice(0, 16)}… is closed${why}; dial it again`,
      cause === undefined ? undefined : { cause },
    );
  }

  async #acceptLoop(): Promise<void> {
    const peerOpenerBit = this.#localOpenerBit ^ 1;
    while (!this.#isClosed) {
      let raw: QuinnStream;
      try {
        raw = await this.#raw.inboundStream();
      } catch {
        // accept fails only when the connection itself is gone.
        this.close();
        return;
      }
      const stream = new QuicStream(raw, this, peerOpenerBit, this.#owner.readChunkBytes);
      if (this.#isClosed) {
        stream.reset();
        return;
      }
      if (!this.#incoming.push(stream)) {
        this.#owner.stats.streamsRefused++;
        stream.reset();
        continue;
      }
      this.#owner.stats.streamsAccepted++;
    }
  }
}

/**
 * One bidirectional QUIC stream. One read() at a time; writes may overlap and
 * are sent in call order. The bytes passed to write() must not be modified
 * until its promise resolves.
 */
export class QuicStream implements Stream {
  readonly id: number;
  readonly #raw: QuinnStream;
  readonly #conn: QuicConnection;
  readonly #maxChunkBytes: number;
  /** Size of the next read: grows while reads come back full, shrinks when they do not (see read()). */
  #chunkBytes = MIN_READ_CHUNK_BYTES;
  #readEnded = false;
  #writeEnded = false;
  #wasReset = false;
  /** Resolves the pending read; kept because the binding's stopRead() does not wake it. */
  #wakeReader: ((chunk: Uint8Array | null) => void) | undefined;
  /**
   * Settles when the last queued write has: overlapping binding writes on one
   * stream interleave their bytes, so each waits for the one before.
   */
  #writeTail: Promise<void> | undefined;

  constructor(raw: QuinnStream, conn: QuicConnection, openerBit: number, chunkBytes: number) {
    this.#raw = raw;
    this.#conn = conn;
    this.#maxChunkBytes = Math.max(MIN_READ_CHUNK_BYTES, chunkBytes);
    this.id = Number(raw.id()) * 4 + openerBit;
  }

  /**
   * The binding allocates the whole requested size for every read, holds it
   * while the read is pending, and hands back a view whose memory is that
   * allocation, not the bytes received. So an idle stream reads with a small
   * buffer, a stream whose reads come back full doubles it (up to
   * readChunkBytes) for throughput, and a chunk much smaller than its buffer
   * is copied out so that the buffer is not kept alive by a few bytes.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#readEnded) return Promise.resolve(null);
    if (this.#wakeReader) return Promise.reject(new TransportError('read() called while another read() is pending on the stream'));
    const size = this.#chunkBytes;
    return new Promise((resolve) => {
      this.#wakeReader = resolve;
      this.#raw.read(size).then(
        (chunk) => {
          if (this.#wakeReader !== resolve) return;
          this.#wakeReader = undefined;
          if (chunk === null) {
            this.#readEnded = true;
            resolve(null);
            return;
          }
          if (chunk.length === size) this.#chunkBytes = Math.min(size * 2, this.#maxChunkBytes);
          else if (chunk.length < size / 2) this.#chunkBytes = Math.max(size / 4, MIN_READ_CHUNK_BYTES);
          resolve(chunk.length * COPY_BELOW_FRACTION < size ? chunk.slice() : chunk);
        },
        () => {
          // Reset by the peer or connection gone: both end the byte stream for this reader.
          if (this.#wakeReader !== resolve) return;
          this.#wakeReader = undefined;
          this.#readEnded = true;
          resolve(null);
        },
      );
    });
  }

  write(data: Uint8Array): Promise<void> {
    const refusal = this.#writeRefusal();
    if (refusal) return Promise.reject(refusal);
    if (this.#writeEnded) return Promise.reject(new TransportError('cannot write after finishWrite(): the stream is closed for writing'));
    if (data.byteLength === 0) return Promise.resolve();
    return this.#enqueue(() => this.#raw.write(data));
  }

  finishWrite(): Promise<void> {
    if (this.#writeEnded) return Promise.resolve();
    this.#writeEnded = true;
    return this.#enqueue(() => this.#raw.finishWrite()).catch((err: unknown) => {
      // A peer that stopped reading no longer cares about our end of stream.
      if (err instanceof ConnectionClosedError) throw err;
    });
  }

  reset(): void {
    if (this.#wasReset) return;
    this.#wasReset = true;
    this.#writeEnded = true;
    this.#readEnded = true;
    ignoreResult(() => this.#raw.resetWrite());
    ignoreResult(() => this.#raw.stopRead());
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.(null);
  }

  /** Runs `op` after every earlier write; its failure is mapped to our error types. */
  #enqueue(op: () => Promise<void> | void): Promise<void> {
    const run = async (): Promise<void> => {
      const refusal = this.#writeRefusal();
      if (refusal) throw refusal;
      try {
        await op();
      } catch (err) {
        throw this.#writeError(err);
      }
    };
    const result = this.#writeTail === undefined ? run() : this.#writeTail.then(run);
    const tail = result.then(noop, noop);
    this.#writeTail = tail;
    void tail.then(() => {
      if (this.#writeTail === tail) this.#writeTail = undefined;
    });
    return result;
  }

  #writeRefusal(): Error | undefined {
    if (this.#wasReset) return streamResetError('the stream was reset by this side');
    if (this.#conn.isClosed) return this.#conn.closedError();
    return undefined;
  }

  #writeError(err: unknown): Error {
    const message = (err as Error)?.message ?? String(err);
    if (this.#conn.isClosed || CONNECTION_GONE.test(message)) return this.#conn.closedError(err);
    if (this.#wasReset) return streamResetError('the stream was reset by this side', err);
    return streamResetError(`the peer stopped the stream (${message})`, err);
  }
}

function noop(): void {}

export function streamResetError(message: string, cause?: unknown): TransportError {
  return new TransportError(message, { code: 'MACULA_ERR_STREAM_RESET', ...(cause === undefined ? {} : { cause }) });
}
