/**
 * Two nodes that dial each other at once end up with two connections each;
 * the pool keeps one, on both sides the same. A request must never fail
 * because of the other one: neither when both dials complete (each node then
 * retires the loser after a grace), nor when the preferred one is closed by
 * its dialer at once (a dial abandoned at its deadline after the handshake
 * completed on the other side, as under load).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { Messenger } from '../../src/session/messenger.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import { PING, PONG } from '../../src/wire/messages.js';

interface Peer {
  transport: QuicTransport;
  messenger: Messenger;
  hex: string;
  lost: number;
}

const started: Peer[] = [];
after(async () => {
  for (const p of started) await stop(p);
});

async function peer(identity = Identity.generate()): Promise<Peer> {
  const transport = new QuicTransport({ identity });
  const messenger = new Messenger({ transport, pool: new ConnectionPool({ transport }, { duplicateGraceMs: 300 }) });
  messenger.handle(PING, () => ({ t: PONG.type }));
  await transport.listen({ host: '127.0.0.1', port: 0 });
  messenger.start();
  const p: Peer = { transport, messenger, hex: identity.nodeIdHex, lost: 0 };
  messenger.pool.onConnectionLost = () => p.lost++;
  started.push(p);
  return p;
}

async function stop(p: Peer): Promise<void> {
  p.messenger.stop();
  await p.transport.close();
}

/** Two peers, the first with the smaller node ID (its dial is the one both keep). */
async function pair(): Promise<[Peer, Peer]> {
  const [x, y] = [Identity.generate(), Identity.generate()].sort((i, j) => (i.nodeIdHex < j.nodeIdHex ? -1 : 1));
  return [await peer(x), await peer(y)];
}

const target = (p: Peer) => ({ address: p.transport.listenAddress!, nodeId: p.hex });

async function ping(from: Peer, to: Peer, failures: string[], timeoutMs?: number): Promise<void> {
  try {
    const r = await from.messenger.request(target(to), { t: PING.type }, timeoutMs === undefined ? {} : { timeoutMs });
    assert.equal(r.t, PONG.type);
  } catch (err) {
    failures.push((err as Error).message);
  }
}

describe('two nodes dialing each other at once', () => {
  it('keeps every request working while both keep one of the two connections', async () => {
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const [a, b] = await pair();
        await Promise.all([ping(a, b, failures), ping(b, a, failures)]);
        assert.equal(a.messenger.pool.stats().duplicates + b.messenger.pool.stats().duplicates, 2, 'both dials completed');
        // Until both have closed the loser.
        while (a.messenger.pool.size + b.messenger.pool.size > 2 || a.transport.stats().connectionsOpen > 1 || b.transport.stats().connectionsOpen > 1) {
          await Promise.all([ping(a, b, failures), ping(b, a, failures)]);
        }
        await Promise.all([ping(a, b, failures), ping(b, a, failures)]);
        // Both kept the connection a dialed (a has the smaller ID).
        assert.equal(a.messenger.pool.connectionTo(b.hex)?.direction, 'outbound');
        assert.equal(b.messenger.pool.connectionTo(a.hex)?.direction, 'inbound');
        assert.deepEqual([a.lost, b.lost], [0, 0]);
        await Promise.all([stop(a), stop(b)]);
      }),
    );
    assert.deepEqual(failures, []);
  });

  it('never sends a request on a dial its dialer abandoned at once', async () => {
    const failures: string[] = [];
    let abandoned = 0;
    for (let round = 0; round < 10; round++) {
      const [a, b] = await pair();
      // Both dial at once; a gives up at once (its deadline passes during the handshake), which
      // still completes on b's side: then a closes it.
      const dropped: string[] = [];
      const dial = ping(a, b, dropped, 1);
      await ping(b, a, failures);
      // b keeps calling a until the abandoned dial has come and gone on its side.
      let n = 0;
      while (n < 2000 && !(b.transport.stats().connectionsAccepted > 0 && b.transport.stats().connectionsOpen === 1)) {
        await Promise.all([ping(b, a, failures), ping(b, a, failures)]);
        n++;
      }
      await dial;
      if (b.transport.stats().connectionsAccepted > 0 && dropped.length > 0) abandoned++;
      await ping(b, a, failures);
      if (b.lost > 0) failures.push(`b lost its connection to a ${b.lost} time(s)`);
      await Promise.all([stop(a), stop(b)]);
    }
    assert.ok(abandoned > 0, 'at least one abandoned dial reached the other node');
    assert.deepEqual(failures, []);
  });
});
