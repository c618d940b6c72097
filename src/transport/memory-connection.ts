/**
 * Connections and streams of the in-process memory transport. Built to be
 * cheap: no timers per stream, lazily allocated buffers and queues, and an
 * idle timer per connection only when the connection can idle out at all.
 *
 * Semantics follow QUIC where the layers above can observe them: the peer sees
 * a stream once its opener writes or finishes; a peer may have at most
 * `maxStreams` streams open towards a connection (openStream waits for a free
 * slot); a reader that falls behind by more than the buffer limit makes the
 * writer's write() wait; reset ends both directions on both sides.
 *
 * write() copies the bytes before it returns, so a writer may reuse its buffer
 * at once and the reader owns every chunk it receives.
 */
import { ConnectionClosedError, TransportError } from '../util/errors.js';
import { AcceptQueue } from './accept-queue.js';
import type { Connection, Direction, PeerAddress, Stream, TransportStats } from './types.js';

/** What a connection needs from the transport that owns it. */
export interface MemoryConnectionOwner {
  readonly stats: Required<TransportStats>;
  readonly maxStreams: number;
  readonly streamBufferBytes: number;
  connectionClosed(conn: MemoryConnection): void;
}

/** Shared by both ends of a connection that has an idle timeout: any traffic on either end counts. */
class IdleClock {
  readonly #ms: number;
  readonly #onIdle: () => void;
  #last = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms;
    this.#onIdle = onIdle;
    this.#arm(ms);
  }

  touch(): void {
    this.#last = Date.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    // Re-armed only when it fires, so traffic costs one Date.now() and no timer churn.
    this.#timer = setTimeout(() => {
      const quietFor = Date.now() - this.#last;
      if (quietFor >= this.#ms) this.#onIdle();
      else this.#arm(this.#ms - quietFor);
    }, ms);
    this.#timer.unref();
  }
}

export class MemoryConnection implements Connection {
  peer!: MemoryConnection;
  readonly remoteNodeId: Uint8Array;
  readonly remoteNodeIdHex: string;
  readonly remoteAddress: PeerAddress;
  readonly direction: Direction;
  readonly owner: MemoryConnectionOwner;

  #isClosed = false;
  #closedPromise: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #incoming: AcceptQueue<MemoryStream> | undefined;
  /** Halves of streams on this side not yet finished in both directions. */
  #streams: Set<MemoryStream> | undefined;
  #nextIndex = 0;
  /** Streams the peer opened towards this side and still holds open (QUIC stream credit). */
  #inboundLive = 0;
  #creditWaiters: Array<() => void> | undefined;
  idle: IdleClock | undefined;

  constructor(owner: MemoryConnectionOwner, remoteNodeId: Uint8Array, remoteNodeIdHex: string, remoteAddress: PeerAddress, direction: Direction) {
    this.owner = owner;
    this.remoteNodeId = remoteNodeId;
    this.remoteNodeIdHex = remoteNodeIdHex;
    this.remoteAddress = remoteAddress;
    this.direction = direction;
  }

  /** Links two ends; `idleMs` > 0 gives the pair an idle timeout. */
  static pair(a: MemoryConnection, b: MemoryConnection, idleMs: number): void {
    a.peer = b;
    b.peer = a;
    if (idleMs > 0) a.idle = b.idle = new IdleClock(idleMs, () => a.close());
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  get closed(): Promise<void> {
    // Created on demand: most of a large simulation's connections are never awaited.
    this.#closedPromise ??= this.#isClosed ? Promise.resolve() : new Promise((resolve) => (this.#resolveClosed = resolve));
    return this.#closedPromise;
  }

  async openStream(): Promise<Stream> {
    const peer = this.peer;
    while (!this.#isClosed && peer.#inboundLive >= peer.owner.maxStreams) {
      await new Promise<void>((resolve) => (peer.#creditWaiters ??= []).push(resolve));
    }
    if (this.#isClosed) throw this.closedError();
    peer.#inboundLive++;
    const id = this.#nextIndex++ * 4 + (this.direction === 'outbound' ? 0 : 1);
    const local = new MemoryStream(id, this, true);
    const remote = new MemoryStream(id, peer, false);
    local.peer = remote;
    remote.peer = local;
    (this.#streams ??= new Set()).add(local);
    (peer.#streams ??= new Set()).add(remote);
    this.idle?.touch();
    this.owner.stats.streamsOpened++;
    return local;
  }

  acceptStream(): Promise<Stream | null> {
    if (this.#isClosed && !this.#incoming) return Promise.resolve(null);
    return (this.#incoming ??= new AcceptQueue(this.owner.maxStreams)).shift();
  }

  rttMs(): number {
    return 0;
  }

  close(): void {
    if (this.#isClosed) return;
    this.#shutdown();
    this.peer.#shutdown();
  }

  closedError(): ConnectionClosedError {
    return new ConnectionClosedError(`the connection to node ${this.remoteNodeIdHex.slice(0, 16)}… is closed; dial it again`);
  }

  /** The opener's first write or finish makes the stream visible here. False when refused. */
  announce(stream: MemoryStream): boolean {
    if (this.#isClosed) return false;
    if (!(this.#incoming ??= new AcceptQueue(this.owner.maxStreams)).push(stream)) {
      this.owner.stats.streamsRefused++;
      return false;
    }
    this.owner.stats.streamsAccepted++;
    return true;
  }

  /** Both halves of a stream this side opened are done: forget them and give the credit back. */
  release(opened: MemoryStream, accepted: MemoryStream): void {
    const acceptor = this.peer;
    this.#streams?.delete(opened);
    acceptor.#streams?.delete(accepted);
    acceptor.#inboundLive--;
    acceptor.#creditWaiters?.shift()?.();
  }

  #shutdown(): void {
    this.#isClosed = true;
    this.idle?.stop();
    this.#incoming?.close();
    const streams = this.#streams;
    this.#streams = undefined;
    if (streams) for (const s of streams) s.connectionGone();
    const waiters = this.#creditWaiters;
    this.#creditWaiters = undefined;
    if (waiters) for (const w of waiters) w();
    this.owner.connectionClosed(this);
    this.#resolveClosed?.();
  }
}

type Waiter = { resolve: () => void; reject: (err: Error) => void };

export class MemoryStream implements Stream {
  readonly id: number;
  peer!: MemoryStream;
  readonly #conn: MemoryConnection;
  readonly #isOpener: boolean;
  #chunks: Uint8Array[] | undefined;
  #buffered = 0;
  #remoteFinished = false;
  #readEnded = false;
  #writeEnded = false;
  #resetBy: 'local' | 'remote' | 'connection' | undefined;
  #announced: boolean;
  #released = false;
  #reader: ((chunk: Uint8Array | null) => void) | undefined;
  /** The peer's writes waiting for this side's reader to drain the buffer. */
  #blockedWriters: Waiter[] | undefined;

  constructor(id: number, conn: MemoryConnection, isOpener: boolean) {
    this.id = id;
    this.#conn = conn;
    this.#isOpener = isOpener;
    this.#announced = !isOpener;
  }

  read(): Promise<Uint8Array | null> {
    const chunks = this.#chunks;
    if (chunks !== undefined && chunks.length > 0) {
      const chunk = chunks.shift()!;
      this.#buffered -= chunk.byteLength;
      if (this.#blockedWriters !== undefined && this.#buffered <= this.#conn.owner.streamBufferBytes) this.#wakeWriters();
      return Promise.resolve(chunk);
    }
    if (this.#readEnded) return Promise.resolve(null);
    if (this.#reader) return Promise.reject(new TransportError('read() called while another read() is pending on the stream'));
    if (this.#remoteFinished) {
      this.#readEnded = true;
      this.#maybeRelease();
      return Promise.resolve(null);
    }
    return new Promise((resolve) => (this.#reader = resolve));
  }

  write(data: Uint8Array): Promise<void> {
    const refusal = this.#writeRefusal();
    if (refusal) return Promise.reject(refusal);
    if (data.byteLength === 0) return Promise.resolve();
    this.#conn.idle?.touch();
    if (!this.#announce()) return Promise.reject(streamResetError('the peer refused the stream: too many streams waiting to be accepted'));
    const peer = this.peer;
    // Not data.slice(): on a Buffer that is a view, not a copy.
    peer.#deliver(new Uint8Array(data));
    if (peer.#buffered <= peer.#conn.owner.streamBufferBytes) return Promise.resolve();
    return new Promise((resolve, reject) => (peer.#blockedWriters ??= []).push({ resolve, reject }));
  }

  finishWrite(): Promise<void> {
    if (this.#writeEnded) return Promise.resolve();
    if (this.#conn.isClosed) return Promise.reject(this.#conn.closedError());
    this.#writeEnded = true;
    this.#conn.idle?.touch();
    if (this.#announce()) {
      const peer = this.peer;
      peer.#remoteFinished = true;
      if (peer.#reader !== undefined) {
        const reader = peer.#reader;
        peer.#reader = undefined;
        peer.#readEnded = true;
        reader(null);
        peer.#maybeRelease();
      }
    }
    this.#maybeRelease();
    return Promise.resolve();
  }

  reset(): void {
    if (this.#resetBy !== undefined) return;
    this.#conn.idle?.touch();
    this.#end('local');
    this.peer.#end('remote');
    this.#maybeRelease();
  }

  /** The connection closed: pending and later reads end, writes fail. */
  connectionGone(): void {
    if (this.#resetBy === undefined) this.#end('connection');
    this.#released = true;
  }

  #writeRefusal(): Error | undefined {
    if (this.#conn.isClosed) return this.#conn.closedError();
    if (this.#resetBy === 'local') return streamResetError('the stream was reset by this side');
    if (this.#resetBy === 'remote') return streamResetError('the peer reset the stream');
    if (this.#writeEnded) return new TransportError('cannot write after finishWrite(): the stream is closed for writing');
    return undefined;
  }

  #announce(): boolean {
    if (this.#announced) return true;
    this.#announced = true;
    if (this.peer.#conn.announce(this.peer)) return true;
    this.reset();
    return false;
  }

  #deliver(chunk: Uint8Array): void {
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      reader(chunk);
      return;
    }
    (this.#chunks ??= []).push(chunk);
    this.#buffered += chunk.byteLength;
  }

  #end(by: 'local' | 'remote' | 'connection'): void {
    this.#resetBy = by;
    this.#readEnded = true;
    this.#writeEnded = true;
    this.#chunks = undefined;
    this.#buffered = 0;
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.(null);
    const writers = this.#blockedWriters;
    this.#blockedWriters = undefined;
    if (writers) {
      const err = by === 'connection' ? this.#conn.closedError() : streamResetError(by === 'local' ? 'the peer reset the stream' : 'the stream was reset by this side');
      for (const w of writers) w.reject(err);
    }
  }

  #wakeWriters(): void {
    const writers = this.#blockedWriters!;
    this.#blockedWriters = undefined;
    for (const w of writers) w.resolve();
  }

  #maybeRelease(): void {
    const peer = this.peer;
    if (this.#released || !this.#readEnded || !this.#writeEnded || !peer.#readEnded || !peer.#writeEnded) return;
    this.#released = peer.#released = true;
    const opener = this.#isOpener ? this : peer;
    opener.#conn.release(opener, opener.peer);
  }
}

function streamResetError(message: string): TransportError {
  return new TransportError(message, { code: 'MACULA_ERR_STREAM_RESET' });
}
