import { Command } from 'commander';
import { addClientOptions, connectClient, parseIntervalMs, type ClientOptions } from '../options.js';
import { toJson, writeOut } from '../output.js';
import { sleep } from '../signals.js';
import { renderStats } from '../stats-view.js';

interface StatsOptions extends ClientOptions {
  json?: boolean;
  interval: number;
}

export function registerStats(program: Command): void {
  const cmd = program
    .command('stats')
    .description("show a node's throughput, queue depths, cache hit rates and connection use")
    .option('--json', 'print the raw snapshot as JSON (at once, no rates)')
    .option('-i, --interval <ms>', 'measure rates over this long (two snapshots; 0: totals only)', parseIntervalMs, 1000);
  addClientOptions(cmd).action(async (opts: StatsOptions) => {
    const client = await connectClient(opts);
    try {
      const first = await client.stats();
      if (opts.json) return await writeOut(`${toJson(first, 2)}\n`);
      if (opts.interval === 0) return await writeOut(renderStats(first));
      const t0 = performance.now();
      await sleep(opts.interval);
      const second = await client.stats();
      await writeOut(renderStats(second, first, (performance.now() - t0) / 1000));
    } finally {
      await client.close();
    }
  });
}
