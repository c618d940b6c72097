/**
 * Metrics of the services on top of the DHT: registry cache, RPC client and
 * server, pub/sub. Read from the node's snapshot at scrape time, like the rest.
 */
import type { LivenessStats } from '../liveness/liveness.js';
import type { RegistryStats } from '../registry/types.js';
import type { RpcClientStats } from '../rpc/client.js';
import type { RpcServerStats } from '../rpc/server.js';
import type { PubSubStats } from '../pubsub/pubsub.js';
import type { GatewayStats } from '../gateway/options.js';
import { registerStatsMetrics, samplesByLabel, type Metrics, type StatsMetric } from './metrics.js';
import type { NodeSnapshot } from './node-sources.js';

export const REGISTRY_METRICS: readonly StatsMetric<RegistryStats>[] = [
  { type: 'counter', name: 'macula_registry_cache_hits_total', help: 'Registry lookups answered from the cache with providers.', value: (s) => s.hits },
  { type: 'counter', name: 'macula_registry_cache_negative_hits_total', help: 'Registry lookups answered from the negative cache (no providers, recently checked).', value: (s) => s.negativeHits },
  { type: 'counter', name: 'macula_registry_cache_misses_total', help: 'Registry lookups that went to the DHT (or joined a lookup in flight).', value: (s) => s.misses },
  { type: 'gauge', name: 'macula_registry_cache_entries', help: 'Names in the registry lookup cache (positive and negative).', value: (s) => s.size },
  { type: 'gauge', name: 'macula_registry_lookups_in_flight', help: 'Names with a DHT lookup in flight (single-flight).', value: (s) => s.inFlight },
  { type: 'counter', name: 'macula_registry_dht_lookups_total', help: 'DHT lookups started by the registry.', value: (s) => s.dhtLookups },
  { type: 'counter', name: 'macula_registry_dht_errors_total', help: 'DHT lookups of the registry that failed.', value: (s) => s.dhtErrors },
  { type: 'counter', name: 'macula_registry_malformed_records_total', help: 'Registry records dropped because their value was malformed.', value: (s) => s.malformed },
  { type: 'gauge', name: 'macula_registry_local_services', help: 'Services this node advertises.', value: (s) => s.localServices },
];

export const LIVENESS_METRICS: readonly StatsMetric<LivenessStats>[] = [
  { type: 'gauge', name: 'macula_liveness_nodes_down', help: 'Nodes the failure detection holds down now (out of RPC selection, caches and fan-out).', value: (s) => s.down },
  { type: 'gauge', name: 'macula_liveness_nodes_tracked', help: 'Nodes tracked by the failure detection (bounded by maxTracked).', value: (s) => s.tracked },
  {
    type: 'counter',
    name: 'macula_liveness_marked_down_total',
    help: 'Outages begun, by the first reason reported (connection_lost, dial_failed, request_failed, send_failed).',
    labelNames: ['reason'],
    value: (s) => samplesByLabel('reason', s.markedDown),
  },
  { type: 'counter', name: 'macula_liveness_marked_up_total', help: 'Outages ended by contact with the node.', value: (s) => s.markedUp },
  { type: 'counter', name: 'macula_liveness_probes_total', help: 'PING probes of down or suspect nodes.', value: (s) => s.probes },
  { type: 'counter', name: 'macula_liveness_probe_failures_total', help: 'Probes not answered in time.', value: (s) => s.probeFailures },
];

export const RPC_CLIENT_METRICS: readonly StatsMetric<RpcClientStats>[] = [
  {
    type: 'counter',
    name: 'macula_rpc_calls_total',
    help: 'RPC calls made by this node, by outcome (ok, remote_error, timeout, no_providers, unavailable, busy, bad_args).',
    labelNames: ['outcome'],
    value: (s) => samplesByLabel('outcome', s.calls),
  },
  { type: 'counter', name: 'macula_rpc_failovers_total', help: 'RPC attempts after the first one of a call (failover to another provider).', value: (s) => s.failovers },
  { type: 'gauge', name: 'macula_rpc_calls_in_flight', help: 'RPC calls made by this node that have not finished.', value: (s) => s.inFlight },
  { type: 'counter', name: 'macula_rpc_result_cache_hits_total', help: 'Calls of idempotent procedures answered from the result cache.', value: (s) => s.resultCacheHits },
  { type: 'counter', name: 'macula_rpc_result_cache_misses_total', help: 'Calls of idempotent procedures not found in the result cache.', value: (s) => s.resultCacheMisses },
  { type: 'gauge', name: 'macula_rpc_result_cache_entries', help: 'Entries in the RPC result cache.', value: (s) => s.resultCacheSize },
];

export const RPC_SERVER_METRICS: readonly StatsMetric<RpcServerStats>[] = [
  {
    type: 'counter',
    name: 'macula_rpc_served_total',
    help: 'RPC calls served by this node, by outcome.',
    labelNames: ['outcome'],
    value: (s) => samplesByLabel('outcome', s.served as unknown as Record<string, number>),
  },
  { type: 'gauge', name: 'macula_rpc_handlers_running', help: 'RPC handlers running on this node now.', value: (s) => s.running },
  { type: 'gauge', name: 'macula_rpc_procedures', help: 'Procedures this node serves.', value: (s) => s.procedures },
];

type P = PubSubStats;
export const PUBSUB_METRICS: readonly StatsMetric<P>[] = [
  { type: 'counter', name: 'macula_pubsub_published_total', help: 'Messages published on this node (publish() calls accepted, and each message of a run).', value: (s: P) => s.published },
  { type: 'counter', name: 'macula_pubsub_publishes_no_subscribers_total', help: 'Publishes that found no subscriber anywhere (answered from the cache when warm).', value: (s: P) => s.publishesNoSubscribers },
  { type: 'counter', name: 'macula_pubsub_publishes_dropped_total', help: 'publish() calls refused because the fan-out queue was full (noWait).', value: (s: P) => s.publishesDropped },
  { type: 'counter', name: 'macula_pubsub_messages_sent_total', help: 'Messages written to subscriber nodes (one per node per message; a PUBLISH run counts its messages).', value: (s: P) => s.fanout.sent },
  { type: 'counter', name: 'macula_pubsub_send_failures_total', help: 'Messages whose PUBLISH send failed (subscriber node unreachable or gone; a run counts its messages).', value: (s: P) => s.fanout.sendFailures },
  { type: 'counter', name: 'macula_pubsub_backlog_dropped_total', help: 'Messages dropped because a subscriber node backlog was full while it was dialed, or it failed.', value: (s: P) => s.fanout.backlogDropped },
  { type: 'counter', name: 'macula_pubsub_messages_received_total', help: 'Messages received from other nodes (a PUBLISH run counts its messages).', value: (s: P) => s.received },
  { type: 'counter', name: 'macula_pubsub_runs_sent_total', help: 'PUBLISH runs written to subscriber nodes (one per node per run).', value: (s: P) => s.runsSent },
  { type: 'counter', name: 'macula_pubsub_runs_received_total', help: 'PUBLISH runs received from other nodes.', value: (s: P) => s.runsReceived },
  { type: 'counter', name: 'macula_pubsub_duplicates_total', help: 'Received messages dropped as duplicates or out of order (per-publisher sequence).', value: (s: P) => s.duplicates },
  { type: 'counter', name: 'macula_pubsub_deliveries_total', help: 'Messages handed to subscription handlers.', value: (s: P) => s.delivered },
  { type: 'counter', name: 'macula_pubsub_delivery_drops_total', help: 'Messages dropped because a subscription buffer was full.', value: (s: P) => s.dropped },
  { type: 'gauge', name: 'macula_pubsub_subscriptions', help: 'Local subscriptions on this node.', value: (s: P) => s.subscriptions },
  { type: 'gauge', name: 'macula_pubsub_slow_consumers_tracked', help: 'Subscriptions and subscriber nodes whose drops are tracked for the slow-consumer report (at most 1000).', value: (s: P) => s.slowConsumersTracked },
  { type: 'counter', name: 'macula_pubsub_queue_copies_total', help: 'Queue-group copies: one member chosen per publish and matching group.', value: (s: P) => s.queueCopies },
  { type: 'counter', name: 'macula_pubsub_queue_failovers_total', help: 'Queue-group copies re-sent to another member (node down or send failed).', value: (s: P) => s.queueFailovers },
  { type: 'counter', name: 'macula_pubsub_queue_lost_total', help: 'Queue-group copies with no member left to take them.', value: (s: P) => s.queueLost },
  { type: 'counter', name: 'macula_pubsub_requests_total', help: 'Requests on a topic made here, by outcome besides replies (no_responders, timeout).', labelNames: ['outcome'], value: (s: P) => samplesByLabel('outcome', { all: s.requests, no_responders: s.requestsNoResponders, timeout: s.requestsTimedOut }) },
  { type: 'gauge', name: 'macula_pubsub_requests_pending', help: 'Requests waiting for replies (at most 10,000).', value: (s: P) => s.requestsPending },
  { type: 'counter', name: 'macula_pubsub_replies_total', help: 'Replies to requests, by direction (received, sent), unmatched (no pending request) and refused (from a node the request was not sent to).', labelNames: ['kind'], value: (s: P) => samplesByLabel('kind', { received: s.repliesReceived, sent: s.repliesSent, unmatched: s.repliesUnmatched, refused: s.repliesRefused }) },
  { type: 'gauge', name: 'macula_pubsub_fanout_queue_depth', help: 'Sends waiting in the fan-out queue.', value: (s: P) => s.fanout.queued },
  { type: 'gauge', name: 'macula_pubsub_fanout_queue_limit', help: 'Most sends the fan-out queue holds (fanoutQueue).', value: (s: P) => s.fanout.maxQueue },
  { type: 'gauge', name: 'macula_pubsub_fanout_running', help: 'Sends in flight in the fan-out pool.', value: (s: P) => s.fanout.running },
  { type: 'gauge', name: 'macula_pubsub_fanout_backlog', help: 'Messages held for subscriber nodes being dialed.', value: (s: P) => s.fanout.backlogged },
  { type: 'counter', name: 'macula_pubsub_cache_hits_total', help: 'Subscriber cache hits, by level (topic, prefix).', labelNames: ['level'], value: (s: P) => samplesByLabel('level', { topic: s.cache.topicHits, prefix: s.cache.prefixHits }) },
  { type: 'counter', name: 'macula_pubsub_cache_misses_total', help: 'Subscriber cache misses, by level (topic, prefix).', labelNames: ['level'], value: (s: P) => samplesByLabel('level', { topic: s.cache.topicMisses, prefix: s.cache.prefixMisses }) },
  { type: 'gauge', name: 'macula_pubsub_cache_entries', help: 'Subscriber cache entries, by level (topic, prefix).', labelNames: ['level'], value: (s: P) => samplesByLabel('level', { topic: s.cache.topicSize, prefix: s.cache.prefixSize }) },
  { type: 'counter', name: 'macula_pubsub_cache_stale_hits_total', help: 'Publishes answered from an expired subscriber cache entry while it was rebuilt in the background.', value: (s: P) => s.cache.staleHits },
  { type: 'counter', name: 'macula_pubsub_dht_lookups_total', help: 'DHT lookups made to resolve subscribers.', value: (s: P) => s.cache.dhtLookups },
];

/** What the gateway's light clients make this node store in the mesh (see src/gateway/key-quota.ts). */
export const GATEWAY_STORE_METRICS: readonly StatsMetric<GatewayStats>[] = [
  { type: 'gauge', name: 'macula_gateway_client_dht_keys', help: 'Distinct DHT keys (subscription prefixes, served procedures) light clients make this node publish under.', value: (s) => s.dhtKeys },
  { type: 'gauge', name: 'macula_gateway_client_dht_keys_max', help: 'Bound of macula_gateway_client_dht_keys (maxClientDhtKeys).', value: (s) => s.maxClientDhtKeys },
  { type: 'gauge', name: 'macula_gateway_client_dht_bytes', help: 'Bytes of DHT records light clients make this node publish (patterns, registrations, 160 B per key).', value: (s) => s.dhtBytes },
  { type: 'gauge', name: 'macula_gateway_client_dht_bytes_max', help: 'Bound of macula_gateway_client_dht_bytes (maxClientDhtBytes).', value: (s) => s.maxClientDhtBytes },
  { type: 'counter', name: 'macula_gateway_dht_keys_refused_total', help: 'Client subscriptions and serves refused by the per-client or all-client DHT key or byte bounds.', value: (s) => s.dhtKeysRefused },
  { type: 'counter', name: 'macula_gateway_not_stored_total', help: 'Client subscriptions and serves answered MACULA_ERR_NOT_STORED (the mesh refused the record).', value: (s) => s.notStored },
];

const RPC_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Registers the registry, liveness, RPC, pub/sub and gateway metrics, each read from the node's snapshot; returns the RPC latency histogram's observer. */
export function registerServiceMetrics(metrics: Metrics, snapshot: () => NodeSnapshot): (ms: number, outcome: string) => void {
  registerStatsMetrics(metrics, () => snapshot().registry, REGISTRY_METRICS);
  registerStatsMetrics(metrics, () => snapshot().rpc.client, RPC_CLIENT_METRICS);
  registerStatsMetrics(metrics, () => snapshot().rpc.server, RPC_SERVER_METRICS);
  registerStatsMetrics(metrics, () => snapshot().pubsub, PUBSUB_METRICS);
  registerStatsMetrics(metrics, () => snapshot().liveness, LIVENESS_METRICS);
  registerStatsMetrics(metrics, () => snapshot().gateway, GATEWAY_STORE_METRICS);
  const latency = metrics.histogram({
    name: 'macula_rpc_call_duration_seconds',
    help: 'Duration of RPC calls made by this node, by outcome.',
    labelNames: ['outcome'],
    buckets: RPC_LATENCY_BUCKETS,
  });
  return (ms, outcome) => latency.observe({ outcome }, ms / 1000);
}
