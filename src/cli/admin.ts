/**
 * The admin HTTP server of `macula start`: Prometheus metrics, health and
 * stats of the node, plus the gateway and pub/sub fan-out that the generic
 * node metrics do not know about.
 */
import { ADMIN_METRICS, AdminServer } from '../metrics/admin-server.js';
import { GATEWAY_METRICS } from '../metrics/gateway-metrics.js';
import { instrumentNode } from '../metrics/node-metrics.js';
import { registerStatsMetrics } from '../metrics/metrics.js';
import { PrometheusMetrics } from '../metrics/prometheus.js';
import type { MeshNode } from '../node/mesh-node.js';

export interface AdminHandle {
  readonly url: string;
  close(): Promise<void>;
}

/** Instruments the node; call before node.start() so the join's lookups are counted. */
export function prepareAdmin(node: MeshNode): (options: { host: string; port: number; maxRssBytes?: number }) => Promise<AdminHandle> {
  const metrics = new PrometheusMetrics();
  const instrumentation = instrumentNode(node, metrics);
  registerStatsMetrics(metrics, () => node.gateway.stats(), GATEWAY_METRICS);
  return async ({ host, port, maxRssBytes }) => {
    const admin = new AdminServer({ node, metrics, instrumentation }, { host, port, ...(maxRssBytes !== undefined && { maxRssBytes }) });
    registerStatsMetrics(metrics, () => admin.connectionStats(), ADMIN_METRICS);
    admin.health.addSaturationSource('fanoutQueue', () => {
      const f = node.pubsub.stats().fanout;
      return { used: f.queued, limit: f.maxQueue };
    });
    // A node at its client limit refuses newcomers but serves the others: it degrades, never fails.
    admin.health.addBudgets(() => {
      const g = node.gateway.stats();
      return [{ name: 'gatewayClients', used: g.clients, limit: g.maxClients, failAt: Infinity }];
    });
    await admin.listen();
    return {
      url: admin.url!,
      async close() {
        await admin.close();
        instrumentation.close();
      },
    };
  };
}
