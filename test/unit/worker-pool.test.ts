import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Semaphore } from '../../src/util/semaphore.js';
import { DEFAULT_CONCURRENCY, DEFAULT_MAX_QUEUE, RingQueue, WorkerPool } from '../../src/util/worker-pool.js';
import { ConfigError, MaculaError, QueueFullError, StoppedError } from '../../src/util/errors.js';

/** A promise opened by hand, so tests decide when each job finishes. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets pending promise callbacks and I/O callbacks run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Observes whether a promise has settled without awaiting it. */
function track<T>(p: Promise<T>): { settled: () => 'pending' | 'resolved' | 'rejected'; error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let error: unknown;
  p.then(
    () => (state = 'resolved'),
    (err) => {
      state = 'rejected';
      error = err;
    },
  );
  return { settled: () => state, error: () => error };
}

describe('RingQueue', () => {
  it('is a FIFO across growth and wrap-around', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant(null)), { maxLength: 300 }), (ops) => {
        const ring = new RingQueue<number>(2);
        const model: number[] = [];
        for (const op of ops) {
          if (op === null) assert.equal(ring.shift(), model.shift());
          else {
            ring.push(op);
            model.push(op);
          }
          assert.equal(ring.size, model.length);
          assert.equal(ring.peek(), model[0]);
        }
        assert.deepEqual(ring.drainAll(), model);
        assert.equal(ring.size, 0);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe('WorkerPool', () => {
  it('has the documented defaults and validates its options', () => {
    const pool = new WorkerPool();
    assert.equal(pool.concurrency, DEFAULT_CONCURRENCY);
    assert.equal(pool.concurrency, 64);
    assert.equal(pool.maxQueue, DEFAULT_MAX_QUEUE);
    assert.equal(pool.maxQueue, 10_000);
    assert.equal(pool.maxWaiting, 10_000);
    assert.throws(() => new WorkerPool({}, { concurrency: 0 }), ConfigError);
    assert.throws(() => new WorkerPool({}, { maxQueue: -1 }), ConfigError);
    assert.throws(() => new WorkerPool({}, { maxWaiting: 1.5 }), ConfigError);
  });

  it('a job that returns undefined frees its slot when it returns; one that returns a promise holds it until it settles', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 1 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const ran: string[] = [];
    for (let i = 0; i < 100; i++) assert.ok(pool.trySubmit(() => void ran.push(`sync ${i}`)), 'each sync job finds the slot free');
    assert.equal(ran.length, 100);
    assert.equal(pool.running, 0);
    assert.equal(pool.completed, 100);
    assert.ok(pool.trySubmit(() => held));
    assert.equal(pool.running, 1);
    assert.ok(pool.trySubmit(() => void ran.push('queued')), 'queued behind the held slot');
    assert.equal(pool.trySubmit(() => undefined), false, 'the queue is full');
    const drained = pool.drain();
    release();
    await drained;
    assert.equal(ran.at(-1), 'queued');
    assert.equal(pool.running, 0);
    assert.equal(pool.completed, 102);
  });

  it('never runs more than `concurrency` jobs at once', async () => {
    const pool = new WorkerPool({}, { concurrency: 4, maxQueue: 1000 });
    let running = 0;
    let peak = 0;
    for (let i = 0; i < 200; i++) {
      await pool.submit(async () => {
        running++;
        peak = Math.max(peak, running);
        assert.ok(pool.running <= 4);
        // Jobs of varied length so they finish out of order.
        for (let k = 0; k < (i * 7) % 5; k++) await tick();
        running--;
      });
    }
    await pool.drain();
    assert.equal(peak, 4);
    assert.equal(pool.completed, 200);
    assert.equal(pool.running, 0);
    assert.equal(pool.queued, 0);
  });

  it('keeps the queue bounded under a flood, submitters waiting for room', async () => {
    const pool = new WorkerPool({}, { concurrency: 2, maxQueue: 10, maxWaiting: 5000 });
    const depths: number[] = [];
    const job = async (): Promise<void> => {
      depths.push(pool.queued);
      await tick();
    };
    // 2,000 submitters at once, none awaiting the previous one.
    const accepted: Array<Promise<void>> = [];
    for (let i = 0; i < 2000; i++) {
      accepted.push(pool.submit(job));
      depths.push(pool.queued);
    }
    assert.equal(pool.queued, 10);
    assert.equal(pool.waiting, 2000 - 2 - 10);
    await Promise.all(accepted);
    await pool.drain();
    assert.ok(Math.max(...depths) <= 10, `max depth ${Math.max(...depths)}`);
    assert.equal(pool.peakQueued, 10);
    assert.equal(pool.completed, 2000);
    assert.equal(pool.dropped, 0);
  });

  it('with noWait, refuses at once when full and counts each drop', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 2 });
    const g = gate();
    await pool.submit(() => g.promise);
    await pool.submit(async () => {});
    await pool.submit(async () => {}, { noWait: true });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(pool.submit(async () => {}, { noWait: true }), (err: unknown) => {
        assert.ok(err instanceof QueueFullError);
        assert.equal(err.code, 'MACULA_ERR_QUEUE_FULL');
        assert.equal(err.limit, 2);
        assert.match(err.message, /worker pool queue is full \(limit 2\)/);
        return true;
      });
    }
    assert.equal(pool.trySubmit(async () => {}), false);
    assert.equal(pool.dropped, 6);
    assert.equal(pool.queued, 2);
    g.open();
    await pool.drain();
    assert.equal(pool.completed, 3);
    assert.equal(pool.trySubmit(async () => {}), true);
    await pool.drain();
    assert.equal(pool.stats().completed, 4);
  });

  it('backpressure: a waiting submit resumes when room frees, first come first served', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 1, maxWaiting: 10 });
    const gates = Array.from({ length: 6 }, gate);
    const ran: number[] = [];
    const accepted: number[] = [];
    const job = (i: number) => async () => {
      ran.push(i);
      await gates[i]!.promise;
    };
    await pool.submit(job(0)); // runs
    await pool.submit(job(1)); // queued: the queue is now full
    const waiting = [2, 3, 4].map((i) => pool.submit(job(i)).then(() => accepted.push(i)));
    await tick();
    assert.equal(accepted.length, 0);
    assert.equal(pool.waiting, 3);
    // One more arrives while others wait: it lines up behind them.
    const late = pool.submit(job(5)).then(() => accepted.push(5));
    for (let i = 0; i < 6; i++) {
      gates[i]!.open();
      await tick();
    }
    await Promise.all([...waiting, late]);
    await pool.drain();
    assert.deepEqual(accepted, [2, 3, 4, 5]);
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
    assert.equal(pool.peakQueued, 1);
  });

  it('bounds the number of waiting submitters', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 1, maxWaiting: 2, name: 'fan-out' });
    const g = gate();
    await pool.submit(() => g.promise);
    await pool.submit(async () => {});
    const w1 = track(pool.submit(async () => {}));
    const w2 = track(pool.submit(async () => {}));
    await assert.rejects(pool.submit(async () => {}), /fan-out wait list is full \(limit 2\)/);
    assert.equal(pool.dropped, 1);
    g.open();
    await pool.drain();
    assert.equal(w1.settled(), 'resolved');
    assert.equal(w2.settled(), 'resolved');
    assert.equal(pool.completed, 4);
  });

  it('an aborted wait leaves the line and rejects with the signal reason', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 1, maxWaiting: 10 });
    const g = gate();
    const ran: string[] = [];
    await pool.submit(() => g.promise);
    await pool.submit(async () => {
      ran.push('queued');
    });
    const ac = new AbortController();
    const aborted = track(pool.submit(async () => ran.push('aborted'), { signal: ac.signal }));
    const next = track(pool.submit(async () => ran.push('next')));
    assert.equal(pool.waiting, 2);
    ac.abort(new Error('caller gave up'));
    await tick();
    assert.equal(aborted.settled(), 'rejected');
    assert.match(String(aborted.error()), /caller gave up/);
    assert.equal(pool.waiting, 1);
    await assert.rejects(pool.submit(async () => {}, { signal: ac.signal }), /caller gave up/);
    g.open();
    await pool.drain();
    assert.equal(next.settled(), 'resolved');
    assert.deepEqual(ran, ['queued', 'next']);
  });

  it('counts job failures, reports them, and keeps going', async () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool(
      {
        onError: (err) => {
          errors.push(err);
          // A faulty handler must not break the pool either.
          throw new Error('handler bug');
        },
      },
      { concurrency: 2 },
    );
    await pool.submit(async () => {
      throw new Error('async failure');
    });
    await pool.submit(() => {
      throw new Error('sync failure');
    });
    await pool.submit(async () => {});
    await pool.submit(() => 'a sync job is fine too');
    await pool.drain();
    assert.equal(pool.failed, 2);
    assert.equal(pool.completed, 2);
    assert.deepEqual(errors.map((e) => (e as Error).message).sort(), ['async failure', 'sync failure']);
  });

  it('run resolves with the result, or rejects with the job error without reporting it', async () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool({ onError: (err) => errors.push(err) }, { concurrency: 1, maxQueue: 1 });
    assert.equal(await pool.run(async () => 42), 42);
    await assert.rejects(
      pool.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    const g = gate();
    const blocker = pool.run(() => g.promise);
    await pool.submit(async () => {});
    await assert.rejects(pool.run(async () => 1, { noWait: true }), QueueFullError);
    g.open();
    await blocker;
    await pool.drain();
    assert.deepEqual(errors, []);
    assert.equal(pool.failed, 1);
    assert.equal(pool.completed, 3);
    assert.equal(pool.dropped, 1);
  });

  it('drain resolves once idle', async () => {
    const pool = new WorkerPool({}, { concurrency: 2 });
    await pool.drain();
    const gates = [gate(), gate(), gate()];
    for (const g of gates) await pool.submit(() => g.promise);
    const drained = track(pool.drain());
    gates[0]!.open();
    gates[1]!.open();
    await tick();
    assert.equal(drained.settled(), 'pending');
    assert.equal(pool.running, 1);
    gates[2]!.open();
    await tick();
    assert.equal(drained.settled(), 'resolved');
  });

  it('close refuses new work, rejects waiting submitters, runs what was accepted', async () => {
    const pool = new WorkerPool({}, { concurrency: 1, maxQueue: 1 });
    const g = gate();
    let queuedRan = false;
    await pool.submit(() => g.promise);
    const result = pool.run(async () => {
      queuedRan = true;
      return 'done';
    });
    const waiter = track(pool.submit(async () => {}));
    assert.equal(pool.signal.aborted, false);
    const closed = track(pool.close());
    assert.equal(pool.closed, true);
    assert.equal(pool.signal.aborted, true);
    await tick();
    assert.equal(waiter.settled(), 'rejected');
    assert.ok(waiter.error() instanceof StoppedError);
    await assert.rejects(pool.submit(async () => {}), (err: unknown) => {
      assert.ok(err instanceof StoppedError);
      assert.equal((err as MaculaError).code, 'MACULA_ERR_STOPPED');
      return true;
    });
    assert.throws(() => pool.trySubmit(async () => {}), StoppedError);
    assert.equal(closed.settled(), 'pending');
    g.open();
    assert.equal(await result, 'done');
    await tick();
    assert.equal(closed.settled(), 'resolved');
    assert.equal(queuedRan, true);
    assert.equal(pool.completed, 2);
    await pool.close();
  });

  it('a job may submit more work without awaiting room', async () => {
    // A job that awaited room in its own pool could hold every slot while
    // waiting for a slot: jobs hand work on without awaiting acceptance.
    const pool = new WorkerPool({}, { concurrency: 2, maxQueue: 4, maxWaiting: 100 });
    let count = 0;
    const spawn = (depth: number) => async (): Promise<void> => {
      count++;
      if (depth < 5) {
        void pool.submit(spawn(depth + 1));
        void pool.submit(spawn(depth + 1));
      }
    };
    await pool.submit(spawn(0));
    await pool.drain();
    assert.equal(count, 63);
    assert.ok(pool.peakQueued <= 4);
  });
});

describe('Semaphore', () => {
  it('admits at most `limit` holders, first come first served', async () => {
    const sem = new Semaphore(2);
    assert.equal(sem.tryAcquire(), true);
    await sem.acquire();
    assert.equal(sem.tryAcquire(), false);
    const order: number[] = [];
    const waits = [1, 2, 3].map((i) => sem.acquire().then(() => order.push(i)));
    assert.equal(sem.waiting, 3);
    sem.release();
    await tick();
    assert.deepEqual(order, [1]);
    // A slot handed to a waiter is not free for a newcomer.
    assert.equal(sem.tryAcquire(), false);
    sem.release();
    sem.release();
    await Promise.all(waits);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(sem.active, 2);
    sem.release();
    sem.release();
    assert.equal(sem.active, 0);
    assert.throws(() => sem.release(), /release\(\) without a matching acquire\(\)/);
  });

  it('use() releases even when the function throws', async () => {
    const sem = new Semaphore(1);
    let inside = 0;
    let peak = 0;
    const tasks = Array.from({ length: 10 }, (_, i) =>
      sem.use(async () => {
        inside++;
        peak = Math.max(peak, inside);
        await tick();
        inside--;
        if (i % 3 === 0) throw new Error(`task ${i}`);
        return i;
      }),
    );
    const results = await Promise.allSettled(tasks);
    assert.equal(peak, 1);
    assert.equal(results.filter((r) => r.status === 'rejected').length, 4);
    assert.equal(sem.active, 0);
  });

  it('close rejects waiters and later acquires', async () => {
    const sem = new Semaphore(1, 'lookups');
    await sem.acquire();
    const waiter = track(sem.acquire());
    sem.close();
    await tick();
    assert.equal(waiter.settled(), 'rejected');
    assert.ok(waiter.error() instanceof StoppedError);
    await assert.rejects(sem.acquire(), /lookups is stopped/);
    assert.equal(sem.tryAcquire(), false);
    sem.release();
    assert.throws(() => new Semaphore(0), ConfigError);
  });
});
