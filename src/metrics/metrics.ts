/**
 * The metrics interface the core depends on. It names no metrics library:
 * the prom-client adapter (prometheus.ts) implements it for `macula start`,
 * and `noopMetrics` lets tests, benchmarks and the simulator run thousands
 * of nodes without keeping any series.
 *
 * Two ways to feed a metric:
 * - push: `inc()` / `set()` / `observe()` at the moment something happens
 *   (histograms are always pushed: one observation per event);
 * - pull: a `collect` callback called once per scrape that reads a
 *   component's own cumulative `stats()`. This is the preferred way for
 *   anything on a hot path: the component bumps a plain number, and the
 *   metrics library is only touched when someone scrapes.
 * A metric given `collect` takes its values from it alone; pushes to it
 * are overwritten at the next scrape.
 */

/** Label values by label name; every name must be declared in `labelNames`. */
export type Labels = Readonly<Record<string, string | number>>;

/** One series of a labelled metric: its labels and its value. */
export type Sample = readonly [labels: Labels, value: number];

/**
 * Reads the current value(s) at scrape time: one number for a metric
 * without labels, else one sample per label set (each label set once).
 * Counters must return cumulative, never decreasing values.
 */
export type Collect = () => number | Iterable<Sample>;

export interface MetricOptions {
  /** Prometheus name: `macula_` prefix, base units, `_total` for counters. */
  name: string;
  /** One sentence saying what is counted or measured. */
  help: string;
  /** Names of the labels the series carry. Default: none. */
  labelNames?: readonly string[];
}

export interface CollectedMetricOptions extends MetricOptions {
  /** Pull the values at scrape time instead of pushing them. */
  collect?: Collect;
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, ascending, in the metric's base unit. */
  buckets: readonly number[];
}

export interface Counter {
  /** Adds `n` (default 1, must be ≥ 0) to the series of `labels`. */
  inc(labels?: Labels, n?: number): void;
}

export interface Gauge {
  set(labels: Labels | undefined, value: number): void;
  inc(labels?: Labels, n?: number): void;
  dec(labels?: Labels, n?: number): void;
}

export interface Histogram {
  observe(labels: Labels | undefined, value: number): void;
}

export interface Metrics {
  counter(options: CollectedMetricOptions): Counter;
  gauge(options: CollectedMetricOptions): Gauge;
  histogram(options: HistogramOptions): Histogram;
  /** Calls `listener` at the start of every scrape, before any `collect` (collectors that share one reading per scrape renew it there). Optional. */
  onScrape?(listener: () => void): void;
}

// Shared, frozen no-op handles: creating a metric on noopMetrics allocates
// nothing and every call on it is an empty function.
const NOOP_COUNTER: Counter = Object.freeze({ inc() {} });
const NOOP_GAUGE: Gauge = Object.freeze({ set() {}, inc() {}, dec() {} });
const NOOP_HISTOGRAM: Histogram = Object.freeze({ observe() {} });

/** Keeps nothing and never calls `collect`. */
export const noopMetrics: Metrics = Object.freeze({
  counter: () => NOOP_COUNTER,
  gauge: () => NOOP_GAUGE,
  histogram: () => NOOP_HISTOGRAM,
});

/** `{ a: 1, b: 2 }` → samples `[{ [label]: 'a' }, 1], [{ [label]: 'b' }, 2]` (for per-type stats records). */
export function samplesByLabel(label: string, values: Readonly<Record<string, number>>): Sample[] {
  return Object.entries(values).map(([key, value]) => [{ [label]: key }, value] as const);
}

/** A metric read from a stats snapshot at scrape time. */
export interface StatsMetric<T> {
  type: 'counter' | 'gauge';
  name: string;
  help: string;
  labelNames?: readonly string[];
  value(stats: T): number | Iterable<Sample>;
}

/**
 * Registers metrics that read `source()` at each scrape. Counters must come
 * from cumulative stats; they are exposed as real counters (TYPE counter),
 * not as gauges named `_total`.
 */
export function registerStatsMetrics<T>(metrics: Metrics, source: () => T, specs: readonly StatsMetric<T>[]): void {
  for (const spec of specs) {
    const options = { name: spec.name, help: spec.help, labelNames: spec.labelNames ?? [], collect: () => spec.value(source()) };
    if (spec.type === 'counter') metrics.counter(options);
    else metrics.gauge(options);
  }
}
