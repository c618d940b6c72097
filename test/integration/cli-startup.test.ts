/**
 * `macula start` with a data dir it cannot use fails at once with one line,
 * and SIGTERM / SIGINT stop it at any moment of its start-up.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { DEFAULT_STOP_GRACE_MS } from '../../src/cli/signals.js';
import { MaculaProcess, unusedUdpPort } from '../helpers/cli.js';

const dirs: string[] = [];
const procs: MaculaProcess[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'macula-startup-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function start(args: string[]): MaculaProcess {
  const p = new MaculaProcess(['start', '--host', '127.0.0.1', '--port', '0', '--status-interval', '0', ...args]);
  procs.push(p);
  return p;
}

describe('macula start: start-up', { timeout: 90_000 }, () => {
  it('fails at once with one line and exit 1 when the data dir cannot be created or used', async () => {
    const file = join(await tempDir(), 'a-file');
    await writeFile(file, 'not a directory');
    const cases: [string, RegExp][] = [
      ['/proc/macula-test/data', /^macula: cannot create the node key \/proc\/macula-test\/data\/node\.key: ENOENT.*--data-dir/],
      [file, /^macula: cannot read the node key .*a-file\/node\.key: ENOTDIR.*--data-dir\n$/],
      [join(file, 'sub'), /^macula: cannot read the node key .*ENOTDIR/],
    ];
    for (const [dir, pattern] of cases) {
      const t0 = performance.now();
      const p = start(['--data-dir', dir]);
      const exit = await p.waitForExit(10_000);
      const ms = performance.now() - t0;
      assert.equal(exit.code, 1, `${dir}: ${p.stderr}`);
      assert.match(p.stderr, pattern);
      assert.equal(p.stderr.split('\n').length, 2, `one line: ${p.stderr}`);
      assert.equal(p.stdout, '');
      assert.ok(ms < 10_000, `${dir}: exited after ${Math.round(ms)} ms`);
    }
  });

  it('stops on the first SIGTERM or SIGINT at any moment of start-up', async () => {
    // A bootstrap node that never answers keeps the node joining for a while.
    const dead = `127.0.0.1:${await unusedUdpPort()}`;
    const delays = [0, 100, 250, 500, 1000];
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      for (const delay of delays) {
        const p = start(['--data-dir', await tempDir(), '--bootstrap', dead]);
        await new Promise((r) => setTimeout(r, delay));
        p.kill(signal);
        const exit = await p.waitForExit(10_000);
        // Before the handlers exist Node's default action ends the process; after, the clean stop exits 0.
        assert.ok(exit.code === 0 || exit.signal === signal, `${signal} after ${delay} ms: ${JSON.stringify(exit)} ${p.stderr}`);
        assert.doesNotMatch(p.stderr, /did not stop within/);
      }
    }
    // Once it is joining, the stop is the clean one.
    const p = start(['--data-dir', await tempDir(), '--bootstrap', dead]);
    await p.waitFor(/data dir/);
    p.kill('SIGTERM');
    assert.equal((await p.waitForExit(10_000)).code, 0, p.stderr);
    assert.match(p.stdout, /stopped\n$/);
  });

  it('reports RSS against --max-rss in /health: 503 past it, usage error for a bad size', async () => {
    const p = start(['--data-dir', await tempDir(), '--admin-port', '0', '--max-rss', '1M']);
    const [, url] = await p.waitFor(/admin\s+(http:\/\/127\.0\.0\.1:\d+)/);
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 503);
    const health = (await res.json()) as { status: string; checks: { budgets: { status: string; fullest: string; budgets: { rss: { limit: number } } } } };
    assert.equal(health.status, 'fail');
    assert.equal(health.checks.budgets.status, 'fail');
    assert.equal(health.checks.budgets.fullest, 'rss');
    assert.equal(health.checks.budgets.budgets.rss.limit, 1024 * 1024);
    assert.equal((await fetch(`${url}/live`)).status, 200, 'alive, if not healthy');
    p.kill('SIGTERM');
    assert.equal((await p.waitForExit()).code, 0, p.stderr);

    const big = start(['--data-dir', await tempDir(), '--admin-port', '0', '--max-rss', '64G']);
    const [, bigUrl] = await big.waitFor(/admin\s+(http:\/\/127\.0\.0\.1:\d+)/);
    const ok = (await (await fetch(`${bigUrl}/health`)).json()) as { checks: { budgets: { status: string; budgets: Record<string, unknown> } } };
    assert.equal(ok.checks.budgets.status, 'ok');
    assert.deepEqual(Object.keys(ok.checks.budgets.budgets).sort(), ['dhtStoreBytes', 'dhtStoreRecords', 'frameBytes', 'gatewayClients', 'preHelloConnections', 'rss']);
    big.kill('SIGTERM');
    assert.equal((await big.waitForExit()).code, 0, big.stderr);

    for (const bad of ['0', 'lots', '-5', '1X']) {
      const r = start(['--data-dir', await tempDir(), '--max-rss', bad]);
      assert.equal((await r.waitForExit()).code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /expected a size in bytes greater than 0/);
    }
  });

  it('cuts short a command that cannot stop cleanly, once the grace after the signal is over', async () => {
    // A UDP port that swallows every datagram: the QUIC handshake never completes.
    const hole = createSocket('udp4');
    await new Promise<void>((resolve) => hole.bind(0, '127.0.0.1', resolve));
    try {
      const sub = new MaculaProcess(['sub', 'a.#', '--node', `127.0.0.1:${hole.address().port}`, '--connect-timeout', '600000']);
      procs.push(sub);
      // Its first handshake packet arriving means it is connecting, with its signal handlers in place.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sub sent no packet within 15 s\nstderr: ${sub.stderr}`)), 15_000);
        hole.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const t0 = performance.now();
      sub.kill('SIGTERM');
      const exit = await sub.waitForExit(DEFAULT_STOP_GRACE_MS + 10_000);
      const ms = performance.now() - t0;
      assert.equal(exit.code, 143, sub.stderr);
      assert.match(sub.stderr, new RegExp(`did not stop within ${DEFAULT_STOP_GRACE_MS} ms of SIGTERM; exiting now`));
      assert.ok(ms >= DEFAULT_STOP_GRACE_MS - 500 && ms < DEFAULT_STOP_GRACE_MS + 10_000, `exited ${Math.round(ms)} ms after the signal`);
    } finally {
      hole.close();
    }
  });
});
