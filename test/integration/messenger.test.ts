import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { Messenger, type MessengerInit } from '../../src/session/messenger.js';
import { RemoteError } from '../../src/session/peer-session.js';
import { MemoryNetwork, MemoryTransport } from '../../src/transport/memory.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { Transport } from '../../src/transport/types.js';
import { MaculaError, ProtocolError, TimeoutError, type ProtocolErrorKind } from '../../src/util/errors.js';
import { encodeBody } from '../../src/wire/codec.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { f } from '../../src/wire/schema.js';
import { defineMessage, HELLO, PING, PONG } from '../../src/wire/messages.js';
import { waitFor } from '../helpers/testnet.js';

const ECHO = defineMessage(250, 'TEST_ECHO', { d: f.bytes(0, 1 << 20) });
const ECHO_R = defineMessage(251, 'TEST_ECHO_R', { d: f.bytes(0, 1 << 20) }, { response: true });
const NOBODY = defineMessage(252, 'TEST_NOBODY', {});
const HANG = defineMessage(253, 'TEST_HANG', {});
const FAIL = defineMessage(254, 'TEST_FAIL', { kind: f.str(0, 10) });

interface TestPeer {
  transport: Transport;
  messenger: Messenger;
  protocolErrors: ProtocolErrorKind[];
  port: number;
}

type Kind = 'memory' | 'quic';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function peer(kind: Kind, network: MemoryNetwork, init: MessengerInit = {}): Promise<TestPeer> {
  const identity = Identity.generate();
  const transport: Transport = kind === 'quic' ? new QuicTransport({ identity }) : new MemoryTransport({ identity, network });
  const protocolErrors: ProtocolErrorKind[] = [];
  const messenger = new Messenger(
    { transport, pool: new ConnectionPool({ transport }), events: { protocolError: (err) => protocolErrors.push(err.kind) } },
    init,
  );
  messenger.handle(PING, () => ({ t: PONG.type }));
  messenger.handle(ECHO, (msg) => ({ t: ECHO_R.type, d: msg.d }));
  const hanging: (() => void)[] = [];
  messenger.handle(HANG, () => new Promise((resolve) => hanging.push(() => resolve({ t: PONG.type }))));
  messenger.handle(FAIL, (msg) => {
    if (msg.kind === 'typed') throw new MaculaError('MACULA_ERR_TEST', 'typed failure');
    throw new Error('plain failure');
  });
  const addr = await transport.listen({ host: '127.0.0.1', port: 0 });
  messenger.start();
  cleanups.push(async () => {
    for (const h of hanging) h();
    messenger.stop();
    await transport.close();
  });
  return { transport, messenger, protocolErrors, port: addr.port };
}

const addr = (p: TestPeer) => p.transport.listenAddress!;

for (const kind of ['memory', 'quic'] as const) {
  describe(`messenger over ${kind}`, () => {
    const net = new MemoryNetwork();

    it('answers requests and learns the peer from HELLO', async () => {
      const a = await peer(kind, net);
      const b = await peer(kind, net);
      const reply = await a.messenger.request({ address: addr(b) }, { t: ECHO.type, d: new Uint8Array([1, 2, 3]) });
      assert.equal(reply.t, ECHO_R.type);
      assert.deepEqual([...(reply.d as Uint8Array)], [1, 2, 3]);
      await waitFor(() => b.messenger.sessions().some((s) => s.address.port === a.port));
      const seen = b.messenger.sessions()[0]!;
      assert.equal(seen.nodeIdHex, a.transport.localNodeId && Buffer.from(a.transport.localNodeId).toString('hex'));
      assert.equal(seen.role, 'node');
      // many concurrent requests share the connection
      const many = await Promise.all(Array.from({ length: 300 }, (_, i) => a.messenger.request({ address: addr(b) }, { t: ECHO.type, d: new Uint8Array([i & 0xff]) })));
      assert.equal(many.length, 300);
      many.forEach((m, i) => assert.equal((m.d as Uint8Array)[0], i & 0xff));
      assert.equal(a.messenger.pool.size, 1);
    });

    it('judges a large request pipelined behind HELLO (and its response) under the full budget, not the pre-HELLO one', async () => {
      const small = { maxPreHelloFrameBytes: 1024 };
      const a = await peer(kind, net, small);
      const b = await peer(kind, net, small);
      const d = new Uint8Array(200_000).fill(9);
      const reply = await a.messenger.request({ address: addr(b) }, { t: ECHO.type, d });
      assert.equal((reply.d as Uint8Array).length, d.length);
      for (const p of [a, b]) assert.deepEqual(Object.values(p.messenger.budgetStats().refusals).filter((n) => n > 0), []);
      assert.equal(b.messenger.budgetStats().budgets.frameBytes.used, 0);
    });

    it('carries handler errors back with their code, without stacks', async () => {
      const a = await peer(kind, net);
      const b = await peer(kind, net);
      await assert.rejects(a.messenger.request({ address: addr(b) }, { t: FAIL.type, kind: 'typed' }), (err: unknown) => {
        assert.ok(err instanceof RemoteError);
        assert.equal(err.code, 'MACULA_ERR_TEST');
        assert.equal(err.message, 'typed failure');
        return true;
      });
      await assert.rejects(a.messenger.request({ address: addr(b) }, { t: FAIL.type, kind: 'plain' }), (err: unknown) => {
        assert.ok(err instanceof RemoteError);
        assert.equal(err.code, 'MACULA_ERR_HANDLER');
        assert.doesNotMatch(err.message, /\bat /);
        return true;
      });
      await assert.rejects(a.messenger.request({ address: addr(b) }, { t: NOBODY.type }), { code: 'MACULA_ERR_UNSUPPORTED' });
    });

    it('times out a request whose handler never answers, and keeps serving others', async () => {
      const a = await peer(kind, net);
      const b = await peer(kind, net);
      const t0 = Date.now();
      await assert.rejects(a.messenger.request({ address: addr(b) }, { t: HANG.type }, { timeoutMs: 200 }), TimeoutError);
      assert.ok(Date.now() - t0 < 2000);
      const pong = await a.messenger.request({ address: addr(b) }, { t: PING.type });
      assert.equal(pong.t, PONG.type);
    });

    it('refuses requests past maxInFlight with MACULA_ERR_BUSY', async () => {
      const a = await peer(kind, net);
      const b = await peer(kind, net, { maxInFlight: 2 });
      // Sent in one tick, the three requests arrive in one batch: two are admitted, the third refused.
      const results = await Promise.allSettled([1, 2, 3].map(() => a.messenger.request({ address: addr(b) }, { t: HANG.type }, { timeoutMs: 1000 })));
      const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as MaculaError).code : 'ok')).sort();
      assert.deepEqual(codes, ['MACULA_ERR_BUSY', 'MACULA_ERR_TIMEOUT', 'MACULA_ERR_TIMEOUT']);
    });

    it('counts one-way messages dropped at the in-flight limit and refused ones', async () => {
      const a = await peer(kind, net);
      const b = await peer(kind, net, { maxInFlight: 2 });
      // A request first: the HELLO exchange is done before the one-way messages are sent.
      await a.messenger.request({ address: addr(b) }, { t: PING.type });
      await a.messenger.notify({ address: addr(b) }, { t: NOBODY.type });
      await waitFor(() => b.messenger.trafficStats().oneWayDropped.refused === 1, 10_000, 'a one-way message without a handler counted as refused');
      await Promise.all([1, 2, 3, 4].map(() => a.messenger.notify({ address: addr(b) }, { t: HANG.type })));
      await waitFor(() => b.messenger.trafficStats().oneWayDropped.in_flight_limit === 2, 10_000, 'two of four one-way messages dropped at the limit of 2');
      assert.equal(b.messenger.trafficStats().oneWayDropped.refused, 1);
    });

    it('refuses a node of another realm', async () => {
      const a = await peer(kind, net, { realm: 'red' });
      const b = await peer(kind, net, { realm: 'blue' });
      await assert.rejects(a.messenger.request({ address: addr(b) }, { t: PING.type }), { code: 'MACULA_ERR_REALM' });
    });

    const badInputs: { name: string; kind: ProtocolErrorKind; bytes: () => Uint8Array }[] = [
      { name: 'a length over the limit', kind: 'frame_too_large', bytes: () => Uint8Array.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]) },
      { name: 'undecodable CBOR', kind: 'bad_cbor', bytes: () => encodeFrame(Uint8Array.from([0xff, 0xfe, 0xfd])) },
      { name: 'a body that is not a map', kind: 'bad_envelope', bytes: () => encodeFrame(encodeBody([1, 2, 3])) },
      { name: 'a wrong protocol version', kind: 'bad_version', bytes: () => encodeFrame(encodeBody({ v: 99, t: HELLO.type })) },
      { name: 'an unknown message type', kind: 'unknown_type', bytes: () => encodeFrame(encodeBody({ v: 1, t: 199, id: 1 })) },
      { name: 'wrong field types', kind: 'invalid_message', bytes: () => encodeFrame(encodeBody({ v: 1, t: HELLO.type, id: 1, realm: 42, role: 'node', port: 1 })) },
      { name: 'a request before HELLO', kind: 'unexpected_message', bytes: () => encodeFrame(encodeBody({ v: 1, t: PING.type, id: 1 })) },
      { name: 'a truncated frame', kind: 'truncated_frame', bytes: () => Uint8Array.from([0, 0, 0, 50, 1, 2]) },
    ];

    for (const bad of badInputs) {
      it(`closes the connection of a peer that sends ${bad.name}, counts it, and keeps serving others`, async () => {
        const victim = await peer(kind, net);
        const good = await peer(kind, net);
        const identity = Identity.generate();
        const rogue: Transport = kind === 'quic' ? new QuicTransport({ identity }) : new MemoryTransport({ identity, network: net });
        await rogue.listen({ host: '127.0.0.1', port: 0 });
        cleanups.push(() => rogue.close());
        const conn = await rogue.dial(addr(victim));
        const stream = await conn.openStream();
        await stream.write(bad.bytes());
        await stream.finishWrite();
        await waitFor(() => victim.protocolErrors.length > 0);
        assert.deepEqual(victim.protocolErrors, [bad.kind]);
        await Promise.race([conn.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('rogue connection not closed')), 5000))]);
        const pong = await good.messenger.request({ address: addr(victim) }, { t: PING.type });
        assert.equal(pong.t, PONG.type);
      });
    }
  });
}

describe('protocol errors are typed', () => {
  it('ProtocolError carries its kind', () => {
    const e = new ProtocolError('bad_cbor', 'x');
    assert.equal(e.code, 'MACULA_ERR_PROTOCOL');
    assert.equal(e.kind, 'bad_cbor');
  });
});
