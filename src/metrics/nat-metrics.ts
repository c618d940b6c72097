/**
 * Metrics and the health check of the reachability check (src/nat/): the
 * status as a one-hot gauge, the answers the node got and the dial-backs it
 * ran for others.
 */
import type { ReachabilityStats } from '../nat/reachability.js';
import type { RelayClientStats } from '../relay/client.js';
import type { RelayServerStats } from '../relay/server.js';
import { samplesByLabel, type StatsMetric } from './metrics.js';
import type { NodeSnapshot } from './node-sources.js';

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

export const RELAY_SERVER_METRICS: readonly StatsMetric<RelayServerStats>[] = [
  { type: 'gauge', name: 'macula_relay_enabled', help: '1 while this node relays for nodes behind a NAT (--relay, or found public), else 0.', value: (s) => (s.enabled ? 1 : 0) },
  { type: 'gauge', name: 'macula_relay_reservations', help: 'Nodes this relay keeps a reservation for (bounded by macula_relay_reservations_max).', value: (s) => s.reservations },
  { type: 'gauge', name: 'macula_relay_reservations_max', help: 'Reservations this relay keeps at most.', value: (s) => s.maxReservations },
  { type: 'gauge', name: 'macula_relay_circuits', help: 'Circuits open through this relay now (bounded by macula_relay_circuits_max).', value: (s) => s.circuits },
  { type: 'gauge', name: 'macula_relay_circuits_max', help: 'Circuits open through this relay at most.', value: (s) => s.maxCircuits },
  { type: 'counter', name: 'macula_relay_circuits_opened_total', help: 'Circuits this relay opened.', value: (s) => s.circuitsOpened },
  { type: 'counter', name: 'macula_relay_bytes_forwarded_total', help: 'Bytes of RELAY_DATA this relay forwarded (ciphertext).', value: (s) => s.bytesForwarded },
  {
    type: 'counter',
    name: 'macula_relay_refused_total',
    help: 'Reservations and circuits refused, by reason: off, reservations_full, circuits_full, no_reservation, target_unreachable.',
    labelNames: ['reason'],
    value: (s) => samplesByLabel('reason', s.refused),
  },
  {
    type: 'counter',
    name: 'macula_relay_circuits_ended_total',
    help: 'Circuits closed, by reason: closed (by an end), bytes_limit, duration_limit, protocol.',
    labelNames: ['reason'],
    value: (s) => samplesByLabel('reason', s.ended),
  },
];

export const RELAY_CLIENT_METRICS: readonly StatsMetric<RelayClientStats>[] = [
  { type: 'gauge', name: 'macula_relays_held', help: 'Relays this node holds a reservation with (it announces itself through them while private).', value: (s) => s.relays.length },
  { type: 'counter', name: 'macula_relays_lost_total', help: 'Relays whose connection was lost or whose renewal failed (each is replaced).', value: (s) => s.relaysLost },
  { type: 'counter', name: 'macula_relayed_dials_total', help: 'Connections this node opened through a relay.', value: (s) => s.circuitsDialed },
  { type: 'counter', name: 'macula_relayed_dial_failures_total', help: 'Dials of relayed addresses that failed through every relay named.', value: (s) => s.dialFailures },
];

/** Informational: being private is not a fault (relays exist for it), so the check never degrades. */
export function reachabilityHealth(nat: NodeSnapshot['nat']): { status: 'ok'; [detail: string]: unknown } {
  const s = nat?.reachability;
  const o = nat?.observed;
  return { status: 'ok', reachability: s?.status ?? 'unknown', checkedAt: s?.checkedAt ?? 0, behindNat: o?.behindNat ?? false, observedHost: o?.host ?? null };
}
