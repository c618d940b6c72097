/**
 * RPC through the real Messenger over the in-process memory transport, with
 * the real ServiceRegistry on a shared in-memory record map standing in for
 * the DHT: checks that the wire messages, the ERROR mapping and the
 * messenger's busy limit fit the client's and server's expectations.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { Messenger, type MessengerInit } from '../../src/session/messenger.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import type { RegistryDht, RegistryRecord } from '../../src/registry/types.js';
import { RpcClient } from '../../src/rpc/client.js';
import { RemoteCallError } from '../../src/rpc/errors.js';
import { RpcServer } from '../../src/rpc/server.js';
import { MemoryNetwork, MemoryTransport } from '../../src/transport/memory.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { MaculaError } from '../../src/util/errors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

class SharedRecords {
  readonly byKey = new Map<string, Map<string, RegistryRecord>>();
  node(publisher: Uint8Array): RegistryDht {
    return {
      put: async (key, value, { ttlMs }) => {
        const k = hex(key);
        if (!this.byKey.has(k)) this.byKey.set(k, new Map());
        this.byKey.get(k)!.set(hex(publisher), { value, publisher, expires: Date.now() + (ttlMs ?? 0) });
      },
      withdraw: async (key) => void this.byKey.get(hex(key))?.delete(hex(publisher)),
      findValue: async (key) => ({ records: [...(this.byKey.get(hex(key))?.values() ?? [])] }),
    };
  }
}

interface TestNode {
  nodeId: string;
  transport: MemoryTransport;
  messenger: Messenger;
  registry: ServiceRegistry;
  server: RpcServer;
  client: RpcClient;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function node(net: MemoryNetwork, records: SharedRecords, init: MessengerInit = {}): Promise<TestNode> {
  const identity = Identity.generate();
  const transport = new MemoryTransport({ identity, network: net });
  const messenger = new Messenger({ transport, pool: new ConnectionPool({ transport }) }, init);
  const address = await transport.listen({ host: '127.0.0.1', port: 0 });
  messenger.start();
  const registry = new ServiceRegistry({ dht: records.node(identity.publicKey), localNode: { nodeId: identity.nodeIdHex, address } }, { cacheTtlMs: 60_000 });
  const server = new RpcServer({ transport: messenger, registry }, { handlerTimeoutMs: 200 });
  const client = new RpcClient({ transport: messenger, registry, server });
  const n = { nodeId: identity.nodeIdHex, transport, messenger, registry, server, client };
  cleanups.push(async () => {
    messenger.stop();
    await transport.close();
  });
  return n;
}

describe('RPC over the messenger', () => {
  it('calls a procedure on another node with CBOR arguments and results, including none', async () => {
    const net = new MemoryNetwork();
    const records = new SharedRecords();
    const a = await node(net, records);
    const b = await node(net, records);
    let caller: string | undefined;
    await a.server.register('echo', (args, ctx) => {
      caller = ctx.caller?.nodeId;
      return args;
    });
    await a.server.register('nothing', () => undefined);
    const args = { bytes: new Uint8Array([1, 2, 3]), nested: { list: [1, 'two', null, true] }, big: 2n ** 70n };
    assert.deepEqual(await b.client.call('echo', args), args);
    assert.equal(caller, b.nodeId, 'the caller ID comes from the verified connection');
    assert.equal(await b.client.call('nothing'), undefined);
    assert.equal(await a.client.call('echo', 'local'), 'local');
    assert.equal(caller, undefined, 'a local call does not go through the network');
  });

  it('carries remote handler errors back typed, and server-side timeouts as MACULA_ERR_TIMEOUT', async () => {
    const net = new MemoryNetwork();
    const records = new SharedRecords();
    const a = await node(net, records);
    const b = await node(net, records);
    await a.server.register('fail', () => {
      throw new MaculaError('E_DENIED', 'not allowed');
    });
    await a.server.register('hang', () => new Promise(() => undefined));
    await assert.rejects(b.client.call('fail'), (e: unknown) => e instanceof RemoteCallError && e.code === 'E_DENIED' && e.message === 'not allowed' && e.nodeId === a.nodeId);
    await assert.rejects(b.client.call('hang', null, { timeoutMs: 2_000 }), (e: unknown) => e instanceof RemoteCallError && e.code === 'MACULA_ERR_TIMEOUT');
  });

  it('spreads calls round-robin and fails over when a provider dies', async () => {
    const net = new MemoryNetwork();
    const records = new SharedRecords();
    const [a, c, b] = [await node(net, records), await node(net, records), await node(net, records)];
    for (const p of [a, c]) await p.server.register('who', () => p.nodeId);
    const seen = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const who = (await b.client.call('who')) as string;
      seen.set(who, (seen.get(who) ?? 0) + 1);
    }
    assert.deepEqual([...seen.values()], [5, 5]);
    // a dies without withdrawing its registration
    a.messenger.stop();
    await a.transport.close();
    for (let i = 0; i < 4; i++) assert.equal(await b.client.call('who', null, { timeoutMs: 2_000 }), c.nodeId);
    assert.ok(b.client.stats().failovers >= 1);
  });

  it('moves on from a provider that answers MACULA_ERR_BUSY', async () => {
    const net = new MemoryNetwork();
    const records = new SharedRecords();
    const a = await node(net, records, { maxInFlight: 1 });
    const c = await node(net, records);
    const b = await node(net, records);
    let release!: () => void;
    await a.server.register('work', () => new Promise((r) => (release = () => r('a'))));
    await c.server.register('work', () => 'c');
    const first = b.client.call('work'); // occupies a's only slot
    await new Promise((r) => setTimeout(r, 20));
    const results = await Promise.all([b.client.call('work'), b.client.call('work')]);
    assert.ok(results.every((r) => r === 'c'), `${results}`);
    assert.equal(b.client.stats().failovers, 1, 'the call that reached the busy provider moved on');
    release();
    assert.equal(await first, 'a');
  });
});
