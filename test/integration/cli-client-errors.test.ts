/**
 * How client commands fail: an unreachable node, a node at its client limit,
 * usage errors. One line on stderr, the documented exit code, no stack.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MaculaProcess, runMacula, startNode, unusedUdpPort } from '../helpers/cli.js';

const dirs: string[] = [];
const procs: MaculaProcess[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'macula-cli-err-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('macula client commands: failures', { timeout: 90_000 }, () => {
  it('reports an unreachable node in one line, exit code 1', async () => {
    const port = await unusedUdpPort();
    for (const args of [['stats'], ['call', 'x'], ['sub', 'a.b'], ['pub', 'a.b', 'hi'], ['peers'], ['lookup', 'x']]) {
      const r = await runMacula([...args, '--node', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.equal(r.stderr, `macula: cannot reach a node at 127.0.0.1:${port} — is \`macula start\` running?\n`);
      assert.equal(r.stdout, '');
    }
    // The default node, through MACULA_NODE.
    const env = await runMacula(['stats'], { env: { MACULA_NODE: `127.0.0.1:${port}` } });
    assert.equal(env.code, 1);
    assert.match(env.stderr, new RegExp(`cannot reach a node at 127\\.0\\.0\\.1:${port} `));
  });

  it('refuses a TOKIO_WORKER_THREADS the QUIC stack cannot use in one line, exit code 1', async () => {
    const port = await unusedUdpPort();
    const r = await runMacula(['pub', 'a.b', 'hi', '--node', `127.0.0.1:${port}`], { env: { TOKIO_WORKER_THREADS: 'many' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^macula: TOKIO_WORKER_THREADS must be a whole number of QUIC worker threads from 1 to 1024, got "many"; unset it for the default \(one fewer than the cores, here \d+\)\n$/);
    assert.equal(r.stdout, '');
  });

  it('gives up after --connect-timeout when nothing answers at all', async () => {
    // A port that drops datagrams silently: our own bound UDP socket that never replies.
    const { createSocket } = await import('node:dgram');
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    try {
      const r = await runMacula(['stats', '--node', `127.0.0.1:${silent.address().port}`, '--connect-timeout', '500']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^macula: cannot reach a node at 127\.0\.0\.1:\d+ — is `macula start` running\?\n$/);
    } finally {
      silent.close();
    }
  });

  it('refuses clients past --max-clients with a clear message', async () => {
    const n = await startNode(await tempDir(), ['--max-clients', '1', '--status-interval', '0']);
    procs.push(n.proc);
    const sub = new MaculaProcess(['sub', 'held.#', '--node', n.address]);
    procs.push(sub);
    await sub.waitForStderr(/subscribed to held\.#/);
    const refused = await runMacula(['stats', '--node', n.address]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, 'macula: this node serves its maximum of 1 clients; try another node or raise --max-clients\n');
    const pub = await runMacula(['pub', 'held.x', 'hi', '--node', n.address]);
    assert.equal(pub.code, 1);
    assert.match(pub.stderr, /maximum of 1 clients/);

    sub.kill('SIGINT');
    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    // The slot is free as soon as the node sees the connection close.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await runMacula(['stats', '--json', '--node', n.address]);
      if (r.code === 0) {
        assert.ok((JSON.parse(r.stdout) as { gateway: { refused: number } }).gateway.refused >= 2);
        break;
      }
      if (Date.now() > deadline) assert.fail(`still refused: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    n.proc.kill('SIGTERM');
    assert.equal((await n.proc.waitForExit()).code, 0);
  });

  it('refuses a node of another realm', async () => {
    const n = await startNode(await tempDir(), ['--realm', 'blue', '--status-interval', '0']);
    procs.push(n.proc);
    const r = await runMacula(['stats', '--node', n.address, '--realm', 'green']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^macula: this node does not serve realm "green"/);
    const ok = await runMacula(['stats', '--json', '--node', n.address], { env: { MACULA_REALM: 'blue' } });
    assert.equal(ok.code, 0, ok.stderr);
    n.proc.kill('SIGTERM');
    await n.proc.waitForExit();
  });

  it('exits 2 on usage errors, with the usage hint', async () => {
    const cases: [string[], RegExp][] = [
      [['call', 'p', '{"x":'], /not valid JSON/],
      [['pub'], /missing required argument 'topic'/],
      [['sub', 'a', '--count', 'many'], /whole number/],
      [['bench', 'everything'], /Allowed choices are pubsub, rpc, all/],
      [['stats', '--node', 'nohost:99999'], /invalid address/],
      [['serve', 'p'], /missing required argument 'command'/],
      [['pub', 'a.b', '{oops', '--json'], /the message is not valid JSON/],
      [['start', '--log-level', 'loud'], /Allowed choices are error, warn, info, debug/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runMacula(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('prints help for every command', async () => {
    for (const cmd of ['start', 'pub', 'sub', 'call', 'serve', 'lookup', 'peers', 'stats', 'bench']) {
      const r = await runMacula([cmd, '--help']);
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`Usage: macula ${cmd}`));
      if (cmd !== 'start') assert.match(r.stdout, /--node <host:port>.*\n.*env: MACULA_NODE/);
    }
  });
});
