/**
 * Metrics and the health check of the reachability check (src/nat/): the
 * status as a one-hot gauge, the answers the node got and the dial-backs it
 * ran for others.
 */
import type { ObservedStats } from '../nat/observed.js';
import type { ReachabilityStats } from '../nat/reachability.js';
import { samplesByLabel, type StatsMetric } from './metrics.js';

/** What a node with the reachability check offers (MeshNode does). */
export interface NatNode {
  readonly reachability?: { stats(): ReachabilityStats } | undefined;
  readonly observed?: { stats(): ObservedStats };
}

const STATUSES = ['public', 'private', 'unknown'] as const;

export const REACHABILITY_METRICS: readonly StatsMetric<ReachabilityStats>[] = [
  {
    type: 'gauge',
    name: 'macula_reachability',
    help: 'The reachability check\'s answer: 1 for the current status (public: others can dial this node; private: behind a NAT or firewall), 0 for the others.',
    labelNames: ['status'],
    value: (s) => STATUSES.map((st) => [{ status: st }, s.status === st ? 1 : 0] as const),
  },
  { type: 'counter', name: 'macula_reachability_checks_total', help: 'Reachability checks run.', value: (s) => s.checks },
  {
    type: 'counter',
    name: 'macula_reachability_answers_total',
    help: 'Answers to this node\'s dial-back requests: reached, unreached, none (error, timeout or refusal).',
    labelNames: ['result'],
    value: (s) => samplesByLabel('result', s.answers),
  },
  {
    type: 'counter',
    name: 'macula_dial_backs_total',
    help: 'Dial-backs this node ran for others: reached, unreached, refused (MACULA_ERR_LIMIT).',
    labelNames: ['result'],
    value: (s) => samplesByLabel('result', s.dialBacks),
  },
  { type: 'gauge', name: 'macula_dial_backs_running', help: 'Dial-backs running now for others (bounded by macula_dial_backs_max).', value: (s) => s.dialBacksRunning },
  { type: 'gauge', name: 'macula_dial_backs_max', help: 'Dial-backs run at once for others (maxConcurrentDialBacks).', value: (s) => s.maxConcurrentDialBacks },
];

/** The node's reachability stats, or undefined when the check is off. */
export function reachabilitySource(node: object): (() => ReachabilityStats) | undefined {
  const check = (node as NatNode).reachability;
  return check ? () => check.stats() : undefined;
}

/** Informational: being private is not a fault (relays exist for it), so the check never degrades. */
export function reachabilityHealth(node: NatNode): { status: 'ok'; [detail: string]: unknown } {
  const s = node.reachability?.stats();
  const o = node.observed?.stats();
  return { status: 'ok', reachability: s?.status ?? 'unknown', checkedAt: s?.checkedAt ?? 0, behindNat: o?.behindNat ?? false, observedHost: o?.host ?? null };
}
