/**
 * Which inbound connections the reachability check takes as the dial-backs
 * it asked for (kept out of the connection pool): one per peer asked, also
 * when the peer's "reached" answer overtakes the connection, and nothing
 * else. The check over real QUIC is in test/integration/reachability.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../../src/identity/identity.js';
import { ObservedAddresses } from '../../src/nat/observed.js';
import { ReachabilityCheck } from '../../src/nat/reachability.js';
import type { Messenger } from '../../src/session/messenger.js';
import type { Connection, Transport } from '../../src/transport/types.js';

const PEER_ID = new Uint8Array(32).fill(7);
const PEER_HEX = toHex(PEER_ID);
const IN_USE = { remoteNodeIdHex: PEER_HEX, close() {} } as unknown as Connection;

/** A connection from the peer; `closed` tells whether it was closed. */
function inbound(): Connection & { closed: boolean } {
  const c = { remoteNodeIdHex: PEER_HEX, closed: false, close: () => (c.closed = true) };
  return c as unknown as Connection & { closed: boolean };
}

/** A check whose one peer answers DIAL_BACK with `ok` once `answer` is called. */
function setup(ok: boolean, dialBackTimeoutMs = 3000) {
  let answer!: () => void;
  const answered = new Promise<void>((r) => (answer = r));
  const messenger = {
    handle: () => undefined,
    claimInbound: undefined as ((conn: Connection) => boolean) | undefined,
    pool: { connectionTo: (hex: string) => (hex === PEER_HEX ? IN_USE : undefined) },
    request: async () => {
      await answered;
      return { ok, obs: { h: '127.0.0.1', p: 4000 } };
    },
  };
  const check = new ReachabilityCheck(
    {
      messenger: messenger as unknown as Messenger,
      transport: {} as Transport,
      observed: new ObservedAddresses(),
      peers: () => [{ host: '127.0.0.1', port: 5000, id: PEER_ID }],
      directAddress: () => ({ host: '127.0.0.1', port: 4000 }),
    },
    { dialBackTimeoutMs },
  );
  return { check, answer, claim: (conn: Connection) => messenger.claimInbound!(conn) };
}

describe('reachability check: dial-back connections', () => {
  it('the dial-back arriving before the answer is claimed; a later connection from the peer is not', async () => {
    const { check, answer, claim } = setup(true);
    const done = check.check();
    const dialBack = inbound();
    assert.equal(claim(dialBack), true, 'the dial-back is kept out of the pool');
    answer();
    assert.equal(await done, 'public');
    assert.equal(claim(inbound()), false, 'one dial-back per peer asked');
  });

  it('the dial-back arriving after the "reached" answer is still claimed, once', async () => {
    const { check, answer, claim } = setup(true);
    const done = check.check();
    answer();
    assert.equal(await done, 'public');
    // The answer came over the connection in use and overtook the dial-back's handshake.
    assert.equal(claim(inbound()), true, 'the late dial-back is kept out of the pool');
    assert.equal(claim(inbound()), false, 'one dial-back per peer asked');
  });

  it('after an "unreached" answer no connection from the peer is claimed', async () => {
    const { check, answer, claim } = setup(false);
    const done = check.check();
    answer();
    assert.equal(await done, 'private');
    assert.equal(claim(inbound()), false);
  });

  it('a dial-back that never arrives is no longer expected after the dial-back timeout', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { check, answer, claim } = setup(true, 3000);
    const done = check.check();
    answer();
    assert.equal(await done, 'public');
    t.mock.timers.tick(3000);
    assert.equal(claim(inbound()), false, 'a new connection from the peer goes to the pool');
  });
});
