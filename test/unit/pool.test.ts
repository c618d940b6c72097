import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionPool } from '../../src/transport/pool.js';
import type { Connection, DialOptions, PeerAddress, Stream, Transport, TransportStats } from '../../src/transport/types.js';
import { DialError, LimitExceededError } from '../../src/util/errors.js';

// A scripted transport: each address maps to a node ID; dials resolve when the test says so.
class FakeConnection implements Connection {
  readonly remoteNodeId: Uint8Array;
  isClosed = false;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  constructor(
    readonly remoteNodeIdHex: string,
    readonly remoteAddress: PeerAddress,
    readonly direction: 'inbound' | 'outbound',
  ) {
    this.remoteNodeId = Buffer.from(remoteNodeIdHex, 'hex');
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }
  openStream(): Promise<Stream> {
    throw new Error('not used');
  }
  acceptStream(): Promise<Stream | null> {
    return this.closed.then(() => null);
  }
  rttMs(): number {
    return 0;
  }
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#resolveClosed();
  }
}

class FakeTransport implements Transport {
  readonly kind = 'fake';
  readonly localNodeId = Buffer.alloc(32, 0x55);
  listenAddress: PeerAddress | undefined = undefined;
  dials = 0;
  nodes = new Map<number, string>();
  gate: Promise<void> = Promise.resolve();
  async listen(a: PeerAddress) {
    return a;
  }
  async dial(address: PeerAddress, _options?: DialOptions): Promise<Connection> {
    this.dials++;
    await this.gate;
    const hex = this.nodes.get(address.port);
    if (!hex) throw new DialError(`${address.host}:${address.port}`, 'nobody there');
    return new FakeConnection(hex, address, 'outbound');
  }
  acceptConnection(): Promise<Connection | null> {
    return new Promise(() => {});
  }
  async close() {}
  stats(): TransportStats {
    return { connectionsOpen: 0, connectionsDialed: 0, connectionsAccepted: 0, dialFailures: 0, streamsOpened: 0, streamsAccepted: 0 };
  }
}

const id = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
const addr = (port: number): PeerAddress => ({ host: '127.0.0.1', port });

/** The node IDs the pool reports lost, in order. */
function lostNodes(pool: ConnectionPool): string[] {
  const lost: string[] = [];
  pool.onConnectionLost = (hex) => lost.push(hex);
  return lost;
}

/** Closes `conn` and lets the pool's close handlers run. */
async function closeNow(conn: Connection): Promise<void> {
  conn.close();
  await conn.closed;
  await new Promise((r) => setImmediate(r));
}

function setup(init: ConstructorParameters<typeof ConnectionPool>[1] = {}) {
  const transport = new FakeTransport();
  let now = 1_000_000;
  const clock = { advance: (ms: number) => (now += ms) };
  const pool = new ConnectionPool({ transport, now: () => now }, { duplicateGraceMs: 10, ...init });
  for (let i = 1; i <= 20; i++) transport.nodes.set(i, id(i));
  return { transport, pool, clock };
}

describe('ConnectionPool', () => {
  it('shares one dial between concurrent callers and reuses the connection', async () => {
    const { transport, pool } = setup();
    let open!: () => void;
    transport.gate = new Promise((r) => (open = r));
    const all = Promise.all([pool.get(addr(1)), pool.get(addr(1)), pool.get(addr(1), id(1))]);
    open();
    const [a, b] = await all;
    assert.equal(a, b);
    const c = await pool.get(addr(1));
    assert.equal(c, a);
    const d = await pool.get({ host: '10.9.9.9', port: 777 }, id(1));
    assert.equal(d, a, 'a known node ID reuses its connection whatever the address');
    assert.ok(transport.dials <= 2);
    assert.equal(pool.stats().dialed, transport.dials);
    assert.equal(pool.size, 1);
  });

  it('reports a lost connection and a failed dial, but not the closes it makes itself', async () => {
    const { pool, clock } = setup({ idleTimeoutMs: 1000 });
    const lost: string[] = [];
    const failed: string[] = [];
    pool.onConnectionLost = (hex, address) => lost.push(`${hex.slice(0, 2)}@${address?.port}`);
    pool.onDialFailed = (address, hex) => failed.push(`${hex?.slice(0, 2)}@${address.port}`);
    const a = await pool.get(addr(1));
    await pool.get(addr(2));
    a.close(); // the peer went away
    await new Promise((r) => setImmediate(r));
    clock.advance(2000);
    assert.equal(pool.reap(), 1); // the pool's own close of node 2
    await new Promise((r) => setImmediate(r));
    await assert.rejects(pool.get(addr(99), id(9)), DialError);
    assert.deepEqual(lost, ['01@1']);
    assert.deepEqual(failed, ['09@99']);
  });

  it('counts failed dials and does not cache failures', async () => {
    const { pool } = setup();
    await assert.rejects(pool.get(addr(99)), DialError);
    await assert.rejects(pool.get(addr(99)), DialError);
    assert.equal(pool.stats().failedDials, 2);
    assert.equal(pool.size, 0);
  });

  it('evicts the least recently used idle connection when full', async () => {
    const { pool, clock } = setup({ maxConnections: 3 });
    const c1 = await pool.get(addr(1));
    clock.advance(10);
    const c2 = await pool.get(addr(2));
    clock.advance(10);
    const c3 = await pool.get(addr(3));
    clock.advance(10);
    pool.touch(c1); // c2 is now the least recently used
    const c4 = await pool.get(addr(4));
    assert.equal(c2.isClosed, true);
    assert.equal(c1.isClosed, false);
    assert.equal(c3.isClosed, false);
    assert.equal(c4.isClosed, false);
    assert.equal(pool.size, 3);
    assert.equal(pool.stats().evicted, 1);
  });

  it('never evicts a busy connection; refuses with a typed error when all are busy', async () => {
    const { pool } = setup({ maxConnections: 2 });
    const c1 = await pool.get(addr(1));
    const c2 = await pool.get(addr(2));
    pool.acquire(c1);
    pool.acquire(c2);
    await assert.rejects(pool.get(addr(3)), LimitExceededError);
    assert.equal(pool.stats().refused, 1);
    pool.release(c2);
    await pool.get(addr(3));
    assert.equal(c2.isClosed, true);
    assert.equal(c1.isClosed, false);
  });

  it('refuses inbound connections past the limit', async () => {
    const { pool } = setup({ maxConnections: 1 });
    const c1 = await pool.get(addr(1));
    pool.acquire(c1);
    const inbound = new FakeConnection(id(7), addr(5000), 'inbound');
    assert.equal(pool.accept(inbound), false);
    assert.equal(inbound.isClosed, true);
  });

  it('reaps connections idle longer than idleTimeout', async () => {
    const { pool, clock } = setup({ idleTimeoutMs: 5 * 60_000 });
    const c1 = await pool.get(addr(1));
    const c2 = await pool.get(addr(2));
    clock.advance(4 * 60_000);
    pool.touch(c2);
    clock.advance(2 * 60_000);
    assert.equal(pool.reap(), 1);
    assert.equal(c1.isClosed, true);
    assert.equal(c2.isClosed, false);
    assert.equal(pool.stats().reaped, 1);
    clock.advance(10 * 60_000);
    pool.acquire(c2);
    assert.equal(pool.reap(), 0, 'a busy connection is not idle');
  });

  it('runs the reaper on its interval', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const { pool, clock } = setup({ idleTimeoutMs: 1000, reapIntervalMs: 60_000 });
    pool.start();
    const c1 = await pool.get(addr(1));
    clock.advance(2000);
    t.mock.timers.tick(60_000);
    assert.equal(c1.isClosed, true);
    pool.stop();
  });

  it('keeps one connection per node when both sides dial at once', async () => {
    const { pool } = setup();
    // Local ID is 0x55..; node 0x01.. is smaller, so its dial (our inbound) wins.
    const out = await pool.get(addr(1));
    const inbound = new FakeConnection(id(1), addr(6000), 'inbound');
    pool.accept(inbound);
    assert.equal(pool.connectionTo(id(1)), out, 'kept aside until the peer speaks on it');
    pool.confirm(inbound);
    assert.equal(pool.connectionTo(id(1)), inbound);
    await out.closed; // the loser is closed after the grace period
  });

  it('never puts in use a preferred inbound duplicate its dialer drops at once, and loses nothing', async () => {
    const { pool } = setup();
    const lost = lostNodes(pool);
    const out = await pool.get(addr(1));
    const inbound = new FakeConnection(id(1), addr(6000), 'inbound');
    pool.accept(inbound);
    await closeNow(inbound);
    assert.equal(pool.connectionTo(id(1)), out);
    assert.equal(pool.size, 1);
    assert.deepEqual(lost, []);
  });

  it('uses its own dial while the inbound connection in use is silent, and the inbound one once the peer speaks', async () => {
    const { pool, transport } = setup();
    const lost = lostNodes(pool);
    let open!: () => void;
    transport.gate = new Promise((r) => (open = r));
    const dialing = pool.get(addr(1), id(1));
    // Node 0x01.. dials us at the same time; its dial (preferred) is accepted first.
    const inbound = new FakeConnection(id(1), addr(6000), 'inbound');
    pool.accept(inbound);
    open();
    const out = await dialing;
    assert.notEqual(out, inbound);
    assert.equal(pool.connectionTo(id(1)), out, 'our own dial is used until the peer speaks on its own');
    pool.confirm(inbound);
    assert.equal(pool.connectionTo(id(1)), inbound);
    await out.closed; // retired after the grace period
    assert.deepEqual(lost, []);
  });

  it('hands over to the retiring connection when the one kept closes', async () => {
    const { pool } = setup({ duplicateGraceMs: 60_000 });
    const lost = lostNodes(pool);
    const out = await pool.get(addr(1));
    const inbound = new FakeConnection(id(1), addr(6000), 'inbound');
    pool.accept(inbound);
    pool.confirm(inbound);
    assert.equal(pool.connectionTo(id(1)), inbound);
    await closeNow(inbound);
    assert.equal(pool.connectionTo(id(1)), out);
    assert.deepEqual(lost, []);
    // The node is lost once no connection to it is left.
    await closeNow(out);
    assert.deepEqual(lost, [id(1)]);
    pool.stop();
  });

  it('reports the node lost when the connection in use and the one kept aside both close', async () => {
    const { pool } = setup();
    const lost = lostNodes(pool);
    const out = await pool.get(addr(1));
    const inbound = new FakeConnection(id(1), addr(6000), 'inbound');
    pool.accept(inbound);
    await closeNow(out);
    assert.equal(pool.connectionTo(id(1)), inbound, 'the one kept aside takes over');
    assert.deepEqual(lost, []);
    await closeNow(inbound);
    assert.deepEqual(lost, [id(1)]);
  });

  it('keeps our own dial when the other node has the larger ID', async () => {
    const { pool, transport } = setup();
    const big = 'ee'.repeat(32);
    transport.nodes.set(30, big);
    const out = await pool.get(addr(30));
    const inbound = new FakeConnection(big, addr(6001), 'inbound');
    pool.accept(inbound);
    assert.equal(pool.connectionTo(big), out);
    await inbound.closed;
    assert.equal(out.isClosed, false);
    assert.equal(pool.stats().duplicates, 1);
  });

  it('drops a closed connection from the pool', async () => {
    const { pool } = setup();
    const c1 = await pool.get(addr(1));
    await closeNow(c1);
    assert.equal(pool.size, 0);
    assert.equal(pool.connectionTo(id(1)), undefined);
    const again = await pool.get(addr(1));
    assert.notEqual(again, c1);
  });
});
