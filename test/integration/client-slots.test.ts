/**
 * Light clients pin their connections; the node keeps room beyond them for
 * its mesh peers, so a node whose client slots are all taken still dials.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MaculaClient } from '../../src/client/client.js';
import { MESH_CONNECTION_MARGIN } from '../../src/gateway/options.js';
import { Identity } from '../../src/identity/identity.js';
import { createNode, MeshNode } from '../../src/node/mesh-node.js';
import { ConfigError } from '../../src/util/errors.js';

const quiet = { warn: () => {} };

describe('client slots and mesh connections', () => {
  const nodes: MeshNode[] = [];
  const clients: MaculaClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('createNode({ gateway: { maxClients } }) still dials a peer when every client slot is taken', async () => {
    const maxClients = 3;
    const node = await createNode({ identity: Identity.generate(), host: '127.0.0.1', port: 0, logger: quiet, gateway: { maxClients } });
    nodes.push(node);
    assert.equal(node.pool.maxConnections, maxClients + MESH_CONNECTION_MARGIN);
    const peer = await createNode({ identity: Identity.generate(), host: '127.0.0.1', port: 0, logger: quiet });
    nodes.push(peer);
    for (let i = 0; i < maxClients; i++) clients.push(await MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 5000 }));
    assert.equal(node.gateway.clients, maxClients);
    await assert.rejects(MaculaClient.connect({ node: node.listenAddress!, timeoutMs: 5000 }), { code: 'MACULA_ERR_TOO_MANY_CLIENTS' });
    const rttMs = await node.ping(peer.listenAddress!);
    assert.ok(rttMs >= 0);
  });

  it('refuses a connection limit that leaves no room for mesh peers, naming both limits', () => {
    assert.throws(
      () => new MeshNode(Identity.generate(), { port: 0, logger: quiet, pool: { maxConnections: 50 }, gateway: { maxClients: 50 } }),
      (err: unknown) => err instanceof ConfigError && /maxConnections 50 leaves no room for mesh peers once 50 light clients/.test(err.message),
    );
    // Without maxClients, the default of 10,000 counts.
    assert.throws(() => new MeshNode(Identity.generate(), { port: 0, logger: quiet, pool: { maxConnections: 1000 } }), ConfigError);
    const ok = new MeshNode(Identity.generate(), { port: 0, logger: quiet, pool: { maxConnections: 60 }, gateway: { maxClients: 50 } });
    assert.equal(ok.pool.maxConnections, 60);
  });
});

describe('idle timeouts', () => {
  it("the QUIC idle timeout and the pool's reaper are separate options", () => {
    const node = new MeshNode(Identity.generate(), { port: 0, logger: quiet, transport: { idleTimeoutMs: 10_000 }, pool: { idleTimeoutMs: 120_000 } });
    assert.equal(node.pool.idleTimeoutMs, 120_000);
    const defaults = new MeshNode(Identity.generate(), { port: 0, logger: quiet, transport: { idleTimeoutMs: 10_000 } });
    assert.equal(defaults.pool.idleTimeoutMs, 5 * 60_000, 'the QUIC idle timeout does not set the reaper');
  });
});
