/** Metrics interface, prom-client adapter, node instrumentation, health checks and the admin HTTP server. */
export { noopMetrics, registerStatsMetrics, samplesByLabel, type Collect, type CollectedMetricOptions, type Counter, type Gauge, type Histogram, type HistogramOptions, type Labels, type MetricOptions, type Metrics, type Sample, type StatsMetric } from './metrics.js';
export { PrometheusMetrics, type PrometheusMetricsComponents, type PrometheusMetricsInit } from './prometheus.js';
export {
  instrumentNode,
  DHT_METRICS,
  POOL_METRICS,
  QUEUE_METRICS,
  TRAFFIC_METRICS,
  TRANSPORT_METRICS,
  type NodeInstrumentation,
} from './node-metrics.js';
export type { ObservedNode, QueueStats, TrafficStats } from './node-sources.js';
export { HealthMonitor, type EventLoopLag, type HealthCheckResult, type HealthMonitorInit, type HealthReport, type HealthStatus, type Saturation } from './health.js';
export { AdminServer, DEFAULT_ADMIN_HOST, type AdminServerComponents, type AdminServerInit, type MetricsExposition } from './admin-server.js';
export { parsePrometheusText, sampleValue, type MetricFamily, type MetricType, type ParsedSample } from './exposition.js';
