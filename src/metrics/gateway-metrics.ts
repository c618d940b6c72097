/** Metrics of the light-client gateway, read from its stats() at scrape time like the rest. */
import { ADMISSION_REFUSALS } from '../gateway/admission.js';
import type { GatewayStats } from '../gateway/options.js';
import type { Sample } from './metrics.js';
import type { StatsMetric } from './metrics.js';

export const GATEWAY_METRICS: readonly StatsMetric<GatewayStats>[] = [
  { type: 'gauge', name: 'macula_gateway_clients', help: 'Light clients connected.', value: (s) => s.clients },
  { type: 'gauge', name: 'macula_gateway_clients_limit', help: 'Most light clients connected at once (maxClients).', value: (s) => s.maxClients },
  { type: 'gauge', name: 'macula_gateway_clients_per_address_limit', help: 'Most light clients from one source address (maxClientsPerAddress).', value: (s) => s.maxClientsPerAddress },
  { type: 'gauge', name: 'macula_gateway_client_sources', help: 'Distinct source addresses (IPv4, IPv6 /64) with connected clients.', value: (s) => s.sources },
  { type: 'gauge', name: 'macula_gateway_largest_source_clients', help: 'Clients of the source address holding the most.', value: (s) => s.largestSourceClients },
  { type: 'counter', name: 'macula_gateway_clients_admitted_total', help: 'Light clients admitted.', value: (s) => s.admitted },
  { type: 'counter', name: 'macula_gateway_publishes_total', help: 'One-way publishes (GW_SEND) received from light clients.', value: (s) => s.publishes },
  { type: 'gauge', name: 'macula_gateway_publishes_pending', help: 'Light-client publishes received and not yet accepted by pub/sub, over every client.', value: (s) => s.publishPending },
  { type: 'gauge', name: 'macula_gateway_publish_window', help: 'Publishes one light client may have unacknowledged (publishWindow).', value: (s) => s.publishWindow },
  { type: 'gauge', name: 'macula_gateway_publish_window_bytes', help: 'Bytes of publishes one light client may have unacknowledged (publishWindowBytes).', value: (s) => s.publishWindowBytes },
  { type: 'counter', name: 'macula_gateway_publish_failures_total', help: 'Light-client publishes that failed and were reported with GW_NACK (overruns included).', value: (s) => s.publishFailures },
  { type: 'counter', name: 'macula_gateway_publish_overruns_total', help: 'Light-client publishes refused because the client went past its window.', value: (s) => s.publishOverruns },
  { type: 'counter', name: 'macula_gateway_forwarded_runs_total', help: 'GW_MSG runs sent to light clients (consecutive messages of one publisher sent as one).', value: (s) => s.forwardedRuns },
  { type: 'counter', name: 'macula_gateway_publish_runs_total', help: 'GW_SEND runs received from light clients (their publishes count one by one in macula_gateway_publishes_total).', value: (s) => s.publishRuns },
  {
    type: 'counter',
    name: 'macula_gateway_clients_refused_total',
    help: 'Light clients refused by admission, by the limit hit (max_clients, max_clients_per_address).',
    labelNames: ['reason'],
    value: (s) => ADMISSION_REFUSALS.map((reason): Sample => [{ reason }, s.refusedByReason[reason]]),
  },
];
