/**
 * The observed address and the reachability check over real QUIC on
 * loopback. Reachable nodes find themselves `public`; a node whose announced
 * port nobody can reach finds itself `private`; dial-backs past the limit are
 * refused and counted. The NAT topology in network namespaces is in
 * test/integration/nat.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSocket } from 'node:dgram';
import { ObservedAddresses } from '../../src/nat/observed.js';
import { ReachabilityCheck } from '../../src/nat/reachability.js';
import { createTestnet, waitFor } from '../helpers/testnet.js';

const fast = { firstCheckMs: 50, retryMs: 200, dialBackTimeoutMs: 1500 };

describe('reachability check on loopback', () => {
  it('nodes that can be dialed find themselves public; HELLO_ACK tells each the address its packets came from', async () => {
    const net = await createTestnet(3, { reachability: fast });
    try {
      await waitFor(() => net.nodes.every((n) => n.reachability?.status === 'public'), 20_000, 'every node public');
      for (const n of net.nodes) {
        const s = n.snapshot().nat!;
        assert.equal(s.observed.host, '127.0.0.1');
        assert.equal(s.observed.behindNat, false, 'loopback is a local address: no NAT');
        assert.ok(s.reachability!.answers.reached >= 1);
      }
      // The dial-backs did not take the place of the connections in use.
      const served = net.nodes.reduce((a, n) => a + n.reachability!.stats().dialBacks.reached, 0);
      assert.ok(served >= 3, `dial-backs served: ${served}`);
    } finally {
      await net.destroy();
    }
  });

  it('a node whose announced port does not answer is private', async () => {
    const net = await createTestnet(3, { reachability: false });
    // A UDP port bound and silent: QUIC dials to it time out, as to a NAT that drops them.
    const blackhole = createSocket('udp4');
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    try {
      const node = net.nodes[2]!;
      const [a, b] = [net.nodes[0]!, net.nodes[1]!];
      // Peers that serve dial-backs.
      for (const n of [a, b]) {
        new ReachabilityCheck({ messenger: n.messenger, transport: n.transport, observed: new ObservedAddresses(), peers: () => [], directAddress: () => n.advertisedAddress });
      }
      const check = new ReachabilityCheck(
        {
          messenger: node.messenger,
          transport: node.transport,
          observed: node.observed,
          peers: () => node.dht.table.toArray(),
          directAddress: () => ({ host: '127.0.0.1', port: (blackhole.address() as { port: number }).port }),
        },
        { dialBackTimeoutMs: 800 },
      );
      assert.equal(await check.check(), 'private');
      const s = check.stats();
      assert.ok(s.answers.unreached >= 2, JSON.stringify(s));
      assert.equal(s.answers.reached, 0);
      check.stop();
    } finally {
      blackhole.close();
      await net.destroy();
    }
  });

  it('dial-backs past the limit are refused with MACULA_ERR_LIMIT and counted', async () => {
    const net = await createTestnet(2, { reachability: false });
    try {
      const [server, asker] = [net.nodes[0]!, net.nodes[1]!];
      const serving = new ReachabilityCheck(
        { messenger: server.messenger, transport: server.transport, observed: new ObservedAddresses(), peers: () => [], directAddress: () => server.advertisedAddress },
        { maxConcurrentDialBacks: 0 },
      );
      const check = new ReachabilityCheck({
        messenger: asker.messenger,
        transport: asker.transport,
        observed: asker.observed,
        peers: () => asker.dht.table.toArray(),
        directAddress: () => asker.advertisedAddress,
      });
      assert.equal(await check.check(), 'unknown', 'a refusal is no answer');
      assert.equal(check.stats().answers.none, 1);
      assert.equal(serving.stats().dialBacks.refused, 1);
      check.stop();
    } finally {
      await net.destroy();
    }
  });
});
