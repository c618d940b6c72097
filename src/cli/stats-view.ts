/**
 * The human view of a node's stats snapshot (src/gateway/snapshot.ts): the
 * figures an operator asks for first — throughput, queue depths, cache hit
 * rates, connection pool use. Sections whose source the node does not report
 * (e.g. pub/sub on a node without it) are left out rather than shown as 0.
 *
 * Rates need two snapshots: `previous` taken `seconds` earlier.
 */
import { escapeControls, formatBytes, formatCount, formatDuration, formatPercent, shortNodeId, table } from './output.js';

type Snapshot = Record<string, unknown>;

/** The number at a dotted path, or undefined when absent. */
export function num(s: Snapshot | undefined, path: string): number | undefined {
  let v: unknown = s;
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function sumOf(s: Snapshot | undefined, path: string): number | undefined {
  let v: unknown = s;
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  if (typeof v !== 'object' || v === null) return undefined;
  let total = 0;
  for (const x of Object.values(v)) if (typeof x === 'number') total += x;
  return total;
}

interface Counter {
  label: string;
  read: (s: Snapshot) => number | undefined;
}

const THROUGHPUT: Counter[] = [
  { label: 'messages received (all types)', read: (s) => sumOf(s, 'traffic.received') },
  { label: 'messages sent (all types)', read: (s) => sumOf(s, 'traffic.sent') },
  { label: 'pub/sub published here', read: (s) => num(s, 'pubsub.published') },
  { label: 'pub/sub received from nodes', read: (s) => num(s, 'pubsub.received') },
  { label: 'pub/sub delivered to subscribers', read: (s) => num(s, 'pubsub.delivered') },
  { label: 'pub/sub sent to nodes', read: (s) => num(s, 'pubsub.fanout.sent') },
  { label: 'rpc calls made', read: (s) => sumOf(s, 'rpc.client.calls') },
  { label: 'rpc calls served', read: (s) => sumOf(s, 'rpc.server.served') },
  { label: 'client requests', read: (s) => sumOf(s, 'gateway.requests') },
  { label: 'messages to clients', read: (s) => num(s, 'gateway.forwarded') },
  { label: 'dht lookups', read: (s) => lookupsTotal(s) },
];

/** Messages that did not reach a subscriber or client (what `macula check` counts as drops). */
const DROPS: Counter[] = [
  { label: 'pub/sub dropped (subscriber buffers full)', read: (s) => num(s, 'pubsub.dropped') },
  { label: 'pub/sub publishes refused (fan-out queue full)', read: (s) => num(s, 'pubsub.publishesDropped') },
  { label: 'pub/sub fan-out drops (queue or node backlog)', read: (s) => add(num(s, 'pubsub.fanout.dropped'), num(s, 'pubsub.fanout.backlogDropped')) },
  { label: 'pub/sub send failures', read: (s) => num(s, 'pubsub.fanout.sendFailures') },
  { label: 'messages to clients not sent', read: (s) => num(s, 'gateway.forwardFailures') },
];

/** Every message drop a snapshot counts (see DROPS), or undefined when it counts none. */
export function messageDrops(s: Snapshot): number | undefined {
  let total: number | undefined;
  for (const c of DROPS) total = add(total, c.read(s));
  return total;
}

const LOSSES: Counter[] = [
  ...DROPS,
  { label: 'rpc calls failed', read: (s) => failedCalls(s) },
  { label: 'dht request timeouts', read: (s) => num(s, 'dht.timeouts') },
  { label: 'peers refused (secured realm)', read: (s) => sumOf(s, 'auth.refusals') },
  { label: 'requests forbidden (secured realm)', read: (s) => sumOf(s, 'auth.forbidden') },
  { label: 'records refused (secured realm)', read: (s) => num(s, 'auth.recordsRefused') },
];

function add(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0);
}

function lookupsTotal(s: Snapshot): number | undefined {
  const lookups = (s.dht as Record<string, unknown> | undefined)?.lookups;
  if (typeof lookups !== 'object' || lookups === null) return undefined;
  let total = 0;
  for (const byOutcome of Object.values(lookups)) for (const n of Object.values(byOutcome as Record<string, number>)) total += n;
  return total;
}

function failedCalls(s: Snapshot): number | undefined {
  const total = sumOf(s, 'rpc.client.calls');
  return total === undefined ? undefined : total - (num(s, 'rpc.client.calls.ok') ?? 0);
}

function rate(c: Counter, now: Snapshot, previous: Snapshot | undefined, seconds: number): string {
  if (!previous || seconds <= 0) return '';
  const a = c.read(previous);
  const b = c.read(now);
  if (a === undefined || b === undefined) return '';
  return formatCount(Math.max(0, b - a) / seconds);
}

function counterRows(counters: Counter[], now: Snapshot, previous: Snapshot | undefined, seconds: number): string[][] {
  const rows: string[][] = [];
  for (const c of counters) {
    const v = c.read(now);
    if (v !== undefined) rows.push([`  ${c.label}`, formatCount(v), rate(c, now, previous, seconds)]);
  }
  return rows;
}

function hitRow(label: string, hits: number | undefined, misses: number | undefined, size: number | undefined): string[] | undefined {
  if (hits === undefined || misses === undefined) return undefined;
  return [`  ${label}`, formatCount(hits), formatCount(misses), formatPercent(hits, hits + misses), size === undefined ? '' : formatCount(size)];
}

export function renderStats(now: Snapshot, previous?: Snapshot, seconds = 0): string {
  const out: string[] = [];
  const node = (now.node ?? {}) as Record<string, unknown>;
  const listen = node.listen as { host: string; port: number } | undefined;
  const uptime = num(now, 'process.uptimeSeconds');
  out.push(
    `node     ${String(node.nodeId ?? '?')}`,
    `         realm ${String(node.realm ?? '?')}, ${node.joined ? 'joined the mesh' : 'not joined yet'}` +
      `${listen ? `, listening ${listen.host}:${listen.port}` : ''}${uptime !== undefined ? `, up ${formatDuration(uptime)}` : ''}`,
    `         routing table ${formatCount(num(now, 'dht.routingTableSize') ?? 0)} contacts, ` +
      `dht store ${formatCount(num(now, 'dht.records') ?? 0)} records (${formatCount(num(now, 'dht.ownRecords') ?? 0)} own)` +
      (num(now, 'pubsub.subscriptions') !== undefined ? `, ${formatCount(num(now, 'pubsub.subscriptions')!)} subscriptions` : '') +
      `, ${formatCount(num(now, 'rpc.server.procedures') ?? 0)} procedures served`,
    ...reachabilityLine(now),
    '',
  );

  const withRates = previous !== undefined && seconds > 0;
  const head = ['throughput', 'total', withRates ? 'per second' : ''];
  out.push(table([head, ...counterRows(THROUGHPUT, now, previous, seconds)], { rightAlign: [1, 2] }), '');
  const losses = counterRows(LOSSES, now, previous, seconds);
  if (losses.length > 0) out.push(table([['drops and failures', 'total', withRates ? 'per second' : ''], ...losses], { rightAlign: [1, 2] }), '');

  out.push(...slowConsumerTable(now));

  const queues: string[][] = [['queues', 'now', 'limit', 'peak']];
  if (num(now, 'pubsub.fanout.queued') !== undefined) {
    queues.push(['  pub/sub fan-out queue', formatCount(num(now, 'pubsub.fanout.queued')!), formatCount(num(now, 'pubsub.fanout.maxQueue') ?? 0), formatCount(num(now, 'pubsub.fanout.peakQueued') ?? 0)]);
    queues.push(['  pub/sub fan-out sends running', formatCount(num(now, 'pubsub.fanout.running') ?? 0), formatCount(num(now, 'pubsub.fanout.concurrency') ?? 0), '']);
    queues.push(['  publishers waiting (backpressure)', formatCount(num(now, 'pubsub.fanout.waiting') ?? 0), '', '']);
    queues.push(['  messages held while dialing', formatCount(num(now, 'pubsub.fanout.backlogged') ?? 0), '', '']);
  }
  if (num(now, 'queues.sendQueuedBytes') !== undefined) {
    queues.push(['  send queues, all streams', formatBytes(num(now, 'queues.sendQueuedBytes')!), '', '']);
    queues.push(['  send queue, fullest stream', formatBytes(num(now, 'queues.sendQueueLargestBytes') ?? 0), formatBytes(num(now, 'queues.sendQueueLimitBytes') ?? 0), '']);
    queues.push(['  requests served now, all connections', formatCount(num(now, 'queues.requestsInFlight') ?? 0), '', '']);
    queues.push(['  requests served now, busiest connection', formatCount(num(now, 'queues.requestsInFlightLargest') ?? 0), formatCount(num(now, 'queues.maxInFlight') ?? 0), '']);
    queues.push(['  requests awaiting an answer', formatCount(num(now, 'queues.requestsPending') ?? 0), '', '']);
  }
  queues.push(['  rpc handlers running', formatCount(num(now, 'rpc.server.running') ?? 0), '', '']);
  queues.push(['  rpc calls in flight (made here)', formatCount(num(now, 'rpc.client.inFlight') ?? 0), '', '']);
  out.push(table(queues, { rightAlign: [1, 2, 3] }), '');

  const caches = [
    ['caches', 'hits', 'misses', 'hit rate', 'size'],
    hitRow('registry lookups', num(now, 'registry.hits'), num(now, 'registry.misses'), num(now, 'registry.size')),
    hitRow('pub/sub subscribers by topic', num(now, 'pubsub.cache.topicHits'), num(now, 'pubsub.cache.topicMisses'), num(now, 'pubsub.cache.topicSize')),
    hitRow('pub/sub subscribers by prefix', num(now, 'pubsub.cache.prefixHits'), num(now, 'pubsub.cache.prefixMisses'), num(now, 'pubsub.cache.prefixSize')),
    hitRow('rpc results (idempotent)', num(now, 'rpc.client.resultCacheHits'), num(now, 'rpc.client.resultCacheMisses'), num(now, 'rpc.client.resultCacheSize')),
  ].filter((r): r is string[] => r !== undefined);
  out.push(table(caches, { rightAlign: [1, 2, 3, 4] }), '');

  const open = num(now, 'pool.open') ?? 0;
  const max = num(now, 'pool.max') ?? 0;
  const clients = num(now, 'gateway.clients') ?? 0;
  const maxClients = num(now, 'gateway.maxClients') ?? 0;
  out.push(
    table(
      [
        ['connections', 'open', 'limit', 'use', 'evicted', 'reaped', 'refused'],
        ['  pool (nodes and clients)', formatCount(open), formatCount(max), formatPercent(open, max), formatCount(num(now, 'pool.evicted') ?? 0), formatCount(num(now, 'pool.reaped') ?? 0), formatCount(num(now, 'pool.refused') ?? 0)],
        ['  light clients', formatCount(clients), formatCount(maxClients), formatPercent(clients, maxClients), '', '', formatCount(num(now, 'gateway.refusedByReason.max_clients') ?? num(now, 'gateway.refused') ?? 0)],
        ...perAddressRow(now),
      ],
      { rightAlign: [1, 2, 3, 4, 5, 6] },
    ),
  );
  return `${out.join('\n')}\n`;
}

/** `reachability public|private|unknown`, with the address peers observed; absent when the node does not report it. */
function reachabilityLine(now: Snapshot): string[] {
  const nat = now.nat as
    | { reachability?: { status?: string }; observed?: { host?: string; behindNat?: boolean }; advertised?: string; relay?: { enabled?: boolean; circuits?: number; reservations?: number } }
    | undefined;
  if (!nat) return [];
  const status = nat.reachability?.status ?? 'not checked';
  const observed = nat.observed?.host ? `, peers see it as ${nat.observed.host}${nat.observed.behindNat ? ' (behind a NAT)' : ''}` : '';
  const lines = [`         reachability ${status}${observed}${nat.advertised ? `, announced as ${nat.advertised}` : ''}`];
  if (nat.relay?.enabled) lines.push(`         relaying for ${formatCount(nat.relay.reservations ?? 0)} nodes, ${formatCount(nat.relay.circuits ?? 0)} circuits open`);
  return lines;
}

/** The subscriptions and subscriber nodes that dropped messages in the last minute, worst first; nothing when none did. */
function slowConsumerTable(now: Snapshot): string[] {
  const list = ((now.pubsub as Snapshot | undefined)?.slowConsumers ?? []) as Record<string, unknown>[];
  if (!Array.isArray(list) || list.length === 0) return [];
  const rows = list.map((c) => {
    const what =
      c.kind === 'node'
        ? 'subscriber node'
        : `subscription ${String(c.pattern)}${c.queue !== undefined ? ` (queue ${String(c.queue)})` : ''}${c.client !== undefined ? ` of client ${shortNodeId(String(c.client))}` : ''}`;
    return [`  ${escapeControls(what)}`, shortNodeId(String(c.node)), formatCount(Number(c.dropsLastMinute)), formatCount(Number(c.dropsTotal))];
  });
  return [table([['slow consumers', 'node', 'drops, last minute', 'total'], ...rows], { rightAlign: [2, 3] }), ''];
}

/** The busiest client source against the per-address share; absent when the node does not report it. */
function perAddressRow(now: Snapshot): string[][] {
  const limit = num(now, 'gateway.maxClientsPerAddress');
  if (limit === undefined) return [];
  const largest = num(now, 'gateway.largestSourceClients') ?? 0;
  const refused = num(now, 'gateway.refusedByReason.max_clients_per_address') ?? 0;
  return [['  clients of the busiest address', formatCount(largest), formatCount(limit), formatPercent(largest, limit), '', '', formatCount(refused)]];
}
