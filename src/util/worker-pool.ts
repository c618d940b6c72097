/**
 * A bounded job queue drained by at most `concurrency` jobs at once.
 *
 * Memory stays bounded whatever the submit rate: at most `concurrency` jobs
 * run, at most `maxQueue` wait in the queue, and at most `maxWaiting`
 * submitters wait for room (backpressure). Beyond that a submission is
 * refused with QueueFullError and counted as a drop, so an overload shows up
 * in the metrics instead of in the heap.
 *
 * A job holds its slot until the promise it returns settles; a job that
 * returns undefined is done when it returns, and frees its slot at once.
 * A job that fails is counted and handed to `onError`; it never stops the
 * pool or the other jobs.
 *
 * A job must not *await* `submit` on its own pool: were every running job
 * waiting for room, nothing would ever free it. Jobs hand work on without
 * awaiting acceptance, or with `trySubmit`.
 */
import { QueueFullError, StoppedError } from './errors.js';
import { intOption } from './options.js';

/** Most jobs running at once. */
export const DEFAULT_CONCURRENCY = 64;
/** Most jobs accepted and waiting to start. */
export const DEFAULT_MAX_QUEUE = 10_000;

const INITIAL_RING_CAPACITY = 16;

/**
 * FIFO ring buffer: O(1) push and shift (no `Array.shift`, which copies),
 * capacity doubling as needed and never above what was once in use.
 */
export class RingQueue<T> {
  #buf: Array<T | undefined>;
  #head = 0;
  #size = 0;

  constructor(initialCapacity = INITIAL_RING_CAPACITY) {
    // A power of two lets the index wrap with a mask.
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.#buf = new Array<T | undefined>(cap);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) & (this.#buf.length - 1)] = item;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#buf[this.#head];
    // Cleared so a finished job's closure is not kept alive by the buffer.
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#size--;
    return item;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[this.#head];
  }

  /** Removes and returns every item, oldest first. */
  drainAll(): T[] {
    const out: T[] = [];
    while (this.#size > 0) out.push(this.shift()!);
    return out;
  }

  #grow(): void {
    const old = this.#buf;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & (old.length - 1)];
    this.#buf = next;
    this.#head = 0;
  }
}

/**
 * A unit of work, usually an async function. Its result is ignored; a
 * rejection or a throw counts as a failure.
 */
export type Job = () => unknown;

export interface SubmitOptions {
  /** Refuse at once with QueueFullError (and count a drop) instead of waiting for room. Default false. */
  noWait?: boolean;
  /** Gives up waiting for room; the submission then rejects with the signal's reason. No effect once accepted. */
  signal?: AbortSignal;
}

export interface WorkerPoolComponents {
  /**
   * Receives the error of every failed job, except jobs given to `run()`,
   * whose caller receives the error. Whatever it throws is ignored.
   */
  onError?: (err: unknown) => void;
}

export interface WorkerPoolInit {
  /** Most jobs running at once. Default 64. */
  concurrency?: number;
  /** Most jobs accepted and not yet started. 0: a job is accepted only when it can start. Default 10,000. */
  maxQueue?: number;
  /** Most submitters waiting for room at once; more are refused with QueueFullError. Default: `maxQueue`. */
  maxWaiting?: number;
  /** Names the pool in error messages. Default 'worker pool'. */
  name?: string;
}

export interface WorkerPoolStats {
  /** Jobs accepted and not yet started. */
  queued: number;
  running: number;
  /** Submitters waiting for room (backpressure). */
  waiting: number;
  maxQueue: number;
  concurrency: number;
  /** Jobs that finished without error. */
  completed: number;
  /** Jobs that threw or rejected. */
  failed: number;
  /** Submissions refused because the queue (or the wait list) was full. */
  dropped: number;
  /** Highest `queued` seen. */
  peakQueued: number;
}

interface Waiter {
  job: Job;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

const RESOLVED: Promise<void> = Promise.resolve();

/** What a `run()` wrapper resolves with when its job failed: counted as failed, not reported to onError. */
const RUN_FAILED = Symbol('run failed');

function positiveInt(name: string, value: number, min: number): number {
  return intOption(name, value, min);
}

export class WorkerPool {
  readonly concurrency: number;
  readonly maxQueue: number;
  readonly maxWaiting: number;
  readonly name: string;

  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #queue = new RingQueue<Job>();
  // Waiters form a linked list so that an aborted one leaves in O(1).
  #waitHead: Waiter | undefined;
  #waitTail: Waiter | undefined;
  #waiting = 0;
  #running = 0;
  #completed = 0;
  #failed = 0;
  #dropped = 0;
  #peakQueued = 0;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly #closing = new AbortController();

  constructor(components: WorkerPoolComponents = {}, init: WorkerPoolInit = {}) {
    this.#onError = components.onError;
    this.concurrency = positiveInt('concurrency', init.concurrency ?? DEFAULT_CONCURRENCY, 1);
    this.maxQueue = positiveInt('maxQueue', init.maxQueue ?? DEFAULT_MAX_QUEUE, 0);
    this.maxWaiting = positiveInt('maxWaiting', init.maxWaiting ?? this.maxQueue, 0);
    this.name = init.name ?? 'worker pool';
  }

  get queued(): number {
    return this.#queue.size;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting;
  }

  get completed(): number {
    return this.#completed;
  }

  get failed(): number {
    return this.#failed;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get peakQueued(): number {
    return this.#peakQueued;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Aborted by close(): jobs can pass it to their I/O to finish early when the pool shuts down. */
  get signal(): AbortSignal {
    return this.#closing.signal;
  }

  stats(): WorkerPoolStats {
    return {
      queued: this.#queue.size,
      running: this.#running,
      waiting: this.#waiting,
      maxQueue: this.maxQueue,
      concurrency: this.concurrency,
      completed: this.#completed,
      failed: this.#failed,
      dropped: this.#dropped,
      peakQueued: this.#peakQueued,
    };
  }

  /**
   * Accepts a job: resolves once it is queued (or started), not when it has
   * run. When the queue is full, waits for room, first come first served; with
   * `noWait`, or when `maxWaiting` submitters already wait, rejects with
   * QueueFullError and counts a drop. A job accepted while a slot is free
   * starts synchronously, inside this call.
   * @throws StoppedError (as a rejection) after close()
   */
  submit(job: Job, options: SubmitOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(StoppedError.of(this.name));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#accept(job)) return RESOLVED;
    if (options.noWait) {
      this.#dropped++;
      return Promise.reject(new QueueFullError(`${this.name} queue`, this.maxQueue));
    }
    if (this.#waiting >= this.maxWaiting) {
      this.#dropped++;
      return Promise.reject(new QueueFullError(`${this.name} wait list`, this.maxWaiting));
    }
    return new Promise<void>((resolve, reject) => this.#enqueueWaiter(job, resolve, reject, signal));
  }

  /**
   * Accepts a job only if there is room now, without allocating a promise:
   * false (and a counted drop) when full.
   * @throws StoppedError after close()
   */
  trySubmit(job: Job): boolean {
    if (this.#closed) throw StoppedError.of(this.name);
    if (this.#accept(job)) return true;
    this.#dropped++;
    return false;
  }

  /**
   * Submits `job` like `submit` and resolves with its result once it has run.
   * Its failure rejects the returned promise (and counts as failed) instead
   * of going to onError.
   */
  run<R>(job: () => Promise<R> | R, options: SubmitOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const wrapped = async (): Promise<unknown> => {
        try {
          resolve(await job());
          return undefined;
        } catch (err) {
          reject(err);
          return RUN_FAILED;
        }
      };
      this.submit(wrapped, options).catch(reject);
    });
  }

  /** Resolves when nothing runs, nothing is queued and nobody waits for room. */
  drain(): Promise<void> {
    if (this.#isIdle()) return RESOLVED;
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Refuses new submissions (StoppedError), rejects the submitters still
   * waiting for room, aborts `signal`, and resolves once the jobs already
   * accepted have run: every accepted job runs, so every `run()` settles.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      let w = this.#waitHead;
      this.#waitHead = this.#waitTail = undefined;
      this.#waiting = 0;
      while (w !== undefined) {
        const next = w.next;
        w.signal?.removeEventListener('abort', w.onAbort!);
        w.reject(StoppedError.of(this.name));
        w = next;
      }
      this.#closing.abort(StoppedError.of(this.name));
      this.#checkIdle();
    }
    return this.drain();
  }

  /** Starts or queues the job if there is room and nobody is ahead of it. */
  #accept(job: Job): boolean {
    // Waiters exist only while the queue is full; a newcomer must not overtake them.
    if (this.#waitHead !== undefined) return false;
    if (this.#running < this.concurrency && this.#queue.size === 0) {
      this.#start(job);
      return true;
    }
    if (this.#queue.size < this.maxQueue) {
      this.#push(job);
      return true;
    }
    return false;
  }

  #push(job: Job): void {
    this.#queue.push(job);
    if (this.#queue.size > this.#peakQueued) this.#peakQueued = this.#queue.size;
  }

  #enqueueWaiter(job: Job, resolve: () => void, reject: (err: unknown) => void, signal: AbortSignal | undefined): void {
    const w: Waiter = { job, resolve, reject, signal, onAbort: undefined, prev: this.#waitTail, next: undefined };
    if (this.#waitTail !== undefined) this.#waitTail.next = w;
    else this.#waitHead = w;
    this.#waitTail = w;
    this.#waiting++;
    if (signal !== undefined) {
      w.onAbort = () => {
        this.#unlink(w);
        reject(signal.reason);
        this.#checkIdle();
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
  }

  #unlink(w: Waiter): void {
    if (w.prev !== undefined) w.prev.next = w.next;
    else this.#waitHead = w.next;
    if (w.next !== undefined) w.next.prev = w.prev;
    else this.#waitTail = w.prev;
    w.prev = w.next = undefined;
    this.#waiting--;
  }

  #start(job: Job): void {
    this.#running++;
    let result: unknown;
    try {
      result = job();
    } catch (err) {
      result = Promise.reject(err);
    }
    if (result === undefined) {
      // Done already (a fan-out send that only queued its message): the slot is free now, with no promise per job.
      this.#running--;
      this.#completed++;
      if (this.#idleWaiters.length > 0) this.#checkIdle();
      return;
    }
    // Shared handlers (not per-job closures) keep the hot path allocation-free.
    Promise.resolve(result).then(this.#onFulfilled, this.#onRejected);
  }

  readonly #onFulfilled = (value: unknown): void => {
    if (value === RUN_FAILED) this.#failed++;
    else this.#completed++;
    this.#finish();
  };

  readonly #onRejected = (err: unknown): void => {
    this.#failed++;
    if (this.#onError !== undefined) {
      try {
        this.#onError(err);
      } catch {
        // A faulty error handler must not turn a job failure into an unhandled rejection.
      }
    }
    this.#finish();
  };

  #finish(): void {
    this.#running--;
    this.#pump();
    this.#checkIdle();
  }

  /** Fills free slots from the queue, then lets waiting submitters in, oldest first. */
  #pump(): void {
    while (this.#running < this.concurrency && this.#queue.size > 0) this.#start(this.#queue.shift()!);
    while (this.#waitHead !== undefined) {
      const w = this.#waitHead;
      if (this.#running < this.concurrency && this.#queue.size === 0) {
        this.#admit(w);
        this.#start(w.job);
      } else if (this.#queue.size < this.maxQueue) {
        this.#admit(w);
        this.#push(w.job);
      } else {
        break;
      }
      w.resolve();
    }
  }

  #admit(w: Waiter): void {
    this.#unlink(w);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
  }

  #isIdle(): boolean {
    return this.#running === 0 && this.#queue.size === 0 && this.#waiting === 0;
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
