/**
 * Queue groups, headers and request/reply over a 3-node QUIC testnet, for
 * embedded nodes and light clients (MaculaClient through a node's gateway).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MaculaClient, type ClientMessage } from '../../src/client/client.js';
import type { MeshNode } from '../../src/node/mesh-node.js';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { MAX_HEADER_BYTES, MAX_HEADERS } from '../../src/wire/headers.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

describe('queue groups, headers, request/reply', { timeout: 90_000 }, () => {
  let net: Testnet;
  let a: MeshNode;
  let b: MeshNode;
  let c: MeshNode;
  const clients: MaculaClient[] = [];

  before(async () => {
    net = await createTestnet(3);
    [a, b, c] = net.nodes as [MeshNode, MeshNode, MeshNode];
  });

  after(async () => {
    await Promise.all(clients.map((x) => x.close()));
    await net.destroy();
  });

  async function client(node: MeshNode): Promise<MaculaClient> {
    const cl = await MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 5000 });
    clients.push(cl);
    return cl;
  }

  it('queue group with members on the publisher, another node and a light client: each message once, spread round-robin', async () => {
    const got = new Map<string, number[]>();
    const member = (name: string) => {
      got.set(name, []);
      return (m: { data: unknown }) => void got.get(name)!.push(m.data as number);
    };
    const plain: number[] = [];
    const subs = [
      a.subscribe('q1.*', member('a1'), { queue: 'g' }),
      a.subscribe('q1.*', member('a2'), { queue: 'g' }),
      b.subscribe('q1.*', member('b1'), { queue: 'g' }),
      c.subscribe('q1.*', (m) => void plain.push(m.data as number)),
    ];
    const cl = await client(c);
    await cl.subscribe('q1.*', member('client'), { queue: 'g' });
    await Promise.all(subs.map((s) => s.ready));
    const n = 600;
    for (let i = 0; i < n; i++) await a.publish('q1.x', i);
    const all = () => [...got.values()].flat();
    await waitFor(() => all().length >= n && plain.length >= n, 20_000, 'deliveries');
    assert.equal(all().length, n, 'none twice');
    assert.equal(new Set(all()).size, n, 'none lost');
    assert.equal(plain.length, n, 'the plain subscriber gets every message');
    // Three member nodes (a, b, c's gateway) take turns: 200 each; a's two members 100 each.
    const count = (k: string) => got.get(k)!.length;
    assert.deepEqual([count('a1') + count('a2'), count('b1'), count('client')], [200, 200, 200]);
    assert.deepEqual([count('a1'), count('a2')], [100, 100]);
    assert.ok(a.pubsub.stats().queueCopies >= n);
    assert.throws(() => a.subscribe('q1.*', () => undefined, { queue: 'bad group' }), { code: 'MACULA_ERR_INVALID_QUEUE' });
    await assert.rejects(cl.subscribe('q1.*', () => undefined, { queue: '' }), { code: 'MACULA_ERR_INVALID_QUEUE' });
  });

  it('headers travel unchanged on publishes (node and client) and are bounded', async () => {
    const atB: PubSubMessage[] = [];
    const atClient: ClientMessage[] = [];
    const sub = b.subscribe('h1.#', (m) => void atB.push(m));
    const cl = await client(c);
    await cl.subscribe('h1.#', (m) => void atClient.push(m));
    await sub.ready;
    const headers = { 'trace-id': 'abc', empty: '', 'ünï': 'cødé' };
    await a.publish('h1.x', 1, { headers });
    await cl.publish('h1.y', 2, { headers: { from: 'client' } });
    await waitFor(() => atB.length >= 2 && atClient.length >= 2, 10_000, 'deliveries');
    const byData = (ms: { data: unknown; headers?: unknown }[], d: number) => ms.find((m) => m.data === d)?.headers;
    assert.deepEqual(byData(atB, 1), headers);
    assert.deepEqual(byData(atClient, 1), headers);
    assert.deepEqual(byData(atB, 2), { from: 'client' });
    const tooMany = Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(a.publish('h1.x', 1, { headers: tooMany }), { code: 'MACULA_ERR_INVALID_HEADERS' });
    await assert.rejects(a.publish('h1.x', 1, { headers: { big: 'x'.repeat(1000), more: 'y'.repeat(1000), most: 'z'.repeat(1000), all: 'w'.repeat(1000), over: 'v'.repeat(MAX_HEADER_BYTES - 4000) } }), {
      code: 'MACULA_ERR_INVALID_HEADERS',
    });
    await assert.rejects(a.publish('h1.x', 1, { headers: { n: 1 as unknown as string } }), { code: 'MACULA_ERR_INVALID_HEADERS' });
    await assert.rejects(cl.publish('h1.x', 1, { headers: tooMany }), { code: 'MACULA_ERR_INVALID_HEADERS' });
  });

  it('RPC calls and results carry headers (node to node, client to node, node to client-served)', async () => {
    await b.register('hdr.echo', (_args, ctx) => {
      ctx.resultHeaders['seen'] = ctx.headers?.['x-req'] ?? 'none';
      return 'ok';
    });
    let got: Record<string, string> | undefined;
    assert.equal(await a.call('hdr.echo', null, { headers: { 'x-req': 'n1' }, onResultHeaders: (h) => (got = h) }), 'ok');
    assert.deepEqual(got, { seen: 'n1' });
    const cl = await client(c);
    got = undefined;
    assert.equal(await cl.call('hdr.echo', null, { headers: { 'x-req': 'c1' }, onResultHeaders: (h) => (got = h) }), 'ok');
    assert.deepEqual(got, { seen: 'c1' });
    const server = await client(b);
    await server.serve('hdr.client', (_args, ctx) => {
      ctx.resultHeaders['seen'] = ctx.headers?.['x-req'] ?? 'none';
      return 'served';
    });
    got = undefined;
    assert.equal(await a.call('hdr.client', null, { headers: { 'x-req': 'n2' }, onResultHeaders: (h) => (got = h) }), 'served');
    assert.deepEqual(got, { seen: 'n2' });
    await b.register('hdr.bad', (_args, ctx) => {
      ctx.resultHeaders['k'.repeat(65)] = 'v';
      return 'never';
    });
    await assert.rejects(a.call('hdr.bad'), { code: 'MACULA_ERR_INVALID_HEADERS' });
  });

  it('request on a topic: up to max replies, no responders at once, timeout when nobody answers', async () => {
    const answerB = b.subscribe('svc.time', (m) => void m.respond?.({ by: 'b', q: m.data }, { headers: { who: 'b' } }));
    const answerA = a.subscribe('svc.time', (m) => void m.respond?.({ by: 'a', q: m.data }));
    const cl = await client(c);
    await cl.subscribe('svc.time', (m) => void m.respond?.({ by: 'client', q: m.data }));
    await Promise.all([answerB.ready, answerA.ready]);

    const three = await c.request('svc.time', 'now?', { max: 3, timeoutMs: 10_000 });
    assert.deepEqual(three.map((r) => (r.data as { by: string }).by).sort(), ['a', 'b', 'client']);
    assert.deepEqual(three.find((r) => (r.data as { by: string }).by === 'b')!.headers, { who: 'b' });
    assert.equal(three.find((r) => (r.data as { by: string }).by === 'b')!.responder, b.nodeId);

    const one = await a.request('svc.time', 'first', { max: 1 });
    assert.equal(one.length, 1, 'max 1: the first reply');

    const fromClient = await cl.request('svc.time', 'via gateway', { max: 3, timeoutMs: 10_000 });
    assert.equal(fromClient.length, 3);
    assert.deepEqual(fromClient.map((r) => (r.data as { q: string }).q), ['via gateway', 'via gateway', 'via gateway']);

    const t0 = performance.now();
    await assert.rejects(a.request('svc.nobody', 1, { timeoutMs: 10_000 }), { code: 'MACULA_ERR_NO_RESPONDERS' });
    await assert.rejects(cl.request('svc.nobody', 1, { timeoutMs: 10_000 }), { code: 'MACULA_ERR_NO_RESPONDERS' });
    assert.ok(performance.now() - t0 < 5_000, 'no responders fails at once, not after the timeout');

    const silent = b.subscribe('svc.silent', () => undefined);
    await silent.ready;
    await assert.rejects(a.request('svc.silent', 1, { timeoutMs: 300 }), { code: 'MACULA_ERR_TIMEOUT' });
    assert.equal(a.pubsub.stats().requestsPending, 0, 'finished requests leave no inbox behind');
    assert.ok(b.pubsub.stats().repliesSent >= 3);
  });

  it('a subscription whose handler stalls is named in the snapshot (slow consumers)', async () => {
    const stuck = b.subscribe('slow.x', () => new Promise<void>(() => undefined));
    await stuck.ready;
    for (let i = 0; i < 1500; i++) await a.publish('slow.x', i);
    // One message is with the handler, 1000 wait in the buffer, the rest are dropped.
    await waitFor(() => stuck.dropped === 499, 10_000, 'drops');
    const slow = b.snapshot().pubsub.slowConsumers;
    assert.deepEqual(slow[0], { kind: 'subscription', node: b.nodeId, pattern: 'slow.x', subscription: stuck.id, dropsLastMinute: 499, dropsTotal: 499 });
    assert.equal(b.snapshot().pubsub.slowConsumersTracked, 1);
    await stuck.unsubscribe();
  });

  it('a queue-only copy for a group that left keeps the plain subscriptions in the publisher\'s cache', async () => {
    const plainAtB: unknown[] = [];
    const sub = b.subscribe('left.x', (m) => void plainAtB.push(m.data));
    await sub.ready;
    const before = b.pubsub.stats();
    // What a publisher whose cache still lists b as a member of `gone` sends (from c, whose sequence numbers a's do not meet).
    await c.messenger.notify({ address: b.listenAddress!, nodeId: b.nodeId }, { t: PUBLISH.type, tp: 'left.x', d: 1, s: Date.now() * 1000 + 1e9, g: ['gone'], qo: true });
    await waitFor(() => b.pubsub.stats().queueUnmatched === before.queueUnmatched + 1, 10_000, 'the copy counted');
    assert.equal(b.pubsub.stats().unsubscribedSent, before.unsubscribedSent, 'no UNSUBSCRIBED for a topic b still subscribes to');
    assert.deepEqual(plainAtB, [], 'the plain subscription does not take a queue-only copy');
    await a.publish('left.x', 2);
    await waitFor(() => plainAtB.length === 1, 10_000, 'plain delivery');
    await sub.unsubscribe();
  });
});
