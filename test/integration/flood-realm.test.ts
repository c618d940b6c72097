/**
 * A publisher flooding faster than its subscribers drain, and realm
 * isolation, over real QUIC on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { QueueFullError } from '../../src/util/errors.js';
import { createTestnet, waitFor } from '../helpers/testnet.js';


describe('flood', () => {
  it('keeps every queue within its limit, counts the drops, and keeps memory bounded', async () => {
    const fanoutQueue = 500;
    const net = await createTestnet(4, { transport: 'quic', pubsub: { fanoutQueue, fanoutConcurrency: 8, subscriptionBufferSize: 50 } });
    try {
      const [publisher, ...subscribers] = net.nodes;
      // A subscriber that never finishes handling: its buffer fills and overflows.
      const stuck = subscribers[0]!.subscribe('flood.#', () => new Promise(() => {}));
      let fastCount = 0;
      const fast = subscribers[1]!.subscribe('flood.*', () => void fastCount++);
      await Promise.all([stuck.ready, fast.ready]);
      await waitFor(async () => (await publisher!.publish('flood.warmup', 0)).nodes === 2, 15_000, 'publisher sees both subscriber nodes');

      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let peakQueue = 0;
      const sampler = setInterval(() => {
        peakQueue = Math.max(peakQueue, publisher!.pubsub.stats().fanout.queued);
      }, 5);
      const payload = new Uint8Array(1000);
      const deadline = Date.now() + 4000;
      let published = 0;
      let refused = 0;
      // Awaited publishes (backpressure) interleaved with noWait bursts (refused when full).
      while (Date.now() < deadline) {
        await publisher!.publish('flood.x', payload);
        published++;
        for (let i = 0; i < 50; i++) {
          publisher!.publish('flood.x', payload, { noWait: true }).then(
            () => published++,
            (err) => {
              assert.ok(err instanceof QueueFullError, String(err));
              refused++;
            },
          );
        }
        peakQueue = Math.max(peakQueue, publisher!.pubsub.stats().fanout.queued);
      }
      clearInterval(sampler);
      await publisher!.pubsub.fanoutPool.drain();
      const stats = publisher!.pubsub.stats();
      assert.ok(peakQueue <= fanoutQueue, `fan-out queue peaked at ${peakQueue} > ${fanoutQueue}`);
      assert.ok(stats.fanout.peakQueued <= fanoutQueue);
      assert.ok(refused > 0, 'noWait publishes were refused when the queue was full');
      assert.equal(stats.publishesDropped, refused, 'every refusal is counted');
      await waitFor(() => subscribers[0]!.pubsub.stats().dropped > 0, 10_000, 'the stuck subscription drops and counts');
      const stuckSub = subscribers[0]!.pubsub.stats();
      assert.ok(stuckSub.dropped > 0);
      assert.ok(stuck.buffered <= 50, `subscription buffer ${stuck.buffered} within its bound`);
      assert.ok(fastCount > 0, 'the fast subscriber keeps receiving');
      const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
      assert.ok(rssGrowthMb < 400, `RSS grew by ${rssGrowthMb.toFixed(0)} MB during the flood (${published} published)`);
    } finally {
      await net.destroy();
    }
  });
});

describe('realm isolation', () => {
  it('nodes of another realm can neither join, publish into, subscribe to, call, nor read registrations', async () => {
    const red = await createTestnet(3, { transport: 'quic', realm: 'red' });
    const warnings: string[] = [];
    const blue = await new MeshNode(Identity.generate(), {
      host: '127.0.0.1',
      port: 0,
      realm: 'blue',
      logger: { warn: (m) => warnings.push(m) },
      bootstrap: [red.nodes[0]!.listenAddress!],
      dht: { bootstrapRetryMinMs: 60_000 },
      rpc: { client: { timeoutMs: 1000 } },
    }).start();
    try {
      await red.nodes[1]!.register('secret.op', () => 'red only');
      let redGot = 0;
      await red.nodes[2]!.subscribe('news.#', () => void redGot++).ready;
      const joined = await blue.joined();
      assert.equal(joined.reached, 0, 'the red bootstrap node refuses a blue node');
      assert.ok(warnings.some((w) => /realm/i.test(w)), `the warning names the realm problem: ${warnings.join(' | ')}`);
      assert.equal(blue.dht.table.size, 0);
      assert.equal(red.nodes[0]!.dht.table.toArray().some((c) => Buffer.from(c.id).toString('hex') === blue.nodeId), false);
      // Nothing of red is visible or reachable from blue.
      assert.deepEqual(await blue.lookup('rpc:secret.op'), []);
      await assert.rejects(blue.call('secret.op', null), { code: 'MACULA_ERR_NO_PROVIDERS' });
      assert.equal((await blue.publish('news.today', 'blue says hi')).nodes, 0);
      let blueGot = 0;
      blue.subscribe('news.#', () => void blueGot++);
      await red.nodes[0]!.publish('news.today', 'red news');
      await waitFor(() => redGot >= 1, 10_000, 'red subscriber gets red news');
      assert.equal(blueGot, 0);
      // A direct request across realms is refused by the handshake.
      await assert.rejects(blue.ping(red.nodes[0]!.listenAddress!), { code: 'MACULA_ERR_REALM' });
    } finally {
      await blue.stop();
      await red.destroy();
    }
  });
});
