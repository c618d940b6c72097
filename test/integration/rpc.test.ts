import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MeshNode } from '../../src/node/mesh-node.js';
import { MaculaError } from '../../src/util/errors.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

describe('registry and RPC over a 10-node QUIC testnet', () => {
  let net: Testnet;
  let nodes: MeshNode[];
  const served = new Map<string, number>();

  before(async () => {
    net = await createTestnet(10, { transport: 'quic', registry: { cacheTtlMs: 500, negativeCacheTtlMs: 200 } });
    nodes = net.nodes;
    for (const p of [nodes[1]!, nodes[2]!, nodes[3]!]) {
      await p.register('echo', (args) => {
        served.set(p.nodeId, (served.get(p.nodeId) ?? 0) + 1);
        return { from: p.nodeId, args };
      });
    }
    await nodes[4]!.register('never', () => new Promise(() => {}));
    await nodes[5]!.register('fails', () => {
      throw new MaculaError('MACULA_ERR_OUT_OF_STOCK', 'no more widgets');
    });
  });
  after(() => net.destroy());

  it('finds the providers of a service from every node', async () => {
    for (const n of nodes) {
      await waitFor(async () => (await n.lookup('rpc:echo')).length === 3, 10_000, `node ${n.nodeId.slice(0, 8)} sees 3 providers`);
    }
    const local = await nodes[1]!.lookup('rpc:echo');
    assert.equal(local[0]!.local, true, 'a provider lists itself first');
  });

  it('calls from every node', async () => {
    for (const n of nodes) {
      const r = (await n.call('echo', { hello: n.nodeId.slice(0, 8) })) as { from: string; args: { hello: string } };
      assert.equal(r.args.hello, n.nodeId.slice(0, 8));
      assert.ok([nodes[1], nodes[2], nodes[3]].some((p) => p!.nodeId === r.from));
    }
  });

  it('spreads calls across providers round-robin', async () => {
    const caller = nodes[8]!;
    const from = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = (await caller.call('echo', i)) as { from: string };
      from.set(r.from, (from.get(r.from) ?? 0) + 1);
    }
    assert.equal(from.size, 3);
    for (const count of from.values()) assert.equal(count, 10);
  });

  it('times out a handler that never answers, with a typed error', async () => {
    const t0 = Date.now();
    await assert.rejects(nodes[7]!.call('never', null, { timeout: 500 }), { code: 'MACULA_ERR_TIMEOUT' });
    assert.ok(Date.now() - t0 < 3000);
  });

  it('carries remote errors back with their code and message', async () => {
    await assert.rejects(nodes[6]!.call('fails', {}), (err: unknown) => {
      const e = err as MaculaError;
      assert.equal(e.code, 'MACULA_ERR_OUT_OF_STOCK');
      assert.match(e.message, /no more widgets/);
      assert.doesNotMatch(e.message, /\n\s+at /);
      return true;
    });
  });

  it('reports a procedure nobody provides, and bad arguments', async () => {
    await assert.rejects(nodes[6]!.call('nobody-serves-this', {}), { code: 'MACULA_ERR_NO_PROVIDERS' });
    await assert.rejects(nodes[6]!.call('echo', { f: () => 1 }), { code: 'MACULA_ERR_BAD_ARGS' });
  });

  it('fails over when a provider dies, and the dead registration expires', async () => {
    const victim = nodes[1]!;
    await net.kill(victim);
    const callers = nodes.filter((n) => n !== victim && n !== nodes[2] && n !== nodes[3]);
    for (const c of callers) {
      for (let i = 0; i < 4; i++) {
        const r = (await c.call('echo', i, { timeout: 5000 })) as { from: string };
        assert.notEqual(r.from, victim.nodeId);
      }
    }
  });

  it('a provider that stops without withdrawing disappears within TTL + cache TTL', async () => {
    const extra = await net.add();
    await extra.advertise('short-lived', { v: 1 }, { ttlMs: 3000 });
    const watcher = nodes[9]!;
    await waitFor(async () => (await watcher.lookup('short-lived')).length === 1, 5000, 'registration visible');
    const t0 = Date.now();
    await net.kill(extra);
    await waitFor(async () => (await watcher.lookup('short-lived')).length === 0, 3000 + 500 + 3000, 'registration expired');
    assert.ok(Date.now() - t0 <= 3000 + 500 + 3000);
  });

  it('a clean stop withdraws registrations at once', async () => {
    const extra = await net.add();
    await extra.advertise('clean', {}, { ttlMs: 300_000 });
    const watcher = nodes[9]!;
    await waitFor(async () => (await watcher.lookup('clean')).length === 1, 5000, 'registration visible');
    await extra.stop();
    watcher.registry.invalidate('clean');
    assert.equal((await watcher.lookup('clean')).length, 0);
  });
});
