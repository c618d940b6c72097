/**
 * The node's side of a light client's one-way publishes (GW_SEND, GW_ACK,
 * GW_NACK in messages.ts), one PublishFlow per client.
 *
 * Each GW_SEND is handed to pub/sub at once, in arrival order (which keeps
 * the client's per-publisher order), and is *pending* until pub/sub accepted
 * it: queued for every subscriber node, or failed. Acknowledgements are
 * cumulative and in order: GW_ACK `n` says every publish up to `n` was
 * handled; it goes out at most once per event-loop turn, so a burst of
 * publishes costs one acknowledgement. A failure is reported by GW_NACK
 * naming the publish; it still counts as handled.
 *
 * Flow control: the client keeps at most `window` publishes and
 * `windowBytes` of them (their GW_SEND frames) unacknowledged.
 * pub/sub's fan-out queue applying backpressure holds publishes pending,
 * so acknowledgements stop and the client waits: a fast publisher is slowed
 * to what the mesh takes. A GW_SEND beyond the window (a client ignoring the
 * protocol) is refused with MACULA_ERR_FLOW_CONTROL, counted, and not held,
 * so a client can make the node hold at most `window` of its messages and
 * `windowBytes` (plus the one frame that crossed the line).
 */
import { MaculaError, toWire } from '../util/errors.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import { GW_ACK, GW_NACK } from './messages.js';

/** A client sent more publishes, or more bytes of them, than the window the node announced. */
export class FlowControlError extends MaculaError {
  constructor(window: number, windowBytes: number) {
    super('MACULA_ERR_FLOW_CONTROL', `more than ${window} publishes or ${windowBytes} bytes of them unacknowledged (the window this node announced); wait for GW_ACK before sending more`);
  }
}

/** Gateway-wide totals, shared by every client's flow. */
export interface PublishCounters {
  /** GW_SEND publishes received. */
  publishes: number;
  /** Received and not yet handled, over every client now. */
  publishPending: number;
  /** Publishes that failed (GW_NACK sent), overruns included. */
  publishFailures: number;
  /** Publishes refused because the client went past its window. */
  publishOverruns: number;
  /** GW_SEND runs received (their publishes are counted one by one above). */
  publishRuns: number;
}

/** Publishes n … last, handed to pub/sub together (one, or a run). */
interface Entry {
  readonly last: number;
  readonly count: number;
  /** Their GW_SEND's frame bytes. */
  readonly bytes: number;
  done: boolean;
}

/** Messages of a run that failed on their own (by index in the run), the others being accepted. */
export type RunFailures = readonly { index: number; error: unknown }[] | undefined;

export class PublishFlow {
  readonly window: number;
  readonly windowBytes: number;
  readonly #counters: PublishCounters;
  readonly #send: (msg: OutboundMessage) => void;
  /** Publishes in arrival order from the oldest not yet acknowledged; `#head` is the first live index. */
  #queue: Entry[] = [];
  #head = 0;
  #pending = 0;
  #pendingBytes = 0;
  #ackTo = 0;
  #acked = 0;
  #ackScheduled = false;
  #closed = false;

  constructor(window: number, windowBytes: number, counters: PublishCounters, send: (msg: OutboundMessage) => void) {
    this.window = window;
    this.windowBytes = windowBytes;
    this.#counters = counters;
    this.#send = send;
  }

  /** Publishes of this client handed to pub/sub and not yet accepted. */
  get pending(): number {
    return this.#pending;
  }

  /** Bytes of pending publishes (their GW_SEND frames). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** GW_SEND number `n` (a frame of `bytes`) arrived: `publish` hands it to pub/sub (its rejection is the publish's failure). */
  accept(n: number, bytes: number, publish: () => Promise<unknown>): void {
    this.#counters.publishes++;
    if (this.#full(1)) {
      this.#counters.publishOverruns++;
      this.#nack(n, new FlowControlError(this.window, this.windowBytes));
      return;
    }
    this.#hand(n, 1, bytes, publish);
  }

  /** Whether `k` more publishes would go past the window (its count, its bytes, or what is held for acknowledgement). */
  #full(k: number): boolean {
    return this.#pending + k > this.window || this.#pendingBytes >= this.windowBytes || this.#queue.length - this.#head >= 2 * this.window;
  }

  /**
   * A run of GW_SEND numbers `n` … `n + k - 1` arrived: `publish` hands all
   * of it to pub/sub at once (one pending entry, one promise); its rejection
   * fails every publish of the run, its resolved RunFailures the ones named.
   * A run that does not fit the window is taken publish by publish, so
   * exactly those beyond it are refused.
   */
  acceptRun(n: number, k: number, bytes: number, publish: () => Promise<RunFailures>, one: (i: number) => () => Promise<unknown>): void {
    if (this.#full(k)) {
      // Taken one by one, each publish carries its share of the run's frame.
      const share = Math.ceil(bytes / k);
      for (let i = 0; i < k; i++) this.accept(n + i, share, one(i));
      return;
    }
    this.#counters.publishes += k;
    this.#hand(n, k, bytes, publish);
  }

  /** Publishes n … n + k - 1 are pending until `publish` settles; a rejection fails each, resolved RunFailures the ones named. */
  #hand(n: number, k: number, bytes: number, publish: () => Promise<unknown>): void {
    const entry: Entry = { last: n + k - 1, count: k, bytes, done: false };
    this.#queue.push(entry);
    this.#pending += k;
    this.#pendingBytes += bytes;
    this.#counters.publishPending += k;
    let accepted: Promise<unknown>;
    try {
      accepted = publish();
    } catch (err) {
      accepted = Promise.reject(err);
    }
    accepted.then(
      (failures) => {
        if (k > 1 && failures !== undefined) for (const f of failures as NonNullable<RunFailures>) this.#nack(n + f.index, f.error);
        this.#done(entry);
      },
      (err: unknown) => {
        for (let i = 0; i < k; i++) this.#nack(n + i, err);
        this.#done(entry);
      },
    );
  }

  /** GW_SEND number `n` was refused before it reached accept() (authorization, admission, the connection's in-flight limit). */
  refused(n: number, err: unknown): void {
    this.#counters.publishes++;
    this.#nack(n, err);
    if (this.#queue.length - this.#head >= 2 * this.window) return;
    this.#queue.push({ last: n, count: 1, bytes: 0, done: true });
    this.#advance();
  }

  /** The client is gone: nothing more is sent to it (its pending publishes still settle, and leave publishPending then). */
  close(): void {
    this.#closed = true;
  }

  #done(entry: Entry): void {
    entry.done = true;
    this.#pending -= entry.count;
    this.#pendingBytes -= entry.bytes;
    this.#counters.publishPending -= entry.count;
    this.#advance();
  }

  #advance(): void {
    const q = this.#queue;
    let head = this.#head;
    while (head < q.length && q[head]!.done) this.#ackTo = Math.max(this.#ackTo, q[head++]!.last);
    if (head === q.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > q.length) {
      this.#queue = q.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
    if (this.#ackTo > this.#acked && !this.#ackScheduled && !this.#closed) {
      this.#ackScheduled = true;
      setImmediate(this.#flushAck);
    }
  }

  readonly #flushAck = (): void => {
    this.#ackScheduled = false;
    if (this.#closed || this.#ackTo <= this.#acked) return;
    this.#acked = this.#ackTo;
    this.#send({ t: GW_ACK.type, n: this.#acked });
  };

  #nack(n: number, err: unknown): void {
    this.#counters.publishFailures++;
    if (!this.#closed) this.#send({ t: GW_NACK.type, n, ...toWire(err) });
  }
}
