import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareDistance } from '../../src/dht/id.js';
import { dhtKey } from '../../src/dht/key.js';
import { toHex } from '../../src/identity/identity.js';
import type { MeshNode } from '../../src/node/mesh-node.js';
import { createTestnet, waitFor } from '../helpers/testnet.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function findFromAll(nodes: MeshNode[], key: Uint8Array, expected: string): Promise<number> {
  let found = 0;
  await Promise.all(
    nodes.map(async (n) => {
      const r = await n.dht.findValue(key);
      if (r.records.some((rec) => dec(rec.value) === expected)) found++;
    }),
  );
  return found;
}

describe('DHT over the memory transport (50 nodes)', () => {
  it('stores on one node and finds the value from every other; survives losing a third of the nodes', async () => {
    const net = await createTestnet(50, { transport: 'memory' });
    try {
      const [, publisher, ...others] = net.nodes;
      const key = dhtKey('test', 'hello');
      const put = await publisher!.dht.put(key, enc('world'), { ttlMs: 60_000 });
      assert.ok(put.replicas >= 10, `stored on ${put.replicas} nodes`);
      assert.equal(await findFromAll(others, key, 'world'), others.length);

      // FIND_NODE returns the node truly closest to a random target.
      const target = new Uint8Array(32).map(() => Math.floor(Math.random() * 256));
      const truth = [...net.nodes].sort((a, b) => compareDistance(a.identity.nodeId, b.identity.nodeId, target))[0]!;
      const lookup = await others[3]!.dht.findNode(target);
      const ids = lookup.closest.map((c) => toHex(c.id));
      assert.ok(ids.includes(truth.nodeId) || others[3] === truth, 'the closest node is in the result');

      // Churn: kill a third in-process, without withdrawing (never the publisher); lookups still succeed among survivors.
      const victims = others.slice(0, 16);
      await Promise.all(victims.map((v) => net.kill(v)));
      const survivors = net.nodes.filter((n) => !victims.includes(n));
      await Promise.all(survivors.map((n) => n.dht.refresh({ force: true })));
      const again = await findFromAll(survivors, key, 'world');
      assert.equal(again, survivors.length);
      const t2 = new Uint8Array(32).map(() => Math.floor(Math.random() * 256));
      const truth2 = [...survivors].sort((a, b) => compareDistance(a.identity.nodeId, b.identity.nodeId, t2))[0]!;
      const asker = survivors.find((n) => n !== truth2)!;
      const res = await asker.dht.findNode(t2);
      assert.ok(res.closest.some((c) => toHex(c.id) === truth2.nodeId), 'closest live node found after churn');
      assert.ok(!res.closest.some((c) => victims.some((v) => v.nodeId === toHex(c.id))), 'dead nodes are not returned');
    } finally {
      await net.destroy();
    }
  });
});

describe('DHT over QUIC (15 nodes on 127.0.0.1)', () => {
  it('joins, stores, finds from every node, withdraws on a clean stop', async () => {
    const net = await createTestnet(15, { transport: 'quic' });
    try {
      for (const n of net.nodes) assert.ok(n.dht.table.size > 0, 'every node has a routing table');
      await waitFor(() => net.nodes[0]!.dht.table.size >= 10, 10_000, 'bootstrap node learns the joiners');
      const publisher = net.nodes[7]!;
      const key = dhtKey('test', 'quic');
      await publisher.dht.put(key, enc('over-quic'), { ttlMs: 60_000 });
      assert.equal(await findFromAll(net.nodes.filter((n) => n !== publisher), key, 'over-quic'), 14);

      // A clean stop withdraws the node's records: nobody finds them any more, well before the TTL.
      await publisher.stop();
      const rest = net.nodes.filter((n) => n !== publisher);
      const still = await findFromAll(rest, key, 'over-quic');
      assert.equal(still, 0);
    } finally {
      await net.destroy();
    }
  });

  it('an unreachable bootstrap is a warning and a retry, not a crash', async () => {
    const warnings: string[] = [];
    const net = await createTestnet(1, { transport: 'quic' });
    try {
      const lonely = await net.add({
        bootstrap: [{ host: '127.0.0.1', port: 9 }],
        logger: { warn: (m) => warnings.push(m) },
        dht: { connectTimeoutMs: 300, bootstrapRetryMinMs: 100, bootstrapRetryMaxMs: 200 },
      });
      const joined = await lonely.joined();
      assert.equal(joined.reached, 0);
      assert.equal(joined.retrying, true);
      assert.ok(warnings.some((w) => /127\.0\.0\.1:9/.test(w)), warnings.join('\n'));
      assert.equal(lonely.running, true);
    } finally {
      await net.destroy();
    }
  });
});
