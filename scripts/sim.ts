/**
 * In-process DHT simulation: `npm run sim -- --nodes N [--lookups L] [--churn F] [--json] [--seed S]`.
 *
 * N real MeshNodes (the real messenger, pool, wire codec and DHT) over the
 * memory transport. The simulator knows the ground truth, so:
 * - a FIND_NODE succeeds when its result holds the live node truly closest
 *   to the target (or the asking node is that node itself);
 * - a FIND_VALUE succeeds when it returns the stored value;
 * - the refresh round after churn is one self-lookup per survivor (as at
 *   join), or with `--refresh buckets` a lookup in every non-full bucket;
 * - `rounds` counts the sequential waves of up to α requests until the
 *   lookup first had its answer; `roundsToTerminate` until it finished.
 */
import { compareDistance } from '../src/dht/id.js';
import { dhtKey } from '../src/dht/key.js';
import { Identity } from '../src/identity/identity.js';
import { MeshNode } from '../src/node/mesh-node.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { seededRandom } from '../src/util/seeded-random.js';

interface Args {
  nodes: number;
  lookups: number;
  churn: number;
  json: boolean;
  seed: number;
  joinConcurrency: number;
  refresh: 'self' | 'buckets';
}

function parseArgs(argv: string[]): Args {
  const args: Args = { nodes: 1000, lookups: 1000, churn: 0, json: false, seed: 1, joinConcurrency: 64, refresh: 'self' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) fail(`${a} needs a number`);
      return v;
    };
    if (a === '--nodes') args.nodes = num();
    else if (a === '--lookups') args.lookups = num();
    else if (a === '--churn') args.churn = num();
    else if (a === '--seed') args.seed = num();
    else if (a === '--join-concurrency') args.joinConcurrency = num();
    else if (a === '--json') args.json = true;
    else if (a === '--refresh') {
      const v = argv[++i];
      if (v !== 'self' && v !== 'buckets') fail('--refresh must be self or buckets');
      args.refresh = v;
    }
    else fail(`unknown argument ${a}`);
  }
  if (!Number.isInteger(args.nodes) || args.nodes < 2) fail('--nodes must be an integer ≥ 2');
  if (!Number.isInteger(args.lookups) || args.lookups < 1) fail('--lookups must be an integer ≥ 1');
  if (args.churn < 0 || args.churn >= 1) fail('--churn must be in [0, 1)');
  return args;
}

function fail(msg: string): never {
  process.stderr.write(`sim: ${msg}\nusage: npm run sim -- --nodes N [--lookups L] [--churn F] [--refresh self|buckets] [--json] [--seed S]\n`);
  process.exit(2);
}

function trueClosest(target: Uint8Array, nodes: MeshNode[]): MeshNode {
  let best = nodes[0]!;
  for (const n of nodes) if (compareDistance(n.identity.nodeId, best.identity.nodeId, target) < 0) best = n;
  return best;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const sortNum = (a: number[]) => [...a].sort((x, y) => x - y);
let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    await Promise.all(items.slice(i, i + size).map(fn));
    sampleRss();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rand = seededRandom(args.seed);
  const randomId = () => Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256));
  const log = (line: string) => {
    if (!args.json) process.stderr.write(`${line}\n`);
  };
  const t0 = performance.now();
  const network = new MemoryNetwork();
  const quiet = { warn: () => {} };
  // Background timers stay off: the simulation drives refresh itself, and
  // thousands of nodes' timers would only add noise.
  const dhtInit = { refreshIntervalMs: 0, replicationIntervalMs: 0 };
  // The services' caches preallocate their capacity (lru-cache); the
  // simulation does not use them, so keep them small to fit 10,000 nodes.
  const smallCaches = {
    registry: { cacheMaxEntries: 16 },
    pubsub: { subscriberCacheMax: 16, maxPublishers: 16 },
    rpc: { client: { maxTrackedProcedures: 16, resultCache: { maxEntries: 16 } } },
  };
  const nodes: MeshNode[] = [];
  for (let i = 0; i < args.nodes; i++) {
    const node = new MeshNode(Identity.generate(), { memoryNetwork: network, port: 0, logger: quiet, dht: dhtInit, stopTimeoutMs: 0, ...smallCaches });
    await node.start();
    nodes.push(node);
  }
  log(`started ${args.nodes} nodes in ${Math.round(performance.now() - t0)} ms`);

  // Join: each node bootstraps through a random node that already joined.
  const tJoin = performance.now();
  const joiners = nodes.slice(1);
  let joinedCount = 1;
  await inBatches(joiners, args.joinConcurrency, async (node) => {
    const via = nodes[Math.floor(rand() * joinedCount)]!;
    await node.dht.bootstrap([via.listenAddress!], { refreshBuckets: false });
    joinedCount++;
  });
  const joinMs = performance.now() - tJoin;
  log(`joined in ${Math.round(joinMs)} ms`);

  // Store L records from random publishers before any churn.
  const keys: { key: Uint8Array; value: string }[] = [];
  await inBatches(
    Array.from({ length: args.lookups }, (_, i) => i),
    args.joinConcurrency,
    async (i) => {
      const publisher = nodes[Math.floor(rand() * nodes.length)]!;
      const key = dhtKey('sim', `record-${i}`);
      const value = `value-${i}`;
      await publisher.dht.put(key, new TextEncoder().encode(value), { ttlMs: 3_600_000 });
      keys.push({ key, value });
    },
  );
  log(`stored ${keys.length} records`);

  let live = nodes;
  if (args.churn > 0) {
    const killCount = Math.floor(args.nodes * args.churn);
    const shuffled = [...nodes].sort(() => rand() - 0.5);
    const dead = new Set(shuffled.slice(0, killCount));
    await Promise.all([...dead].map((n) => (network.kill(n.listenAddress!.port), n.kill())));
    live = nodes.filter((n) => !dead.has(n));
    log(`killed ${killCount} nodes (no withdraw); refresh round on ${live.length} survivors`);
    await inBatches(live, args.joinConcurrency, async (n) => {
      if (args.refresh === 'buckets') await n.dht.refresh({ force: true });
      else await n.dht.findNode(n.identity.nodeId);
    });
  }

  // FIND_NODE of random targets from random live nodes.
  const rounds: number[] = [];
  const roundsTerm: number[] = [];
  const messages: number[] = [];
  let ok = 0;
  await inBatches(
    Array.from({ length: args.lookups }, () => 0),
    args.joinConcurrency,
    async () => {
      const asker = live[Math.floor(rand() * live.length)]!;
      const target = randomId();
      const truth = trueClosest(target, live);
      const r = await asker.dht.findNode(target);
      if (truth === asker || r.closest.some((c) => Buffer.compare(c.id, truth.identity.nodeId) === 0)) ok++;
      rounds.push(r.stats.rounds);
      roundsTerm.push(r.stats.roundsToTerminate);
      messages.push(r.stats.messages);
    },
  );

  // FIND_VALUE of every stored record from random live nodes.
  let found = 0;
  const valueRounds: number[] = [];
  await inBatches(keys, args.joinConcurrency, async ({ key, value }) => {
    const asker = live[Math.floor(rand() * live.length)]!;
    const r = await asker.dht.findValue(key);
    if (r.records.some((rec) => new TextDecoder().decode(rec.value) === value)) found++;
    valueRounds.push(r.stats.rounds);
  });
  sampleRss();

  const sRounds = sortNum(rounds);
  const result = {
    nodes: args.nodes,
    lookups: args.lookups,
    churn: args.churn,
    successRate: ok / args.lookups,
    roundsMedian: quantile(sRounds, 0.5),
    roundsP95: quantile(sRounds, 0.95),
    roundsToTerminateMedian: quantile(sortNum(roundsTerm), 0.5),
    messagesPerLookupMedian: quantile(sortNum(messages), 0.5),
    valueFoundRate: found / keys.length,
    valueRoundsMedian: quantile(sortNum(valueRounds), 0.5),
    joinMs: Math.round(joinMs),
    wallMs: Math.round(performance.now() - t0),
    peakRssMb: Math.round(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / (1024 * 1024)),
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const rows: [string, string][] = [
      ['nodes', String(result.nodes)],
      ['lookups', `${result.lookups} FIND_NODE + ${keys.length} FIND_VALUE`],
      ['churn', `${result.churn * 100}% killed (no withdraw)`],
      ['success rate (FIND_NODE)', `${(result.successRate * 100).toFixed(2)}%`],
      ['rounds median / p95', `${result.roundsMedian} / ${result.roundsP95}`],
      ['rounds to terminate (median)', String(result.roundsToTerminateMedian)],
      ['messages per lookup (median)', String(result.messagesPerLookupMedian)],
      ['records found (FIND_VALUE)', `${(result.valueFoundRate * 100).toFixed(2)}%`],
      ['join time', `${result.joinMs} ms`],
      ['wall time', `${result.wallMs} ms`],
      ['peak RSS', `${result.peakRssMb} MB`],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
  }
  await Promise.all(nodes.map((n) => n.kill()));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`sim failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
