/**
 * Runs (wire/run.ts) over real QUIC on 127.0.0.1: consecutive publishes of
 * one publisher to one topic travel as one GW_SEND, PUBLISH and GW_MSG, and
 * arrive complete, in order, with consecutive sequence numbers; a malformed
 * run is a counted protocol error that costs its sender the connection and
 * nobody else anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MaculaClient, type ClientMessage } from '../../src/client/client.js';
import { GW_ACK, GW_NACK, GW_SEND } from '../../src/gateway/messages.js';
import { Identity } from '../../src/identity/identity.js';
import { createNode, type MeshNode } from '../../src/node/mesh-node.js';
import { Messenger } from '../../src/session/messenger.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import type { ProtocolError } from '../../src/util/errors.js';
import { waitFor } from '../helpers/testnet.js';

const quiet = { warn: () => {} };

/** A light client speaking the gateway protocol by hand: what it sends is exactly what the test says. */
class RawClient {
  readonly acks: number[] = [];
  readonly nacks: { n: number; code: string }[] = [];
  readonly #transport = new QuicTransport({ identity: Identity.generate() });
  readonly #pool = new ConnectionPool({ transport: this.#transport }, { maxConnections: 2 });
  readonly messenger = new Messenger({ transport: this.#transport, pool: this.#pool }, { role: 'client' });

  constructor(readonly node: MeshNode) {
    this.messenger.handle(GW_ACK, (msg) => void this.acks.push(msg.n));
    this.messenger.handle(GW_NACK, (msg) => void this.nacks.push({ n: msg.n, code: msg.code }));
  }

  send(msg: Record<string, unknown>): Promise<void> {
    return this.messenger.notify({ address: this.node.listenAddress! }, { t: GW_SEND.type, ...msg });
  }

  async close(): Promise<void> {
    this.#pool.stop();
    await this.#transport.close();
  }
}

/** Runs fn(0 … count - 1) in order from `lanes` loops that each await their publish, as `macula bench` does. */
async function pipelined(count: number, lanes: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

describe('message runs', { timeout: 120_000 }, () => {
  let a: MeshNode;
  let b: MeshNode;
  const clients: { close(): Promise<unknown> }[] = [];
  const protocolErrors: string[] = [];

  before(async () => {
    a = await createNode({ identity: Identity.generate(), host: '127.0.0.1', port: 0, logger: quiet, gateway: { subscribeReadyTimeoutMs: 2000 } });
    b = await createNode({ identity: Identity.generate(), host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [a.listenAddress!], gateway: { subscribeReadyTimeoutMs: 2000 } });
    await b.joined();
    a.on('protocol-error', (err: ProtocolError) => protocolErrors.push(err.kind));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all([a.stop(), b.stop()]);
  });

  async function client(n: MeshNode): Promise<MaculaClient> {
    const c = await MaculaClient.connect({ node: n.listenAddress!, timeoutMs: 10_000 });
    clients.push(c);
    return c;
  }

  function raw(n: MeshNode): RawClient {
    const c = new RawClient(n);
    clients.push(c);
    return c;
  }

  /** A client on B subscribed to `topic`, collecting what it gets. */
  async function subscriber(topic: string): Promise<ClientMessage[]> {
    const got: ClientMessage[] = [];
    const sub = await client(b);
    await sub.subscribe(topic, (m) => void got.push(m));
    return got;
  }

  function assertConsecutive(got: readonly ClientMessage[], data: readonly unknown[]): void {
    assert.deepEqual(
      got.map((m) => m.data),
      data,
      'complete and in order',
    );
    for (let i = 1; i < got.length; i++) assert.equal(got[i]!.seq, got[0]!.seq! + i, `message ${i} numbered right after the one before`);
    assert.ok(got.every((m) => m.publisher === a.nodeId));
  }

  it('a GW_SEND run is published message by message, acknowledged up to n + k - 1, and delivered in order', async () => {
    const got = await subscriber('runs.raw');
    const pub = raw(a);
    await pub.send({ tp: 'runs.raw', n: 1, d: 'first' });
    await pub.send({ tp: 'runs.raw', n: 2, d: [1, 2, 3, 4, 5], k: 5 });
    await pub.send({ tp: 'runs.raw', n: 7, d: ['six', { seven: 7 }], k: 2 });
    await waitFor(() => pub.acks.includes(8), 10_000, 'GW_ACK 8');
    await waitFor(() => got.length === 8, 10_000, 'every message delivered');
    assertConsecutive(got, ['first', 1, 2, 3, 4, 5, 'six', { seven: 7 }]);
    assert.deepEqual(pub.nacks, []);
    assert.equal(a.gateway.stats().publishes >= 8, true);
  });

  it('a burst of thousands of publishes travels client → node → node → client complete, in order, with consecutive numbers', async () => {
    const got = await subscriber('runs.burst');
    const inProcess: PubSubMessage[] = [];
    const local = b.pubsub.subscribe('runs.burst', (m) => void inProcess.push(m));
    await local.ready;
    const received = b.pubsub.stats().runsReceived;
    const forwarded = b.gateway.stats().forwardedRuns;
    const pub = await client(a);
    const TOTAL = 5000;
    const runsBefore = a.gateway.stats().publishRuns;
    await pipelined(TOTAL, 64, (i) => pub.publish('runs.burst', i));
    await pub.flush();
    await waitFor(() => got.length === TOTAL, 30_000, 'every message delivered');
    assertConsecutive(
      got,
      Array.from({ length: TOTAL }, (_, i) => i),
    );
    const stats = pub.publishStats();
    assert.deepEqual({ sent: stats.sent, acknowledged: stats.acknowledged, failed: stats.failed }, { sent: TOTAL, acknowledged: TOTAL, failed: 0 });
    assert.ok(stats.runs > 0 && stats.runs <= TOTAL / 2, `the burst went out as runs (${stats.runs})`);
    assert.equal(a.gateway.stats().publishRuns - runsBefore, stats.runs, 'the node counted each run');
    assert.ok(a.pubsub.stats().runsSent > 0, 'node A sent runs on to node B');
    assert.ok(b.pubsub.stats().runsReceived > received, 'node B received runs');
    assert.ok(b.gateway.stats().forwardedRuns > forwarded, 'node B forwarded runs to its client');
    await waitFor(() => inProcess.length === TOTAL, 10_000, 'every message at the in-process subscription');
    assert.deepEqual(
      inProcess.map((m) => [m.data, m.seq - inProcess[0]!.seq]),
      Array.from({ length: TOTAL }, (_, i) => [i, i]),
      'each message in order, with consecutive numbers',
    );
    await local.unsubscribe();
  });

  it('a message of a run refused on its own (payload too large) is reported by number; the rest is published', async () => {
    const got = await subscriber('runs.refused');
    const pub = raw(a);
    const big = new Uint8Array(a.pubsub.options.maxPayloadBytes + 1);
    await pub.send({ tp: 'runs.refused', n: 1, d: ['one', big, 'three', 'four'], k: 4 });
    await waitFor(() => pub.acks.includes(4), 10_000, 'GW_ACK 4');
    assert.deepEqual(pub.nacks, [{ n: 2, code: 'MACULA_ERR_INVALID_PAYLOAD' }]);
    await waitFor(() => got.length === 3, 10_000, 'the other three delivered');
    assertConsecutive(got, ['one', 'three', 'four']);
  });

  it('queue groups get each message of a run once, plain subscribers every one, in order', async () => {
    const plain = await subscriber('runs.q');
    const members: ClientMessage[][] = [[], []];
    for (const got of members) {
      const m = await client(b);
      await m.subscribe('runs.q', (msg) => void got.push(msg), { queue: 'workers' });
    }
    const pub = await client(a);
    // The node may have cached the topic's subscribers before the group joined: the cache TTL brings it in.
    await waitFor(
      async () => {
        await pub.publish('runs.q', 'probe');
        await pub.flush();
        return members[0]!.length + members[1]!.length > 0;
      },
      15_000,
      'the queue group known to the publishing node',
    );
    await waitFor(() => plain.at(-1)?.data === 'probe', 10_000, 'the probes delivered');
    plain.length = 0;
    members[0]!.length = 0;
    members[1]!.length = 0;
    const TOTAL = 1000;
    await pipelined(TOTAL, 64, (i) => pub.publish('runs.q', i));
    await pub.flush();
    // A probe's copy may still reach a member after the arrays were cleared: count the numbered messages.
    const numbered = (got: readonly ClientMessage[]) => got.filter((m) => typeof m.data === 'number');
    await waitFor(() => numbered(plain).length === TOTAL && numbered(members[0]!).length + numbered(members[1]!).length === TOTAL, 30_000, 'every message delivered');
    assertConsecutive(
      numbered(plain),
      Array.from({ length: TOTAL }, (_, i) => i),
    );
    const queued = [...numbered(members[0]!), ...numbered(members[1]!)].map((m) => m.data as number).sort((x, y) => x - y);
    assert.deepEqual(
      queued,
      Array.from({ length: TOTAL }, (_, i) => i),
      'each message to one member',
    );
    assert.ok(members[0]!.length > 0 && members[1]!.length > 0, 'both members served');
  });

  it('request/reply is unchanged', async () => {
    const responder = await client(b);
    await responder.subscribe('runs.rr', (m) => void m.respond?.({ echo: m.data }));
    const requester = await client(a);
    const replies = await requester.request('runs.rr', 42, { timeoutMs: 10_000 });
    assert.deepEqual(
      replies.map((r) => r.data),
      [{ echo: 42 }],
    );
  });

  it('runs mixed with single messages (headers, other topics) keep the publisher order', async () => {
    const got = await subscriber('runs.mixed.*');
    const pub = await client(a);
    // Order across topics holds once both topics' subscribers are known to the node (pubsub.ts).
    await pub.publish('runs.mixed.x', 'warm');
    await pub.publish('runs.mixed.y', 'warm');
    await waitFor(() => got.length === 2, 10_000, 'both topics warm');
    got.length = 0;
    const expected: [string, unknown, string | undefined][] = [];
    await pipelined(600, 64, (i) => {
      const topic = `runs.mixed.${i % 100 < 50 ? 'x' : 'y'}`;
      const tag = i % 37 === 0 ? `h${i}` : undefined;
      expected.push([topic, i, tag]);
      return pub.publish(topic, i, tag !== undefined ? { headers: { tag } } : {});
    });
    await pub.flush();
    await waitFor(() => got.length === expected.length, 30_000, 'every message delivered');
    assert.deepEqual(
      got.map((m) => [m.topic, m.data, m.headers?.tag]),
      expected,
    );
    for (let i = 1; i < got.length; i++) assert.ok(got[i]!.seq! > got[i - 1]!.seq!, 'numbers increase');
    assert.ok(pub.publishStats().runs > 0);
  });

  it('in-process publishes to one topic in one turn travel as PUBLISH runs; headers and other topics keep their place', async () => {
    const got: PubSubMessage[] = [];
    const sub = b.pubsub.subscribe('runs.local.*', (m) => void got.push(m));
    await sub.ready;
    await waitFor(async () => (await a.pubsub.publish('runs.local.x', 'probe')).nodes > 0, 15_000, 'node B known to node A');
    await waitFor(async () => (await a.pubsub.publish('runs.local.y', 'probe')).nodes > 0, 15_000, 'node B known to node A');
    await waitFor(() => got.filter((m) => m.data === 'probe').length >= 2, 10_000, 'the probes');
    got.length = 0;
    const runsSent = a.pubsub.stats().runsSent;
    const TOTAL = 3000;
    const expected: [string, number, string | undefined][] = [];
    const published: Promise<unknown>[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const topic = i % 1000 < 700 ? 'runs.local.x' : 'runs.local.y';
      const tag = i % 97 === 0 ? `t${i}` : undefined;
      expected.push([topic, i, tag]);
      published.push(a.pubsub.publish(topic, i, tag !== undefined ? { headers: { tag } } : {}));
    }
    await Promise.all(published);
    await waitFor(() => got.length === TOTAL, 30_000, 'every message at node B');
    assert.deepEqual(
      got.map((m) => [m.topic, m.data, m.headers?.tag]),
      expected,
      'in publish order',
    );
    for (let i = 1; i < TOTAL; i++) assert.equal(got[i]!.seq, got[0]!.seq + i, 'consecutive numbers');
    assert.ok(a.pubsub.stats().runsSent > runsSent, 'sent as runs');
    // Publishes awaited one by one resolve at once while the fan-out has room, and gather into a run
    // sent at the end of the turn; one per turn goes alone.
    const before = a.pubsub.stats().runsSent;
    for (let i = 0; i < 5; i++) await a.pubsub.publish('runs.local.x', `one ${i}`);
    await waitFor(() => got.length === TOTAL + 5, 10_000, 'the awaited ones');
    assert.equal(a.pubsub.stats().runsSent, before + 1, 'the five went as one run');
    for (let i = 0; i < 3; i++) {
      await a.pubsub.publish('runs.local.x', `alone ${i}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => got.length === TOTAL + 8, 10_000, 'the ones of a turn each');
    assert.equal(a.pubsub.stats().runsSent, before + 1, 'each went alone');
    assert.deepEqual(got.slice(TOTAL).map((m) => m.data), [...Array.from({ length: 5 }, (_, i) => `one ${i}`), ...Array.from({ length: 3 }, (_, i) => `alone ${i}`)]);
    // publishRun() takes more than one run holds: it is cut into runs, in order, for nodes and for
    // a light client of the publishing node alike (its GW_MSG runs stay within the bounds).
    got.length = 0;
    const atA: ClientMessage[] = [];
    const clientOfA = await client(a);
    await clientOfA.subscribe('runs.local.y', (m) => void atA.push(m));
    const big = new Uint8Array(200_000);
    const data = Array.from({ length: 200 }, (_, i) => (i % 50 === 7 ? big : i));
    const result = await a.pubsub.publishRun('runs.local.y', data);
    assert.deepEqual(result, { nodes: 1, local: data.length, refused: undefined });
    await waitFor(() => got.length === data.length && atA.length === data.length, 10_000, 'the long run at node B and at the client of A');
    for (const received of [got, atA]) {
      assert.deepEqual(
        received.map((m) => m.data),
        data,
      );
      for (let i = 1; i < received.length; i++) assert.equal(received[i]!.seq, received[0]!.seq! + i);
    }
    await sub.unsubscribe();
  });

  it('a malformed run is a counted protocol error: its sender loses the connection, other clients are still served', async () => {
    const got = await subscriber('runs.bad');
    const good = await client(a);
    const rogue = raw(a);
    await rogue.send({ tp: 'runs.bad', n: 1, d: 'ok' });
    await waitFor(() => got.length === 1, 10_000, 'the first message');
    const before = protocolErrors.filter((k) => k === 'invalid_message').length;
    await rogue.send({ tp: 'runs.bad', n: 2, d: [1], k: 2 }).catch(() => undefined);
    await waitFor(() => protocolErrors.filter((k) => k === 'invalid_message').length === before + 1, 10_000, 'the protocol error counted');
    await waitFor(() => rogue.messenger.sessions().length === 0, 10_000, 'the rogue connection closed');
    for (let i = 0; i < 3; i++) await good.publish('runs.bad', `good ${i}`);
    await good.flush();
    await waitFor(() => got.length === 4, 10_000, 'the good client still served');
    assert.deepEqual(
      got.map((m) => m.data),
      ['ok', 'good 0', 'good 1', 'good 2'],
    );
  });
});
