/**
 * Faults over real QUIC: a third of a 30-node mesh stopped without withdrawing (MeshNode.kill()), and a
 * node restarted with its data dir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dhtKey } from '../../src/dht/key.js';
import { createNode, type MeshNode } from '../../src/node/mesh-node.js';
import { createTestnet, waitFor } from '../helpers/testnet.js';

const quiet = { warn: () => {} };

describe('churn: 30 nodes over QUIC, a third killed in-process (no withdraw)', () => {
  it('lookups and RPC work again among the survivors; dead registrations expire within their TTL', async () => {
    const net = await createTestnet(30, { transport: 'quic', registry: { cacheTtlMs: 500, negativeCacheTtlMs: 200 } });
    try {
      const nodes = net.nodes;
      const providers = nodes.slice(20, 26); // 6 providers, 4 of them will die
      for (const p of providers) await p.register('svc.echo', (a) => ({ by: p.nodeId, a }), { ttlMs: 10_000 });
      // Subscribers spread over nodes that will live and nodes that will die.
      const got = new Map<string, number>();
      const subscribers = [nodes[3]!, nodes[12]!, nodes[17]!, nodes[28]!];
      await Promise.all(subscribers.map((n) => n.subscribe('alerts.#', () => void got.set(n.nodeId, (got.get(n.nodeId) ?? 0) + 1)).ready));
      const key = dhtKey('test', 'survives');
      await nodes[2]!.dht.put(key, new TextEncoder().encode('still here'), { ttlMs: 120_000 });
      await waitFor(async () => (await nodes[5]!.lookup('rpc:svc.echo')).length === 6, 10_000, 'all providers visible');

      const victims = [...nodes.slice(10, 16), ...providers.slice(0, 4)]; // 10 of 30
      const t0 = Date.now();
      await Promise.all(victims.map((v) => net.kill(v)));
      const survivors = nodes.filter((n) => !victims.includes(n));
      const dead = new Set(victims.map((v) => v.nodeId));

      // RPC: within a bounded time every survivor reaches a live provider. A
      // first call may spend its 3 attempts on dead providers; those are then
      // tried last, so the next call gets through.
      await Promise.all(
        survivors.map(async (s) => {
          let by: string | undefined;
          await waitFor(
            async () => {
              by = ((await s.call('svc.echo', 1, { timeout: 3000 }).catch(() => undefined)) as { by: string } | undefined)?.by;
              return by !== undefined;
            },
            20_000,
            `node ${s.nodeId.slice(0, 8)} calls a live provider`,
          );
          assert.ok(!dead.has(by!));
        }),
      );
      // DHT: the value is still found from every survivor.
      const found = await Promise.all(survivors.map(async (s) => (await s.dht.findValue(key)).records.length > 0));
      assert.ok(found.every(Boolean), `found from ${found.filter(Boolean).length}/${survivors.length}`);
      // Pub/sub: a survivor's publishes reach the surviving subscribers, and
      // the dead ones do not stall it.
      const liveSubs = subscribers.filter((n) => !dead.has(n.nodeId));
      await waitFor(
        async () => {
          await survivors[4]!.publish('alerts.disk', 'full');
          return liveSubs.every((n) => (got.get(n.nodeId) ?? 0) > 0);
        },
        20_000,
        'surviving subscribers receive',
      );
      // Registrations of the dead disappear within TTL (+ the cache TTL).
      const liveIds = providers.slice(4).map((p) => p.nodeId).sort();
      await waitFor(
        async () => JSON.stringify((await survivors[0]!.lookup('rpc:svc.echo')).map((p) => p.nodeId).sort()) === JSON.stringify(liveIds),
        10_000 + 500 + 4000,
        'lookups return exactly the live providers',
      );
      assert.ok(Date.now() - t0 < 10_000 + 500 + 4000 + 30_000);
    } finally {
      await net.destroy();
    }
  });
});

describe('restart', () => {
  it('a node restarted with the same data dir keeps its identity and rejoins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'macula-restart-'));
    const net = await createTestnet(3, { transport: 'quic' });
    try {
      const boot = net.nodes[0]!.listenAddress!;
      const first: MeshNode = await createNode({ host: '127.0.0.1', port: 0, dataDir: dir, bootstrap: [boot], logger: quiet });
      await first.joined();
      const id = first.nodeId;
      await first.stop();
      const again = await createNode({ host: '127.0.0.1', port: 0, dataDir: dir, bootstrap: [boot], logger: quiet });
      try {
        const joined = await again.joined();
        assert.equal(again.nodeId, id);
        assert.ok(joined.reached > 0 && again.dht.table.size > 0);
        const rtt = await net.nodes[1]!.ping(again.listenAddress!, again.nodeId);
        assert.ok(rtt >= 0);
      } finally {
        await again.stop();
      }
    } finally {
      await net.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
