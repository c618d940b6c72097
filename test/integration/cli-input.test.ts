/**
 * Hostile or mistaken input to the client commands: topics, patterns and
 * realms are checked by their rules before anything connects (exit 2 with
 * the rule's message), numbers past a sane maximum are usage errors, and
 * `sub` shows a topic holding control characters on one line.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MAX_TIMEOUT_MS } from '../../src/cli/options.js';
import { CliProcesses, runMacula, unusedUdpPort } from '../helpers/cli.js';

const procs = new CliProcesses('macula-cli-input-');
after(() => procs.cleanup());

describe('macula client commands: input', { timeout: 90_000 }, () => {
  it('refuses bad topics, patterns, realms and numbers with exit 2 and the rule, before connecting', async () => {
    // Nothing listens here: a command that tried to connect would fail with exit 1 instead.
    const node = `127.0.0.1:${await unusedUdpPort()}`;
    const cases: [string[], RegExp][] = [
      [['sub', ''], /invalid pattern "": the pattern is empty/],
      [['sub', 'a.#.b'], /"#" at position 2 is not the last segment/],
      [['sub', 'a..b'], /invalid pattern "a\.\.b": .*empty/],
      [['pub', 'x'.repeat(257), 'hi'], /invalid topic "x{80}…": .*257 bytes/],
      [['pub', 'a.*', 'hi'], /wildcards are allowed only in subscription patterns/],
      [['stats', '--realm', 'r'.repeat(65)], /invalid realm: a realm name is 1\.\.64 characters long, got 65/],
      [['call', 'p', '--timeout', '99999999999'], new RegExp(`expected a whole number in 1\\.\\.${MAX_TIMEOUT_MS} ms`)],
      [['call', 'p', '--timeout', String(MAX_TIMEOUT_MS + 1)], /expected a whole number in 1\.\./],
      [['stats', '--connect-timeout', '3000000000'], /expected a whole number in 1\.\./],
      [['stats', '--interval', '99999999999'], /expected a whole number in 0\.\./],
      [['serve', 'p', '--timeout', '99999999999', '--', 'cat'], /expected a whole number in 1\.\./],
      [['serve', 'p', '--concurrency', '100000000', '--', 'cat'], /expected a whole number in 1\.\.10000\./],
      [['sub', 'a', '--count', '99999999999'], /expected a whole number in 1\.\.1000000000\./],
      [['pub', 'a', 'x', '--count', '0'], /expected a whole number in 1\.\./],
      [['pub', 'a', 'x', '--rate', '1e-9'], /messages per second in 0\.001\.\./],
    ];
    for (const [args, pattern] of cases) {
      const r = await runMacula([...args, '--node', node]);
      assert.equal(r.code, 2, `${args.join(' ').slice(0, 120)}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning|lost the connection|cannot reach/);
    }
    // The realm of MACULA_REALM is checked the same way.
    const env = await runMacula(['stats', '--node', node], { env: { MACULA_REALM: 'r'.repeat(65) } });
    assert.equal(env.code, 2, env.stderr);
    assert.match(env.stderr, /invalid realm/);
    // Refused nodes-side numbers too.
    const start = await runMacula(['start', '--status-interval', '99999999999', '--data-dir', '/nonexistent-unused']);
    assert.equal(start.code, 2, start.stderr);
    assert.match(start.stderr, /expected a whole number in 0\.\.86400 s/);
  });

  it('prints a topic or an error holding a newline on one line, so it cannot forge a second line', async () => {
    const n = await procs.node(['--status-interval', '0']);
    const sub = procs.spawn(['sub', 'alerts.#', '--count', '2', '--node', n.address]);
    await sub.waitForStderr(/subscribed to alerts\.#/);
    const forged = 'alerts.disk full\nalerts.auth.login admin';
    const pub1 = await runMacula(['pub', forged, 'ok', '--node', n.address]);
    assert.equal(pub1.code, 0, pub1.stderr);
    assert.equal(pub1.stdout, `published 1 message to ${JSON.stringify(forged)}\n`);
    const pub2 = await runMacula(['pub', 'alerts.bell', 'ring\u0007', '--node', n.address]);
    assert.equal(pub2.code, 0, pub2.stderr);
    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    assert.equal(sub.stdout, `"alerts.disk full\\nalerts.auth.login admin" ok\nalerts.bell "ring\\u0007"\n`);

    // An error message written by a remote handler is shown on one line, escapes and all.
    const serve = procs.spawn(['serve', 'forge', '--node', n.address, '--', process.execPath, '-e', 'process.stderr.write("bad\\nmacula: forged line\\u001b[31m"); process.exit(1)']);
    await serve.waitForStderr(/serving forge/);
    const call = await runMacula(['call', 'forge', '--node', n.address]);
    assert.equal(call.code, 1);
    assert.equal(call.stderr.split('\n').length, 2, `one line: ${JSON.stringify(call.stderr)}`);
    assert.match(call.stderr, /^macula: .*exited with code 1: bad\\nmacula: forged line\\u001b\[31m\n$/);
    serve.kill('SIGTERM');
    await serve.waitForExit();
    n.proc.kill('SIGTERM');
    assert.equal((await n.proc.waitForExit()).code, 0);
  });
});
