/**
 * `queue` scenario: queue-group delivery over QUIC on 127.0.0.1, all nodes
 * in this process. One publisher node; three member nodes with two members
 * each of group `workers`; one node with a plain subscription to the same
 * topic. The publisher publishes 100-byte messages as fast as the fan-out
 * lets it; over the measuring window the scenario reports queue deliveries
 * per second (each message to exactly one member), the plain subscriber's
 * rate for the same publishes, and the spread across the six members over
 * the whole run: the largest deviation of a member's count from an even
 * share, in percent.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import type { BenchContext } from '../bench.js';
import { PAYLOAD, WARMUP_MS } from './procs.js';

const quiet = { warn: () => {} };

async function startNodes(n: number): Promise<{ nodes: MeshNode[] }> {
  const first = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet }).start();
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, () => new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [first.listenAddress!] }).start()),
  );
  await Promise.all(rest.map((x) => x.joined()));
  return { nodes: [first, ...rest] };
}

async function stopNodes(nodes: MeshNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

/** Runs `publishOne` in a loop (it applies its own backpressure) while sampling `counters` over `seconds` after a warm-up; each counter's rate. */
async function measure(seconds: number, publishOne: () => Promise<unknown>, counters: () => number[]): Promise<number[]> {
  let stop = false;
  const loop = (async () => {
    let n = 0;
    while (!stop) {
      await publishOne();
      // A publish that finds room resolves without touching the event loop: let I/O in now and then.
      if (++n % 256 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const c0 = counters();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c1 = counters();
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await loop;
  return c1.map((c, i) => (c - c0[i]!) / elapsed);
}
const MEMBER_NODES = 3;
const MEMBERS_PER_NODE = 2;

export async function queueScenario(ctx: BenchContext): Promise<void> {
  const { nodes } = await startNodes(2 + MEMBER_NODES);
  try {
    const [publisher, plainNode, ...memberNodes] = nodes;
    const counts = new Array<number>(MEMBER_NODES * MEMBERS_PER_NODE).fill(0);
    let plain = 0;
    const subs = [plainNode!.subscribe('bench.queue.*', () => void plain++)];
    memberNodes.forEach((node, n) => {
      for (let m = 0; m < MEMBERS_PER_NODE; m++) {
        const i = n * MEMBERS_PER_NODE + m;
        subs.push(node.subscribe('bench.queue.*', () => void counts[i]!++, { queue: 'workers' }));
      }
    });
    await Promise.all(subs.map((s) => s.ready));
    const [queueRate, plainRate] = await measure(
      ctx.seconds,
      () => publisher!.publish('bench.queue.job', PAYLOAD),
      () => [counts.reduce((a, b) => a + b, 0), plain],
    );
    // The spread over the whole run, once the messages in flight have arrived.
    let last = -1;
    while (counts.reduce((a, b) => a + b, 0) !== last) {
      last = counts.reduce((a, b) => a + b, 0);
      await new Promise((r) => setTimeout(r, 200));
    }
    const perMember = [...counts];
    const total = perMember.reduce((a, b) => a + b, 0);
    const even = total / perMember.length;
    const deviation = Math.max(...perMember.map((c) => Math.abs(c - even))) / even;
    ctx.report({ metric: 'queue deliveries', value: queueRate!, unit: 'msg/s' });
    ctx.report({ metric: 'plain deliveries (same pubs)', value: plainRate!, unit: 'msg/s' });
    ctx.report({ metric: 'spread: worst member vs even', value: deviation * 100, unit: '%' });
    ctx.log(`per member (${MEMBER_NODES} nodes × ${MEMBERS_PER_NODE}), whole run: ${perMember.join(' / ')}; plain subscriber: ${plain}`);
  } finally {
    await stopNodes(nodes);
  }
}
