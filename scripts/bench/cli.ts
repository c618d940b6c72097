/**
 * `cli` scenario: the path a shell user sees. How the comparison is built,
 * so that it is like for like:
 * - ours: two real `macula start` processes (B bootstrapped from A) and one
 *   real `macula bench pubsub` (then `rpc`) process, whose publisher (or
 *   caller) is a light client of A and whose subscriber (or server) is a
 *   light client of B: client → node → node → client;
 * - NATS: nats-server and one worker process running the very same
 *   measuring code (`benchPubSub` / `benchRpc` of src/cli/bench-scenarios.ts)
 *   over two NATS connections: client → server → client;
 * - the same message count (50,000 publishes, 10,000 calls), payload
 *   (100 B), pipelining (64 in flight) and counting point (the
 *   subscriber's handler);
 * - the same warm-up: the servers stand for long-running ones, the client
 *   for a fresh shell command. Before the counted runs, one uncounted
 *   `macula bench pubsub` and `rpc` of the same size go through our two
 *   nodes, and the same runs go through nats-server from a NATS worker of
 *   their own; the counted runs then start in fresh processes on both
 *   sides (while a node compiled its hot paths, its first 50,000 messages
 *   took up to twice as long as later runs);
 * - two rates at the subscriber: `receive_rate`, from its first message to
 *   its last, and `delivery_rate`, from the first publish to the last
 *   message received. They differ where a publisher runs ahead of its
 *   subscriber: a NATS publish is buffered in the client without bound, so
 *   most of the run is queued before the subscriber, in the same process,
 *   gets to read, and `receive_rate` then measures how fast it drains a
 *   full buffer (NATS's median latency is most of the run); ours is
 *   flow-controlled by the node, so publishing and receiving overlap and
 *   the two rates are nearly equal. `delivery_rate` is the time a user
 *   waits for the messages to arrive;
 * - each figure is taken `--runs` times (default 3), alternating ours and
 *   NATS, median with `_min` / `_max`; CPU seconds per million messages add
 *   up every process of the side (nodes and bench process; nats-server and
 *   worker), read from /proc/<pid>/stat, the start of the bench process
 *   (and of the worker) included on both sides.
 *
 * Then how fast a short command starts (also on its own: `cli-start`): one
 * `macula start` node on 127.0.0.1, and three commands run in turn, each to
 * its exit with spawnSync timed by performance.now: `node -e 0` (Node's own
 * start, the yardstick), `macula --version` and `macula pub` of one message
 * to that node; 3 warm-up rounds, then 20 rounds; each figure is the median
 * with `_min` / `_max`, each ratio the median of the rounds' ratios to
 * `node -e 0`. The `_cpu_ratio` figures compare the CPU time (user +
 * system) the commands' processes used over all rounds, which other work on
 * a shared machine disturbs less than wall time.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchFigure } from '../../src/cli/bench-scenarios.js';
import type { BenchContext } from '../bench.js';
import { alternate, CLK_TCK, natsAvailable, Proc, renamed, reportRatio, reportRounds, startNatsServer, stopAll, totalCpu, Worker, type Rounds, type Trial } from './procs.js';

const BIN = fileURLToPath(new URL('../../../bin/macula.js', import.meta.url));
const MESSAGES = 50_000;
const CALLS = 10_000;
const SIZE = 100;
const CONCURRENCY = 64;
const START_WARMUP = 3;
const START_ROUNDS = 20;

/** A `macula` process that ignores saved contexts (its config dir is `configDir`). */
function macula(name: string, args: string[], configDir: string): Proc {
  return Proc.spawn(name, process.execPath, [BIN, ...args], { MACULA_CONTEXT: undefined, MACULA_CONFIG_DIR: configDir });
}

/** The figures of one `macula bench … --json` run (or the same figures from the NATS worker), by metric. */
function byMetric(figures: BenchFigure[]): Record<string, number> {
  return Object.fromEntries(figures.map((f) => [f.metric, f.value]));
}

function trialOf(ps: Record<string, number>, rpc: Record<string, number>, cpuPubSub: number, cpuRpc: number): Trial {
  return {
    receive_rate: ps.receive_rate!,
    delivery_rate: ps.delivery_rate!,
    publish_rate: ps.publish_rate!,
    lost: ps.lost!,
    pubsub_latency_p50: ps.latency_p50!,
    pubsub_cpu_s_per_m_msgs: (cpuPubSub / MESSAGES) * 1e6,
    call_rate: rpc.call_rate!,
    rpc_latency_p50: rpc.latency_p50!,
    rpc_cpu_s_per_m_calls: (cpuRpc / CALLS) * 1e6,
  };
}

async function oursTrial(): Promise<Trial> {
  const dirs = [await mkdtemp(join(tmpdir(), 'macula-bench-a-')), await mkdtemp(join(tmpdir(), 'macula-bench-b-'))];
  const common = ['--host', '127.0.0.1', '--port', '0', '--status-interval', '0', '--log-level', 'error'];
  const procs: Proc[] = [];
  try {
    const a = macula('node A', ['start', ...common, '--data-dir', dirs[0]!], dirs[0]!);
    procs.push(a);
    const addrA = (await a.waitFor(/listening (\S+)\/udp/))[1]!;
    const b = macula('node B', ['start', ...common, '--data-dir', dirs[1]!, '--bootstrap', addrA], dirs[1]!);
    procs.push(b);
    const addrB = (await b.waitFor(/listening (\S+)\/udp/))[1]!;
    await b.waitFor(/joined the mesh/);
    const run = async (scenario: string, count: number): Promise<[Record<string, number>, number]> => {
      const cpu0 = totalCpu(procs);
      const bench = macula(`macula bench ${scenario}`, ['bench', scenario, '--json', '-c', String(count), '-s', String(SIZE), '--concurrency', String(CONCURRENCY), '--node', addrA, '--remote', addrB], dirs[0]!);
      procs.push(bench);
      const code = await bench.exited;
      if (code !== 0) throw new Error(`macula bench ${scenario} exited ${code}: ${bench.stderr}`);
      const figures = bench.stdout.trim().split('\n').map((l) => JSON.parse(l) as BenchFigure);
      return [byMetric(figures), totalCpu(procs) - cpu0];
    };
    // Uncounted runs first: the nodes stand for long-running ones (see the header).
    await run('pubsub', MESSAGES);
    await run('rpc', CALLS);
    const [ps, cpuPs] = await run('pubsub', MESSAGES);
    const [rpc, cpuRpc] = await run('rpc', CALLS);
    return trialOf(ps, rpc, cpuPs, cpuRpc);
  } finally {
    await stopAll(procs);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

async function natsTrial(): Promise<Trial> {
  const server = await startNatsServer();
  if (typeof server === 'string') throw new Error(server);
  const params = { url: server.url, size: SIZE, concurrency: CONCURRENCY };
  const procs: Proc[] = [server.proc];
  try {
    // The same uncounted runs as ours, from a process of their own: the counted ones start in a fresh process on both sides.
    const warmer = new Worker('nats bench warm-up');
    procs.push(warmer);
    await warmer.request('cli-pubsub', { ...params, count: MESSAGES });
    await warmer.request('cli-rpc', { ...params, count: CALLS });
    await stopAll([procs.pop()!]);
    const worker = new Worker('nats bench');
    procs.push(worker);
    let cpu0 = totalCpu(procs);
    const ps = byMetric(await worker.request<BenchFigure[]>('cli-pubsub', { ...params, count: MESSAGES }));
    const cpuPs = totalCpu(procs) - cpu0;
    cpu0 = totalCpu(procs);
    const rpc = byMetric(await worker.request<BenchFigure[]>('cli-rpc', { ...params, count: CALLS }));
    return trialOf(ps, rpc, cpuPs, totalCpu(procs) - cpu0);
  } finally {
    await stopAll(procs);
  }
}

export async function cliScenario(ctx: BenchContext): Promise<void> {
  const natsMissing = await natsAvailable();
  if (natsMissing) ctx.log(`NATS baseline skipped: ${natsMissing}`);
  ctx.log(
    `macula bench pubsub (${MESSAGES} msgs) and rpc (${CALLS} calls) between two macula start processes; ` +
      `NATS: the same code through nats-server (${ctx.runs} runs, alternating)`,
  );
  const rounds = await alternate(ctx, ctx.runs, {
    ours: { trial: oursTrial },
    ...(natsMissing ? {} : { nats: { trial: async () => renamed(await natsTrial(), 'nats_') } }),
  });
  const units: Record<string, string> = {
    receive_rate: 'msgs/s',
    delivery_rate: 'msgs/s',
    publish_rate: 'msgs/s',
    lost: 'msgs',
    pubsub_latency_p50: 'ms',
    pubsub_cpu_s_per_m_msgs: 'CPU s',
    call_rate: 'calls/s',
    rpc_latency_p50: 'ms',
    rpc_cpu_s_per_m_calls: 'CPU s',
  };
  for (const pre of ['', 'nats_']) reportRounds(ctx, rounds, Object.entries(units).map(([k, unit]) => [`${pre}${k}`, `${pre}${k}`, unit] as const));
  reportRatio(ctx, 'vs_nats_receive_ratio', rounds.get('receive_rate'), rounds.get('nats_receive_rate'));
  reportRatio(ctx, 'vs_nats_delivery_ratio', rounds.get('delivery_rate'), rounds.get('nats_delivery_rate'));
  reportRatio(ctx, 'vs_nats_call_ratio', rounds.get('call_rate'), rounds.get('nats_call_rate'));
  await cliStartScenario(ctx);
}

/** User + system CPU seconds of this process's finished (waited-for) children so far. */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name start at field 3; cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

/** Wall milliseconds and CPU seconds `node <args>` takes from spawn to exit; a failed command fails the scenario. */
function timedRun(args: string[], env: NodeJS.ProcessEnv): { ms: number; cpu: number } {
  const cpu0 = childrenCpuSeconds();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return { ms, cpu: childrenCpuSeconds() - cpu0 };
}

/** Start-up time of `macula --version` and `macula pub` against `node -e 0` (see the header). */
export async function cliStartScenario(ctx: BenchContext): Promise<void> {
  ctx.log(`node -e 0, macula --version, macula pub to a local node: ${START_ROUNDS} rounds in turn after ${START_WARMUP} warm-up rounds`);
  const dir = await mkdtemp(join(tmpdir(), 'macula-bench-start-'));
  const node = macula('node', ['start', '--host', '127.0.0.1', '--port', '0', '--status-interval', '0', '--log-level', 'error', '--data-dir', dir], dir);
  try {
    const addr = (await node.waitFor(/listening (\S+)\/udp/))[1]!;
    const env: NodeJS.ProcessEnv = { ...process.env, MACULA_CONFIG_DIR: dir };
    delete env.MACULA_CONTEXT;
    const commands: Record<string, string[]> = {
      node: ['-e', '0'],
      version: [BIN, '--version'],
      pub: [BIN, 'pub', '--node', addr, 'x.y', 'hello'],
    };
    const rounds: Rounds = new Map(Object.keys(commands).map((k) => [k, []]));
    const cpu: Record<string, number> = Object.fromEntries(Object.keys(commands).map((k) => [k, 0]));
    for (let r = -START_WARMUP; r < START_ROUNDS; r++) {
      for (const [key, args] of Object.entries(commands)) {
        const run = timedRun(args, env);
        if (r < 0) continue;
        rounds.get(key)!.push(run.ms);
        cpu[key]! += run.cpu;
      }
    }
    reportRounds(ctx, rounds, [
      ['cli_start_node_ms', 'node', 'ms'],
      ['cli_version_ms', 'version', 'ms'],
      ['cli_pub_ms', 'pub', 'ms'],
    ]);
    reportRatio(ctx, 'cli_version_vs_node_ratio', rounds.get('version'), rounds.get('node'));
    reportRatio(ctx, 'cli_pub_vs_node_ratio', rounds.get('pub'), rounds.get('node'));
    ctx.report({ metric: 'cli_version_vs_node_cpu_ratio', value: cpu.version! / cpu.node!, unit: 'x' });
    ctx.report({ metric: 'cli_pub_vs_node_cpu_ratio', value: cpu.pub! / cpu.node!, unit: 'x' });
  } finally {
    await stopAll([node]);
    await rm(dir, { recursive: true, force: true });
  }
}
