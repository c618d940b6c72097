/**
 * Two `macula start` processes in network namespaces of the test's own
 * making, joined by a link with 50 ms of delay and 5 % loss each way (tc
 * netem, or the UDP relay of test/helpers/netns.ts where the kernel has no
 * netem). RPC and pub/sub between them must keep working with bounded
 * latency; a cut link must make calls fail clearly within their timeout,
 * and once it is restored (after the old QUIC connection has died) calls
 * and deliveries must work again.
 *
 * Every shell command runs inside the namespace of the node it talks to,
 * so the only path between the two nodes is the impaired link.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { ImpairedLink, NsMacula, netnsUnavailable, runMaculaIn, type NsRunResult, type Side } from '../helpers/netns.js';

const DELAY_MS = 50;
const LOSS_PCT = 5;
/** Generous: one call crosses the link a few times (lookup, dial, call) and each command is a fresh process. */
const CALL_BOUND_MS = 8_000;

const unavailable = netnsUnavailable();

describe('RPC and pub/sub over an impaired link between network namespaces', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let link: ImpairedLink | undefined;
  const procs: NsMacula[] = [];
  const dirs: string[] = [];
  let a: { side: Side; port: number; nodeId: string; address: string };
  let b: { side: Side; port: number; nodeId: string; address: string };

  async function startNode(side: Side, bootstrap?: string) {
    const dir = await mkdtemp(join(tmpdir(), 'macula-netem-'));
    dirs.push(dir);
    const args = ['start', '--host', side.host, '--port', '0', '--announce-host', side.announceHost, '--data-dir', dir, '--status-interval', '0'];
    const proc = new NsMacula(side.ns, bootstrap ? [...args, '--bootstrap', bootstrap] : args);
    procs.push(proc);
    const [, nodeId] = await proc.waitFor(/macula node ([0-9a-f]{64})/);
    const [, port] = await proc.waitFor(/listening [\d.]+:(\d+)\/udp/);
    return { side, port: Number(port), nodeId: nodeId!, address: `${side.host}:${port}`, proc };
  }

  function spawnIn(side: Side, args: string[]): NsMacula {
    const p = new NsMacula(side.ns, args);
    procs.push(p);
    return p;
  }

  /** `macula call` from namespace B to the node in B; the provider is behind the link. */
  function callFromB(n: number, timeoutMs = 5000): Promise<NsRunResult> {
    return runMaculaIn(BIN, b.side.ns, ['call', 'net.echo', JSON.stringify({ n }), '--node', b.address, '--timeout', String(timeoutMs)], { timeoutMs: timeoutMs + 15_000 });
  }

  /** Whether `from`'s node has an open connection to the node `toId`. */
  async function connected(from: typeof b, toId: string): Promise<boolean> {
    const r = await runMaculaIn(BIN, from.side.ns, ['peers', '--json', '--node', from.address]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { connections: { nodeId: string }[] }).connections.some((c) => c.nodeId === toId);
  }

  /** Calls until one succeeds; resolves with it and how long the polling took. */
  async function callUntilOk(deadlineMs: number): Promise<{ result: NsRunResult; waitedMs: number; attempts: number }> {
    const t0 = performance.now();
    let last: NsRunResult | undefined;
    for (let attempts = 1; ; attempts++) {
      last = await callFromB(attempts, 3000);
      if (last.code === 0) return { result: last, waitedMs: performance.now() - t0, attempts };
      if (performance.now() - t0 > deadlineMs) throw new Error(`no call succeeded within ${deadlineMs} ms; last: exit ${last.code}, ${last.stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  before(async () => {
    link = await ImpairedLink.create();
    // Impaired from the start: joining and announcing run over the bad link too.
    await link.impair(DELAY_MS, LOSS_PCT);
    const na = await startNode(link.a);
    await link.expose('a', na.port);
    a = na;
    const nb = await startNode(link.b, `${link.a.announceHost}:${na.port}`);
    await link.expose('b', nb.port);
    b = nb;
    // Joined once B's routing table holds A (the join may need a retry over a lossy link).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await runMaculaIn(BIN, link.b.ns, ['peers', '--json', '--node', b.address]);
      if (r.code === 0 && (JSON.parse(r.stdout) as { contacts: { nodeId: string }[] }).contacts.some((c) => c.nodeId === a.nodeId)) break;
      if (Date.now() > deadline) throw new Error(`B never had A in its routing table\nA: ${na.proc.stderr}\nB: ${nb.proc.stdout}${nb.proc.stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await link?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('the link is impaired: the QUIC round trip between the nodes shows the added delay', async (t) => {
    const r = await runMaculaIn(BIN, b.side.ns, ['peers', '--json', '--node', b.address]);
    assert.equal(r.code, 0, r.stderr);
    const conns = (JSON.parse(r.stdout) as { connections: { nodeId: string; rttMs: number }[] }).connections;
    const toA = conns.find((c) => c.nodeId === a.nodeId);
    assert.ok(toA, `B has no connection to A: ${r.stdout}`);
    t.diagnostic(`link mode ${link!.mode}; B→A QUIC rtt ${toA.rttMs} ms (${DELAY_MS} ms each way added)`);
    // 2 × 50 ms added; a lower bound only, so a busy machine cannot fail it.
    assert.ok(toA.rttMs >= DELAY_MS, `rtt ${toA.rttMs} ms: the delay is not applied`);
  });

  it('RPC: calls from B reach a procedure served in A, each within a bounded time', async (t) => {
    const serve = spawnIn(a.side, ['serve', 'net.echo', '--node', a.address, '--', 'cat']);
    await serve.waitForStderr(/serving net\.echo through/, 20_000);
    // The registration crosses the link before B can find it.
    const first = await callUntilOk(20_000);
    t.diagnostic(`first call succeeded after ${Math.round(first.waitedMs)} ms (${first.attempts} attempts)`);
    const times: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await callFromB(100 + i);
      assert.equal(r.code, 0, `call ${i}: ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), { n: 100 + i });
      times.push(r.ms);
    }
    times.sort((x, y) => x - y);
    t.diagnostic(`8 calls over the impaired link (each a new process): median ${Math.round(times[4]!)} ms, max ${Math.round(times[7]!)} ms`);
    assert.ok(times[7]! < CALL_BOUND_MS, `slowest call took ${Math.round(times[7]!)} ms`);
  });

  it('pub/sub: every message published in B reaches a wildcard subscriber in A', async (t) => {
    const count = 40;
    const sub = spawnIn(a.side, ['sub', 'net.*.temp', '--count', String(count), '--json', '--node', a.address]);
    await sub.waitForStderr(/subscribed to net\.\*\.temp/, 20_000);
    const input = Array.from({ length: count }, (_, i) => JSON.stringify({ i })).join('\n') + '\n';
    const t0 = performance.now();
    const pub = await runMaculaIn(BIN, b.side.ns, ['pub', 'net.kitchen.temp', '--json', '--rate', '40', '--node', b.address], { input });
    const published = performance.now() - t0;
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(pub.stdout, new RegExp(`^published ${count} messages to net\\.kitchen\\.temp\\n$`));
    const exit = await sub.waitForExit(20_000);
    const total = performance.now() - t0;
    assert.equal(exit.code, 0, sub.stderr);
    const got = sub.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { topic: string; data: { i: number }; publisher: string });
    // QUIC retransmits what the link drops: nothing is lost, and one publisher's order holds.
    assert.deepEqual(got.map((m) => m.data.i), Array.from({ length: count }, (_, i) => i));
    assert.ok(got.every((m) => m.topic === 'net.kitchen.temp' && m.publisher === b.nodeId));
    t.diagnostic(`${count} messages at 40/s: pub done after ${Math.round(published)} ms, all delivered ${Math.round(total)} ms after pub started`);
    assert.ok(total - published < 10_000, `the last message arrived ${Math.round(total - published)} ms after pub finished`);
  });

  it('a cut link makes calls fail clearly within their timeout; restored, RPC and pub/sub work again', async (t) => {
    // A subscriber that outlives the cut, to show delivery resumes on the new connection.
    const sub = spawnIn(a.side, ['sub', 'net.#', '--node', a.address]);
    await sub.waitForStderr(/subscribed to net\.#/, 20_000);
    link!.cut();
    let restored = false;
    try {
      // Held down past the QUIC idle timeout (30 s), so that the old
      // connection dies and coming back needs a new one, not retransmissions.
      const timeoutMs = 3000;
      const t0 = performance.now();
      const failures = new Map<string, number>();
      for (let i = 0; ; i++) {
        const r = await callFromB(i, timeoutMs);
        assert.equal(r.code, 1, `a call over a cut link exited ${r.code}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /^macula: .*(timed out|could be reached|unavailable|unreachable)/);
        assert.equal(r.stdout, '');
        // The call's own deadline plus a new process and its connection to node B.
        assert.ok(r.ms < timeoutMs + 5000, `a failing call took ${Math.round(r.ms)} ms`);
        const code = /\((MACULA_ERR_[A-Z_]+)\)/.exec(r.stderr)?.[1] ?? 'other';
        failures.set(code, (failures.get(code) ?? 0) + 1);
        if (i === 0) t.diagnostic(`cut: call failed after ${Math.round(r.ms)} ms (timeout ${timeoutMs} ms): ${r.stderr.trim()}`);
        if (!(await connected(b, a.nodeId))) break;
        assert.ok(performance.now() - t0 < 50_000, 'B still has a connection to A 50 s into the cut (QUIC idle timeout: 30 s)');
      }
      t.diagnostic(`B dropped its connection to A ${Math.round((performance.now() - t0) / 1000)} s into the cut; failed attempts by cause: ${JSON.stringify(Object.fromEntries(failures))}`);

      link!.restore();
      restored = true;
      const back = await callUntilOk(30_000);
      assert.deepEqual(JSON.parse(back.result.stdout), { n: back.attempts });
      t.diagnostic(`restored: calls work again after ${Math.round(back.waitedMs)} ms (${back.attempts} attempts)`);

      const t1 = performance.now();
      for (let i = 0; !sub.stdout.includes('net.after.cut'); i++) {
        const p = await runMaculaIn(BIN, b.side.ns, ['pub', 'net.after.cut', String(i), '--node', b.address]);
        assert.equal(p.code, 0, p.stderr);
        assert.ok(performance.now() - t1 < 20_000, `nothing published after the restore reached the subscriber: ${sub.stdout}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      t.diagnostic(`restored: pub/sub delivers again after ${Math.round(performance.now() - t1)} ms`);
      const counts = await link!.counts();
      if (counts) t.diagnostic(`the relay has forwarded ${counts.forwarded} datagrams and dropped ${counts.dropped} so far`);
    } finally {
      if (!restored) link!.restore();
      sub.kill();
    }
  });
});
