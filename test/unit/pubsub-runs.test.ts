/**
 * A run (PubSubRun) at a subscription: a subscription with a run handler
 * (a light client's) takes it whole, others message by message; either way
 * the buffer bound and the drops count messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PubSubRun, Subscription, type PubSubMessage } from '../../src/pubsub/subscription.js';

function subscription(bufferSize: number, withRuns: boolean) {
  const got: PubSubMessage[] = [];
  const runs: PubSubRun[] = [];
  const drops: number[] = [];
  let scheduled = 0;
  const sub = new Subscription(
    {
      handler: (m) => void got.push(m),
      schedule: () => void scheduled++,
      unsubscribe: () => Promise.resolve(),
      onDrop: (_sub, n) => void drops.push(n),
      ...(withRuns && { onRun: (run: PubSubRun) => void runs.push(run) }),
    },
    { id: 1, pattern: 'a.*', bufferSize },
  );
  return { sub, got, runs, drops, scheduledCount: () => scheduled };
}

const run = (k: number, seq = 100) =>
  new PubSubRun(
    'a.b',
    Array.from({ length: k }, (_, i) => i),
    'ab'.repeat(32),
    seq,
    'cd'.repeat(32),
  );

describe('runs at a subscription', () => {
  it('a subscription without a run handler gets each message with its own number, sharing one set of messages', () => {
    const a = subscription(100, false);
    const b = subscription(100, false);
    const r = run(3);
    a.sub.pushRun(r);
    b.sub.pushRun(r);
    assert.equal(a.sub.buffered, 3);
    a.sub.drain();
    b.sub.drain();
    assert.deepEqual(
      a.got.map((m) => [m.topic, m.data, m.seq, m.publisher, m.origin]),
      [0, 1, 2].map((i) => ['a.b', i, 100 + i, 'ab'.repeat(32), 'cd'.repeat(32)]),
    );
    assert.equal(a.got[0], b.got[0], 'messages built once per run');
    assert.equal(a.sub.delivered, 3);
  });

  it('a subscription with a run handler takes the run whole, counting its messages', () => {
    const s = subscription(100, true);
    const r = run(5);
    s.sub.pushRun(r);
    s.sub.push({ topic: 'a.b', data: 'single', publisher: 'x', seq: 1 });
    assert.equal(s.sub.buffered, 6);
    assert.equal(s.scheduledCount(), 1);
    s.sub.drain();
    assert.deepEqual(s.runs, [r]);
    assert.deepEqual(
      s.got.map((m) => m.data),
      ['single'],
    );
    assert.equal(s.sub.delivered, 6);
    assert.equal(s.sub.buffered, 0);
  });

  it('the buffer bound counts messages: what does not fit is dropped and counted per message', () => {
    const s = subscription(10, true);
    s.sub.pushRun(run(4));
    s.sub.pushRun(run(8, 200));
    assert.equal(s.sub.buffered, 10);
    assert.equal(s.sub.dropped, 2);
    s.sub.pushRun(run(3, 300));
    assert.equal(s.sub.dropped, 5);
    assert.deepEqual(s.drops, [2, 3]);
    s.sub.drain();
    assert.deepEqual(
      s.runs.map((r) => [r.seq, r.length, r.data[0]]),
      [
        [100, 4, 0],
        [200, 6, 0],
      ],
      'the part that fits keeps its numbers',
    );
    const plain = subscription(3, false);
    plain.sub.pushRun(run(5));
    assert.deepEqual({ buffered: plain.sub.buffered, dropped: plain.sub.dropped }, { buffered: 3, dropped: 2 });
  });

  it('a closed subscription takes nothing and holds nothing', () => {
    const s = subscription(10, true);
    s.sub.pushRun(run(4));
    s.sub.close();
    assert.equal(s.sub.buffered, 0);
    s.sub.pushRun(run(4));
    s.sub.drain();
    assert.deepEqual(s.runs, []);
  });
});
