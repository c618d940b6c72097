/**
 * Soak: `npm run soak -- --minutes M [--nodes 10] [--json]` (not part of CI).
 *
 * Runs an N-node mesh over real QUIC on 127.0.0.1 for M minutes with steady
 * traffic and churn, and reports memory, connections, records, queue depths
 * and error counts of every node once per interval (default one minute),
 * then how each grew between the first sample after the warm-up and the
 * last one, and a verdict.
 *
 * Each node is its own child process (this file run with `--worker`), so
 * that RSS and heap are per node; it reports over IPC when asked. Heap
 * figures are taken right after a forced full GC (workers run with
 * --expose-gc), so they show what is retained, not what is garbage yet.
 *
 * Traffic (per worker, fixed rates):
 * - pub/sub: a few publishers publish to `soak.p<slot>.temp` and
 *   `soak.p<slot>.load`; every node subscribes to `soak.*.temp`, even slots
 *   also to `soak.#`, every third slot to `soak.p1.*` (wildcards only);
 * - RPC: even slots serve `soak.echo`; every node calls it.
 * Churn: every 30–60 s one node of the churn set (the upper half of the
 * slots) is killed with SIGKILL, as a crash, and a fresh node with a new
 * identity takes its slot and joins through the bootstrap node (slot 0).
 * The lower half is never killed, so its processes live the whole run and
 * their growth is meaningful; they still see every churn of their peers
 * (dead connections, records of dead nodes, failovers, failed sends).
 *
 * Bounded in time; stops itself; its children exit with it (SIGINT and
 * SIGTERM included, and a worker exits when its parent goes away).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Identity } from '../src/identity/identity.js';
import { MeshNode } from '../src/node/mesh-node.js';
import type { Subscription } from '../src/pubsub/index.js';
import { matches } from '../src/pubsub/topic.js';
import { parseAddress } from '../src/transport/types.js';

const SELF = fileURLToPath(import.meta.url);
const HOST = '127.0.0.1';
const MB = 1024 * 1024;

// ---------------------------------------------------------------- shared

interface WorkerConfig {
  slot: number;
  generation: number;
  bootstrap?: string;
  serve: boolean;
  publish: boolean;
  pubRate: number;
  callRate: number;
}

/** What a worker answers to a stats request; counters are cumulative over the process. */
interface WorkerStats {
  pid: number;
  uptimeS: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  connections: number;
  routingTable: number;
  records: number;
  ownRecords: number;
  fanoutQueued: number;
  fanoutPeakQueued: number;
  fanoutMaxQueue: number;
  fanoutBacklogged: number;
  subBuffered: number;
  subBufferedMax: number;
  sendQueuedBytes: number;
  requestsPending: number;
  requestsInFlight: number;
  eventLoopP99Ms: number;
  protocolErrors: number;
  warnings: number;
  rpcCalls: Record<string, number>;
  rpcServed: Record<string, number>;
  rpcFailovers: number;
  /** Calls this worker skipped because too many were in flight already. */
  callsSkipped: number;
  pub: {
    published: number;
    publishErrors: number;
    publishesSkipped: number;
    publishesDropped: number;
    sent: number;
    sendFailures: number;
    skippedDown: number;
    backlogDropped: number;
    received: number;
    duplicates: number;
    delivered: number;
    deliveryDrops: number;
    handlerErrors: number;
  };
  /** Since the previous stats request. */
  callLatencyMs: { p50: number; p99: number; max: number; n: number };
  deliveryLatencyMs: { p50: number; p99: number; max: number; n: number };
}

type ToWorker = { type: 'stats'; id: number };
type FromWorker =
  | { type: 'ready'; address: string; nodeId: string }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'fatal'; message: string };

/** Wildcard subscriptions of a slot (every node has some; they overlap on purpose). */
function patternsFor(slot: number): string[] {
  const patterns = ['soak.*.temp'];
  if (slot % 2 === 0) patterns.push('soak.#');
  if (slot % 3 === 0) patterns.push('soak.p1.*');
  return patterns;
}

/** Topics a publishing slot alternates between. */
function topicsFor(slot: number): string[] {
  return [`soak.p${slot}.temp`, `soak.p${slot}.load`];
}

/**
 * PUBLISH messages a slot should receive from other nodes per second with
 * every node up: one per publish of another node that any of its patterns
 * matches (one message per node, however many of its patterns match).
 */
function expectedReceivedPerS(slot: number, publishers: number[], pubRate: number): number {
  let perS = 0;
  for (const p of publishers) {
    if (p === slot) continue;
    const topics = topicsFor(p);
    for (const t of topics) if (patternsFor(slot).some((pat) => matches(pat, t))) perS += pubRate / topics.length;
  }
  return perS;
}

// ---------------------------------------------------------------- worker

/** At most this many calls (and publishes) of one worker wait at once; beyond, ticks are skipped and counted. */
const MAX_IN_FLIGHT = 50;
/** Latency samples kept between two stats requests (a ring; enough for a minute of traffic). */
const MAX_LATENCIES = 20_000;

class Latencies {
  #values: number[] = [];
  #next = 0;
  add(ms: number): void {
    if (this.#values.length < MAX_LATENCIES) this.#values.push(ms);
    else this.#values[this.#next++ % MAX_LATENCIES] = ms;
  }
  /** Percentiles of what was added since the last call, then forgets it. */
  take(): { p50: number; p99: number; max: number; n: number } {
    const v = this.#values.sort((a, b) => a - b);
    this.#values = [];
    this.#next = 0;
    const at = (q: number) => (v.length === 0 ? 0 : round1(v[Math.min(v.length - 1, Math.floor(q * v.length))]!));
    return { p50: at(0.5), p99: at(0.99), max: v.length === 0 ? 0 : round1(v[v.length - 1]!), n: v.length };
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

async function runWorker(cfg: WorkerConfig): Promise<void> {
  const send = (msg: FromWorker) => process.send?.(msg);
  // The parent went away (even killed): a soak node never outlives it.
  process.on('disconnect', () => process.exit(1));
  // Ctrl-C reaches the whole process group: the parent stops the nodes (SIGTERM) and reports.
  process.on('SIGINT', () => {});
  let warnings = 0;
  let protocolErrors = 0;
  const node = new MeshNode(Identity.generate(), {
    host: HOST,
    port: 0,
    bootstrap: cfg.bootstrap ? [parseAddress(cfg.bootstrap)] : [],
    // Churn makes warnings expected (dead peers); they are counted, not printed.
    logger: { warn: () => void warnings++ },
    stopTimeoutMs: 2000,
  });
  node.on('protocol-error', () => void protocolErrors++);
  await node.start();
  const joined = await node.joined();
  if (cfg.bootstrap && joined.reached === 0) throw new Error(`slot ${cfg.slot} could not reach the bootstrap node ${cfg.bootstrap}`);

  const deliveryLatency = new Latencies();
  const callLatency = new Latencies();
  const onMessage = (msg: { data: unknown }) => {
    const t = (msg.data as { t?: unknown } | null)?.t;
    if (typeof t === 'number') deliveryLatency.add(Date.now() - t);
  };
  const subs: Subscription[] = patternsFor(cfg.slot).map((p) => node.subscribe(p, onMessage));
  await Promise.all(subs.map((s) => s.ready));
  if (cfg.serve) await node.register('soak.echo', (args: unknown) => args);

  const timers: NodeJS.Timeout[] = [];
  const n = { callsInFlight: 0, callsSkipped: 0, pubInFlight: 0, published: 0, publishErrors: 0, publishesSkipped: 0 };
  if (cfg.callRate > 0) {
    let seq = 0;
    timers.push(
      setInterval(() => {
        if (n.callsInFlight >= MAX_IN_FLIGHT) {
          n.callsSkipped++;
          return;
        }
        n.callsInFlight++;
        const t0 = performance.now();
        // Failures are counted by the node's RPC client, by outcome.
        node
          .call('soak.echo', { slot: cfg.slot, seq: seq++ }, { timeoutMs: 5000 })
          .then(() => callLatency.add(performance.now() - t0), () => {})
          .finally(() => n.callsInFlight--);
      }, 1000 / cfg.callRate),
    );
  }
  if (cfg.publish && cfg.pubRate > 0) {
    let seq = 0;
    const topics = topicsFor(cfg.slot);
    timers.push(
      setInterval(() => {
        if (n.pubInFlight >= MAX_IN_FLIGHT) {
          n.publishesSkipped++;
          return;
        }
        n.pubInFlight++;
        const i = seq++;
        node
          .publish(topics[i % 2]!, { t: Date.now(), seq: i, pad: 'x'.repeat(64) })
          .then(() => void n.published++, () => void n.publishErrors++)
          .finally(() => n.pubInFlight--);
      }, 1000 / cfg.pubRate),
    );
  }

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const gc = (globalThis as { gc?: () => void }).gc;

  process.on('message', (msg: ToWorker) => {
    if (msg.type !== 'stats') return;
    gc?.();
    const mem = process.memoryUsage();
    const dht = node.dht.stats();
    const ps = node.pubsub.stats();
    const queues = node.messenger.queueStats();
    const rpc = node.rpc.stats();
    const served = node.rpcServer.stats();
    const stats: WorkerStats = {
      pid: process.pid,
      uptimeS: Math.round(process.uptime()),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      connections: node.pool.stats().open,
      routingTable: dht.routingTableSize,
      records: dht.records,
      ownRecords: dht.ownRecords,
      fanoutQueued: ps.fanout.queued,
      fanoutPeakQueued: ps.fanout.peakQueued,
      fanoutMaxQueue: ps.fanout.maxQueue,
      fanoutBacklogged: ps.fanout.backlogged,
      subBuffered: subs.reduce((s, x) => s + x.buffered, 0),
      subBufferedMax: subs.reduce((m, x) => Math.max(m, x.buffered), 0),
      sendQueuedBytes: queues.sendQueuedBytes,
      requestsPending: queues.requestsPending,
      requestsInFlight: queues.requestsInFlight,
      eventLoopP99Ms: round1(loop.percentile(99) / 1e6),
      protocolErrors,
      warnings,
      rpcCalls: { ...rpc.calls },
      rpcServed: { ...served.served },
      rpcFailovers: rpc.failovers,
      callsSkipped: n.callsSkipped,
      pub: {
        published: n.published,
        publishErrors: n.publishErrors,
        publishesSkipped: n.publishesSkipped,
        publishesDropped: ps.publishesDropped,
        sent: ps.fanout.sent,
        sendFailures: ps.fanout.sendFailures,
        skippedDown: ps.fanout.skippedDown,
        backlogDropped: ps.fanout.backlogDropped,
        received: ps.received,
        duplicates: ps.duplicates,
        delivered: ps.delivered,
        deliveryDrops: ps.dropped,
        handlerErrors: ps.handlerErrors,
      },
      callLatencyMs: callLatency.take(),
      deliveryLatencyMs: deliveryLatency.take(),
    };
    loop.reset();
    send({ type: 'stats', id: msg.id, stats });
  });

  process.once('SIGTERM', () => {
    for (const t of timers) clearInterval(t);
    void node.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready', address: `${node.listenAddress!.host}:${node.listenAddress!.port}`, nodeId: node.nodeId });
}

// ---------------------------------------------------------------- parent

interface Args {
  minutes: number;
  nodes: number;
  json: boolean;
  intervalS: number;
  warmupMin: number | undefined;
  pubRate: number;
  callRate: number;
  churnMinS: number;
  churnMaxS: number;
}

const USAGE =
  'usage: npm run soak -- --minutes M [--nodes 10] [--json] [--interval S] [--warmup MIN] [--pub-rate R] [--call-rate R] [--churn MIN-MAX | --no-churn]';

function fail(msg: string): never {
  process.stderr.write(`soak: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { minutes: 0, nodes: 10, json: false, intervalS: 60, warmupMin: undefined, pubRate: 20, callRate: 10, churnMinS: 30, churnMaxS: 60 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) fail(`${a} needs a non-negative number`);
      return v;
    };
    if (a === '--minutes') args.minutes = num();
    else if (a === '--nodes') args.nodes = num();
    else if (a === '--json') args.json = true;
    else if (a === '--interval') args.intervalS = num();
    else if (a === '--warmup') args.warmupMin = num();
    else if (a === '--pub-rate') args.pubRate = num();
    else if (a === '--call-rate') args.callRate = num();
    else if (a === '--no-churn') args.churnMinS = args.churnMaxS = 0;
    else if (a === '--churn') {
      const m = /^(\d+)-(\d+)$/.exec(argv[++i] ?? '');
      if (!m || Number(m[1]) > Number(m[2]) || Number(m[1]) < 1) fail('--churn takes MIN-MAX seconds, e.g. 30-60');
      args.churnMinS = Number(m[1]);
      args.churnMaxS = Number(m[2]);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  if (!(args.minutes > 0)) fail('--minutes is required (> 0)');
  if (!Number.isInteger(args.nodes) || args.nodes < 4) fail('--nodes must be an integer ≥ 4');
  if (!(args.intervalS >= 5)) fail('--interval must be at least 5 seconds');
  return args;
}

interface Slot {
  index: number;
  churnable: boolean;
  serve: boolean;
  publish: boolean;
  child?: ChildProcess;
  generation: number;
  address?: string;
  nodeId?: string;
  ready: boolean;
  /** Set while the parent kills this process on purpose (churn or the end). */
  expectedExit: boolean;
  stderrTail: string[];
}

interface NodeSample extends WorkerStats {
  slot: number;
  generation: number;
  nodeId: string;
  /**
   * PUBLISH messages received in the interval as a percentage of what its
   * subscriptions match (expectedReceivedPerS); only for a process that
   * lived through the whole interval. Churned publishers lower it a little.
   */
  receivedPct?: number;
}

interface Sample {
  type: 'sample';
  t: number;
  minute: number;
  restarts: number;
  crashes: number;
  nodes: NodeSample[];
  /** Not answering in time, or being replaced. */
  missing: number[];
  mesh: MeshRates;
}

interface MeshRates {
  callsOkPerS: number;
  callsFailedPerS: number;
  callFailures: Record<string, number>;
  /** Call attempts after the first (a provider failed or was too slow), in the interval. */
  failovers: number;
  publishedPerS: number;
  deliveredPerS: number;
  lost: number;
  undeliverable: number;
  callP99Ms: number;
  /** The highest per-node median and p99 of publish-to-handler latency. */
  deliveryP50Ms: number;
  deliveryP99Ms: number;
}

class Soak {
  readonly args: Args;
  readonly slots: Slot[] = [];
  readonly samples: Sample[] = [];
  readonly t0 = Date.now();
  restarts = 0;
  crashes = 0;
  #stopping = false;
  #statsId = 0;
  readonly #pending = new Map<number, (s: WorkerStats) => void>();
  #churnTimer: NodeJS.Timeout | undefined;
  /** Previous cumulative counters per process (slot:generation), for per-interval rates. */
  readonly #prev = new Map<string, WorkerStats>();
  #prevT = 0;

  constructor(args: Args) {
    this.args = args;
    const firstChurnable = Math.ceil(args.nodes / 2);
    const publishers = new Set([1, 2, args.nodes - 1]);
    for (let i = 0; i < args.nodes; i++) {
      this.slots.push({
        index: i,
        churnable: i >= firstChurnable && args.churnMaxS > 0,
        serve: i % 2 === 0,
        publish: publishers.has(i),
        generation: 0,
        ready: false,
        expectedExit: false,
        stderrTail: [],
      });
    }
  }

  get publishers(): number[] {
    return this.slots.filter((s) => s.publish).map((s) => s.index);
  }

  get warmupMin(): number {
    return this.args.warmupMin ?? Math.max(1, Math.min(5, Math.floor(this.args.minutes / 3)));
  }

  log(line: string): void {
    if (!this.args.json) process.stdout.write(`${line}\n`);
  }

  async run(): Promise<number> {
    const a = this.args;
    this.log(
      `soak: ${a.nodes} nodes on ${HOST} for ${a.minutes} min; ${a.pubRate} msg/s from each of ${this.slots.filter((s) => s.publish).length} publishers, ` +
        `${a.callRate} calls/s from every node to ${this.slots.filter((s) => s.serve).length} providers; ` +
        (a.churnMaxS > 0 ? `churn every ${a.churnMinS}–${a.churnMaxS} s among slots ${this.slots.filter((s) => s.churnable).map((s) => s.index).join(',')}` : 'no churn') +
        `; sample every ${a.intervalS} s, warm-up ${this.warmupMin} min`,
    );
    await this.#spawn(this.slots[0]!);
    await Promise.all(this.slots.slice(1).map((s) => this.#spawn(s)));
    this.log(`soak: all ${a.nodes} nodes joined in ${((Date.now() - this.t0) / 1000).toFixed(1)} s`);
    this.#scheduleChurn();
    const end = this.t0 + a.minutes * 60_000;
    for (let k = 1; ; k++) {
      const at = this.t0 + k * a.intervalS * 1000;
      if (at > end + 1000) break;
      await sleep(Math.max(0, at - Date.now()));
      if (this.#stopping) break;
      await this.#sample();
    }
    return this.finish();
  }

  #finished: Promise<number> | undefined;

  /** Stops the churn and the nodes and prints the summary; once, whoever calls it first (the end or a signal). */
  finish(): Promise<number> {
    this.#finished ??= this.#finish();
    return this.#finished;
  }

  async #finish(): Promise<number> {
    this.#stopping = true;
    clearTimeout(this.#churnTimer);
    const summary = this.#summary();
    await this.#stopAll();
    if (this.args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else this.#printSummary(summary);
    return summary.ok ? 0 : 1;
  }

  #spawn(slot: Slot): Promise<void> {
    slot.generation++;
    slot.ready = false;
    slot.expectedExit = false;
    const cfg: WorkerConfig = {
      slot: slot.index,
      generation: slot.generation,
      ...(slot.index === 0 ? {} : { bootstrap: this.slots[0]!.address! }),
      serve: slot.serve,
      publish: slot.publish,
      pubRate: this.args.pubRate,
      callRate: this.args.callRate,
    };
    const child = fork(SELF, ['--worker', JSON.stringify(cfg)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    slot.child = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      for (const line of d.split('\n')) {
        if (!line) continue;
        slot.stderrTail.push(line);
        if (slot.stderrTail.length > 20) slot.stderrTail.shift();
        process.stderr.write(`[slot ${slot.index}] ${line}\n`);
      }
    });
    const generation = slot.generation;
    child.on('exit', (code, signal) => {
      if (slot.child !== child) return;
      slot.ready = false;
      if (slot.expectedExit || this.#stopping) return;
      // A crash: counted, reported, and the slot refilled so the mesh keeps its size.
      this.crashes++;
      process.stderr.write(`soak: slot ${slot.index} (generation ${generation}, pid ${child.pid}) exited unexpectedly (${signal ?? `code ${code}`})\n`);
      void this.#spawn(slot).catch((err) => process.stderr.write(`soak: could not restart slot ${slot.index}: ${(err as Error).message}\n`));
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`slot ${slot.index} did not join within 60 s`)), 60_000);
      child.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          clearTimeout(timer);
          slot.address = msg.address;
          slot.nodeId = msg.nodeId;
          slot.ready = true;
          resolve();
        } else if (msg.type === 'stats') {
          this.#pending.get(msg.id)?.(msg.stats);
        } else if (msg.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`slot ${slot.index}: ${msg.message}`));
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        reject(new Error(`slot ${slot.index} exited before joining\n${slot.stderrTail.join('\n')}`));
      });
    });
  }

  #scheduleChurn(): void {
    const { churnMinS, churnMaxS } = this.args;
    if (churnMaxS <= 0) return;
    const delay = (churnMinS + Math.random() * (churnMaxS - churnMinS)) * 1000;
    this.#churnTimer = setTimeout(() => void this.#churn().finally(() => !this.#stopping && this.#scheduleChurn()), delay);
  }

  async #churn(): Promise<void> {
    const candidates = this.slots.filter((s) => s.churnable && s.ready);
    if (this.#stopping || candidates.length === 0) return;
    const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
    const child = victim.child!;
    victim.expectedExit = true;
    victim.ready = false;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    if (this.#stopping) return;
    this.restarts++;
    const t = ((Date.now() - this.t0) / 1000).toFixed(0);
    try {
      await this.#spawn(victim);
      this.log(`  [${t} s] churn: killed slot ${victim.index} (pid ${child.pid}); generation ${victim.generation} joined (pid ${victim.child!.pid})`);
    } catch (err) {
      process.stderr.write(`soak: churn could not restart slot ${victim.index}: ${(err as Error).message}\n`);
    }
  }

  #requestStats(slot: Slot): Promise<WorkerStats | undefined> {
    if (!slot.ready || !slot.child?.connected) return Promise.resolve(undefined);
    const id = ++this.#statsId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, 10_000);
      this.#pending.set(id, (s) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve(s);
      });
      slot.child!.send({ type: 'stats', id } satisfies ToWorker);
    });
  }

  async #sample(): Promise<void> {
    const t = (Date.now() - this.t0) / 1000;
    const answers = await Promise.all(this.slots.map(async (slot) => ({ slot, generation: slot.generation, nodeId: slot.nodeId ?? '', stats: await this.#requestStats(slot) })));
    const nodes: NodeSample[] = [];
    const missing: number[] = [];
    for (const a of answers) {
      if (a.stats) nodes.push({ slot: a.slot.index, generation: a.generation, nodeId: a.nodeId, ...a.stats });
      else missing.push(a.slot.index);
    }
    const sample: Sample = {
      type: 'sample',
      t: Math.round(t),
      minute: round1(t / 60),
      restarts: this.restarts,
      crashes: this.crashes,
      nodes,
      missing,
      mesh: this.#rates(nodes, t),
    };
    this.samples.push(sample);
    if (this.args.json) process.stdout.write(`${JSON.stringify(sample)}\n`);
    else this.#printSample(sample);
  }

  /** Mesh-wide rates since the previous sample (counters of processes that died in between are lost). */
  #rates(nodes: NodeSample[], t: number): MeshRates {
    const dt = Math.max(1, t - this.#prevT);
    this.#prevT = t;
    let ok = 0;
    let failovers = 0;
    let published = 0;
    let delivered = 0;
    let lost = 0;
    let undeliverable = 0;
    let deliveryP50 = 0;
    const failures: Record<string, number> = {};
    let callP99 = 0;
    let deliveryP99 = 0;
    for (const n of nodes) {
      const key = `${n.slot}:${n.generation}`;
      const p = this.#prev.get(key);
      const d = (now: number, before: number | undefined) => now - (before ?? 0);
      ok += d(n.rpcCalls.ok ?? 0, p?.rpcCalls.ok);
      failovers += d(n.rpcFailovers, p?.rpcFailovers);
      for (const [outcome, count] of Object.entries(n.rpcCalls)) {
        if (outcome === 'ok') continue;
        const delta = d(count, p?.rpcCalls[outcome]);
        if (delta > 0) failures[outcome] = (failures[outcome] ?? 0) + delta;
      }
      published += d(n.pub.published, p?.pub.published);
      delivered += d(n.pub.delivered, p?.pub.delivered);
      lost += d(lostOf(n), p ? lostOf(p) : 0);
      const expected = expectedReceivedPerS(n.slot, this.publishers, this.args.pubRate) * dt;
      if (p && expected > 0) n.receivedPct = Math.round((100 * (n.pub.received - p.pub.received)) / expected);
      undeliverable += d(undeliverableOf(n), p ? undeliverableOf(p) : 0);
      deliveryP50 = Math.max(deliveryP50, n.deliveryLatencyMs.p50);
      callP99 = Math.max(callP99, n.callLatencyMs.p99);
      deliveryP99 = Math.max(deliveryP99, n.deliveryLatencyMs.p99);
      this.#prev.set(key, n);
    }
    const failed = Object.values(failures).reduce((s, x) => s + x, 0);
    return {
      callsOkPerS: round1(ok / dt),
      callsFailedPerS: round1(failed / dt),
      callFailures: failures,
      failovers,
      publishedPerS: round1(published / dt),
      deliveredPerS: round1(delivered / dt),
      lost,
      undeliverable,
      callP99Ms: callP99,
      deliveryP50Ms: deliveryP50,
      deliveryP99Ms: deliveryP99,
    };
  }

  #printSample(s: Sample): void {
    const m = s.mesh;
    const fails = Object.entries(m.callFailures).map(([k, v]) => `${k} ${v}`).join(', ');
    this.log(
      `[${s.minute.toFixed(1)} min] ${s.nodes.length}/${this.args.nodes} nodes answered${s.missing.length ? ` (missing: ${s.missing.join(',')})` : ''}, ` +
        `${s.restarts} churned, ${s.crashes} crashed | rpc ${m.callsOkPerS} ok/s, ${m.callsFailedPerS} failed/s${fails ? ` (${fails})` : ''}, ${m.failovers} failovers, worst p99 ${m.callP99Ms} ms | ` +
        `pub ${m.publishedPerS}/s, delivered ${m.deliveredPerS}/s, dropped ${m.lost}, to unreachable nodes ${m.undeliverable}, latency worst p50 ${m.deliveryP50Ms} ms, p99 ${m.deliveryP99Ms} ms`,
    );
    const header = ['slot', 'gen', 'pid', 'up', 'rss MB', 'heap MB', 'ext MB', 'conns', 'table', 'records', 'own', 'fanout q', 'q peak', 'backlog', 'sub buf', 'sendq B', 'pending', 'loop p99', 'recv %', 'proto', 'rpc fail', 'pub drop', 'unreach', 'warn'];
    const rows = s.nodes.map((n) => [
      String(n.slot),
      String(n.generation),
      String(n.pid),
      formatUptime(n.uptimeS),
      (n.rssBytes / MB).toFixed(1),
      (n.heapUsedBytes / MB).toFixed(1),
      (n.externalBytes / MB).toFixed(1),
      String(n.connections),
      String(n.routingTable),
      String(n.records),
      String(n.ownRecords),
      String(n.fanoutQueued),
      String(n.fanoutPeakQueued),
      String(n.fanoutBacklogged),
      `${n.subBuffered}/${n.subBufferedMax}`,
      String(n.sendQueuedBytes),
      String(n.requestsPending),
      `${n.eventLoopP99Ms}ms`,
      n.receivedPct === undefined ? '-' : String(n.receivedPct),
      String(n.protocolErrors),
      String(failedCalls(n)),
      String(lostOf(n)),
      String(undeliverableOf(n)),
      String(n.warnings),
    ]);
    this.log(formatTable([header, ...rows]));
  }

  #summary(): Summary {
    const warmupS = this.warmupMin * 60;
    const baseline = this.samples.find((s) => s.t > warmupS + 1) ?? undefined;
    const last = this.samples.at(-1);
    const growth: SlotGrowth[] = [];
    const problems: string[] = [];
    if (!baseline || !last || baseline === last) {
      problems.push(`too short to judge growth: fewer than two samples after the ${this.warmupMin} min warm-up`);
    } else {
      for (const slot of this.slots) {
        const b = baseline.nodes.find((n) => n.slot === slot.index);
        const l = last.nodes.find((n) => n.slot === slot.index);
        if (!b || !l) continue;
        const same = b.generation === l.generation;
        const g: SlotGrowth = {
          slot: slot.index,
          churnable: slot.churnable,
          sameProcess: same,
          fromMinute: baseline.minute,
          toMinute: last.minute,
          rssMB: [round1(b.rssBytes / MB), round1(l.rssBytes / MB)],
          heapMB: [round1(b.heapUsedBytes / MB), round1(l.heapUsedBytes / MB)],
          connections: [b.connections, l.connections],
          records: [b.records, l.records],
          fanoutQueued: [b.fanoutQueued, l.fanoutQueued],
          subBuffered: [b.subBuffered, l.subBuffered],
          sendQueuedBytes: [b.sendQueuedBytes, l.sendQueuedBytes],
          protocolErrors: same ? l.protocolErrors - b.protocolErrors : l.protocolErrors,
          rpcFailed: same ? failedCalls(l) - failedCalls(b) : failedCalls(l),
          pubLost: same ? lostOf(l) - lostOf(b) : lostOf(l),
          undeliverable: same ? undeliverableOf(l) - undeliverableOf(b) : undeliverableOf(l),
        };
        growth.push(g);
        if (!same) continue;
        // Tolerances: a GC'd heap may move by a few MB (caches filling to their bounds); RSS also holds freed-but-kept pages.
        const heapGrowth = g.heapMB[1] - g.heapMB[0];
        const rssGrowth = g.rssMB[1] - g.rssMB[0];
        if (heapGrowth > Math.max(4, 0.15 * g.heapMB[0])) problems.push(`slot ${slot.index}: heap grew ${heapGrowth.toFixed(1)} MB (${g.heapMB[0]} → ${g.heapMB[1]})`);
        if (rssGrowth > Math.max(16, 0.2 * g.rssMB[0])) problems.push(`slot ${slot.index}: RSS grew ${rssGrowth.toFixed(1)} MB (${g.rssMB[0]} → ${g.rssMB[1]})`);
      }
    }
    for (const s of this.samples) {
      for (const n of s.nodes) {
        if (n.fanoutQueued > n.fanoutMaxQueue) problems.push(`slot ${n.slot} at ${s.minute} min: fan-out queue ${n.fanoutQueued} above its limit ${n.fanoutMaxQueue}`);
        if (n.protocolErrors > 0 && s === last) problems.push(`slot ${n.slot}: ${n.protocolErrors} protocol errors`);
        if (s === last && n.receivedPct !== undefined && n.receivedPct < 90) {
          problems.push(`slot ${n.slot} received ${n.receivedPct} % of the messages its subscriptions match in the last interval`);
        }
      }
    }
    if (this.crashes > 0) problems.push(`${this.crashes} node process(es) exited unexpectedly`);
    const totalOk = this.samples.reduce((s, x) => s + x.mesh.callsOkPerS, 0);
    const totalFailed = this.samples.reduce((s, x) => s + x.mesh.callsFailedPerS, 0);
    return {
      type: 'summary',
      minutes: this.args.minutes,
      nodes: this.args.nodes,
      samples: this.samples.length,
      restarts: this.restarts,
      crashes: this.crashes,
      warmupMinutes: this.warmupMin,
      callFailureRatio: totalOk + totalFailed > 0 ? Math.round((totalFailed / (totalOk + totalFailed)) * 10_000) / 10_000 : 0,
      growth,
      problems,
      ok: problems.length === 0,
    };
  }

  #printSummary(s: Summary): void {
    this.log('');
    this.log(`soak summary: ${s.minutes} min, ${s.nodes} nodes, ${s.samples} samples, ${s.restarts} nodes churned, ${s.crashes} crashed; rpc failure ratio ${(s.callFailureRatio * 100).toFixed(2)} %`);
    if (s.growth.length > 0) {
      const g0 = s.growth[0]!;
      this.log(`growth from ${g0.fromMinute} min (after a ${s.warmupMinutes} min warm-up) to ${g0.toMinute} min, per slot (a replaced process shows its current values):`);
      const header = ['slot', 'process', 'rss MB', 'heap MB', 'conns', 'records', 'fanout q', 'sub buf', 'sendq B', '+proto', '+rpc fail', '+pub drop', '+unreach'];
      const arrow = (p: [number, number]) => `${p[0]} → ${p[1]}`;
      const rows = s.growth.map((g) => [
        String(g.slot),
        g.sameProcess ? (g.churnable ? 'same (churn set)' : 'same') : 'replaced',
        arrow(g.rssMB),
        arrow(g.heapMB),
        arrow(g.connections),
        arrow(g.records),
        arrow(g.fanoutQueued),
        arrow(g.subBuffered),
        arrow(g.sendQueuedBytes),
        String(g.protocolErrors),
        String(g.rpcFailed),
        String(g.pubLost),
        String(g.undeliverable),
      ]);
      this.log(formatTable([header, ...rows]));
    }
    if (s.ok) this.log(`verdict: OK — memory flat after warm-up on every node that lived through it, queues within bounds, deliveries complete, no protocol errors, no crashes`);
    else this.log(`verdict: ATTENTION — ${s.problems.join('; ')}`);
  }

  async #stopAll(): Promise<void> {
    const children = this.slots.map((s) => s.child).filter((c): c is ChildProcess => !!c && c.exitCode === null && c.signalCode === null);
    for (const s of this.slots) s.expectedExit = true;
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }

  /** Last resort on exit: no child outlives the soak. */
  killAll(): void {
    for (const s of this.slots) if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  }
}

interface Summary {
  type: 'summary';
  minutes: number;
  nodes: number;
  samples: number;
  restarts: number;
  crashes: number;
  warmupMinutes: number;
  /** Failed calls / all calls, over the whole run. */
  callFailureRatio: number;
  growth: SlotGrowth[];
  problems: string[];
  ok: boolean;
}

interface SlotGrowth {
  slot: number;
  churnable: boolean;
  /** Whether the baseline and the last sample come from one process (not churned in between). */
  sameProcess: boolean;
  fromMinute: number;
  toMinute: number;
  rssMB: [number, number];
  heapMB: [number, number];
  connections: [number, number];
  records: [number, number];
  fanoutQueued: [number, number];
  subBuffered: [number, number];
  sendQueuedBytes: [number, number];
  protocolErrors: number;
  rpcFailed: number;
  pubLost: number;
  undeliverable: number;
}

function failedCalls(n: WorkerStats): number {
  return Object.entries(n.rpcCalls).reduce((s, [k, v]) => (k === 'ok' ? s : s + v), 0);
}

/** Messages dropped for want of room: refused or failed publishes, full subscription buffers. */
function lostOf(n: WorkerStats): number {
  const p = n.pub;
  return p.publishErrors + p.publishesDropped + p.deliveryDrops;
}

/**
 * Sends not made to subscriber nodes that were unreachable: failed, skipped
 * while the node was marked down, or dropped from its backlog. With churn
 * these are mostly sends to killed nodes whose subscription records live on
 * until their TTL, so they are reported apart from drops.
 */
function undeliverableOf(n: WorkerStats): number {
  const p = n.pub;
  return p.sendFailures + p.skippedDown + p.backlogDropped;
}

function formatUptime(s: number): string {
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}


// ---------------------------------------------------------------- entry

if (process.argv[2] === '--worker') {
  const cfg = JSON.parse(process.argv[3] ?? '{}') as WorkerConfig;
  runWorker(cfg).catch((err: unknown) => {
    process.send?.({ type: 'fatal', message: (err as Error).message ?? String(err) } satisfies FromWorker);
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  const soak = new Soak(parseArgs(process.argv.slice(2)));
  process.on('exit', () => soak.killAll());
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`soak: ${sig}: stopping the nodes\n`);
    void soak.finish().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  soak.run().then(
    (code) => process.exit(interrupted ? 130 : code),
    (err: unknown) => {
      process.stderr.write(`soak: ${(err as Error).message ?? String(err)}\n`);
      soak.killAll();
      process.exit(1);
    },
  );
}
