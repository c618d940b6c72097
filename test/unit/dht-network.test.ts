import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import type { Contact } from '../../src/dht/contact.js';
import { Dht, type DhtInit } from '../../src/dht/dht.js';
import { bytesEqual, compareDistance } from '../../src/dht/id.js';
import { dhtKey } from '../../src/dht/key.js';
import { LocalDhtHub } from '../helpers/local-dht-network.js';
import { FIND_NODE, NODES, STORE } from '../../src/dht/messages.js';
import { signRecord, toWireRecord } from '../../src/dht/record.js';
import { RemoteError } from '../../src/util/errors.js';
import { NotStoredError } from '../../src/dht/errors.js';

interface Mesh {
  hub: LocalDhtHub;
  nodes: Dht[];
  clock: { t: number; now(): number };
  warnings: string[];
}

function createMesh(n: number, init: DhtInit = {}): Mesh {
  const hub = new LocalDhtHub();
  const clock = { t: Date.now(), now() { return this.t; } };
  const warnings: string[] = [];
  const nodes: Dht[] = [];
  for (let i = 0; i < n; i++) nodes.push(addNode(hub, clock, 20_000 + i, warnings, init));
  return { hub, nodes, clock, warnings };
}

function addNode(hub: LocalDhtHub, clock: Mesh['clock'], port: number, warnings: string[], init: DhtInit = {}): Dht {
  const identity = Identity.generate();
  const self: Contact = { id: identity.nodeId, host: '127.0.0.1', port };
  const dht = new Dht(
    { identity, network: hub.network(self), clock, logger: { warn: (m) => warnings.push(m) } },
    { requestTimeoutMs: 200, lookupDeadlineMs: 3_000, ...init },
  );
  hub.addDht(dht, { host: '127.0.0.1', port });
  return dht;
}

async function bootstrapAll(mesh: Mesh): Promise<void> {
  const first = { host: '127.0.0.1', port: 20_000 };
  // In small groups: joining all at once against a single empty node teaches little.
  for (let i = 1; i < mesh.nodes.length; i += 10) {
    await Promise.all(mesh.nodes.slice(i, i + 10).map((d) => d.bootstrap([first])));
  }
}

function stopAll(mesh: Mesh): void {
  for (const d of mesh.nodes) d.stop();
}

describe('Dht over an in-process network', () => {
  it('stores on one node and finds the value from every other (50 nodes)', async () => {
    const mesh = createMesh(50);
    await bootstrapAll(mesh);
    for (const d of mesh.nodes) assert.ok(d.table.size >= 10, `table of ${d.table.size}`);
    const key = dhtKey('test', 'service-a');
    const value = new TextEncoder().encode('provider at 127.0.0.1:1');
    const put = await mesh.nodes[7]!.put(key, value, { ttlMs: 60_000 });
    assert.ok(put.replicas >= 15, `stored on ${put.replicas} peers`);
    let found = 0;
    for (const d of mesh.nodes) {
      if (d === mesh.nodes[7]) continue;
      const res = await d.findValue(key);
      if (res.records.length === 1 && bytesEqual(res.records[0]!.value, value)) found++;
      assert.equal(res.stats.outcome, 'found');
      assert.ok(res.stats.rounds <= 3, `rounds ${res.stats.rounds}`);
    }
    assert.equal(found, 49);
    const s = mesh.nodes[3]!.stats();
    assert.ok((s.rpcSent.FIND_NODE ?? 0) > 0 && (s.rpcReceived.FIND_VALUE ?? 0) >= 0);
    assert.equal(s.lookups.value.found, 1);
    stopAll(mesh);
  });

  it('keeps every publisher of a multi-valued key, and a new put replaces only our own value', async () => {
    const mesh = createMesh(30);
    await bootstrapAll(mesh);
    const key = dhtKey('test', 'multi');
    for (let i = 0; i < 5; i++) await mesh.nodes[i]!.put(key, new Uint8Array([i]));
    await mesh.nodes[2]!.put(key, new Uint8Array([42]));
    const res = await mesh.nodes[29]!.findValue(key);
    assert.deepEqual(res.records.map((r) => r.value[0]).sort((a, b) => a! - b!), [0, 1, 3, 4, 42]);
    stopAll(mesh);
  });

  it('finds the true closest nodes', async () => {
    const mesh = createMesh(40);
    await bootstrapAll(mesh);
    const target = dhtKey('test', 'target');
    const truth = [...mesh.nodes].sort((a, b) => compareDistance(a.id, b.id, target));
    for (const d of mesh.nodes.slice(0, 10)) {
      const res = await d.findNode(target);
      const expected = truth.filter((x) => x !== d).slice(0, 20);
      assert.deepEqual(res.closest.map((c) => c.port), expected.map((x) => mesh.hub && portOf(mesh, x)));
    }
    stopAll(mesh);
  });

  it('withdraws: lookups stop returning the record at once', async () => {
    const mesh = createMesh(30);
    await bootstrapAll(mesh);
    const key = dhtKey('test', 'withdrawn');
    await mesh.nodes[4]!.put(key, new Uint8Array([1]));
    await mesh.nodes[5]!.put(key, new Uint8Array([2]));
    assert.equal((await mesh.nodes[20]!.findValue(key)).records.length, 2);
    const w = await mesh.nodes[4]!.withdraw(key);
    assert.ok(w && w.replicas > 0);
    const after = await mesh.nodes[20]!.findValue(key);
    assert.deepEqual(after.records.map((r) => r.value[0]), [2]);
    assert.equal(await mesh.nodes[4]!.withdraw(key), undefined, 'nothing left to withdraw');
    assert.equal(mesh.nodes[4]!.stats().ownRecords, 0);
    stopAll(mesh);
  });

  it('re-announces own records before they expire, with a higher seq', async () => {
    const mesh = createMesh(20);
    await bootstrapAll(mesh);
    const key = dhtKey('test', 'renewed');
    const first = await mesh.nodes[1]!.put(key, new Uint8Array([1]), { ttlMs: 300_000 });
    assert.equal(await mesh.nodes[1]!.republish(), 0, 'not due yet');
    mesh.clock.t += 240_000; // TTL − 60 s
    assert.equal(await mesh.nodes[1]!.republish(), 1);
    mesh.clock.t += 100_000; // the first version has expired by now
    const res = await mesh.nodes[9]!.findValue(key);
    assert.equal(res.records.length, 1);
    assert.ok(res.records[0]!.seq > first.record.seq);
    assert.ok(res.records[0]!.expires > mesh.clock.t);
    stopAll(mesh);
  });

  it('replicates stored records to the closest nodes of their key', async () => {
    const mesh = createMesh(25, { replicationIntervalMs: 60_000 });
    await bootstrapAll(mesh);
    const key = dhtKey('test', 'replicated');
    const holder = mesh.nodes[3]!;
    // A record placed on one node only (as if its other holders had left).
    const publisher = Identity.generate();
    const record = signRecord(publisher, { key, value: new Uint8Array([7]), seq: 1, ttlMs: 600_000, now: mesh.clock.t });
    holder.store.put(record);
    assert.equal(await holder.replicate(), 0, 'just received: not replicated yet');
    mesh.clock.t += 60_000;
    assert.equal(await holder.replicate(), 1);
    const holders = mesh.nodes.filter((d) => d.store.get(key).length > 0).length;
    assert.ok(holders >= 20, `${holders} holders`);
    // The new holders just received it, so none of them replicates it again this interval.
    let again = 0;
    for (const d of mesh.nodes) again += await d.replicate();
    assert.equal(again, 0);
    stopAll(mesh);
  });

  it('answers STORE refusals with a code and counts them', async () => {
    const mesh = createMesh(2, { recordStore: { maxRecordSize: 4 } });
    const [a, b] = mesh.nodes as [Dht, Dht];
    const publisher = Identity.generate();
    const record = signRecord(publisher, { key: dhtKey('t', 'x'), value: new Uint8Array(5), seq: 1, ttlMs: 1000, now: mesh.clock.t });
    const from: Contact = { id: a.id, host: '127.0.0.1', port: 20_000 };
    const to: Contact = { id: b.id, host: '127.0.0.1', port: 20_001 };
    const res = await mesh.hub.network(from).request(to, { t: STORE.type, record: toWireRecord(record) }, 1000);
    assert.deepEqual(res, { t: 15, ok: false, code: 'too_large' });
    assert.equal(b.stats().storesRefused.too_large, 1);
    assert.equal(b.stats().rpcReceived.STORE, 1);
    // A type the DHT does not serve is refused by the one dispatch, as the messenger refuses it.
    await assert.rejects(mesh.hub.network(from).request(to, { t: NODES.type, nodes: [] }, 1000), (e: unknown) => e instanceof RemoteError && e.code === 'MACULA_ERR_UNSUPPORTED');
    stopAll(mesh);
  });

  it('put() resolves once enough of the closest nodes accepted, and rejects with NOT_STORED naming the refusals otherwise', async () => {
    const lone = createMesh(1);
    assert.equal((await lone.nodes[0]!.put(dhtKey('t', 'lone'), new Uint8Array([1]))).storedLocally, true, 'a lone node stores its own record');
    stopAll(lone);

    const mesh = createMesh(4, { recordStore: { maxRecordsPerPublisher: 1 } });
    await bootstrapAll(mesh);
    const a = mesh.nodes[1]!;
    await a.put(dhtKey('t', 'first'), new Uint8Array([1]));
    await assert.rejects(a.put(dhtKey('t', 'second'), new Uint8Array([1])), (err: unknown) => {
      assert.ok(err instanceof NotStoredError);
      assert.equal(err.code, 'MACULA_ERR_NOT_STORED');
      assert.deepEqual(err.refusals, { publisher_full: 4 });
      assert.match(err.message, /publisher_full ×4/);
      return true;
    });
    stopAll(mesh);

    // One refusing node among accepting ones does not fail the put.
    const mixed = createMesh(3);
    mixed.nodes.push(addNode(mixed.hub, mixed.clock, 20_003, mixed.warnings, { recordStore: { maxRecordsPerPublisher: 0 } }));
    await bootstrapAll(mixed);
    const put = await mixed.nodes[0]!.put(dhtKey('t', 'mixed'), new Uint8Array([1]));
    assert.deepEqual(put.refusals, { publisher_full: 1 });
    assert.equal(put.replicas + (put.storedLocally ? 1 : 0), 3);
    stopAll(mixed);
  });

  it('lookups finish when a node falls silent, and the silent node is dropped after repeated failures', async () => {
    const mesh = createMesh(30, { requestTimeoutMs: 40 });
    await bootstrapAll(mesh);
    const victim = mesh.nodes[10]!;
    mesh.hub.setBehaviour(victim.id, { silent: true });
    const asker = mesh.nodes.find((d) => d !== victim && d.table.get(victim.id))!;
    for (let i = 0; i < 2; i++) {
      const res = await asker.findNode(victim.id);
      assert.ok(!res.closest.some((c) => bytesEqual(c.id, victim.id)));
      assert.ok(res.stats.timeouts >= 1);
    }
    assert.equal(asker.table.get(victim.id), undefined);
    assert.ok(asker.stats().timeouts >= 2);
    stopAll(mesh);
  });

  it('warns about an unreachable bootstrap node and retries with backoff until it answers', async () => {
    const hub = new LocalDhtHub();
    const clock = { t: Date.now(), now() { return this.t; } };
    const warnings: string[] = [];
    const joiner = addNode(hub, clock, 21_000, warnings, { bootstrapRetryMinMs: 10, bootstrapRetryMaxMs: 40 });
    const result = await joiner.bootstrap([{ host: '127.0.0.1', port: 21_001 }]);
    assert.deepEqual(result, { reached: 0, retrying: true, routingTableSize: 0 });
    assert.match(warnings[0]!, /bootstrap node 127\.0\.0\.1:21001 is unreachable/);
    assert.match(warnings[1]!, /retrying in/);
    const seed = addNode(hub, clock, 21_001, warnings);
    for (let i = 0; i < 200 && joiner.table.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(joiner.table.get(seed.id), 'joined once the bootstrap node came up');
    assert.ok(seed.table.get(joiner.id), 'and the bootstrap node learned about the joiner');
    joiner.stop();
    seed.stop();
  });

  it('skips its own address in the bootstrap list, and is the first node when nothing else is listed', async () => {
    const mesh = createMesh(3);
    const [a, b] = mesh.nodes as [Dht, Dht];
    const self = { host: '127.0.0.1', port: 20_000 };
    assert.deepEqual(await a.bootstrap([self]), { reached: 0, retrying: false, routingTableSize: 0 });
    const res = await b.bootstrap([self, { host: '127.0.0.1', port: 20_001 }, { host: '127.0.0.1', port: 20_002 }]);
    assert.equal(res.reached, 2);
    assert.equal(res.retrying, false);
    assert.equal(mesh.warnings.length, 0);
    stopAll(mesh);
  });

  it('re-announces by timer once started, and stop() ends it', async () => {
    const hub = new LocalDhtHub();
    const clock = { now: () => Date.now() };
    const nodes = [0, 1, 2].map((i) => {
      const identity = Identity.generate();
      const port = 22_000 + i;
      const dht = new Dht({ identity, network: hub.network({ id: identity.nodeId, host: '127.0.0.1', port }), clock }, { requestTimeoutMs: 200 });
      hub.addDht(dht, { host: '127.0.0.1', port });
      return dht;
    });
    await Promise.all(nodes.slice(1).map((d) => d.bootstrap([{ host: '127.0.0.1', port: 22_000 }])));
    const key = dhtKey('test', 'timer');
    nodes[0]!.start();
    const first = await nodes[0]!.put(key, new Uint8Array([1]), { ttlMs: 1_000 }); // re-announced after 500 ms
    const seqAt = () => nodes[1]!.store.get(key)[0]?.seq ?? 0;
    for (let i = 0; i < 100 && seqAt() <= first.record.seq; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seqAt() > first.record.seq, 're-announced with a higher seq');
    for (const d of nodes) d.stop();
    const stopped = seqAt();
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(seqAt(), stopped, 'no re-announcement after stop()');
  });

  it('reports RPCs and lookups to the metrics hooks', async () => {
    const hub = new LocalDhtHub();
    const seen = { sent: new Map<string, number>(), received: 0, lookups: [] as string[], stored: 0 };
    const make = (port: number) => {
      const identity = Identity.generate();
      const dht = new Dht(
        {
          identity,
          network: hub.network({ id: identity.nodeId, host: '127.0.0.1', port }),
          metrics: {
            rpcSent: (t) => seen.sent.set(t, (seen.sent.get(t) ?? 0) + 1),
            rpcReceived: () => seen.received++,
            lookup: (s) => seen.lookups.push(`${s.kind}:${s.outcome}`),
            recordStored: () => seen.stored++,
          },
        },
      );
      hub.addDht(dht, { host: '127.0.0.1', port });
      return dht;
    };
    const a = make(23_000);
    const b = make(23_001);
    await b.bootstrap([{ host: '127.0.0.1', port: 23_000 }]);
    await b.put(dhtKey('test', 'm'), new Uint8Array([1]));
    assert.ok((seen.sent.get('FIND_NODE') ?? 0) >= 1);
    assert.equal(seen.sent.get('STORE'), 1);
    assert.ok(seen.received >= 2);
    assert.ok(seen.lookups.includes('node:ok'));
    assert.equal(seen.stored, 2, 'stored on a and locally on b');
    assert.equal(b.stats().rpcSent.STORE, 1);
    assert.equal(a.stats().rpcReceived.STORE, 1);
    a.stop();
    b.stop();
  });

  it('does not add light clients (port 0) to the routing table', async () => {
    const mesh = createMesh(1);
    const client = Identity.generate();
    const self: Contact = { id: client.nodeId, host: '127.0.0.1', port: 0 };
    await mesh.hub.network(self).request({ id: mesh.nodes[0]!.id, host: '127.0.0.1', port: 20_000 }, { t: FIND_NODE.type, target: client.nodeId }, 1000);
    assert.equal(mesh.nodes[0]!.table.size, 0);
    stopAll(mesh);
  });
});

function portOf(mesh: Mesh, d: Dht): number {
  return 20_000 + mesh.nodes.indexOf(d);
}
