/**
 * The relay protocol's pieces, in one process: relayed addresses, the Noise
 * channel (identity from the handshake, tampering and replay detected, realm
 * bound), and the stream multiplexing of a relayed connection. The message
 * pipe between the two ends stands in for a relay; it can be made to
 * tamper with, replay or record what passes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { RelayedConnection } from '../../src/relay/relayed-connection.js';
import { SecureChannel, type MessagePipe } from '../../src/relay/secure-channel.js';
import { isRelayedHost, relayedAddress, relaysOf } from '../../src/transport/relayed-address.js';
import { formatAddress, parseAddress } from '../../src/transport/types.js';
import { PeerIdMismatchError, ProtocolError } from '../../src/util/errors.js';

/** Two pipe ends; `meddle` sees (and may replace, or drop with null) every message going a → b. */
function pipePair(meddle?: (m: Uint8Array, n: number) => Uint8Array | Uint8Array[] | null): [MessagePipe, MessagePipe, Uint8Array[]] {
  const seen: Uint8Array[] = [];
  const make = (inbox: Uint8Array[], waiters: ((m: Uint8Array | null) => void)[], state: { closed: boolean }) => ({ inbox, waiters, state });
  const a = make([], [], { closed: false });
  const b = make([], [], { closed: false });
  const deliver = (to: typeof a, m: Uint8Array | null) => {
    const w = to.waiters.shift();
    if (w) w(m);
    else if (m !== null) to.inbox.push(m);
    else to.state.closed = true;
  };
  let n = 0;
  const end = (self: typeof a, other: typeof a, outbound: boolean): MessagePipe => ({
    async send(bytes) {
      if (self.state.closed) throw new Error('closed');
      seen.push(bytes);
      let out: Uint8Array | Uint8Array[] | null = bytes;
      if (outbound && meddle) out = meddle(bytes, n++);
      for (const m of out === null ? [] : Array.isArray(out) ? out : [out]) deliver(other, m);
    },
    read() {
      const m = self.inbox.shift();
      if (m) return Promise.resolve(m);
      if (self.state.closed) return Promise.resolve(null);
      return new Promise((r) => self.waiters.push(r));
    },
    close() {
      if (self.state.closed) return;
      self.state.closed = true;
      for (const w of self.waiters.splice(0)) w(null);
      deliver(other, null);
    },
  });
  return [end(a, b, true), end(b, a, false), seen];
}

async function channels(options: { meddle?: Parameters<typeof pipePair>[0]; realms?: [string, string]; expect?: string } = {}) {
  const alice = Identity.generate();
  const bob = Identity.generate();
  const [pa, pb, seen] = pipePair(options.meddle);
  const [ra, rb] = options.realms ?? ['r', 'r'];
  const [ca, cb] = await Promise.all([
    SecureChannel.handshake(pa, alice, { initiator: true, realm: ra, expectedNodeId: options.expect ?? bob.nodeIdHex }),
    SecureChannel.handshake(pb, bob, { initiator: false, realm: rb }),
  ]);
  return { alice, bob, ca, cb, seen };
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

describe('relayed addresses', () => {
  it('name up to three relays in the host, port of the first; format and parse as one piece', () => {
    const addr = relayedAddress([{ host: '10.0.0.1', port: 9443 }, { host: '::1', port: 7000 }]);
    assert.equal(addr.host, 'relay~10.0.0.1:9443~[::1]:7000');
    assert.equal(addr.port, 9443);
    assert.ok(isRelayedHost(addr.host));
    assert.deepEqual(relaysOf(addr.host), [{ host: '10.0.0.1', port: 9443 }, { host: '::1', port: 7000 }]);
    assert.equal(formatAddress(addr), addr.host);
    assert.deepEqual(parseAddress(formatAddress(addr)), addr);
    const four = relayedAddress([1, 2, 3, 4].map((i) => ({ host: `10.0.0.${i}`, port: 1000 + i })));
    assert.equal(relaysOf(four.host)?.length, 3);
    assert.equal(relaysOf('relay~'), undefined);
    assert.equal(relaysOf('relay~10.0.0.1:0'), undefined);
    assert.equal(relaysOf('10.0.0.1'), undefined);
  });
});

describe('the Noise channel between the ends of a circuit', () => {
  it('proves both node IDs and carries messages the relay cannot read', async () => {
    const { alice, bob, ca, cb, seen } = await channels();
    assert.equal(ca.remoteNodeIdHex, bob.nodeIdHex);
    assert.equal(cb.remoteNodeIdHex, alice.nodeIdHex);
    await ca.send(text('secret-marker one'));
    await cb.send(text('secret-marker two'));
    assert.equal(str(await cb.read()), 'secret-marker one');
    assert.equal(str(await ca.read()), 'secret-marker two');
    for (const m of seen) assert.ok(!Buffer.from(m).includes('secret-marker'), 'no plaintext crosses the relay');
  });

  it('fails the dial when the key behind the relay is not the expected node', async () => {
    const other = Identity.generate();
    await assert.rejects(channels({ expect: other.nodeIdHex }), PeerIdMismatchError);
  });

  it('refuses a message the relay altered, and one it replayed', async () => {
    // Messages 0 and 1 of a → b are the handshake (XX: a sends 1st and 3rd): the 3rd is message n = 1.
    const altered = await channels({ meddle: (m, n) => (n === 2 ? Uint8Array.from(m, (x, i) => (i === 3 ? x ^ 1 : x)) : m) });
    await altered.ca.send(text('hello'));
    await assert.rejects(altered.cb.read(), ProtocolError);
    const replayed = await channels({ meddle: (m, n) => (n === 2 ? [m, m] : m) });
    await replayed.ca.send(text('once'));
    assert.equal(str(await replayed.cb.read()), 'once');
    await assert.rejects(replayed.cb.read(), ProtocolError);
  });

  it('binds the realm: ends of different realms fail the handshake', async () => {
    await assert.rejects(channels({ realms: ['a', 'b'] }), ProtocolError);
  });
});

describe('a relayed connection', () => {
  async function pair() {
    const { ca, cb } = await channels();
    const out = new RelayedConnection(ca, { remoteAddress: { host: 'relay~10.0.0.1:1', port: 1 }, direction: 'outbound' });
    const inn = new RelayedConnection(cb, { remoteAddress: { host: '10.0.0.9', port: 0 }, direction: 'inbound', maxStreams: 2 });
    return { out, inn };
  }

  it('multiplexes streams both ways, splits large writes, half-closes and resets', async () => {
    const { out, inn } = await pair();
    const s1 = await out.openStream();
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    await s1.write(big);
    await s1.finishWrite();
    const r1 = (await inn.acceptStream())!;
    const chunks: Uint8Array[] = [];
    for (let c = await r1.read(); c !== null; c = await r1.read()) chunks.push(c);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(big));
    // The accepting side opens one too: even ids, seen by the dialer.
    const s2 = await inn.openStream();
    await s2.write(text('back'));
    const r2 = (await out.acceptStream())!;
    assert.equal(str(await r2.read()), 'back');
    r2.reset();
    assert.equal(await s2.read(), null, 'a reset ends the peer stream too');
    await assert.rejects(s2.write(text('x')));
    out.close();
    await Promise.all([out.closed, inn.closed]);
    assert.equal(await inn.acceptStream(), null);
  });

  it('resets streams the peer opens beyond the accept queue', async () => {
    const { out, inn } = await pair();
    const streams = await Promise.all([1, 2, 3].map(() => out.openStream()));
    for (const s of streams) await s.write(text('hi'));
    // Two wait for acceptStream(); the third was reset by the accepting side.
    assert.equal(await streams[2]!.read(), null);
    const a = (await inn.acceptStream())!;
    assert.equal(str(await a.read()), 'hi');
    out.close();
    await inn.closed;
  });
});
