/**
 * Slowloris against the admin server: 80 sockets from 127.0.0.1 trickle
 * partial headers (and reconnect when dropped) while /live is probed
 * every 200 ms from the same address. Every probe must be answered.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { AdminServer } from '../../src/metrics/admin-server.js';
import { MeshNode } from '../../src/node/mesh-node.js';

const ATTACK_SOCKETS = 80;
const ATTACK_MS = 15_000;
const PROBE_EVERY_MS = 200;
const PROBE_TIMEOUT_MS = 3_000;

/** One probe on a fresh connection: the status and how long the answer took (status 0: no answer). */
function probe(port: number, path: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
  });
}

/** Keeps `n` sockets sending a header line every 500 ms and never finishing; reopens the ones that get closed. */
function slowloris(port: number, n: number): { stop(): void; opened(): number } {
  let running = true;
  let opened = 0;
  const sockets = new Set<Socket>();
  const open = (): void => {
    if (!running) return;
    opened++;
    const s = connect(port, '127.0.0.1');
    sockets.add(s);
    let line = 0;
    let timer: NodeJS.Timeout | undefined;
    s.on('connect', () => {
      s.write('GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      timer = setInterval(() => s.write(`X-Slow-${line++}: ${'z'.repeat(8)}\r\n`), 500);
    });
    s.on('error', () => undefined);
    s.resume(); // read what the server answers (a 408), so its close is seen
    s.on('close', () => {
      clearInterval(timer);
      sockets.delete(s);
      setTimeout(open, 50);
    });
  };
  for (let i = 0; i < n; i++) open();
  return {
    stop() {
      running = false;
      for (const s of sockets) s.destroy();
    },
    opened: () => opened,
  };
}

describe('admin server under a slowloris', { timeout: 60_000 }, () => {
  let node: MeshNode;
  let admin: AdminServer;

  before(async () => {
    node = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: { warn: () => {} } });
    await node.start();
    admin = new AdminServer({ node }, { port: 0 });
    await admin.listen();
  });
  after(async () => {
    await admin?.close();
    await node?.stop();
  });

  it('answers every /live probe while 80 sockets trickle partial headers', async (t) => {
    const port = admin.address!.port;
    const attack = slowloris(port, ATTACK_SOCKETS);
    const results: { status: number; ms: number }[] = [];
    try {
      // Let the attack take every slot first.
      const deadline = Date.now() + 10_000;
      while (admin.connectionStats().open < admin.maxConnectionsPerSource && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const end = performance.now() + ATTACK_MS;
      const pending: Promise<void>[] = [];
      while (performance.now() < end) {
        pending.push(probe(port, '/live').then((r) => void results.push(r)));
        await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
      }
      await Promise.all(pending);
      const health = await probe(port, '/health');
      assert.ok(health.status === 200 || health.status === 503, `/health answered during the attack (${health.status})`);
    } finally {
      attack.stop();
    }
    const answered = results.filter((r) => r.status === 200);
    const ms = answered.map((r) => r.ms).sort((a, b) => a - b);
    const stats = admin.connectionStats();
    t.diagnostic(
      `probes ${results.length}, answered ${answered.length}; latency p50 ${ms[Math.floor(ms.length / 2)]?.toFixed(1)} ms, ` +
        `p99 ${ms[Math.floor(ms.length * 0.99)]?.toFixed(1)} ms, max ${ms.at(-1)?.toFixed(1)} ms; attack sockets opened ${attack.opened()}; ` +
        `admin refusals ${JSON.stringify(stats.refused)}`,
    );
    assert.ok(results.length >= 40, `${results.length} probes`);
    assert.equal(answered.length, results.length, `every probe answered: ${JSON.stringify(results.filter((r) => r.status !== 200))}`);
    assert.ok(attack.opened() > ATTACK_SOCKETS, 'the attacker had sockets closed and reopened them');
    assert.ok(stats.refused.evicted + stats.refused.timeout > 0, 'slow sockets were closed and counted');
    assert.ok(stats.open <= stats.maxConnections);
  });

  it('bounds sockets per source and closes headers that take too long', async () => {
    const small = new AdminServer({ node }, { port: 0, maxConnectionsPerSource: 3, headersTimeoutMs: 500, timeoutCheckMs: 100 });
    await small.listen();
    try {
      const port = small.address!.port;
      const sockets = Array.from({ length: 5 }, () => connect(port, '127.0.0.1'));
      const closed = sockets.map((s) => new Promise<number>((resolve) => {
        const t0 = performance.now();
        s.on('error', () => undefined);
        s.resume();
        s.on('close', () => resolve(performance.now() - t0));
      }));
      for (const s of sockets) s.write('GET /live HTTP/1.1\r\n');
      const times = await Promise.all(closed);
      // Two were evicted for the later ones; the last three timed out after 0.5 s (checked every 0.1 s).
      const s = small.connectionStats();
      assert.equal(s.refused.evicted, 2, JSON.stringify(s));
      assert.equal(s.refused.timeout, 3, JSON.stringify(s));
      assert.ok(Math.max(...times) < 5_000, `closed after ${Math.round(Math.max(...times))} ms`);
      assert.equal(s.open, 0);
      assert.equal((await probe(port, '/live')).status, 200);
    } finally {
      await small.close();
    }
  });
});
