/**
 * Pub/sub across a 10-node QUIC testnet on loopback, through each node's PubSub.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PubSub } from '../../src/pubsub/pubsub.js';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

function sink(): { got: PubSubMessage[]; handler: (m: PubSubMessage) => void } {
  const got: PubSubMessage[] = [];
  return { got, handler: (m) => void got.push(m) };
}

describe('pub/sub over a 10-node QUIC testnet', { timeout: 60_000 }, () => {
  let net: Testnet;
  let ps: PubSub[];

  before(async () => {
    net = await createTestnet(10);
    ps = net.nodes.map((n) => n.pubsub);
  });

  after(async () => {
    await net.destroy();
  });

  it('delivers exact, * and # subscriptions, overlapping patterns once per subscription, one message per node', async () => {
    const exact = sink();
    const star = sink();
    const hash = sink();
    const overlap = [sink(), sink(), sink()];
    const wrongTopic = sink();
    const wrongDepth = sink();
    const all = sink();
    const subs = [
      ps[1]!.subscribe('weather.paris.temp', exact.handler),
      ps[2]!.subscribe('weather.*.temp', star.handler),
      ps[3]!.subscribe('weather.#', hash.handler),
      ps[4]!.subscribe('weather.paris.temp', overlap[0]!.handler),
      ps[4]!.subscribe('weather.*.temp', overlap[1]!.handler),
      ps[4]!.subscribe('weather.paris.#', overlap[2]!.handler),
      ps[5]!.subscribe('weather.london.temp', wrongTopic.handler),
      ps[6]!.subscribe('weather.*', wrongDepth.handler),
      ps[7]!.subscribe('#', all.handler),
    ];
    await Promise.all(subs.map((s) => s.ready));

    const res = await ps[0]!.publish('weather.paris.temp', { c: 21 });
    assert.deepEqual(res, { nodes: 5, local: 0 });
    const total = () => [exact, star, hash, ...overlap, all].reduce((n, s) => n + s.got.length, 0);
    await waitFor(() => total() === 7, 10_000, 'deliveries');
    for (const s of [exact, star, hash, ...overlap, all]) {
      assert.equal(s.got.length, 1);
      assert.deepEqual(s.got[0]!.data, { c: 21 });
      assert.equal(s.got[0]!.publisher, net.nodes[0]!.nodeId);
    }
    assert.equal(wrongTopic.got.length + wrongDepth.got.length, 0);
    const received = ps.map((p) => p.stats().received);
    assert.deepEqual(received, [0, 1, 1, 1, 1, 0, 0, 1, 0, 0], 'one PUBLISH per subscriber node, none elsewhere');

    // `#` also matches a single-segment topic; `weather.#` matches `weather` itself.
    await ps[0]!.publish('weather', 1);
    await waitFor(() => hash.got.length === 2 && all.got.length === 2, 10_000, '# deliveries');
    assert.equal(overlap[2]!.got.length, 1, 'weather.paris.# does not match weather');

    // A publisher also delivers to its own subscriptions, without the network.
    const own = sink();
    await ps[0]!.subscribe('weather.paris.*', own.handler).ready;
    const res2 = await ps[0]!.publish('weather.paris.rain', 0);
    assert.equal(res2.local, 1);
    await waitFor(() => own.got.length === 1, 5000, 'local delivery');
    await Promise.all(subs.map((s) => s.unsubscribe()));
  });

  it('unsubscribe stops delivery', async () => {
    const kept = sink();
    const gone = sink();
    await ps[8]!.subscribe('news.*', kept.handler).ready;
    const leaving = ps[9]!.subscribe('news.*', gone.handler);
    await leaving.ready;
    await ps[0]!.publish('news.a', 0);
    await waitFor(() => kept.got.length === 1 && gone.got.length === 1, 10_000, 'first delivery');

    await leaving.unsubscribe();
    let i = 1;
    // The publisher learns it from the node's UNSUBSCRIBED answer (or from the DHT once its cache expires).
    await waitFor(async () => (await ps[0]!.publish('news.a', i++)).nodes === 1, 15_000, 'publisher drops the node');
    const sent = i;
    await waitFor(() => kept.got.length === sent, 10_000, 'the remaining subscriber gets everything');
    assert.equal(gone.got.length, 1, 'nothing delivered after unsubscribe');
  });

  it('keeps per-publisher order: 500 numbered messages arrive strictly increasing, no duplicates', async () => {
    const got = sink();
    await ps[9]!.subscribe('seq.test', got.handler).ready;
    const publishes: Promise<unknown>[] = [];
    for (let i = 0; i < 500; i++) publishes.push(ps[1]!.publish('seq.test', i));
    await Promise.all(publishes);
    await waitFor(() => got.got.length === 500, 20_000, '500 deliveries');
    const nums = got.got.map((m) => m.data as number);
    for (let k = 1; k < nums.length; k++) {
      assert.ok(nums[k]! > nums[k - 1]!, `message ${nums[k]} after ${nums[k - 1]}`);
      assert.ok(got.got[k]!.seq > got.got[k - 1]!.seq);
    }
    assert.equal(new Set(nums).size, 500);
  });

  it('a subscriber node dying mid-stream does not stall the publisher', async () => {
    const survivor = sink();
    const victimSink = sink();
    await ps[2]!.subscribe('stream.x', survivor.handler).ready;
    await ps[3]!.subscribe('stream.x', victimSink.handler).ready;
    const victim = net.nodes[3]!;
    const TOTAL = 1500;
    let killed = false;
    for (let i = 0; i < TOTAL; i++) {
      await ps[0]!.publish('stream.x', i);
      if (i === 200) {
        await waitFor(() => victimSink.got.length > 0, 10_000, 'victim receiving');
        void ps[3]!.stop({ withdraw: false });
        await net.kill(victim);
        killed = true;
      }
      // Yield now and then so the sends, the kill and the connection close interleave with publishing.
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(killed);
    await waitFor(() => survivor.got.length === TOTAL, 20_000, 'the surviving subscriber gets every message');
    const f = ps[0]!.stats().fanout;
    const lostToVictim = f.sendFailures + f.skippedDown + f.backlogDropped + f.backlogged;
    assert.ok(victimSink.got.length < TOTAL, 'the victim stopped receiving');
    assert.ok(lostToVictim > 0 || ps[0]!.stats().cache.invalidations > 0, 'the loss is accounted for');
    assert.ok(f.running < f.concurrency, 'no pool slots stuck on the dead node');
  });
});
