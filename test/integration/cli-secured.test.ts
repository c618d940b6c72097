/**
 * The README's "Securing a realm" walkthrough, command by command, with
 * real `macula` processes: create a realm, issue node and client
 * credentials, start two nodes, pub/sub/serve/call within permissions,
 * refusals outside them, revocation of a live subscriber, and a credential
 * renewed with SIGHUP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaculaProcess, runMacula, startNode, type StartedNode } from '../helpers/cli.js';

const procs: MaculaProcess[] = [];
let dir: string;

async function ok(args: string[]): Promise<string> {
  const r = await runMacula(args);
  assert.equal(r.code, 0, `macula ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('securing a realm from the shell', { timeout: 120_000 }, () => {
  let realmKey: string;
  let n1: StartedNode;
  let n2: StartedNode;
  const f = (name: string) => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'macula-secured-'));
    const line = await ok(['realm', 'create', 'alpha', '--out', f('auth')]);
    const m = /^realm alpha ([0-9a-f]{64})\n$/.exec(line);
    assert.ok(m, line);
    realmKey = m[1]!;
    for (const n of ['n1', 'n2']) {
      assert.match(await ok(['id', '--data-dir', f(n)]), /^public key {2}[0-9a-f]{64}\nnode ID {5}[0-9a-f]{64}\n$/);
      await ok(['cred', 'issue', '--authority', f('auth/authority.key'), '--role', 'node', '--subject', f(n), '--out', f(`${n}.cred`)]);
    }
    const issue = (out: string, ...perms: string[]) => ok(['cred', 'issue', '--authority', f('auth/authority.key'), '--role', 'client', ...perms, '--out', f(out)]);
    await issue('sub.creds', '--sub', 'sensors.#');
    await issue('pub.creds', '--pub', 'sensors.#');
    await issue('math.creds', '--serve', 'math.*');
    await issue('caller.creds', '--call', 'math.*');
    await issue('admin.creds');
    const secured = (n: string) => ['--realm', 'alpha', '--realm-key', realmKey, '--credential', f(`${n}.cred`)];
    n1 = await startNode(f('n1'), secured('n1'));
    procs.push(n1.proc);
    n2 = await startNode(f('n2'), [...secured('n2'), '--bootstrap', n1.address]);
    procs.push(n2.proc);
    await n2.proc.waitFor(/joined the mesh/);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('keys and credentials are private files that are never overwritten', async () => {
    for (const file of ['auth/authority.key', 'sub.creds', 'n1.cred']) assert.equal((await stat(f(file))).mode & 0o777, 0o600, file);
    const again = await runMacula(['realm', 'create', 'alpha', '--out', f('auth')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /never overwritten/);
    const show = await ok(['cred', 'show', f('sub.creds')]);
    assert.match(show, /realm {8}alpha\nrole {9}client/);
    assert.match(show, /sub {10}allow sensors\.#/);
    assert.match(show, /pub {10}allow \(nothing\)/);
  });

  it('start says whether the realm is secured', () => {
    assert.match(n1.proc.stdout, /realm {5}alpha \(secured by [0-9a-f]{12}…; credential valid until /);
    assert.doesNotMatch(n1.proc.stderr, /is open/);
  });

  it('pub and sub within their permissions work across nodes; outside them they are refused with the permission named', async () => {
    const sub = new MaculaProcess(['sub', 'sensors.#', '--count', '1', '--node', n2.address, '--credential', f('sub.creds')]);
    procs.push(sub);
    await sub.waitForStderr(/subscribed to sensors\.#/);
    const pub = await runMacula(['pub', 'sensors.t1', '21.5', '--node', n1.address, '--credential', f('pub.creds')]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    assert.equal(sub.stdout, 'sensors.t1 21.5\n');

    const denied = await runMacula(['pub', 'payroll.secret', 'x', '--node', n1.address, '--credential', f('pub.creds')]);
    assert.equal(denied.code, 1);
    // The refusal of a one-way publish names it (#1 of this command) and the permission.
    assert.match(denied.stderr, /^macula: publish #1 to "payroll\.secret" failed: not permitted: pub "payroll\.secret" needs the "pub" permission/);
    const everything = await runMacula(['sub', '#', '--node', n1.address, '--credential', f('sub.creds')]);
    assert.equal(everything.code, 1);
    assert.match(everything.stderr, /"sub" permission/);
    const stranger = await runMacula(['sub', '#', '--node', n1.address, '--realm', 'alpha']);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /not admitted: this realm is secured/);
  });

  it('serve and call within their permissions', async () => {
    const script = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);process.stdout.write(JSON.stringify(a.x+a.y))})";
    const serve = new MaculaProcess(['serve', 'math.add', '--node', n1.address, '--credential', f('math.creds'), '--', process.execPath, '-e', script]);
    procs.push(serve);
    await serve.waitForStderr(/serving math\.add/);
    const call = await runMacula(['call', 'math.add', '{"x": 2, "y": 3}', '--node', n2.address, '--credential', f('caller.creds')]);
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout.trim(), '5');
    const squat = await runMacula(['serve', 'payroll.get', '--node', n2.address, '--credential', f('math.creds'), '--', process.execPath, '-e', script]);
    assert.equal(squat.code, 1);
    assert.match(squat.stderr, /"serve" permission/);
  });

  it('cred revoke cuts a live subscriber and keeps it out', async () => {
    const sub = new MaculaProcess(['sub', 'sensors.#', '--node', n2.address, '--credential', f('sub.creds')]);
    procs.push(sub);
    await sub.waitForStderr(/subscribed to sensors\.#/);
    const t0 = Date.now();
    const revoke = await runMacula(['cred', 'revoke', f('sub.creds'), '--authority', f('auth/authority.key'), '--node', n1.address, '--credential', f('admin.creds')]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, /^revoked [0-9a-f]{32}: list \d+ with 1 entries\n$/);
    const exit = await sub.waitForExit(15_000);
    assert.equal(exit.code, 1);
    assert.ok(Date.now() - t0 < 15_000);
    const again = await runMacula(['sub', 'sensors.#', '--node', n1.address, '--credential', f('sub.creds')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /revoked/);
  });

  it('SIGHUP re-reads a renewed node credential without a restart', async () => {
    await ok(['cred', 'issue', '--authority', f('auth/authority.key'), '--role', 'node', '--subject', f('n1'), '--ttl', '90d', '--out', f('n1.new')]);
    await rename(f('n1.new'), f('n1.cred'));
    n1.proc.child.kill('SIGHUP');
    const [, until] = await n1.proc.waitForStderr(/credential reloaded from .*; valid until (\S+)/);
    const days = (Date.parse(until!) - Date.now()) / 86_400_000;
    assert.ok(days > 89 && days <= 90, `${days} days`);
    const pub = await runMacula(['pub', 'sensors.t1', 'still here', '--node', n1.address, '--credential', f('pub.creds')]);
    assert.equal(pub.code, 0, pub.stderr);
  });
});
