/**
 * A mesh node in its own process, so that it can die for real: SIGKILL (no
 * withdraw, no QUIC close: peers hear nothing) or SIGSTOP/SIGCONT (frozen,
 * then back with its connections and state). No root needed.
 *
 * The child is this file run by node with a JSON config; it talks to the
 * test over the IPC channel (a frozen child answers once it is thawed).
 * A child whose parent goes away exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { parseAddress } from '../../src/transport/types.js';

const SELF = fileURLToPath(import.meta.url);

export interface NodeProcessConfig {
  bootstrap?: string[];
  /** Procedures served; each answers `{ nodeId }` of the serving node. */
  serve?: string[];
  /** Patterns subscribed; messages are counted per publisher seq. */
  subscribe?: string[];
  /** `members` subscriptions to `pattern` in queue group `group`; each records the `seq` of the data it got. */
  queue?: { pattern: string; group: string; members: number };
}

export interface NodeProcessStats {
  /** Messages received (duplicates excluded by the receiver). */
  received: number;
  /** Distinct `seq` values of the data received, sorted. */
  seqs: number[];
  served: number;
  /** Per queue member (in `queue` config order): the `seq` values it got, in arrival order. */
  queue: number[][];
}

type FromChild = { type: 'ready'; address: string; nodeId: string } | { type: 'stats'; id: number; stats: NodeProcessStats } | { type: 'fatal'; message: string };

export class NodeProcess {
  readonly child: ChildProcess;
  readonly address: string;
  readonly nodeId: string;
  readonly exited: Promise<void>;
  #next = 0;

  private constructor(child: ChildProcess, address: string, nodeId: string, exited: Promise<void>) {
    this.child = child;
    this.address = address;
    this.nodeId = nodeId;
    this.exited = exited;
  }

  /** Forks the node and resolves once it listens, joined and serves/subscribes as configured. */
  static async start(config: NodeProcessConfig = {}, timeoutMs = 30_000): Promise<NodeProcess> {
    const child = fork(SELF, ['--node-process', JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise<{ address: string; nodeId: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`node process not ready within ${timeoutMs} ms: ${stderr}`));
      }, timeoutMs);
      child.on('message', (m: FromChild) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m);
        } else if (m.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`node process failed: ${m.message}`));
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`node process exited before it was ready: ${stderr}`));
      });
    });
    return new NodeProcess(child, ready.address, ready.nodeId, exited);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Crash: SIGKILL, then waits for the process to be gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Freezes the whole process (every thread, QUIC included). */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.child.kill('SIGCONT');
  }

  stats(timeoutMs = 10_000): Promise<NodeProcessStats> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.off('message', on);
        reject(new Error(`node process ${this.pid} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: FromChild) => {
        if (m.type === 'stats' && m.id === id) {
          clearTimeout(timer);
          this.child.off('message', on);
          resolve(m.stats);
        }
      };
      this.child.on('message', on);
      this.child.send({ type: 'stats', id });
    });
  }

  /** Cleanup that works in any state: thaws a frozen process, then kills it. */
  async destroy(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGCONT');
    await this.kill();
  }
}

async function runChild(config: NodeProcessConfig): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  process.on('disconnect', () => process.exit(1));
  const node = new MeshNode(Identity.generate(), {
    host: '127.0.0.1',
    port: 0,
    bootstrap: (config.bootstrap ?? []).map((a) => parseAddress(a)),
    logger: { warn: () => {} },
    stopTimeoutMs: 2000,
  });
  await node.start();
  await node.joined();
  let served = 0;
  let received = 0;
  const seqs = new Set<number>();
  for (const p of config.serve ?? []) {
    await node.register(p, () => {
      served++;
      return { nodeId: node.nodeId };
    });
  }
  const subs = (config.subscribe ?? []).map((pattern) =>
    node.subscribe(pattern, (msg) => {
      received++;
      const seq = (msg.data as { seq?: unknown } | null)?.seq;
      if (typeof seq === 'number') seqs.add(seq);
    }),
  );
  const queue: number[][] = [];
  const q = config.queue;
  for (let i = 0; q !== undefined && i < q.members; i++) {
    const got: number[] = [];
    queue.push(got);
    subs.push(
      node.subscribe(
        q.pattern,
        (msg) => {
          const seq = (msg.data as { seq?: unknown } | null)?.seq;
          if (typeof seq === 'number') got.push(seq);
        },
        { queue: q.group },
      ),
    );
  }
  await Promise.all(subs.map((s) => s.ready));
  process.on('message', (m: { type: string; id: number }) => {
    if (m.type === 'stats') send({ type: 'stats', id: m.id, stats: { received, seqs: [...seqs].sort((a, b) => a - b), served, queue } });
  });
  process.once('SIGTERM', () => void node.stop().finally(() => process.exit(0)));
  send({ type: 'ready', address: `${node.listenAddress!.host}:${node.listenAddress!.port}`, nodeId: node.nodeId });
}

if (process.argv[2] === '--node-process') {
  runChild(JSON.parse(process.argv[3] ?? '{}') as NodeProcessConfig).catch((err: Error) => {
    process.send?.({ type: 'fatal', message: err.message });
    process.exit(1);
  });
}
