/**
 * Queue groups across real processes: three member nodes with two members
 * each of one group, a plain subscriber and a publisher. Every message
 * reaches exactly one member (none twice, none lost while all are up), the
 * spread is even, the plain subscriber gets every message; after one member
 * node is killed (SIGKILL: it tells nobody) the others take over within the
 * failure-detection bound.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MeshNode } from '../../src/node/mesh-node.js';
import { NodeProcess, type NodeProcessStats } from '../helpers/node-process.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

const MESSAGES = 3_000;
/** Round-robin gives every member exactly MESSAGES / 6; the bound allows ±10 %. */
const SPREAD_TOLERANCE = 0.1;
/** Survivors must get every message of a round within this long after the kill (detection measured 2-8 s). */
const TAKEOVER_BOUND_MS = 30_000;

const procs: NodeProcess[] = [];
let net: Testnet | undefined;
after(async () => {
  await Promise.all(procs.map((p) => p.destroy()));
  await net?.destroy();
});

function seqsOf(stats: NodeProcessStats[]): number[] {
  return stats.flatMap((s) => s.queue.flat());
}

describe('queue groups across processes', { timeout: 180_000 }, () => {
  it('3 nodes × 2 members + a plain subscriber: one member per message, even spread, takeover after SIGKILL', async () => {
    net = await createTestnet(2);
    const [publisher, plainNode] = net.nodes as [MeshNode, MeshNode];
    const boot = `${publisher.listenAddress!.host}:${publisher.listenAddress!.port}`;
    const plain = new Set<number>();
    const plainSub = plainNode.subscribe('jobs.*', (m) => {
      const seq = (m.data as { seq: number }).seq;
      if (seq >= 0 && seq < MESSAGES) plain.add(seq);
    });
    const members = await Promise.all([0, 1, 2].map(() => NodeProcess.start({ bootstrap: [boot], queue: { pattern: 'jobs.*', group: 'workers', members: 2 } })));
    procs.push(...members);
    await plainSub.ready;
    const stats = () => Promise.all(members.map((m) => m.stats()));

    // Warm-up (negative seqs, not counted) until the publisher's subscriber cache lists every member node.
    let warm = -1;
    await waitFor(
      async () => {
        await publisher.publish('jobs.warm', { seq: warm-- });
        return (await stats()).every((s) => s.queue.flat().some((q) => q < 0));
      },
      30_000,
      'every member node reached',
    );

    const t0 = performance.now();
    for (let seq = 0; seq < MESSAGES; seq++) await publisher.publish('jobs.work', { seq });
    let last: NodeProcessStats[] = [];
    await waitFor(
      async () => {
        last = await stats();
        return seqsOf(last).filter((q) => q >= 0).length >= MESSAGES && plain.size >= MESSAGES;
      },
      60_000,
      'all messages delivered',
    );
    const elapsed = performance.now() - t0;
    const got = seqsOf(last).filter((q) => q >= 0);
    assert.equal(got.length, MESSAGES, 'no message reached two members');
    assert.equal(new Set(got).size, MESSAGES, 'every message reached a member');
    const perMember = last.flatMap((s) => s.queue.map((q) => q.filter((x) => x >= 0).length));
    const fair = MESSAGES / perMember.length;
    for (const n of perMember) assert.ok(Math.abs(n - fair) <= fair * SPREAD_TOLERANCE, `spread ${perMember.join('/')} within ±${SPREAD_TOLERANCE * 100} % of ${fair}`);
    assert.equal(plain.size, MESSAGES, 'the plain subscriber got every message');
    console.log(`# ${MESSAGES} messages in ${elapsed.toFixed(0)} ms; per member ${perMember.join('/')}`);

    // Kill one member node; rounds of 300 until the two survivors get a whole round.
    const [dead, ...alive] = members;
    // What the publisher's failure detection says of the survivors from here on (a survivor held down gets no messages).
    const survivorEvents: string[] = [];
    publisher.liveness.onChange((nodeId, up) => {
      if (alive.some((m) => m.nodeId === nodeId)) survivorEvents.push(`${nodeId.slice(0, 8)} ${up ? 'up' : 'down'}`);
    });
    await dead!.kill();
    const killedAt = performance.now();
    let base = 100_000;
    let tookOver = false;
    while (!tookOver && performance.now() - killedAt < TAKEOVER_BOUND_MS) {
      const round = new Set<number>();
      for (let i = 0; i < 300; i++) {
        round.add(base + i);
        await publisher.publish('jobs.work', { seq: base + i });
      }
      base += 1000;
      try {
        await waitFor(
          async () => {
            const seen = new Set((await Promise.all(alive.map((m) => m.stats()))).flatMap((s) => s.queue.flat()));
            return [...round].every((q) => seen.has(q));
          },
          5_000,
          'a whole round at the survivors',
        );
        tookOver = true;
      } catch {
        // part of the round went to the dead node before it was detected: next round
      }
    }
    assert.ok(tookOver, `the surviving members got every message of a round within ${TAKEOVER_BOUND_MS} ms of the kill`);
    console.log(`# survivors took over ${(performance.now() - killedAt).toFixed(0)} ms after SIGKILL`);
    const after = await Promise.all(alive.map((m) => m.stats()));
    const late = after.flatMap((s) => s.queue.map((q) => q.filter((x) => x >= base - 1000).length));
    assert.ok(late.every((n) => n > 0), `every surviving member shares the last round: ${late.join('/')}; survivors down/up at the publisher: [${survivorEvents.join(', ')}]`);
    const all = seqsOf(after);
    assert.equal(all.length, new Set(all).size, 'still no message twice');
  });
});
