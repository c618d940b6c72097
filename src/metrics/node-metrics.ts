/**
 * The metrics of one mesh node, registered on any `Metrics` implementation.
 *
 * Almost everything is pulled at scrape time from the node's one
 * `snapshot()` (taken once per scrape, see snapshotReader), the same shape
 * `/stats` and `macula stats` show, so the hot paths only bump plain
 * numbers and a node without metrics pays nothing. Pushed are the
 * per-event observations a snapshot cannot give: DHT lookups (rounds and
 * latency histograms, from the node's 'lookup' event), RPC call latency
 * ('rpc-call') and protocol errors by kind ('protocol-error').
 *
 * A new section of the snapshot gets its metrics as a table of
 * `StatsMetric`s registered with `registerStatsMetrics()`.
 *
 * Naming: `macula_` prefix, base units (`_seconds`, `_bytes`), `_total` on
 * counters, label values from small closed sets (message type names,
 * error kinds, refusal reasons), never peer IDs or addresses.
 */
import { registerServiceMetrics } from './service-metrics.js';
import type { RealmGuardStats } from '../auth/realm-guard.js';
import { WEB_METRICS } from './web-metrics.js';
import { STORE_REFUSAL_REASONS } from '../dht/errors.js';
import { BUDGET_REFUSAL_REASONS } from '../wire/budget.js';
import type { LookupStats } from '../dht/lookup.js';
import type { DhtStats } from '../dht/metrics.js';
import type { PoolStats } from '../transport/pool.js';
import type { TransportStats } from '../transport/types.js';
import type { ProtocolErrorKind } from '../util/errors.js';
import { registerStatsMetrics, samplesByLabel, type Metrics, type Sample, type StatsMetric } from './metrics.js';
import { SnapshotReader, type ObservedNode, type QueueStats, type TrafficStats } from './node-sources.js';
import { REACHABILITY_METRICS, RELAY_CLIENT_METRICS, RELAY_SERVER_METRICS } from './nat-metrics.js';

// ---- tables -----------------------------------------------------------------

export const POOL_METRICS: readonly StatsMetric<PoolStats>[] = [
  { type: 'gauge', name: 'macula_pool_connections_open', help: 'Connections open in the pool (inbound and outbound).', value: (s) => s.open },
  { type: 'gauge', name: 'macula_pool_connections_max', help: 'Most connections the pool keeps open (maxConnections).', value: (s) => s.max },
  { type: 'counter', name: 'macula_pool_connections_dialed_total', help: 'Outbound connections the pool dialed successfully.', value: (s) => s.dialed },
  { type: 'counter', name: 'macula_pool_connections_accepted_total', help: 'Inbound connections the pool accepted.', value: (s) => s.accepted },
  { type: 'counter', name: 'macula_pool_dial_failures_total', help: 'Dials by the pool that failed (unreachable, handshake error, wrong node ID, timeout).', value: (s) => s.failedDials },
  { type: 'counter', name: 'macula_pool_connections_evicted_total', help: 'Idle connections closed to make room when the pool was full (LRU).', value: (s) => s.evicted },
  { type: 'counter', name: 'macula_pool_connections_reaped_total', help: 'Connections closed by the idle reaper.', value: (s) => s.reaped },
  { type: 'counter', name: 'macula_pool_connections_refused_total', help: 'Connections refused because the pool was full and every connection was busy.', value: (s) => s.refused },
  { type: 'counter', name: 'macula_pool_connections_duplicate_total', help: 'Second connections to an already connected node (simultaneous dials); one of the two is retired.', value: (s) => s.duplicates },
];

export const TRANSPORT_METRICS: readonly StatsMetric<TransportStats>[] = [
  { type: 'gauge', name: 'macula_transport_connections_open', help: 'Connections open at the transport (QUIC or memory).', value: (s) => s.connectionsOpen },
  { type: 'counter', name: 'macula_transport_connections_dialed_total', help: 'Outbound connections established by the transport.', value: (s) => s.connectionsDialed },
  { type: 'counter', name: 'macula_transport_connections_accepted_total', help: 'Inbound connections established by the transport.', value: (s) => s.connectionsAccepted },
  { type: 'counter', name: 'macula_transport_dial_failures_total', help: 'Outbound connection attempts that failed at the transport.', value: (s) => s.dialFailures },
  { type: 'counter', name: 'macula_transport_connections_refused_total', help: 'Inbound connections aborted because too many were waiting to be accepted or they came faster than the admission rate.', value: (s) => s.connectionsRefused ?? 0 },
  { type: 'counter', name: 'macula_transport_streams_opened_total', help: 'Streams this node opened.', value: (s) => s.streamsOpened },
  { type: 'counter', name: 'macula_transport_streams_accepted_total', help: 'Streams peers opened to this node.', value: (s) => s.streamsAccepted },
  { type: 'counter', name: 'macula_transport_streams_refused_total', help: 'Inbound streams reset because too many were waiting to be accepted.', value: (s) => s.streamsRefused ?? 0 },
];

/** Outcomes per lookup kind, listed so every series exists (at 0) before the first lookup. */
const LOOKUP_OUTCOMES = { node: ['ok', 'empty', 'deadline'], value: ['found', 'not_found', 'deadline'] } as const;

export const DHT_METRICS: readonly StatsMetric<DhtStats>[] = [
  { type: 'gauge', name: 'macula_dht_routing_table_size', help: 'Contacts in the routing table.', value: (s) => s.routingTableSize },
  { type: 'counter', name: 'macula_dht_routing_table_evictions_total', help: 'Contacts evicted from the routing table by ping-then-evict.', value: (s) => s.evictions },
  { type: 'gauge', name: 'macula_dht_records', help: 'Live records held in the local store, every key and publisher (tombstones not included).', value: (s) => s.records },
  { type: 'gauge', name: 'macula_dht_store_bytes', help: 'Accounted bytes of the live records in the local store (value + 160 B each).', value: (s) => s.bytes },
  { type: 'gauge', name: 'macula_dht_store_max_bytes', help: 'Bound of macula_dht_store_bytes; records past it are refused (store_full).', value: (s) => s.maxBytes },
  { type: 'gauge', name: 'macula_dht_store_publisher_largest_bytes', help: 'Accounted bytes of the publisher holding the most in the local store.', value: (s) => s.maxPublisherBytes },
  { type: 'gauge', name: 'macula_dht_tombstones', help: 'Tombstones (withdrawn records) held in the local store; bounded on their own.', value: (s) => s.tombstones },
  { type: 'counter', name: 'macula_dht_records_evicted_total', help: 'Records evicted to make room: under a full key for a present publisher, and tombstones past their bounds.', value: (s) => s.recordsEvicted },
  { type: 'gauge', name: 'macula_dht_record_keys', help: 'Distinct keys in the local store.', value: (s) => s.keys },
  { type: 'gauge', name: 'macula_dht_own_records', help: 'Records this node publishes and re-announces.', value: (s) => s.ownRecords },
  { type: 'counter', name: 'macula_dht_records_stored_total', help: 'Records stored or replaced in the local store.', value: (s) => s.recordsStored },
  { type: 'counter', name: 'macula_dht_records_expired_total', help: 'Records removed from the local store at the end of their TTL.', value: (s) => s.recordsExpired },
  {
    type: 'counter',
    name: 'macula_dht_stores_refused_total',
    help: 'Records the local store refused, by reason (bad_signature, stale, expired, ttl_too_long, too_large, key_full, publisher_full, store_full, not_a_node).',
    labelNames: ['reason'],
    value: (s) => STORE_REFUSAL_REASONS.map((reason): Sample => [{ reason }, s.storesRefused[reason] ?? 0]),
  },
  {
    type: 'counter',
    name: 'macula_dht_lookups_total',
    help: 'Finished DHT lookups by kind (node, value) and outcome (ok, empty, found, not_found, deadline).',
    labelNames: ['kind', 'outcome'],
    value: (s) =>
      (['node', 'value'] as const).flatMap((kind) => {
        const seen = s.lookups[kind] ?? {};
        const outcomes = new Set<string>([...LOOKUP_OUTCOMES[kind], ...Object.keys(seen)]);
        return [...outcomes].map((outcome): Sample => [{ kind, outcome }, (seen as Record<string, number>)[outcome] ?? 0]);
      }),
  },
  { type: 'counter', name: 'macula_dht_requests_sent_total', help: 'DHT requests sent, by message type.', labelNames: ['type'], value: (s) => samplesByLabel('type', s.rpcSent) },
  { type: 'counter', name: 'macula_dht_requests_received_total', help: 'DHT requests received and handled, by message type.', labelNames: ['type'], value: (s) => samplesByLabel('type', s.rpcReceived) },
  { type: 'counter', name: 'macula_dht_request_timeouts_total', help: 'DHT requests sent that got no answer in time.', value: (s) => s.timeouts },
  { type: 'counter', name: 'macula_dht_lookup_skipped_down_total', help: 'Contacts DHT lookups did not ask because the failure detection held their node down.', value: (s) => s.lookupSkippedDown },
  { type: 'counter', name: 'macula_dht_request_failures_total', help: 'DHT requests sent that failed other than by timeout (dial or stream error, ERROR answer).', value: (s) => s.failures },
];

export const TRAFFIC_METRICS: readonly StatsMetric<TrafficStats>[] = [
  { type: 'counter', name: 'macula_messages_received_total', help: 'Messages received from peers, by message type.', labelNames: ['type'], value: (s) => samplesByLabel('type', s.received) },
  { type: 'counter', name: 'macula_messages_sent_total', help: 'Messages queued for sending to peers, by message type.', labelNames: ['type'], value: (s) => samplesByLabel('type', s.sent) },
  {
    type: 'counter',
    name: 'macula_oneway_dropped_total',
    help: 'One-way messages received and dropped, by reason (in_flight_limit, refused).',
    labelNames: ['reason'],
    value: (s) => samplesByLabel('reason', s.oneWayDropped),
  },
];

export const QUEUE_METRICS: readonly StatsMetric<QueueStats>[] = [
  { type: 'gauge', name: 'macula_send_queue_bytes', help: 'Bytes waiting to be written, summed over every stream.', value: (s) => s.sendQueuedBytes },
  { type: 'gauge', name: 'macula_send_queue_largest_bytes', help: 'Bytes waiting on the fullest stream (each stream is bounded on its own).', value: (s) => s.sendQueueLargestBytes },
  { type: 'gauge', name: 'macula_send_queue_limit_bytes', help: 'Bound of one stream send queue; sends beyond it are refused.', value: (s) => s.sendQueueLimitBytes },
  { type: 'gauge', name: 'macula_requests_in_flight', help: 'Requests from peers being served now.', value: (s) => s.requestsInFlight },
  { type: 'gauge', name: 'macula_requests_in_flight_largest', help: 'Requests being served on the busiest connection.', value: (s) => s.requestsInFlightLargest },
  { type: 'gauge', name: 'macula_requests_in_flight_max', help: 'Requests served at once per connection before peers are answered BUSY.', value: (s) => s.maxInFlight },
  { type: 'gauge', name: 'macula_requests_pending', help: 'Requests this node sent that await their response.', value: (s) => s.requestsPending },
  {
    type: 'gauge',
    name: 'macula_budget_used',
    help: 'How much of each budget is in use now (frame_bytes: bytes of unfinished frames; pre_hello_connections: inbound connections not yet past HELLO).',
    labelNames: ['budget'],
    value: (s) => budgetSamples(s, 'used'),
  },
  { type: 'gauge', name: 'macula_budget_limit', help: 'The limit of each budget (see macula_budget_used).', labelNames: ['budget'], value: (s) => budgetSamples(s, 'limit') },
  {
    type: 'counter',
    name: 'macula_budget_refusals_total',
    help: `Frames, connections and handshakes refused by a budget, by reason (${BUDGET_REFUSAL_REASONS.join(', ')}).`,
    labelNames: ['reason'],
    value: (s) => BUDGET_REFUSAL_REASONS.map((reason): Sample => [{ reason }, s.budgetRefusals?.[reason] ?? 0]),
  },
];

const BUDGET_LABELS = { frameBytes: 'frame_bytes', preHelloConnections: 'pre_hello_connections' } as const;

function budgetSamples(s: QueueStats, field: 'used' | 'limit'): Sample[] {
  if (!s.budgets) return [];
  return (Object.keys(BUDGET_LABELS) as (keyof typeof BUDGET_LABELS)[]).map((k): Sample => [{ budget: BUDGET_LABELS[k] }, s.budgets![k][field]]);
}

export const AUTH_METRICS: readonly StatsMetric<RealmGuardStats>[] = [
  {
    type: 'counter',
    name: 'macula_auth_refusals_total',
    help: 'Peers refused at HELLO, or dropped later (expired, revoked), in a secured realm, by reason.',
    labelNames: ['reason'],
    value: (s) => samplesByLabel('reason', s.refusals),
  },
  {
    type: 'counter',
    name: 'macula_auth_forbidden_total',
    help: 'Requests refused because the sender\'s credential lacks the permission, by action.',
    labelNames: ['action'],
    value: (s) => samplesByLabel('action', s.forbidden),
  },
  { type: 'counter', name: 'macula_auth_admitted_total', help: 'Peers admitted with a valid credential.', value: (s) => s.admitted },
  {
    type: 'counter',
    name: 'macula_auth_records_refused_total',
    help: "DHT records refused or skipped because the publisher's credential does not permit what they claim.",
    value: (s) => s.recordsRefused,
  },
  { type: 'gauge', name: 'macula_auth_verified_cache_entries', help: 'Verified credential chains cached.', value: (s) => s.verifiedCached },
  { type: 'gauge', name: 'macula_auth_revoked_entries', help: 'Entries of the revocation list in force.', value: (s) => s.revokedEntries },
  {
    type: 'gauge',
    name: 'macula_auth_credential_expiry_seconds',
    help: "When this node's own credential expires, in seconds since the Unix epoch.",
    value: (s) => s.ownExpiresAt / 1000,
  },
];

/** Every protocol error kind, so each series exists at 0 (the Record makes the compiler check the list is complete). */
const PROTOCOL_ERROR_KINDS = Object.keys({
  frame_too_large: true,
  truncated_frame: true,
  bad_cbor: true,
  bad_envelope: true,
  bad_version: true,
  unknown_type: true,
  invalid_message: true,
  unexpected_message: true,
} satisfies Record<ProtocolErrorKind, true>) as ProtocolErrorKind[];

/** Lookup rounds: sequential waves of up to alpha requests (a few for a healthy mesh). */
export const LOOKUP_ROUNDS_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20];
/** Lookup latency: from sub-millisecond on loopback up to the 10 s lookup deadline. */
export const LOOKUP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// ---- the node ---------------------------------------------------------------

export interface NodeInstrumentation {
  /** Protocol errors by kind seen since instrumentNode() (for /stats). */
  protocolErrors(): Record<string, number>;
  /** Stops listening to the node's events; the metrics stay registered and keep reading the node's stats. */
  close(): void;
}

/**
 * Registers the metrics of `node` on `metrics`. Call it once per node and
 * metrics instance, before `node.start()` so no event is missed.
 */
export function instrumentNode(node: ObservedNode, metrics: Metrics): NodeInstrumentation {
  const reader = new SnapshotReader(node);
  metrics.onScrape?.(() => reader.reset());
  const snapshot = reader.read;
  metrics.gauge({
    name: 'macula_node_info',
    help: 'Always 1; the labels identify the node (node_id, realm, transport).',
    labelNames: ['node_id', 'realm', 'transport'],
    collect: () => {
      const s = snapshot().node;
      return [[{ node_id: s.nodeId, realm: s.realm, transport: s.transport }, 1]];
    },
  });
  metrics.gauge({ name: 'macula_up', help: '1 while the node runs (started and not stopped), else 0.', collect: () => (snapshot().node.running ? 1 : 0) });
  metrics.gauge({ name: 'macula_node_ready', help: '1 once the node has joined the mesh (see /ready), else 0.', collect: () => (snapshot().node.joined ? 1 : 0) });
  metrics.gauge({
    name: 'macula_node_start_time_seconds',
    help: 'When the node started, in seconds since the Unix epoch (0 before start).',
    collect: () => snapshot().node.startedAt / 1000,
  });

  registerStatsMetrics(metrics, () => snapshot().pool, POOL_METRICS);
  registerStatsMetrics(metrics, () => snapshot().transport, TRANSPORT_METRICS);
  registerStatsMetrics(metrics, () => snapshot().dht, DHT_METRICS);
  registerStatsMetrics(metrics, () => snapshot().traffic, TRAFFIC_METRICS);
  registerStatsMetrics(metrics, () => snapshot().queues, QUEUE_METRICS);
  // Which optional sections the node has, read from one snapshot.
  const first = snapshot();
  // A secured realm's counters; an open realm has none (and no such families).
  if (first.auth !== undefined) registerStatsMetrics(metrics, () => snapshot().auth!, AUTH_METRICS);
  const onCall = registerServiceMetrics(metrics, snapshot);
  // Behind a NAT: the reachability check and relaying, when the node runs them.
  const nat = first.nat;
  if (nat?.reachability) registerStatsMetrics(metrics, () => snapshot().nat!.reachability!, REACHABILITY_METRICS);
  if (nat?.relay) registerStatsMetrics(metrics, () => snapshot().nat!.relay!, RELAY_SERVER_METRICS);
  if (nat?.relays) registerStatsMetrics(metrics, () => snapshot().nat!.relays!, RELAY_CLIENT_METRICS);
  // The web gateway (browsers, web apps), when the node runs one.
  if (first.web) registerStatsMetrics(metrics, () => snapshot().web!, WEB_METRICS);

  const protocolErrors: Record<string, number> = Object.fromEntries(PROTOCOL_ERROR_KINDS.map((k) => [k, 0]));
  metrics.counter({
    name: 'macula_protocol_errors_total',
    help: 'Protocol violations by peers, by kind; each closes the offending stream or connection.',
    labelNames: ['kind'],
    collect: () => samplesByLabel('kind', protocolErrors),
  });
  const onProtocolError = (err: { kind?: unknown }) => {
    // the kinds are a closed set; anything else is one bucket so a bug cannot grow the series
    const kind = typeof err?.kind === 'string' && err.kind in protocolErrors ? err.kind : 'other';
    protocolErrors[kind] = (protocolErrors[kind] ?? 0) + 1;
  };

  const rounds = metrics.histogram({
    name: 'macula_dht_lookup_rounds',
    help: 'Sequential waves of requests until a lookup first had its answer, by kind.',
    labelNames: ['kind'],
    buckets: LOOKUP_ROUNDS_BUCKETS,
  });
  const duration = metrics.histogram({
    name: 'macula_dht_lookup_duration_seconds',
    help: 'Time from the start to the end of a DHT lookup, by kind.',
    labelNames: ['kind'],
    buckets: LOOKUP_DURATION_BUCKETS,
  });
  const onLookup = (stats: LookupStats & { durationMs?: number }) => {
    const labels = { kind: stats.kind };
    rounds.observe(labels, stats.rounds);
    if (typeof stats.durationMs === 'number') duration.observe(labels, stats.durationMs / 1000);
  };

  node.on('protocol-error', onProtocolError);
  node.on('lookup', onLookup);
  node.on('rpc-call', onCall);
  return {
    protocolErrors: () => ({ ...protocolErrors }),
    close() {
      node.off('protocol-error', onProtocolError);
      node.off('lookup', onLookup);
      node.off('rpc-call', onCall);
    },
  };
}
