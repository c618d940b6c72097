/**
 * Nodes behind NATs, in network namespaces of the test's own making
 * (test/helpers/nat-topology.ts): three public nodes on one segment, and two
 * private nodes each behind its own router that masquerades (iptables
 * MASQUERADE). The private nodes are real `macula start` processes; the
 * public ones run the same MeshNode with their relay forwarder instrumented
 * (test/helpers/nat-node.ts) so that the test can scan what they forward.
 *
 * Private nodes must find themselves `private` and the public ones
 * `public`; a private node's service is called from a public node and from
 * the other private node; pub/sub works in every direction; `macula lookup`
 * shows the relayed address; no forwarded byte holds the plaintext marker
 * the payloads carry; a relay killed with SIGKILL is replaced within a
 * stated bound and calls work again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { NatTopology, natTopologyUnavailable, poll, type NatHost } from '../helpers/nat-topology.js';
import { NsMacula, runMaculaIn, type NsRunResult } from '../helpers/netns.js';

const NAT_NODE = fileURLToPath(new URL('../helpers/nat-node.js', import.meta.url));
const MARKER = 'nat-plaintext-marker-51d2e8';
/**
 * A killed relay is noticed when its connection times out (6 s of silence
 * for mesh nodes), then another is reserved and the records are put again:
 * 30 s leaves room for a loaded machine.
 */
const RELAY_REPLACED_BOUND_MS = 30_000;

const unavailable = natTopologyUnavailable();

interface Status {
  reachability: string;
  forwarded: number;
  leaks: number;
  reservations: number;
  circuits: number;
}

class PublicNode {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  nodeId = '';
  address = '';
  readonly exited: Promise<void>;

  constructor(readonly at: NatHost, bootstrap?: string) {
    const opts = JSON.stringify({ host: at.host, marker: MARKER, ...(bootstrap && { bootstrap }) });
    this.child = spawn('ip', ['netns', 'exec', at.ns, process.execPath, NAT_NODE, opts], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((r) => this.child.on('close', () => r()));
  }

  async started(): Promise<this> {
    const m = await poll(() => /^node ([0-9a-f]{64}) (\S+)$/m.exec(this.stdout), 20_000, () => `public node in ${this.at.ns} did not start: ${this.stderr}`);
    this.nodeId = m[1]!;
    this.address = m[2]!;
    return this;
  }

  status(): Status | undefined {
    const lines = this.stdout.trimEnd().split('\n').filter((l) => l.startsWith('{'));
    return lines.length === 0 ? undefined : (JSON.parse(lines[lines.length - 1]!) as Status);
  }
}

describe('behind NAT: reachability, relays, end-to-end encryption, relay failover', { skip: unavailable ?? false, timeout: 300_000 }, () => {
  let topo: NatTopology | undefined;
  const publics: PublicNode[] = [];
  const procs: NsMacula[] = [];
  const dirs: string[] = [];
  let priv1: { at: NatHost; proc: NsMacula; nodeId: string; address: string };
  let priv2: { at: NatHost; proc: NsMacula; nodeId: string; address: string };

  async function startPrivate(at: NatHost, bootstrap: string) {
    const dir = await mkdtemp(join(tmpdir(), 'macula-nat-'));
    dirs.push(dir);
    const proc = new NsMacula(at.ns, ['start', '--port', '0', '--bootstrap', bootstrap, '--data-dir', dir, '--status-interval', '0']);
    procs.push(proc);
    const [, nodeId] = await proc.waitFor(/macula node ([0-9a-f]{64})/, 20_000);
    const [, port] = await proc.waitFor(/listening [\d.]+:(\d+)\/udp/, 20_000);
    return { at, proc, nodeId: nodeId!, address: `${at.host}:${port}` };
  }

  function spawnIn(at: NatHost, args: string[]): NsMacula {
    const p = new NsMacula(at.ns, args);
    procs.push(p);
    return p;
  }

  async function stats(at: NatHost, node: string): Promise<{ nat: { reachability: { status: string }; advertised: string; relays: { relays: string[] } } }> {
    const r = await runMaculaIn(BIN, at.ns, ['stats', '--json', '--node', node]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as never;
  }

  function call(at: NatHost, node: string, n: number, timeoutMs = 5000): Promise<NsRunResult> {
    return runMaculaIn(BIN, at.ns, ['call', 'nat.echo', JSON.stringify({ n, marker: MARKER }), '--node', node, '--timeout', String(timeoutMs)], { timeoutMs: timeoutMs + 15_000 });
  }

  async function callUntilOk(at: NatHost, node: string, deadlineMs: number): Promise<{ result: NsRunResult; waitedMs: number }> {
    const t0 = performance.now();
    let last: NsRunResult | undefined;
    for (let i = 1; ; i++) {
      last = await call(at, node, i, 4000);
      if (last.code === 0) return { result: last, waitedMs: performance.now() - t0 };
      if (performance.now() - t0 > deadlineMs) throw new Error(`no call from ${at.ns} succeeded within ${deadlineMs} ms; last: ${last.stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  before(async () => {
    topo = NatTopology.create();
    const first = await new PublicNode(topo.pub1).started();
    publics.push(first);
    publics.push(await new PublicNode(topo.pub2, first.address).started());
    publics.push(await new PublicNode(topo.pub3, first.address).started());
    priv1 = await startPrivate(topo.priv1, first.address);
    priv2 = await startPrivate(topo.priv2, first.address);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const p of publics) p.child.kill('SIGKILL');
    await Promise.all([...procs.map((p) => p.exited), ...publics.map((p) => p.exited)]);
    topo?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('private nodes find themselves private and take relays; public nodes find themselves public', async (t) => {
    for (const p of publics) await poll(() => p.status()?.reachability === 'public', 30_000, () => `${p.at.ns} is ${p.status()?.reachability}`);
    for (const p of [priv1, priv2]) {
      const s = await poll(async () => {
        const s = await stats(p.at, p.address);
        return s.nat.reachability.status === 'private' && s.nat.relays.relays.length === 2 && s;
      }, 40_000, () => `${p.at.ns} did not become private with 2 relays: ${p.proc.stderr}`);
      assert.match(s.nat.advertised, /^relay~10\.203\.0\.1\d:\d+~10\.203\.0\.1\d:\d+$/);
      assert.match(p.proc.stderr, /reachability: private/);
      t.diagnostic(`${p.at.ns}: ${s.nat.reachability.status}, announcing ${s.nat.advertised}`);
    }
  });

  it("a private node's service is called from a public node and from the other private node; lookup shows the relays", async (t) => {
    const serve = spawnIn(priv1.at, ['serve', 'nat.echo', '--node', priv1.address, '--', 'cat']);
    await serve.waitForStderr(/serving nat\.echo through/, 20_000);
    const fromPublic = await callUntilOk(topo!.pub2, publics[1]!.address, 30_000);
    assert.deepEqual(JSON.parse(fromPublic.result.stdout).marker, MARKER);
    const fromPrivate = await callUntilOk(priv2.at, priv2.address, 30_000);
    assert.deepEqual(JSON.parse(fromPrivate.result.stdout).marker, MARKER);
    t.diagnostic(`first calls: from the public node after ${Math.round(fromPublic.waitedMs)} ms, from the other private node after ${Math.round(fromPrivate.waitedMs)} ms`);
    const lookup = await runMaculaIn(BIN, topo!.pub2.ns, ['lookup', 'rpc:nat.echo', '--json', '--node', publics[1]!.address]);
    assert.equal(lookup.code, 0, lookup.stderr);
    const providers = JSON.parse(lookup.stdout) as { nodeId: string; address: { host: string; port: number } }[];
    const p = providers.find((x) => x.nodeId === priv1.nodeId);
    assert.ok(p, lookup.stdout);
    assert.match(p.address.host, /^relay~/, 'the provider is announced through its relays');
    const table = await runMaculaIn(BIN, topo!.pub2.ns, ['lookup', 'rpc:nat.echo', '--node', publics[1]!.address]);
    assert.match(table.stdout, /relay~10\.203\.0\.1\d:\d+~10\.203\.0\.1\d:\d+/, table.stdout);
    t.diagnostic(`macula lookup rpc:nat.echo:\n${table.stdout.trimEnd()}`);
  });

  it('pub/sub works in every direction between the public node and both private nodes', async () => {
    const ends = [
      { name: 'pub', at: topo!.pub2, node: publics[1]!.address },
      { name: 'priv1', at: priv1.at, node: priv1.address },
      { name: 'priv2', at: priv2.at, node: priv2.address },
    ];
    const subs = ends.map((e) => ({ ...e, sub: spawnIn(e.at, ['sub', 'nat.#', '--json', '--node', e.node]) }));
    for (const s of subs) await s.sub.waitForStderr(/subscribed to nat\.#/, 20_000);
    for (const from of ends) {
      for (const to of subs) {
        if (to.name === from.name) continue;
        const topic = `nat.from.${from.name}`;
        await poll(async () => {
          if (to.sub.stdout.includes(`"${topic}"`)) return true;
          const r = await runMaculaIn(BIN, from.at.ns, ['pub', topic, JSON.stringify({ marker: MARKER }), '--node', from.node]);
          assert.equal(r.code, 0, r.stderr);
          return false;
        }, 30_000, () => `${from.name} → ${to.name} never delivered: ${to.sub.stdout}`);
      }
    }
    for (const s of subs) s.sub.kill();
  });

  it('the relays forwarded only ciphertext: no forwarded payload holds the plaintext marker', () => {
    const forwarded = publics.reduce((a, p) => a + (p.status()?.forwarded ?? 0), 0);
    const leaks = publics.reduce((a, p) => a + (p.status()?.leaks ?? 0), 0);
    assert.ok(forwarded > 0, 'the relays forwarded the calls and messages');
    assert.equal(leaks, 0);
  });

  it(`a relay killed with SIGKILL is replaced within ${RELAY_REPLACED_BOUND_MS / 1000} s and calls resume`, async (t) => {
    const before = await stats(priv1.at, priv1.address);
    // Kill one of priv1's relays that is not the node the calls are made from.
    const victim = publics.find((p) => p !== publics[1] && before.nat.relays.relays.includes(p.address));
    assert.ok(victim, `no relay of priv1 to kill among ${before.nat.relays.relays.join(', ')}`);
    const t0 = performance.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    const s = await poll(async () => {
      const s = await stats(priv1.at, priv1.address);
      return s.nat.relays.relays.length === 2 && !s.nat.relays.relays.includes(victim.address) && s;
    }, RELAY_REPLACED_BOUND_MS, () => `priv1 still lacks a relay after the kill`);
    const moved = performance.now() - t0;
    const back = await callUntilOk(topo!.pub2, publics[1]!.address, RELAY_REPLACED_BOUND_MS);
    t.diagnostic(`relay ${victim.address} killed: priv1 announced ${s.nat.advertised} after ${Math.round(moved)} ms; calls from the public node work again after ${Math.round(performance.now() - t0)} ms`);
    assert.ok(performance.now() - t0 < RELAY_REPLACED_BOUND_MS * 2);
    assert.equal(JSON.parse(back.result.stdout).marker, MARKER);
  });
});
