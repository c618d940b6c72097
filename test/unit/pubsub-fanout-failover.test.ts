/**
 * Fan-out sends with a failover (queue-group copies): a send that fails, or
 * whose node is already held down, hands the message back for another
 * member; a send that succeeds does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Fanout, type FanoutTarget } from '../../src/pubsub/fanout.js';
import type { OutboundMessage } from '../../src/wire/framed-stream.js';

function fanout(failFor: Set<string>): { fanout: Fanout; sent: string[] } {
  const sent: string[] = [];
  const messenger = {
    notify(target: FanoutTarget, _msg: OutboundMessage): Promise<void> {
      if (failFor.has(target.nodeId)) return Promise.reject(new Error('connection lost'));
      sent.push(target.nodeId);
      return Promise.resolve();
    },
  };
  const f = new Fanout(
    { messenger, clock: { now: () => Date.now() } },
    { concurrency: 4, maxQueue: 100, nodeBacklog: 10, downBackoffMs: 60_000, maxDownBackoffMs: 60_000, sendStallMs: 3_000, maxPeers: 100 },
  );
  return { fanout: f, sent };
}

const msg: OutboundMessage = { t: 30, tp: 'a', d: 1, s: 1 };
const address = { host: '127.0.0.1', port: 1 };

describe('fan-out failover', () => {
  it('calls failover when the send fails, and when the node is already down; never when the send succeeds', async () => {
    const { fanout: f, sent } = fanout(new Set(['bad']));
    const good = f.peer('good', address);
    const bad = f.peer('bad', address);
    const failovers: string[] = [];
    assert.equal(f.submitSends([{ peer: good, msg, failover: () => failovers.push('good') }, { peer: bad, msg, failover: () => failovers.push('bad') }]), undefined);
    await f.pool.drain();
    assert.deepEqual(sent, ['good']);
    assert.deepEqual(failovers, ['bad']);
    // `bad` is down now: the next copy fails over without a send attempt.
    f.submitSends([{ peer: bad, msg, failover: () => failovers.push('bad, down') }]);
    await f.pool.drain();
    assert.deepEqual(failovers, ['bad', 'bad, down']);
    assert.equal(f.stats().sendFailures, 1);
    assert.equal(f.stats().skippedDown, 1);
    await f.close();
  });
});
