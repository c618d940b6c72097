import { Command } from 'commander';
import { formatAddress } from '../../transport/types.js';
import { addClientOptions, connectClient, type ClientOptions } from '../options.js';
import { formatDuration, table, toJson, writeErr, writeOut } from '../output.js';

interface LookupOptions extends ClientOptions {
  fresh?: boolean;
  json?: boolean;
}

export function registerLookup(program: Command): void {
  const cmd = program
    .command('lookup')
    .description('list the nodes that provide a service')
    .argument('<service>', 'service name as registered (a procedure p served with `macula serve` or register() is "rpc:p")')
    .option('--fresh', "ask the mesh, skipping the node's registry cache (which may answer up to 5 s old)")
    .option('--json', 'print the providers as a JSON array');
  addClientOptions(cmd).action(async (service: string, opts: LookupOptions) => {
    const client = await connectClient(opts);
    try {
      const providers = await client.lookup(service, { fresh: opts.fresh === true });
      if (opts.json) return await writeOut(`${toJson(providers, 2)}\n`);
      if (providers.length === 0) {
        const hint = service.includes(':') ? '' : ` (procedures are registered as "rpc:<procedure>": try rpc:${service})`;
        writeErr(`no providers of ${service}${hint}\n`);
        return;
      }
      const now = Date.now();
      const rows = [['NODE', 'ADDRESS', 'EXPIRES', 'METADATA']];
      for (const p of providers) {
        rows.push([
          p.nodeId + (p.local ? ' (the node asked)' : ''),
          formatAddress(p.address),
          p.expires === null ? 'renewed' : `in ${formatDuration((p.expires - now) / 1000)}`,
          Object.keys(p.metadata).length > 0 ? toJson(p.metadata) : '',
        ]);
      }
      await writeOut(`${table(rows)}\n`);
    } finally {
      await client.close();
    }
  });
}
