/**
 * A subscription made while the mesh is still young (its record reached
 * fewer than k nodes) must become visible to nodes that join later within
 * seconds, not at the next regular re-announcement minutes later.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTestnet, waitFor } from '../helpers/testnet.js';

describe('early subscriber', () => {
  it('is found by publishers that joined after it subscribed', async () => {
    const net = await createTestnet(1, { transport: 'quic' });
    try {
      const first = net.nodes[0]!;
      let got = 0;
      await first.subscribe('early.#', () => void got++).ready;
      const late = await Promise.all(Array.from({ length: 9 }, () => net.add()));
      const t0 = Date.now();
      await waitFor(
        async () => {
          await Promise.all(late.map((n) => n.publish('early.bird', 1)));
          return got > 0;
        },
        30_000,
        'the early subscriber receives',
      );
      // every late node reaches it
      got = 0;
      await waitFor(
        async () => {
          await Promise.all(late.map((n) => n.publish('early.bird', 2)));
          return got >= late.length;
        },
        30_000,
        'every late publisher reaches it',
      );
      assert.ok(Date.now() - t0 < 60_000);
    } finally {
      await net.destroy();
    }
  });
});
