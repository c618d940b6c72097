/**
 * A counting semaphore for hot paths that need "at most N at once" without a
 * job queue (in-flight requests, concurrent lookups): `acquire` is a counter
 * increment while a slot is free, and a released slot goes straight to the
 * oldest waiter so nobody can overtake it.
 */
import { MisuseError, StoppedError } from './errors.js';
import { RingQueue } from './worker-pool.js';
import { intOption } from './options.js';

interface SemaphoreWaiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

const RESOLVED: Promise<void> = Promise.resolve();

export class Semaphore {
  readonly limit: number;
  readonly name: string;
  #active = 0;
  readonly #waiters = new RingQueue<SemaphoreWaiter>();
  #closed = false;

  /** `limit`: slots (default 1); `name` appears in error messages. */
  constructor(limit = 1, name = 'semaphore') {
    intOption('semaphore limit', limit, 1);
    this.limit = limit;
    this.name = name;
  }

  /** Slots held. */
  get active(): number {
    return this.#active;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Takes a slot if one is free now and nobody waits; never waits. */
  tryAcquire(): boolean {
    if (this.#closed || this.#active >= this.limit || this.#waiters.size > 0) return false;
    this.#active++;
    return true;
  }

  /**
   * Resolves once the caller holds a slot, which it must give back with
   * `release()`; waiters are served first come first served.
   * @throws StoppedError (as a rejection) once closed
   */
  acquire(): Promise<void> {
    if (this.#closed) return Promise.reject(StoppedError.of(this.name));
    if (this.tryAcquire()) return RESOLVED;
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Gives a slot back; it passes directly to the oldest waiter, if any. */
  release(): void {
    if (this.#active === 0) {
      // An unmatched release would let more than `limit` callers in later: a bug to surface, not absorb.
      throw new MisuseError(`${this.name}: release() without a matching acquire(); release each slot once, after its acquire()`);
    }
    const next = this.#waiters.shift();
    if (next !== undefined) next.resolve();
    else this.#active--;
  }

  /** Runs `fn` holding a slot, released whatever `fn` does. */
  async use<R>(fn: () => Promise<R> | R): Promise<R> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Rejects every waiter and all later acquires with StoppedError; held slots may still be released. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.drainAll()) w.reject(StoppedError.of(this.name));
  }
}
