/**
 * What hostile peers and clients can make a node store, over real QUIC on
 * 127.0.0.1: STORE floods from a light client (refused) and from a node
 * (bounded in bytes), quota theft through one gateway, a flood of the `""`
 * pub/sub key, and honest success (MACULA_ERR_NOT_STORED when the mesh
 * refuses). Each test also checks that legitimate peers are still served.
 * Set MACULA_TEST_FIGURES=1 to print the measured figures, and
 * MACULA_FLOOD_RECORDS=100000 for floods of the size seen in the field
 * (about a minute; the defaults keep the suite fast).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MaculaClient, type ClientMessage } from '../../src/client/client.js';
import { dhtKey } from '../../src/dht/key.js';
import { STORE, type DhtMessage } from '../../src/dht/messages.js';
import { signRecord, toWireRecord, type DhtRecord } from '../../src/dht/record.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_BYTES_PER_PUBLISHER } from '../../src/dht/record-store.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { Messenger } from '../../src/session/messenger.js';
import { announcementKeyNamespace, encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import { runMacula, unusedUdpPort } from '../helpers/cli.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

const figures = (line: string): void => {
  if (process.env.MACULA_TEST_FIGURES) process.stderr.write(`figures: ${line}\n`);
};
const MB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** A raw peer speaking the wire protocol directly, as a hostile one would. */
async function rawPeer(role: 'node' | 'client', identity = Identity.generate()) {
  const transport = new QuicTransport({ identity });
  if (role === 'node') await transport.listen({ host: '127.0.0.1', port: 0 });
  const messenger = new Messenger({ transport, pool: new ConnectionPool({ transport }) }, { role, requestTimeoutMs: 30_000 });
  messenger.start();
  return {
    identity,
    store: (to: MeshNode, record: DhtRecord): Promise<DhtMessage> =>
      messenger.request({ address: to.listenAddress!, nodeId: to.nodeId }, { t: STORE.type, record: toWireRecord(record) }) as Promise<DhtMessage>,
    async close() {
      messenger.stop();
      await transport.close();
    },
  };
}

/** Sends `count` records made by `make(i)` with at most `window` in flight; returns the answers' codes counted. */
async function flood(send: (i: number) => Promise<DhtMessage>, count: number, window = 256): Promise<Map<string, number>> {
  const codes = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const res = await send(next++);
      const code = res.ok === true ? 'ok' : String(res.code);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return codes;
}

const connect = (node: MeshNode) => MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 10_000 });

/** Subscribes and returns the array the messages arrive in. */
async function collect(client: MaculaClient, pattern: string): Promise<ClientMessage[]> {
  const messages: ClientMessage[] = [];
  await client.subscribe(pattern, (m) => void messages.push(m));
  return messages;
}

/** Publishes `n` messages through `client` until `received` holds them all (a new subscriber may take a cache TTL to be found). */
async function publishUntilReceived(client: MaculaClient, topic: string, n: number, received: ClientMessage[]): Promise<void> {
  for (let i = 0; i < n; i++) await client.publish(topic, { i });
  await waitFor(() => received.length >= n, 15_000, `${n} messages on ${topic}`);
}

describe('what peers and clients can make a node store', () => {
  let net: Testnet;

  before(async () => {
    net = await createTestnet(3);
  });
  after(async () => {
    await net.destroy();
  });

  it('refuses every STORE from a light client, counts it, and keeps serving', async () => {
    const [victim, other] = net.nodes as [MeshNode, MeshNode];
    const client = await rawPeer('client');
    const value = new Uint8Array(16 * 1024).fill(7);
    const rss0 = process.memoryUsage().rss;
    const before = victim.dht.stats();
    const count = Number(process.env.MACULA_FLOOD_RECORDS ?? 5000);
    const now = Date.now();
    const records = Array.from({ length: 16 }, (_, i) => signRecord(client.identity, { key: dhtKey('flood-client', String(i)), value, seq: 1, ttlMs: 60_000, now }));
    try {
      const codes = await flood((i) => client.store(victim, records[i % records.length]!), count);
      assert.deepEqual([...codes], [['not_a_node', count]]);
    } finally {
      await client.close();
    }
    const s = victim.dht.stats();
    assert.equal(s.storesRefused.not_a_node - before.storesRefused.not_a_node, count);
    assert.equal(s.bytes, before.bytes, 'nothing of the client was stored');
    figures(`client STORE flood: ${count} × 16 KiB refused (not_a_node ${s.storesRefused.not_a_node}); store ${s.bytes} B; RSS ${MB(rss0)} → ${MB(process.memoryUsage().rss)}`);
    // The node still serves: another node's record is stored and found.
    await other.dht.put(dhtKey('after-flood', 'client'), new Uint8Array([1]));
    assert.equal(victim.dht.store.get(dhtKey('after-flood', 'client')).length, 1);
  });

  it('bounds a STORE flood from a node in bytes, and another publisher is unaffected', async () => {
    const [victim, honest] = net.nodes as [MeshNode, MeshNode];
    const flooder = await rawPeer('node');
    // The flooder signs with many identities (they are free), 16 KiB each.
    const identities = Array.from({ length: 100 }, () => Identity.generate());
    const value = new Uint8Array(16 * 1024).fill(9);
    const count = Number(process.env.MACULA_FLOOD_RECORDS ?? 20_000);
    const now = Date.now();
    const rss0 = process.memoryUsage().rss;
    let peakBytes = 0;
    let codes: Map<string, number>;
    try {
      codes = await flood((i) => {
        const id = identities[i % identities.length]!;
        const r = signRecord(id, { key: dhtKey('flood-node', String(i)), value, seq: 1, ttlMs: 120_000, now });
        return flooder.store(victim, r).then((res) => {
          peakBytes = Math.max(peakBytes, victim.dht.stats().bytes);
          return res;
        });
      }, count);
    } finally {
      await flooder.close();
    }
    const s = victim.dht.stats();
    assert.ok(peakBytes <= s.maxBytes, `store bytes ${peakBytes} stayed within ${s.maxBytes}`);
    assert.equal(s.maxBytes, DEFAULT_MAX_BYTES);
    assert.ok(s.maxPublisherBytes <= DEFAULT_MAX_BYTES_PER_PUBLISHER);
    assert.ok((codes.get('publisher_full') ?? 0) + (codes.get('store_full') ?? 0) > 0, `refusals: ${[...codes]}`);
    figures(
      `node STORE flood: ${count} × 16 KiB from ${identities.length} identities → ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}; ` +
        `store peak ${MB(peakBytes)} of ${MB(s.maxBytes)}; RSS ${MB(rss0)} → ${MB(process.memoryUsage().rss)}`,
    );
    // Another publisher still gets its record stored and found.
    const key = dhtKey('after-flood', 'node');
    await honest.dht.put(key, new Uint8Array([2]));
    const { records } = await net.nodes[2]!.dht.findValue(key);
    assert.equal(records.length, 1);
    // Leave room for the next tests: drop the flood.
    for (let i = 0; i < count; i++) victim.dht.store.remove(dhtKey('flood-node', String(i)), identities[i % identities.length]!.publicKey);
    assert.ok(victim.dht.stats().bytes < 1024 * 1024);
  });
});

describe('quota theft through one gateway', () => {
  let net: Testnet;
  const clients: MaculaClient[] = [];

  before(async () => {
    // Remote stores hold 100 records of one publisher; the gateway lets its clients cause 90 keys, 64 per client.
    net = await createTestnet(3, { dht: { recordStore: { maxRecordsPerPublisher: 100 } }, gateway: { maxDhtKeysPerClient: 64, maxClientDhtKeys: 90 } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await net.destroy();
  });

  it("one client's 1,000 distinct prefixes leave the node's other clients served, and its quota is free once it leaves", async () => {
    const [far, gw, near] = net.nodes as [MeshNode, MeshNode, MeshNode];
    const attacker = await connect(gw);
    const results: PromiseSettledResult<unknown>[] = [];
    for (let i = 0; i < 1000; i += 100) {
      results.push(...(await Promise.allSettled(Array.from({ length: 100 }, (_, j) => attacker.subscribe(`theft${i + j}.x`, () => undefined)))));
    }
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(results.length - refused.length, 64, 'the per-client key bound');
    assert.ok(refused.every((r) => (r.reason as { code?: string }).code === 'MACULA_ERR_LIMIT'), String(refused[0]?.reason));
    assert.equal(gw.gateway.stats().dhtKeys, 64);

    // Other clients of the same node: a subscription with a new prefix and a served procedure.
    const alice = await connect(gw);
    const bob = await connect(gw);
    const carol = await connect(near);
    const dave = await connect(far);
    clients.push(alice, bob, carol, dave);
    const got = await collect(alice, 'news.#');
    await bob.serve('legit.echo', (args) => ({ echo: args }));
    await publishUntilReceived(carol, 'news.flash', 3, got);
    assert.deepEqual(await dave.call('legit.echo', 'hi'), { echo: 'hi' });
    figures(`quota theft: attacker got 64 of 1000 subscriptions (936 × MACULA_ERR_LIMIT); alice received ${got.length} of 3, dave's call answered`);

    // The attacker leaves: its keys are released at the gateway and its records withdrawn (tombstones, outside the quota).
    const t0 = Date.now();
    await attacker.close();
    await waitFor(() => gw.gateway.stats().dhtKeys === 2, 10_000, 'the attacker keys released');
    // A newcomer takes a full quota again: 64 more records of the gateway at the remote stores,
    // which would be refused (100 per publisher) if the attacker's 64 tombstones still counted.
    const eve = await connect(gw);
    clients.push(eve);
    await waitFor(() => net.nodes.every((n) => n.dht.stats().tombstones >= 64), 10_000, "the attacker's records withdrawn everywhere");
    const r = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => eve.subscribe(`fresh${i}.x`, () => undefined)));
    const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    assert.equal(failed, undefined, `newcomer refused: ${String(failed?.reason)}`);
    const freedMs = Date.now() - t0;
    const tombstones = far.dht.stats().tombstones;
    assert.ok(tombstones >= 64, `the attacker's records are tombstones at the remote stores (${tombstones})`);
    figures(`quota theft: after the attacker left, a newcomer's 64 subscriptions were all stored within ${freedMs} ms; remote tombstones ${tombstones}`);
  });
});

describe('a flood of the "" pub/sub key', () => {
  let net: Testnet;
  const clients: MaculaClient[] = [];

  before(async () => {
    net = await createTestnet(3);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await net.destroy();
  });

  it('leaves room for a newcomer # subscriber, which receives every message', async () => {
    const [first, gw, pubNode] = net.nodes as [MeshNode, MeshNode, MeshNode];
    const attacker = await rawPeer('node');
    const fakes = Array.from({ length: 1000 }, () => Identity.generate());
    const key = dhtKey(announcementKeyNamespace(gw.realm), '');
    const value = encodeAnnouncement({ host: '127.0.0.1', port: await unusedUdpPort() }, ['#']);
    const now = Date.now();
    const records = fakes.map((id) => signRecord(id, { key, value, seq: 1, ttlMs: 300_000, now }));
    try {
      for (const node of net.nodes) {
        const codes = await flood((i) => attacker.store(node, records[i]!), records.length);
        assert.equal(codes.get('ok'), 1000, [...codes].join());
        const extra = await attacker.store(node, signRecord(Identity.generate(), { key, value, seq: 1, ttlMs: 300_000, now }));
        assert.equal(extra.code, 'key_full', 'the key is full');
      }
    } finally {
      await attacker.close();
    }
    const newcomer = await connect(gw);
    const publisher = await connect(pubNode);
    clients.push(newcomer, publisher);
    const got = await collect(newcomer, '#');
    const evicted = net.nodes.map((n) => n.dht.stats().recordsEvicted);
    assert.ok(evicted.every((n) => n >= 1), `each holder made room: ${evicted}`);
    await publishUntilReceived(publisher, 'alerts.disk', 5, got);
    // The flood again: the fakes cannot push the newcomer's node out.
    const again = await rawPeer('node');
    try {
      const codes = await flood((i) => again.store(gw, records[i]!), records.length);
      assert.equal(codes.get('key_full'), 1, `the evicted fake is refused: ${[...codes]}`);
    } finally {
      await again.close();
    }
    assert.ok(gw.dht.store.get(key).some((r) => Buffer.from(r.publisher).equals(Buffer.from(gw.identity.publicKey))), "the gateway's record is still held");
    figures(`"" key flood: 1000 fake # subscribers per node; newcomer stored (evictions per node ${evicted}), received ${got.length} of 5; key holds ${first.dht.store.get(key).length} records`);
  });
});

describe('honest success', () => {
  let net: Testnet;
  const clients: MaculaClient[] = [];

  before(async () => {
    // Every store holds one record of a publisher: the gateway's second key is refused by all.
    net = await createTestnet(3, { dht: { recordStore: { maxRecordsPerPublisher: 1 } } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await net.destroy();
  });

  it('fails subscribe and serve refused by the mesh with MACULA_ERR_NOT_STORED, in the API and the CLI (exit 1)', async () => {
    const gw = net.nodes[1]!;
    const first = await connect(gw);
    clients.push(first);
    await first.subscribe('taken.#', () => undefined);
    const notStored = (what: RegExp) => (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'MACULA_ERR_NOT_STORED');
      assert.match((err as Error).message, /publisher_full/);
      assert.match((err as Error).message, what);
      return true;
    };
    await assert.rejects(gw.subscribe('api.#', () => undefined).ready, notStored(/prefix "api"/));
    await assert.rejects(gw.register('api.proc', () => 1), notStored(/rpc:api\.proc/));
    await assert.rejects(first.subscribe('second.#', () => undefined), notStored(/prefix "second"/));
    const address = `127.0.0.1:${gw.listenAddress!.port}`;
    const sub = await runMacula(['sub', 'cli.#', '--node', address, '--count', '1']);
    assert.equal(sub.code, 1, sub.stderr);
    assert.match(sub.stderr, /MACULA_ERR_NOT_STORED.*publisher_full/);
    assert.doesNotMatch(sub.stderr, /subscribed/);
    const serve = await runMacula(['serve', 'cli.proc', '--node', address, '--', 'cat']);
    assert.equal(serve.code, 1, serve.stderr);
    assert.match(serve.stderr, /MACULA_ERR_NOT_STORED.*publisher_full/);
    assert.doesNotMatch(serve.stderr, /serving/);
    figures(`honest success: macula sub → exit ${sub.code}: ${sub.stderr.trim()}`);
    // Nothing of the refused requests is left at the gateway.
    assert.equal(gw.gateway.stats().dhtKeys, 1);
    assert.ok(gw.gateway.stats().notStored >= 3);
  });
});
