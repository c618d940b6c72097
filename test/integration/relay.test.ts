/**
 * Relayed connections over real QUIC on loopback: a node that keeps relays
 * (made to, as a node found private would) is reached through them with the
 * node ID its Noise handshake proves, the relays forward only ciphertext,
 * and their limits refuse and count. RPC and pub/sub through relays, where
 * no direct path exists, are in test/integration/nat.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIND_VALUE } from '../../src/dht/messages.js';
import type { MeshNode } from '../../src/node/mesh-node.js';
import { relaysOf } from '../../src/transport/relayed-address.js';
import type { Connection } from '../../src/transport/types.js';
import { PING } from '../../src/wire/messages.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

const MARKER = 'plaintext-marker-7f3a9c';
/** Relays for everyone, no reachability checks: the test decides who is behind relays. */
const options = { reachability: { firstCheckMs: 3_600_000 } };

async function hide(node: MeshNode, relays: number): Promise<void> {
  node.relayClient!.setActive(true);
  await waitFor(() => node.relayClient!.stats().relays.length === relays, 15_000, `${relays} relays reserved`);
}

function relayStats(net: Testnet) {
  const all = net.nodes.map((n) => n.relayServer!.stats());
  return {
    circuitsOpened: all.reduce((a, s) => a + s.circuitsOpened, 0),
    bytesForwarded: all.reduce((a, s) => a + s.bytesForwarded, 0),
    refused: (reason: keyof (typeof all)[0]['refused']) => all.reduce((a, s) => a + s.refused[reason], 0),
    ended: (reason: keyof (typeof all)[0]['ended']) => all.reduce((a, s) => a + s.ended[reason], 0),
  };
}

describe('relayed connections on loopback', () => {
  it('dials a node through its relays: the node ID comes from the Noise handshake, the relays see only ciphertext', async () => {
    const net = await createTestnet(4, { ...options, relay: { serve: true } });
    try {
      const [, , caller, hidden] = net.nodes as [MeshNode, MeshNode, MeshNode, MeshNode];
      await hide(hidden, 2);
      const address = hidden.advertisedAddress;
      assert.equal(relaysOf(address.host)?.length, 2, address.host);
      let scanned = 0;
      let leaks = 0;
      for (const n of net.nodes) {
        n.relayServer!.onForward = (payload) => {
          scanned += payload.length;
          if (Buffer.from(payload).includes(MARKER)) leaks++;
        };
      }
      const conn = await caller.transport.dial(address, { expectedNodeId: hidden.nodeId });
      assert.equal(conn.relayed, true);
      assert.equal(conn.remoteNodeIdHex, hidden.nodeId);
      // A request carrying the marker in plaintext: a 32-byte DHT key.
      const key = Buffer.alloc(32);
      key.write(MARKER);
      const answer = await caller.messenger.requestOn(conn, { t: FIND_VALUE.type, key });
      assert.ok(Array.isArray(answer.nodes));
      await caller.messenger.requestOn(conn, { t: PING.type });
      assert.ok(scanned > 0, 'the relays forwarded the exchange');
      assert.equal(leaks, 0, 'no forwarded payload holds the plaintext marker');
      assert.ok(relayStats(net).circuitsOpened >= 1);
      await waitFor(() => hidden.relayClient!.stats().circuitsAccepted >= 1, 5000, 'the hidden node accepted the circuit');
      conn.close();

      // Expecting another node behind that address fails on the handshake's identity.
      await assert.rejects(caller.transport.dial(address, { expectedNodeId: net.nodes[0]!.nodeId }), (err: Error & { code?: string }) => {
        assert.match(err.message, /through its relays|has ID/);
        return true;
      });
    } finally {
      await net.destroy();
    }
  });

  it('a relayed connection is replaced by a direct one when the node behind the relay becomes reachable', async () => {
    const net = await createTestnet(1, { ...options, relay: { serve: true } });
    try {
      const caller = await net.add({ relay: { serve: false } });
      const hidden = await net.add({ relay: { serve: false } });
      await hide(hidden, 1);
      // On loopback the direct path exists: drop whatever direct connection the join made, then dial the relayed address.
      let relayed: Connection | undefined;
      for (let i = 0; i < 20 && relayed?.relayed !== true; i++) {
        for (const c of [caller.pool.connectionTo(hidden.nodeId), hidden.pool.connectionTo(caller.nodeId)]) c?.close();
        caller.liveness.up(hidden.nodeId);
        relayed = await caller.pool.get(hidden.advertisedAddress, hidden.nodeId);
      }
      assert.equal(relayed?.relayed, true, 'the caller holds a relayed connection');
      await caller.messenger.requestOn(relayed!, { t: PING.type });
      // Found reachable: the node lets its relays go and tells its relayed peers where to dial it.
      hidden.relayClient!.setActive(false);
      await waitFor(() => {
        const conn = caller.pool.connectionTo(hidden.nodeId);
        return conn !== undefined && conn.relayed !== true;
      }, 10_000, 'a direct connection in use');
      assert.equal(hidden.directUpgrade.stats().announced, 1);
      assert.equal(caller.directUpgrade.stats().upgraded, 1);
      await waitFor(() => relayed!.isClosed, 15_000, 'the relayed connection closed after the grace period');
    } finally {
      await net.destroy();
    }
  });

  it('refuses past its limits with MACULA_ERR_RELAY_* codes and counts each refusal', async () => {
    const net = await createTestnet(1, { ...options, relay: { serve: true, limits: { maxReservations: 1, maxCircuits: 1, circuitMaxBytes: 16 * 1024 } } });
    try {
      const relay = net.nodes[0]!;
      const [hidden, second] = [await net.add({ relay: { serve: false } }), await net.add({ relay: { serve: false } })];
      const caller = await net.add({ relay: { serve: false } });
      await hide(hidden, 1);
      // The only relay is full: the second node's reservation is refused.
      second.relayClient!.setActive(true);
      await waitFor(() => relay.relayServer!.stats().refused.reservations_full >= 1, 10_000, 'reservation refused');
      assert.equal(second.relayClient!.stats().relays.length, 0);
      // A node that does not relay refuses with MACULA_ERR_RELAY_OFF (the second node asked the caller too).
      await waitFor(() => caller.relayServer!.stats().refused.off >= 1, 10_000, 'refused: relaying off');

      const address = hidden.advertisedAddress;
      const first = await caller.transport.dial(address, { expectedNodeId: hidden.nodeId });
      await assert.rejects(caller.transport.dial(address, { expectedNodeId: hidden.nodeId }), /MACULA_ERR_RELAY_LIMIT|circuits/);
      assert.equal(relay.relayServer!.stats().refused.circuits_full, 1);

      // Past the per-circuit byte limit the circuit is closed, and counted.
      const big = Buffer.alloc(32);
      for (let i = 0; i < 200 && !first.isClosed; i++) await caller.messenger.requestOn(first, { t: FIND_VALUE.type, key: big }).catch(() => undefined);
      await waitFor(() => first.isClosed, 10_000, 'the circuit closed at its byte limit');
      assert.equal(relay.relayServer!.stats().ended.bytes_limit, 1, JSON.stringify(relay.relayServer!.stats()));
    } finally {
      await net.destroy();
    }
  });
});
