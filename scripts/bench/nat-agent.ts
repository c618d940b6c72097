/**
 * One node of the NAT bench (scripts/bench/nat.ts), run inside its network
 * namespace: `node nat-agent.js <json>`. Roles:
 * - `public`: a public node (relays once found public);
 * - `serve`: registers the procedure `bench.echo` once its announced
 *   address is what the bench wants (`relayed` or `direct`);
 * - `call`: measures calls to `bench.echo`: sequential latency with small
 *   payloads, then throughput with large ones, and prints one JSON line.
 * Each prints `ready <node id> <host:port>` once it is set up.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { isRelayedHost } from '../../src/transport/relayed-address.js';
import { formatAddress, parseAddress } from '../../src/transport/types.js';

interface AgentOptions {
  role: 'public' | 'serve' | 'call';
  host: string;
  bootstrap?: string;
  /** serve: wait for this kind of announced address. */
  want?: 'relayed' | 'direct';
  /** Relay bytes/s per circuit (public nodes). */
  relayBytesPerSecond?: number;
  calls?: number;
  seconds?: number;
  size?: number;
  concurrency?: number;
}

const o = JSON.parse(process.argv[2] ?? '{}') as AgentOptions;
const node = new MeshNode(Identity.generate(), {
  host: o.host,
  port: 0,
  bootstrap: o.bootstrap ? [parseAddress(o.bootstrap)] : [],
  logger: { warn: () => {} },
  ...(o.relayBytesPerSecond !== undefined && { relay: { limits: { circuitBytesPerSecond: o.relayBytesPerSecond } } }),
});
await node.start();
await node.joined();

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (o.role === 'serve') {
  const relayed = () => isRelayedHost(node.advertisedAddress.host);
  await until(() => (o.want === 'relayed' ? relayed() : node.reachability?.status === 'public'), 60_000, `a ${o.want} address`);
  await node.register('bench.echo', (args) => args);
}
process.stdout.write(`ready ${node.nodeId} ${formatAddress(node.advertisedAddress)}\n`);

if (o.role === 'call') {
  // The registration may take a moment to spread.
  for (let i = 0; ; i++) {
    try {
      await node.call('bench.echo', 0, { timeoutMs: 3000 });
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  const small = new Uint8Array(100);
  for (let i = 0; i < 50; i++) await node.call('bench.echo', small);
  const samples: number[] = [];
  for (let i = 0; i < (o.calls ?? 500); i++) {
    const t0 = performance.now();
    await node.call('bench.echo', small);
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const size = o.size ?? 64 * 1024;
  const big = new Uint8Array(size);
  let bytes = 0;
  const t0 = performance.now();
  const end = t0 + (o.seconds ?? 5) * 1000;
  await Promise.all(
    Array.from({ length: o.concurrency ?? 8 }, async () => {
      while (performance.now() < end) {
        await node.call('bench.echo', big, { timeoutMs: 30_000 });
        bytes += size;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const conn = node.pool.connections().find((c) => c.relayed === true);
  process.stdout.write(
    `${JSON.stringify({
      p50: samples[Math.floor(samples.length / 2)],
      p99: samples[Math.floor(samples.length * 0.99)],
      mbPerSecond: bytes / elapsed / (1024 * 1024),
      relayedConnection: conn !== undefined,
    })}\n`,
  );
  await node.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void node.stop().then(() => process.exit(0)));
