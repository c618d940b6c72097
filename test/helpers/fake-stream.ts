/**
 * An in-memory `Stream` pair for unit tests of code that sits on top of a
 * transport stream (FramedStream and friends).
 *
 * What a write delivers to the peer is a copy, optionally split into chunks
 * of `deliverChunkSize` bytes. Tests can count and inspect every write(),
 * hold writes in flight (as flow control would), make writes fail, inject
 * raw bytes into the read side and end it.
 */
import type { Stream } from '../../src/transport/types.js';

interface HeldWrite {
  data: Uint8Array;
  resolve(): void;
  reject(err: unknown): void;
}

let nextId = 1;

export class FakeStream implements Stream {
  readonly id = nextId++;
  /** The other end; set by createStreamPair. */
  peer: FakeStream | undefined;
  /** A copy of the data of every write() call, in call order. */
  readonly writes: Uint8Array[] = [];
  finishWriteCalls = 0;
  resetCalls = 0;
  /** While true, write() stays pending until releaseWrites() (data is delivered on release). */
  holdWrites = false;
  /** When set, every write() rejects with it (and delivers nothing). */
  failWrites: Error | undefined;
  /** Split the data of each write into chunks of at most this many bytes on delivery. */
  deliverChunkSize = Infinity;

  #held: HeldWrite[] = [];
  #inbox: Uint8Array[] = [];
  #inboxEnded = false;
  #readers: ((chunk: Uint8Array | null) => void)[] = [];
  #writeFinished = false;
  #isReset = false;

  get writeCount(): number {
    return this.writes.length;
  }

  /** Writes started and not yet completed (only while holdWrites is set). */
  get heldWrites(): number {
    return this.#held.length;
  }

  get isReset(): boolean {
    return this.#isReset;
  }

  get writeFinished(): boolean {
    return this.#writeFinished;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#isReset) return Promise.resolve(null);
    const chunk = this.#inbox.shift();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.#inboxEnded) return Promise.resolve(null);
    return new Promise((resolve) => this.#readers.push(resolve));
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#isReset) return Promise.reject(new Error('fake stream: write after reset'));
    if (this.#writeFinished) return Promise.reject(new Error('fake stream: write after finishWrite'));
    const copy = data.slice();
    this.writes.push(copy);
    if (this.failWrites) return Promise.reject(this.failWrites);
    if (this.holdWrites) return new Promise((resolve, reject) => this.#held.push({ data: copy, resolve, reject }));
    this.#deliverToPeer(copy);
    return Promise.resolve();
  }

  /** Completes every held write, in order, delivering its data to the peer. */
  releaseWrites(): void {
    const held = this.#held;
    this.#held = [];
    for (const w of held) {
      this.#deliverToPeer(w.data);
      w.resolve();
    }
  }

  /** Fails every held write with `err`. */
  failHeldWrites(err: Error): void {
    const held = this.#held;
    this.#held = [];
    for (const w of held) w.reject(err);
  }

  finishWrite(): Promise<void> {
    this.finishWriteCalls++;
    if (this.#isReset) return Promise.reject(new Error('fake stream: finishWrite after reset'));
    if (!this.#writeFinished) {
      this.#writeFinished = true;
      this.peer?.injectEnd();
    }
    return Promise.resolve();
  }

  reset(): void {
    this.resetCalls++;
    if (this.#isReset) return;
    this.#isReset = true;
    this.#inbox = [];
    this.failHeldWrites(new Error('fake stream: reset'));
    this.#wakeReaders();
    this.peer?.injectEnd();
  }

  /** Test side: bytes arriving on the read side as one chunk, as if the peer had written them. */
  inject(chunk: Uint8Array): void {
    if (this.#isReset || this.#inboxEnded) return;
    const reader = this.#readers.shift();
    if (reader) reader(chunk);
    else this.#inbox.push(chunk);
  }

  /** Test side: the peer finished writing; reads return null once the inbox is drained. */
  injectEnd(): void {
    this.#inboxEnded = true;
    this.#wakeReaders();
  }

  #wakeReaders(): void {
    const readers = this.#readers;
    this.#readers = [];
    for (const r of readers) r(null);
  }

  #deliverToPeer(data: Uint8Array): void {
    const peer = this.peer;
    if (!peer) return;
    if (data.length <= this.deliverChunkSize) {
      peer.inject(data);
      return;
    }
    for (let off = 0; off < data.length; off += this.deliverChunkSize) {
      peer.inject(data.subarray(off, off + this.deliverChunkSize));
    }
  }
}

/** Two connected fake streams: what one writes, the other reads. */
export function createStreamPair(): [FakeStream, FakeStream] {
  const a = new FakeStream();
  const b = new FakeStream();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A lone fake stream whose read side is fed by the test (inject/injectEnd) and whose writes go nowhere. */
export function createFakeStream(): FakeStream {
  return new FakeStream();
}
