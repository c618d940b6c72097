import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dhtKey } from '../../src/dht/key.js';
import { InvalidServiceNameError, RegistryMetadataError } from '../../src/registry/errors.js';
import { ServiceRegistry, type ServiceRegistryInit } from '../../src/registry/registry.js';
import type { RegistryDht } from '../../src/registry/types.js';
import { ConfigError } from '../../src/util/errors.js';
import { decodeBody } from '../../src/wire/codec.js';

interface Put {
  key: Uint8Array;
  value: Uint8Array;
  ttlMs: number | undefined;
}

/** Records what the registry asks of the DHT. */
class RecordingDht implements RegistryDht {
  puts: Put[] = [];
  withdrawn: Uint8Array[] = [];
  failPut: Error | undefined;
  async put(key: Uint8Array, value: Uint8Array, options: { ttlMs?: number }): Promise<void> {
    if (this.failPut) throw this.failPut;
    this.puts.push({ key, value, ttlMs: options.ttlMs });
  }
  async withdraw(key: Uint8Array): Promise<void> {
    this.withdrawn.push(key);
  }
  async findValue(): Promise<{ records: [] }> {
    return { records: [] };
  }
}

const SELF = { nodeId: 'ab'.repeat(32), address: { host: '192.0.2.7', port: 9443 } };

function make(init: ServiceRegistryInit = {}, address = SELF.address) {
  const dht = new RecordingDht();
  const registry = new ServiceRegistry({ dht, localNode: { nodeId: SELF.nodeId, address } }, init);
  return { dht, registry };
}

describe('ServiceRegistry advertise', () => {
  it('stores the registration under dhtKey(registry/<realm>, name) with the default TTL of 5 min', async () => {
    const { dht, registry } = make();
    await registry.advertise('billing', { region: 'eu' });
    assert.equal(dht.puts.length, 1);
    const put = dht.puts[0]!;
    assert.deepEqual(put.key, dhtKey('registry/default', 'billing'));
    assert.equal(put.ttlMs, 300_000);
    assert.deepEqual(decodeBody(put.value), { n: 'billing', a: { h: '192.0.2.7', p: 9443 }, m: { region: 'eu' } });
    assert.deepEqual(registry.advertised(), ['billing']);
    assert.equal(registry.stats().localServices, 1);
  });

  it('uses the realm in the key and the given TTL', async () => {
    const { dht, registry } = make({ realm: 'acme' });
    await registry.advertise('billing', {}, { ttlMs: 30_000 });
    assert.deepEqual(dht.puts[0]!.key, dhtKey('registry/acme', 'billing'));
    assert.equal(dht.puts[0]!.ttlMs, 30_000);
    assert.throws(() => make({ realm: 'a:b' }), ConfigError);
  });

  it('accepts names of 1..128 printable characters and says what is allowed otherwise', async () => {
    const { registry } = make();
    await registry.advertise('x'.repeat(128));
    await registry.advertise('サービス/v2 (beta)');
    for (const bad of ['', 'x'.repeat(129), 'a\nb', 'tab\there', 'zero\u200bwidth', 'nul\u0000', '\ud800', 42 as unknown as string]) {
      await assert.rejects(registry.advertise(bad), (err: unknown) => {
        assert.ok(err instanceof InvalidServiceNameError);
        assert.equal(err.code, 'MACULA_ERR_INVALID_NAME');
        assert.match(err.message, /1\.\.128 printable characters/);
        return true;
      });
    }
  });

  it('rejects metadata that is not a small CBOR map', async () => {
    const { registry, dht } = make({ maxMetadataBytes: 256 });
    const bad: unknown[] = [[1, 2], new Map(), 'str', { f: () => 1 }, { big: 'x'.repeat(300) }];
    for (const m of bad) {
      await assert.rejects(registry.advertise('svc', m as Record<string, unknown>), RegistryMetadataError);
    }
    assert.equal(dht.puts.length, 0);
    assert.deepEqual(registry.advertised(), []);
  });

  it('rejects a TTL under 1 s and advertising before the node listens', async () => {
    await assert.rejects(make().registry.advertise('svc', {}, { ttlMs: 500 }), ConfigError);
    await assert.rejects(make({}, { host: '0.0.0.0', port: 0 }).registry.advertise('svc'), /no listening port yet/);
  });

  it('keeps nothing advertised when the DHT put fails', async () => {
    const { registry, dht } = make();
    dht.failPut = new Error('store refused');
    await assert.rejects(registry.advertise('svc'), /store refused/);
    assert.deepEqual(registry.advertised(), []);
    assert.deepEqual(registry.local('svc'), []);
  });

  it('re-advertising replaces the metadata and the local answer at once', async () => {
    const { registry } = make();
    await registry.advertise('svc', { v: 1 });
    assert.deepEqual((await registry.lookup('svc'))[0]!.metadata, { v: 1 });
    await registry.advertise('svc', { v: 2 });
    assert.deepEqual((await registry.lookup('svc'))[0]!.metadata, { v: 2 });
  });

  it('unadvertise() withdraws the record; withdrawAll() withdraws every one', async () => {
    const { registry, dht } = make();
    await registry.advertise('a');
    await registry.advertise('b');
    await registry.advertise('c');
    assert.equal(await registry.unadvertise('a'), true);
    assert.equal(await registry.unadvertise('a'), false, 'already withdrawn');
    assert.deepEqual(dht.withdrawn, [dhtKey('registry/default', 'a')]);
    assert.deepEqual(await registry.lookup('a'), [], 'the local answer is gone at once');
    assert.equal(await registry.withdrawAll(), 2);
    assert.equal(dht.withdrawn.length, 3);
    assert.deepEqual(registry.advertised(), []);
  });
});
