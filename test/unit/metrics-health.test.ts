/** The budgets check of /health: RSS, the DHT store and added budgets, degraded near their limits and failing at them. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { totalmem } from 'node:os';
import { describe, it } from 'node:test';
import { defaultMaxRssBytes, HealthMonitor } from '../../src/metrics/health.js';
import type { NodeSnapshot, ObservedNode } from '../../src/metrics/node-sources.js';
import { idleSnapshot } from '../helpers/snapshot.js';

/** A stand-in node of a running, joined node whose DHT store holds `store.size` records. */
class FakeNode extends EventEmitter implements ObservedNode {
  store = { size: 0, maxRecords: 100_000 };
  readonly #base = idleSnapshot();
  snapshot(): NodeSnapshot {
    const b = this.#base;
    return { ...b, node: { ...b.node, running: true, joined: true }, dht: { ...b.dht, records: this.store.size, maxRecords: this.store.maxRecords } };
  }
}

type Budgets = { status: string; fullest?: string; ratio: number; budgets: Record<string, { used: number; limit: number; ratio: number }> };

describe('health budgets', () => {
  it('degrades at 80 % of the RSS limit and fails at it', () => {
    const rss = process.memoryUsage.rss();
    const budgets = (maxRssBytes: number): Budgets => new HealthMonitor({ node: new FakeNode() }, { maxRssBytes }).report().checks.budgets as unknown as Budgets;
    assert.equal(budgets(rss * 4).status, 'ok');
    const near = budgets(Math.round(rss / 0.85));
    assert.equal(near.status, 'degraded');
    assert.equal(near.fullest, 'rss');
    const over = new HealthMonitor({ node: new FakeNode() }, { maxRssBytes: Math.round(rss / 2) }).report();
    assert.equal(over.checks.budgets!.status, 'fail');
    assert.equal(over.status, 'fail', 'a failed budget fails the node');
    assert.ok((over.checks.budgets as unknown as Budgets).budgets.rss!.ratio >= 1.5);
  });

  it('reads the DHT store records against their bound', () => {
    const node = new FakeNode();
    const health = new HealthMonitor({ node }, { maxRssBytes: 1e15 });
    node.store.size = 79_999;
    let b = health.report().checks.budgets as unknown as Budgets;
    assert.equal(b.status, 'ok');
    assert.deepEqual(b.budgets.dhtStoreRecords, { used: 79_999, limit: 100_000, ratio: 0.8 });
    node.store.size = 80_000;
    assert.equal(health.report().checks.budgets!.status, 'degraded');
    node.store.size = 100_000;
    b = health.report().checks.budgets as unknown as Budgets;
    assert.equal(b.status, 'fail');
    assert.equal(b.fullest, 'dhtStoreRecords');
  });

  it('takes added budgets, one reading each; a budget that may be full only degrades', () => {
    const health = new HealthMonitor({ node: new FakeNode() }, { maxRssBytes: 1e15 });
    let frameBytes = 0;
    health.addBudgets(() => [
      { name: 'frameBufferBytes', used: frameBytes, limit: 64 << 20 },
      { name: 'clients', used: 10, limit: 10, failAt: Infinity },
    ]);
    let b = health.report().checks.budgets as unknown as Budgets;
    assert.equal(b.status, 'degraded', 'clients at their limit degrade');
    assert.equal(b.fullest, 'clients');
    frameBytes = 64 << 20;
    b = health.report().checks.budgets as unknown as Budgets;
    assert.equal(b.status, 'fail');
    assert.deepEqual(Object.keys(b.budgets).sort(), ['clients', 'dhtStoreBytes', 'dhtStoreRecords', 'frameBufferBytes', 'frameBytes', 'preHelloConnections', 'rss']);
  });

  it('defaults the RSS limit to the cgroup limit or the total memory', () => {
    const d = defaultMaxRssBytes();
    assert.ok(d > 0 && d <= totalmem(), `${d}`);
    assert.equal(new HealthMonitor({ node: new FakeNode() }).maxRssBytes, d);
    assert.throws(() => new HealthMonitor({ node: new FakeNode() }, { maxRssBytes: 0 }), { code: 'MACULA_ERR_CONFIG' });
  });
});
