/**
 * PubSub over an in-process fake network: a fake DHT (real signed records in
 * one shared map) and a fake messenger (messages go through the real CBOR
 * codec and validation). Sends can be gated, so these tests decide when
 * the network makes progress, and the clock is driven by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dhtKey } from '../../src/dht/key.js';
import { signRecord, type DhtRecord } from '../../src/dht/record.js';
import { Identity, toHex } from '../../src/identity/identity.js';
import type { PeerInfo } from '../../src/session/peer-session.js';
import type { PeerAddress } from '../../src/transport/types.js';
import { ConnectionClosedError, LimitExceededError, QueueFullError, StoppedError } from '../../src/util/errors.js';
import { decodeMessage, encodeBody, frameBody } from '../../src/wire/codec.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';
import type { Message, MessageDef, WireMessage } from '../../src/wire/messages.js';
import type { Fields } from '../../src/wire/schema.js';
import { decodeAnnouncement, encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { InvalidPayloadError } from '../../src/pubsub/errors.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import type { PubSubInit } from '../../src/pubsub/options.js';
import type { PubSubMessage } from '../../src/pubsub/subscription.js';
import { InvalidTopicError } from '../../src/pubsub/topic.js';

type Handler = (msg: Message, peer: PeerInfo, bytes: number) => undefined;

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await tick();
  }
}

class FakeNet {
  readonly nodes = new Map<string, FakeNode>();
  readonly records = new Map<string, Map<string, DhtRecord>>();
  readonly clock = { t: 1_000_000, now: () => this.clock.t };
  findValueCalls = 0;
  findGate: Promise<void> | undefined;
  #port = 1000;

  add(init: PubSubInit = {}, realm = 'test'): FakeNode {
    const node = new FakeNode(this, { host: '10.0.0.1', port: this.#port++ }, realm, init);
    this.nodes.set(node.id, node);
    return node;
  }

  putRaw(key: Uint8Array, record: DhtRecord): void {
    const k = toHex(key);
    let m = this.records.get(k);
    if (!m) this.records.set(k, (m = new Map()));
    m.set(toHex(record.publisher), record);
  }
}

class FakeNode {
  readonly identity = Identity.generate();
  readonly handlers = new Map<number, Handler>();
  readonly pubsub: PubSub;
  alive = true;
  /** Awaited before each send is delivered: lets a test hold or slow the network. */
  sendHook: ((to: FakeNode | undefined, msg: OutboundMessage) => Promise<void> | void) | undefined;
  /** When set, `connectionTo` reports these nodes as not connected (their sends go through a "dial"). */
  disconnected: Set<string> | undefined;
  puts = 0;
  withdrawals = 0;
  /** While false, advertisedAddress() throws, as it does before the node listens. */
  listening = true;

  constructor(
    readonly net: FakeNet,
    readonly address: PeerAddress,
    readonly realm: string,
    init: PubSubInit,
  ) {
    const self = this;
    const messenger = {
      handle: <F extends Fields>(def: MessageDef<F>, h: (msg: WireMessage<F>, peer: PeerInfo, bytes: number) => undefined) => void this.handlers.set(def.type, h as Handler),
      notify: (target: { nodeId?: string | Uint8Array }, msg: OutboundMessage) => this.#send(String(target.nodeId), msg),
      get pool() {
        const d = self.disconnected;
        return d === undefined ? undefined : { connectionTo: (id: string) => (d.has(id) ? undefined : { close() {} }) };
      },
    };
    const dht = {
      put: async (key: Uint8Array, value: Uint8Array, o: { ttlMs: number }) => {
        this.puts++;
        net.putRaw(key, signRecord(this.identity, { key, value, seq: this.puts, ttlMs: o.ttlMs, now: net.clock.now() }));
      },
      withdraw: async (key: Uint8Array) => {
        this.withdrawals++;
        net.records.get(toHex(key))?.delete(toHex(this.identity.publicKey));
      },
      findValue: async (key: Uint8Array) => {
        net.findValueCalls++;
        if (net.findGate) await net.findGate;
        return { records: [...(net.records.get(toHex(key))?.values() ?? [])] };
      },
    };
    this.pubsub = new PubSub(
      {
        identity: this.identity,
        dht,
        messenger,
        realm,
        advertisedAddress: () => {
          if (!this.listening) throw new StoppedError('the node is not listening yet');
          return address;
        },
        clock: net.clock,
      },
      init,
    );
  }

  get id(): string {
    return this.identity.nodeIdHex;
  }

  peerInfo(): PeerInfo {
    return { nodeId: this.identity.nodeId, nodeIdHex: this.id, role: 'node', address: this.address } as unknown as PeerInfo;
  }

  /** Delivers a message as if `from` had sent it. */
  inject(from: FakeNode, msg: OutboundMessage): void {
    const wire = decodeMessage(frameBody(msg));
    this.handlers.get(wire.t)?.(wire, from.peerInfo(), 0);
  }

  async #send(to: string, msg: OutboundMessage): Promise<void> {
    const dest = this.net.nodes.get(to);
    await this.sendHook?.(dest, msg);
    await Promise.resolve();
    if (!dest?.alive || dest.realm !== this.realm) throw new ConnectionClosedError('no connection');
    dest.inject(this, msg);
  }
}

/** Collects what a handler receives. */
function sink(): { got: PubSubMessage[]; handler: (m: PubSubMessage) => void } {
  const got: PubSubMessage[] = [];
  return { got, handler: (m) => void got.push(m) };
}

describe('PubSub: delivery', () => {
  it('delivers to local and remote subscriptions, one network message per node, once per subscription', async () => {
    const net = new FakeNet();
    const [pub, a, b, c] = [net.add(), net.add(), net.add(), net.add()];
    const local = sink();
    pub.pubsub.subscribe('s.*.temp', local.handler);
    const exact = sink();
    const star = sink();
    const hash = sink();
    const other = sink();
    a.pubsub.subscribe('s.r1.temp', exact.handler);
    a.pubsub.subscribe('s.*.temp', star.handler);
    const sb = b.pubsub.subscribe('s.#', hash.handler);
    c.pubsub.subscribe('s.r2.temp', other.handler);
    await sb.ready;
    await tick();

    const res = await pub.pubsub.publish('s.r1.temp', { v: 1 });
    assert.deepEqual(res, { nodes: 2, local: 1 });
    await until(() => exact.got.length + star.got.length + hash.got.length + local.got.length === 4, 'deliveries');
    assert.equal(a.pubsub.stats().received, 1, 'a has two matching subscriptions but gets one message');
    assert.equal(b.pubsub.stats().received, 1);
    assert.equal(c.pubsub.stats().received, 0);
    assert.equal(other.got.length, 0);
    assert.deepEqual(exact.got[0], { topic: 's.r1.temp', data: { v: 1 }, publisher: pub.id, seq: exact.got[0]!.seq });
    assert.equal(local.got[0]!.publisher, pub.id);
    assert.equal(a.pubsub.stats().delivered, 2);
  });

  it('publishing with no subscribers is a cached empty result', async () => {
    const net = new FakeNet();
    const pub = net.add();
    net.add();
    for (let i = 0; i < 100; i++) assert.deepEqual(await pub.pubsub.publish('nobody.here', i), { nodes: 0, local: 0 });
    const s = pub.pubsub.stats();
    assert.equal(s.publishesNoSubscribers, 100);
    assert.equal(s.cache.dhtLookups, 3, "one lookup per prefix: '', nobody, nobody.here");
    assert.equal(s.cache.topicHits, 99);
  });

  it('rejects invalid topics, patterns and payloads with typed errors', async () => {
    const net = new FakeNet();
    const n = net.add({ maxPayloadBytes: 1000, maxSubscriptions: 2 });
    await assert.rejects(n.pubsub.publish('a.*', 1), InvalidTopicError);
    await assert.rejects(n.pubsub.publish('', 1), InvalidTopicError);
    await assert.rejects(n.pubsub.publish('a', undefined), InvalidPayloadError);
    await assert.rejects(n.pubsub.publish('a', new Uint8Array(1001)), InvalidPayloadError);
    await assert.rejects(n.pubsub.publish('a', 'x'.repeat(1001)), InvalidPayloadError);
    await assert.rejects(n.pubsub.publish('a', { big: 'x'.repeat(1000) }), InvalidPayloadError);
    assert.deepEqual(await n.pubsub.publish('a', { ok: 'x'.repeat(900) }), { nodes: 0, local: 0 });
    assert.throws(() => n.pubsub.subscribe('a.#.b', () => undefined), InvalidTopicError);
    n.pubsub.subscribe('a', () => undefined);
    n.pubsub.subscribe('b', () => undefined);
    assert.throws(() => n.pubsub.subscribe('c', () => undefined), LimitExceededError);
    await n.pubsub.stop();
    await assert.rejects(n.pubsub.publish('a', 1), StoppedError);
    assert.throws(() => n.pubsub.subscribe('a', () => undefined), StoppedError);
  });

  it('drops duplicate and out-of-order sequence numbers per publisher', async () => {
    const net = new FakeNet();
    const [sub, p1, p2] = [net.add(), net.add(), net.add()];
    const s = sink();
    sub.pubsub.subscribe('t', s.handler);
    const send = (from: FakeNode, seq: number) => sub.inject(from, { t: PUBLISH.type, tp: 't', d: seq, s: seq });
    send(p1, 5);
    send(p1, 5);
    send(p1, 4);
    send(p2, 1); // another publisher has its own sequence
    send(p1, 6);
    send(p2, 1);
    await tick();
    assert.deepEqual(s.got.map((m) => `${m.publisher === p1.id ? 'p1' : 'p2'}:${m.seq}`), ['p1:5', 'p2:1', 'p1:6']);
    assert.equal(sub.pubsub.stats().duplicates, 3);
  });

  it('a slow subscription overflows its own buffer (counted) without affecting the others', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add(), net.add({ subscriptionBufferSize: 10 })];
    const hold = gate();
    const slow: number[] = [];
    const fast = sink();
    const slowSub = sub.pubsub.subscribe('load', async (m) => {
      slow.push(m.data as number);
      await hold.promise;
    });
    const fastSub = sub.pubsub.subscribe('load', fast.handler);
    await slowSub.ready;
    // One message per turn: each travels alone (publishes of one turn travel as a run, whose burst
    // would fill this 10-message buffer at once, fast handler or not).
    for (let i = 0; i < 100; i++) {
      await pub.pubsub.publish('load', i);
      await tick();
    }
    await until(() => fast.got.length === 100, 'fast deliveries');
    assert.deepEqual(fast.got.map((m) => m.data), Array.from({ length: 100 }, (_, i) => i));
    assert.equal(fastSub.dropped, 0);
    assert.equal(slowSub.delivered, 1, 'the slow handler got one message and is still busy with it');
    assert.equal(slowSub.buffered, 10);
    assert.equal(slowSub.dropped, 89);
    hold.open();
    await until(() => slow.length === 11, 'slow handler catches up');
    assert.deepEqual(slow, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(sub.pubsub.stats().dropped, 89);
  });

  it('offers an async iterator that unsubscribes on break', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add(), net.add()];
    const it = sub.pubsub.messages('feed.*');
    await it.subscription!.ready;
    const seen: unknown[] = [];
    const reading = (async () => {
      for await (const m of it) {
        seen.push(m.data);
        if (seen.length === 3) break;
      }
    })();
    for (let i = 0; i < 3; i++) await pub.pubsub.publish('feed.x', i);
    await reading;
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(sub.pubsub.stats().subscriptions, 0);
  });
});

describe('PubSub: announcements and the subscriber cache', () => {
  it('coalesces announcements per prefix key and withdraws the record when the last pattern goes', async () => {
    const net = new FakeNet();
    const n = net.add();
    const subs = Array.from({ length: 100 }, (_, i) => n.pubsub.subscribe(`dev.*.m${i % 50}`, () => undefined));
    await Promise.all(subs.map((s) => s.ready));
    assert.equal(n.puts, 1, 'one put for 100 subscribe calls in one tick');
    const key = toHex(dhtKey('pubsub/test', 'dev'));
    const rec = net.records.get(key)!.get(toHex(n.identity.publicKey))!;
    assert.equal(decodeAnnouncement(rec.value, 'dev', {})!.patterns.length, 50, 'distinct patterns, each once');
    await Promise.all(subs.slice(0, 50).map((s) => s.unsubscribe()));
    assert.equal(n.withdrawals, 0, 'patterns still in use by other subscriptions');
    await Promise.all(subs.slice(50).map((s) => s.unsubscribe()));
    assert.equal(n.withdrawals, 1);
    assert.equal(net.records.get(key)!.size, 0);
  });

  it('resolves with one DHT lookup per prefix shared by concurrent publishes, refreshed after the TTL', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add({ subscriberCacheTtlMs: 5000 }), net.add()];
    await sub.pubsub.subscribe('a.b.c', () => undefined).ready;
    const g = gate();
    net.findGate = g.promise;
    const pending = Array.from({ length: 50 }, (_, i) => pub.pubsub.publish('a.b.c', i));
    await tick();
    assert.equal(net.findValueCalls, 4, "'', a, a.b, a.b.c");
    g.open();
    net.findGate = undefined;
    for (const r of await Promise.all(pending)) assert.equal(r.nodes, 1);
    await pub.pubsub.publish('a.b.x', 0); // shares '', a, a.b; only a.b.x is new
    assert.equal(net.findValueCalls, 5);
    net.clock.t += 5001;
    await pub.pubsub.publish('a.b.c', 0);
    assert.equal(net.findValueCalls, 9, 'after the TTL each key is looked up again, once');
    const c = pub.pubsub.stats().cache;
    assert.ok(c.topicHits >= 0 && c.topicMisses >= 2 && c.prefixSize >= 4);
  });

  it('answers a publish from an expired entry at once while one background lookup rebuilds it', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add({ subscriberCacheTtlMs: 5000 }), net.add()];
    await sub.pubsub.subscribe('s.t', () => undefined).ready;
    assert.equal((await pub.pubsub.publish('s.t', 0)).nodes, 1);
    const calls = net.findValueCalls;
    // The entry expires and the DHT stalls (dead contacts in the routing tables, say).
    net.clock.t += 5001;
    const g = gate();
    net.findGate = g.promise;
    for (let i = 1; i <= 20; i++) assert.equal((await pub.pubsub.publish('s.t', i)).nodes, 1, 'no publish waits for the DHT');
    const c = pub.pubsub.stats().cache;
    assert.equal(c.staleHits, 20);
    assert.equal(net.findValueCalls - calls, 3, "one rebuild in flight: '', s, s.t");
    g.open();
    net.findGate = undefined;
    await until(() => pub.pubsub.stats().cache.topicSize === 1 && pub.pubsub.stats().cache.staleHits === 20, 'rebuilt');
    await tick();
    assert.equal((await pub.pubsub.publish('s.t', 21)).nodes, 1);
    assert.equal(pub.pubsub.stats().cache.staleHits, 20, 'the rebuilt entry is fresh');
    assert.equal(net.findValueCalls - calls, 3, 'and was not looked up again');
  });

  it('drops malformed records (counted) and records whose patterns do not belong to their key', async () => {
    const net = new FakeNet();
    const pub = net.add();
    const mallory = Identity.generate();
    const put = (prefix: string, value: Uint8Array) => {
      const key = dhtKey('pubsub/test', prefix);
      net.putRaw(key, signRecord(mallory, { key, value, seq: 1, ttlMs: 60_000, now: net.clock.now() }));
    };
    put('x', new Uint8Array([0xff, 0x00]));
    put('x.y', encodeAnnouncement({ host: '10.0.0.9', port: 1 }, ['other.#']));
    put('', encodeBody({ a: { h: '', p: 0 }, ps: ['#'] }));
    assert.deepEqual(await pub.pubsub.publish('x.y', 1), { nodes: 0, local: 0 });
    assert.equal(pub.pubsub.stats().cache.malformed, 3);
  });

  it('a node that unsubscribed answers UNSUBSCRIBED and the publisher drops it without a DHT lookup', async () => {
    const net = new FakeNet();
    const [pub, a, b] = [net.add(), net.add(), net.add()];
    const sa = a.pubsub.subscribe('news.*', () => undefined);
    await b.pubsub.subscribe('news.#', () => undefined).ready;
    await sa.ready;
    assert.equal((await pub.pubsub.publish('news.x', 1)).nodes, 2);
    const lookups = pub.pubsub.stats().cache.dhtLookups;
    await sa.unsubscribe();
    // The publisher's cache still lists `a` (within the TTL): one more message reaches it.
    assert.equal((await pub.pubsub.publish('news.x', 2)).nodes, 2);
    await until(() => pub.pubsub.stats().unsubscribedReceived === 1, 'UNSUBSCRIBED');
    assert.equal(a.pubsub.stats().unmatchedReceived, 1);
    assert.equal((await pub.pubsub.publish('news.x', 3)).nodes, 1);
    assert.equal(pub.pubsub.stats().cache.dhtLookups, lookups, 'no DHT lookup was needed');
    await until(() => b.pubsub.stats().received === 3, 'the third message at b');
  });

  it('announces a prefix as <prefix>.# when its patterns do not fit one record, and filters locally', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add(), net.add({ maxAnnounceBytes: 512 })];
    const got = sink();
    const subs = Array.from({ length: 60 }, (_, i) => sub.pubsub.subscribe(`big.*.pattern-number-${i}`, got.handler));
    await Promise.all(subs.map((s) => s.ready));
    assert.equal(sub.pubsub.stats().announce.broadened, 1);
    await pub.pubsub.publish('big.x.unrelated', 0);
    await pub.pubsub.publish('big.x.pattern-number-7', 1);
    await until(() => got.got.length === 1, 'delivery');
    assert.equal(sub.pubsub.stats().received, 2);
    assert.equal(sub.pubsub.stats().unsubscribedSent, 0, 'an expected miss is not answered with UNSUBSCRIBED');
  });

  it('keeps realms apart: a publisher of another realm finds nothing', async () => {
    const net = new FakeNet();
    const [pub, sub] = [net.add({}, 'red'), net.add({}, 'blue')];
    await sub.pubsub.subscribe('t', () => undefined).ready;
    assert.deepEqual(await pub.pubsub.publish('t', 1), { nodes: 0, local: 0 });
  });

  it('retries a failed announcement until it succeeds; ready waits for it', async () => {
    const net = new FakeNet();
    const n = net.add();
    n.listening = false;
    const sub = n.pubsub.subscribe('early.bird', () => undefined);
    let ready = false;
    void sub.ready.then(() => (ready = true));
    await until(() => n.pubsub.stats().announce.failures === 1, 'first attempt fails');
    assert.equal(ready, false);
    n.listening = true;
    await until(() => ready, 'announced by the retry', 5000);
    assert.equal(n.puts, 1);
  });

  it('stop() withdraws every record', async () => {
    const net = new FakeNet();
    const n = net.add();
    await Promise.all(['a.b', 'a.*', 'c.#'].map((p) => n.pubsub.subscribe(p, () => undefined).ready));
    assert.equal(n.pubsub.stats().announce.keys, 3);
    await n.pubsub.stop();
    assert.equal(n.withdrawals, 3);
    assert.equal([...net.records.values()].reduce((sum, m) => sum + m.size, 0), 0);
  });
});

describe('PubSub: fan-out under load', () => {
  it('keeps the fan-out queue within fanoutQueue during a flood (publishers wait)', async () => {
    const net = new FakeNet();
    const pub = net.add({ fanoutConcurrency: 4, fanoutQueue: 50 });
    const subs = [net.add(), net.add(), net.add()];
    const counts = subs.map(() => 0);
    await Promise.all(subs.map((s, i) => s.pubsub.subscribe('flood', () => void counts[i]!++).ready));
    const pool = pub.pubsub.fanoutPool;
    let maxQueued = 0;
    let maxRunning = 0;
    pub.sendHook = async () => {
      maxQueued = Math.max(maxQueued, pool.queued);
      maxRunning = Math.max(maxRunning, pool.running);
      await tick(); // a send takes a turn of the event loop
    };
    const PER_PUBLISHER = 300;
    const publishers = Array.from({ length: 8 }, async (_, p) => {
      for (let i = 0; i < PER_PUBLISHER; i++) {
        await pub.pubsub.publish('flood', p * PER_PUBLISHER + i);
        maxQueued = Math.max(maxQueued, pool.queued);
      }
    });
    await Promise.all(publishers);
    await until(() => counts.every((c) => c === 8 * PER_PUBLISHER), 'every message delivered');
    assert.ok(maxQueued <= 50, `queue depth ${maxQueued} exceeded 50`);
    assert.ok(maxQueued >= 40, `the flood did fill the queue (${maxQueued})`);
    assert.ok(maxRunning <= 4);
    assert.equal(pool.peakQueued <= 50, true);
    assert.equal(pub.pubsub.stats().fanout.dropped, 0, 'waiting publishers lose nothing');
  });

  it('noWait refuses at once with QueueFullError when the queue is full, counted, nothing sent', async () => {
    const net = new FakeNet();
    const pub = net.add({ fanoutConcurrency: 2, fanoutQueue: 10 });
    const sub = net.add();
    const got = sink();
    await sub.pubsub.subscribe('nw', got.handler).ready;
    await pub.pubsub.publish('nw', -1); // resolve and cache the subscribers first
    await until(() => got.got.length === 1, 'first delivery');
    const hold = gate();
    pub.sendHook = () => hold.promise;
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 50; i++) {
      try {
        await pub.pubsub.publish('nw', i, { noWait: true });
        accepted++;
      } catch (err) {
        assert.ok(err instanceof QueueFullError);
        refused++;
      }
      assert.ok(pub.pubsub.fanoutPool.queued <= 10);
    }
    assert.equal(accepted, 12, '2 running + 10 queued');
    assert.equal(refused, 38);
    assert.equal(pub.pubsub.stats().publishesDropped, 38);
    hold.open();
    await until(() => got.got.length === 13, 'accepted messages delivered');
    assert.deepEqual(got.got.slice(1).map((m) => m.data), Array.from({ length: 12 }, (_, i) => i));
  });

  it('publishes awaited one by one resolve at once and gather into runs, until the fan-out is full: then they wait', async () => {
    const net = new FakeNet();
    const pub = net.add({ fanoutConcurrency: 2, fanoutQueue: 8 });
    const sub = net.add();
    const got = sink();
    await sub.pubsub.subscribe('bp', got.handler).ready;
    assert.equal((await pub.pubsub.publish('bp', -1)).nodes, 1);
    await until(() => got.got.length === 1, 'the first message');
    const stall = gate();
    pub.sendHook = () => stall.promise; // the subscriber node stops taking anything
    const TOTAL = 5000;
    let published = 0;
    const loop = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        await pub.pubsub.publish('bp', i);
        published++;
      }
    })();
    await until(() => pub.pubsub.stats().fanout.waiting > 0, 'the publisher waiting for room');
    for (let i = 0; i < 20; i++) await tick();
    const f = pub.pubsub.stats().fanout;
    assert.ok(published < TOTAL, `the loop is held (${published} published)`);
    // Two sends running, eight queued and one waiting for room, each a run of at most 64 messages.
    assert.ok(published <= (2 + 8 + 1 + 1) * 64, `what the node holds is bounded: ${published} published, ${JSON.stringify(f)}`);
    assert.ok(f.queued <= 8);
    stall.open();
    await loop;
    await until(() => got.got.length === TOTAL + 1, 'every message');
    assert.deepEqual(got.got.slice(1).map((m) => m.data), Array.from({ length: TOTAL }, (_, i) => i), 'in order');
    assert.ok(pub.pubsub.stats().runsSent > 0, 'sent as runs');
  });

  it('a node that dies mid-stream does not stall sends to the others', async () => {
    const net = new FakeNet();
    const pub = net.add({ fanoutConcurrency: 4, fanoutQueue: 20, nodeBacklog: 10, downBackoffMs: 60_000 });
    pub.disconnected = new Set();
    const [live, dying] = [net.add(), net.add()];
    const got = sink();
    await live.pubsub.subscribe('st', got.handler).ready;
    await dying.pubsub.subscribe('st', () => undefined).ready;
    const dial = gate();
    pub.sendHook = async (to) => {
      if (to === dying && pub.disconnected!.has(dying.id)) await dial.promise; // a dial that hangs
    };
    // One message per turn, so that each is a send of its own (what the backlog bounds are counted in).
    for (let i = 0; i < 50; i++) {
      await pub.pubsub.publish('st', i);
      await tick();
    }
    await pub.pubsub.fanoutPool.drain();
    // The node dies between two publishes: its connection is gone and dialing it hangs.
    dying.alive = false;
    pub.disconnected.add(dying.id);
    for (let i = 50; i < 500; i++) {
      await pub.pubsub.publish('st', i);
      await tick();
    }
    await until(() => got.got.length === 500, 'the live node got every message');
    const f = pub.pubsub.stats().fanout;
    assert.ok(f.running <= 1, 'no pool slot is held by the dead node');
    assert.equal(f.backlogged, 10, 'its backlog is bounded');
    // 450 messages for it: one rides the hanging dial, ten wait behind it, the rest are dropped.
    assert.equal(f.backlogDropped, 439, JSON.stringify(f));
    dial.open(); // the dial fails
    await until(() => pub.pubsub.stats().fanout.peersDown === 1, 'node marked down');
    assert.equal(pub.pubsub.stats().fanout.backlogged, 0);
    assert.equal((await pub.pubsub.publish('st', 500)).nodes, 1, 'the down node left the caches');
    // Its record is still in the DHT (it never withdrew): once the cache expires the answer is
    // used once more while it is rebuilt; the rebuilt one lists the node again, and it is skipped.
    net.clock.t += 5001;
    assert.equal((await pub.pubsub.publish('st', 501)).nodes, 1, 'the expired answer, at once');
    await tick();
    assert.equal((await pub.pubsub.publish('st', 502)).nodes, 2);
    await until(() => pub.pubsub.stats().fanout.skippedDown === 1, 'the send to the down node is skipped');
    await until(() => got.got.length === 503, 'the live node still gets everything');
  });
});
