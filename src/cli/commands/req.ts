import { Command, Option } from 'commander';
import { DEFAULT_REQUEST_TIMEOUT_MS, MAX_REQUEST_REPLIES } from '../../pubsub/messages.js';
import type { Headers } from '../../wire/headers.js';
import { addClientOptions, addHeaderOption, connectClient, intParser, parseTimeoutMs, parseTopic, type ClientOptions } from '../options.js';
import { formatPayload, toJson, writeOut } from '../output.js';

interface ReqOptions extends ClientOptions {
  replies: number;
  timeout: number;
  json?: boolean;
  jsonMessage?: boolean;
  header?: Headers;
}

export function registerReq(program: Command): void {
  const cmd = program
    .command('req')
    .description('publish a request to a topic and print the replies of the subscribers that answer')
    .argument('<topic>', 'dot-separated topic, e.g. svc.time', parseTopic)
    .argument('<message>', 'the request (a UTF-8 string; with --json-message a JSON value)')
    .option('--replies <n>', `wait for up to n replies (1..${MAX_REQUEST_REPLIES}); fewer are printed when the timeout comes first`, intParser(1, MAX_REQUEST_REPLIES), 1)
    .addOption(new Option('-t, --timeout <ms>', 'how long to wait for the replies').default(DEFAULT_REQUEST_TIMEOUT_MS).argParser(parseTimeoutMs))
    .option('--json-message', 'parse the message as JSON and send the value instead of the text')
    .option('--json', 'print one JSON object per reply: {"data", "headers", "responder"}')
    .addHelpText('after', '\nExits 1 at once with MACULA_ERR_NO_RESPONDERS when nobody subscribes to the topic, and with a timeout when nobody answered.');
  addHeaderOption(cmd, 'the request');
  addClientOptions(cmd).action(async (topic: string, message: string, opts: ReqOptions) => {
    let data: unknown = message;
    if (opts.jsonMessage) {
      try {
        data = JSON.parse(message) as unknown;
      } catch (err) {
        return cmd.error(`error: the message is not valid JSON (${(err as Error).message})`, { exitCode: 2, code: 'macula.badJson' });
      }
    }
    const client = await connectClient(opts);
    try {
      const replies = await client.request(topic, data, { max: opts.replies, timeoutMs: opts.timeout, ...(opts.header !== undefined && { headers: opts.header }) });
      const lines = replies.map((r) => (opts.json ? toJson({ data: r.data, headers: r.headers ?? {}, responder: r.responder }) : formatPayload(r.data)));
      await writeOut(lines.map((l) => `${l}\n`).join(''));
    } finally {
      await client.close();
    }
  });
}
