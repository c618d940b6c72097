import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Liveness } from '../../src/liveness/liveness.js';
import { ConfigError } from '../../src/util/errors.js';
import { waitFor } from '../helpers/testnet.js';

const A = { host: '127.0.0.1', port: 1 };

describe('Liveness', () => {
  it('without a probe: down for the backoff, doubled per outage, reset by contact', () => {
    let now = 1000;
    const l = new Liveness({ now: () => now }, { baseBackoffMs: 100, maxBackoffMs: 350 });
    const changes: string[] = [];
    l.onChange((id, up) => changes.push(`${id}:${up ? 'up' : 'down'}`));
    l.down('n1', 'send_failed', A);
    assert.equal(l.isDown('n1'), true);
    l.down('n1', 'send_failed', A); // same outage: no escalation, no event
    now += 130; // past 100 ms ± 20 %
    assert.equal(l.isDown('n1'), false);
    l.down('n1', 'dial_failed');
    now += 130;
    assert.equal(l.isDown('n1'), true, 'the second outage waits twice as long');
    now += 400;
    l.down('n1', 'dial_failed');
    now += 270;
    assert.equal(l.isDown('n1'), true, 'down for at least 280 ms: 400 capped at maxBackoffMs (350 ± 20 %)');
    now += 160;
    assert.equal(l.isDown('n1'), false, 'and at most 420 ms');
    l.down('n1', 'connection_lost');
    l.up('n1');
    assert.equal(l.isDown('n1'), false, 'contact ends the outage at once');
    assert.deepEqual(changes, ['n1:down', 'n1:down', 'n1:down', 'n1:down', 'n1:up']);
    const s = l.stats();
    assert.deepEqual(s.markedDown, { connection_lost: 1, dial_failed: 2, request_failed: 0, send_failed: 1 });
    assert.equal(s.markedUp, 1);
  });

  it('with a probe: stays down until the probe answers, probing with backoff', async () => {
    let answer = false;
    const probed: number[] = [];
    const l = new Liveness(
      {
        probe: async () => {
          probed.push(Date.now());
          if (!answer) throw new Error('no answer');
        },
      },
      { baseBackoffMs: 20, maxBackoffMs: 40 },
    );
    l.down('n1', 'connection_lost', A);
    await waitFor(() => probed.length >= 3, 2000, 'three probes');
    assert.equal(l.isDown('n1'), true, 'a failed probe keeps it down');
    answer = true;
    await waitFor(() => !l.isDown('n1'), 2000, 'up after an answered probe');
    assert.ok(l.stats().probeFailures >= 3);
    l.close();
  });

  it('suspect(): down only when the probe fails too', async () => {
    let alive = true;
    const l = new Liveness({ probe: async () => (alive ? undefined : Promise.reject(new Error('timeout'))) }, { baseBackoffMs: 60_000 });
    l.suspect('slow', 'request_failed', A);
    await new Promise((r) => setImmediate(r));
    assert.equal(l.isDown('slow'), false, 'a node that answers the probe is only slow');
    alive = false;
    l.suspect('dead', 'request_failed', A);
    await waitFor(() => l.isDown('dead'), 1000, 'down after the probe failed');
    assert.equal(l.stats().markedDown.request_failed, 1);
    l.close();
  });

  it('is bounded and forgets nodes down for too long', async () => {
    const l = new Liveness({ probe: () => Promise.reject(new Error('gone')) }, { maxTracked: 3, baseBackoffMs: 10, forgetAfterMs: 30 });
    for (let i = 0; i < 5; i++) l.down(`n${i}`, 'dial_failed', A);
    assert.equal(l.stats().tracked, 3);
    await waitFor(() => l.stats().tracked === 0, 2000, 'forgotten');
    assert.equal(l.stats().forgotten, 3);
    l.close();
  });

  it('refuses bad options', () => {
    assert.throws(() => new Liveness({}, { baseBackoffMs: 0 }), ConfigError);
  });
});
