/**
 * The node's health: a few checks, each ok / degraded / fail, and the
 * worst of them as the overall status.
 *
 * - eventLoopLag: the p99 event-loop delay over the last window, from
 *   `perf_hooks.monitorEventLoopDelay`. A loop that lags delays every
 *   message, timer and timeout of the node.
 * - queueSaturation: the fullest of the bounded queues, as used / limit
 *   (per-stream send queues and requests in flight per connection when the
 *   messenger reports them; more sources, e.g. the pub/sub fan-out pool,
 *   are added with addSaturationSource()). The connection pool is reported
 *   but can only degrade: a full pool evicts idle connections by design.
 * - budgets: the fullest of the node's memory budgets, as used / limit:
 *   the process RSS against maxRssBytes and every reading of
 *   nodeBudgets() (the DHT store, …), plus what addBudgets() adds. A node
 *   near a budget is degraded (≥ 80 %), at it fails: past it the node
 *   refuses work or the kernel kills it, and /health must say so first.
 * - joinedMesh: the node runs and has joined (its routing table has a
 *   contact when it was given bootstrap nodes).
 */
import { totalmem } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { nodeBudgets, SnapshotReader, type BudgetReading, type NodeSnapshot, type ObservedNode } from './node-sources.js';
import { numberOption } from '../util/options.js';
import { reachabilityHealth } from './nat-metrics.js';

export type { BudgetReading };

export type HealthStatus = 'ok' | 'degraded' | 'fail';

export interface HealthCheckResult {
  status: HealthStatus;
  [detail: string]: unknown;
}

export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, HealthCheckResult>;
}

/** How full one bounded queue is. `failAt: Infinity` for queues whose being full is normal operation. */
export interface Saturation {
  used: number;
  limit: number;
  /** Ratio at which this queue fails the check. Default: the monitor's saturationFailRatio. */
  failAt?: number;
}

export interface HealthMonitorInit {
  /** p99 event-loop lag at which the node is degraded. Default 100 ms. */
  lagDegradedMs?: number;
  /** p99 event-loop lag at which the node fails. Default 1000 ms. */
  lagFailMs?: number;
  /** Sampling period of the event-loop delay monitor. Default 10 ms. */
  lagResolutionMs?: number;
  /** Length of one lag window; the check reads the worse of the last full window and the current one. Default 10 s. */
  lagWindowMs?: number;
  /** used / limit of a queue or budget at which the node is degraded. Default 0.8. */
  saturationDegradedRatio?: number;
  /** used / limit of a queue or budget at which the node fails (a full queue refuses work). Default 1. */
  saturationFailRatio?: number;
  /** Resident memory (RSS) the process may use: the `rss` budget. Default defaultMaxRssBytes(). */
  maxRssBytes?: number;
}

/**
 * The memory this process may use: the cgroup memory limit when one is set
 * (a container's limit is where the kernel kills it), else the machine's
 * total memory (past it the machine swaps and every node on it stalls).
 */
export function defaultMaxRssBytes(): number {
  const total = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  // No limit reads as 0 or as a huge number (2^64): either way, the machine is the limit.
  return constrained > 0 && constrained < total ? constrained : total;
}

export const DEFAULT_LAG_DEGRADED_MS = 100;
export const DEFAULT_LAG_FAIL_MS = 1000;
export const DEFAULT_LAG_RESOLUTION_MS = 10;
export const DEFAULT_LAG_WINDOW_MS = 10_000;
export const DEFAULT_SATURATION_DEGRADED_RATIO = 0.8;
export const DEFAULT_SATURATION_FAIL_RATIO = 1;

export interface EventLoopLag {
  /** Lag beyond the sampling period, in ms (0 = on time). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Samples behind these figures. */
  samples: number;
}

export interface HealthMonitorComponents {
  node: ObservedNode;
}

const RANK: Record<HealthStatus, number> = { ok: 0, degraded: 1, fail: 2 };

function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[b] > RANK[a] ? b : a;
}

const round = (x: number) => Math.round(x * 100) / 100;

export class HealthMonitor {
  readonly lagDegradedMs: number;
  readonly lagFailMs: number;
  readonly lagResolutionMs: number;
  readonly lagWindowMs: number;
  readonly saturationDegradedRatio: number;
  readonly saturationFailRatio: number;
  readonly maxRssBytes: number;

  /** The node's snapshot, taken once per report. */
  readonly #reader: SnapshotReader;
  readonly #snapshot: () => NodeSnapshot;
  readonly #budgets: (() => readonly BudgetReading[])[] = [];
  readonly #checks = new Map<string, () => HealthCheckResult>();
  readonly #saturation = new Map<string, () => Saturation | undefined>();
  #histogram: IntervalHistogram | undefined;
  #window: NodeJS.Timeout | undefined;
  #lastWindow: EventLoopLag | undefined;

  constructor(components: HealthMonitorComponents, init: HealthMonitorInit = {}) {
    this.#reader = new SnapshotReader(components.node);
    this.#snapshot = this.#reader.read;
    this.lagDegradedMs = init.lagDegradedMs ?? DEFAULT_LAG_DEGRADED_MS;
    this.lagFailMs = init.lagFailMs ?? DEFAULT_LAG_FAIL_MS;
    this.lagResolutionMs = init.lagResolutionMs ?? DEFAULT_LAG_RESOLUTION_MS;
    this.lagWindowMs = init.lagWindowMs ?? DEFAULT_LAG_WINDOW_MS;
    this.saturationDegradedRatio = init.saturationDegradedRatio ?? DEFAULT_SATURATION_DEGRADED_RATIO;
    this.saturationFailRatio = init.saturationFailRatio ?? DEFAULT_SATURATION_FAIL_RATIO;
    this.maxRssBytes = init.maxRssBytes ?? defaultMaxRssBytes();
    numberOption('health option lagResolutionMs', this.lagResolutionMs, 1);
    numberOption('health option lagWindowMs', this.lagWindowMs, 0, { exclusiveMin: true });
    numberOption('health option maxRssBytes', this.maxRssBytes, 0, { exclusiveMin: true });

    this.addSaturationSource('connectionPool', () => {
      const s = this.#snapshot().pool;
      return { used: s.open, limit: s.max, failAt: Infinity };
    });
    this.addSaturationSource('sendQueue', () => {
      const q = this.#snapshot().queues;
      return { used: q.sendQueueLargestBytes, limit: q.sendQueueLimitBytes };
    });
    this.addSaturationSource('requestsInFlight', () => {
      const q = this.#snapshot().queues;
      return { used: q.requestsInFlightLargest, limit: q.maxInFlight };
    });
    this.addCheck('eventLoopLag', () => this.#lagCheck());
    this.addBudgets(() => [{ name: 'rss', used: process.memoryUsage.rss(), limit: this.maxRssBytes }]);
    this.addBudgets(() => nodeBudgets(this.#snapshot()));
    this.addCheck('queueSaturation', () => this.#saturationCheck());
    this.addCheck('budgets', () => this.#budgetCheck());
    this.addCheck('joinedMesh', () => this.#joinedCheck());
    if (this.#snapshot().nat?.reachability) this.addCheck('reachability', () => reachabilityHealth(this.#snapshot().nat));
  }

  /** Starts sampling the event loop. Idempotent. */
  start(): void {
    if (this.#histogram) return;
    this.#histogram = monitorEventLoopDelay({ resolution: this.lagResolutionMs });
    this.#histogram.enable();
    this.#window = setInterval(() => {
      this.#lastWindow = this.#read();
      this.#histogram?.reset();
    }, this.lagWindowMs);
    this.#window.unref();
  }

  stop(): void {
    clearInterval(this.#window);
    this.#window = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
    this.#lastWindow = undefined;
  }

  /** Adds a check (or replaces the one of that name); it runs at every report(). */
  addCheck(name: string, check: () => HealthCheckResult): void {
    this.#checks.set(name, check);
  }

  /** Adds a bounded queue to the queueSaturation check; returning undefined leaves it out. */
  addSaturationSource(name: string, read: () => Saturation | undefined): void {
    this.#saturation.set(name, read);
  }

  /**
   * Adds budgets to the budgets check: a function returning readings
   * `{ name, used, limit }` (`failAt: Infinity` for a budget whose being
   * full is normal operation), read at every report().
   */
  addBudgets(read: () => readonly BudgetReading[]): void {
    this.#budgets.push(read);
  }

  /** Event-loop lag over the last full window or the current one, whichever is worse (zeros before start()). */
  eventLoopLag(): EventLoopLag {
    const current = this.#read();
    const last = this.#lastWindow;
    if (!last || (current.samples > 0 && current.p99Ms >= last.p99Ms)) return current;
    return last;
  }

  report(): HealthReport {
    this.#reader.reset();
    const checks: Record<string, HealthCheckResult> = {};
    let status: HealthStatus = 'ok';
    for (const [name, check] of this.#checks) {
      let result: HealthCheckResult;
      try {
        result = check();
      } catch (err) {
        // a broken check is reported as failing, not as a crashed endpoint
        result = { status: 'fail', error: (err as Error)?.message ?? String(err) };
      }
      checks[name] = result;
      status = worst(status, result.status);
    }
    return { status, checks };
  }

  #read(): EventLoopLag {
    const h = this.#histogram;
    if (!h || h.count === 0) return { p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0, samples: 0 };
    // The monitor records the whole interval between samples, sampling period included.
    const lag = (ns: number) => round(Math.max(0, ns / 1e6 - this.lagResolutionMs));
    return { p50Ms: lag(h.percentile(50)), p99Ms: lag(h.percentile(99)), maxMs: lag(h.max), meanMs: lag(h.mean), samples: h.count };
  }

  #lagCheck(): HealthCheckResult {
    const lag = this.eventLoopLag();
    const status: HealthStatus = lag.p99Ms >= this.lagFailMs ? 'fail' : lag.p99Ms >= this.lagDegradedMs ? 'degraded' : 'ok';
    return { status, valueMs: lag.p99Ms, maxMs: lag.maxMs, thresholdMs: this.lagDegradedMs, failThresholdMs: this.lagFailMs };
  }

  #saturationCheck(): HealthCheckResult {
    return this.#ratioCheck('queues', [...this.#saturation].map(([name, read]): [string, Saturation | undefined] => [name, read()]));
  }

  #budgetCheck(): HealthCheckResult {
    return this.#ratioCheck('budgets', this.#budgets.flatMap((read) => read().map((b): [string, Saturation] => [b.name, b])));
  }

  /** The worst of used / limit over `readings`, against the degraded and fail ratios. */
  #ratioCheck(label: string, readings: [string, Saturation | undefined][]): HealthCheckResult {
    let status: HealthStatus = 'ok';
    let worstRatio = 0;
    let worstName: string | undefined;
    const entries: Record<string, { used: number; limit: number; ratio: number }> = {};
    for (const [name, s] of readings) {
      if (!s) continue;
      const ratio = s.limit > 0 ? s.used / s.limit : 0;
      entries[name] = { used: s.used, limit: s.limit, ratio: round(ratio) };
      const failAt = s.failAt ?? this.saturationFailRatio;
      const own: HealthStatus = ratio >= failAt ? 'fail' : ratio >= this.saturationDegradedRatio ? 'degraded' : 'ok';
      status = worst(status, own);
      if (ratio > worstRatio || worstName === undefined) {
        worstRatio = ratio;
        worstName = name;
      }
    }
    return {
      status,
      ratio: round(worstRatio),
      fullest: worstName,
      thresholdRatio: this.saturationDegradedRatio,
      failThresholdRatio: this.saturationFailRatio,
      [label]: entries,
    };
  }

  #joinedCheck(): HealthCheckResult {
    const s = this.#snapshot().node;
    // Not joined yet while running: the DHT keeps retrying its bootstrap
    // nodes, and the node still serves what it holds, so this degrades.
    const status: HealthStatus = !s.running ? 'fail' : s.joined ? 'ok' : 'degraded';
    return { status, running: s.running, joined: s.joined, routingTableSize: s.routingTableSize, bootstrapNodes: s.bootstrapNodes };
  }
}
