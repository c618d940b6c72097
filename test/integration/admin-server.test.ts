import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.js';
import { AdminServer } from '../../src/metrics/admin-server.js';
import { parsePrometheusText, sampleValue, type MetricFamily } from '../../src/metrics/exposition.js';
import { instrumentNode, type NodeInstrumentation } from '../../src/metrics/node-metrics.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { QuicTransport } from '../../src/transport/quic.js';
import { createTestnet, waitFor, type Testnet } from '../helpers/testnet.js';

/** Resolves with `p`, or rejects once `ms` have passed (so a hang fails the test instead of stalling it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function get(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), headers: res.headers };
}

async function scrape(base: string): Promise<Map<string, MetricFamily>> {
  const res = await get(base, '/metrics');
  assert.equal(res.status, 200);
  assert.match(res.type, /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(res.text);
}

describe('admin server on a real QUIC node', () => {
  let net: Testnet;
  let node: MeshNode;
  let metrics: PrometheusMetrics;
  let instrumentation: NodeInstrumentation;
  let admin: AdminServer;
  let base: string;

  before(async () => {
    net = await createTestnet(2);
    node = net.nodes[1]!; // joined through nodes[0]
    metrics = new PrometheusMetrics();
    instrumentation = instrumentNode(node, metrics);
    admin = new AdminServer({ node, metrics, instrumentation }, { port: 0 });
    await admin.listen();
    base = admin.url!;
  });

  after(async () => {
    instrumentation?.close();
    await admin?.close();
    await net?.destroy();
  });

  it('binds to 127.0.0.1 by default, on a free port', () => {
    assert.equal(admin.host, '127.0.0.1');
    assert.equal(admin.address?.host, '127.0.0.1');
    assert.ok(admin.address!.port > 0);
    assert.equal(base, `http://127.0.0.1:${admin.address!.port}`);
  });

  it('serves /metrics in the Prometheus text format with the node, pool, DHT and process families', async () => {
    const f = await scrape(base);
    const expectType = (name: string, type: string) => assert.equal(f.get(name)?.type, type, `${name} is a ${type}`);
    expectType('macula_pool_connections_open', 'gauge');
    expectType('macula_pool_connections_max', 'gauge');
    expectType('macula_pool_connections_dialed_total', 'counter');
    expectType('macula_protocol_errors_total', 'counter');
    expectType('macula_transport_connections_open', 'gauge');
    expectType('macula_dht_routing_table_size', 'gauge');
    expectType('macula_dht_lookups_total', 'counter');
    expectType('macula_dht_lookup_rounds', 'histogram');
    expectType('macula_dht_lookup_duration_seconds', 'histogram');
    expectType('macula_up', 'gauge');
    expectType('macula_registry_cache_hits_total', 'counter');
    expectType('macula_registry_cache_entries', 'gauge');
    expectType('macula_rpc_calls_total', 'counter');
    expectType('macula_rpc_call_duration_seconds', 'histogram');
    expectType('macula_rpc_served_total', 'counter');
    expectType('macula_liveness_nodes_down', 'gauge');
    expectType('macula_liveness_marked_down_total', 'counter');
    expectType('macula_reachability', 'gauge');
    expectType('macula_dial_backs_total', 'counter');
    expectType('macula_relay_circuits', 'gauge');
    expectType('macula_relay_refused_total', 'counter');
    expectType('macula_relays_held', 'gauge');
    expectType('nodejs_heap_size_used_bytes', 'gauge');
    assert.ok(f.has('nodejs_eventloop_lag_seconds'));
    assert.equal(sampleValue(f, 'macula_up'), 1);
    assert.equal(sampleValue(f, 'macula_node_ready'), 1);
    assert.equal(sampleValue(f, 'macula_node_info', { node_id: node.nodeId, realm: node.realm, transport: 'quic' }), 1);
    assert.ok(sampleValue(f, 'macula_pool_connections_open')! >= 1, 'connected to the bootstrap node');
    assert.equal(sampleValue(f, 'macula_pool_connections_max'), node.pool.maxConnections);
    assert.ok(sampleValue(f, 'macula_dht_routing_table_size')! >= 1);
    assert.ok(sampleValue(f, 'macula_dht_requests_sent_total', { type: 'FIND_NODE' })! >= 1, 'the join looked itself up');
    assert.ok(sampleValue(f, 'macula_dht_lookups_total', { kind: 'node', outcome: 'ok' })! >= 1);
    for (const family of f.values()) {
      if (family.name.startsWith('macula_') && family.type === 'counter') assert.ok(family.name.endsWith('_total'), family.name);
    }
  });

  it('counts messages by type and reports queue depths', async () => {
    await node.ping(net.nodes[0]!.listenAddress!, net.nodes[0]!.nodeId);
    const f = await scrape(base);
    assert.equal(f.get('macula_messages_sent_total')?.type, 'counter');
    assert.ok(sampleValue(f, 'macula_messages_sent_total', { type: 'PING' })! >= 1);
    assert.ok(sampleValue(f, 'macula_messages_received_total', { type: 'PONG' })! >= 1);
    // the join, counted from the start although instrumentNode() came later: the messenger keeps the counts
    assert.ok(sampleValue(f, 'macula_messages_sent_total', { type: 'FIND_NODE' })! >= 1);
    assert.ok(sampleValue(f, 'macula_messages_received_total', { type: 'NODES' })! >= 1);
    assert.equal(f.get('macula_send_queue_bytes')?.type, 'gauge');
    assert.equal(sampleValue(f, 'macula_requests_in_flight_max'), node.messenger.maxInFlight);
    assert.ok(sampleValue(f, 'macula_send_queue_limit_bytes')! > 0);
    const health = JSON.parse((await get(base, '/health')).text);
    assert.ok('sendQueue' in health.checks.queueSaturation.queues);
    assert.ok('requestsInFlight' in health.checks.queueSaturation.queues);
  });

  it('observes every DHT lookup in the rounds and latency histograms', async (t) => {
    const target = new Uint8Array(32).map(() => Math.floor(Math.random() * 256));
    const result = await node.dht.findNode(target);
    if (!('durationMs' in result.stats)) return t.skip('lookups carry no duration');
    await waitFor(
      async () => (sampleValue(await scrape(base), 'macula_dht_lookup_duration_seconds_count', { kind: 'node' }) ?? 0) >= 1,
      5000,
      'lookup observed',
    );
    const f = await scrape(base);
    assert.ok(sampleValue(f, 'macula_dht_lookup_rounds_count', { kind: 'node' })! >= 1);
    assert.ok(sampleValue(f, 'macula_dht_lookup_duration_seconds_sum', { kind: 'node' })! > 0);
  });

  it('counts a protocol error by kind when a peer sends a frame that is not a message', async () => {
    const before = sampleValue(await scrape(base), 'macula_protocol_errors_total', { kind: 'bad_envelope' });
    assert.equal(before, 0);
    // A bare transport with a fresh identity: a peer that speaks QUIC but not the protocol.
    const rogue = new QuicTransport({ identity: Identity.generate() });
    try {
      const conn = await rogue.dial(node.listenAddress!);
      const stream = await conn.openStream();
      // u32 length 1, then the CBOR integer 1: valid CBOR, but not a message map
      await stream.write(Uint8Array.from([0, 0, 0, 1, 0x01]));
      await waitFor(
        async () => sampleValue(await scrape(base), 'macula_protocol_errors_total', { kind: 'bad_envelope' }) === 1,
        10_000,
        'protocol error counted',
      );
      await waitFor(() => conn.isClosed, 10_000, 'the offending connection closed');
    } finally {
      await rogue.close();
    }
    assert.equal(instrumentation.protocolErrors().bad_envelope, 1);
  });

  it('answers /health with every check and 200 while ok or degraded', async () => {
    const res = await get(base, '/health');
    assert.equal(res.status, 200);
    assert.match(res.type, /^application\/json/);
    const body = JSON.parse(res.text) as { status: string; checks: Record<string, { status: string; [k: string]: unknown }> };
    assert.ok(body.status === 'ok' || body.status === 'degraded', body.status);
    assert.deepEqual(Object.keys(body.checks).sort(), ['budgets', 'eventLoopLag', 'joinedMesh', 'queueSaturation', 'reachability']);
    assert.ok(['public', 'private', 'unknown'].includes(body.checks.reachability!.reachability as string), 'the reachability check shows its answer');
    assert.deepEqual(Object.keys(body.checks.budgets!.budgets as object).sort(), ['dhtStoreBytes', 'dhtStoreRecords', 'frameBytes', 'preHelloConnections', 'rss'], 'a real node reports its RSS, DHT store and frame and connection budgets');
    assert.equal(body.checks.joinedMesh!.status, 'ok');
    assert.equal(typeof body.checks.eventLoopLag!.valueMs, 'number');
    assert.equal(body.checks.eventLoopLag!.thresholdMs, 100);
    assert.equal(typeof body.checks.queueSaturation!.ratio, 'number');
    assert.ok('connectionPool' in (body.checks.queueSaturation!.queues as object));
  });

  it('answers /ready and /live', async () => {
    const ready = await get(base, '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.text), { ready: true });
    const live = await get(base, '/live');
    assert.equal(live.status, 200);
    assert.deepEqual(JSON.parse(live.text), { live: true });
    const head = await get(base, '/live', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });

  it('serves a /stats snapshot, extensible with sections', async () => {
    admin.addStatsSection('example', () => ({ answered: 42 }));
    admin.addStatsSection('broken', () => {
      throw new Error('not available');
    });
    assert.throws(() => admin.addStatsSection('dht', () => ({})), /built-in/);
    assert.throws(() => admin.addStatsSection('example', () => ({})), /already/);
    const res = await get(base, '/stats');
    assert.equal(res.status, 200);
    const s = JSON.parse(res.text) as Record<string, any>;
    assert.equal(s.node.nodeId, node.nodeId);
    assert.equal(s.node.transport, 'quic');
    assert.ok(s.pool.open >= 1);
    assert.equal(s.pool.max, node.pool.maxConnections);
    assert.ok(s.dht.routingTableSize >= 1);
    assert.equal(typeof s.transport.connectionsOpen, 'number');
    assert.equal(s.protocolErrors.bad_envelope, 1);
    assert.ok(s.process.memory.heapUsedBytes > 0);
    assert.equal(typeof s.process.eventLoopLag.p99Ms, 'number');
    assert.ok(['ok', 'degraded'].includes(s.health));
    assert.deepEqual(s.example, { answered: 42 });
    assert.deepEqual(s.broken, { error: 'not available' });
    assert.ok(!Number.isNaN(Date.parse(s.generatedAt)));
  });

  it('answers 404 for unknown paths and 405 for other methods, without reading bodies', async () => {
    const missing = await get(base, '/nope');
    assert.equal(missing.status, 404);
    assert.match(JSON.parse(missing.text).error, /no such endpoint/);
    const withQuery = await get(base, '/live?verbose=1');
    assert.equal(withQuery.status, 200);

    const post = await get(base, '/metrics', { method: 'POST', body: 'x'.repeat(10_000) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal(post.headers.get('connection'), 'close');
    assert.match(JSON.parse(post.text).error, /POST is not allowed/);
    const del = await get(base, '/stats', { method: 'DELETE' });
    assert.equal(del.status, 405);
  });
});

describe('admin server of a node that has not joined', () => {
  it('answers /ready 503 and a degraded /health while joining, 503 for both once stopped, and closes its keep-alive sockets', async () => {
    const quiet = { warn: () => {} };
    // A bootstrap address where nobody answers: the node runs but cannot join.
    const node = new MeshNode(Identity.generate(), {
      host: '127.0.0.1',
      port: 0,
      bootstrap: [{ host: '127.0.0.1', port: 9 }],
      transport: { handshakeTimeoutMs: 300 },
      logger: quiet,
      stopTimeoutMs: 500,
    });
    await node.start();
    const metrics = new PrometheusMetrics({}, { defaultMetrics: false });
    const instrumentation = instrumentNode(node, metrics);
    const admin = new AdminServer({ node, metrics, instrumentation });
    try {
      await admin.listen();
      assert.equal(admin.address?.host, '127.0.0.1');
      const base = admin.url!;
      const ready = await get(base, '/ready');
      assert.equal(ready.status, 503);
      assert.equal(JSON.parse(ready.text).ready, false);
      let health = await get(base, '/health');
      assert.equal(health.status, 200);
      let body = JSON.parse(health.text);
      assert.equal(body.checks.joinedMesh.status, 'degraded');
      assert.equal(body.checks.joinedMesh.bootstrapNodes, 1);
      assert.equal(sampleValue(await scrape(base), 'macula_node_ready'), 0);

      await node.stop();
      health = await get(base, '/health');
      assert.equal(health.status, 503);
      body = JSON.parse(health.text);
      assert.equal(body.status, 'fail');
      assert.equal(body.checks.joinedMesh.status, 'fail');
      assert.equal((await get(base, '/ready')).status, 503);
      assert.equal((await get(base, '/live')).status, 200);
      assert.equal(sampleValue(await scrape(base), 'macula_up'), 0);

      // A client holding an idle keep-alive socket must not keep close() waiting.
      const keptAlive = await new Promise<boolean>((resolve, reject) => {
        const req = httpRequest(`${base}/live`, { headers: { connection: 'keep-alive' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(!req.socket?.destroyed));
        });
        req.on('error', reject);
        req.end();
      });
      assert.ok(keptAlive);
      await within(admin.close(), 2000, 'close() with a keep-alive socket open');
      await assert.rejects(fetch(`${base}/live`));
    } finally {
      instrumentation.close();
      await admin.close();
      await node.stop();
    }
  });

  it('refuses an address that is taken, with a message saying what to do', async () => {
    const node = new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: { warn: () => {} } });
    const first = new AdminServer({ node });
    const { port } = await first.listen();
    const second = new AdminServer({ node }, { port });
    try {
      await assert.rejects(second.listen(), /port \d+ is in use on 127\.0\.0\.1; choose another admin port/);
      assert.equal((await get(first.url!, '/metrics')).status, 404); // no metrics given
    } finally {
      await second.close();
      await first.close();
    }
  });
});
