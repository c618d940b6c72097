import { Argument, Command, Option } from 'commander';
import type { MaculaClient } from '../../client/client.js';
import { formatAddress, type PeerAddress } from '../../transport/types.js';
import { benchPubSub, benchRpc, type BenchFigure, type BenchParams } from '../bench-scenarios.js';
import { addClientOptions, connectClient, intParser, parseConcurrency, parseCount, parseHostPort, type ClientOptions } from '../options.js';
import { formatCount, table, writeOut } from '../output.js';

interface BenchOptions extends ClientOptions {
  count: number;
  size: number;
  concurrency: number;
  remote?: PeerAddress;
  json?: boolean;
}

const SCENARIOS = ['pubsub', 'rpc', 'all'] as const;

export function registerBench(program: Command): void {
  const cmd = program
    .command('bench')
    .description('measure pub/sub and RPC throughput and latency against a running mesh')
    .addArgument(new Argument('<scenario>', 'what to measure').choices(SCENARIOS))
    .addOption(new Option('-c, --count <n>', 'messages to publish, or calls to make').default(10_000).argParser(parseCount))
    .addOption(new Option('-s, --size <bytes>', 'payload size (at least 8: the send time)').default(100).argParser(intParser(1, 1024 * 1024, 'bytes')))
    .addOption(new Option('--concurrency <n>', 'publishes or calls in flight at once').default(64).argParser(parseConcurrency))
    .addOption(new Option('--remote <host:port>', 'node of the subscriber (pubsub) or of the serving client (rpc); default: --node').argParser(parseHostPort))
    .option('--json', 'one JSON object per line: {"scenario", "metric", "value", "unit"}')
    .addHelpText(
      'after',
      '\nTwo light clients take part: the publisher (or caller) through --node and the subscriber\n' +
        '(or server) through --remote. Give --remote another node to measure across the mesh.',
    );
  addClientOptions(cmd).action(async (scenario: (typeof SCENARIOS)[number], opts: BenchOptions) => {
    const params: BenchParams = { count: opts.count, size: Math.max(8, opts.size), concurrency: opts.concurrency, warmupMs: 10_000 };
    const clients: MaculaClient[] = [];
    try {
      const near = await connectClient(opts);
      clients.push(near);
      const far = await connectClient({ ...opts, node: opts.remote ?? opts.node });
      clients.push(far);
      const route = `${formatAddress(opts.node)} → ${formatAddress(opts.remote ?? opts.node)}`;
      if (scenario === 'pubsub' || scenario === 'all') await report(await benchPubSub(near, far, params), route, opts.json === true);
      if (scenario === 'rpc' || scenario === 'all') await report(await benchRpc(near, far, params), route, opts.json === true);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
}

async function report(figures: BenchFigure[], route: string, json: boolean): Promise<void> {
  if (json) {
    await writeOut(figures.map((f) => `${JSON.stringify(f)}\n`).join(''));
    return;
  }
  const scenario = figures[0]?.scenario ?? '';
  const rows = figures.map((f) => [f.metric.replace(/_/g, ' '), formatCount(f.value), f.unit]);
  await writeOut(`${scenario} (${route})\n${table(rows, { indent: '  ', rightAlign: [1] })}\n`);
}
