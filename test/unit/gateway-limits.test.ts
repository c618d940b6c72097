/**
 * The gateway and the light client in one process: real MeshNodes and
 * MaculaClients over the memory transport (same messenger, codec and
 * validation as over QUIC), so limits and clean-up can be checked exactly.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MaculaClient, type ClientMessage } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { MemoryNetwork, MemoryTransport } from '../../src/transport/memory.js';
import { GW_STATS } from '../../src/gateway/messages.js';
import { waitFor } from '../helpers/testnet.js';

const network = new MemoryNetwork();
const nodes: MeshNode[] = [];
const clients: MaculaClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.stop()));
});

async function startNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  const node = new MeshNode(Identity.generate(), { memoryNetwork: network, port: 0, logger: { warn: () => {} }, stopTimeoutMs: 500, ...options });
  await node.start();
  nodes.push(node);
  return node;
}

/** A client and the transport under it (closing the transport is an abrupt disconnect). */
async function connect(node: MeshNode): Promise<{ client: MaculaClient; transport: MemoryTransport }> {
  const transport = new MemoryTransport({ identity: Identity.generate(), network });
  const client = await MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 2000 }, { transport });
  clients.push(client);
  return { client, transport };
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('gateway limits', { timeout: 30_000 }, () => {
  it('refuses clients past maxClients with a clear message, and admits again once one leaves', async () => {
    const node = await startNode({ gateway: { maxClients: 2, refusalGraceMs: 50 } });
    const first = await connect(node);
    await connect(node);
    await assert.rejects(connect(node), {
      code: 'MACULA_ERR_TOO_MANY_CLIENTS',
      message: 'this node serves its maximum of 2 clients; try another node or raise --max-clients',
    });
    assert.equal(node.gateway.stats().refused, 1);
    assert.equal(node.gateway.clients, 2);
    await first.client.close();
    await waitFor(() => node.gateway.clients === 1, 5000, 'the closed client is dropped');
    await connect(node);
    assert.equal(node.gateway.clients, 2);
  });

  it('refuses client requests from peers that said HELLO as mesh nodes', async () => {
    const node = await startNode();
    const other = await startNode();
    await assert.rejects(other.messenger.request({ address: node.listenAddress! }, { t: GW_STATS.type }), { code: 'MACULA_ERR_NOT_A_CLIENT' });
    assert.equal(node.gateway.stats().notClient, 1);
    assert.equal(node.gateway.clients, 0);
  });

  it('bounds subscriptions per client', async () => {
    const node = await startNode({ gateway: { maxSubscriptionsPerClient: 2, subscribeReadyTimeoutMs: 200 } });
    const { client } = await connect(node);
    const a = await client.subscribe('a.*', () => {});
    await client.subscribe('b.#', () => {});
    await assert.rejects(client.subscribe('c', () => {}), { code: 'MACULA_ERR_LIMIT', message: /subscriptions: this client's limit of 2 is reached/ });
    await a.unsubscribe();
    await client.subscribe('c', () => {});
    assert.equal(node.gateway.stats().subscriptions, 2);
    assert.equal(node.pubsub.stats().subscriptions, 2);
  });

  it('bounds calls in flight per client with MACULA_ERR_BUSY', async () => {
    const node = await startNode({ gateway: { maxCallsPerClient: 2 } });
    const release = gate();
    await node.register('slow', async (n: number) => {
      await release.promise;
      return n * 2;
    });
    const { client } = await connect(node);
    const running = [client.call('slow', 1), client.call('slow', 2)];
    await waitFor(() => node.gateway.stats().callsInFlight === 2, 5000, 'two calls in flight');
    await assert.rejects(client.call('slow', 3), { code: 'MACULA_ERR_BUSY', message: /calls in flight: this client's limit of 2/ });
    release.open();
    assert.deepEqual(await Promise.all(running), [2, 4]);
    assert.equal(await client.call('slow', 5), 10);
    assert.equal(node.gateway.stats().callsInFlight, 0);
  });

  it('bounds served procedures per client', async () => {
    const node = await startNode({ gateway: { maxServedPerClient: 1 } });
    const { client } = await connect(node);
    const served = await client.serve('one', () => 1);
    await assert.rejects(client.serve('two', () => 2), { code: 'MACULA_ERR_LIMIT' });
    await served.unserve();
    assert.equal(node.rpcServer.has('one'), false);
    await client.serve('two', () => 2);
    assert.equal(node.rpcServer.has('two'), true);
  });
});

describe('gateway requests', { timeout: 30_000 }, () => {
  it('publishes and delivers through the node, with the publisher and sequence number', async () => {
    const node = await startNode({ gateway: { subscribeReadyTimeoutMs: 200 } });
    const { client: sub } = await connect(node);
    const { client: pub } = await connect(node);
    const got: ClientMessage[] = [];
    await sub.subscribe('room.*', (m) => void got.push(m));
    await pub.publish('room.kitchen', { t: 21 });
    await pub.publish('room.hall', new Uint8Array([1, 2, 3]));
    await pub.publish('other.topic', 'nobody');
    await waitFor(() => got.length === 2, 5000, 'two messages');
    assert.deepEqual(got.map((m) => m.topic), ['room.kitchen', 'room.hall']);
    assert.deepEqual(got[0]!.data, { t: 21 });
    assert.deepEqual([...(got[1]!.data as Uint8Array)], [1, 2, 3]);
    assert.equal(got[0]!.publisher, node.nodeId);
    assert.ok(got[1]!.seq! > got[0]!.seq!);
    assert.equal(node.gateway.stats().forwarded, 2);
  });

  it('forwards calls of a served procedure to the client, errors included', async () => {
    const node = await startNode();
    const caller = await startNode({ bootstrap: [node.listenAddress!] });
    await caller.joined();
    const { client } = await connect(node);
    await client.serve('greet', (args) => {
      const name = (args as { name?: string }).name;
      if (!name) throw Object.assign(new Error('name is required'), { code: 'APP_NO_NAME' });
      return `hello ${name}`;
    });
    const providers = await caller.lookup('rpc:greet');
    assert.equal(providers[0]?.nodeId, node.nodeId);
    assert.equal(await caller.call('greet', { name: 'ada' }), 'hello ada');
    await assert.rejects(caller.call('greet', {}), { code: 'APP_NO_NAME', message: 'name is required' });
    const { client: other } = await connect(caller);
    assert.equal(await other.call('greet', { name: 'bob' }), 'hello bob');
  });

  it('drops the subscriptions and served procedures of a client that disconnects, at once', async () => {
    const node = await startNode({ gateway: { subscribeReadyTimeoutMs: 200 } });
    const { client, transport } = await connect(node);
    await client.subscribe('x.#', () => {});
    await client.serve('gone.soon', () => 1);
    assert.equal(node.pubsub.stats().subscriptions, 1);
    assert.equal(node.rpcServer.has('gone.soon'), true);
    await transport.close(); // abrupt: no unserve, no unsubscribe
    await waitFor(() => node.gateway.clients === 0, 5000, 'client dropped');
    assert.equal(node.pubsub.stats().subscriptions, 0);
    assert.equal(node.rpcServer.has('gone.soon'), false);
    await waitFor(async () => (await node.lookup('rpc:gone.soon')).length === 0, 5000, 'registration withdrawn');
    const s = node.gateway.stats();
    assert.equal(s.subscriptions, 0);
    assert.equal(s.served, 0);
  });

  it('answers lookup, stats and peers', async () => {
    const node = await startNode();
    const { client } = await connect(node);
    await node.advertise('billing', { v: 2 });
    const providers = await client.lookup('billing', { fresh: true });
    assert.equal(providers.length, 1);
    assert.deepEqual(providers[0]!.metadata, { v: 2 });
    assert.equal(providers[0]!.expires, null);
    const stats = await client.stats();
    assert.equal((stats.node as { nodeId: string }).nodeId, node.nodeId);
    assert.equal((stats.gateway as { clients: number }).clients, 1);
    assert.ok(stats.pubsub, 'pub/sub section present');
    JSON.parse(JSON.stringify(stats));
    const peers = await client.peers();
    assert.ok(peers.connections.some((c) => c.role === 'client'));
  });
});
