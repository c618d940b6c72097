// The node's dashboard: everything it shows comes through the web gateway
// (GW_STATS, GW_PEERS and the console's publish/subscribe/call) on one
// session, like any other client of the node.
import uPlot from 'uplot';
import { connect, nodeInfo, pathFor } from '../client/browser.ts';

const WINDOW_S = 300;
const $ = (id) => document.getElementById(id);
const short = (hex) => (typeof hex === 'string' ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : '–');
const sum = (...xs) => xs.reduce((a, b) => a + (Number(b) || 0), 0);

/** Series of the rate plots: name → counter read from the snapshot. */
const PLOTS = {
  'plot-pubsub': { title: 'pub/sub', series: { publishes: (s) => s.pubsub?.published, deliveries: (s) => s.pubsub?.delivered } },
  'plot-rpc': {
    title: 'RPC',
    series: {
      calls: (s) => sum(...Object.values(s.rpc?.client?.calls ?? {})),
      failures: (s) => { const c = s.rpc?.client?.calls ?? {}; return sum(c.remote_error, c.timeout, c.no_providers, c.unavailable, c.busy, c.bad_args); },
      served: (s) => sum(...Object.values(s.rpc?.server?.served ?? {})),
    },
  },
  'plot-drops': {
    title: 'drops by cause',
    series: {
      subscriber_buffer: (s) => s.pubsub?.dropped,
      publish: (s) => s.pubsub?.publishesDropped,
      fanout: (s) => sum(s.pubsub?.fanout?.dropped, s.pubsub?.fanout?.backlogDropped),
      one_way: (s) => sum(...Object.values(s.traffic?.oneWayDropped ?? {})),
      to_clients: (s) => s.gateway?.forwardFailures,
    },
  },
  'plot-dht': { title: 'DHT lookups', series: { services: (s) => s.registry?.dhtLookups, topics: (s) => s.pubsub?.cache?.dhtLookups } },
};
const COLORS = ['#4f7cff', '#e0892b', '#2bb673', '#c62828', '#8e44ad'];

const plots = {};
for (const [id, def] of Object.entries(PLOTS)) {
  const names = Object.keys(def.series);
  const data = [[], ...names.map(() => [])];
  const el = $(id);
  const plot = new uPlot(
    {
      title: def.title,
      width: Math.max(380, el.clientWidth || 400),
      height: 180,
      series: [{}, ...names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 1.5 }))],
      axes: [{}, { size: 50 }],
    },
    data,
    el,
  );
  plots[id] = { def, names, data, plot, last: undefined };
}

function sample(snapshot, t) {
  for (const p of Object.values(plots)) {
    const values = p.names.map((n) => Number(p.def.series[n](snapshot)) || 0);
    if (p.last) {
      const dt = Math.max(0.001, t - p.last.t);
      p.data[0].push(t);
      values.forEach((v, i) => p.data[i + 1].push(Math.max(0, (v - p.last.values[i]) / dt)));
      while (p.data[0].length > 0 && p.data[0][0] < t - WINDOW_S) for (const col of p.data) col.shift();
      p.plot.setData(p.data);
    }
    p.last = { t, values };
  }
  document.body.dataset.samples = String((Number(document.body.dataset.samples) || 0) + 1);
}

function rows(tableId, entries) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(
    ...entries.map((cells) => {
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        if (c instanceof Node) td.append(c);
        else td.textContent = String(c);
        tr.append(td);
      }
      return tr;
    }),
  );
}

function bar(used, limit) {
  const outer = document.createElement('div');
  outer.className = 'bar';
  const inner = document.createElement('span');
  inner.style.width = `${limit > 0 ? Math.min(100, (100 * used) / limit) : 0}%`;
  outer.append(inner);
  return outer;
}

const pct = (hits, misses) => (hits + misses > 0 ? `${((100 * hits) / (hits + misses)).toFixed(1)} %` : '–');

function render(s) {
  $('uptime').textContent = `${s.process?.uptimeSeconds ?? '–'} s`;
  const q = s.queues ?? {};
  const f = s.pubsub?.fanout ?? {};
  const g = s.gateway ?? {};
  const queues = [
    ['fan-out queue', f.queued, f.maxQueue],
    ['send queue (fullest stream), bytes', q.sendQueueLargestBytes, q.sendQueueLimitBytes],
    ['requests in flight (busiest connection)', q.requestsInFlightLargest, q.maxInFlight],
    ['unfinished frame bytes', q.budgets?.frameBytes?.used, q.budgets?.frameBytes?.limit],
    ['connections before HELLO', q.budgets?.preHelloConnections?.used, q.budgets?.preHelloConnections?.limit],
    ['connections', s.pool?.open, s.pool?.max],
    ['light clients', g.clients, g.maxClients],
    ['client DHT keys', g.dhtKeys, g.maxClientDhtKeys],
    ['web sessions', s.web?.sessions, s.web?.maxSessions],
  ];
  rows('queues', queues.map(([name, used, limit]) => [name, `${used ?? 0} / ${limit ?? '–'}`, bar(Number(used) || 0, Number(limit) || 0)]));
  const r = s.registry ?? {};
  const c = s.pubsub?.cache ?? {};
  const rc = s.rpc?.client ?? {};
  rows('caches', [
    ['registry', pct(r.hits ?? 0, r.misses ?? 0), `${r.size ?? 0} entries`],
    ['topic → subscribers', pct(c.topicHits ?? 0, c.topicMisses ?? 0), `${c.topicSize ?? 0} entries`],
    ['prefix announcements', pct(c.prefixHits ?? 0, c.prefixMisses ?? 0), `${c.prefixSize ?? 0} entries`],
    ['RPC results', pct(rc.resultCacheHits ?? 0, rc.resultCacheMisses ?? 0), `${rc.resultCacheSize ?? 0} entries`],
  ]);
  rows('services', [
    ['subscriptions (node)', s.pubsub?.subscriptions ?? 0],
    ['patterns', s.pubsub?.patterns ?? 0],
    ['subscriptions of clients', g.subscriptions ?? 0],
    ['procedures served', s.rpc?.server?.procedures ?? 0],
    ['procedures served by clients', g.served ?? 0],
    ['local services', r.localServices ?? 0],
  ]);
}

function renderPeers(p) {
  $('peer-summary').textContent = `${p.connections.length} connections, ${p.contacts.length} contacts in the routing table`;
  rows('peers', p.connections.map((c) => [short(c.nodeId), `${c.address.host}:${c.address.port}`, c.role, c.direction, c.rttMs]));
  rows('contacts', p.contacts.map((c) => [short(c.nodeId), `${c.host}:${c.port}`, new Date(c.lastSeen).toLocaleTimeString(), c.fails]));
}

function log(text, cls) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (cls) li.className = cls;
  $('log').prepend(li);
  while ($('log').children.length > 200) $('log').lastChild.remove();
}

const parse = (text) => {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};
const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

async function main() {
  const info = await nodeInfo(location.origin);
  $('node-id').textContent = info.nodeId;
  $('realm').textContent = info.realm;
  $('modes').textContent = Object.entries(info.modes).filter(([, on]) => on).map(([m]) => m).join(', ');
  $('cert').textContent = `sha-256 ${info.certificate.sha256} (until ${info.certificate.notAfter})`;
  $('via').textContent = pathFor(info) === 'http3' ? 'WebTransport over HTTP/3' : 'WebTransport over the WebSocket mapping';
  const client = await connect({ url: location.origin, software: 'macula-dashboard' });
  client.ondisconnect = () => {
    $('status').textContent = 'disconnected (reload to reconnect)';
    $('status').dataset.state = 'error';
  };
  $('status').textContent = `connected to ${short(client.info.nodeId)}`;
  $('status').dataset.state = 'connected';

  const tick = async () => {
    try {
      const [s, p] = await Promise.all([client.stats(), client.peers()]);
      sample(s, Date.now() / 1000);
      render(s);
      renderPeers(p);
    } catch (err) {
      log(`stats: ${err.message}`, 'error');
    }
  };
  await tick();
  setInterval(tick, 1000);

  $('sub-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const pattern = $('sub-pattern').value;
    try {
      const sub = await client.subscribe(pattern);
      log(`subscribed to ${pattern}`);
      for await (const m of sub) log(`[${m.topic}] ${show(m.data)}`, 'message');
    } catch (err) {
      log(`subscribe ${pattern}: ${err.code ?? ''} ${err.message}`, 'error');
    }
  });
  $('pub-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const topic = $('pub-topic').value;
    try {
      // One-way: flush() resolves once the node has handled it, and rejects with its refusal.
      await client.publish(topic, parse($('pub-data').value) ?? null);
      await client.flush();
      log(`published to ${topic}`);
    } catch (err) {
      log(`publish ${topic}: ${err.code ?? ''} ${err.message}`, 'error');
    }
  });
  $('call-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const proc = $('call-proc').value;
    try {
      const r = await client.call(proc, parse($('call-args').value));
      log(`${proc} → ${show(r)}`, 'result');
    } catch (err) {
      log(`call ${proc}: ${err.code ?? ''} ${err.message}`, 'error');
    }
  });
}

main().catch((err) => {
  $('status').textContent = `error: ${err.message}`;
  $('status').dataset.state = 'error';
});
