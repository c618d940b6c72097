/**
 * Fan-out pool slots: a send queued on a connection below its high-water
 * mark frees its slot at once (so one write carries everything queued
 * meanwhile); past the mark the slot is held until the write completes, so
 * a stuck peer fills the slots, then the queue, and the publisher waits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Fanout, type FanoutConnection, type FanoutTarget } from '../../src/pubsub/fanout.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';

interface Harness {
  fanout: Fanout;
  /** Writes not completed yet, in order. */
  pending: Array<{ resolve(): void; reject(err: unknown): void }>;
  setCongested(on: boolean): void;
}

function harness(concurrency: number, maxQueue: number): Harness {
  const conn: FanoutConnection = { close: () => undefined };
  const pending: Harness['pending'] = [];
  let congested = false;
  const messenger = {
    notify: (_t: FanoutTarget, _m: OutboundMessage): Promise<void> => Promise.reject(new Error('not used: the connection is known')),
    pool: { connectionTo: () => conn },
    notifyOn: (_c: FanoutConnection, _m: OutboundMessage): Promise<void> => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })),
    congested: () => congested,
  };
  const fanout = new Fanout(
    { messenger, clock: { now: () => Date.now() } },
    { concurrency, maxQueue, nodeBacklog: 10, downBackoffMs: 60_000, maxDownBackoffMs: 60_000, sendStallMs: 60_000, maxPeers: 10 },
  );
  return { fanout, pending, setCongested: (on) => (congested = on) };
}

const msg: OutboundMessage = { t: 30, tp: 'a', d: 1, s: 1 };
const address = { host: '127.0.0.1', port: 1 };
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('fan-out slots', () => {
  it('below the high-water mark a send frees its slot when queued: many sends ride on writes not yet completed', async () => {
    const h = harness(2, 4);
    const peer = h.fanout.peer('n1', address);
    for (let i = 0; i < 100; i++) await h.fanout.submit([peer], msg);
    await tick();
    assert.equal(h.pending.length, 100, 'every send was queued although no write completed');
    assert.equal(h.fanout.pool.running, 0);
    for (const p of h.pending) p.resolve();
    await tick();
    assert.equal(h.fanout.stats().sent, 100);
    await h.fanout.close();
  });

  it('past the mark each send holds its slot until its write completes, and then the publisher waits', async () => {
    const h = harness(2, 4);
    h.setCongested(true);
    const peer = h.fanout.peer('n1', address);
    // 2 running + 4 queued are accepted at once; the 7th publish waits for room.
    for (let i = 0; i < 6; i++) assert.equal(h.fanout.submit([peer], msg), undefined);
    const waiting = h.fanout.submit([peer], msg);
    assert.ok(waiting instanceof Promise, 'the publisher is made to wait');
    let admitted = false;
    void waiting.then(() => (admitted = true));
    await tick();
    assert.equal(h.pending.length, 2, 'only the slots send');
    assert.equal(admitted, false);
    // One write completes: its slot takes the next queued send, and the waiting publish gets in.
    h.pending[0]!.resolve();
    await tick();
    assert.equal(h.pending.length, 3);
    assert.equal(admitted, true);
    // The peer drains: sends free their slots at queue time again.
    h.setCongested(false);
    for (const p of h.pending) p.resolve();
    await tick();
    assert.equal(h.pending.length, 7);
    for (const p of h.pending) p.resolve();
    await h.fanout.pool.drain();
    assert.equal(h.fanout.stats().sent, 7);
    await h.fanout.close();
  });

  it('a failed write counts and marks the node down even when its slot was freed at queue time', async () => {
    const h = harness(2, 4);
    const peer = h.fanout.peer('n1', address);
    await h.fanout.submit([peer], msg);
    await tick();
    assert.equal(h.fanout.pool.running, 0);
    h.pending[0]!.reject(new Error('connection lost'));
    await tick();
    assert.equal(h.fanout.stats().sendFailures, 1);
    assert.equal(h.fanout.stats().peersDown, 1);
    await h.fanout.close();
  });
});
