/**
 * A light client's one-way publishes, as NATS clients publish: `publish()`
 * hands the message to the connection (GW_SEND, numbered 1, 2, 3, …) and
 * resolves; the node acknowledges cumulatively (GW_ACK) and names each
 * failure (GW_NACK), and `flush()` resolves once the node has handled every
 * publish made before it.
 *
 * Flow control: at most `window` publishes (the node's, from GW_ATTACH) and
 * `maxPendingBytes` of them are unacknowledged. Past that, publish() waits
 * for acknowledgements, in call order; at most `window` more calls may wait,
 * further ones are refused with QueueFullError, so a caller that does not
 * await cannot grow memory without bound.
 *
 * Runs (wire/run.ts): consecutive publishes to one topic without headers
 * made in one event-loop turn go out as one GW_SEND run, handed to the
 * connection at the end of that turn (a microtask: no timer, so no added
 * latency), at most MAX_RUN publishes and MAX_RUN_BYTES of payload each.
 * Everything else stays per publish: numbers, the window, acknowledgements
 * (GW_ACK n + k - 1 covers a run) and failures (GW_NACK names one publish).
 *
 * Transport-neutral (it hands each encoded GW_SEND to a send function) and
 * free of node: imports: MaculaClient (QUIC) and MaculaWebClient (the
 * browser bundle) both publish through it.
 */
import { QueueFullError, RemoteError, TimeoutError, toWire } from '../util/errors.js';
import { encodeBody, encodeMessage, headBytes, writeByteString, type EncodedMessage } from '../wire/codec.js';
import { MAX_RUN_BYTES, runHasRoom } from '../wire/run.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../wire/frame.js';
import { GW_SEND } from './messages.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { InvalidPayloadError } from '../pubsub/errors.js';
import { validateTopic } from '../pubsub/topic.js';

/** Bytes of unacknowledged publishes a client holds by default (well under a stream's 16 MiB send queue). */
export const DEFAULT_MAX_PENDING_PUBLISH_BYTES = 8 * 1024 * 1024;
/** The window used when the node announces none (a node from before it was announced). */
export const DEFAULT_CLIENT_PUBLISH_WINDOW = 256;

/**
 * The bytes a client keeps unacknowledged: its own bound, and at most half
 * the node's (the node counts whole GW_SEND frames, headers included, where
 * the client counts payloads and topics), so a client never crosses it.
 */
export function pendingBytesFor(limits: { publishWindowBytes?: number }, own: number): number {
  return limits.publishWindowBytes === undefined ? own : Math.min(own, Math.floor(limits.publishWindowBytes / 2));
}

/** The node could not publish message number `seq` of this client: `code` is the node's reason. */
export class PublishError extends RemoteError {
  readonly seq: number;
  readonly topic: string | undefined;

  constructor(seq: number, code: string, message: string, topic?: string) {
    super(code, `publish #${seq}${topic !== undefined ? ` to "${topic}"` : ''} failed: ${message}`);
    this.seq = seq;
    this.topic = topic;
  }
}

export interface PublishStats {
  /** Publishes handed to the connection (the last publish number). */
  sent: number;
  /** GW_SEND runs among them (each carrying 2..MAX_RUN publishes). */
  runs: number;
  /** Publishes the node acknowledged as handled (failed ones included). */
  acknowledged: number;
  /** Publishes the node reported as failed (GW_NACK). */
  failed: number;
  /** Sent and not yet acknowledged, and their bytes. */
  pending: number;
  pendingBytes: number;
  /** publish() calls waiting for room in the window. */
  waiting: number;
  window: number;
}

/** The stats of a client that is not attached (no publisher yet). */
export const NO_PUBLISH_STATS: Readonly<PublishStats> = Object.freeze({ sent: 0, runs: 0, acknowledged: 0, failed: 0, pending: 0, pendingBytes: 0, waiting: 0, window: 0 });

interface Waiting {
  headers: Headers | undefined;
  topic: string;
  data: unknown;
  resolve(): void;
  reject(err: unknown): void;
}

/** Bytes a publish's GW_SEND takes besides its topic and payload (keys, type, number), about: what pendingBytes counts. */
const SEND_OVERHEAD = 16;
/** The largest payload a GW_SEND carries in one frame, with room for the topic, headers and the other fields. */
export const MAX_SEND_PAYLOAD_BYTES = DEFAULT_MAX_FRAME_SIZE - 16 * 1024;

/** What every publish handed to the connection at once returns: one settled promise, not one per publish. */
const HANDED_ON: Promise<void> = Promise.resolve();

/**
 * Bytes kept in front of a run's payloads for the CBOR head of its `d`
 * array (k ≤ MAX_RUN < 256: at most two bytes), so the run is handed to
 * encodeMessage as one value already encoded, with no copy to prepend it.
 */
const RUN_HEAD = 2;
/** The run buffer: what a run holds at most (MAX_RUN_BYTES), unless one payload alone is larger. */
const RUN_BUFFER_BYTES = RUN_HEAD + MAX_RUN_BYTES;
/** Unacknowledged publishes the bookkeeping rings hold before they first grow. */
const RING_START = 1024;

interface FlushWaiter {
  target: number;
  resolve(): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class ClientPublisher {
  readonly window: number;
  readonly maxPendingBytes: number;
  readonly #send: (msg: EncodedMessage) => void;
  readonly #onError: (err: PublishError) => void;
  #seq = 0;
  #runs = 0;
  #runScheduled = false;
  /**
   * The open run: publishes #runFirst … #runFirst + #runCount - 1 to
   * #runTopic, gathered until the end of the turn. Their payloads are
   * encoded one after the other in #runBuf from RUN_HEAD to #runEnd
   * (#runBytes of them, as runHasRoom counts).
   */
  #runTopic: string | undefined;
  #runFirst = 0;
  #runCount = 0;
  #runBytes = 0;
  #runBuf = new Uint8Array(RUN_BUFFER_BYTES);
  #runEnd = RUN_HEAD;
  #acked = 0;
  #failed = 0;
  /**
   * Rings indexed by publish number & #ringMask, holding #acked … #seq
   * (at most window + 1 entries; they double when full): the bytes sent
   * up to and including each publish (#sentBytes then, so the bytes of
   * the publishes an acknowledgement covers are one subtraction) and
   * each publish's topic (to name it in a failure).
   */
  #sentUpTo: Float64Array;
  #topics: (string | undefined)[];
  #ringMask: number;
  #sentBytes = 0;
  #pendingBytes = 0;
  #waiting: Waiting[] = [];
  #flushes: FlushWaiter[] = [];
  /** The first failure since the last flush() resolved: that flush rejects with it. */
  #firstError: PublishError | undefined;
  #closedWith: unknown;

  /**
   * The publisher of a client attached to a node, bound by what the node
   * announced in GW_ATTACH: its window (DEFAULT_CLIENT_PUBLISH_WINDOW from a
   * node that announces none) and `ownMaxBytes` unacknowledged, within half
   * the node's byte bound (pendingBytesFor).
   */
  static attached(limits: { publishWindow?: number; publishWindowBytes?: number }, ownMaxBytes: number, send: (msg: EncodedMessage) => void, onError: (err: PublishError) => void): ClientPublisher {
    return new ClientPublisher(limits.publishWindow ?? DEFAULT_CLIENT_PUBLISH_WINDOW, pendingBytesFor(limits, ownMaxBytes), send, onError);
  }

  constructor(window: number, maxPendingBytes: number, send: (msg: EncodedMessage) => void, onError: (err: PublishError) => void) {
    this.window = window;
    this.maxPendingBytes = maxPendingBytes;
    this.#send = send;
    this.#onError = onError;
    let size = RING_START;
    while (size <= window && size < RING_START * 4) size *= 2;
    this.#sentUpTo = new Float64Array(size);
    this.#topics = new Array<string | undefined>(size).fill(undefined);
    this.#ringMask = size - 1;
  }

  stats(): PublishStats {
    return {
      sent: this.#seq,
      runs: this.#runs,
      acknowledged: this.#acked,
      failed: this.#failed,
      pending: this.#seq - this.#acked,
      pendingBytes: this.#pendingBytes,
      waiting: this.#waiting.length,
      window: this.window,
    };
  }

  /**
   * Sends at once when the window has room and nobody waits, else waits its turn.
   * Rejects (nothing sent) with InvalidTopicError, InvalidHeadersError or InvalidPayloadError for what the node would refuse.
   */
  publish(topic: string, data: unknown, headers?: unknown): Promise<void> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    let h: Headers | undefined;
    try {
      validateTopic(topic);
      h = checkHeaders(headers);
      if (data === undefined) throw new InvalidPayloadError('the payload is undefined, which a message cannot carry; publish null instead');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#publish(topic, data, h);
  }

  #publish(topic: string, data: unknown, headers: Headers | undefined): Promise<void> {
    if (this.#waiting.length === 0 && this.#hasRoom()) {
      try {
        this.#sendNow(topic, data, headers);
      } catch (err) {
        return Promise.reject(err);
      }
      return HANDED_ON;
    }
    if (this.#waiting.length >= this.window) {
      return Promise.reject(new QueueFullError('the client publish queue (publishes waiting for the node to acknowledge; await publish() before publishing more)', this.window));
    }
    return new Promise((resolve, reject) => this.#waiting.push({ topic, data, headers, resolve, reject }));
  }

  /** Resolves once the node handled every publish made so far; rejects with the first failure since the previous flush. */
  flush(timeoutMs: number): Promise<void> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    const target = this.#seq + this.#waiting.length;
    if (this.#acked >= target) return this.#settleFlush();
    return new Promise((resolve, reject) => {
      const waiter: FlushWaiter = { target, resolve, reject, timer: undefined };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.#flushes = this.#flushes.filter((w) => w !== waiter);
          reject(new TimeoutError('flush', timeoutMs, { message: `the node did not acknowledge ${target - this.#acked} publishes within ${timeoutMs} ms` }));
        }, timeoutMs);
      }
      this.#flushes.push(waiter);
    });
  }

  /** GW_ACK: every publish up to `n` was handled. */
  acknowledged(n: number): void {
    if (n <= this.#acked || n > this.#seq) return;
    const mask = this.#ringMask;
    this.#pendingBytes -= this.#sentUpTo[n & mask]! - this.#sentUpTo[this.#acked & mask]!;
    this.#acked = n;
    while (this.#waiting.length > 0 && this.#hasRoom()) {
      const w = this.#waiting.shift()!;
      try {
        this.#sendNow(w.topic, w.data, w.headers);
        w.resolve();
      } catch (err) {
        w.reject(err);
      }
    }
    if (this.#flushes.length > 0) {
      const ready = this.#flushes.filter((w) => w.target <= this.#acked);
      if (ready.length === 0) return;
      this.#flushes = this.#flushes.filter((w) => w.target > this.#acked);
      for (const w of ready) {
        clearTimeout(w.timer);
        this.#settleFlush().then(w.resolve, w.reject);
      }
    }
  }

  /** GW_NACK: publish `n` failed at the node. */
  failed(n: number, code: string, message: string): void {
    this.#failed++;
    const topic = n > this.#acked && n <= this.#seq ? this.#topics[n & this.#ringMask] : undefined;
    const err = new PublishError(n, code, message, topic);
    this.#firstError ??= err;
    this.#onError(err);
  }

  /** The connection is gone: every waiting publish and flush fails with `err`, and every later call. */
  close(err: unknown): void {
    if (this.#closedWith !== undefined) return;
    this.#closedWith = err;
    for (const w of this.#waiting) w.reject(err);
    this.#waiting = [];
    for (const w of this.#flushes) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#flushes = [];
  }

  #settleFlush(): Promise<void> {
    const err = this.#firstError;
    this.#firstError = undefined;
    return err === undefined ? Promise.resolve() : Promise.reject(err);
  }

  #hasRoom(): boolean {
    return this.#seq - this.#acked < this.window && this.#pendingBytes < this.maxPendingBytes;
  }

  /**
   * Numbers the publish and hands it on: with headers at once (after the open run), else into the
   * turn's run. Throws (nothing sent, no number used) when `data` cannot be encoded.
   */
  #sendNow(topic: string, data: unknown, headers: Headers | undefined): void {
    // A byte payload outside a header message is written straight into the run (no encoded copy of its own).
    const bytes = headers === undefined && data instanceof Uint8Array ? data : undefined;
    let body: Uint8Array | undefined;
    if (bytes === undefined) {
      try {
        body = encodeBody(data);
      } catch (err) {
        throw new InvalidPayloadError(`the payload cannot be encoded as CBOR: ${(err as Error)?.message ?? err}`, { cause: err });
      }
    }
    const size = body !== undefined ? body.length : headBytes(bytes!.length) + bytes!.length;
    if (size > MAX_SEND_PAYLOAD_BYTES) {
      throw new InvalidPayloadError(`payload of ${size} bytes does not fit in one frame (at most ${MAX_SEND_PAYLOAD_BYTES} bytes); send smaller messages`);
    }
    const n = this.#number(topic, size + topic.length + SEND_OVERHEAD);
    if (headers !== undefined) {
      this.#sendRun();
      this.#send(encodeMessage({ t: GW_SEND.type, tp: topic, n, h: headers }, { d: body! }));
      return;
    }
    if (this.#runTopic !== topic || !runHasRoom(this.#runCount, this.#runBytes, size)) {
      this.#sendRun();
      this.#runTopic = topic;
      this.#runFirst = n;
      if (!this.#runScheduled) {
        this.#runScheduled = true;
        queueMicrotask(this.#endOfTurn);
      }
    }
    let end = this.#runEnd;
    if (end + size > this.#runBuf.length) {
      // Only a first payload larger than a run's bytes gets here: a buffer of its size, for this run only.
      const grown = new Uint8Array(end + size);
      grown.set(this.#runBuf.subarray(0, end));
      this.#runBuf = grown;
    }
    if (bytes !== undefined) end = writeByteString(this.#runBuf, end, bytes);
    else {
      this.#runBuf.set(body!, end);
      end += size;
    }
    this.#runEnd = end;
    this.#runCount++;
    this.#runBytes += size;
  }

  /** Takes the next publish number for a publish of `bytes` (as pendingBytes counts) to `topic`. */
  #number(topic: string, bytes: number): number {
    const n = this.#seq + 1;
    if (n - this.#acked >= this.#sentUpTo.length) this.#growRings();
    this.#seq = n;
    this.#sentBytes += bytes;
    this.#pendingBytes += bytes;
    this.#sentUpTo[n & this.#ringMask] = this.#sentBytes;
    this.#topics[n & this.#ringMask] = topic;
    return n;
  }

  #growRings(): void {
    const size = this.#sentUpTo.length * 2;
    const sentUpTo = new Float64Array(size);
    const topics = new Array<string | undefined>(size).fill(undefined);
    const oldMask = this.#ringMask;
    const mask = size - 1;
    for (let m = this.#acked; m <= this.#seq; m++) {
      sentUpTo[m & mask] = this.#sentUpTo[m & oldMask]!;
      topics[m & mask] = this.#topics[m & oldMask];
    }
    this.#sentUpTo = sentUpTo;
    this.#topics = topics;
    this.#ringMask = mask;
  }

  readonly #endOfTurn = (): void => {
    this.#runScheduled = false;
    const first = this.#runFirst;
    const count = this.#runCount;
    try {
      this.#sendRun();
    } catch (err) {
      // Nothing left to reject at the end of the turn: each publish of the run is reported as failed.
      const { code, message } = toWire(err);
      for (let i = 0; i < count; i++) this.failed(first + i, code, message);
    }
  };

  /** Hands the open run to the connection: one GW_SEND, a run when it holds more than one publish. */
  #sendRun(): void {
    const k = this.#runCount;
    if (k === 0) return;
    const buf = this.#runBuf;
    const end = this.#runEnd;
    const topic = this.#runTopic!;
    const first = this.#runFirst;
    this.#runTopic = undefined;
    this.#runCount = 0;
    this.#runBytes = 0;
    this.#runEnd = RUN_HEAD;
    if (buf.length > RUN_BUFFER_BYTES) this.#runBuf = new Uint8Array(RUN_BUFFER_BYTES);
    if (k === 1) return this.#send(encodeMessage({ t: GW_SEND.type, tp: topic, n: first }, { d: buf.subarray(RUN_HEAD, end) }));
    this.#runs++;
    // `d`: the CBOR array head of k (1 byte below 24, else 0x98 k) right before the payloads.
    let at = RUN_HEAD - 1;
    if (k < 24) buf[at] = 0x80 | k;
    else {
      buf[--at] = 0x98;
      buf[at + 1] = k;
    }
    this.#send(encodeMessage({ t: GW_SEND.type, tp: topic, n: first, k }, { d: buf.subarray(at, end) }));
  }
}
