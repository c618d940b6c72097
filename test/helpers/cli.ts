/** Runs the real `macula` command (bin/macula.js) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/macula.js', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to this process's environment; a variable given as undefined is left out. */
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

export function runMacula(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode([BIN, ...args], options, `macula ${args.join(' ')}`);
}

/** Runs `node <args>` to its exit, with `input` on its stdin; rejects if it has not exited within `timeoutMs` (20 s). */
export function runNode(args: string[], options: RunOptions = {}, what = `node ${args.join(' ')}`): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${options.timeoutMs ?? 20000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A child that exits (or closes its stdin) before taking its input makes this write fail with EPIPE:
    // its exit, awaited above, is the result to report, not an uncaught error in the test.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running `macula` process whose output can be awaited line by line. */
export class MaculaProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `wrapper` runs the command through another one, e.g. `['ip', 'netns', 'exec', ns]`. */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []) {
    const [cmd, ...argv] = [...wrapper, process.execPath, BIN, ...args];
    this.child = spawn(cmd!, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Polls stdout until `pattern` matches or the deadline passes. */
  waitFor(pattern: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
    return this.#poll(() => this.stdout, pattern, timeoutMs);
  }

  /** Polls stderr until `pattern` matches or the deadline passes. */
  waitForStderr(pattern: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
    return this.#poll(() => this.stderr, pattern, timeoutMs);
  }

  /** The exit status, or a rejection if the process is still running after `timeoutMs`. */
  async waitForExit(timeoutMs = 15000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #poll(text: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = text().match(pattern);
      if (m) return m;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no output matching ${pattern} (exit ${this.child.exitCode})\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** A `macula start` process on 127.0.0.1 with a free port, once it printed its address. */
export interface StartedNode {
  proc: MaculaProcess;
  nodeId: string;
  port: number;
  /** host:port, for --node and --bootstrap. */
  address: string;
}

export async function startNode(dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<StartedNode> {
  const proc = new MaculaProcess(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, ...extra], env);
  const [, nodeId] = await proc.waitFor(/macula node ([0-9a-f]{64})/);
  const [, port] = await proc.waitFor(/listening 127\.0\.0\.1:(\d+)\/udp/);
  return { proc, nodeId: nodeId!, port: Number(port), address: `127.0.0.1:${port}` };
}

/**
 * The `macula` processes of a test file: nodes started in data
 * directories of their own and commands left running, all killed (SIGKILL)
 * and their directories removed by `cleanup()`.
 */
export class CliProcesses {
  readonly #dirs: string[] = [];
  readonly #procs: MaculaProcess[] = [];

  /** `prefix`: the name of the nodes' temporary data directories. */
  constructor(readonly prefix: string) {}

  /** A `macula start` node in a fresh data directory. */
  async node(extra: string[] = []): Promise<StartedNode> {
    const dir = await mkdtemp(join(tmpdir(), this.prefix));
    this.#dirs.push(dir);
    const n = await startNode(dir, extra);
    this.#procs.push(n.proc);
    return n;
  }

  /** A `macula` command left running until it exits or cleanup(). */
  spawn(args: string[]): MaculaProcess {
    const p = new MaculaProcess(args);
    this.#procs.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    for (const p of this.#procs) p.kill('SIGKILL');
    for (const d of this.#dirs) await rm(d, { recursive: true, force: true });
  }
}

/** A UDP port nothing listens on (bound, read and released). */
export async function unusedUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}
