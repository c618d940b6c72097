/**
 * A publish is encoded once, whatever the number of subscriber nodes: the
 * payload's fields are read by the encoder exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

const SUBSCRIBERS = 3;

describe('publish to several subscriber nodes', () => {
  let net: Testnet;
  const got: PubSubMessage[][] = [];

  before(async () => {
    net = await createTestnet(1 + SUBSCRIBERS, { transport: 'quic', pubsub: { subscriberCacheTtlMs: 200 } });
    for (const node of net.nodes.slice(1)) {
      const mine: PubSubMessage[] = [];
      got.push(mine);
      await node.subscribe('enc.once', (m) => void mine.push(m)).ready;
    }
    const publisher = net.nodes[0]!;
    await waitFor(async () => (await publisher.publish('enc.once', 'warm-up')).nodes === SUBSCRIBERS, 15_000, 'the publisher sees every subscriber node');
  });
  after(() => net?.destroy());

  it(`encodes the payload once for ${SUBSCRIBERS} subscriber nodes`, async () => {
    let reads = 0;
    // The encoder reads each field of a plain object once per encoding.
    const payload = {
      get reading(): number {
        reads++;
        return 21.5;
      },
    };
    const result = await net.nodes[0]!.publish('enc.once', payload);
    assert.equal(result.nodes, SUBSCRIBERS);
    for (const [i, mine] of got.entries()) {
      await waitFor(() => mine.some((m) => (m.data as { reading?: number })?.reading === 21.5), 10_000, `subscriber ${i + 1} receives the payload`);
    }
    assert.equal(reads, 1, 'one encoding for the size check and every send');
  });
});
