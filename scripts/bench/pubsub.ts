/**
 * `pubsub` scenario, over 127.0.0.1, 100-byte payloads. How each comparison
 * is built, so that it is like for like:
 * - every node is a process of its own (the publisher node, the subscriber
 *   node or nodes), and so is every NATS party (the publisher process,
 *   nats-server, the subscriber process or processes): no two parties share
 *   an event loop, and both systems get the same cores;
 * - both systems carry the same payload and are counted at the same point,
 *   the subscriber's handler, over the same window after the same warm-up
 *   (WARMUP_MS); a publisher publishes as fast as its system's flow control
 *   lets it (ours: each publish awaited; NATS: batches of 4096 then a flush,
 *   its best rate measured here);
 * - p2p: one publisher node → one subscriber node (one subscription);
 *   NATS: publisher → nats-server → subscriber;
 * - fan-out, the user's workload: 1,000 subscriptions on 10 subscriber
 *   nodes (100 each, cycling over four patterns that all match the topic);
 *   NATS: 10 subscriber processes with the same 100 subscriptions each
 *   (`#` written `>`). Deliveries/s are counted at the handlers, and
 *   publishes/s are deliveries/s ÷ 1,000 (publishes that reached every
 *   subscription);
 * - every figure is taken `--runs` times (default 3), alternating ours
 *   (default options, then fanoutConcurrency 1024) and NATS, and printed as
 *   the median with `_min` / `_max`; ratios pair the runs of one round;
 * - CPU seconds per million messages (or deliveries) add up the user and
 *   system time of every process of the side, nats-server included, read
 *   from /proc/<pid>/stat over the window.
 * Then, in this process: the publish path alone (a network that accepts
 * every send at once) and the trie matching rate (the `trie` scenario).
 */
import { dhtKey } from '../../src/dht/key.js';
import { signRecord } from '../../src/dht/record.js';
import { Identity } from '../../src/identity/identity.js';
import { encodeAnnouncement } from '../../src/pubsub/announcement.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import type { PubSubInit } from '../../src/pubsub/options.js';
import type { BenchContext } from '../bench.js';
import { alternate, initWorkers, natsAvailable, PAYLOAD, renamed, reportRatio, reportRounds, stopAll, sumCounts, WARMUP_MS, window, Worker, type Proc, type Trial } from './procs.js';
import { trieScenario } from './trie.js';

const FANOUT_NODES = 10;
const SUBS_PER_NODE = 100;
const SUBSCRIPTIONS = FANOUT_NODES * SUBS_PER_NODE;
/** Four patterns that all match the fan-out topic, cycled over each node's 100 subscriptions. */
const FANOUT_PATTERNS = ['bench.fan.t', 'bench.fan.*', 'bench.*.t', 'bench.#'];
const NATS_FANOUT_PATTERNS = FANOUT_PATTERNS.map((p) => p.replace('#', '>'));
const TUNED_CONCURRENCY = 1024;

type System = { kind: 'macula'; pubsub: PubSubInit } | { kind: 'nats' };

/** Starts a publisher and `subscribers` subscriber processes of one system, each subscriber with `patterns` subscriptions. */
async function topology(
  system: System,
  subscribers: number,
  patterns: string[],
  n: number,
  topic: string,
): Promise<{ pub: Worker; subs: Worker[]; procs: Proc[] }> {
  const pub = new Worker('publisher');
  const subs = Array.from({ length: subscribers }, (_, i) => new Worker(`subscriber ${i + 1}`));
  const procs: Proc[] = [pub, ...subs];
  try {
    await initWorkers(system.kind, pub, subs, procs, system.kind === 'macula' ? system.pubsub : undefined);
    await Promise.all(subs.map((w) => w.request('subscribe', { patterns, n })));
    await pub.request('reach', { topic, nodes: subscribers });
    return { pub, subs, procs };
  } catch (err) {
    await stopAll(procs);
    throw err;
  }
}

async function flowTrial(seconds: number, system: System, subscribers: number, patterns: string[], n: number, topic: string) {
  const { pub, subs, procs } = await topology(system, subscribers, patterns, n, topic);
  try {
    return await window(seconds, {
      start: () => pub.request('publish-start', { topic }),
      stop: () => pub.request('publish-stop'),
      counted: () => sumCounts(subs, 'delivered'),
      procs,
    });
  } finally {
    await stopAll(procs);
  }
}

async function p2pTrial(seconds: number, system: System): Promise<Trial> {
  const patterns = ['bench.p2p'];
  const r = await flowTrial(seconds, system, 1, patterns, 1, 'bench.p2p');
  return { msgs_per_s: r.rate, cpu_s_per_m_msgs: r.cpuPerM };
}

async function fanoutTrial(seconds: number, system: System): Promise<Trial> {
  const patterns = system.kind === 'nats' ? NATS_FANOUT_PATTERNS : FANOUT_PATTERNS;
  const r = await flowTrial(seconds, system, FANOUT_NODES, patterns, SUBS_PER_NODE, 'bench.fan.t');
  return { deliveries_per_s: r.rate, publishes_per_s: r.rate / SUBSCRIPTIONS, cpu_s_per_m_deliveries: r.cpuPerM };
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
  const run = async (ms: number): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < ms) {
      await ps.publish('x.y', PAYLOAD);
      // A publish that finds room resolves without touching the event loop: let I/O in now and then.
      if (++n % 256 === 0) await new Promise((r) => setImmediate(r));
    }
    return n / ((performance.now() - t0) / 1000);
  };
  await run(WARMUP_MS);
  const rate = await run(seconds * 1000);
  await ps.stop();
  return rate;
}

export async function pubsubScenario(ctx: BenchContext): Promise<void> {
  const ours: System = { kind: 'macula', pubsub: {} };
  const tuned: System = { kind: 'macula', pubsub: { fanoutConcurrency: TUNED_CONCURRENCY } };
  const natsMissing = await natsAvailable();
  if (natsMissing) ctx.log(`NATS baseline skipped: ${natsMissing}`);
  const variants = (trial: (seconds: number, system: System) => Promise<Trial>) => ({
    ours: { trial: () => trial(ctx.seconds, ours) },
    tuned: { trial: async () => renamed(await trial(ctx.seconds, tuned), '', '_tuned') },
    ...(natsMissing ? {} : { nats: { trial: async () => renamed(await trial(ctx.seconds, { kind: 'nats' }), 'nats_') } }),
  });

  ctx.log(`p2p: publisher node process → subscriber node process; NATS: publisher → nats-server → subscriber (${ctx.runs} runs, alternating)`);
  const p2p = await alternate(ctx, ctx.runs, variants(p2pTrial));
  reportRounds(ctx, p2p, [
    ['p2p_msgs_per_s', 'msgs_per_s', 'msgs/s'],
    ['p2p_msgs_per_s_tuned', 'msgs_per_s_tuned', 'msgs/s'],
    ['p2p_cpu_s_per_m_msgs', 'cpu_s_per_m_msgs', 'CPU s'],
    ['nats_p2p_msgs_per_s', 'nats_msgs_per_s', 'msgs/s'],
    ['nats_p2p_cpu_s_per_m_msgs', 'nats_cpu_s_per_m_msgs', 'CPU s'],
  ]);
  reportRatio(ctx, 'vs_nats_p2p_ratio', p2p.get('msgs_per_s'), p2p.get('nats_msgs_per_s'));

  ctx.log(`fan-out: ${SUBSCRIPTIONS} subscriptions on ${FANOUT_NODES} subscriber node processes, all matching; NATS: ${FANOUT_NODES} subscriber processes`);
  const fan = await alternate(ctx, ctx.runs, variants(fanoutTrial));
  reportRounds(ctx, fan, [
    ['fanout_publishes_per_s', 'publishes_per_s', 'publishes/s'],
    ['fanout_deliveries_per_s', 'deliveries_per_s', 'deliveries/s'],
    ['fanout_publishes_per_s_tuned', 'publishes_per_s_tuned', 'publishes/s'],
    ['fanout_deliveries_per_s_tuned', 'deliveries_per_s_tuned', 'deliveries/s'],
    ['fanout_cpu_s_per_m_deliveries', 'cpu_s_per_m_deliveries', 'CPU s'],
    ['nats_fanout_publishes_per_s', 'nats_publishes_per_s', 'publishes/s'],
    ['nats_fanout_deliveries_per_s', 'nats_deliveries_per_s', 'deliveries/s'],
    ['nats_fanout_cpu_s_per_m_deliveries', 'nats_cpu_s_per_m_deliveries', 'CPU s'],
  ]);
  reportRatio(ctx, 'vs_nats_fanout_ratio', fan.get('deliveries_per_s'), fan.get('nats_deliveries_per_s'));

  ctx.log('publish path alone, in this process (subscribers cached, a network that accepts every send at once):');
  ctx.report({ metric: 'publish_path_per_s', value: await publisherCeiling(Math.min(ctx.seconds, 2)), unit: 'publishes/s' });
  await trieScenario(ctx);
}
