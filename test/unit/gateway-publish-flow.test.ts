/** The node's side of light-client publishing (PublishFlow): acknowledgements, failures and the window. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GW_ACK, GW_NACK } from '../../src/gateway/messages.js';
import { PublishFlow, type PublishCounters } from '../../src/gateway/publish-flow.js';
import { pendingBytesFor } from '../../src/gateway/client-publisher.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';

/** Two event-loop turns: settlements in one, the acknowledgement they schedule in the next. */
async function turn(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
}

function flow(window: number, windowBytes = 1 << 30): { flow: PublishFlow; sent: OutboundMessage[]; counters: PublishCounters } {
  const counters: PublishCounters = { publishes: 0, publishPending: 0, publishFailures: 0, publishOverruns: 0, publishRuns: 0 };
  const sent: OutboundMessage[] = [];
  return { flow: new PublishFlow(window, windowBytes, counters, (m) => void sent.push(m)), sent, counters };
}

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: unknown): void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('PublishFlow', () => {
  it('acknowledges a burst with one cumulative GW_ACK per turn', async () => {
    const { flow: f, sent, counters } = flow(16);
    for (let n = 1; n <= 10; n++) f.accept(n, 0, () => Promise.resolve());
    await turn();
    assert.deepEqual(sent, [{ t: GW_ACK.type, n: 10 }]);
    assert.deepEqual(counters, { publishes: 10, publishPending: 0, publishFailures: 0, publishOverruns: 0, publishRuns: 0 });
  });

  it('acknowledges in order: a publish accepted early waits for the older one', async () => {
    const { flow: f, sent } = flow(16);
    const first = deferred();
    f.accept(1, 0, () => first.promise);
    f.accept(2, 0, () => Promise.resolve());
    await turn();
    assert.deepEqual(sent, [], 'nothing acknowledged past an unfinished publish');
    first.resolve();
    await turn();
    assert.deepEqual(sent, [{ t: GW_ACK.type, n: 2 }]);
  });

  it('names a failed publish in GW_NACK and still acknowledges it', async () => {
    const { flow: f, sent, counters } = flow(16);
    f.accept(1, 0, () => Promise.reject(Object.assign(new Error('no'), { code: 'MACULA_ERR_FORBIDDEN' })));
    f.accept(2, 0, () => {
      throw new Error('sync failure');
    });
    await turn();
    assert.deepEqual(sent, [
      { t: GW_NACK.type, n: 1, code: 'MACULA_ERR_FORBIDDEN', message: 'no' },
      { t: GW_NACK.type, n: 2, code: 'MACULA_ERR_HANDLER', message: 'sync failure' },
      { t: GW_ACK.type, n: 2 },
    ]);
    assert.equal(counters.publishFailures, 2);
  });

  it('refuses, counts and does not hold what comes past the window', async () => {
    const { flow: f, sent, counters } = flow(2);
    const held = deferred();
    f.accept(1, 0, () => held.promise);
    f.accept(2, 0, () => held.promise);
    let called = false;
    f.accept(3, 0, () => {
      called = true;
      return Promise.resolve();
    });
    assert.equal(called, false, 'a publish past the window never reaches pub/sub');
    assert.equal(f.pending, 2);
    assert.equal(counters.publishOverruns, 1);
    assert.equal(sent.length, 1);
    assert.equal((sent[0] as unknown as { code: string }).code, 'MACULA_ERR_FLOW_CONTROL');
    assert.equal((sent[0] as unknown as { n: number }).n, 3);
    held.resolve();
    await turn();
    assert.deepEqual(sent.at(-1), { t: GW_ACK.type, n: 2 });
    assert.equal(counters.publishPending, 0);
  });

  it("refuses past the window's bytes too, and takes publishes again once they are handled", async () => {
    const { flow: f, sent, counters } = flow(100, 1000);
    const held = deferred();
    f.accept(1, 600, () => held.promise);
    f.acceptRun(2, 4, 500, () => held.promise.then(() => undefined), () => () => assert.fail('not split: the run started under the line'));
    assert.equal(f.pendingBytes, 1100, 'the frame that crosses the line is taken');
    let called = false;
    f.accept(6, 10, () => {
      called = true;
      return Promise.resolve();
    });
    f.acceptRun(7, 2, 20, () => assert.fail('not as a run'), () => () => assert.fail('not one by one either'));
    assert.equal(called, false, 'nothing past the bytes reaches pub/sub');
    assert.deepEqual(
      sent.map((m) => [(m as unknown as { n: number }).n, (m as unknown as { code: string }).code]),
      [
        [6, 'MACULA_ERR_FLOW_CONTROL'],
        [7, 'MACULA_ERR_FLOW_CONTROL'],
        [8, 'MACULA_ERR_FLOW_CONTROL'],
      ],
    );
    assert.match((sent[0] as unknown as { message: string }).message, /1000 bytes/);
    assert.equal(counters.publishOverruns, 3);
    held.resolve();
    await turn();
    assert.equal(f.pendingBytes, 0);
    f.accept(9, 10, () => Promise.resolve());
    await turn();
    assert.deepEqual(sent.at(-1), { t: GW_ACK.type, n: 9 });
  });

  it('sends nothing once its client is gone, but keeps the totals right', async () => {
    const { flow: f, sent, counters } = flow(4);
    const held = deferred();
    f.accept(1, 0, () => held.promise);
    f.close();
    held.reject(new Error('stopped'));
    await turn();
    assert.deepEqual(sent, []);
    assert.deepEqual(counters, { publishes: 1, publishPending: 0, publishFailures: 1, publishOverruns: 0, publishRuns: 0 });
  });

  it('holds a run as one pending entry of k publishes, acknowledged up to n + k - 1', async () => {
    const { flow: f, sent, counters } = flow(16);
    const gate = deferred();
    let calls = 0;
    f.accept(1, 0, () => Promise.resolve());
    f.acceptRun(2, 5, 0, () => (calls++, gate.promise.then(() => undefined)), () => () => assert.fail('not split'));
    assert.equal(calls, 1, 'pub/sub called once for the run');
    assert.equal(f.pending, 6);
    assert.equal(counters.publishPending, 6);
    await turn();
    assert.deepEqual(sent, [{ t: GW_ACK.type, n: 1 }]);
    gate.resolve();
    await turn();
    assert.deepEqual(sent.at(-1), { t: GW_ACK.type, n: 6 });
    assert.deepEqual({ pending: f.pending, publishes: counters.publishes, publishPending: counters.publishPending }, { pending: 0, publishes: 6, publishPending: 0 });
  });

  it('a failed run names each of its publishes; a run failing in part names those only', async () => {
    const { flow: f, sent, counters } = flow(16);
    const no = Object.assign(new Error('no'), { code: 'MACULA_ERR_FORBIDDEN' });
    f.acceptRun(1, 3, 0, () => Promise.reject(no), () => () => assert.fail('not split'));
    f.acceptRun(4, 3, 0, () => Promise.resolve([{ index: 1, error: no }]), () => () => assert.fail('not split'));
    await turn();
    assert.deepEqual(
      sent.map((m) => [m.t, (m as Record<string, unknown>).n]),
      [
        [GW_NACK.type, 1],
        [GW_NACK.type, 2],
        [GW_NACK.type, 3],
        [GW_NACK.type, 5],
        [GW_ACK.type, 6],
      ],
    );
    assert.equal(counters.publishFailures, 4);
  });

  it('a run beyond the window is taken publish by publish: exactly those past the window are refused', async () => {
    const { flow: f, sent, counters } = flow(4);
    const gate = deferred();
    f.accept(1, 0, () => gate.promise);
    f.accept(2, 0, () => gate.promise);
    const one: number[] = [];
    f.acceptRun(3, 4, 0, () => assert.fail('split instead'), (i) => () => (one.push(i), gate.promise));
    assert.deepEqual(one, [0, 1]);
    assert.equal(counters.publishOverruns, 2);
    gate.resolve();
    await turn();
    assert.deepEqual(
      sent.map((m) => [m.t, (m as Record<string, unknown>).n]),
      [
        [GW_NACK.type, 5],
        [GW_NACK.type, 6],
        [GW_ACK.type, 4],
      ],
      'refused publishes are not held, as single ones past the window',
    );
  });
});

describe('pendingBytesFor', () => {
  it("keeps a client to half the node's bytes, or its own bound when that is lower or the node announces none", () => {
    assert.equal(pendingBytesFor({ publishWindowBytes: 32 << 20 }, 8 << 20), 8 << 20);
    assert.equal(pendingBytesFor({ publishWindowBytes: 4 << 20 }, 8 << 20), 2 << 20);
    assert.equal(pendingBytesFor({}, 8 << 20), 8 << 20);
  });
});
