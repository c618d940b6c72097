/**
 * Nodes that die for real (their own processes, SIGKILL or SIGSTOP): a
 * crashed or frozen node says goodbye to nobody. The shared failure
 * detection (src/liveness/) must take it out of RPC selection, the registry
 * cache, the subscriber cache and the fan-out within a few seconds, without
 * waiting for its 300 s registration TTL, and bring it back when it answers
 * again.
 *
 * Each test prints the measured detection time (`# … detected after … ms`).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { parseAddress } from '../../src/transport/types.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/testnet.js';

/** Bound asserted for "stops sending to a dead node" (measured 2-8 s here; generous for a loaded 2-core machine). */
const DETECTION_BOUND_MS = 15_000;
const RPC_CALL_TYPE = 20;
const PUBLISH_TYPE = 30;

const procs: NodeProcess[] = [];
const nodes: MeshNode[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.destroy()));
  await Promise.all(nodes.map((n) => n.stop()));
});

async function inProcessNode(bootstrap?: string): Promise<MeshNode> {
  const node = new MeshNode(Identity.generate(), {
    host: '127.0.0.1',
    port: 0,
    bootstrap: bootstrap === undefined ? [] : [parseAddress(bootstrap)],
    logger: { warn: () => {} },
    stopTimeoutMs: 2000,
  });
  nodes.push(node);
  await node.start();
  await node.joined();
  return node;
}

async function spawn(config: Parameters<typeof NodeProcess.start>[0]): Promise<NodeProcess> {
  const p = await NodeProcess.start(config);
  procs.push(p);
  return p;
}

function address(node: MeshNode): string {
  return `${node.listenAddress!.host}:${node.listenAddress!.port}`;
}

/** Records when each node was last sent a message of type `t` (requests or one-way). */
function watchSends(node: MeshNode, t: number): { last: Map<string, number>; count: Map<string, number> } {
  const last = new Map<string, number>();
  const count = new Map<string, number>();
  const seen = (nodeId: string | undefined) => {
    if (nodeId === undefined) return;
    last.set(nodeId, Date.now());
    count.set(nodeId, (count.get(nodeId) ?? 0) + 1);
  };
  const m = node.messenger;
  const request = m.request.bind(m);
  const notify = m.notify.bind(m);
  m.request = (target, msg: OutboundMessage, options) => {
    if (msg.t === t) seen(target.nodeId as string | undefined);
    return request(target, msg, options);
  };
  m.notify = (target, msg: OutboundMessage) => {
    if (msg.t === t) seen(target.nodeId as string | undefined);
    return notify(target, msg);
  };
  // The fan-out sends on a connection it has already looked up.
  const notifyOn = m.notifyOn.bind(m);
  m.notifyOn = (conn, msg: OutboundMessage) => {
    if (msg.t === t) seen(conn.remoteNodeIdHex);
    return notifyOn(conn, msg);
  };
  return { last, count };
}

/** Calls `procedure` every `everyMs` until stopped; every outcome recorded. */
function steadyCalls(node: MeshNode, procedure: string, everyMs: number) {
  const results: { ok: boolean; by?: string; error?: string; at: number }[] = [];
  const running = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const p = node
      .call(procedure, {}, { timeoutMs: 3000 })
      .then(
        (r) => void results.push({ ok: true, by: (r as { nodeId: string }).nodeId, at: Date.now() }),
        (err: Error & { code?: string }) => void results.push({ ok: false, error: `${err.code}: ${err.message}`, at: Date.now() }),
      )
      .finally(() => running.delete(p));
    running.add(p);
  }, everyMs);
  return {
    results,
    async stop() {
      clearInterval(timer);
      await Promise.all(running);
    },
  };
}

describe('nodes killed for real (SIGKILL, SIGSTOP) in their own processes', { timeout: 180_000 }, () => {
  it('a provider SIGKILLed under steady calls: every call succeeds, the dead one gets no attempt after the bound', async () => {
    const caller = await inProcessNode();
    const [a, b] = await Promise.all([spawn({ bootstrap: [address(caller)], serve: ['kill.echo'] }), spawn({ bootstrap: [address(caller)], serve: ['kill.echo'] })]);
    await waitFor(async () => (await caller.lookup('rpc:kill.echo')).length === 2, 20_000, 'caller sees both providers');
    const sends = watchSends(caller, RPC_CALL_TYPE);
    const calls = steadyCalls(caller, 'kill.echo', 50);
    await waitFor(() => new Set(calls.results.filter((r) => r.ok).map((r) => r.by)).size === 2, 10_000, 'both providers answer');
    const killedAt = Date.now();
    await a.kill();
    await waitFor(() => caller.liveness.isDown(a.nodeId), DETECTION_BOUND_MS, 'the caller holds the killed provider down');
    const detectedMs = Date.now() - killedAt;
    // Calls go on well past the detection bound, so a retry of the dead provider would be seen.
    await new Promise((r) => setTimeout(r, 8000));
    await calls.stop();
    const lastAttempt = sends.last.get(a.nodeId)! - killedAt;
    process.stdout.write(`# SIGKILLed provider detected after ${detectedMs} ms; last call attempt to it ${lastAttempt} ms after the kill\n`);
    const failed = calls.results.filter((r) => !r.ok);
    assert.deepEqual(failed, [], 'every call succeeded through failover');
    assert.ok(lastAttempt <= DETECTION_BOUND_MS, `last attempt to the dead provider ${lastAttempt} ms after the kill`);
    assert.ok(calls.results.filter((r) => r.at > killedAt + detectedMs).every((r) => r.by === b.nodeId));
    assert.deepEqual((await caller.lookup('rpc:kill.echo')).map((p) => p.nodeId), [b.nodeId], 'the dead registration left the cache');
    assert.ok(caller.liveness.stats().markedDown.request_failed + caller.liveness.stats().markedDown.connection_lost >= 1);
    await b.kill();
  });

  it('a subscriber node SIGKILLed under steady publishes: the publisher stops sending to it, the others get everything', async () => {
    const publisher = await inProcessNode();
    const subs = await Promise.all([0, 1, 2].map(() => spawn({ bootstrap: [address(publisher)], subscribe: ['kill.t.#'] })));
    await waitFor(async () => (await publisher.publish('kill.t.warmup', { seq: -1 })).nodes === 3, 20_000, 'publisher sees 3 subscriber nodes');
    const sends = watchSends(publisher, PUBLISH_TYPE);
    let sentBeforeKill = 0;
    const sendsAfterKill = () => (sends.count.get(dead.nodeId) ?? 0) - sentBeforeKill;
    let seq = 0;
    const timer = setInterval(() => void publisher.publish('kill.t.x', { seq: seq++ }).catch(() => {}), 20);
    await waitFor(() => seq > 100, 10_000, '100 publishes');
    const dead = subs[0]!;
    const killedAt = Date.now();
    sentBeforeKill = sends.count.get(dead.nodeId) ?? 0;
    await dead.kill();
    await waitFor(() => publisher.liveness.isDown(dead.nodeId), DETECTION_BOUND_MS, 'the publisher holds the killed subscriber down');
    const detectedMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 8000));
    clearInterval(timer);
    const published = seq;
    const lastSend = sends.last.get(dead.nodeId)! - killedAt;
    const stats = publisher.pubsub.stats();
    process.stdout.write(
      `# SIGKILLed subscriber detected after ${detectedMs} ms; last send to it ${lastSend} ms after the kill; sends to it after the kill: ${sendsAfterKill()}, skipped while down: ${stats.fanout.skippedDown}, backlog dropped: ${stats.fanout.backlogDropped}\n`,
    );
    assert.ok(lastSend <= DETECTION_BOUND_MS, `last send to the dead subscriber ${lastSend} ms after the kill`);
    for (const s of subs.slice(1)) {
      await waitFor(async () => (await s.stats()).seqs.filter((x) => x >= 0).length >= published, 10_000, `subscriber ${s.pid} has every message`);
      const got = (await s.stats()).seqs.filter((x) => x >= 0);
      assert.deepEqual(got, Array.from({ length: published }, (_, i) => i), 'every message once, none missing');
    }
    await Promise.all(subs.map((s) => s.kill()));
  });

  it('a provider frozen (SIGSTOP) for 40 s: calls fail over while frozen, it serves again after SIGCONT', async () => {
    const caller = await inProcessNode();
    const [a, b] = await Promise.all([spawn({ bootstrap: [address(caller)], serve: ['freeze.echo'] }), spawn({ bootstrap: [address(caller)], serve: ['freeze.echo'] })]);
    await waitFor(async () => (await caller.lookup('rpc:freeze.echo')).length === 2, 20_000, 'caller sees both providers');
    const calls = steadyCalls(caller, 'freeze.echo', 100);
    await waitFor(() => new Set(calls.results.filter((r) => r.ok).map((r) => r.by)).size === 2, 10_000, 'both providers answer');
    const frozenAt = Date.now();
    a.freeze();
    await waitFor(() => caller.liveness.isDown(a.nodeId), DETECTION_BOUND_MS, 'the caller holds the frozen provider down');
    const detectedMs = Date.now() - frozenAt;
    await new Promise((r) => setTimeout(r, Math.max(0, 40_000 - (Date.now() - frozenAt))));
    const thawedAt = Date.now();
    a.thaw();
    await waitFor(() => calls.results.some((r) => r.at > thawedAt && r.by === a.nodeId), 30_000, 'the thawed provider serves again');
    const backMs = Date.now() - thawedAt;
    await calls.stop();
    process.stdout.write(`# SIGSTOPped provider detected after ${detectedMs} ms; serving again ${backMs} ms after SIGCONT\n`);
    const frozenWindow = calls.results.filter((r) => r.at > frozenAt + detectedMs && r.at < thawedAt);
    assert.ok(frozenWindow.length > 100, 'calls went on while it was frozen');
    assert.deepEqual(frozenWindow.filter((r) => !r.ok), [], 'every call made while it was frozen succeeded');
    assert.ok(frozenWindow.every((r) => r.by === b.nodeId));
    await Promise.all([a.kill(), b.kill()]);
  });

  it('the bootstrap node SIGKILLed: the mesh keeps working and new nodes join through another node', async () => {
    const boot = await spawn({});
    const provider = await spawn({ bootstrap: [boot.address], serve: ['boot.echo'] });
    const caller = await inProcessNode(boot.address);
    await waitFor(async () => (await caller.lookup('rpc:boot.echo')).length === 1, 20_000, 'caller sees the provider');
    await boot.kill();
    for (let i = 0; i < 20; i++) assert.equal(((await caller.call('boot.echo', {}, { timeoutMs: 5000 })) as { nodeId: string }).nodeId, provider.nodeId);
    const late = await inProcessNode(address(caller));
    assert.ok((await late.joined()).reached >= 1, 'the new node joined through a surviving node');
    await waitFor(async () => (await late.lookup('rpc:boot.echo')).length === 1, 20_000, 'the new node finds the provider');
    assert.equal(((await late.call('boot.echo', {}, { timeoutMs: 5000 })) as { nodeId: string }).nodeId, provider.nodeId);
    await provider.kill();
  });
});
