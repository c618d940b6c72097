/**
 * The registry on the real Dht over an in-process network, with one shared
 * hand-driven clock: re-announcement keeps a registration alive past its
 * TTL, and a provider that stops without withdrawing disappears from every
 * node's lookups within its TTL plus the cache TTL.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import type { Contact } from '../../src/dht/contact.js';
import { Dht } from '../../src/dht/dht.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { LocalDhtHub } from '../helpers/local-dht-network.js';

const CACHE_TTL_MS = 5_000;

interface Node {
  dht: Dht;
  registry: ServiceRegistry;
  nodeId: string;
}

function createMesh(n: number) {
  const hub = new LocalDhtHub();
  const clock = { t: Date.now(), now() { return this.t; } };
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const identity = Identity.generate();
    const port = 21_000 + i;
    const self: Contact = { id: identity.nodeId, host: '127.0.0.1', port };
    const dht = new Dht({ identity, network: hub.network(self), clock, logger: { warn: () => undefined } }, { requestTimeoutMs: 200, lookupDeadlineMs: 3_000 });
    hub.addDht(dht, { host: '127.0.0.1', port });
    const registry = new ServiceRegistry(
      { dht, localNode: { nodeId: identity.nodeIdHex, address: { host: '127.0.0.1', port } }, clock },
      { cacheTtlMs: CACHE_TTL_MS },
    );
    nodes.push({ dht, registry, nodeId: identity.nodeIdHex });
  }
  return { hub, clock, nodes };
}

async function joinAll(nodes: Node[]): Promise<void> {
  for (const n of nodes.slice(1)) await n.dht.bootstrap([{ host: '127.0.0.1', port: 21_000 }]);
}

describe('ServiceRegistry over the DHT', () => {
  it('every node finds the provider; the provider lists itself as local', async () => {
    const { nodes } = createMesh(10);
    await joinAll(nodes);
    const provider = nodes[3]!;
    await provider.registry.advertise('search', { shards: 4 }, { ttlMs: 60_000 });
    for (const n of nodes) {
      const found = await n.registry.lookup('search');
      assert.equal(found.length, 1);
      assert.equal(found[0]!.nodeId, provider.nodeId);
      assert.equal(found[0]!.local, n === provider);
      assert.deepEqual(found[0]!.metadata, { shards: 4 });
    }
    for (const n of nodes) n.dht.stop();
  });

  it('re-announcement keeps a registration alive past its first TTL', async () => {
    const { nodes, clock } = createMesh(8);
    await joinAll(nodes);
    const provider = nodes[2]!;
    const consumer = nodes[6]!;
    await provider.registry.advertise('renewed', {}, { ttlMs: 60_000 });
    const before = (await consumer.registry.lookup('renewed'))[0]!.expires;
    // Due halfway through a 60 s TTL (src/dht/own-records.ts); the timer is driven by hand here.
    clock.t += 31_000;
    assert.equal(await provider.dht.republish(), 1);
    clock.t += 30_000; // past the first expiry
    const after = await consumer.registry.lookup('renewed');
    assert.equal(after.length, 1, 'still registered');
    assert.ok(after[0]!.expires > before, 'with a later expiry');
    for (const n of nodes) n.dht.stop();
  });

  it('a provider that stops without withdrawing disappears everywhere within TTL + cache TTL', async () => {
    const { nodes, clock, hub } = createMesh(10);
    await joinAll(nodes);
    const ttlMs = 20_000;
    const gone = nodes[4]!;
    const stays = nodes[5]!;
    await gone.registry.advertise('jobs', {}, { ttlMs });
    await stays.registry.advertise('jobs', {}, { ttlMs: 600_000 });
    const consumers = nodes.filter((n) => n !== gone && n !== stays);
    for (const c of consumers) assert.equal((await c.registry.lookup('jobs')).length, 2);
    // Crash: no withdrawal, no re-announcement, unreachable.
    gone.dht.stop();
    hub.setBehaviour(gone.dht.id, { down: true });
    clock.t += ttlMs + CACHE_TTL_MS;
    for (const c of consumers) {
      assert.deepEqual((await c.registry.lookup('jobs')).map((p) => p.nodeId), [stays.nodeId]);
    }
    for (const n of nodes) n.dht.stop();
  });

  it('unadvertise() removes the registration from other nodes once their cache entry is invalidated or aged out', async () => {
    const { nodes, clock } = createMesh(8);
    await joinAll(nodes);
    await nodes[1]!.registry.advertise('temp', {}, { ttlMs: 60_000 });
    assert.equal((await nodes[7]!.registry.lookup('temp')).length, 1);
    await nodes[1]!.registry.unadvertise('temp');
    clock.t += CACHE_TTL_MS + 1;
    assert.deepEqual(await nodes[7]!.registry.lookup('temp'), []);
    for (const n of nodes) n.dht.stop();
  });
});
