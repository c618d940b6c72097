/**
 * createTestnet(n): n real nodes, the first as bootstrap for the others,
 * over QUIC on 127.0.0.1 port 0 or over one in-process memory network.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode, type MeshNodeOptions } from '../../src/node/mesh-node.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

export interface Testnet {
  nodes: MeshNode[];
  network: MemoryNetwork | undefined;
  /** Starts one more node bootstrapped through the first. */
  add(options?: MeshNodeOptions): Promise<MeshNode>;
  /** Stops a node without withdrawing its records (MeshNode.kill(); memory: dropped from the network). Its peers are told at once: for a crash or a freeze use test/helpers/node-process.ts. */
  kill(node: MeshNode): Promise<void>;
  destroy(): Promise<void>;
}

/** A node's options, except that `transport` picks the network: real QUIC on loopback or one in-process memory network. */
export interface TestnetOptions extends Omit<MeshNodeOptions, 'transport'> {
  transport?: 'quic' | 'memory';
  /** How many nodes join at once. Default 8. */
  joinConcurrency?: number;
}

const quiet = { warn: () => {} };

export async function createTestnet(n: number, options: TestnetOptions = {}): Promise<Testnet> {
  const { transport = 'quic', joinConcurrency = 8, ...nodeOptions } = options;
  const network = transport === 'memory' ? new MemoryNetwork() : undefined;
  const nodes: MeshNode[] = [];
  const base: MeshNodeOptions = {
    host: '127.0.0.1',
    port: 0,
    logger: quiet,
    stopTimeoutMs: 2000,
    ...nodeOptions,
    ...(network ? { memoryNetwork: network } : {}),
  };
  const start = async (extra: MeshNodeOptions = {}) => {
    const node = new MeshNode(Identity.generate(), { ...base, ...extra });
    await node.start();
    return node;
  };
  const first = await start();
  nodes.push(first);
  const add = async (extra: MeshNodeOptions = {}) => {
    const node = await start({ bootstrap: [first.listenAddress!], ...extra });
    await node.joined();
    nodes.push(node);
    return node;
  };
  try {
    for (let i = 1; i < n; i += joinConcurrency) {
      await Promise.all(Array.from({ length: Math.min(joinConcurrency, n - i) }, () => add()));
    }
  } catch (err) {
    await Promise.all(nodes.map((x) => x.stop()));
    throw err;
  }
  return {
    nodes,
    network,
    add,
    async kill(node) {
      if (network) network.kill(node.listenAddress!.port);
      await node.kill();
    },
    async destroy() {
      await Promise.all(nodes.map((x) => x.stop()));
    },
  };
}

/** Polls `cond` until it holds or the deadline passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
