/**
 * `pubsub` scenario, over QUIC on 127.0.0.1, 100-byte payloads, all nodes in
 * this process (so publisher and subscribers share the 2 cores):
 * 1. one publisher node → one subscriber node: messages delivered per second;
 * 2. one publisher → 10 subscriber nodes with 100 subscriptions each, all
 *    matching: publishes fanned out per second and handler deliveries per
 *    second;
 * 3. the same two through nats-server with the `nats` client, when both are
 *    available, and our/NATS ratios;
 * 4. the trie matching rate (the `trie` scenario).
 * Publishers publish as fast as the fan-out queue lets them (backpressure);
 * rates are counted at the subscribers over a window that starts once the
 * pipeline is warm.
 */
import { dhtKey } from '../../src/dht/key.js';
import { signRecord } from '../../src/dht/record.js';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import type { PubSubInit } from '../../src/pubsub/options.js';
import type { BenchContext } from '../bench.js';
import { startNats, type NatsBaseline } from './nats.js';
import { trieScenario } from './trie.js';

const PAYLOAD = new Uint8Array(100).fill(7);
const FANOUT_NODES = 10;
const SUBS_PER_NODE = 100;
/** Four patterns that all match the fan-out topic, cycled over each node's 100 subscriptions. */
const FANOUT_PATTERNS = ['bench.fan.t', 'bench.fan.*', 'bench.*.t', 'bench.#'];
const WARMUP_MS = 500;
const NATS_BATCH = 4096;
const TUNED_CONCURRENCY = 1024;

const quiet = { warn: () => {} };

export async function startNodes(n: number, init: PubSubInit): Promise<{ nodes: MeshNode[]; pubsubs: PubSub[] }> {
  const first = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, pubsub: init }).start();
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, () =>
      new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, pubsub: init, bootstrap: [first.listenAddress!] }).start(),
    ),
  );
  await Promise.all(rest.map((x) => x.joined()));
  const nodes = [first, ...rest];
  return { nodes, pubsubs: nodes.map((node) => node.pubsub) };
}

export async function stopNodes(nodes: MeshNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

/**
 * Runs `publishOne` in a loop (it applies its own backpressure) while
 * sampling the `counters` over a window of `seconds` after a warm-up;
 * returns each counter's rate over the window.
 */
export async function measure(seconds: number, publishOne: () => Promise<unknown>, counters: () => number[]): Promise<number[]> {
  let stop = false;
  const loop = (async () => {
    let n = 0;
    while (!stop) {
      await publishOne();
      // A publish that finds room resolves without touching the event loop: let I/O in now and then.
      if (++n % 256 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const c0 = counters();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c1 = counters();
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await loop;
  return c1.map((c, i) => (c - c0[i]!) / elapsed);
}

async function p2p(ctx: BenchContext, init: PubSubInit): Promise<number> {
  const { nodes, pubsubs } = await startNodes(2, init);
  try {
    const [pub, sub] = pubsubs as [PubSub, PubSub];
    let delivered = 0;
    await sub.subscribe('bench.p2p', () => void delivered++).ready;
    const [rate] = await measure(ctx.seconds, () => pub.publish('bench.p2p', PAYLOAD), () => [delivered]);
    const s = sub.stats();
    ctx.log(`subscriber: ${s.received} received, ${s.duplicates} out of order, ${s.dropped} dropped on a full buffer`);
    return rate!;
  } finally {
    await stopNodes(nodes);
  }
}

async function fanout(ctx: BenchContext, init: PubSubInit): Promise<{ publishes: number; deliveries: number }> {
  const { nodes, pubsubs } = await startNodes(FANOUT_NODES + 1, init);
  try {
    const [pub, ...subs] = pubsubs as [PubSub, ...PubSub[]];
    let delivered = 0;
    const count = (): void => void delivered++;
    const all = subs.flatMap((s) => Array.from({ length: SUBS_PER_NODE }, (_, i) => s.subscribe(FANOUT_PATTERNS[i % FANOUT_PATTERNS.length]!, count)));
    await Promise.all(all.map((s) => s.ready));
    const first = await pub.publish('bench.fan.t', PAYLOAD);
    if (first.nodes !== FANOUT_NODES) ctx.log(`warning: the publisher resolved ${first.nodes} subscriber nodes, expected ${FANOUT_NODES}`);
    const received = () => subs.reduce((n, s) => n + s.stats().received, 0);
    const [messages, deliveries] = await measure(ctx.seconds, () => pub.publish('bench.fan.t', PAYLOAD), () => [received(), delivered]);
    // A publish counts once all 10 nodes got it: PUBLISH messages received / 10.
    const publishes = messages! / FANOUT_NODES;
    const f = pub.stats().fanout;
    ctx.log(`publisher fan-out pool: peak queue ${f.peakQueued}/${f.maxQueue}, ${f.sent} sends, ${f.sendFailures} failed`);
    return { publishes, deliveries: deliveries! };
  } finally {
    await stopNodes(nodes);
  }
}

/** The publish path with a network that accepts every send at once: the publisher-side ceiling. */
async function publisherCeiling(seconds: number): Promise<number> {
  const identity = Identity.generate();
  const peer = Identity.generate();
  const key = dhtKey('pubsub/bench', 'x.y');
  const record = signRecord(peer, { key, value: encodeAnnouncement({ host: '127.0.0.1', port: 1 }, ['x.y']), seq: 1, ttlMs: 60_000, now: Date.now() });
  const ps = new PubSub(
    {
      identity,
      realm: 'bench',
      advertisedAddress: () => ({ host: '127.0.0.1', port: 1 }),
      dht: {
        put: async () => undefined,
        withdraw: async () => undefined,
        findValue: async (k) => ({ records: Buffer.from(k).equals(key) ? [record] : [] }),
      },
      messenger: { handle: () => undefined, notify: () => Promise.resolve() },
    },
    { subscriberCacheTtlMs: 3_600_000 },
  );
  await ps.publish('x.y', PAYLOAD);
  let n = 0;
  const [rate] = await measure(seconds, async () => {
    await ps.publish('x.y', PAYLOAD);
    n++;
  }, () => [n]);
  await ps.stop();
  return rate!;
}

// ---- NATS baseline -------------------------------------------------------------

type NatsConn = Awaited<ReturnType<NatsBaseline['nats']['connect']>>;

/**
 * Publishes a batch of 4096, then flushes (a round trip to the server, which
 * gives backpressure). Measured here, batches of 4096 gave NATS its best
 * rate (256: ~410K msgs/s, 4096: ~700K), so the ratios are against NATS at
 * its best.
 */
function natsPublisher(nc: NatsConn, subject: string): () => Promise<unknown> {
  return () => {
    for (let i = 0; i < NATS_BATCH; i++) nc.publish(subject, PAYLOAD);
    return nc.flush();
  };
}

async function natsBaseline(ctx: BenchContext, base: NatsBaseline): Promise<{ p2p: number; fanout: number }> {
  const conns: NatsConn[] = [];
  const open = async () => {
    const nc = await base.nats.connect({ servers: `127.0.0.1:${base.port}` });
    conns.push(nc);
    return nc;
  };
  try {
    const pub = await open();
    const sub = await open();
    let got = 0;
    sub.subscribe('bench.p2p', { callback: () => void got++ });
    await sub.flush();
    const [p2pRate] = await measure(ctx.seconds, natsPublisher(pub, 'bench.p2p'), () => [got]);
    // Ten connections stand for the ten subscriber nodes, 100 subscriptions each.
    let delivered = 0;
    for (let i = 0; i < FANOUT_NODES; i++) {
      const nc = await open();
      for (let j = 0; j < SUBS_PER_NODE; j++) nc.subscribe('bench.fan.t', { callback: () => void delivered++ });
      await nc.flush();
    }
    const [fanRate] = await measure(ctx.seconds, natsPublisher(pub, 'bench.fan.t'), () => [delivered]);
    return { p2p: p2pRate!, fanout: fanRate! };
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  }
}

export async function pubsubScenario(ctx: BenchContext): Promise<void> {
  ctx.log('default options (fanoutConcurrency 64):');
  const p2pRate = await p2p(ctx, {});
  ctx.report({ metric: 'p2p_msgs_per_s', value: p2pRate, unit: 'msgs/s' });
  const fan = await fanout(ctx, {});
  ctx.report({ metric: 'fanout_publishes_per_s', value: fan.publishes, unit: 'publishes/s' });
  ctx.report({ metric: 'fanout_deliveries_per_s', value: fan.deliveries, unit: 'deliveries/s' });

  // A send holds its pool slot until its frame is written, so with 64 slots
  // a connection carries only the few frames queued during one write; more
  // slots let each write carry more frames.
  ctx.log(`fanoutConcurrency ${TUNED_CONCURRENCY}:`);
  const tuned = { fanoutConcurrency: TUNED_CONCURRENCY };
  ctx.report({ metric: 'p2p_msgs_per_s_tuned', value: await p2p(ctx, tuned), unit: 'msgs/s' });
  const fanTuned = await fanout(ctx, tuned);
  ctx.report({ metric: 'fanout_publishes_per_s_tuned', value: fanTuned.publishes, unit: 'publishes/s' });
  ctx.report({ metric: 'fanout_deliveries_per_s_tuned', value: fanTuned.deliveries, unit: 'deliveries/s' });

  ctx.log('publish path alone (subscribers cached, a network that accepts every send at once):');
  ctx.report({ metric: 'publish_path_per_s', value: await publisherCeiling(Math.min(ctx.seconds, 2)), unit: 'publishes/s' });

  const nats = await startNats();
  if (typeof nats === 'string') ctx.log(`NATS baseline skipped: ${nats}`);
  else {
    let base: { p2p: number; fanout: number };
    try {
      base = await natsBaseline(ctx, nats);
    } finally {
      await nats.stop();
    }
    ctx.report({ metric: 'nats_p2p_msgs_per_s', value: base.p2p, unit: 'msgs/s' });
    ctx.report({ metric: 'vs_nats_p2p_ratio', value: p2pRate / base.p2p, unit: 'x' });
    ctx.report({ metric: 'nats_fanout_deliveries_per_s', value: base.fanout, unit: 'deliveries/s' });
    ctx.report({ metric: 'vs_nats_fanout_ratio', value: fan.deliveries / base.fanout, unit: 'x' });
  }
  await trieScenario(ctx);
}
