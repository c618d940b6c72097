/**
 * Per-source fairness over real QUIC: every client here comes from
 * 127.0.0.1, so a node with a small per-address share shows the refusal a
 * flooding address gets, while the total limit keeps its own message.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { renderStats } from '../../src/cli/stats-view.js';
import { MaculaClient } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { waitFor } from '../helpers/testnet.js';
import { GW_SUB } from '../../src/gateway/messages.js';

const nodes: MeshNode[] = [];
const clients: MaculaClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.stop()));
});

async function startNode(options: MeshNodeOptions): Promise<MeshNode> {
  const node = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: { warn: () => {} }, stopTimeoutMs: 500, ...options });
  await node.start();
  nodes.push(node);
  return node;
}

async function connect(node: MeshNode): Promise<MaculaClient> {
  const client = await MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 5000 });
  clients.push(client);
  return client;
}

describe('gateway admission over QUIC', { timeout: 60_000 }, () => {
  it('holds one address to its share and says so; the total limit says its own', async () => {
    const node = await startNode({ gateway: { maxClients: 5, maxClientsPerAddress: 2, refusalGraceMs: 100 } });
    const first = await connect(node);
    await connect(node);
    await assert.rejects(connect(node), {
      code: 'MACULA_ERR_TOO_MANY_CLIENTS_FROM_ADDRESS',
      message: "this node serves its maximum of 2 clients from one address (127.0.0.1); close some of them, or use another node (the node's limit is --max-clients-per-address)",
    });
    let s = node.gateway.stats();
    assert.equal(s.clients, 2);
    assert.equal(s.sources, 1);
    assert.equal(s.largestSourceClients, 2);
    assert.deepEqual(s.refusedByReason, { max_clients: 0, max_clients_per_address: 1 });
    assert.equal(s.refused, 1);
    // `macula stats` shows the busiest address against its share.
    assert.match(renderStats(await first.stats()), /clients of the busiest address +2 +2 +100\.0% +1\n/);
    // The address's slot comes back when one of its clients leaves.
    await first.close();
    await waitFor(() => node.gateway.clients === 1, 10_000, 'the closed client is dropped');
    await connect(node);

    const small = await startNode({ gateway: { maxClients: 1, maxClientsPerAddress: 5, refusalGraceMs: 100 } });
    await connect(small);
    await assert.rejects(connect(small), { code: 'MACULA_ERR_TOO_MANY_CLIENTS', message: /maximum of 1 clients; try another node/ });
    s = small.gateway.stats();
    assert.deepEqual(s.refusedByReason, { max_clients: 1, max_clients_per_address: 0 });
  });

  it('uses a quarter of maxClients per address by default', async () => {
    const node = await startNode({});
    assert.equal(node.gateway.maxClients, 10_000);
    assert.equal(node.gateway.maxClientsPerAddress, 2500);
    const client = await connect(node);
    const stats = (await client.stats()) as { gateway: { maxClientsPerAddress: number; sources: number } };
    assert.equal(stats.gateway.maxClientsPerAddress, 2500);
    assert.equal(stats.gateway.sources, 1);
  });

  it('checks a pattern and the realm in the client, before anything is sent', async () => {
    const node = await startNode({});
    assert.throws(() => new MaculaClient({}, { node: node.listenAddress!, realm: 'r'.repeat(65) }), {
      code: 'MACULA_ERR_CONFIG',
      message: 'invalid realm: a realm name is 1..64 characters long, got 65',
    });
    const client = await connect(node);
    const before = node.gateway.stats().requests[GW_SUB.name];
    await assert.rejects(client.subscribe('', () => undefined), { code: 'MACULA_ERR_INVALID_TOPIC', rule: 'empty' });
    await assert.rejects(client.subscribe(`a.${'b'.repeat(300)}`, () => undefined), { code: 'MACULA_ERR_INVALID_TOPIC', rule: 'too_long' });
    assert.equal(node.gateway.stats().requests[GW_SUB.name], before, 'no GW_SUB reached the node');
    assert.ok(client.connected, 'the connection is unaffected');
  });
});
