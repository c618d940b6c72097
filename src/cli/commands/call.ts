import { Command, Option } from 'commander';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../rpc/client.js';
import { addClientOptions, connectClient, parseJsonArgument, parseTimeoutMs, type ClientOptions } from '../options.js';
import { toJson, writeOut } from '../output.js';

interface CallOptions extends ClientOptions {
  timeout: number;
  raw?: boolean;
}

export function registerCall(program: Command): void {
  const cmd = program
    .command('call')
    .description('call a procedure served somewhere in the mesh and print its result as JSON')
    .argument('<procedure>', 'procedure name, e.g. math.add')
    .argument('[json-args]', "arguments as one JSON value, e.g. '{\"x\": 1, \"y\": 2}' (default: no arguments)", parseJsonArgument)
    .addOption(new Option('-t, --timeout <ms>', 'deadline of the whole call, failovers included').env('MACULA_TIMEOUT').default(DEFAULT_CALL_TIMEOUT_MS).argParser(parseTimeoutMs))
    .option('--raw', 'print a string result as is, not as a JSON string');
  addClientOptions(cmd).action(async (procedure: string, args: unknown, opts: CallOptions) => {
    const client = await connectClient(opts);
    try {
      const result = await client.call(procedure, args, { timeoutMs: opts.timeout });
      await writeOut(`${opts.raw && typeof result === 'string' ? result : toJson(result)}\n`);
    } finally {
      await client.close();
    }
  });
}
