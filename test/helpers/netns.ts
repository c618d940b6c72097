/**
 * Two network namespaces of our own making, A and B, joined so that their
 * traffic can be delayed, dropped and cut, for tests of the node over an
 * impaired network. Needs root and `ip`; nothing outside the namespaces is
 * touched (addresses live only inside them).
 *
 * Two ways to impair the link, chosen by what the kernel offers:
 * - `netem`: A and B joined by one veth pair, `tc qdisc … netem` on both
 *   ends. Used when the kernel has the netem qdisc and `tc` is installed.
 * - `relay`: A and B each joined by a veth pair to a third namespace R that
 *   does not route; a UDP relay in R (this file run with `--relay`) forwards
 *   every datagram between them with the delay and loss asked for. Kernels
 *   built without netem (CONFIG_NET_SCH_NETEM unset) still get the same
 *   test this way. Each node announces the relay's address facing the other
 *   namespace, so whatever address one node learns for the other leads
 *   through the relay.
 *
 * In both cases cutting the link sets A's end of its veth down.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MaculaProcess } from './cli.js';

const SELF = fileURLToPath(import.meta.url);
/** Namespaces this file creates are named `mac-<role>-<pid of the creating process>`. */
const NS_PATTERN = /^mac-[abr]-(\d+)$/;

export type LinkMode = 'netem' | 'relay';

export interface Side {
  /** Namespace name. */
  ns: string;
  /** Address the node in this namespace binds. */
  host: string;
  /** Host the node announces: the address the *other* side reaches it at. */
  announceHost: string;
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (the tests do not run as root here)';
  if (!hasCommand('ip', ['-V'])) return 'the `ip` command (iproute2) is not installed';
  return undefined;
}

function hasCommand(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** Runs `ip …` and fails with its stderr when it does. */
function ip(...args: string[]): void {
  run('ip', args);
}

/** Runs a command and fails with its stderr when it does. */
export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
}

/**
 * Deletes namespaces left behind by earlier runs whose process is gone (a
 * run killed before its cleanup), so they do not pile up. `pattern` captures
 * the creating process's pid (default: this file's namespaces). Namespaces of
 * live processes (parallel runs) are left alone.
 */
export function removeStaleNamespaces(pattern: RegExp = NS_PATTERN): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of r.stdout?.split('\n') ?? []) {
    const name = line.split(' ')[0] ?? '';
    const m = pattern.exec(name);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ImpairedLink {
  readonly mode: LinkMode;
  readonly a: Side;
  readonly b: Side;
  readonly #namespaces: string[];
  /** A's end of its veth: what cut() sets down. */
  readonly #aDev: string;
  readonly #bDev: string;
  #relay: RelayControl | undefined;

  private constructor(mode: LinkMode, a: Side, b: Side, namespaces: string[], aDev: string, bDev: string) {
    this.mode = mode;
    this.a = a;
    this.b = b;
    this.#namespaces = namespaces;
    this.#aDev = aDev;
    this.#bDev = bDev;
  }

  /**
   * Creates the namespaces and links. `mode` forces one way (else netem when
   * the kernel has it). On failure whatever was made is removed again.
   */
  static async create(options: { mode?: LinkMode } = {}): Promise<ImpairedLink> {
    removeStaleNamespaces();
    const pid = process.pid;
    const nsA = `mac-a-${pid}`;
    const nsB = `mac-b-${pid}`;
    const nsR = `mac-r-${pid}`;
    const made: string[] = [];
    const makeNs = (name: string) => {
      ip('netns', 'add', name);
      made.push(name);
      // A node may talk to itself (and a client to its node) over local addresses: needs loopback up.
      ip('-n', name, 'link', 'set', 'lo', 'up');
    };
    try {
      makeNs(nsA);
      makeNs(nsB);
      const mode = options.mode ?? (netemWorks(nsA) ? 'netem' : 'relay');
      if (mode === 'netem') {
        // veth names are at most 15 characters; the pid keeps them unique per run.
        const aDev = `mva${pid}`;
        const bDev = `mvb${pid}`;
        ip('link', 'add', aDev, 'netns', nsA, 'type', 'veth', 'peer', 'name', bDev, 'netns', nsB);
        ip('-n', nsA, 'addr', 'add', '10.201.1.1/24', 'dev', aDev);
        ip('-n', nsB, 'addr', 'add', '10.201.1.2/24', 'dev', bDev);
        ip('-n', nsA, 'link', 'set', aDev, 'up');
        ip('-n', nsB, 'link', 'set', bDev, 'up');
        return new ImpairedLink(
          mode,
          { ns: nsA, host: '10.201.1.1', announceHost: '10.201.1.1' },
          { ns: nsB, host: '10.201.1.2', announceHost: '10.201.1.2' },
          made,
          aDev,
          bDev,
        );
      }
      makeNs(nsR);
      const aDev = `mva${pid}`;
      const bDev = `mvb${pid}`;
      ip('link', 'add', aDev, 'netns', nsA, 'type', 'veth', 'peer', 'name', `mra${pid}`, 'netns', nsR);
      ip('link', 'add', bDev, 'netns', nsB, 'type', 'veth', 'peer', 'name', `mrb${pid}`, 'netns', nsR);
      ip('-n', nsA, 'addr', 'add', '10.201.1.2/24', 'dev', aDev);
      ip('-n', nsR, 'addr', 'add', '10.201.1.1/24', 'dev', `mra${pid}`);
      ip('-n', nsB, 'addr', 'add', '10.201.2.2/24', 'dev', bDev);
      ip('-n', nsR, 'addr', 'add', '10.201.2.1/24', 'dev', `mrb${pid}`);
      for (const [ns, dev] of [[nsA, aDev], [nsB, bDev], [nsR, `mra${pid}`], [nsR, `mrb${pid}`]] as const) ip('-n', ns, 'link', 'set', dev, 'up');
      // R never routes (forwarding is off in a new namespace): the relay is the only path between A and B.
      // Its own ports stay below the nodes' ephemeral range, so a relay socket can never hold the port a node listens on.
      ip('netns', 'exec', nsR, 'sh', '-c', 'echo 20000 29999 > /proc/sys/net/ipv4/ip_local_port_range');
      const link = new ImpairedLink(
        mode,
        { ns: nsA, host: '10.201.1.2', announceHost: '10.201.2.1' },
        { ns: nsB, host: '10.201.2.2', announceHost: '10.201.1.1' },
        made,
        aDev,
        bDev,
      );
      link.#relay = await RelayControl.start(nsR);
      return link;
    } catch (err) {
      for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      throw err;
    }
  }

  /**
   * Tells the link that a node listens on `port` in `side`, before the other
   * side dials it (relay mode forwards that port; netem mode needs nothing).
   */
  async expose(side: 'a' | 'b', port: number): Promise<void> {
    if (!this.#relay) return;
    const [to, facing] = side === 'a' ? [this.a.host, this.a.announceHost] : [this.b.host, this.b.announceHost];
    // Datagrams to <facing>:<port> go to the node; the relay sends them from its address on the node's side.
    await this.#relay.command({ op: 'listen', host: facing, port, targetHost: to, targetPort: port, via: side === 'a' ? '10.201.1.1' : '10.201.2.1' });
  }

  /** Delay and loss in each direction (as netem on both ends of the link). */
  async impair(delayMs: number, lossPct: number): Promise<void> {
    if (this.#relay) {
      await this.#relay.command({ op: 'impair', delayMs, lossPct });
      return;
    }
    for (const [ns, dev] of [[this.a.ns, this.#aDev], [this.b.ns, this.#bDev]] as const) {
      run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${delayMs}ms`, 'loss', `${lossPct}%`]);
    }
  }

  /**
   * Datagrams the impairment forwarded and dropped so far (relay mode; netem
   * keeps its own counters, read with `tc -s qdisc`), or undefined.
   */
  async counts(): Promise<{ forwarded: number; dropped: number } | undefined> {
    if (!this.#relay) return undefined;
    return JSON.parse(await this.#relay.command({ op: 'stats' })) as { forwarded: number; dropped: number };
  }

  /** Sets A's end of the link down: nothing passes until restore(). */
  cut(): void {
    ip('-n', this.a.ns, 'link', 'set', this.#aDev, 'down');
  }

  restore(): void {
    ip('-n', this.a.ns, 'link', 'set', this.#aDev, 'up');
  }

  /** Stops the relay and deletes the namespaces (which deletes the veths); never throws. */
  async destroy(): Promise<void> {
    await this.#relay?.stop();
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Probes the netem qdisc on a namespace's loopback (removed again at once). */
function netemWorks(ns: string): boolean {
  if (!hasCommand('tc', ['-V'])) return false;
  const add = spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { stdio: 'ignore' });
  if (add.status !== 0) return false;
  spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'lo', 'root'], { stdio: 'ignore' });
  return true;
}

/** The relay process in R, driven by one JSON command per line on its stdin; it answers each with one line. */
class RelayControl {
  readonly #child: ChildProcess;
  readonly #replies: ((line: string) => void)[] = [];
  #stderr = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => this.#replies.shift()?.(line));
    child.stderr!.on('data', (d) => (this.#stderr += d));
  }

  static async start(ns: string): Promise<RelayControl> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF, '--relay'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const relay = new RelayControl(child);
    try {
      await relay.command({ op: 'ping' });
    } catch (err) {
      await relay.stop();
      throw err;
    }
    return relay;
  }

  /** Resolves with what followed `ok` in the answer. */
  command(cmd: Record<string, unknown>): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the relay did not answer ${JSON.stringify(cmd)}; stderr: ${this.#stderr}`)), 5000);
      this.#replies.push((line) => {
        clearTimeout(timer);
        if (line === 'ok' || line.startsWith('ok ')) resolve(line.slice(3));
        else reject(new Error(`relay: ${line}`));
      });
      this.#child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('close', r));
    this.#child.kill('SIGKILL');
    await exited;
  }
}

/**
 * The relay itself. For each exposed port it listens on R's address facing
 * the dialing side and keeps one socket per remote source (on R's address
 * facing the node), so the node sees a stable peer per flow, as through a
 * NAT. Every datagram, both ways, is dropped with probability lossPct and
 * otherwise sent after delayMs.
 */
function relayMain(): void {
  let delayMs = 0;
  let lossPct = 0;
  const counts = { forwarded: 0, dropped: 0 };
  const forward = (sock: Socket, msg: Buffer, port: number, host: string) => {
    if (lossPct > 0 && Math.random() * 100 < lossPct) {
      counts.dropped++;
      return;
    }
    counts.forwarded++;
    // A failed send (link cut) is a lost datagram, as on a wire.
    const send = () => sock.send(msg, port, host, () => {});
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
  const listen = async (host: string, port: number, targetHost: string, targetPort: number, via: string) => {
    const front = createSocket('udp4');
    front.on('error', () => {});
    const flows = new Map<string, Socket>();
    front.on('message', (msg, from) => {
      const key = `${from.address}:${from.port}`;
      let back = flows.get(key);
      if (!back) {
        const s = createSocket('udp4');
        s.on('error', () => {});
        s.on('message', (reply) => forward(front, reply, from.port, from.address));
        s.bind({ address: via, port: 0 });
        flows.set(key, s);
        back = s;
      }
      forward(back, msg, targetPort, targetHost);
    });
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject);
      front.bind({ address: host, port }, () => resolve());
    });
  };
  const rl = createInterface({ input: process.stdin });
  // One command at a time, so that the answers come in the order of the commands.
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      try {
        const cmd = JSON.parse(line) as { op: string; [k: string]: unknown };
        if (cmd.op === 'listen') await listen(String(cmd.host), Number(cmd.port), String(cmd.targetHost), Number(cmd.targetPort), String(cmd.via));
        else if (cmd.op === 'impair') {
          delayMs = Number(cmd.delayMs);
          lossPct = Number(cmd.lossPct);
        } else if (cmd.op === 'stats') {
          process.stdout.write(`ok ${JSON.stringify(counts)}\n`);
          return;
        } else if (cmd.op !== 'ping') throw new Error(`unknown op ${cmd.op}`);
        process.stdout.write('ok\n');
      } catch (err) {
        process.stdout.write(`error ${(err as Error).message}\n`);
      }
    });
  });
  // The test process went away (even killed): go with it.
  rl.on('close', () => process.exit(0));
}

if (process.argv[2] === '--relay' && process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) relayMain();

export interface NsRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time from spawn to exit. */
  ms: number;
}

/**
 * A `macula` process inside a namespace. `ip netns exec` replaces itself
 * with the command, so signals sent to the child reach node directly.
 */
export class NsMacula extends MaculaProcess {
  constructor(ns: string, args: string[]) {
    super(args, {}, ['ip', 'netns', 'exec', ns]);
  }
}

/** Runs a short `macula` command inside a namespace; SIGKILLs it (and rejects) after `timeoutMs`. */
export function runMaculaIn(bin: string, ns: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<NsRunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const limit = options.timeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`macula ${args.join(' ')} (in ${ns}) did not exit within ${limit} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, limit);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
    // A child that exits (or closes its stdin) before taking its input makes this write fail with EPIPE:
    // its exit, awaited above, is the result to report, not an uncaught error in the test.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
