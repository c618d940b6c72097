/**
 * The Dht's own counters (pulled by stats()) and the forwarding of each event
 * to the optional metrics hooks (pushed).
 */
import type { LookupStats } from './lookup.js';
import type { DhtMetrics, DhtStats } from './metrics.js';

type CounterStats = Pick<DhtStats, 'lookups' | 'lookupRoundsSum' | 'lookupSkippedDown' | 'rpcSent' | 'rpcReceived' | 'timeouts' | 'failures'>;

export class DhtCounters {
  readonly #metrics: DhtMetrics;
  readonly #lookups: DhtStats['lookups'] = { node: {}, value: {} };
  readonly #roundsSum: DhtStats['lookupRoundsSum'] = { node: 0, value: 0 };
  readonly #sent: Record<string, number> = {};
  readonly #received: Record<string, number> = {};
  #timeouts = 0;
  #failures = 0;
  #skippedDown = 0;

  constructor(metrics: DhtMetrics) {
    this.#metrics = metrics;
  }

  sent(type: string): void {
    this.#sent[type] = (this.#sent[type] ?? 0) + 1;
    this.#metrics.rpcSent?.(type);
  }

  received(type: string): void {
    this.#received[type] = (this.#received[type] ?? 0) + 1;
    this.#metrics.rpcReceived?.(type);
  }

  timeout(type: string): void {
    this.#timeouts++;
    this.#metrics.rpcTimeout?.(type);
  }

  failure(): void {
    this.#failures++;
  }

  lookup(stats: LookupStats): void {
    const byOutcome = this.#lookups[stats.kind];
    byOutcome[stats.outcome] = (byOutcome[stats.outcome] ?? 0) + 1;
    this.#roundsSum[stats.kind] += stats.rounds;
    this.#skippedDown += stats.skippedDown;
    this.#metrics.lookup?.(stats);
  }

  snapshot(): CounterStats {
    return {
      lookups: { node: { ...this.#lookups.node }, value: { ...this.#lookups.value } },
      lookupRoundsSum: { ...this.#roundsSum },
      lookupSkippedDown: this.#skippedDown,
      rpcSent: { ...this.#sent },
      rpcReceived: { ...this.#received },
      timeouts: this.#timeouts,
      failures: this.#failures,
    };
  }
}
