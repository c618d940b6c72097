import { Command, Option } from 'commander';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../rpc/client.js';
import type { Headers } from '../../wire/headers.js';
import { addClientOptions, addHeaderOption, connectClient, parseJsonArgument, parseTimeoutMs, type ClientOptions } from '../options.js';
import { escapeControls, toJson, writeErr, writeOut } from '../output.js';

interface CallOptions extends ClientOptions {
  timeout: number;
  raw?: boolean;
  header?: Headers;
  headers?: boolean;
}

export function registerCall(program: Command): void {
  const cmd = program
    .command('call')
    .description('call a procedure served somewhere in the mesh and print its result as JSON')
    .argument('<procedure>', 'procedure name, e.g. math.add')
    .argument('[json-args]', "arguments as one JSON value, e.g. '{\"x\": 1, \"y\": 2}' (default: no arguments)", parseJsonArgument)
    .addOption(new Option('-t, --timeout <ms>', 'deadline of the whole call, failovers included').env('MACULA_TIMEOUT').default(DEFAULT_CALL_TIMEOUT_MS).argParser(parseTimeoutMs))
    .option('--raw', 'print a string result as is, not as a JSON string')
    .option('--headers', "print the result's headers on stderr first, one \"key: value\" per line");
  addHeaderOption(cmd, 'the call');
  addClientOptions(cmd).action(async (procedure: string, args: unknown, opts: CallOptions) => {
    const client = await connectClient(opts);
    try {
      const onResultHeaders = (h: Headers) => {
        if (opts.headers) writeErr(Object.entries(h).map(([k, v]) => `${escapeControls(k)}: ${escapeControls(v)}\n`).join(''));
      };
      const result = await client.call(procedure, args, { timeoutMs: opts.timeout, onResultHeaders, ...(opts.header !== undefined && { headers: opts.header }) });
      await writeOut(`${opts.raw && typeof result === 'string' ? result : toJson(result)}\n`);
    } finally {
      await client.close();
    }
  });
}
