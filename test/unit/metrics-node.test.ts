import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { LookupStats } from '../../src/dht/lookup.js';
import type { DhtStats } from '../../src/dht/metrics.js';
import { HealthMonitor } from '../../src/metrics/health.js';
import { parsePrometheusText, sampleValue, type MetricFamily } from '../../src/metrics/exposition.js';
import { DHT_METRICS, instrumentNode, POOL_METRICS, QUEUE_METRICS, TRAFFIC_METRICS, TRANSPORT_METRICS } from '../../src/metrics/node-metrics.js';
import type { NodeSnapshot, ObservedNode, QueueStats, TrafficStats } from '../../src/metrics/node-sources.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import type { NodeStatus } from '../../src/node/mesh-node.js';
import type { PoolStats } from '../../src/transport/pool.js';
import type { TransportStats } from '../../src/transport/types.js';
import { ProtocolError } from '../../src/util/errors.js';
import { idleSnapshot } from '../helpers/snapshot.js';

/** A stand-in node whose stats the test sets directly. */
class FakeNode extends EventEmitter implements ObservedNode {
  running = true;
  ready = true;
  readonly #base = idleSnapshot();
  traffic: TrafficStats = this.#base.traffic;
  queues: QueueStats = this.#base.queues;
  poolStats: PoolStats = { open: 2, max: 10, dialed: 3, accepted: 4, failedDials: 1, evicted: 0, reaped: 5, refused: 0, duplicates: 1 };
  transportStats: TransportStats = { connectionsOpen: 2, connectionsDialed: 3, connectionsAccepted: 4, dialFailures: 1, streamsOpened: 6, streamsAccepted: 7 };
  dhtStats: DhtStats = {
    routingTableSize: 12,
    evictions: 0,
    records: 3,
    maxRecords: 100_000,
    keys: 2,
    bytes: 700,
    maxBytes: 64 * 1024 * 1024,
    maxPublisherBytes: 400,
    tombstones: 1,
    recordsEvicted: 0,
    ownRecords: 1,
    recordsStored: 5,
    recordsExpired: 2,
    storesRefused: { bad_signature: 1, stale: 0, expired: 0, ttl_too_long: 0, too_large: 0, key_full: 0, publisher_full: 0, store_full: 0, not_a_node: 0 },
    lookups: { node: { ok: 4 }, value: { found: 1, not_found: 2 } },
    lookupRoundsSum: { node: 8, value: 6 },
    lookupSkippedDown: 0,
    rpcSent: { FIND_NODE: 10, PING: 2 },
    rpcReceived: { FIND_NODE: 7 },
    timeouts: 1,
    failures: 0,
  };
  snapshot(): NodeSnapshot {
    return { ...this.#base, node: this.status(), pool: this.poolStats, transport: this.transportStats, dht: this.dhtStats, traffic: this.traffic, queues: this.queues };
  }
  status(): NodeStatus {
    return {
      nodeId: 'ab'.repeat(32),
      realm: 'default',
      listen: { host: '127.0.0.1', port: 1 },
      transport: 'memory',
      connections: this.poolStats.open,
      routingTableSize: this.dhtStats.routingTableSize,
      joined: this.ready,
      running: this.running,
      bootstrapNodes: 1,
      startedAt: 1_700_000_000_000,
    };
  }
}

const lookupStats = (over: Partial<LookupStats> & { durationMs?: number } = {}) => ({
  kind: 'node' as const,
  outcome: 'ok' as const,
  rounds: 3,
  roundsToTerminate: 5,
  messages: 12,
  timeouts: 0,
  failures: 0,
  rejectedContacts: 0,
  rejectedRecords: 0,
  ...over,
});

async function scrape(m: PrometheusMetrics): Promise<Map<string, MetricFamily>> {
  return parsePrometheusText(await m.metricsText());
}

describe('instrumentNode', () => {
  it('exposes node, pool, transport and DHT stats with Prometheus names and types', async () => {
    const node = new FakeNode();
    const m = new PrometheusMetrics({}, { defaultMetrics: false });
    instrumentNode(node, m);
    let f = await scrape(m);
    assert.equal(sampleValue(f, 'macula_node_info', { node_id: 'ab'.repeat(32), realm: 'default', transport: 'memory' }), 1);
    assert.equal(sampleValue(f, 'macula_up'), 1);
    assert.equal(sampleValue(f, 'macula_node_ready'), 1);
    assert.equal(sampleValue(f, 'macula_node_start_time_seconds'), 1_700_000_000);
    assert.equal(f.get('macula_pool_connections_open')?.type, 'gauge');
    assert.equal(sampleValue(f, 'macula_pool_connections_open'), 2);
    assert.equal(f.get('macula_pool_connections_reaped_total')?.type, 'counter');
    assert.equal(sampleValue(f, 'macula_pool_connections_reaped_total'), 5);
    assert.equal(sampleValue(f, 'macula_transport_streams_accepted_total'), 7);
    assert.equal(sampleValue(f, 'macula_transport_connections_refused_total'), 0);
    assert.equal(sampleValue(f, 'macula_dht_routing_table_size'), 12);
    assert.equal(sampleValue(f, 'macula_dht_stores_refused_total', { reason: 'bad_signature' }), 1);
    assert.equal(sampleValue(f, 'macula_dht_stores_refused_total', { reason: 'store_full' }), 0);
    assert.equal(sampleValue(f, 'macula_dht_store_bytes'), 700);
    assert.equal(sampleValue(f, 'macula_dht_store_max_bytes'), 64 * 1024 * 1024);
    assert.equal(sampleValue(f, 'macula_dht_lookups_total', { kind: 'node', outcome: 'ok' }), 4);
    // outcomes not seen yet exist at 0, so rate() works from the first one
    assert.equal(sampleValue(f, 'macula_dht_lookups_total', { kind: 'node', outcome: 'deadline' }), 0);
    assert.equal(sampleValue(f, 'macula_dht_lookups_total', { kind: 'value', outcome: 'not_found' }), 2);
    assert.equal(sampleValue(f, 'macula_dht_requests_sent_total', { type: 'FIND_NODE' }), 10);
    assert.equal(sampleValue(f, 'macula_protocol_errors_total', { kind: 'bad_cbor' }), 0);
    // an idle messenger: empty queues
    assert.equal(sampleValue(f, 'macula_send_queue_bytes'), 0);

    node.poolStats = { ...node.poolStats, open: 0, reaped: 7 };
    node.running = false;
    node.ready = false;
    f = await scrape(m);
    assert.equal(sampleValue(f, 'macula_pool_connections_open'), 0);
    assert.equal(sampleValue(f, 'macula_pool_connections_reaped_total'), 7);
    assert.equal(sampleValue(f, 'macula_up'), 0);
    assert.equal(sampleValue(f, 'macula_node_ready'), 0);
  });

  it('counts protocol errors by kind and observes lookups until closed', async () => {
    const node = new FakeNode();
    const m = new PrometheusMetrics({}, { defaultMetrics: false });
    const inst = instrumentNode(node, m);
    node.emit('protocol-error', new ProtocolError('bad_cbor', 'x'), undefined);
    node.emit('protocol-error', new ProtocolError('bad_cbor', 'x'), undefined);
    node.emit('protocol-error', new ProtocolError('frame_too_large', 'x'), undefined);
    node.emit('protocol-error', { kind: 'made_up' }, undefined);
    node.emit('lookup', lookupStats({ rounds: 2, durationMs: 4 }));
    node.emit('lookup', lookupStats({ kind: 'value', outcome: 'found', rounds: 7, durationMs: 300 } as never));
    node.emit('lookup', lookupStats({ rounds: 1 })); // no duration: only the rounds are observed

    let f = await scrape(m);
    assert.equal(sampleValue(f, 'macula_protocol_errors_total', { kind: 'bad_cbor' }), 2);
    assert.equal(sampleValue(f, 'macula_protocol_errors_total', { kind: 'frame_too_large' }), 1);
    assert.equal(sampleValue(f, 'macula_protocol_errors_total', { kind: 'other' }), 1);
    assert.equal(inst.protocolErrors().bad_cbor, 2);
    assert.equal(f.get('macula_dht_lookup_rounds')?.type, 'histogram');
    assert.equal(sampleValue(f, 'macula_dht_lookup_rounds_count', { kind: 'node' }), 2);
    assert.equal(sampleValue(f, 'macula_dht_lookup_rounds_bucket', { kind: 'node', le: '2' }), 2);
    assert.equal(sampleValue(f, 'macula_dht_lookup_rounds_bucket', { kind: 'value', le: '6' }), 0);
    assert.equal(sampleValue(f, 'macula_dht_lookup_rounds_bucket', { kind: 'value', le: '8' }), 1);
    assert.equal(sampleValue(f, 'macula_dht_lookup_duration_seconds_count', { kind: 'node' }), 1);
    assert.equal(sampleValue(f, 'macula_dht_lookup_duration_seconds_bucket', { kind: 'node', le: '0.005' }), 1);
    assert.equal(sampleValue(f, 'macula_dht_lookup_duration_seconds_bucket', { kind: 'value', le: '0.25' }), 0);
    assert.equal(sampleValue(f, 'macula_dht_lookup_duration_seconds_bucket', { kind: 'value', le: '0.5' }), 1);

    inst.close();
    assert.equal(node.listenerCount('protocol-error'), 0);
    assert.equal(node.listenerCount('lookup'), 0);
    node.emit('protocol-error', new ProtocolError('bad_cbor', 'x'), undefined);
    f = await scrape(m);
    assert.equal(sampleValue(f, 'macula_protocol_errors_total', { kind: 'bad_cbor' }), 2);
  });

  it('reads message and queue metrics from the snapshot', async () => {
    const node = new FakeNode();
    const traffic: TrafficStats = { received: { FIND_NODE: 3, HELLO: 1 }, sent: { NODES: 3 }, oneWayDropped: { in_flight_limit: 2, refused: 0 } };
    const queues: QueueStats = {
      sendQueuedBytes: 700,
      sendQueueLargestBytes: 600,
      sendQueueLimitBytes: 1000,
      requestsInFlight: 4,
      requestsInFlightLargest: 3,
      maxInFlight: 10,
      requestsPending: 2,
    };
    node.traffic = traffic;
    node.queues = queues;
    const m = new PrometheusMetrics({}, { defaultMetrics: false });
    instrumentNode(node, m);
    const f = await scrape(m);
    assert.equal(f.get('macula_messages_received_total')?.type, 'counter');
    assert.equal(sampleValue(f, 'macula_messages_received_total', { type: 'FIND_NODE' }), 3);
    assert.equal(sampleValue(f, 'macula_messages_sent_total', { type: 'NODES' }), 3);
    assert.equal(sampleValue(f, 'macula_send_queue_bytes'), 700);
    assert.equal(sampleValue(f, 'macula_send_queue_largest_bytes'), 600);
    assert.equal(sampleValue(f, 'macula_requests_pending'), 2);

    const health = new HealthMonitor({ node }, { saturationDegradedRatio: 0.5 });
    const report = health.report();
    const sat = report.checks.queueSaturation!;
    assert.equal(sat.status, 'degraded'); // 3 of 10 in flight is fine, 60 % of the send queue is not
    assert.equal(sat.fullest, 'sendQueue');
    assert.deepEqual((sat.queues as Record<string, unknown>).requestsInFlight, { used: 3, limit: 10, ratio: 0.3 });
  });

  it('names every metric by the conventions', () => {
    const all = [...POOL_METRICS, ...TRANSPORT_METRICS, ...DHT_METRICS, ...TRAFFIC_METRICS, ...QUEUE_METRICS];
    const names = new Set<string>();
    for (const spec of all) {
      assert.match(spec.name, /^macula_[a-z0-9_]+$/, spec.name);
      assert.equal(spec.name.endsWith('_total'), spec.type === 'counter', `${spec.name}: _total exactly on counters`);
      assert.ok(!names.has(spec.name), `${spec.name} is unique`);
      assert.ok(spec.help.endsWith('.'), `${spec.name} has a sentence as help`);
      names.add(spec.name);
    }
  });
});

describe('HealthMonitor', () => {
  it('reports the worst check; a full pool only degrades; not joined degrades; stopped fails', () => {
    const node = new FakeNode();
    const health = new HealthMonitor({ node });
    let r = health.report();
    assert.equal(r.status, 'ok');
    assert.deepEqual(Object.keys(r.checks), ['eventLoopLag', 'queueSaturation', 'budgets', 'joinedMesh']);
    assert.equal(r.checks.eventLoopLag!.status, 'ok');
    assert.equal(r.checks.eventLoopLag!.thresholdMs, 100);

    node.poolStats = { ...node.poolStats, open: 10 };
    r = health.report();
    assert.equal(r.checks.queueSaturation!.status, 'degraded');
    assert.equal(r.checks.queueSaturation!.fullest, 'connectionPool');

    node.ready = false;
    r = health.report();
    assert.equal(r.checks.joinedMesh!.status, 'degraded');
    node.running = false;
    r = health.report();
    assert.equal(r.checks.joinedMesh!.status, 'fail');
    assert.equal(r.status, 'fail');
  });

  it('takes extra saturation sources and checks; a check that throws fails', () => {
    const node = new FakeNode();
    const health = new HealthMonitor({ node });
    health.addSaturationSource('fanout', () => ({ used: 10, limit: 10 }));
    assert.equal(health.report().checks.queueSaturation!.status, 'fail');
    health.addSaturationSource('fanout', () => undefined);
    assert.equal(health.report().checks.queueSaturation!.status, 'ok');
    health.addCheck('custom', () => {
      throw new Error('broken');
    });
    const r = health.report();
    assert.equal(r.status, 'fail');
    assert.deepEqual(r.checks.custom, { status: 'fail', error: 'broken' });
  });

  it('measures event-loop lag once started, net of the sampling period', async () => {
    const health = new HealthMonitor({ node: new FakeNode() }, { lagResolutionMs: 5, lagDegradedMs: 50 });
    assert.equal(health.eventLoopLag().samples, 0);
    health.start();
    try {
      // the monitor samples once its timer runs: wait for its first samples, block the loop once, then poll (no fixed sleep) until it saw the block
      const armed = Date.now() + 5000;
      while (health.eventLoopLag().samples < 2 && Date.now() < armed) await new Promise((r) => setTimeout(r, 5));
      const t = Date.now();
      while (Date.now() - t < 120);
      const deadline = Date.now() + 5000;
      while (health.eventLoopLag().maxMs < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const lag = health.eventLoopLag();
      assert.ok(lag.maxMs >= 60, `max lag ${lag.maxMs} ms after blocking 120 ms`);
      assert.ok(lag.samples > 0);
    } finally {
      health.stop();
    }
  });
});
