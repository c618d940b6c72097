/**
 * `macula bench pubsub` and `rpc` as real processes between two
 * `macula start` processes: every message and call gets through, and the
 * latencies, stamped into each payload by the sender and read back by the
 * receiver, are real times of this run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CliProcesses, runMacula, type StartedNode } from '../helpers/cli.js';

const procs = new CliProcesses('macula-cli-bench-');
after(() => procs.cleanup());

async function bench(scenario: string, count: number, a: StartedNode, b: StartedNode): Promise<{ figures: Record<string, number>; ms: number }> {
  const t0 = performance.now();
  const r = await runMacula(['bench', scenario, '--json', '-c', String(count), '-s', '100', '--concurrency', '16', '--node', a.address, '--remote', b.address]);
  const ms = performance.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { scenario: string; metric: string; value: number });
  for (const l of lines) assert.equal(l.scenario, scenario);
  return { figures: Object.fromEntries(lines.map((l) => [l.metric, l.value])), ms };
}

function assertLatencies(f: Record<string, number>, ms: number): void {
  assert.ok(f.latency_p50! > 0, `p50 ${f.latency_p50}`);
  assert.ok(f.latency_p50! <= f.latency_p99! && f.latency_p99! <= f.latency_max!, JSON.stringify(f));
  // A latency read from a garbled stamp would not fit inside the command's own run time.
  assert.ok(f.latency_max! < ms, `max ${f.latency_max} ms within a run of ${ms.toFixed(0)} ms`);
}

describe('macula bench between two nodes', { timeout: 120_000 }, () => {
  let a: StartedNode;
  let b: StartedNode;

  before(async () => {
    a = await procs.node();
    await a.proc.waitFor(/first node of a new mesh/);
    b = await procs.node(['--bootstrap', a.address]);
    await b.proc.waitFor(/joined the mesh/);
  });

  it('pubsub: a publisher on one node, a subscriber on the other, nothing lost', async () => {
    const { figures: f, ms } = await bench('pubsub', 3000, a, b);
    assert.equal(f.messages, 3000);
    assert.equal(f.received, 3000);
    assert.equal(f.lost, 0);
    assert.ok(f.publish_rate! > 0 && f.receive_rate! > 0, JSON.stringify(f));
    // Delivery's window (first publish to last message) holds the subscriber's (first message to last) and fits in the command's run.
    assert.ok(f.delivery_rate! <= Math.ceil((f.receive_rate! * 3000) / 2999) + 2, JSON.stringify(f)); // + rounding of both rates
    assert.ok(f.delivery_rate! >= Math.floor((3000 / ms) * 1000), JSON.stringify(f));
    assertLatencies(f, ms);
  });

  it('rpc: a caller on one node, a server on the other', async () => {
    const { figures: f, ms } = await bench('rpc', 500, a, b);
    assert.equal(f.calls, 500);
    assert.ok(f.call_rate! > 0, JSON.stringify(f));
    assertLatencies(f, ms);
  });
});
