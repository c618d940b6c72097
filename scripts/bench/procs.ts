/**
 * What every bench that compares us with NATS shares: processes of their own
 * for each side (so neither system gets a core the other lacks and no two
 * parts share an event loop), their CPU time read from /proc, and figures
 * repeated in alternation with median and min–max.
 *
 * - `Worker`: a forked `worker.js` driven over IPC (see worker.ts);
 * - `Proc`: any child process (nats-server, `macula start`, `macula bench`);
 * - `cpuSeconds(pid)`: user + system time from /proc/<pid>/stat;
 * - `alternate()`: runs each variant's trial in turn, `runs` rounds, and
 *   reports each metric's median with `_min` / `_max` siblings.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from '../bench.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
/** The payload of every pub/sub bench, on both sides. */
export const PAYLOAD = new Uint8Array(100).fill(7);
/** Clock ticks per second of /proc/<pid>/stat. */
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** User + system CPU seconds a live process has used, or undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** A child process whose CPU time is sampled while it lives (a short-lived one's last sample stands for its total). */
export class Proc {
  stdout = '';
  stderr = '';
  #cpu = 0;
  readonly #timer: NodeJS.Timeout;
  readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.stdout?.on('data', (d) => (this.stdout += d));
    child.stderr?.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.#timer = setInterval(() => this.cpu(), 50);
    this.#timer.unref();
    void this.exited.then(() => clearInterval(this.#timer));
  }

  static spawn(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    return new Proc(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }), name);
  }

  /** CPU seconds used so far (the last sample once the process has exited). */
  cpu(): number {
    const now = cpuSeconds(this.child.pid);
    if (now !== undefined) this.#cpu = now;
    return this.#cpu;
  }

  /** Polls stdout until `pattern` matches; fails if the process exits or the deadline passes. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.match(pattern);
      if (m) return m;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`${this.name}: no output matching ${pattern} (exit ${this.child.exitCode})\n${this.stdout}\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

let profiles = 0;

/** A forked bench worker (worker.ts): each request gets the reply with its id. */
/** What a forked worker answers: op name → handler of the request's fields. */
export type WorkerOps = Record<string, (m: Record<string, unknown>) => Promise<unknown>>;

/** The child's side of `Worker`: answers each request with its op's result or error; exits when the parent goes. */
export function serveOps(ops: WorkerOps): void {
  process.on('message', (msg: { id: number; op: string } & Record<string, unknown>) => {
    const op = ops[msg.op];
    if (!op) {
      process.send!({ id: msg.id, ok: false, error: `unknown op ${msg.op}` });
      return;
    }
    op(msg).then(
      (value) => process.send!({ id: msg.id, ok: true, value }),
      (err: unknown) => process.send!({ id: msg.id, ok: false, error: (err as Error)?.stack ?? String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

export class Worker extends Proc {
  #next = 0;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  /**
   * With MACULA_BENCH_CPU_PROF=<dir> each worker writes a V8 CPU profile there when it exits (`node --cpu-prof`).
   * `script` is worker.js unless a bench has a process of its own that answers the same requests (and `exit`).
   */
  constructor(name: string, script = WORKER) {
    const dir = process.env.MACULA_BENCH_CPU_PROF;
    const execArgv = dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${++profiles}-${name.replace(/\W+/g, '-')}.cpuprofile`] : [];
    super(fork(script, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv }), name);
    this.child.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(`${this.name}: ${m.error}`));
    });
    void this.exited.then((code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${this.name} exited (${code}): ${this.stderr}`));
      this.#pending.clear();
    });
  }

  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, ...args });
    });
  }

  /** Asks the worker to close what it runs and exit (writing its CPU profile, if any); signals it only if it does not. */
  override async stop(): Promise<void> {
    if (this.child.connected) {
      await this.request('exit').catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
    }
    await super.stop();
  }
}

export async function stopAll(procs: Array<Proc | undefined>): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop()));
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A nats-server of its own on 127.0.0.1 (Debian package nats-server), or why there is none. */
export async function startNatsServer(): Promise<{ proc: Proc; url: string } | string> {
  if (spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).error) return 'nats-server is not on PATH (Debian package nats-server)';
  const port = await freeTcpPort();
  const proc = Proc.spawn('nats-server', 'nats-server', ['-a', '127.0.0.1', '-p', String(port)]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (up) return { proc, url: `127.0.0.1:${port}` };
    if (Date.now() > deadline || proc.child.exitCode !== null) {
      await proc.stop();
      return `nats-server did not start: ${proc.stderr.trim()}`;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Makes the workers parties of one system: mesh nodes (`first` starts the
 * mesh, the others join through it), or NATS connections to a nats-server
 * of their own, which is added to `procs`.
 */
export async function initWorkers(system: 'macula' | 'nats', first: Worker, others: readonly Worker[], procs: Proc[], pubsub?: unknown): Promise<void> {
  if (system === 'nats') {
    const server = await startNatsServer();
    if (typeof server === 'string') throw new Error(server);
    procs.push(server.proc);
    await Promise.all([first, ...others].map((w) => w.request('init', { system: 'nats', url: server.url })));
    return;
  }
  const { address } = await first.request<{ address: string }>('init', { system: 'macula', pubsub });
  await Promise.all(others.map((w) => w.request('init', { system: 'macula', pubsub, bootstrap: address })));
}

/** What one trial of one variant measured: metric → value, plus the CPU seconds of all its processes. */
export type Trial = Record<string, number>;

export interface Variant {
  /** Runs one trial; `round` counts from 0. */
  trial(round: number): Promise<Trial>;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The figures of every round, per metric. */
export type Rounds = Map<string, number[]>;

/**
 * Runs the variants' trials in turn (A B C, A B C, …) for `runs` rounds, so
 * a slow spell of the shared machine hits every variant alike, and collects
 * each metric's values. Variants are named by their metric prefixes.
 */
export async function alternate(ctx: BenchContext, runs: number, variants: Record<string, Variant>): Promise<Rounds> {
  const rounds: Rounds = new Map();
  for (let r = 0; r < runs; r++) {
    for (const [name, v] of Object.entries(variants)) {
      const t = await v.trial(r);
      ctx.log(`round ${r + 1}/${runs} ${name}: ${Object.entries(t).map(([k, x]) => `${k}=${fmt(x)}`).join(' ')}`);
      for (const [k, x] of Object.entries(t)) {
        if (!rounds.has(k)) rounds.set(k, []);
        rounds.get(k)!.push(x);
      }
    }
  }
  return rounds;
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(3);
}

/** Reports `metric` (the median of its rounds) with `_min` and `_max` siblings. */
export function reportSpread(ctx: BenchContext, metric: string, values: readonly number[] | undefined, unit: string): number {
  if (values === undefined || values.length === 0) return NaN;
  const m = median(values);
  ctx.report({ metric, value: m, unit });
  ctx.report({ metric: `${metric}_min`, value: Math.min(...values), unit });
  ctx.report({ metric: `${metric}_max`, value: Math.max(...values), unit });
  return m;
}

/** Reports each [metric, round key, unit] of `figures` with reportSpread; a key no round produced is left out. */
export function reportRounds(ctx: BenchContext, rounds: Rounds, figures: ReadonlyArray<readonly [metric: string, key: string, unit: string]>): void {
  for (const [metric, key, unit] of figures) reportSpread(ctx, metric, rounds.get(key), unit);
}

/** A trial's metrics renamed `${pre}${name}${suffix}`, so the variants' figures sit side by side. */
export function renamed(t: Trial, pre: string, suffix = ''): Trial {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [`${pre}${k}${suffix}`, v]));
}

/** Why NATS cannot be measured here, or undefined when it can. */
export async function natsAvailable(): Promise<string | undefined> {
  const server = await startNatsServer();
  if (typeof server === 'string') return server;
  await server.proc.stop();
  try {
    await import('nats');
  } catch {
    return 'the nats npm client is not installed';
  }
  return undefined;
}

/** Reports ours/theirs per round (rounds pair up as they alternate) as median and min–max. */
export function reportRatio(ctx: BenchContext, metric: string, ours: readonly number[] | undefined, theirs: readonly number[] | undefined): void {
  if (ours === undefined || theirs === undefined) return;
  const ratios = ours.map((x, i) => x / theirs[i]!).filter(Number.isFinite);
  reportSpread(ctx, metric, ratios, 'x');
}

/** CPU seconds per million `count`, from CPU seconds used by `procs` between two samples. */
export function cpuPerMillion(cpuBefore: number, cpuAfter: number, count: number): number {
  return count > 0 ? ((cpuAfter - cpuBefore) / count) * 1e6 : NaN;
}

export function totalCpu(procs: readonly Proc[]): number {
  return procs.reduce((s, p) => s + p.cpu(), 0);
}

/** How long a flow runs before its window opens (JIT, connections, caches), the same for both systems. */
export const WARMUP_MS = 1000;

/**
 * Starts a flow, lets it warm up, then counts what `counted` reports and the
 * CPU time of `procs` over `seconds`; stops the flow. Returns the count per
 * second and the CPU seconds per million counted.
 */
export async function window(
  seconds: number,
  flow: { start(): Promise<unknown>; stop(): Promise<unknown>; counted(): Promise<number>; procs: readonly Proc[] },
): Promise<{ rate: number; cpuPerM: number; counted: number }> {
  await flow.start();
  try {
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const [c0, cpu0, t0] = [await flow.counted(), totalCpu(flow.procs), performance.now()];
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const [c1, cpu1, t1] = [await flow.counted(), totalCpu(flow.procs), performance.now()];
    const counted = c1 - c0;
    return { rate: counted / ((t1 - t0) / 1000), cpuPerM: cpuPerMillion(cpu0, cpu1, counted), counted };
  } finally {
    await flow.stop();
  }
}

/** Sums `key` of the `count` reply of each worker. */
export async function sumCounts(workers: readonly Worker[], key: 'delivered' | 'published'): Promise<number> {
  const replies = await Promise.all(workers.map((w) => w.request<Record<typeof key, number>>('count')));
  return replies.reduce((s, r) => s + r[key], 0);
}
