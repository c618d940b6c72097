/**
 * Hostile and broken peers against a real node over QUIC: fuzzed frames,
 * garbage datagrams, store floods, forged and replayed records. Each must
 * get a typed refusal and a counter, and the node must keep serving a
 * well-behaved peer.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { dhtKey } from '../../src/dht/key.js';
import { STORE, STORE_RESULT } from '../../src/dht/messages.js';
import { signRecord, toWireRecord } from '../../src/dht/record.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { Messenger } from '../../src/session/messenger.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { ProtocolError } from '../../src/util/errors.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { HELLO, PING, PONG } from '../../src/wire/messages.js';
import { REPLY } from '../../src/pubsub/messages.js';
import { encodeBody, encodeMessage } from '../../src/wire/codec.js';
import { waitFor } from '../helpers/testnet.js';

const quiet = { warn: () => {} };
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

describe('a node facing hostile peers', () => {
  let victim: MeshNode;
  let good: MeshNode;
  const protocolErrors: string[] = [];

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    victim = await new MeshNode(Identity.generate(), {
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      dht: { recordStore: { maxRecordsPerPublisher: 50, maxRecords: 500 } },
    }).start();
    victim.on('protocol-error', (err: ProtocolError) => protocolErrors.push(err.kind));
    good = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [victim.listenAddress!] }).start();
    await good.joined();
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await good.stop();
    await victim.stop();
  });

  const stillServes = async () => {
    const pong = await good.messenger.request({ address: victim.listenAddress!, nodeId: victim.nodeId }, { t: PING.type }, { timeoutMs: 3000 });
    assert.equal(pong.t, PONG.type);
  };

  it('survives fuzzed frames: every one is a counted protocol error, and a good peer is still served', async () => {
    const rogue = new QuicTransport({ identity: Identity.generate() });
    await rogue.listen({ host: '127.0.0.1', port: 0 });
    const before = protocolErrors.length;
    const hello = encodeFrame(encodeBody({ v: 1, t: HELLO.type, id: 1, realm: 'default', role: 'node', port: 1 }));
    // Garbage of every shape after a valid HELLO (or instead of it): random bytes,
    // random CBOR values in valid frames, absurd lengths.
    const garbage = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.anything().map((v) => {
        try {
          return encodeFrame(encodeBody(v));
        } catch {
          return Uint8Array.from([0xff, 0xff, 0xff, 0xff]);
        }
      }),
      fc.record({ v: fc.integer(), t: fc.integer({ min: 0, max: 300 }), id: fc.anything() }).map((v) => encodeFrame(encodeBody(v))),
    );
    const samples = fc.sample(garbage, { numRuns: 150, seed: 42 });
    let sent = 0;
    for (const [i, bytes] of samples.entries()) {
      const conn = await rogue.dial(victim.listenAddress!);
      const stream = await conn.openStream();
      if (i % 2 === 0) await stream.write(hello);
      await stream.write(bytes).catch(() => undefined);
      await stream.finishWrite().catch(() => undefined);
      sent++;
      // The victim closes a connection that broke the protocol; a frame that
      // happens to be valid (rare) leaves it open, so don't wait for that.
      await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 300))]);
      conn.close();
    }
    await rogue.close();
    assert.equal(sent, samples.length);
    await waitFor(() => protocolErrors.length - before >= samples.length * 0.9, 10_000, 'protocol errors counted');
    await stillServes();
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  });

  it('ignores garbage UDP datagrams sent to the QUIC port', async () => {
    const sock = createSocket('udp4');
    const port = victim.listenAddress!.port;
    for (let i = 0; i < 5000; i++) {
      const len = 1 + ((i * 7919) % 1400);
      const buf = Buffer.alloc(len, i & 0xff);
      if (i % 3 === 0) buf[0] = 0xc0 | (i & 0x3f); // looks like a QUIC long header
      await new Promise<void>((resolve) => sock.send(buf, port, '127.0.0.1', () => resolve()));
    }
    sock.close();
    await stillServes();
  });

  it('holds its store bounds against a peer storing as fast as it can, and keeps other publishers intact', async () => {
    const honest = Identity.generate();
    const honestKey = dhtKey('test', 'honest');
    const now = Date.now();
    const store = async (m: Messenger, record: ReturnType<typeof signRecord>) =>
      m.request({ address: victim.listenAddress!, nodeId: victim.nodeId }, { t: STORE.type, record: toWireRecord(record) });
    const flooderId = Identity.generate();
    const ft = new QuicTransport({ identity: flooderId });
    await ft.listen({ host: '127.0.0.1', port: 0 });
    const flooder = new Messenger({ transport: ft, pool: new ConnectionPool({ transport: ft }) });
    flooder.start();
    const ht = new QuicTransport({ identity: honest });
    await ht.listen({ host: '127.0.0.1', port: 0 });
    const honestM = new Messenger({ transport: ht, pool: new ConnectionPool({ transport: ht }) });
    honestM.start();
    try {
      const ok = await store(honestM, signRecord(honest, { key: honestKey, value: new Uint8Array([1]), seq: 1, ttlMs: 60_000, now }));
      assert.equal(ok.t, STORE_RESULT.type);
      assert.equal(ok.ok, true);
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          store(flooder, signRecord(flooderId, { key: dhtKey('flood', String(i)), value: new Uint8Array(100), seq: 1, ttlMs: 60_000, now })),
        ),
      );
      const refused = results.filter((r) => r.ok === false);
      assert.equal(results.length - refused.length, 50, 'exactly maxRecordsPerPublisher accepted');
      assert.ok(refused.every((r) => r.code === 'publisher_full'));
      assert.equal(victim.dht.stats().storesRefused.publisher_full, 350);
      const mine = victim.dht.store.get(honestKey);
      assert.equal(mine.length, 1, 'the honest record is untouched');
    } finally {
      flooder.stop();
      honestM.stop();
      await ft.close();
      await ht.close();
    }
    await stillServes();
  });

  it('refuses a record signed by another key and a replayed older sequence', async () => {
    const owner = Identity.generate();
    const forger = Identity.generate();
    const key = dhtKey('test', 'forged');
    const now = Date.now();
    const send = (record: ReturnType<typeof signRecord>) =>
      good.messenger.request({ address: victim.listenAddress!, nodeId: victim.nodeId }, { t: STORE.type, record: toWireRecord(record) });
    // the forger signs, then claims the owner's key: the signature does not verify
    const forged = { ...signRecord(forger, { key, value: new Uint8Array([9]), seq: 5, ttlMs: 60_000, now }), publisher: owner.publicKey };
    const r1 = await send(forged);
    assert.equal(r1.ok, false);
    assert.equal(r1.code, 'bad_signature');
    const v2 = signRecord(owner, { key, value: new Uint8Array([2]), seq: 2, ttlMs: 60_000, now });
    const v1 = signRecord(owner, { key, value: new Uint8Array([1]), seq: 1, ttlMs: 60_000, now });
    assert.equal((await send(v2)).ok, true);
    const replay = await send(v1);
    assert.equal(replay.ok, false);
    assert.equal(replay.code, 'stale');
    assert.deepEqual([...victim.dht.store.get(key)[0]!.value], [2]);
    assert.ok(victim.dht.stats().storesRefused.bad_signature >= 1);
    assert.ok(victim.dht.stats().storesRefused.stale >= 1);
  });
  it('refuses a reply from a node the request was not sent to, however well it guesses the inbox', async () => {
    let answer!: () => void;
    const forgeriesSent = new Promise<void>((resolve) => (answer = resolve));
    const responder = good.subscribe('svc.guarded', async (m) => {
      await forgeriesSent; // the genuine answer comes after every forged one
      await m.respond?.('genuine');
    });
    await responder.ready;
    const rogueT = new QuicTransport({ identity: Identity.generate() });
    await rogueT.listen({ host: '127.0.0.1', port: 0 });
    const rogue = new Messenger({ transport: rogueT, pool: new ConnectionPool({ transport: rogueT }) });
    rogue.start();
    try {
      const refusedBefore = victim.pubsub.stats().repliesRefused;
      const pending = victim.request('svc.guarded', 'who?', { max: 1, timeoutMs: 10_000 });
      await waitFor(() => victim.pubsub.stats().requestsPending === 1, 5_000, 'the request is pending');
      // Inbox numbers are small and sequential: the rogue answers every one of the first 64.
      const target = { address: victim.listenAddress!, nodeId: victim.nodeId };
      for (let r = 0; r < 64; r++) await rogue.notify(target, encodeMessage({ t: REPLY.type, r }, { d: encodeBody('forged') }));
      await waitFor(() => victim.pubsub.stats().repliesRefused > refusedBefore, 5_000, 'the forged reply refused');
      answer();
      const replies = await pending;
      assert.deepEqual(replies.map((x) => [x.data, x.responder]), [['genuine', good.nodeId]]);
      assert.equal(victim.pubsub.stats().repliesRefused - refusedBefore, 1, 'one forged reply hit the pending inbox; the others found none');
    } finally {
      answer();
      await responder.unsubscribe();
      rogue.stop();
      await rogueT.close();
    }
    await stillServes();
  });
});
