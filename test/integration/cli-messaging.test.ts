/**
 * `macula sub --queue/--headers`, `pub -H`, `req` and `call -H` as real
 * processes against a 3-node mesh of `macula start` processes. Responders
 * and servers are light clients of this test process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MaculaClient } from '../../src/client/client.js';
import { parseAddress } from '../../src/transport/types.js';
import { CliProcesses, runMacula, type StartedNode } from '../helpers/cli.js';
import { waitFor } from '../helpers/testnet.js';

const procs = new CliProcesses('macula-cli-msg-');
const clients: MaculaClient[] = [];

async function client(n: StartedNode): Promise<MaculaClient> {
  const c = await MaculaClient.connect({ node: parseAddress(n.address), timeoutMs: 5000 });
  clients.push(c);
  return c;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

after(async () => {
  await Promise.all(clients.map((x) => x.close()));
  await procs.cleanup();
});

describe('macula messaging commands on a 3-node mesh', { timeout: 120_000 }, () => {
  let a: StartedNode;
  let b: StartedNode;
  let c: StartedNode;

  before(async () => {
    a = await procs.node();
    await a.proc.waitFor(/first node of a new mesh/);
    [b, c] = await Promise.all([procs.node(['--bootstrap', a.address]), procs.node(['--bootstrap', a.address])]);
    await Promise.all([b.proc.waitFor(/joined the mesh/), c.proc.waitFor(/joined the mesh/)]);
  });

  it('sub --queue members share the messages, sub --headers prints what pub -H sent', async () => {
    const q1 = procs.spawn(['sub', 'jobs.*', '--queue', 'workers', '--json', '--node', a.address]);
    const q2 = procs.spawn(['sub', 'jobs.*', '--queue', 'workers', '--json', '--node', c.address]);
    const plain = procs.spawn(['sub', 'jobs.*', '--headers', '--count', '20', '--node', c.address]);
    await q1.waitForStderr(/subscribed to jobs\.\* in queue group workers/);
    await q2.waitForStderr(/subscribed to jobs\.\* in queue group workers/);
    await plain.waitForStderr(/subscribed to jobs\.\*/);
    const pub = await runMacula(['pub', 'jobs.build', 'go', '--count', '20', '-H', 'trace-id:abc:123', '-H', 'priority:high', '--node', b.address]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((await plain.waitForExit()).code, 0, plain.stderr);
    const plainLines = plain.stdout.trim().split('\n');
    assert.equal(plainLines.length, 20);
    for (const line of plainLines) assert.equal(line, 'jobs.build {"trace-id":"abc:123","priority":"high"} go');
    await waitFor(() => jsonLines(q1.stdout).length + jsonLines(q2.stdout).length >= 20, 15_000, 'queue deliveries');
    const seqs = [...jsonLines(q1.stdout), ...jsonLines(q2.stdout)].map((m) => m.seq as number);
    assert.equal(seqs.length, 20, 'no message reached both members');
    assert.equal(new Set(seqs).size, 20);
    assert.deepEqual([jsonLines(q1.stdout).length, jsonLines(q2.stdout).length], [10, 10], 'round-robin over the two member nodes');
    q1.kill();
    q2.kill();
  });

  it('req prints up to --replies answers; nobody subscribed fails at once', async () => {
    const r1 = await client(a);
    const r2 = await client(c);
    await r1.subscribe('svc.echo', (m) => void m.respond?.(`a:${String(m.data)}`, { headers: { by: 'a' } }));
    await r2.subscribe('svc.echo', (m) => void m.respond?.(`c:${String(m.data)}`));
    const two = await runMacula(['req', 'svc.echo', 'hi', '--replies', '2', '--timeout', '10000', '--json', '--node', b.address]);
    assert.equal(two.code, 0, two.stderr);
    const replies = jsonLines(two.stdout);
    assert.deepEqual(replies.map((r) => r.data).sort(), ['a:hi', 'c:hi']);
    assert.deepEqual(replies.find((r) => r.data === 'a:hi')!.headers, { by: 'a' });
    const one = await runMacula(['req', 'svc.echo', 'x', '--node', b.address]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^[ac]:x\n$/);
    const t0 = Date.now();
    const none = await runMacula(['req', 'svc.nobody', 'x', '--timeout', '20000', '--node', b.address]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no subscriber in the mesh matches "svc\.nobody"/);
    assert.ok(Date.now() - t0 < 10_000, 'fails at once, not after --timeout');
  });

  it('call -H sends headers and --headers prints those of the result; a malformed -H is a usage error', async () => {
    const server = await client(a);
    await server.serve('hdr.echo', (_args, ctx) => {
      ctx.resultHeaders['seen'] = ctx.headers?.['x-req'] ?? 'none';
      return 'ok';
    });
    const call = await runMacula(['call', 'hdr.echo', '-H', 'x-req:v1', '--headers', '--node', b.address]);
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout, '"ok"\n');
    assert.match(call.stderr, /^seen: v1$/m);
    const bad = await runMacula(['pub', 'x.y', 'z', '-H', 'no-colon', '--node', b.address]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected key:value/);
    const long = await runMacula(['call', 'hdr.echo', '-H', `${'k'.repeat(65)}:v`, '--node', b.address]);
    assert.equal(long.code, 2);
    assert.match(long.stderr, /invalid headers/);
  });
});

describe('macula stats names slow consumers', { timeout: 120_000 }, () => {
  it('a frozen `macula sub` fills its subscription on the gateway node: stats lists it with pattern, node and client', async () => {
    const n = await procs.node();
    await n.proc.waitFor(/first node of a new mesh/);
    const sub = procs.spawn(['sub', 'bulk.#', '--node', n.address]);
    await sub.waitForStderr(/subscribed to bulk\.#/);
    sub.kill('SIGSTOP'); // reads nothing more: QUIC flow control, then the forwards, then the subscription buffer fill up
    try {
      // One burst well past the flow-control window, the 1024 forwards in flight and the 1000-message buffer,
      // before the node's QUIC idle timeout closes the frozen client's connection.
      const payload = 'x'.repeat(8 * 1024);
      let seen: Record<string, unknown>[] = [];
      await waitFor(
        async () => {
          const pub = await runMacula(['pub', 'bulk.data', payload, '--count', '5000', '--node', n.address]);
          assert.equal(pub.code, 0, pub.stderr);
          const stats = await runMacula(['stats', '--json', '--node', n.address]);
          assert.equal(stats.code, 0, stats.stderr);
          seen = (JSON.parse(stats.stdout) as { pubsub: { slowConsumers: Record<string, unknown>[] } }).pubsub.slowConsumers;
          return seen.length > 0;
        },
        20_000,
        'a slow consumer reported',
      );
      const slow = seen[0]!;
      assert.equal(slow.kind, 'subscription');
      assert.equal(slow.pattern, 'bulk.#');
      assert.equal(slow.node, n.nodeId);
      assert.match(String(slow.client), /^[0-9a-f]{64}$/);
      assert.ok((slow.dropsLastMinute as number) > 0 && (slow.dropsTotal as number) >= (slow.dropsLastMinute as number));
      const text = await runMacula(['stats', '--interval', '0', '--node', n.address]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /slow consumers\s+node\s+drops, last minute\s+total/);
      assert.match(text.stdout, new RegExp(`subscription bulk\\.# of client ${String(slow.client).slice(0, 12)}…\\s+${n.nodeId.slice(0, 12)}…\\s+[\\d,]+\\s+[\\d,]+`));
    } finally {
      sub.kill('SIGCONT');
      sub.kill('SIGKILL');
    }
  });
});
