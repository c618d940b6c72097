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
import type { BenchContext } from '../bench.js';
import { measure, startNodes, stopNodes } from './pubsub.js';

const PAYLOAD = new Uint8Array(100).fill(7);
const MEMBER_NODES = 3;
const MEMBERS_PER_NODE = 2;

export async function queueScenario(ctx: BenchContext): Promise<void> {
  const { nodes } = await startNodes(2 + MEMBER_NODES, {});
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
