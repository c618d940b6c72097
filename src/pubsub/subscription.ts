/**
 * One local subscription: a pattern, a handler and a bounded buffer between
 * them.
 *
 * Messages are handed to the handler one at a time, in arrival order. A
 * handler that returns a promise gets the next message only once it settles;
 * meanwhile new messages wait in the buffer, and when the buffer is full they
 * are dropped and counted here. A slow handler delays only its own
 * subscription: the others drain independently.
 *
 * Handlers never run inside `push` (which is called while the topic trie is
 * being walked): the owner's `schedule` runs `drain` later, on a microtask
 * shared by every subscription that became ready in the same turn, rather
 * than one microtask per subscription per message.
 */
import { RingQueue } from '../util/worker-pool.js';
import type { Headers } from '../wire/headers.js';

/** A message as subscribers see it. Treat it as read-only: it is shared by every matching subscription. */
export interface PubSubMessage {
  topic: string;
  data: unknown;
  /** Node ID (hex) of the publishing node, from its verified connection. */
  publisher: string;
  /** The publisher's sequence number: increasing per publisher, with gaps (see pubsub.ts). */
  seq: number;
  /** Node ID (hex) of the light client the publishing node published for, as that node authenticated it. */
  origin?: string;
  /** The publisher's headers, unchanged. */
  headers?: Headers;
  /**
   * Present when the message is a request (`request()`): answers the
   * requester (one-way; resolves once the answer is queued).
   * @throws InvalidPayloadError, InvalidHeadersError — as rejections
   */
  respond?: (data: unknown, options?: { headers?: Headers }) => Promise<void>;
}

export type MessageHandler = (msg: PubSubMessage) => void | Promise<void>;

/**
 * Consecutive messages of one publisher to one topic, numbered `seq`,
 * `seq + 1`, … (a run, wire/run.ts), without headers or reply inbox. A
 * subscription that hands messages on (a light client's) gets it whole;
 * the others get its messages one by one. Read-only, shared like a message.
 */
export class PubSubRun {
  #messages: PubSubMessage[] | undefined;

  constructor(
    readonly topic: string,
    readonly data: readonly unknown[],
    /** Node ID (hex) of the publishing node, from its verified connection. */
    readonly publisher: string,
    /** The number of the first message. */
    readonly seq: number,
    readonly origin: string | undefined,
  ) {}

  get length(): number {
    return this.data.length;
  }

  /** The messages one by one, built once for every subscription that takes them so. */
  get messages(): readonly PubSubMessage[] {
    if (this.#messages !== undefined) return this.#messages;
    const out: PubSubMessage[] = [];
    for (let i = 0; i < this.data.length; i++) {
      const m: PubSubMessage = { topic: this.topic, data: this.data[i], publisher: this.publisher, seq: this.seq + i };
      if (this.origin !== undefined) m.origin = this.origin;
      out.push(m);
    }
    return (this.#messages = out);
  }

  /** Messages `from` … `to - 1` as a run of their own. */
  slice(from: number, to = this.data.length): PubSubRun {
    return new PubSubRun(this.topic, this.data.slice(from, to), this.publisher, this.seq + from, this.origin);
  }
}

/** Takes a whole run (instead of its messages one by one); a promise holds the next delivery until it settles, as a handler's does. */
export type RunHandler = (run: PubSubRun) => void | Promise<void>;

export interface SubscriptionComponents {
  handler: MessageHandler;
  /** Arranges for `drain()` to be called soon (not synchronously). */
  schedule: (sub: Subscription) => void;
  /** Removes the subscription from the node; resolves once its announcement is updated. */
  unsubscribe: (sub: Subscription) => Promise<void>;
  /** Receives what a handler throws or rejects with. */
  onHandlerError?: (err: unknown, sub: Subscription) => void;
  /** Called once when the subscription closes (unsubscribe or stop). */
  onClose?: () => void;
  /** Told of the `n` messages dropped each time (the buffer was full). */
  onDrop?: (sub: Subscription, n: number) => void;
  /** Runs whole rather than message by message (see PubSubRun). */
  onRun?: RunHandler;
}

export interface SubscriptionInit {
  id: number;
  pattern: string;
  /** Queue group this subscription is a member of. */
  queue?: string;
  /** Node ID of the light client this subscription forwards to (gateway subscriptions). */
  client?: string;
  /** Messages waiting for the handler before new ones are dropped. */
  bufferSize: number;
}

export class Subscription {
  readonly id: number;
  readonly pattern: string;
  /** The queue group this subscription is a member of (one member of each group gets a message), if any. */
  readonly queue: string | undefined;
  /** The light client this subscription forwards to, if a gateway made it for one. */
  readonly client: string | undefined;
  /**
   * Resolves once the DHT holds this node's record listing the pattern. A
   * failed announcement is retried (and counted); stop() resolves it too.
   * Rejects with NotStoredError (MACULA_ERR_NOT_STORED) when the mesh
   * refused the record; the subscription still receives local publishes.
   */
  ready: Promise<void> = Promise.resolve();
  #delivered = 0;
  #dropped = 0;
  #errors = 0;

  readonly #handler: MessageHandler;
  readonly #schedule: (sub: Subscription) => void;
  readonly #unsubscribe: (sub: Subscription) => Promise<void>;
  readonly #onError: ((err: unknown, sub: Subscription) => void) | undefined;
  readonly #onClose: (() => void) | undefined;
  readonly #onDrop: ((sub: Subscription, n: number) => void) | undefined;
  readonly #onRun: RunHandler | undefined;
  readonly #buffer = new RingQueue<PubSubMessage | PubSubRun>();
  /** Messages in the buffer (a run counts its messages). */
  #count = 0;
  readonly #max: number;
  #busy = false;
  #scheduled = false;
  #closed = false;
  #unsubscribing: Promise<void> | undefined;

  constructor(components: SubscriptionComponents, init: SubscriptionInit) {
    this.id = init.id;
    this.pattern = init.pattern;
    this.queue = init.queue;
    this.client = init.client;
    this.#onDrop = components.onDrop;
    this.#onRun = components.onRun;
    this.#handler = components.handler;
    this.#schedule = components.schedule;
    this.#unsubscribe = components.unsubscribe;
    this.#onError = components.onHandlerError;
    this.#onClose = components.onClose;
    this.#max = init.bufferSize;
  }

  /** Messages handed to the handler. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Messages dropped because the buffer was full, or lost past the handler (see drop()). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Counts one message as dropped for this subscription: its buffer was
   * full, or its handler hands messages on (a light client's subscription)
   * and the next hop could not take it. A slow consumer, named in stats.
   */
  drop(n = 1): void {
    this.#dropped += n;
    this.#onDrop?.(this, n);
  }

  /** Handler calls that threw or rejected. */
  get errors(): number {
    return this.#errors;
  }

  /** Messages waiting for the handler. */
  get buffered(): number {
    return this.#count;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops delivery at once (buffered messages are discarded) and withdraws the pattern if no other subscription uses it. */
  unsubscribe(): Promise<void> {
    this.#unsubscribing ??= this.#unsubscribe(this);
    return this.#unsubscribing;
  }

  /** Queues a message for the handler; never blocks, drops (counted) when the buffer is full. */
  push(msg: PubSubMessage): void {
    if (this.#closed) return;
    if (this.#count >= this.#max) return this.drop();
    this.#buffer.push(msg);
    this.#count++;
    this.#ready();
  }

  /**
   * Queues a run: whole for a subscription with a run handler (what does
   * not fit the buffer is dropped, counted per message), else message by
   * message.
   */
  pushRun(run: PubSubRun): void {
    if (this.#closed) return;
    if (this.#onRun === undefined) {
      for (const m of run.messages) this.push(m);
      return;
    }
    const room = this.#max - this.#count;
    const k = run.length;
    if (room < k) {
      this.drop(k - Math.max(0, room));
      if (room <= 0) return;
      run = run.slice(0, room);
    }
    this.#buffer.push(run);
    this.#count += run.length;
    this.#ready();
  }

  #ready(): void {
    if (!this.#busy && !this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(this);
    }
  }

  /** Called by the owner on unsubscribe/stop. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buffer.drainAll();
    this.#count = 0;
    this.#onClose?.();
  }

  /** Hands buffered messages to the handler until it is busy (async) or the buffer is empty. */
  drain(): void {
    this.#scheduled = false;
    while (!this.#busy && !this.#closed) {
      const next = this.#buffer.shift();
      if (next === undefined) return;
      let result: void | Promise<void>;
      try {
        if (next instanceof PubSubRun) {
          this.#count -= next.length;
          this.#delivered += next.length;
          result = this.#onRun!(next);
        } else {
          this.#count--;
          this.#delivered++;
          result = this.#handler(next);
        }
      } catch (err) {
        this.#failed(err);
        continue;
      }
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        this.#busy = true;
        (result as Promise<void>).then(this.#settled, this.#rejected);
      }
    }
  }

  readonly #settled = (): void => {
    this.#busy = false;
    this.drain();
  };

  readonly #rejected = (err: unknown): void => {
    this.#failed(err);
    this.#settled();
  };

  #failed(err: unknown): void {
    this.#errors++;
    try {
      this.#onError?.(err, this);
    } catch {
      // an error reporter that throws must not stop delivery
    }
  }
}

/**
 * Adapts a subscription to an async iterator: the handler resolves only when
 * the consumer has taken the message, so a consumer that stops pulling makes
 * the subscription buffer fill and drop (counted) rather than grow.
 */
export class SubscriptionIterator implements AsyncIterableIterator<PubSubMessage> {
  subscription: Subscription | undefined;
  #held: { msg: PubSubMessage; release: () => void } | undefined;
  #waiting: ((r: IteratorResult<PubSubMessage>) => void) | undefined;
  #done = false;

  /** The handler to subscribe with. */
  readonly handler: MessageHandler = (msg) => {
    if (this.#waiting !== undefined) {
      const wake = this.#waiting;
      this.#waiting = undefined;
      wake({ value: msg, done: false });
      return undefined;
    }
    return new Promise<void>((release) => (this.#held = { msg, release }));
  };

  next(): Promise<IteratorResult<PubSubMessage>> {
    if (this.#held !== undefined) {
      const { msg, release } = this.#held;
      this.#held = undefined;
      release();
      return Promise.resolve({ value: msg, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async return(): Promise<IteratorResult<PubSubMessage>> {
    this.end();
    await this.subscription?.unsubscribe();
    return { value: undefined, done: true };
  }

  /** Ends the iteration (the subscription closed): a pending next() resolves as done. */
  readonly end = (): void => {
    this.#done = true;
    this.#held?.release();
    this.#held = undefined;
    this.#waiting?.({ value: undefined, done: true });
    this.#waiting = undefined;
  };

  [Symbol.asyncIterator](): this {
    return this;
  }
}
