/**
 * `macula bench` scenarios against a running mesh, in the spirit of
 * `nats bench`: two light clients (publisher and subscriber, or caller and
 * server), possibly through different nodes, and the figures that matter.
 *
 * Latency is measured end to end inside this process: each payload starts
 * with the send time (performance.now(), the same clock for both clients).
 */
import { randomBytes } from 'node:crypto';
import { TimeoutError } from '../util/errors.js';
import { sleep } from './signals.js';

/**
 * What the scenarios use of a client: `MaculaClient` has it, and the
 * benchmarks give the same shape over a NATS connection so that both
 * systems are measured by this very code.
 */
export interface BenchClient {
  publish(topic: string, data: unknown): Promise<unknown>;
  subscribe(pattern: string, onMessage: (msg: { topic: string; data: unknown }) => void): Promise<{ unsubscribe(): Promise<unknown> }>;
  call(procedure: string, args?: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
  serve(procedure: string, handler: (args: unknown) => unknown): Promise<{ unserve(): Promise<unknown> }>;
}

export interface BenchFigure {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
}

export interface BenchParams {
  count: number;
  size: number;
  /** Publishes or calls in flight at once. */
  concurrency: number;
  /** How long to wait for the first message or call to get through. */
  warmupMs: number;
}

/** Retries `attempt` every 100 ms until it succeeds or the deadline passes. */
async function warmUp(what: string, deadlineMs: number, attempt: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    if (await attempt()) return;
    if (performance.now() > deadline) throw new TimeoutError(what, deadlineMs, { message: `${what} within ${deadlineMs} ms; is the mesh joined?` });
    await sleep(100);
  }
}

function percentiles(samples: Float64Array, n: number): { p50: number; p99: number; max: number; mean: number } {
  const sorted = samples.subarray(0, n).sort();
  const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { p50: at(0.5), p99: at(0.99), max: n > 0 ? sorted[n - 1]! : 0, mean: n > 0 ? sum / n : 0 };
}

// The send time travels in the payload's first 8 bytes (this machine's byte
// order: both clients are in this process). Each payload is a fresh slice of
// Node's buffer pool and the stamp is copied through a scratch array: a
// buffer, an ArrayBuffer and a DataView per message took a sixth of the
// measuring process's CPU, and as much again in garbage collection, at
// 200,000 messages/s; both systems run this very code.
const stamp = new Float64Array(1);
const stampBytes = new Uint8Array(stamp.buffer);
let blank = new Uint8Array(0);

function payload(size: number): Uint8Array {
  const n = Math.max(8, size);
  if (blank.length !== n) blank = new Uint8Array(n);
  const buf = Buffer.allocUnsafe(n);
  buf.set(blank); // zeros, copied: cheaper than fill() on a pooled slice
  stamp[0] = performance.now();
  buf.set(stampBytes);
  return buf;
}

function sentAt(data: unknown): number | undefined {
  if (!(data instanceof Uint8Array) || data.length < 8) return undefined;
  for (let i = 0; i < 8; i++) stampBytes[i] = data[i]!;
  return stamp[0];
}

function latencyFigures(scenario: string, samples: Float64Array, n: number): BenchFigure[] {
  const p = percentiles(samples, n);
  return [
    { scenario, metric: 'latency_p50', value: round(p.p50), unit: 'ms' },
    { scenario, metric: 'latency_p99', value: round(p.p99), unit: 'ms' },
    { scenario, metric: 'latency_max', value: round(p.max), unit: 'ms' },
    { scenario, metric: 'latency_mean', value: round(p.mean), unit: 'ms' },
  ];
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** Runs `fn(i)` for i in 0..count-1 with at most `concurrency` at once. */
async function pipelined(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failure !== undefined) throw failure;
}

export async function benchPubSub(pub: BenchClient, sub: BenchClient, params: BenchParams): Promise<BenchFigure[]> {
  const scenario = 'pubsub';
  const topic = `macula.bench.${randomBytes(6).toString('hex')}`;
  const samples = new Float64Array(params.count);
  let received = 0;
  let warm = false;
  let firstAt = 0;
  let lastAt = 0;
  let allIn!: () => void;
  const complete = new Promise<void>((resolve) => (allIn = resolve));
  const subscription = await sub.subscribe(`${topic}.*`, (m) => {
    if (m.topic !== `${topic}.run`) {
      warm = true;
      return;
    }
    const t = performance.now();
    const sent = sentAt(m.data);
    if (received === 0) firstAt = t;
    lastAt = t;
    if (sent !== undefined && received < samples.length) samples[received] = t - sent;
    if (++received === params.count) allIn();
  });
  try {
    await warmUp('no warm-up message arrived', params.warmupMs, async () => {
      await pub.publish(`${topic}.warmup`, 0);
      await sleep(50);
      return warm;
    });
    const t0 = performance.now();
    await pipelined(params.count, params.concurrency, async () => {
      await pub.publish(`${topic}.run`, payload(params.size));
    });
    const published = performance.now() - t0;
    // Whatever has not arrived 2 s after the stream went quiet is counted as lost.
    for (let seen = -1; received < params.count && received !== seen; ) {
      seen = received;
      await Promise.race([complete, sleep(2000)]);
    }
    // receive_rate: the subscriber's window, first message to last; delivery_rate: from the first publish (t0) to the last message.
    const span = Math.max(lastAt - firstAt, 1e-3);
    return [
      { scenario, metric: 'messages', value: params.count, unit: 'msgs' },
      { scenario, metric: 'size', value: params.size, unit: 'bytes' },
      { scenario, metric: 'publish_rate', value: Math.round((params.count / published) * 1000), unit: 'msgs/s' },
      { scenario, metric: 'receive_rate', value: Math.round(((received - 1) / span) * 1000), unit: 'msgs/s' },
      { scenario, metric: 'delivery_rate', value: Math.round((received / Math.max(lastAt - t0, 1e-3)) * 1000), unit: 'msgs/s' },
      { scenario, metric: 'received', value: received, unit: 'msgs' },
      { scenario, metric: 'lost', value: params.count - received, unit: 'msgs' },
      ...latencyFigures(scenario, samples, Math.min(received, samples.length)),
    ];
  } finally {
    await subscription.unsubscribe().catch(() => undefined);
  }
}

export async function benchRpc(caller: BenchClient, server: BenchClient, params: BenchParams): Promise<BenchFigure[]> {
  const scenario = 'rpc';
  const procedure = `macula.bench.${randomBytes(6).toString('hex')}`;
  const served = await server.serve(procedure, (args) => args);
  try {
    await warmUp(`${procedure} was not callable`, params.warmupMs, async () => {
      try {
        await caller.call(procedure, null, { timeoutMs: 2000 });
        return true;
      } catch {
        return false;
      }
    });
    const samples = new Float64Array(params.count);
    const t0 = performance.now();
    await pipelined(params.count, params.concurrency, async (i) => {
      const t = performance.now();
      await caller.call(procedure, payload(params.size));
      samples[i] = performance.now() - t;
    });
    const elapsed = performance.now() - t0;
    return [
      { scenario, metric: 'calls', value: params.count, unit: 'calls' },
      { scenario, metric: 'size', value: params.size, unit: 'bytes' },
      { scenario, metric: 'concurrency', value: params.concurrency, unit: 'calls' },
      { scenario, metric: 'call_rate', value: Math.round((params.count / elapsed) * 1000), unit: 'calls/s' },
      ...latencyFigures(scenario, samples, params.count),
    ];
  } finally {
    await served.unserve().catch(() => undefined);
  }
}
