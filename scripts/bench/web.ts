/**
 * `web` scenario: the web gateway. A node with --web-port on 127.0.0.1; its
 * clients are (1) Node with the package's WebTransport class over HTTP/2
 * and (2) Debian's headless Chromium over the package's WebSocket mapping
 * (Chromium's own WebTransport needs HTTP/3, which is off without the
 * optional native transport). For each: round trip (GW PING) and a call of
 * a procedure on the node, sequential; messages/s published by the client
 * (one-way, at the pace of the node's publish window; 64 publishing loops)
 * and delivered back to its own subscription through the node. Each figure
 * names its WebTransport mode.
 */
import { Identity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { launchChromium } from '../../test/helpers/chromium.js';
import { connectWeb } from '../../test/helpers/web.js';
import type { BenchContext } from '../bench.js';

const IN_FLIGHT = 64;

interface WebFigures {
  pingP50: number;
  pingP99: number;
  callP50: number;
  delivered: number;
}

interface BenchClient {
  ping(): Promise<number>;
  call(p: string, a?: unknown): Promise<unknown>;
  publish(t: string, d: unknown): Promise<unknown>;
  subscribe(p: string, f: () => void): Promise<unknown>;
}

/**
 * The measurement, written once: run in Node with a connected client, and
 * in the page (Playwright sends its source) with the bundled library's
 * client, which the page keeps as globalThis.benchClient.
 */
async function measure(arg: { seconds: number; inFlight: number; client?: BenchClient }): Promise<WebFigures> {
  const { seconds, inFlight } = arg;
  const client = arg.client ?? (globalThis as unknown as { benchClient: BenchClient }).benchClient;
  const q = (xs: number[], p: number): number => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
  const pings: number[] = [];
  let end = performance.now() + seconds * 1000;
  while (performance.now() < end) pings.push(await client.ping());
  const calls: number[] = [];
  end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await client.call('bench.web.echo', 'x');
    calls.push(performance.now() - t0);
  }
  let got = 0;
  await client.subscribe('bench.web.msgs', () => got++);
  const payload = 'x'.repeat(100);
  end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) await client.publish('bench.web.msgs', payload);
    }),
  );
  const delivered = got / ((performance.now() - t0) / 1000);
  return { pingP50: q(pings, 0.5), pingP99: q(pings, 0.99), callP50: q(calls, 0.5), delivered };
}

export async function webScenario(ctx: BenchContext): Promise<void> {
  const { seconds } = ctx;
  const node = await new MeshNode(Identity.generate(), { host: '127.0.0.1', port: 0, logger: { warn: () => {} }, web: { port: 0, host: '127.0.0.1' } }).start();
  try {
    await node.register('bench.web.echo', (a) => a);
    const url = node.web!.url;
    ctx.log(`node on 127.0.0.1, web gateway ${url}; modes on: ${Object.entries(node.web!.modes).filter(([, on]) => on).map(([m]) => m).join(', ')}; ${seconds} s per figure`);

    const fromNode = await connectWeb(url, node.web!.certificate.sha256);
    for (let i = 0; i < 200; i++) await fromNode.ping();
    const n = await measure({ client: fromNode, seconds, inFlight: IN_FLIGHT });
    await fromNode.close();
    ctx.log('Node client, WebTransport over HTTP/2 (@fails-components/webtransport, forceReliable):');
    ctx.report({ metric: 'http2_rtt_p50_ms', value: n.pingP50, unit: 'ms' });
    ctx.report({ metric: 'http2_rtt_p99_ms', value: n.pingP99, unit: 'ms' });
    ctx.report({ metric: 'http2_call_p50_ms', value: n.callP50, unit: 'ms' });
    ctx.report({ metric: 'http2_delivered_per_s', value: n.delivered, unit: 'msgs/s' });

    const { context, profile } = await launchChromium();
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${url}info.json`);
      await page.evaluate(async () => {
        const lib = (await import('/macula-client.js' as string)) as { connect(): Promise<BenchClient> };
        const client = await lib.connect();
        for (let i = 0; i < 200; i++) await client.ping();
        (globalThis as unknown as { benchClient: BenchClient }).benchClient = client;
      });
      const b = await page.evaluate(measure, { seconds, inFlight: IN_FLIGHT });
      await page.evaluate(() => (globalThis as unknown as { benchClient: { close(): Promise<void> } }).benchClient.close());
      ctx.log(`Chromium ${context.browser()?.version() ?? ''} headless, WebTransport over the WebSocket mapping (the package's ponyfill):`);
      ctx.report({ metric: 'websocket_rtt_p50_ms', value: b.pingP50, unit: 'ms' });
      ctx.report({ metric: 'websocket_rtt_p99_ms', value: b.pingP99, unit: 'ms' });
      ctx.report({ metric: 'websocket_call_p50_ms', value: b.callP50, unit: 'ms' });
      ctx.report({ metric: 'websocket_delivered_per_s', value: b.delivered, unit: 'msgs/s' });
    } finally {
      await context.close();
      const { rm } = await import('node:fs/promises');
      await rm(profile, { recursive: true, force: true });
    }
  } finally {
    await node.stop();
  }
}
