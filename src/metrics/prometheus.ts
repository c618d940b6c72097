/**
 * The prom-client adapter: the only module that imports prom-client.
 *
 * Each instance has its own Registry, never prom-client's global default
 * one, because several nodes may run in one process (tests, the simulator,
 * an application embedding more than one node) and each must expose only
 * its own series.
 *
 * Node.js process metrics (`collectDefaultMetrics`) keep their standard,
 * unprefixed names (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`,
 * `nodejs_heap_size_used_bytes`, …) so that the usual Node.js dashboards and
 * alerts work unchanged; they describe the process, not the mesh node, so a
 * `macula_` prefix would mislead. prom-client's collector cannot be stopped
 * once started (it keeps an event-loop delay monitor and a GC observer for
 * the life of the process), so it runs once per process, in a registry of
 * its own that every adapter instance appends to its exposition.
 */
import client from 'prom-client';
import type { Collect, CollectedMetricOptions, Counter, Gauge, Histogram, HistogramOptions, Labels, Metrics, Sample } from './metrics.js';

export interface PrometheusMetricsComponents {
  /** Told about a `collect` callback that threw; that metric keeps its previous values. Default: ignored. */
  onCollectError?: (metricName: string, err: unknown) => void;
}

export interface PrometheusMetricsInit {
  /** Append the Node.js process metrics (standard names, shared by the process). Default true. */
  defaultMetrics?: boolean;
  /** Labels added to every `macula_*` series of this registry, e.g. `{ node: 'a' }`. Default none. */
  defaultLabels?: Record<string, string>;
}

let processRegistry: client.Registry | undefined;

/** The registry of the Node.js process metrics, started on first use. */
function defaultMetricsRegistry(): client.Registry {
  if (!processRegistry) {
    processRegistry = new client.Registry();
    client.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

type Materialized = number | Sample[];

export class PrometheusMetrics implements Metrics {
  readonly registry: client.Registry;
  readonly #defaultMetrics: boolean;
  readonly #onCollectError: (name: string, err: unknown) => void;
  readonly #scrapeListeners: (() => void)[] = [];

  constructor(components: PrometheusMetricsComponents = {}, init: PrometheusMetricsInit = {}) {
    this.registry = new client.Registry();
    if (init.defaultLabels) this.registry.setDefaultLabels(init.defaultLabels);
    this.#defaultMetrics = init.defaultMetrics ?? true;
    if (this.#defaultMetrics) defaultMetricsRegistry();
    this.#onCollectError = components.onCollectError ?? (() => {});
  }

  /** The Content-Type of `metricsText()` (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every series of this node (and the process metrics unless disabled), in the Prometheus text format. */
  async metricsText(): Promise<string> {
    for (const listener of this.#scrapeListeners) listener();
    const own = await this.registry.metrics();
    if (!this.#defaultMetrics) return own;
    const proc = await defaultMetricsRegistry().metrics();
    return own.length === 0 ? proc : `${own}${own.endsWith('\n') ? '' : '\n'}${proc}`;
  }

  onScrape(listener: () => void): void {
    this.#scrapeListeners.push(listener);
  }

  counter(options: CollectedMetricOptions): Counter {
    const read = options.collect ? this.#reader(options.name, options.collect) : undefined;
    const counter = new client.Counter({
      name: options.name,
      help: options.help,
      labelNames: [...(options.labelNames ?? [])],
      registers: [this.registry],
      // prom-client counters cannot be set, but a collect() may reset and
      // re-add: the scrape then shows exactly the component's cumulative
      // value. Values are read before the reset, so a failing read keeps
      // the previous ones (a drop to 0 would look like a counter reset).
      ...(read && {
        collect(this: client.Counter) {
          const v = read();
          if (v === undefined) return;
          this.reset();
          // a negative increment would throw and fail the whole scrape
          if (typeof v === 'number') this.inc(Math.max(0, v));
          else for (const [labels, n] of v) this.inc(labels, Math.max(0, n));
        },
      }),
    });
    return {
      inc: (labels?: Labels, n = 1) => (labels ? counter.inc(labels, n) : counter.inc(n)),
    };
  }

  gauge(options: CollectedMetricOptions): Gauge {
    const read = options.collect ? this.#reader(options.name, options.collect) : undefined;
    const gauge = new client.Gauge({
      name: options.name,
      help: options.help,
      labelNames: [...(options.labelNames ?? [])],
      registers: [this.registry],
      ...(read && {
        collect(this: client.Gauge) {
          const v = read();
          if (v === undefined) return;
          // reset() drops label sets that are gone since the last scrape
          this.reset();
          if (typeof v === 'number') this.set(v);
          else for (const [labels, n] of v) this.set(labels, n);
        },
      }),
    });
    return {
      set: (labels, value) => (labels ? gauge.set(labels, value) : gauge.set(value)),
      inc: (labels?: Labels, n = 1) => (labels ? gauge.inc(labels, n) : gauge.inc(n)),
      dec: (labels?: Labels, n = 1) => (labels ? gauge.dec(labels, n) : gauge.dec(n)),
    };
  }

  histogram(options: HistogramOptions): Histogram {
    const histogram = new client.Histogram({
      name: options.name,
      help: options.help,
      labelNames: [...(options.labelNames ?? [])],
      buckets: [...options.buckets],
      registers: [this.registry],
    });
    return {
      observe: (labels, value) => (labels ? histogram.observe(labels, value) : histogram.observe(value)),
    };
  }

  /** Wraps a collect callback: materializes its values, drops non-finite ones, reports a throw. */
  #reader(name: string, collect: Collect): () => Materialized | undefined {
    return () => {
      try {
        const v = collect();
        if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
        const samples: Sample[] = [];
        for (const s of v) if (Number.isFinite(s[1])) samples.push(s);
        return samples;
      } catch (err) {
        this.#onCollectError(name, err);
        return undefined;
      }
    };
  }
}
