/**
 * Light-client publishing over real QUIC on 127.0.0.1: one-way publishes
 * with the node's flow control (GW_SEND / GW_ACK / GW_NACK), asynchronous
 * failures, and messages batched into few writes end to end.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MaculaClient, PublishError, type ClientMessage } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { createNode, type MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { QuicStream } from '../../src/transport/quic-connection.js';
import { waitFor } from '../helpers/testnet.js';

const quiet = { warn: () => {} };

describe('light-client publishing', { timeout: 60_000 }, () => {
  const nodes: MeshNode[] = [];
  const clients: MaculaClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  async function node(options: MeshNodeOptions = {}): Promise<MeshNode> {
    const n = await createNode({ identity: Identity.generate(), host: '127.0.0.1', port: 0, logger: quiet, ...options });
    nodes.push(n);
    return n;
  }

  /** Makes the node's pub/sub take no publish until the returned function is called. */
  function holdPublishes(n: MeshNode): () => void {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const publish = n.pubsub.publish.bind(n.pubsub);
    n.pubsub.publish = (topic, data, options) => gate.then(() => publish(topic, data, options));
    return open;
  }

  async function client(n: MeshNode): Promise<MaculaClient> {
    const c = await MaculaClient.connect({ node: n.listenAddress!, timeoutMs: 10_000 });
    clients.push(c);
    return c;
  }

  it('slows a publisher faster than the node to its window, holds no more than that, and flushes only once all is accepted', async () => {
    const WINDOW = 8;
    const n = await node({ gateway: { publishWindow: WINDOW, subscribeReadyTimeoutMs: 200 } });
    const sub = await client(n);
    const got: unknown[] = [];
    await sub.subscribe('fc.t', (m) => void got.push(m.data));
    const pub = await client(n);
    assert.equal(pub.info?.limits.publishWindow, WINDOW);
    // The node's pub/sub takes nothing until the gate opens (as a full fan-out queue would).
    const open = holdPublishes(n);

    const TOTAL = 200;
    let handed = 0;
    const publisher = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        await pub.publish('fc.t', i);
        handed++;
      }
    })();
    await waitFor(() => n.gateway.stats().publishPending === WINDOW, 10_000, 'the window to fill at the node');
    let flushed = false;
    const flush = pub.flush({ timeoutMs: 30_000 }).then(() => (flushed = true));
    // Give the publisher every chance to run ahead: it must stay at the window.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(handed, WINDOW, 'publish() waits once the window is full');
    assert.deepEqual({ pending: pub.publishStats().pending, waiting: pub.publishStats().waiting }, { pending: WINDOW, waiting: 1 });
    assert.equal(n.gateway.stats().publishPending, WINDOW, 'the node holds no more than the window');
    assert.equal(flushed, false, 'flush() waits for the node to accept');

    open();
    await flush;
    assert.ok(handed >= WINDOW + 1, 'the flush covered what was sent before it');
    await publisher;
    await pub.flush();
    await waitFor(() => got.length === TOTAL, 10_000, 'every message delivered');
    assert.deepEqual(got, Array.from({ length: TOTAL }, (_, i) => i), 'in order');
    const stats = pub.publishStats();
    assert.deepEqual({ sent: stats.sent, acknowledged: stats.acknowledged, failed: stats.failed, pending: stats.pending }, { sent: TOTAL, acknowledged: TOTAL, failed: 0, pending: 0 });
    const gw = n.gateway.stats();
    assert.deepEqual({ publishes: gw.publishes, pending: gw.publishPending, failures: gw.publishFailures, overruns: gw.publishOverruns }, { publishes: TOTAL, pending: 0, failures: 0, overruns: 0 });
  });

  it("keeps a publisher of large messages to half the node's bytes window, so the node never refuses it", async () => {
    const WINDOW_BYTES = 64 * 1024;
    const SIZE = 10 * 1024;
    const n = await node({ gateway: { publishWindow: 1000, publishWindowBytes: WINDOW_BYTES, subscribeReadyTimeoutMs: 200 } });
    const sub = await client(n);
    let got = 0;
    await sub.subscribe('fcb.t', () => void got++);
    const pub = await client(n);
    assert.equal(pub.info?.limits.publishWindowBytes, WINDOW_BYTES);
    const open = holdPublishes(n);

    const TOTAL = 40;
    let handed = 0;
    const publisher = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        await pub.publish('fcb.t', new Uint8Array(SIZE));
        handed++;
      }
    })();
    await waitFor(() => pub.publishStats().waiting === 1, 10_000, 'the publisher to wait for room');
    await waitFor(() => n.gateway.stats().publishPending === handed, 10_000, 'what was sent to reach the node');
    const stats = pub.publishStats();
    assert.ok(stats.pendingBytes >= WINDOW_BYTES / 2 && stats.pendingBytes < WINDOW_BYTES / 2 + SIZE + 64, `the client stops at half the node's bytes: ${stats.pendingBytes}`);
    assert.ok(handed < TOTAL / 4, `publish() waits on bytes long before the count window: ${handed}`);
    open();
    await publisher;
    await pub.flush();
    await waitFor(() => got === TOTAL, 10_000, 'every message delivered');
    const gw = n.gateway.stats();
    assert.deepEqual({ pending: gw.publishPending, failures: gw.publishFailures, overruns: gw.publishOverruns }, { pending: 0, failures: 0, overruns: 0 });
  });

  it('reports a failed publish later, naming it, counted on both sides; the others go through', async () => {
    const n = await node({ pubsub: { maxPayloadBytes: 1024 }, gateway: { subscribeReadyTimeoutMs: 200 } });
    const sub = await client(n);
    const got: ClientMessage[] = [];
    await sub.subscribe('err.*', (m) => void got.push(m));
    const pub = await client(n);
    const events: PublishError[] = [];
    pub.on('publish-error', (err: PublishError) => events.push(err));
    await pub.publish('err.a', 'first');
    await pub.publish('err.b', new Uint8Array(4096)); // over the node's payload limit
    await pub.publish('err.c', 'third');
    await assert.rejects(pub.flush(), (err: unknown) => {
      assert.ok(err instanceof PublishError);
      assert.equal(err.code, 'MACULA_ERR_INVALID_PAYLOAD');
      assert.equal(err.seq, 2);
      assert.equal(err.topic, 'err.b');
      assert.match(err.message, /^publish #2 to "err.b" failed: payload of 4096 bytes exceeds the limit of 1024 bytes/);
      return true;
    });
    assert.equal(events.length, 1);
    assert.equal(pub.publishStats().failed, 1);
    assert.equal(n.gateway.stats().publishFailures, 1);
    await pub.flush(); // the failure was reported once
    await waitFor(() => got.length === 2, 10_000, 'the two good messages');
    assert.deepEqual(got.map((m) => m.data), ['first', 'third']);
  });

  it('carries many messages in one tick in order, in far fewer writes than messages', async () => {
    const a = await node({ gateway: { subscribeReadyTimeoutMs: 200 } });
    const b = await node({ bootstrap: [a.listenAddress!] });
    await b.joined();
    const sub = await client(b);
    const got: number[] = [];
    await sub.subscribe('batch.t', (m) => void got.push(m.data as number));
    const pub = await client(a);
    // The subscription is announced; wait until a's fan-out finds it.
    await waitFor(async () => (await pub.publishAndWait('batch.t', -1)).nodes === 1, 15_000, 'the publisher node sees the subscriber node');
    await waitFor(() => got.length === 1, 10_000, 'the first message');
    got.length = 0;

    const N = 2000;
    const proto = QuicStream.prototype;
    const write = proto.write;
    let writes = 0;
    proto.write = function (this: QuicStream, data: Uint8Array) {
      writes++;
      return write.call(this, data);
    };
    try {
      // As fast as the window lets: each publish() resolves at once while it has room.
      for (let i = 0; i < N; i++) await pub.publish('batch.t', i);
      await pub.flush();
      await waitFor(() => got.length === N, 20_000, 'every message at the subscriber');
    } finally {
      proto.write = write;
    }
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => i), 'in order');
    // Three hops each way (client → a → b → client) plus acknowledgements: one write per message would be ≥ 6000.
    assert.ok(writes < N / 4, `${writes} writes for ${N} messages over three hops`);
  });
});
