/**
 * A publisher's messages to one topic arrive in the order it published them,
 * also while the topic's subscriber nodes are being looked up: the answer is
 * cached before the first publish resumes, and publishes arriving in between
 * (a burst read off one stream, as from a web session) must not overtake it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { createTestnet, waitFor } from '../helpers/testnet.js';

describe('pub/sub order', () => {
  it('keeps the order of publishes made while the topic is looked up', async () => {
    const net = await createTestnet(1, { transport: 'quic' });
    try {
      const node = net.nodes[0]!;
      const got: unknown[] = [];
      await node.subscribe('order.#', (m: PubSubMessage) => void got.push(m.data)).ready;
      for (const topic of ['order.a', 'order.b']) {
        got.length = 0;
        const sent: Promise<unknown>[] = [];
        for (let i = 0; i < 200; i++) {
          sent.push(node.publish(topic, i));
          await Promise.resolve();
        }
        await Promise.all(sent);
        await waitFor(() => got.length === 200, 10_000, `every message to ${topic}`);
        assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i), topic);
      }
    } finally {
      await net.destroy();
    }
  });
});
