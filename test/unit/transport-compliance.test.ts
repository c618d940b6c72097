import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { afterEach, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { MemoryNetwork, MemoryTransport, type MemoryTransportOptions } from '../../src/transport/memory.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { PeerAddress, Transport, TransportOptions } from '../../src/transport/types.js';
import { base58btcDecode, parseRemoteMultiaddr, publicKeyFromPeerId } from '../../src/transport/peer-id.js';
import { DialError, TransportError } from '../../src/util/errors.js';
import { transportComplianceSuite } from '../helpers/transport-suite.js';

/** A UDP port that was free a moment ago: bind it, note it, release it. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

describe('quic', () => {
  transportComplianceSuite({
    async create(init?: TransportOptions): Promise<Transport> {
      const t = new QuicTransport({ identity: Identity.generate() }, init);
      await t.listen({ host: '127.0.0.1', port: 0 });
      return t;
    },
    async deadAddress(): Promise<PeerAddress> {
      return { host: '127.0.0.1', port: await freeUdpPort() };
    },
  });

  describe('quic specifics', () => {
    const open: Transport[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    it('resolves host names such as localhost', async () => {
      const a = new QuicTransport({ identity: Identity.generate() });
      const b = new QuicTransport({ identity: Identity.generate() });
      open.push(a, b);
      const bound = await b.listen({ host: 'localhost', port: 0 });
      const conn = await a.dial({ host: 'localhost', port: bound.port });
      assert.deepEqual(conn.remoteNodeId, b.localNodeId);
    });

    it('fails with DialError when the host name does not resolve', async () => {
      const a = new QuicTransport({ identity: Identity.generate() });
      open.push(a);
      await assert.rejects(a.dial({ host: 'no-such-host.invalid', port: 9443 }, { timeoutMs: 3000 }), DialError);
    });

    it('fails with TransportError when the port is taken', async () => {
      const a = new QuicTransport({ identity: Identity.generate() });
      const b = new QuicTransport({ identity: Identity.generate() });
      open.push(a, b);
      const bound = await a.listen({ host: '127.0.0.1', port: 0 });
      await assert.rejects(b.listen(bound), TransportError);
      await assert.rejects(a.listen({ host: '127.0.0.1', port: 0 }), TransportError);
    });
  });
});

function base58btcEncode(bytes: Uint8Array): string {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let n = BigInt('0x' + (Buffer.from(bytes).toString('hex') || '0'));
  let out = '';
  while (n > 0n) {
    out = alphabet[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (let i = 0; i < bytes.length && bytes[i] === 0; i++) out = '1' + out;
  return out;
}

describe('peer ID parsing', () => {
  it('decodes base58btc', () => {
    assert.deepEqual(base58btcDecode(''), new Uint8Array());
    assert.deepEqual(base58btcDecode('2g'), Uint8Array.of(0x61));
    assert.deepEqual(base58btcDecode('a3gV'), Uint8Array.of(0x62, 0x62, 0x62));
    assert.deepEqual(base58btcDecode('1112'), Uint8Array.of(0, 0, 0, 1));
    assert.throws(() => base58btcDecode('0OIl'), TypeError);
  });

  it('takes the Ed25519 key out of a peer ID and the address out of the multiaddr', () => {
    const identity = Identity.generate();
    const peerId = base58btcEncode(Buffer.concat([Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]), identity.publicKey]));
    assert.ok(peerId.startsWith('12D3KooW'), 'the usual prefix of Ed25519 peer IDs');
    assert.deepEqual(publicKeyFromPeerId(peerId), identity.publicKey);
    const parsed = parseRemoteMultiaddr(`/ip6/::1/udp/4433/quic-v1/p2p/${peerId}`);
    assert.deepEqual(parsed, { host: '::1', port: 4433, publicKey: identity.publicKey });
  });

  it('refuses peer IDs that do not embed an Ed25519 key', () => {
    const secp256k1 = base58btcEncode(Buffer.concat([Buffer.from([0x00, 0x25, 0x08, 0x02, 0x12, 0x21]), Buffer.alloc(33, 2)]));
    assert.throws(() => publicKeyFromPeerId(secp256k1), TransportError);
    const sha256Multihash = base58btcEncode(Buffer.concat([Buffer.from([0x12, 0x20]), Buffer.alloc(32, 7)]));
    assert.throws(() => publicKeyFromPeerId(sha256Multihash), TransportError);
    assert.throws(() => parseRemoteMultiaddr('/ip4/127.0.0.1/udp/4433/quic-v1'), TransportError);
  });
});

describe('memory', () => {
  const network = new MemoryNetwork();
  transportComplianceSuite({
    async create(init?: TransportOptions): Promise<Transport> {
      const t = new MemoryTransport({ identity: Identity.generate(), network }, init);
      await t.listen({ host: 'memory', port: 0 });
      return t;
    },
    async deadAddress(): Promise<PeerAddress> {
      return { host: 'memory', port: network.takePort() };
    },
  });

  describe('memory specifics', () => {
    const open: Transport[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });
    const node = (net: MemoryNetwork, init?: MemoryTransportOptions): MemoryTransport => {
      const t = new MemoryTransport({ identity: Identity.generate(), network: net }, init);
      open.push(t);
      return t;
    };

    it('kill(port) drops a node abruptly: its peers see their connections close', async () => {
      const net = new MemoryNetwork();
      const a = node(net);
      const b = node(net);
      const { port } = await b.listen({ host: 'memory', port: 0 });
      assert.equal(port, 1);
      const conn = await a.dial({ host: 'memory', port });
      const s = await conn.openStream();
      await s.write(new Uint8Array([1]));
      const pending = s.read();
      assert.equal(net.kill(port), true);
      assert.equal(net.kill(port), false);
      await conn.closed;
      assert.equal(await pending, null);
      assert.equal(net.size, 0);
      await assert.rejects(a.dial({ host: 'memory', port }), DialError);
    });

    it('makes a writer wait while its reader is more than the buffer limit behind', async () => {
      const net = new MemoryNetwork();
      const a = node(net);
      const b = node(net, { streamBufferBytes: 1000 });
      await b.listen({ host: 'memory', port: 0 });
      const conn = await a.dial(b.listenAddress!);
      const s = await conn.openStream();
      await s.write(new Uint8Array(600));
      let second = false;
      const blocked = s.write(new Uint8Array(600)).then(() => (second = true));
      const peer = (await (await b.acceptConnection())!.acceptStream())!;
      await Promise.resolve();
      assert.equal(second, false, 'the write over the limit waits');
      await peer.read();
      await blocked;
      assert.equal(second, true);
    });
  });
});
