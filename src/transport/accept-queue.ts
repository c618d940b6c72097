/**
 * A bounded hand-off between a producer that never waits (the transport's own
 * accept loop, or a peer opening a stream) and consumers that pull with
 * `shift()`. Pull-based APIs need it so that an inbound connection or stream
 * arriving while nobody is awaiting is neither lost nor unbounded: when the
 * queue is full, `push` refuses and the caller aborts the excess and counts it.
 */
export class AcceptQueue<T> {
  readonly limit: number;
  #items: T[] = [];
  #head = 0;
  #waiters: Array<(item: T | null) => void> = [];
  #closed = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Hands the item to a waiting consumer or queues it; false when full or closed. */
  push(item: T): boolean {
    if (this.#closed) return false;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter(item);
      return true;
    }
    if (this.size >= this.limit) return false;
    this.#items.push(item);
    return true;
  }

  /** The next item, or null once the queue is closed (items still queued then are handed back by close()). */
  shift(): Promise<T | null> {
    if (this.size > 0) return Promise.resolve(this.#take());
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wakes every waiting consumer with null and returns the items nobody took. */
  close(): T[] {
    if (this.#closed) return [];
    this.#closed = true;
    const left = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w(null);
    return left;
  }

  #take(): T {
    const item = this.#items[this.#head]!;
    this.#items[this.#head] = undefined as T;
    this.#head++;
    // Compact occasionally so a long-lived queue does not keep a growing hole.
    if (this.#head >= 64 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    } else if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    }
    return item;
  }
}
