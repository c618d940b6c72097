import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parsePrometheusText, sampleValue } from '../../src/metrics/exposition.js';
import { MaculaProcess, runMacula } from '../helpers/cli.js';

const dirs: string[] = [];
const procs: MaculaProcess[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'macula-cli-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('macula start', () => {
  it('prints its node ID and address, keeps its identity, and stops cleanly on SIGINT and SIGTERM', async () => {
    const dir = await tempDir();
    const first = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir]);
    procs.push(first);
    const [, nodeId] = await first.waitFor(/macula node ([0-9a-f]{64}) \(new identity\)/);
    const [, port] = await first.waitFor(/listening 127\.0\.0\.1:(\d+)\/udp/);
    assert.ok(Number(port) > 0);
    first.kill('SIGINT');
    const exit1 = await first.exited;
    assert.equal(exit1.code, 0, first.stderr);
    assert.match(first.stdout, /stopped/);

    const second = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1'], { MACULA_DATA_DIR: dir });
    procs.push(second);
    const [, again] = await second.waitFor(/macula node ([0-9a-f]{64})\n/);
    assert.equal(again, nodeId, 'same data dir, same identity');
    second.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
  });

  it('joins a mesh through --bootstrap (and MACULA_BOOTSTRAP), and warns when nobody answers', async () => {
    const a = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', await tempDir()]);
    procs.push(a);
    const [, port] = await a.waitFor(/listening 127\.0\.0\.1:(\d+)\/udp/);
    await a.waitFor(/first node of a new mesh/);
    const b = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', await tempDir(), '--bootstrap', `127.0.0.1:${port}`]);
    procs.push(b);
    await b.waitFor(/joined the mesh: [1-9]\d* nodes? in the routing table/);
    const c = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', await tempDir()], { MACULA_BOOTSTRAP: `127.0.0.1:${port}` });
    procs.push(c);
    await c.waitFor(/joined the mesh/);
    const lonely = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', await tempDir(), '--bootstrap', '127.0.0.1:9']);
    procs.push(lonely);
    await lonely.waitFor(/no bootstrap node answered yet; retrying/, 20_000);
    assert.match(lonely.stderr, /warning: .*127\.0\.0\.1:9/);
    for (const p of [a, b, c, lonely]) p.kill('SIGTERM');
    for (const p of [a, b, c, lonely]) assert.equal((await p.exited).code, 0);
  });

  it('serves /metrics, /health, /ready, /live and /stats on the admin port (127.0.0.1)', async () => {
    const a = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', await tempDir(), '--admin-port', '0']);
    procs.push(a);
    const [, url] = await a.waitFor(/admin\s+(http:\/\/127\.0\.0\.1:\d+)/);
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 200);
    const families = parsePrometheusText(await metrics.text());
    for (const name of ['macula_up', 'macula_pool_connections_open', 'macula_dht_routing_table_size', 'macula_rpc_calls_total', 'macula_pubsub_fanout_queue_depth', 'macula_protocol_errors_total', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(families.has(name), `${name} is exported`);
    }
    assert.equal(sampleValue(families, 'macula_up'), 1);
    const health = (await (await fetch(`${url}/health`)).json()) as { status: string; checks: Record<string, unknown> };
    assert.ok(['ok', 'degraded'].includes(health.status));
    assert.ok(JSON.stringify(health.checks.queueSaturation).includes('"fanoutQueue"'), 'the fan-out queue is part of the saturation check');
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    assert.equal((await fetch(`${url}/live`)).status, 200);
    const stats = (await (await fetch(`${url}/stats`)).json()) as Record<string, unknown>;
    for (const section of ['node', 'pool', 'dht', 'registry', 'rpc', 'pubsub', 'gateway']) assert.ok(section in stats, `/stats has ${section}`);
    a.kill('SIGTERM');
    assert.equal((await a.exited).code, 0);
  });

  it('rejects a bad port with a usage error (exit 2)', async () => {
    const r = await runMacula(['start', '--port', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /port/i);
    assert.equal(r.stdout, '');
    const r2 = await runMacula(['start', '--port', '70000']);
    assert.equal(r2.code, 2);
  });

  it('rejects an unknown command or flag', async () => {
    const r = await runMacula(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command/);
    const r2 = await runMacula(['start', '--no-such-flag']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /unknown option/);
  });

  it('refuses a corrupt key file with one clear line (exit 1)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'node.key'), 'garbage');
    const r = await runMacula(['start', '--port', '0', '--data-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^macula: the node key .* is corrupt/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('refuses a port that is already taken', async () => {
    const dir = await tempDir();
    const a = new MaculaProcess(['start', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir]);
    procs.push(a);
    const [, port] = await a.waitFor(/listening 127\.0\.0\.1:(\d+)\/udp/);
    const r = await runMacula(['start', '--port', port!, '--host', '127.0.0.1', '--data-dir', await tempDir()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^macula: /);
    a.kill('SIGTERM');
    await a.exited;
  });

  it('prints help and version', async () => {
    const r = await runMacula(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /start/);
    const v = await runMacula(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });
});
