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
 * Churn: every 30–60 s one node of the churn set (the bootstrap node, slot
 * 0, and the upper half of the slots) is either killed with SIGKILL, as a
 * crash, and replaced by a fresh node with a new identity that joins
 * through a random live node; or frozen with SIGSTOP for 10–40 s and then
 * resumed with SIGCONT (same process, same identity). The publishers and
 * the rest of the lower half are never touched, so their processes live the
 * whole run and their memory series is meaningful; they still see every
 * churn of their peers (dead connections, records of dead nodes, failovers).
 *
 * Verdict (thresholds in README "Soak"): least-squares slope of RSS and of
 * heap per node over the samples after the warm-up, RPC failure ratio,
 * deliveries at the untouched nodes against what their subscriptions match
 * (duplicates excluded), drops by cause, event-loop lag; the exit code is 1
 * when any fails. With --json an SVG plot of RSS and heap per node over
 * time is written next to the JSON (`--out <file.json>`, default
 * soak-<time>.json in the working directory).
 *
 * Bounded in time; stops itself; its children exit with it (SIGINT and
 * SIGTERM included, and a worker exits when its parent goes away).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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
  out: string | undefined;
}

const USAGE =
  'usage: npm run soak -- --minutes M [--nodes 30] [--json] [--out FILE.json] [--interval S] [--warmup MIN] [--pub-rate R] [--call-rate R] [--churn MIN-MAX | --no-churn]';

/** Verdict thresholds (README "Soak"). */
const THRESHOLDS = {
  rssSlopeMBPerMin: 0.5,
  heapSlopeMBPerMin: 0.2,
  callFailureRatio: 0.01,
  deliveredRatioMin: 0.98,
  lostRatio: 0.001,
  eventLoopP99Ms: 250,
};

function fail(msg: string): never {
  process.stderr.write(`soak: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { minutes: 0, nodes: 30, json: false, intervalS: 60, warmupMin: undefined, pubRate: 20, callRate: 5, churnMinS: 30, churnMaxS: 60, out: undefined };
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
    else if (a === '--out') args.out = argv[++i];
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
  /** Frozen (SIGSTOP) until SIGCONT. */
  frozen: boolean;
  /** Ever killed or frozen: left out of the delivery ratio. */
  touched: boolean;
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
  freezes = 0;
  crashes = 0;
  readonly #thawTimers = new Set<NodeJS.Timeout>();
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
    const publishers = new Set([1, 2, 3]);
    for (let i = 0; i < args.nodes; i++) {
      this.slots.push({
        index: i,
        churnable: (i === 0 || i >= firstChurnable) && args.churnMaxS > 0,
        frozen: false,
        touched: false,
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
    if (this.args.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      const json = this.args.out ?? `soak-${new Date(this.t0).toISOString().replace(/[:.]/g, '-')}.json`;
      const svg = json.replace(/\.json$/, '') + '.svg';
      writeFileSync(json, [...this.samples, summary].map((x) => JSON.stringify(x)).join('\n') + '\n');
      writeFileSync(svg, plotSvg(this.samples, this.args.nodes, this.warmupMin));
      process.stderr.write(`soak: wrote ${json} and ${svg}\n`);
    } else this.#printSummary(summary);
    return summary.ok ? 0 : 1;
  }

  #spawn(slot: Slot): Promise<void> {
    slot.generation++;
    slot.ready = false;
    slot.expectedExit = false;
    const cfg: WorkerConfig = {
      slot: slot.index,
      generation: slot.generation,
      ...(this.#bootstrapFor(slot) === undefined ? {} : { bootstrap: this.#bootstrapFor(slot)! }),
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

  /** The first start joins through slot 0; a replacement through a random live node (slot 0 may be the one replaced). */
  #bootstrapFor(slot: Slot): string | undefined {
    if (slot.generation === 1) return slot.index === 0 ? undefined : this.slots[0]!.address;
    const live = this.slots.filter((s) => s !== slot && s.ready && !s.frozen && s.address !== undefined);
    return live[Math.floor(Math.random() * live.length)]?.address;
  }

  #scheduleChurn(): void {
    const { churnMinS, churnMaxS } = this.args;
    if (churnMaxS <= 0) return;
    const delay = (churnMinS + Math.random() * (churnMaxS - churnMinS)) * 1000;
    this.#churnTimer = setTimeout(() => void this.#churn().finally(() => !this.#stopping && this.#scheduleChurn()), delay);
  }

  async #churn(): Promise<void> {
    const candidates = this.slots.filter((s) => s.churnable && s.ready && !s.frozen);
    if (this.#stopping || candidates.length === 0) return;
    const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
    victim.touched = true;
    const child = victim.child!;
    if (Math.random() < 1 / 3) {
      // Frozen: every thread stops (QUIC included); peers hear nothing until it is resumed.
      const frozenS = 10 + Math.round(Math.random() * 30);
      victim.frozen = true;
      this.freezes++;
      child.kill('SIGSTOP');
      this.log(`  [${((Date.now() - this.t0) / 1000).toFixed(0)} s] churn: froze slot ${victim.index} (pid ${child.pid}) for ${frozenS} s`);
      const timer = setTimeout(() => {
        victim.frozen = false;
        if (slotAlive(victim)) child.kill('SIGCONT');
      }, frozenS * 1000);
      this.#thawTimers.add(timer);
      return;
    }
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
    if (!slot.ready || slot.frozen || !slot.child?.connected) return Promise.resolve(undefined);
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
    const after = this.samples.filter((s) => s.t > warmupS + 1);
    const problems: string[] = [];
    const T = THRESHOLDS;
    // Memory: a least-squares line through every sample after the warm-up, per process that lived through all of them.
    const slopes: NodeSlope[] = [];
    for (const slot of this.slots) {
      const points = after.map((s) => s.nodes.find((n) => n.slot === slot.index)).filter((n): n is NodeSample => n !== undefined);
      if (points.length < 3 || points.some((n) => n.generation !== points[0]!.generation)) continue;
      const xs = points.map((n) => n.uptimeS / 60);
      slopes.push({
        slot: slot.index,
        generation: points[0]!.generation,
        samples: points.length,
        rssMBPerMin: round3(slope(xs, points.map((n) => n.rssBytes / MB))),
        heapMBPerMin: round3(slope(xs, points.map((n) => n.heapUsedBytes / MB))),
        rssMB: [round1(points[0]!.rssBytes / MB), round1(points.at(-1)!.rssBytes / MB)],
        heapMB: [round1(points[0]!.heapUsedBytes / MB), round1(points.at(-1)!.heapUsedBytes / MB)],
      });
    }
    const worstRss = slopes.reduce<NodeSlope | undefined>((w, x) => (w === undefined || x.rssMBPerMin > w.rssMBPerMin ? x : w), undefined);
    const worstHeap = slopes.reduce<NodeSlope | undefined>((w, x) => (w === undefined || x.heapMBPerMin > w.heapMBPerMin ? x : w), undefined);
    if (slopes.length === 0) problems.push(`too short to judge memory: fewer than 3 samples after the ${this.warmupMin} min warm-up`);
    for (const x of slopes) {
      if (x.rssMBPerMin >= T.rssSlopeMBPerMin) problems.push(`slot ${x.slot}: RSS slope ${x.rssMBPerMin} MB/min ≥ ${T.rssSlopeMBPerMin}`);
      if (x.heapMBPerMin >= T.heapSlopeMBPerMin) problems.push(`slot ${x.slot}: heap slope ${x.heapMBPerMin} MB/min ≥ ${T.heapSlopeMBPerMin}`);
    }
    // Counters over the run after the warm-up, from the processes' cumulative counters.
    const first = after[0];
    const last = after.at(-1);
    let callsOk = 0;
    let callsFailed = 0;
    let published = 0;
    let received = 0;
    let expected = 0;
    let duplicates = 0;
    const drops: Record<string, number> = { publishErrors: 0, publishesDropped: 0, subscriptionBufferFull: 0, backlogDropped: 0, skippedDown: 0, sendFailures: 0 };
    const loopP99: number[] = [];
    if (first && last && first !== last) {
      const dt = last.t - first.t;
      for (const n of last.nodes) {
        const b = first.nodes.find((x) => x.slot === n.slot && x.generation === n.generation);
        const d = (f: (w: WorkerStats) => number) => f(n) - (b ? f(b) : 0);
        callsOk += d((w) => w.rpcCalls.ok ?? 0);
        callsFailed += d(failedCalls);
        published += d((w) => w.pub.published);
        duplicates += d((w) => w.pub.duplicates);
        drops.publishErrors! += d((w) => w.pub.publishErrors);
        drops.publishesDropped! += d((w) => w.pub.publishesDropped);
        drops.subscriptionBufferFull! += d((w) => w.pub.deliveryDrops);
        drops.backlogDropped! += d((w) => w.pub.backlogDropped);
        drops.skippedDown! += d((w) => w.pub.skippedDown);
        drops.sendFailures! += d((w) => w.pub.sendFailures);
        const slot = this.slots[n.slot]!;
        // Deliveries are judged at nodes never killed nor frozen, over the same span as the publishers' counters.
        if (b && !slot.touched) {
          received += n.pub.received - b.pub.received;
          expected += expectedReceivedPerS(n.slot, this.publishers, this.args.pubRate) * dt;
        }
      }
      for (const slot of this.slots) {
        const series = after.map((s) => s.nodes.find((n) => n.slot === slot.index)?.eventLoopP99Ms).filter((x): x is number => x !== undefined);
        if (series.length > 0) loopP99.push(median(series));
      }
    } else problems.push('too short to judge traffic: fewer than two samples after the warm-up');
    const callFailureRatio = callsOk + callsFailed > 0 ? callsFailed / (callsOk + callsFailed) : 0;
    // What the publishers achieved sets what can be expected (a publisher skips ticks when it is behind).
    const pubTarget = this.publishers.length * this.args.pubRate * (last && first ? last.t - first.t : 0);
    const deliveredRatio = expected > 0 ? received / (expected * Math.min(1, pubTarget > 0 ? published / pubTarget : 1)) : 1;
    const lost = drops.publishErrors! + drops.publishesDropped! + drops.subscriptionBufferFull!;
    const lostRatio = published > 0 ? lost / published : 0;
    const worstLoopP99Ms = loopP99.length > 0 ? Math.max(...loopP99) : 0;
    if (callFailureRatio > T.callFailureRatio) problems.push(`RPC failure ratio ${pct(callFailureRatio)} > ${pct(T.callFailureRatio)}`);
    if (deliveredRatio < T.deliveredRatioMin) problems.push(`deliveries ${pct(deliveredRatio)} of expected < ${pct(T.deliveredRatioMin)}`);
    if (lostRatio > T.lostRatio) problems.push(`messages lost ${pct(lostRatio)} of published > ${pct(T.lostRatio)}`);
    if (worstLoopP99Ms > T.eventLoopP99Ms) problems.push(`event-loop lag p99 ${worstLoopP99Ms} ms > ${T.eventLoopP99Ms} ms`);
    if (this.crashes > 0) problems.push(`${this.crashes} node process(es) exited unexpectedly`);
    for (const s of this.samples) {
      for (const n of s.nodes) {
        if (n.fanoutQueued > n.fanoutMaxQueue) problems.push(`slot ${n.slot} at ${s.minute} min: fan-out queue ${n.fanoutQueued} above its limit ${n.fanoutMaxQueue}`);
      }
    }
    const protocolErrors = last?.nodes.reduce((sum, n) => sum + n.protocolErrors, 0) ?? 0;
    if (protocolErrors > 0) problems.push(`${protocolErrors} protocol errors`);
    return {
      type: 'summary',
      minutes: this.args.minutes,
      nodes: this.args.nodes,
      samples: this.samples.length,
      restarts: this.restarts,
      freezes: this.freezes,
      crashes: this.crashes,
      warmupMinutes: this.warmupMin,
      thresholds: T,
      slopes,
      worstRss: worstRss ?? null,
      worstHeap: worstHeap ?? null,
      callFailureRatio: round4(callFailureRatio),
      calls: { ok: callsOk, failed: callsFailed },
      deliveredRatio: round4(deliveredRatio),
      deliveries: { received, expected: Math.round(expected), duplicates },
      published,
      drops,
      lostRatio: round4(lostRatio),
      worstEventLoopP99Ms: worstLoopP99Ms,
      protocolErrors,
      problems,
      ok: problems.length === 0,
    };
  }

  #printSummary(s: Summary): void {
    this.log('');
    this.log(`soak summary: ${s.minutes} min, ${s.nodes} nodes, ${s.samples} samples, ${s.restarts} killed (SIGKILL) and replaced, ${s.freezes} frozen (SIGSTOP), ${s.crashes} crashed`);
    this.log(`memory slopes after the ${s.warmupMinutes} min warm-up (least squares over every sample, MB/min), per process that lived through it:`);
    const header = ['slot', 'gen', 'samples', 'rss MB', 'rss MB/min', 'heap MB', 'heap MB/min'];
    const rows = s.slopes.map((x) => [String(x.slot), String(x.generation), String(x.samples), `${x.rssMB[0]} → ${x.rssMB[1]}`, x.rssMBPerMin.toFixed(3), `${x.heapMB[0]} → ${x.heapMB[1]}`, x.heapMBPerMin.toFixed(3)]);
    this.log(formatTable([header, ...rows]));
    const T = s.thresholds;
    const line = (ok: boolean, what: string) => this.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (s.worstRss) line(s.worstRss.rssMBPerMin < T.rssSlopeMBPerMin, `worst RSS slope ${s.worstRss.rssMBPerMin} MB/min (slot ${s.worstRss.slot}); bound < ${T.rssSlopeMBPerMin}`);
    if (s.worstHeap) line(s.worstHeap.heapMBPerMin < T.heapSlopeMBPerMin, `worst heap slope ${s.worstHeap.heapMBPerMin} MB/min (slot ${s.worstHeap.slot}); bound < ${T.heapSlopeMBPerMin}`);
    line(s.callFailureRatio <= T.callFailureRatio, `RPC failure ratio ${pct(s.callFailureRatio)} (${s.calls.failed} of ${s.calls.ok + s.calls.failed}); bound ≤ ${pct(T.callFailureRatio)}`);
    line(s.deliveredRatio >= T.deliveredRatioMin, `deliveries at untouched nodes ${pct(s.deliveredRatio)} of expected (${s.deliveries.received} of ${s.deliveries.expected}, ${s.deliveries.duplicates} duplicates excluded); bound ≥ ${pct(T.deliveredRatioMin)}`);
    line(s.lostRatio <= T.lostRatio, `lost ${pct(s.lostRatio)} of ${s.published} published; bound ≤ ${pct(T.lostRatio)}; by cause: ${Object.entries(s.drops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    line(s.worstEventLoopP99Ms <= T.eventLoopP99Ms, `event-loop lag p99 (worst node, median over samples) ${s.worstEventLoopP99Ms} ms; bound ≤ ${T.eventLoopP99Ms} ms`);
    if (s.ok) this.log('verdict: PASS');
    else this.log(`verdict: FAIL — ${s.problems.join('; ')}`);
  }

  async #stopAll(): Promise<void> {
    for (const t of this.#thawTimers) clearTimeout(t);
    for (const s of this.slots) {
      if (s.frozen && slotAlive(s)) s.child!.kill('SIGCONT');
      s.frozen = false;
    }
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

  /** Last resort on exit: no child outlives the soak (SIGKILL ends a frozen one too). */
  killAll(): void {
    for (const s of this.slots) if (slotAlive(s)) s.child!.kill('SIGKILL');
  }
}

interface Summary {
  type: 'summary';
  minutes: number;
  nodes: number;
  samples: number;
  restarts: number;
  freezes: number;
  crashes: number;
  warmupMinutes: number;
  thresholds: typeof THRESHOLDS;
  slopes: NodeSlope[];
  worstRss: NodeSlope | null;
  worstHeap: NodeSlope | null;
  /** Failed calls / all calls after the warm-up. */
  callFailureRatio: number;
  calls: { ok: number; failed: number };
  deliveredRatio: number;
  deliveries: { received: number; expected: number; duplicates: number };
  published: number;
  drops: Record<string, number>;
  lostRatio: number;
  worstEventLoopP99Ms: number;
  protocolErrors: number;
  problems: string[];
  ok: boolean;
}

interface NodeSlope {
  slot: number;
  generation: number;
  samples: number;
  rssMBPerMin: number;
  heapMBPerMin: number;
  rssMB: [number, number];
  heapMB: [number, number];
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * RSS (top) and heap (bottom) of every node over time, one polyline per
 * process (a replaced node starts a new line in the same colour); the
 * warm-up is shaded.
 */
function plotSvg(samples: readonly Sample[], nodes: number, warmupMin: number): string {
  const W = 960;
  const H = 300;
  const M = { l: 60, r: 20, t: 30, b: 30 };
  const tMax = Math.max(1, ...samples.map((s) => s.minute));
  const panel = (title: string, y0: number, value: (n: NodeSample) => number): string => {
    const all = samples.flatMap((s) => s.nodes.map(value));
    const vMax = Math.max(1, ...all) * 1.05;
    const x = (m: number) => M.l + ((W - M.l - M.r) * m) / tMax;
    const y = (v: number) => y0 + M.t + (H - M.t - M.b) * (1 - v / vMax);
    const lines = new Map<string, string[]>();
    for (const s of samples) {
      for (const n of s.nodes) {
        const key = `${n.slot}:${n.generation}`;
        if (!lines.has(key)) lines.set(key, []);
        lines.get(key)!.push(`${x(s.minute).toFixed(1)},${y(value(n)).toFixed(1)}`);
      }
    }
    const out: string[] = [];
    out.push(`<rect x="${M.l}" y="${y0 + M.t}" width="${(x(Math.min(warmupMin, tMax)) - M.l).toFixed(1)}" height="${H - M.t - M.b}" fill="#eee"/>`);
    out.push(`<text x="${M.l}" y="${y0 + 18}" font-size="14">${title}</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = (vMax * k) / 4;
      out.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
      out.push(`<text x="${M.l - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${v.toFixed(0)}</text>`);
    }
    for (let m = 0; m <= tMax; m += Math.max(1, Math.ceil(tMax / 10))) {
      out.push(`<text x="${x(m).toFixed(1)}" y="${y0 + H - 10}" font-size="11" text-anchor="middle">${m} min</text>`);
    }
    for (const [key, pts] of lines) {
      const slot = Number(key.split(':')[0]);
      const colour = `hsl(${Math.round((360 * slot) / Math.max(1, nodes))},70%,40%)`;
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.2" points="${pts.join(' ')}"><title>slot ${key}</title></polyline>`);
    }
    return out.join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel('RSS per node (MB); warm-up shaded', 0, (n) => n.rssBytes / MB),
    panel('JS heap used per node after a full GC (MB)', H, (n) => n.heapUsedBytes / MB),
    '</svg>',
    '',
  ].join('\n');
}

function median(xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)]!;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}

function slotAlive(s: Slot): boolean {
  return s.child !== undefined && s.child.exitCode === null && s.child.signalCode === null;
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
