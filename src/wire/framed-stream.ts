/**
 * Messages over a transport stream: CBOR bodies in length-prefixed frames.
 *
 * Writes are coalesced: every message sent in the same tick (and every one
 * sent while a write is in flight) goes out in one stream write, because for
 * small messages the per-write cost, not the bytes, is the limit.
 */
import type { Stream } from '../transport/types.js';
import { ConnectionClosedError, FrameTooLargeError, ProtocolError, QueueFullError } from '../util/errors.js';
import { BudgetExceededError, DEFAULT_FRAME_TIMEOUT_MS, type BudgetAccount } from './budget.js';
import { appendFrame, decodeMessage, newFrameBuffer, type EncodedMessage, type FrameBuffer, type MessageFields } from './codec.js';
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder } from './frame.js';
import type { Message } from './messages.js';

/**
 * A message to send: its type and fields, or the same encoded earlier
 * (`encodeMessage`). The envelope (`v`, and `id` for requests and
 * responses) is added when it is framed; the caller's object is never
 * modified, so one message can be sent to many peers.
 */
export type OutboundMessage = MessageFields | EncodedMessage;

export interface FramedStreamOptions {
  /** Largest frame body accepted or sent. Default 1 MiB. */
  maxFrameSize?: number;
  /** Bytes queued for sending past which send() rejects with QueueFullError. Default 16 MiB. */
  maxQueuedBytes?: number;
  /**
   * Bytes queued for sending past which `congested` is true: a sender that
   * does not wait for each write (the pub/sub fan-out) waits for its write
   * only then. Default 256 KiB.
   */
  highWaterBytes?: number;
  /** Called once per protocol violation seen on this stream (for the metrics). */
  onProtocolError?: (err: ProtocolError) => void;
  /** Called for every message read ('in') and every message accepted by send() ('out'), with its type (for the metrics). */
  onMessage?: (direction: 'in' | 'out', type: number) => void;
  /**
   * The connection's byte budget for unfinished frames (see budget.ts): a
   * frame that does not fit is refused before more of it is read. Without
   * one only maxFrameSize bounds a frame.
   */
  budget?: BudgetAccount;
  /** A frame begun must be complete within this time, else the stream is refused. Default: the budget's, else 30 s. */
  frameTimeoutMs?: number;
}

export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_HIGH_WATER_BYTES = 256 * 1024;

/** Messages that go out in one write; every send() of them shares one promise, settled with the write. */
interface Batch {
  /** The write's bytes: each message is framed straight into it by send() (no buffer per message). */
  out: FrameBuffer;
  /** Body bytes of its frames (what queuedBytes counts). */
  bodyBytes: number;
  written: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/** Smallest and largest buffer a batch starts with (it grows as messages are added). */
const MIN_BATCH_BYTES = 256;
const MAX_BATCH_START_BYTES = 256 * 1024;

function newBatch(bytes: number): Batch {
  const batch = { out: newFrameBuffer(bytes), bodyBytes: 0 } as unknown as Batch;
  batch.written = new Promise<void>((resolve, reject) => {
    batch.resolve = resolve;
    batch.reject = reject;
  });
  return batch;
}

export class FramedStream {
  readonly stream: Stream;
  readonly maxFrameSize: number;
  readonly maxQueuedBytes: number;
  readonly highWaterBytes: number;
  #onProtocolError: ((err: ProtocolError) => void) | undefined;
  #onMessage: ((direction: 'in' | 'out', type: number) => void) | undefined;
  #decoder: FrameDecoder;
  /** Frames of the last chunk (in #decoder): how many, and the next to decode. */
  #frameCount = 0;
  #frameIdx = 0;
  #batch: Batch | undefined;
  #writing = false;
  #queuedBytes = 0;
  /** Bytes of the last batch written: the next one starts with a buffer a little larger. */
  #lastBatchBytes = 0;
  #failed: unknown;
  #ended: Promise<void> | undefined;
  #drained: (() => void)[] = [];
  /** The protocol violation (or budget refusal) that ended the reading side, rethrown by later reads. */
  #violationError: ProtocolError | BudgetExceededError | undefined;
  #isReset = false;
  readonly #budget: BudgetAccount | undefined;
  readonly #frameTimeoutMs: number;
  /** Bytes reserved in the budget for the frame being received. */
  #reserved = 0;
  #frameTimer: NodeJS.Timeout | undefined;
  #lastBodyBytes = 0;

  constructor(stream: Stream, options: FramedStreamOptions = {}) {
    this.stream = stream;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.highWaterBytes = Math.min(options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES, this.maxQueuedBytes);
    this.#onProtocolError = options.onProtocolError;
    this.#onMessage = options.onMessage;
    this.#decoder = new FrameDecoder(this.maxFrameSize);
    this.#budget = options.budget;
    this.#frameTimeoutMs = options.frameTimeoutMs ?? options.budget?.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
  }

  /** Bytes accepted by send() and not yet handed to the transport. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Whether the bytes waiting for the transport reached `highWaterBytes`
   * (a write in flight has not completed while more piled up behind it):
   * a sender that does not wait for its writes should wait now.
   */
  get congested(): boolean {
    return this.#queuedBytes >= this.highWaterBytes;
  }

  /**
   * Queues a message; resolves once the write that carries it completes.
   * Rejects at once with FrameTooLargeError or QueueFullError, so a caller
   * that does not await cannot grow memory without bound. `id` is the
   * request id of a request or a response, none for one-way messages.
   */
  send(msg: OutboundMessage, id?: number): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#ended) return Promise.reject(new ConnectionClosedError('the stream was ended; no more messages can be sent on it'));
    let batch = this.#batch;
    if (batch === undefined) {
      const last = this.#lastBatchBytes;
      batch = this.#batch = newBatch(Math.min(Math.max(last + (last >> 2), MIN_BATCH_BYTES), MAX_BATCH_START_BYTES));
      if (!this.#writing) queueMicrotask(() => void this.#flush());
    }
    const out = batch.out;
    const before = out.len;
    let size: number;
    try {
      size = appendFrame(out, msg, id);
    } catch (err) {
      // e.g. a cyclic or too deeply nested value: a rejection like every other send failure, not a synchronous throw
      return Promise.reject(err);
    }
    if (size > this.maxFrameSize || this.#queuedBytes + size > this.maxQueuedBytes) {
      out.len = before; // not sent: the frame is taken back out of the batch
      if (size > this.maxFrameSize) return Promise.reject(new FrameTooLargeError(size, this.maxFrameSize));
      return Promise.reject(new QueueFullError('the stream send queue', this.maxQueuedBytes));
    }
    batch.bodyBytes += size;
    this.#queuedBytes += size;
    this.#onMessage?.('out', msg.t);
    return batch.written;
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#batch !== undefined) {
        const batch = this.#batch;
        this.#batch = undefined;
        this.#queuedBytes -= batch.bodyBytes;
        if (this.#failed !== undefined) {
          // reset() between send() and this flush: nothing may be written any more
          batch.reject(this.#failed);
          continue;
        }
        const { buf, len } = batch.out;
        this.#lastBatchBytes = len;
        if (len === 0) {
          // its every frame was refused by send()
          batch.resolve();
          continue;
        }
        const out = len === buf.length ? buf : buf.subarray(0, len);
        try {
          await this.stream.write(out);
        } catch (err) {
          // keep the first cause (e.g. a reset() that made this write fail)
          this.#failed ??= err instanceof ConnectionClosedError ? err : new ConnectionClosedError('the stream was closed while sending', { cause: err });
          batch.reject(this.#failed);
          (this.#batch as Batch | undefined)?.reject(this.#failed);
          this.#batch = undefined;
          this.#queuedBytes = 0;
          return;
        }
        batch.resolve();
      }
    } finally {
      this.#writing = false;
      const drained = this.#drained;
      this.#drained = [];
      for (const resolve of drained) resolve();
    }
  }

  /**
   * The next validated message, or null at the end of the stream (or once
   * reset() was called here). A protocol violation is reported once, resets
   * the stream and is thrown; later calls throw the same error again.
   * One reader at a time: do not call read() again before it settles.
   */
  async read(): Promise<Message | null> {
    for (;;) {
      // After a violation the stream is reset: report the same error again, but count it only once.
      if (this.#violationError !== undefined) throw this.#violationError;
      // After a local reset() nothing more is read (and leftover bytes are not the peer's fault).
      if (this.#isReset) return null;
      if (this.#frameIdx < this.#frameCount) return this.#decodeNext();
      try {
        this.#holdPendingFrame();
      } catch (err) {
        throw this.#violation(err);
      }
      const chunk = await this.stream.read();
      if (this.#violationError !== undefined) throw this.#violationError;
      if (this.#isReset) return null;
      if (chunk === null) {
        this.#releaseFrame();
        try {
          this.#decoder.end();
        } catch (err) {
          throw this.#violation(err);
        }
        return null;
      }
      try {
        this.#frameCount = this.#decoder.feed(chunk);
      } catch (err) {
        throw this.#violation(err);
      }
      // A frame completed: what is left is a new frame, with its own reservation and deadline.
      if (this.#frameCount > 0) this.#releaseFrame();
      this.#frameIdx = 0;
    }
  }

  /**
   * The next message among the frames already received, decoded now, or
   * undefined when reading on would have to wait for the stream: a reader
   * takes a whole chunk's messages in one synchronous pass, with no promise
   * per message. Errors as read(); not while a read() is pending.
   */
  readBuffered(): Message | undefined {
    if (this.#violationError !== undefined) throw this.#violationError;
    if (this.#isReset || this.#frameIdx >= this.#frameCount) return undefined;
    return this.#decodeNext();
  }

  /** Body bytes of the frame of the message read()/readBuffered() returned last: what holding it costs. */
  get lastBodyBytes(): number {
    return this.#lastBodyBytes;
  }

  #decodeNext(): Message {
    const i = this.#frameIdx++;
    const decoder = this.#decoder;
    const start = decoder.frameStart(i);
    const end = decoder.frameEnd(i);
    this.#lastBodyBytes = end - start;
    let msg: Message;
    try {
      msg = decodeMessage(decoder.frameBuffer(i), start, end);
    } catch (err) {
      throw this.#violation(err);
    }
    this.#onMessage?.('in', msg.t);
    return msg;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      const msg = await this.read();
      if (msg === null) return;
      yield msg;
    }
  }

  /** Flushes what is queued, then half-closes the sending side. Every call returns the same promise. */
  end(): Promise<void> {
    this.#ended ??= this.#end();
    return this.#ended;
  }

  async #end(): Promise<void> {
    if (this.#writing || this.#batch !== undefined) {
      await new Promise<void>((resolve) => this.#drained.push(resolve));
    }
    if (this.#failed === undefined) await this.stream.finishWrite().catch(() => undefined);
  }

  /**
   * Before reading more: the frame held partially must fit the budget (its
   * announced size is reserved, or refused before its body is read) and must
   * not have been pending for longer than frameTimeoutMs.
   */
  #holdPendingFrame(): void {
    const want = this.#decoder.pendingFrameBytes;
    if (want === 0) {
      this.#releaseFrame();
      return;
    }
    if (this.#budget !== undefined && want !== this.#reserved) {
      this.#budget.release(this.#reserved);
      this.#reserved = 0;
      this.#budget.reserve(want);
      this.#reserved = want;
    }
    this.#frameTimer ??= setTimeout(() => {
      const message = `a frame begun on this stream was not complete after ${this.#frameTimeoutMs} ms`;
      this.#violation(this.#budget ? this.#budget.refuse('frame_timeout', message) : new BudgetExceededError('frame_timeout', message));
    }, this.#frameTimeoutMs).unref();
  }

  #releaseFrame(): void {
    if (this.#reserved > 0) {
      this.#budget?.release(this.#reserved);
      this.#reserved = 0;
    }
    if (this.#frameTimer !== undefined) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
  }

  reset(): void {
    this.#releaseFrame();
    this.#failed ??= new ConnectionClosedError('the stream was reset');
    this.#isReset = true;
    this.#frameCount = 0;
    this.#frameIdx = 0;
    this.stream.reset();
  }

  #violation(err: unknown): unknown {
    if ((err instanceof ProtocolError || err instanceof BudgetExceededError) && this.#violationError === undefined) {
      this.#violationError = err;
      this.reset();
      if (err instanceof ProtocolError) this.#onProtocolError?.(err);
    }
    return err;
  }
}
