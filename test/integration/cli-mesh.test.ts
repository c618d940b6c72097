/**
 * The shell commands against a real 3-node mesh: every node and every
 * command is a separate `macula` process talking QUIC on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaculaProcess, runMacula, startNode, type StartedNode } from '../helpers/cli.js';

const dirs: string[] = [];
const procs: MaculaProcess[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'macula-cli-mesh-'));
  dirs.push(d);
  return d;
}
function spawnMacula(args: string[]): MaculaProcess {
  const p = new MaculaProcess(args);
  procs.push(p);
  return p;
}
async function node(extra: string[] = []): Promise<StartedNode> {
  const n = await startNode(await tempDir(), extra);
  procs.push(n.proc);
  return n;
}

/** A JSON-in, JSON-out command for `macula serve`: adds x and y. */
const ADD_SCRIPT =
  "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);process.stdout.write(JSON.stringify({sum:a.x+a.y}))})";

/** Polls a lookup until `check` accepts its providers, or fails at the deadline. */
async function lookupUntil(args: string[], check: (providers: { nodeId: string }[]) => boolean, timeoutMs: number): Promise<{ nodeId: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await runMacula(['lookup', '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    const providers = JSON.parse(r.stdout) as { nodeId: string }[];
    if (check(providers)) return providers;
    if (Date.now() > deadline) throw new Error(`lookup ${args.join(' ')} still gives ${r.stdout}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('macula client commands on a 3-node mesh', { timeout: 120_000 }, () => {
  let a: StartedNode;
  let b: StartedNode;
  let c: StartedNode;

  before(async () => {
    a = await node();
    await a.proc.waitFor(/first node of a new mesh/);
    [b, c] = await Promise.all([node(['--bootstrap', a.address]), node(['--bootstrap', a.address])]);
    await Promise.all([b.proc.waitFor(/joined the mesh/), c.proc.waitFor(/joined the mesh/)]);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('sub with a wildcard on one node prints what pub publishes on another, then exits 0 after --count', async () => {
    const sub = spawnMacula(['sub', 'sensors.*.temp', '--count', '3', '--node', c.address]);
    const json = spawnMacula(['sub', 'sensors.#', '--count', '3', '--json', '--node', a.address]);
    await sub.waitForStderr(/subscribed to sensors\.\*\.temp on 127\.0\.0\.1:\d+, exiting after 3 messages/);
    await json.waitForStderr(/subscribed to sensors\.#/);
    const pub = await runMacula(['pub', 'sensors.kitchen.temp', '--node', b.address], { input: '21.5\n22\n{"not": "json-parsed"}\n' });
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stdout, 'published 3 messages to sensors.kitchen.temp\n');

    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    assert.equal(sub.stdout, 'sensors.kitchen.temp 21.5\nsensors.kitchen.temp 22\nsensors.kitchen.temp {"not": "json-parsed"}\n');

    assert.equal((await json.waitForExit()).code, 0, json.stderr);
    const lines = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { topic: string; data: unknown; publisher: string; seq: number });
    assert.deepEqual(lines.map((l) => l.data), ['21.5', '22', '{"not": "json-parsed"}']);
    assert.ok(lines.every((l) => l.topic === 'sensors.kitchen.temp' && l.publisher === b.nodeId));
    assert.ok(lines[0]!.seq < lines[1]!.seq && lines[1]!.seq < lines[2]!.seq);
  });

  it('pub --count and --json publish repeated JSON values', async () => {
    const sub = spawnMacula(['sub', 'counts.x', '--count', '4', '--json', '--node', b.address]);
    await sub.waitForStderr(/subscribed/);
    const pub = await runMacula(['pub', 'counts.x', '{"n": 1}', '--json', '--count', '4', '--rate', '200', '--node', c.address]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(pub.stdout, /^published 4 messages to counts\.x\n$/);
    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    const data = sub.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { data: unknown }).data);
    assert.deepEqual(data, [{ n: 1 }, { n: 1 }, { n: 1 }, { n: 1 }]);
  });

  it('call reaches a procedure that serve answers on another node', async () => {
    const serve = spawnMacula(['serve', 'math.add', '--node', a.address, '--', process.execPath, '-e', ADD_SCRIPT]);
    await serve.waitForStderr(/serving math\.add through/);
    const r = await runMacula(['call', 'math.add', '{"x": 2, "y": 40}', '--node', c.address]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{"sum":42}\n');

    const failing = spawnMacula(['serve', 'always.fails', '--node', b.address, '--', process.execPath, '-e', "console.error('out of widgets'); process.exit(3)"]);
    await failing.waitForStderr(/serving always\.fails/);
    const f = await runMacula(['call', 'always.fails', '--node', c.address]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /^macula: .* exited with code 3: out of widgets\n$/);
    assert.equal(f.stdout, '');

    const missing = await runMacula(['call', 'no.such.thing', '--node', c.address]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^macula: no node provides "no\.such\.thing"/);

    const bad = await runMacula(['call', 'math.add', '{x: 1}', '--node', c.address]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not valid JSON/);
    serve.kill('SIGTERM');
    failing.kill('SIGTERM');
    assert.equal((await serve.waitForExit()).code, 0, serve.stderr);
    assert.equal((await failing.waitForExit()).code, 0, failing.stderr);
  });

  it('stats --json prints a snapshot that parses; stats and peers print tables', async () => {
    const r = await runMacula(['stats', '--json', '--node', b.address]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(s.node!.nodeId, b.nodeId);
    assert.equal(s.gateway!.clients, 1, 'this command is the one client');
    assert.ok((s.dht!.routingTableSize as number) >= 1);
    assert.equal(typeof s.pool!.max, 'number');
    assert.ok(s.pubsub && s.registry && s.rpc);

    const human = await runMacula(['stats', '--interval', '200', '--node', b.address]);
    assert.equal(human.code, 0, human.stderr);
    for (const heading of ['throughput', 'per second', 'queues', 'caches', 'hit rate', 'connections']) assert.match(human.stdout, new RegExp(heading));

    const peers = await runMacula(['peers', '--json', '--node', a.address]);
    assert.equal(peers.code, 0, peers.stderr);
    const p = JSON.parse(peers.stdout) as { contacts: { nodeId: string }[]; connections: { role: string }[] };
    const known = new Set(p.contacts.map((x) => x.nodeId));
    assert.ok(known.has(b.nodeId) && known.has(c.nodeId), peers.stdout);
    assert.ok(p.connections.some((x) => x.role === 'client'));
  });

  it('a served procedure disappears from lookups at once when its serve process gets SIGTERM', async () => {
    const serve = spawnMacula(['serve', 'short.lived', '--node', b.address, '--', 'cat']);
    await serve.waitForStderr(/serving short\.lived/);
    const found = await lookupUntil(['rpc:short.lived', '--fresh', '--node', c.address], (ps) => ps.length === 1, 10_000);
    assert.equal(found[0]!.nodeId, b.nodeId, 'the gateway node is the provider');
    serve.kill('SIGTERM');
    assert.equal((await serve.waitForExit()).code, 0, serve.stderr);
    // No polling: the registration was withdrawn before serve exited.
    const r = await runMacula(['lookup', 'rpc:short.lived', '--fresh', '--json', '--node', c.address]);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  it('SIGTERM of a node that serves leaves no registration behind', async () => {
    const d = await node(['--bootstrap', a.address]);
    await d.proc.waitFor(/joined the mesh/);
    const serve = spawnMacula(['serve', 'on.d', '--node', d.address, '--', 'cat']);
    await serve.waitForStderr(/serving on\.d/);
    await lookupUntil(['rpc:on.d', '--fresh', '--node', c.address], (ps) => ps.some((p) => p.nodeId === d.nodeId), 10_000);
    d.proc.kill('SIGTERM');
    assert.equal((await d.proc.waitForExit()).code, 0, d.proc.stderr);
    const r = await runMacula(['lookup', 'rpc:on.d', '--fresh', '--json', '--node', c.address]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [], 'withdrawn at once, not after the TTL');
    // The serve process lost its node: one line, exit 1.
    assert.equal((await serve.waitForExit()).code, 1);
    assert.match(serve.stderr, /macula: lost the connection to the node at 127\.0\.0\.1:\d+; on\.d is no longer served\n$/);
  });
});
