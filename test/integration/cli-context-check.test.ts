/**
 * `macula context` (saved connection settings and their precedence) and
 * `macula check` (one Nagios-style line and exit code), with real processes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaculaProcess, runMacula, startNode, unusedUdpPort, type StartedNode } from '../helpers/cli.js';

describe('contexts and check', { timeout: 120_000 }, () => {
  let dir: string;
  let node: StartedNode;
  const procs: MaculaProcess[] = [];
  let env: NodeJS.ProcessEnv;
  const macula = (args: string[], extra: NodeJS.ProcessEnv = {}) => runMacula(args, { env: { ...env, ...extra } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'macula-ctx-'));
    // No MACULA_NODE/REALM from the caller's environment: precedence is what is tested here.
    env = { MACULA_CONFIG_DIR: join(dir, 'config'), MACULA_NODE: undefined, MACULA_REALM: undefined, MACULA_CONTEXT: undefined };
    node = await startNode(join(dir, 'n1'), ['--realm', 'blue']);
    procs.push(node.proc);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('a saved and selected context is used by client commands, in a private file', async () => {
    const add = await macula(['context', 'add', 'blue', '--node', node.address, '--realm', 'blue']);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'context blue saved and selected\n');
    assert.equal((await stat(join(dir, 'config', 'contexts.json'))).mode & 0o777, 0o600);
    const pub = await macula(['pub', 'a.b', 'hello']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stdout, 'published 1 message to a.b\n');
    const ls = await macula(['context', 'ls']);
    assert.match(ls.stdout, /^\*\s+blue\s+127\.0\.0\.1:\d+\s+blue/m);
  });

  it('flags, then the environment, override the context; show says where each value came from', async () => {
    await macula(['context', 'add', 'elsewhere', '--node', '127.0.0.1:1', '--connect-timeout', '700']);
    const shown = await macula(['context', 'show', '--context', 'elsewhere', '--realm', 'red'], { MACULA_NODE: node.address });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`--node\\s+${node.address.replace(/\./g, '\\.')}\\s+environment \\(MACULA_NODE\\)`));
    assert.match(shown.stdout, /--realm\s+red\s+flag/);
    assert.match(shown.stdout, /--connect-timeout\s+700\s+context elsewhere/);
    assert.match(shown.stdout, /--credential\s+unset/);
    // the selected context still applies where nothing else is given
    const sel = await macula(['context', 'show']);
    assert.match(sel.stdout, /--realm\s+blue\s+context blue/);
    const missing = await macula(['stats', '--context', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no context named "nope" \(known: blue, elsewhere\)/);
    const bad = await macula(['context', 'add', 'x', '--node', '127.0.0.1:99999']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--node/);
    const rmd = await macula(['context', 'rm', 'elsewhere']);
    assert.equal(rmd.stdout, 'context elsewhere removed\n');
  });

  it('check prints OK with perfdata and exits 0 for a healthy node', async () => {
    const r = await macula(['check', '--node', node.address, '--realm', 'blue', '--interval', '200']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^MACULA OK - rtt [\d.]+ ms, 0 peers, [\d.]+ drops\/s, joined \| rtt=[\d.]+ms;50;200 peers=0;;0 drops=[\d.]+\/s;10\n$/);
    const json = await macula(['check', '--node', node.address, '--realm', 'blue', '--interval', '200', '--json']);
    const v = JSON.parse(json.stdout) as { status: string; rttMs: number; peers: number; joined: boolean };
    assert.equal(v.status, 'OK');
    assert.ok(v.rttMs > 0 && v.joined);
  });

  it('check is CRITICAL below --min-peers and when the node cannot be reached, WARNING when not joined', async () => {
    const few = await macula(['check', '--node', node.address, '--realm', 'blue', '--interval', '100', '--min-peers', '1']);
    assert.equal(few.code, 2);
    assert.match(few.stdout, /^MACULA CRITICAL - 0 peers < 1 /);
    const down = await macula(['check', '--node', `127.0.0.1:${await unusedUdpPort()}`, '--connect-timeout', '1000']);
    assert.equal(down.code, 2);
    assert.match(down.stdout, /^MACULA CRITICAL - cannot reach a node at /);
    const lonely = await startNode(join(dir, 'n2'), ['--bootstrap', `127.0.0.1:${await unusedUdpPort()}`]);
    procs.push(lonely.proc);
    const notJoined = await macula(['check', '--node', lonely.address, '--realm', 'default', '--interval', '100']);
    assert.equal(notJoined.code, 1, notJoined.stdout);
    assert.match(notJoined.stdout, /^MACULA WARNING - not joined to the mesh /);
  });
});
