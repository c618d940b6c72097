/**
 * A publish is encoded once, whatever the number of subscriber nodes, and
 * an RPC call's arguments once, whatever the number of attempts: the
 * encoder reads the value's fields exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

/** A plain map whose one field counts how often it is read (the encoder reads each field once per encoding). */
function counted(): { value: object; reads: () => number } {
  let reads = 0;
  return {
    value: {
      get reading(): number {
        reads++;
        return 21.5;
      },
    },
    reads: () => reads,
  };
}

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
    const payload = counted();
    const result = await net.nodes[0]!.publish('enc.once', payload.value);
    assert.equal(result.nodes, SUBSCRIBERS);
    for (const [i, mine] of got.entries()) {
      await waitFor(() => mine.some((m) => (m.data as { reading?: number })?.reading === 21.5), 10_000, `subscriber ${i + 1} receives the payload`);
    }
    assert.equal(payload.reads(), 1, 'one encoding for the size check and every send');
  });
});

describe('an RPC call that fails over', () => {
  let net: Testnet;

  before(async () => {
    net = await createTestnet(3, { transport: 'quic' });
    let calls = 0;
    for (const node of net.nodes.slice(1)) {
      // The first attempt never gets an answer, so the call moves on to the other provider.
      await node.register('enc.echo', (args) => (++calls === 1 ? new Promise(() => {}) : args));
    }
    await waitFor(async () => (await net.nodes[0]!.lookup('rpc:enc.echo')).length === 2, 15_000, 'the caller sees both providers');
  });
  after(() => net?.destroy());

  it('encodes its arguments once for the size check and every attempt', async () => {
    const args = counted();
    const r = (await net.nodes[0]!.call('enc.echo', args.value, { timeout: 4000 })) as { reading: number };
    assert.equal(r.reading, 21.5);
    assert.equal(net.nodes[0]!.rpc.stats().failovers, 1, 'two attempts');
    assert.equal(args.reads(), 1, 'one encoding for the size check and both attempts');
  });
});
