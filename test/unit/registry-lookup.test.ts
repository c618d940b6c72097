import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { dhtKey } from '../../src/dht/key.js';
import { RegistryLookupError } from '../../src/registry/errors.js';
import { ServiceRegistry, type ServiceRegistryInit } from '../../src/registry/registry.js';
import type { RegistryDht, RegistryRecord } from '../../src/registry/types.js';
import { encodeBody } from '../../src/wire/codec.js';

// lru-cache treats an entry stored at time 0 as having no TTL: start at a realistic unix time.
const T0 = 1_700_000_000_000;

class Clock {
  t = T0;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const keyHex = (k: Uint8Array) => Buffer.from(k).toString('hex');
const nodeIdOf = (pk: Uint8Array) => createHash('sha256').update(pk).digest('hex');

/** One DHT shared by all fake nodes: records per key, one per publisher, expiring by the shared clock. */
class FakeMeshDht {
  readonly records = new Map<string, Map<string, RegistryRecord>>();
  findCalls = 0;
  /** When set, findValue waits for it (to hold lookups in flight). */
  gate: Promise<void> | undefined;
  failWith: Error | undefined;
  /** Return expired records too (as a lagging peer might). */
  returnExpired = false;

  constructor(readonly clock: Clock) {}

  inject(key: Uint8Array, record: RegistryRecord): void {
    const k = keyHex(key);
    let m = this.records.get(k);
    if (!m) this.records.set(k, (m = new Map()));
    m.set(keyHex(record.publisher), record);
  }

  node(publisher: Uint8Array): RegistryDht {
    return {
      put: async (key, value, { ttlMs }) => {
        this.inject(key, { value, publisher, expires: this.clock.now() + (ttlMs ?? 0) });
      },
      withdraw: async (key) => {
        this.records.get(keyHex(key))?.delete(keyHex(publisher));
      },
      findValue: async (key) => {
        this.findCalls++;
        if (this.gate) await this.gate;
        if (this.failWith) throw this.failWith;
        const now = this.clock.now();
        const all = [...(this.records.get(keyHex(key))?.values() ?? [])];
        return { records: this.returnExpired ? all : all.filter((r) => r.expires > now) };
      },
    };
  }
}

interface TestNode {
  registry: ServiceRegistry;
  nodeId: string;
  publisher: Uint8Array;
}

function mesh(init: ServiceRegistryInit = {}) {
  const clock = new Clock();
  const dht = new FakeMeshDht(clock);
  let port = 7000;
  const node = (extra: ServiceRegistryInit = {}): TestNode => {
    const publisher = new Uint8Array(randomBytes(32));
    const nodeId = nodeIdOf(publisher);
    const address = { host: '10.0.0.1', port: port++ };
    const registry = new ServiceRegistry({ dht: dht.node(publisher), localNode: { nodeId, address }, clock }, { ...init, ...extra });
    return { registry, nodeId, publisher };
  };
  return { clock, dht, node };
}

describe('ServiceRegistry lookup', () => {
  it('finds a provider advertised by another node, with the node ID from the publisher key', async () => {
    const { node, clock } = mesh();
    const a = node();
    const b = node();
    await a.registry.advertise('svc', { version: 2 }, { ttlMs: 60_000 });
    const found = await b.registry.lookup('svc');
    assert.equal(found.length, 1);
    assert.deepEqual({ ...found[0]! }, {
      nodeId: a.nodeId,
      address: { host: '10.0.0.1', port: 7000 },
      metadata: { version: 2 },
      expires: clock.now() + 60_000,
      local: false,
    });
  });

  it('lists this node first as a local provider, and never its own DHT record again', async () => {
    const { node } = mesh();
    const a = node();
    const b = node();
    await b.registry.advertise('svc');
    await a.registry.advertise('svc');
    const found = await a.registry.lookup('svc');
    assert.deepEqual(found.map((p) => [p.nodeId, p.local]), [[a.nodeId, true], [b.nodeId, false]]);
    assert.equal(found[0]!.expires, Infinity);
    assert.deepEqual(a.registry.local('svc').map((p) => p.nodeId), [a.nodeId]);
    assert.deepEqual(a.registry.local('other'), []);
  });

  it('answers repeated lookups from the cache with the same array, until the cache TTL', async () => {
    const { node, dht, clock } = mesh();
    const a = node();
    const b = node();
    await a.registry.advertise('svc');
    const first = await b.registry.lookup('svc');
    const second = await b.registry.lookup('svc');
    assert.equal(second, first, 'a hit returns the cached array itself');
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first[0]));
    assert.equal(b.registry.lookupCached('svc'), first);
    assert.equal(dht.findCalls, 1);
    let s = b.registry.stats();
    assert.equal(s.hits, 2);
    assert.equal(s.misses, 1);
    assert.equal(s.size, 1);
    assert.equal(s.dhtLookups, 1);
    clock.advance(5_001);
    assert.equal(b.registry.lookupCached('svc'), undefined, 'stale after the default 5 s');
    await b.registry.lookup('svc');
    assert.equal(dht.findCalls, 2);
    s = b.registry.stats();
    assert.equal(s.misses, 2);
  });

  it('makes one DHT lookup for 10 concurrent misses of one name (single-flight)', async () => {
    const { node, dht } = mesh();
    const a = node();
    const b = node();
    await a.registry.advertise('svc');
    let open!: () => void;
    dht.gate = new Promise((r) => (open = r));
    const waiting = Array.from({ length: 10 }, () => b.registry.lookup('svc'));
    assert.equal(b.registry.stats().inFlight, 1);
    open();
    const answers = await Promise.all(waiting);
    assert.equal(dht.findCalls, 1);
    for (const x of answers) assert.equal(x, answers[0]);
    assert.equal(answers[0]!.length, 1);
    const s = b.registry.stats();
    assert.equal(s.misses, 10);
    assert.equal(s.dhtLookups, 1);
    assert.equal(s.inFlight, 0);
  });

  it('caches "no providers" for the short negative TTL', async () => {
    const { node, dht, clock } = mesh({ negativeCacheTtlMs: 1_000 });
    const b = node();
    assert.deepEqual(await b.registry.lookup('nobody'), []);
    assert.deepEqual(await b.registry.lookup('nobody'), []);
    assert.equal(dht.findCalls, 1);
    assert.equal(b.registry.stats().negativeHits, 1);
    assert.equal(b.registry.stats().hits, 0);
    clock.advance(1_001);
    // A provider appeared meanwhile: it is found as soon as the negative entry ages out.
    await node().registry.advertise('nobody');
    assert.equal((await b.registry.lookup('nobody')).length, 1);
    assert.equal(dht.findCalls, 2);
  });

  it('keeps at most cacheMaxEntries names, evicting the least recently used', async () => {
    const { node, dht } = mesh({ cacheMaxEntries: 3 });
    const b = node();
    for (const n of ['a', 'b', 'c']) await b.registry.lookup(n);
    await b.registry.lookup('a'); // refresh 'a': 'b' is now the oldest
    await b.registry.lookup('d');
    assert.equal(b.registry.stats().size, 3);
    const before = dht.findCalls;
    await b.registry.lookup('a');
    await b.registry.lookup('c');
    await b.registry.lookup('d');
    assert.equal(dht.findCalls, before, 'a, c and d are still cached');
    await b.registry.lookup('b');
    assert.equal(dht.findCalls, before + 1, 'b was evicted');
  });

  it('invalidate() forgets the cached answer, and an invalidated in-flight lookup does not fill the cache', async () => {
    const { node, dht } = mesh();
    const a = node();
    const b = node();
    await a.registry.advertise('svc');
    await b.registry.lookup('svc');
    b.registry.invalidate('svc');
    assert.equal(b.registry.lookupCached('svc'), undefined);
    let open!: () => void;
    dht.gate = new Promise((r) => (open = r));
    const pending = b.registry.lookup('svc');
    b.registry.invalidate('svc');
    open();
    assert.equal((await pending).length, 1, 'the waiting caller still gets its answer');
    assert.equal(b.registry.lookupCached('svc'), undefined, 'but it is not cached');
    assert.equal(dht.findCalls, 2);
  });

  it('drops a cached answer as soon as one of its providers expires', async () => {
    const { node, clock } = mesh({ cacheTtlMs: 60_000 });
    const a = node();
    const c = node();
    const b = node();
    await a.registry.advertise('svc', {}, { ttlMs: 10_000 });
    await c.registry.advertise('svc', {}, { ttlMs: 30_000 });
    assert.equal((await b.registry.lookup('svc')).length, 2);
    clock.advance(10_000);
    assert.equal(b.registry.lookupCached('svc'), undefined, 'expired provider: the entry is gone');
    assert.deepEqual((await b.registry.lookup('svc')).map((p) => p.nodeId), [c.nodeId]);
    assert.ok(b.registry.stats().expired >= 1);
  });

  it('ignores expired records in a DHT answer', async () => {
    const { node, clock, dht } = mesh();
    const a = node();
    const b = node();
    await a.registry.advertise('svc', {}, { ttlMs: 2_000 });
    dht.returnExpired = true;
    clock.advance(2_000);
    assert.deepEqual(await b.registry.lookup('svc'), []);
    assert.equal(b.registry.stats().expired, 1);
  });

  it('ignores malformed record values and counts them', async () => {
    const { node, dht, clock } = mesh();
    const b = node();
    const good = node();
    await good.registry.advertise('svc', { ok: true });
    const key = dhtKey('registry/default', 'svc');
    const bad: unknown[] = [
      new Uint8Array([0xff, 0x00, 0x13]), // not CBOR
      encodeBody('just a string'),
      encodeBody([1, 2, 3]),
      encodeBody({ n: 'other', a: { h: 'x', p: 1 } }), // name of another service
      encodeBody({ n: 'svc' }), // no address
      encodeBody({ n: 'svc', a: { h: '', p: 1 } }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 0 } }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 70_000 } }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 1.5 } }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 1 }, m: [1] }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 1 }, m: new Map([[1, 2]]) }),
      encodeBody({ n: 'svc', a: { h: 'x', p: 1 }, m: { blob: new Uint8Array(6000) } }), // oversized
    ];
    for (const value of bad) dht.inject(key, { value: value as Uint8Array, publisher: new Uint8Array(randomBytes(32)), expires: clock.now() + 60_000 });
    dht.inject(key, { value: encodeBody({ n: 'svc', a: { h: 'x', p: 1 } }), publisher: new Uint8Array(31), expires: clock.now() + 60_000 });
    const found = await b.registry.lookup('svc');
    assert.deepEqual(found.map((p) => p.nodeId), [good.nodeId]);
    assert.deepEqual(found[0]!.metadata, { ok: true });
    assert.equal(b.registry.stats().malformed, bad.length + 1);
  });

  it('fails with RegistryLookupError when the DHT fails, unless this node provides the name itself', async () => {
    const { node, dht } = mesh();
    const a = node();
    await a.registry.advertise('mine');
    dht.failWith = new Error('no peers');
    await assert.rejects(a.registry.lookup('theirs'), (err: unknown) => {
      assert.ok(err instanceof RegistryLookupError);
      assert.equal(err.code, 'MACULA_ERR_REGISTRY_LOOKUP');
      assert.match(err.message, /"theirs".*no peers/);
      return true;
    });
    assert.deepEqual((await a.registry.lookup('mine')).map((p) => p.local), [true]);
    assert.equal(a.registry.stats().dhtErrors, 2);
    assert.equal(a.registry.lookupCached('mine'), undefined, 'a degraded answer is not cached');
  });

  it('a node that is up again drops only the cached answers that left it out', async () => {
    const { node, dht, clock } = mesh();
    const [a, b] = [node(), node()];
    const down = new Set<string>();
    const listeners: ((nodeId: string, up: boolean) => void)[] = [];
    const liveness = { isDown: (id: string) => down.has(id), onChange: (l: (nodeId: string, up: boolean) => void) => void listeners.push(l) };
    const publisher = new Uint8Array(randomBytes(32));
    const caller = new ServiceRegistry({ dht: dht.node(publisher), localNode: { nodeId: nodeIdOf(publisher), address: { host: '10.0.0.2', port: 7100 } }, clock, liveness });
    await a.registry.advertise('both', {}, { ttlMs: 60_000 });
    await b.registry.advertise('both', {}, { ttlMs: 60_000 });
    await b.registry.advertise('other', {}, { ttlMs: 60_000 });
    down.add(a.nodeId);
    for (const l of listeners) l(a.nodeId, false);
    assert.deepEqual((await caller.lookup('both')).map((p) => p.nodeId), [b.nodeId], 'left out while down');
    assert.deepEqual((await caller.lookup('other')).map((p) => p.nodeId), [b.nodeId]);
    const calls = dht.findCalls;
    down.delete(a.nodeId);
    for (const l of listeners) l(a.nodeId, true);
    assert.equal(caller.lookupCached('both'), undefined, 'the answer that left it out is gone');
    assert.notEqual(caller.lookupCached('other'), undefined, 'the others stay');
    assert.deepEqual((await caller.lookup('both')).map((p) => p.nodeId).sort(), [a.nodeId, b.nodeId].sort());
    assert.equal(dht.findCalls, calls + 1);
  });

  it('shares one DHT lookup among concurrent misses, and an invalidated one answers its waiters without filling the cache', async () => {
    const { node, dht } = mesh();
    const [a, b] = [node(), node()];
    await a.registry.advertise('svc', {}, { ttlMs: 60_000 });
    let open!: () => void;
    dht.gate = new Promise((r) => (open = r));
    const waiting = Array.from({ length: 10 }, () => b.registry.lookup('svc'));
    assert.equal(b.registry.stats().inFlight, 1);
    b.registry.invalidate('svc');
    open();
    dht.gate = undefined;
    for (const found of await Promise.all(waiting)) assert.deepEqual(found.map((p) => p.nodeId), [a.nodeId]);
    assert.equal(dht.findCalls, 1, 'one lookup for ten callers');
    assert.equal(b.registry.lookupCached('svc'), undefined, 'what was declared stale is not cached');
  });

  it('rejects invalid names on lookup', async () => {
    const { node } = mesh();
    await assert.rejects(node().registry.lookup(''), { code: 'MACULA_ERR_INVALID_NAME' });
  });
});

describe('ServiceRegistry cache settings', () => {
  it('a TTL of 0 turns the (negative) cache off instead of caching forever', async () => {
    const { node, dht } = mesh({ cacheTtlMs: 0, negativeCacheTtlMs: 0 });
    const a = node();
    const b = node();
    await b.registry.lookup('none');
    await b.registry.lookup('none');
    await a.registry.advertise('svc');
    await b.registry.lookup('svc');
    await b.registry.lookup('svc');
    assert.equal(dht.findCalls, 4);
    assert.equal(b.registry.stats().size, 0);
  });

  it('refuses a cache without a bound', () => {
    assert.throws(() => mesh({ cacheMaxEntries: 0 }).node(), { code: 'MACULA_ERR_CONFIG' });
  });
});
