/**
 * `rpc` scenario: two nodes over QUIC on 127.0.0.1, 100-byte args and
 * result; the same request/reply through NATS in the same run when
 * nats-server is installed; cached registry lookups in-process.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import type { BenchContext } from '../bench.js';
import { startNats } from './nats.js';

const SIZE = 100;

async function closedLoop(seconds: number, inFlight: number, call: () => Promise<unknown>, latencies?: number[]): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        const s = performance.now();
        await call();
        latencies?.push(performance.now() - s);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function rpcScenario(ctx: BenchContext): Promise<void> {
  const { seconds } = ctx;
  const quiet = { warn: () => {} };
  const server = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet }).start();
  const client = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: quiet, bootstrap: [server.listenAddress!] }).start();
  await client.joined();
  const result = new Uint8Array(SIZE);
  await server.register('bench.echo', () => result);
  const args = new Uint8Array(SIZE);
  const call = () => client.call('bench.echo', args);
  for (let i = 0; i < 200; i++) await call(); // warm up: registry cache, connection, JIT

  ctx.log(`macula: 2 nodes over QUIC on 127.0.0.1, ${SIZE}-byte args and result, ${seconds} s per figure`);
  const latencies: number[] = [];
  const seq = await closedLoop(seconds, 1, call, latencies);
  ctx.report({ metric: 'calls_seq_per_s', value: seq, unit: 'calls/s' });
  const par = await closedLoop(seconds, 100, call);
  ctx.report({ metric: 'calls_100_per_s', value: par, unit: 'calls/s' });
  latencies.sort((a, b) => a - b);
  ctx.report({ metric: 'latency_p50_ms', value: quantile(latencies, 0.5), unit: 'ms' });
  ctx.report({ metric: 'latency_p99_ms', value: quantile(latencies, 0.99), unit: 'ms' });

  // Cached registry lookups: the path every call takes before picking a provider.
  await client.lookup('rpc:bench.echo');
  const N = 2_000_000;
  const t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < N; i++) sink += (await client.lookup('rpc:bench.echo')).length;
  if (sink === 0) throw new Error('lookups returned nothing');
  ctx.report({ metric: 'cached_lookups_per_s', value: N / ((performance.now() - t0) / 1000), unit: 'lookups/s' });
  await client.stop();
  await server.stop();

  const nats = await startNats();
  if (typeof nats === 'string') {
    ctx.log(`NATS baseline skipped: ${nats}`);
    return;
  }
  try {
    const responder = await nats.nats.connect({ servers: `127.0.0.1:${nats.port}` });
    const requester = await nats.nats.connect({ servers: `127.0.0.1:${nats.port}` });
    const sub = responder.subscribe('bench.echo');
    void (async () => {
      for await (const m of sub) m.respond(result);
    })();
    await responder.flush();
    const natsCall = () => requester.request('bench.echo', args, { timeout: 5000 });
    for (let i = 0; i < 200; i++) await natsCall();
    ctx.log(`NATS: nats-server on 127.0.0.1, same payloads`);
    const nSeq = await closedLoop(seconds, 1, natsCall);
    ctx.report({ metric: 'nats_calls_seq_per_s', value: nSeq, unit: 'calls/s' });
    const nPar = await closedLoop(seconds, 100, natsCall);
    ctx.report({ metric: 'nats_calls_100_per_s', value: nPar, unit: 'calls/s' });
    ctx.report({ metric: 'vs_nats_seq_ratio', value: seq / nSeq, unit: 'x' });
    ctx.report({ metric: 'vs_nats_100_ratio', value: par / nPar, unit: 'x' });
    await requester.close();
    await responder.close();
  } finally {
    await nats.stop();
  }
}
