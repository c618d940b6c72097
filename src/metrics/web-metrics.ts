/** Metrics of the web gateway (browsers, web apps), read from its stats() at scrape time. */
import { WEB_REFUSALS, type WebStats } from '../web/server.js';
import type { Sample, StatsMetric } from './metrics.js';

const MODES = ['http3', 'http2', 'websocket'] as const;

export const WEB_METRICS: readonly StatsMetric<WebStats>[] = [
  { type: 'gauge', name: 'macula_web_sessions', help: 'Web sessions (WebTransport, its WebSocket mapping) open.', value: (s) => s.sessions },
  { type: 'gauge', name: 'macula_web_sessions_limit', help: 'Most web sessions open at once.', value: (s) => s.maxSessions },
  { type: 'gauge', name: 'macula_web_streams_per_session_limit', help: 'Most streams one web session may have open.', value: (s) => s.maxStreamsPerSession },
  {
    type: 'gauge',
    name: 'macula_web_mode_enabled',
    help: '1 for each WebTransport mode the web gateway serves (http3 needs the optional native package).',
    labelNames: ['mode'],
    value: (s) => MODES.map((mode): Sample => [{ mode }, s.modes[mode] ? 1 : 0]),
  },
  {
    type: 'counter',
    name: 'macula_web_sessions_opened_total',
    help: 'Web sessions opened, by mode.',
    labelNames: ['mode'],
    value: (s) => MODES.map((mode): Sample => [{ mode }, s.opened[mode]]),
  },
  {
    type: 'counter',
    name: 'macula_web_refused_total',
    help: 'Web sessions and streams refused, by reason (max_sessions, max_streams, bad_stream, pool_full, handshake_failed, bad_key_proof).',
    labelNames: ['reason'],
    value: (s) => WEB_REFUSALS.map((reason): Sample => [{ reason }, s.refused[reason]]),
  },
  { type: 'gauge', name: 'macula_web_certificate_expiry_seconds', help: 'When the web certificate expires, in seconds since the Unix epoch.', value: (s) => Date.parse(s.certificate.notAfter) / 1000 || 0 },
  { type: 'counter', name: 'macula_web_certificate_rotations_total', help: 'Generated web certificates replaced before expiry.', value: (s) => s.certificate.rotations },
];
