/**
 * `rpc` scenario, 100-byte args and result, over 127.0.0.1. How the
 * comparison is built, so that it is like for like:
 * - ours: a serving node process and a calling node process (QUIC between
 *   them); NATS: a responder process, nats-server and a requester process;
 * - the caller runs a closed loop with 1 call in flight (seq) and with 100,
 *   after the same warm-up, and counts completed calls. The warm-up is
 *   the same loop run for WARMUP_SECONDS before the measured one, its
 *   calls and CPU not counted: the processes stand for long-running nodes
 *   and servers, and with the 200 warm-up calls alone (~0.1 s) a node was
 *   still compiling its hot paths inside the measured seconds: one at a
 *   time, four alternating runs, 1,812–1,899 calls/s against 2,303–2,383
 *   after 2 s of calls, while NATS gave 2,515–2,729 and 2,526–2,562;
 * - each figure is taken `--runs` times (default 3), alternating ours and
 *   NATS, and printed as the median with `_min` / `_max`; ratios pair the
 *   runs of one round; CPU seconds per million calls add up every process
 *   of the side, nats-server included (/proc/<pid>/stat);
 * - latency percentiles are those of the seq loop, median over the runs;
 * - the seq loop also runs on a bare stream of our QUIC transport between
 *   two processes (100 bytes echoed, nothing of ours above the transport):
 *   `raw_*` and `vs_raw_seq_ratio` say how much of a call is the binding's.
 * Then, in this process: cached registry lookups, the path every call takes
 * before picking a provider.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import type { BenchContext } from '../bench.js';
import { alternate, initWorkers, natsAvailable, renamed, reportRatio, reportRounds, stopAll, totalCpu, Worker, type Proc, type Trial } from './procs.js';

const PROCEDURE = 'bench.echo';
/** Each measured loop is run first for this long, uncounted (see the header). */
const WARMUP_SECONDS = 2;

type LoopResult = { rate: number; calls: number; p50: number; p99: number };

/** Runs the caller's loop once to warm up, then again while counting every process's CPU. */
async function warmThenMeasure(caller: Worker, procs: readonly Proc[], op: string, params: Record<string, unknown>, seconds: number): Promise<{ r: LoopResult; cpu: number }> {
  await caller.request<LoopResult>(op, { ...params, seconds: WARMUP_SECONDS });
  const cpu0 = totalCpu(procs);
  const r = await caller.request<LoopResult>(op, { ...params, seconds });
  return { r, cpu: totalCpu(procs) - cpu0 };
}

async function rpcTrial(seconds: number, system: 'macula' | 'nats'): Promise<Trial> {
  const server = new Worker('server');
  const caller = new Worker('caller');
  const procs: Proc[] = [server, caller];
  try {
    await initWorkers(system, server, [caller], procs);
    await server.request('serve', { procedure: PROCEDURE });
    const t: Trial = {};
    for (const inFlight of [1, 100]) {
      const { r, cpu } = await warmThenMeasure(caller, procs, 'calls', { procedure: PROCEDURE, inFlight }, seconds);
      const name = inFlight === 1 ? 'seq' : '100';
      t[`calls_${name}_per_s`] = r.rate;
      t[`cpu_s_per_m_calls_${name}`] = (cpu / r.calls) * 1e6;
      if (inFlight === 1) Object.assign(t, { latency_p50_ms: r.p50, latency_p99_ms: r.p99 });
    }
    return t;
  } finally {
    await stopAll(procs);
  }
}

/** The seq loop on a bare QUIC stream between two processes: the binding's own round trip. */
async function rawTrial(seconds: number): Promise<Trial> {
  const server = new Worker('raw-server');
  const caller = new Worker('raw-caller');
  const procs: Proc[] = [server, caller];
  try {
    const { address } = await server.request<{ address: string }>('raw-serve');
    const { r, cpu } = await warmThenMeasure(caller, procs, 'raw-calls', { address }, seconds);
    return { raw_calls_seq_per_s: r.rate, raw_latency_p50_ms: r.p50, raw_latency_p99_ms: r.p99, raw_cpu_s_per_m_calls_seq: (cpu / r.calls) * 1e6 };
  } finally {
    await stopAll(procs);
  }
}

export async function rpcScenario(ctx: BenchContext): Promise<void> {
  const natsMissing = await natsAvailable();
  if (natsMissing) ctx.log(`NATS baseline skipped: ${natsMissing}`);
  ctx.log(`caller node process → server node process; NATS: requester → nats-server → responder; raw: a bare QUIC stream between two processes (${ctx.runs} runs, alternating)`);
  const rounds = await alternate(ctx, ctx.runs, {
    ours: { trial: () => rpcTrial(ctx.seconds, 'macula') },
    ...(natsMissing ? {} : { nats: { trial: async () => renamed(await rpcTrial(ctx.seconds, 'nats'), 'nats_') } }),
    raw: { trial: () => rawTrial(ctx.seconds) },
  });
  reportRounds(ctx, rounds, [
    ['calls_seq_per_s', 'calls_seq_per_s', 'calls/s'],
    ['calls_100_per_s', 'calls_100_per_s', 'calls/s'],
    ['latency_p50_ms', 'latency_p50_ms', 'ms'],
    ['latency_p99_ms', 'latency_p99_ms', 'ms'],
    ['cpu_s_per_m_calls_seq', 'cpu_s_per_m_calls_seq', 'CPU s'],
    ['cpu_s_per_m_calls_100', 'cpu_s_per_m_calls_100', 'CPU s'],
    ['nats_calls_seq_per_s', 'nats_calls_seq_per_s', 'calls/s'],
    ['nats_calls_100_per_s', 'nats_calls_100_per_s', 'calls/s'],
    ['nats_latency_p50_ms', 'nats_latency_p50_ms', 'ms'],
    ['nats_latency_p99_ms', 'nats_latency_p99_ms', 'ms'],
    ['nats_cpu_s_per_m_calls_seq', 'nats_cpu_s_per_m_calls_seq', 'CPU s'],
    ['nats_cpu_s_per_m_calls_100', 'nats_cpu_s_per_m_calls_100', 'CPU s'],
    ['raw_calls_seq_per_s', 'raw_calls_seq_per_s', 'calls/s'],
    ['raw_latency_p50_ms', 'raw_latency_p50_ms', 'ms'],
    ['raw_latency_p99_ms', 'raw_latency_p99_ms', 'ms'],
    ['raw_cpu_s_per_m_calls_seq', 'raw_cpu_s_per_m_calls_seq', 'CPU s'],
  ]);
  reportRatio(ctx, 'vs_nats_seq_ratio', rounds.get('calls_seq_per_s'), rounds.get('nats_calls_seq_per_s'));
  reportRatio(ctx, 'vs_nats_100_ratio', rounds.get('calls_100_per_s'), rounds.get('nats_calls_100_per_s'));
  reportRatio(ctx, 'vs_raw_seq_ratio', rounds.get('calls_seq_per_s'), rounds.get('raw_calls_seq_per_s'));

  // Cached registry lookups: the path every call takes before picking a provider.
  const quiet = { warn: () => {} };
  const server = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet }).start();
  const client = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [server.listenAddress!] }).start();
  try {
    await client.joined();
    await server.register(PROCEDURE, () => new Uint8Array(100));
    await client.call(PROCEDURE, new Uint8Array(100));
    await client.lookup(`rpc:${PROCEDURE}`);
    const N = 2_000_000;
    const t0 = performance.now();
    let sink = 0;
    for (let i = 0; i < N; i++) sink += (await client.lookup(`rpc:${PROCEDURE}`)).length;
    if (sink === 0) throw new Error('lookups returned nothing');
    ctx.report({ metric: 'cached_lookups_per_s', value: N / ((performance.now() - t0) / 1000), unit: 'lookups/s' });
  } finally {
    await client.stop();
    await server.stop();
  }
}
