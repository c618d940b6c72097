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
