/**
 * One side of a bench in a process of its own, driven over IPC by procs.ts:
 * a mesh node (`init` with system "macula") or a `nats` client connection
 * (system "nats"). Both offer the same operations, so the benches drive the
 * two systems with the same code:
 *
 * - `subscribe` {pattern, n}: n subscriptions, each counting its deliveries
 *   in its handler (the counting point of every pub/sub figure);
 * - `count`: {delivered, published} so far;
 * - `publish-start` {topic} / `publish-stop`: publish as fast as the system's
 *   flow control lets a publisher (ours: each publish awaited, NATS: batches
 *   then a flush, its best rate);
 * - `reach` {topic, nodes} (macula): publishes until the publisher resolves
 *   `nodes` subscriber nodes;
 * - `serve` {procedure}: answer calls with the 100-byte result;
 * - `calls` {procedure, inFlight, seconds}: a closed loop of calls, giving
 *   calls/s and latency percentiles;
 * - `raw-serve` / `raw-calls` {address, seconds}: the same loop, 1 in
 *   flight, on a bare stream of our QUIC transport (100 bytes each way,
 *   echoed): what the binding itself costs between two processes, with
 *   nothing of ours above the transport;
 * - `cli-pubsub` / `cli-rpc` {count, size, concurrency} (nats): the shapes
 *   of `macula bench` (src/cli/bench-scenarios.ts) through nats-server, with
 *   the very same measuring code over two connections of this process.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { QuicTransport } from '../../src/transport/quic.js';
import { parseAddress, formatAddress, type Stream } from '../../src/transport/types.js';
import type { PubSubInit } from '../../src/pubsub/options.js';
import { benchPubSub, benchRpc, type BenchClient } from '../../src/cli/bench-scenarios.js';
import { PAYLOAD, serveOps, type WorkerOps } from './procs.js';

type NatsModule = typeof import('nats');
type NatsConn = Awaited<ReturnType<NatsModule['connect']>>;

const RESULT = new Uint8Array(100);
/** NATS publishes this many, then flushes (a round trip that paces it): its best rate measured here. */
const NATS_BATCH = 4096;

interface Side {
  subscribe(pattern: string, onMessage: () => void): Promise<void>;
  /** One step of the publish loop: publishes one or more messages, returns how many. */
  publishSome(topic: string): Promise<number>;
  serve(procedure: string): Promise<void>;
  call(procedure: string, args: Uint8Array): Promise<unknown>;
  /** Publishes until the publisher resolves `nodes` subscriber nodes (ours; NATS knows its subscribers at once). */
  reach(topic: string, nodes: number): Promise<void>;
  close(): Promise<void>;
}

function macula(node: MeshNode): Side {
  let n = 0;
  return {
    async subscribe(pattern, onMessage) {
      await node.subscribe(pattern, onMessage).ready;
    },
    async publishSome(topic) {
      await node.publish(topic, PAYLOAD);
      // A publish that finds room resolves without touching the event loop: let I/O in now and then.
      if (++n % 256 === 0) await new Promise((r) => setImmediate(r));
      return 1;
    },
    async serve(procedure) {
      await node.register(procedure, () => RESULT);
    },
    call: (procedure, args) => node.call(procedure, args),
    async reach(topic, nodes) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await node.publish(topic, PAYLOAD);
        if (r.nodes >= nodes) return;
        if (Date.now() > deadline) throw new Error(`the publisher resolved ${r.nodes} of ${nodes} subscriber nodes within 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    close: () => node.stop(),
  };
}

function nats(nc: NatsConn): Side {
  return {
    async subscribe(pattern, onMessage) {
      nc.subscribe(pattern, { callback: onMessage });
      await nc.flush();
    },
    async publishSome(topic) {
      for (let i = 0; i < NATS_BATCH; i++) nc.publish(topic, PAYLOAD);
      await nc.flush();
      return NATS_BATCH;
    },
    async serve(procedure) {
      nc.subscribe(procedure, { callback: (_err, m) => m.respond(RESULT) });
      await nc.flush();
    },
    call: (procedure, args) => nc.request(procedure, args, { timeout: 10_000 }),
    reach: async () => undefined,
    close: () => nc.close(),
  };
}

/** `macula bench`'s client shape over a NATS connection: data as JSON unless it is already bytes. */
function natsBenchClient(nc: NatsConn): BenchClient {
  const encode = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : new TextEncoder().encode(JSON.stringify(v ?? null)));
  return {
    async publish(topic, data) {
      nc.publish(topic, encode(data));
    },
    async subscribe(pattern, onMessage) {
      const sub = nc.subscribe(pattern, { callback: (_err, m) => onMessage({ topic: m.subject, data: m.data }) });
      await nc.flush();
      return { unsubscribe: async () => sub.unsubscribe() };
    },
    async call(procedure, args, options) {
      return (await nc.request(procedure, encode(args), { timeout: options?.timeoutMs ?? 10_000 })).data;
    },
    async serve(procedure, handler) {
      const sub = nc.subscribe(procedure, { callback: (_err, m) => m.respond(encode(handler(m.data))) });
      await nc.flush();
      return { unserve: async () => sub.unsubscribe() };
    },
  };
}

let side: Side | undefined;
let rawTransport: QuicTransport | undefined;
let rawStream: Promise<Stream> | undefined;
let natsConns: NatsConn[] = [];
let delivered = 0;
let published = 0;
let publishing: Promise<void> | undefined;
let stopPublishing = false;

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** `one` run 200 times to warm up, then in a closed loop with `inFlight` at once for `seconds`: rate and latency percentiles. */
async function closedLoop(inFlight: number, seconds: number, one: () => Promise<unknown>): Promise<{ rate: number; calls: number; p50: number; p99: number }> {
  for (let i = 0; i < 200; i++) await one(); // warm-up: lookup cache, connection, JIT
  const latencies: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        const s = performance.now();
        await one();
        latencies.push(performance.now() - s);
        done++;
      }
    }),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  latencies.sort((a, b) => a - b);
  return { rate, calls: done, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

/** Writes back every chunk it reads. */
async function echo(stream: Stream): Promise<void> {
  for (;;) {
    const chunk = await stream.read();
    if (chunk === null) return;
    stream.write(chunk).catch(() => undefined);
  }
}

async function natsConnect(url: string): Promise<NatsConn> {
  const mod: NatsModule = await import('nats');
  const nc = await mod.connect({ servers: url });
  natsConns.push(nc);
  return nc;
}

const ops: WorkerOps = {
  async init(m) {
    if (m.system === 'nats') {
      side = nats(await natsConnect(m.url as string));
      return {};
    }
    const quiet = { warn: () => {} };
    const bootstrap = m.bootstrap === undefined ? [] : [parseAddress(m.bootstrap as string)];
    const node = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, pubsub: m.pubsub as PubSubInit, bootstrap }).start();
    if (bootstrap.length > 0) await node.joined();
    side = macula(node);
    return { address: formatAddress(node.listenAddress!) };
  },
  async subscribe(m) {
    const count = (): void => void delivered++;
    for (let i = 0; i < (m.n as number); i++) await side!.subscribe((m.patterns as string[])[i % (m.patterns as string[]).length]!, count);
    return {};
  },
  async count() {
    return { delivered, published };
  },
  async 'publish-start'(m) {
    stopPublishing = false;
    publishing = (async () => {
      while (!stopPublishing) published += await side!.publishSome(m.topic as string);
    })();
    return {};
  },
  async 'publish-stop'() {
    stopPublishing = true;
    await publishing;
    return { published };
  },
  async reach(m) {
    await side!.reach(m.topic as string, m.nodes as number);
    return {};
  },
  async serve(m) {
    await side!.serve(m.procedure as string);
    return {};
  },
  async calls(m) {
    const args = new Uint8Array(100);
    const procedure = m.procedure as string;
    return closedLoop(m.inFlight as number, m.seconds as number, () => side!.call(procedure, args));
  },
  async 'raw-serve'() {
    const transport = (rawTransport = new QuicTransport({ identity: Identity.generate() }));
    const address = await transport.listen({ host: '127.0.0.1', port: 0 });
    void (async () => {
      for (let conn = await transport.acceptConnection(); conn !== null; conn = await transport.acceptConnection()) {
        const accepted = conn;
        void (async () => {
          for (let s = await accepted.acceptStream(); s !== null; s = await accepted.acceptStream()) void echo(s);
        })();
      }
    })();
    return { address: formatAddress(address) };
  },
  async 'raw-calls'(m) {
    // One stream for every request: a warm-up run and then the measured one use the same.
    rawStream ??= (async () => {
      const transport = (rawTransport = new QuicTransport({ identity: Identity.generate() }));
      await transport.listen({ host: '127.0.0.1', port: 0 });
      return (await transport.dial(parseAddress(m.address as string))).openStream();
    })();
    const stream = await rawStream;
    const request = new Uint8Array(100);
    return closedLoop(1, m.seconds as number, async () => {
      const written = stream.write(request);
      for (let got = 0; got < request.length; ) {
        const chunk = await stream.read();
        if (chunk === null) throw new Error('the echo stream ended');
        got += chunk.length;
      }
      await written;
    });
  },
  async 'cli-pubsub'(m) {
    const [a, b] = [await natsConnect(m.url as string), await natsConnect(m.url as string)];
    return benchPubSub(natsBenchClient(a), natsBenchClient(b), { count: m.count as number, size: m.size as number, concurrency: m.concurrency as number, warmupMs: 10_000 });
  },
  async 'cli-rpc'(m) {
    const [a, b] = [await natsConnect(m.url as string), await natsConnect(m.url as string)];
    return benchRpc(natsBenchClient(a), natsBenchClient(b), { count: m.count as number, size: m.size as number, concurrency: m.concurrency as number, warmupMs: 10_000 });
  },
  async exit() {
    stopPublishing = true;
    await publishing;
    await side?.close();
    await rawTransport?.close();
    await Promise.all(natsConns.map((c) => c.close().catch(() => undefined)));
    natsConns = [];
    setImmediate(() => process.exit(0));
    return {};
  },
};

serveOps(ops);
